"""TFLite export: the file runs in LiteRT and gives the Keras model's outputs."""

from __future__ import annotations

import numpy as np

from emotion.export import check_parity, export_tflite, tflite_probabilities
from emotion.modelfile import load_bundle


def test_tflite_matches_keras(tiny_training, tmp_path):
    result, _, _ = tiny_training
    bundle = load_bundle(result.model_path)
    path = export_tflite(bundle, tmp_path / "tiny.tflite")
    assert path.is_file() and path.stat().st_size > 10_000
    assert check_parity(bundle, path) < 1e-4
    faces = np.random.default_rng(1).integers(0, 256, (3, 48, 48, 1), dtype=np.uint8)
    assert tflite_probabilities(path, faces).shape == (3, 1)
