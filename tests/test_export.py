"""TFLite export: what a user gets after `export` is a model that answers as the Keras one did."""

from __future__ import annotations

import shutil

import numpy as np

from emotion.export import export_tflite
from emotion.modelfile import load_bundle
from emotion.predictor import Predictor


def test_an_exported_model_is_used_and_labels_faces_as_keras_did(tiny_training, tiny_dataset, tmp_path):
    result, _, _ = tiny_training
    model_path = shutil.copy(result.model_path, tmp_path / "tiny.keras")
    faces = sorted(tiny_dataset.rglob("*.png"))[::4]  # both classes
    keras_answers = [Predictor.load(model_path, runtime="keras").predict_source(path, faces="none")
                     for path in faces]

    export_tflite(load_bundle(model_path))  # tiny.tflite beside the model
    predictor = Predictor.load(model_path)
    assert predictor.runtime.name == "litert"  # the export is what answers now
    for path, expected in zip(faces, keras_answers):
        answer = predictor.predict_source(path, faces="none")
        assert answer["faces"][0]["label"] == expected["faces"][0]["label"]
        assert np.allclose(list(answer["faces"][0]["scores"].values()), list(expected["faces"][0]["scores"].values()),
                           atol=1e-4)
