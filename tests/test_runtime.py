"""The LiteRT runtime gives the Keras model's answers, for any number of faces, and is used only when current."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import PROJECT_ROOT
from emotion.errors import ModelError
from emotion.export import export_record_path, export_tflite, recorded_export
from emotion.modelfile import BUNDLED_MODELS, ModelBundle, file_sha256, load_bundle, read_bundle
from emotion.predictor import Predictor
from emotion.runtime import KerasRuntime, LiteRTRuntime, load_runtime


@pytest.fixture(scope="module")
def exported(tiny_training, tmp_path_factory):
    """A copy of the tiny model with a fresh .tflite beside it."""
    result, _, _ = tiny_training
    folder = tmp_path_factory.mktemp("exported")
    for suffix in (".keras", ".json"):
        (folder / f"tiny{suffix}").write_bytes(result.model_path.with_suffix(suffix).read_bytes())
    bundle = load_bundle(folder / "tiny.keras")
    export_tflite(bundle)
    return bundle


@pytest.mark.parametrize("faces", [1, 3, 64, 70])
def test_litert_matches_keras_for_any_batch_size(exported, faces):
    pixels = np.random.default_rng(faces).integers(0, 256, (faces, 48, 48, 1), dtype=np.uint8)
    keras_outputs = KerasRuntime(exported)(pixels)
    litert_outputs = LiteRTRuntime(exported.path.with_suffix(".tflite"))(pixels)
    assert litert_outputs.shape == keras_outputs.shape == (faces, 1)
    assert np.max(np.abs(litert_outputs - keras_outputs)) < 1e-4


def test_auto_uses_a_recorded_export_without_tensorflow():
    """The bundled models' exports are recorded against their .keras files: the command line and the app
    classify with LiteRT without importing TensorFlow (about 4 s of every start)."""
    code = ("import sys; from emotion.predictor import Predictor; "
            "names = [Predictor.load(name).runtime.name for name in ('happy_sad', 'emotions')]; "
            "print(names, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "['litert', 'litert'] False False"


def test_auto_uses_litert_only_when_the_export_is_current(exported):
    tflite = exported.path.with_suffix(".tflite")
    assert recorded_export(exported, tflite)
    assert isinstance(load_runtime(exported), LiteRTRuntime)
    assert isinstance(Predictor(exported).runtime, LiteRTRuntime)

    record = export_record_path(tflite)
    kept = record.read_bytes()
    record.write_text(record.read_text().replace('"model_sha256": "', '"model_sha256": "0'))  # another model's
    older = exported.path.stat().st_mtime - 60
    try:
        assert not recorded_export(exported, tflite)
        # Without a matching record, an export newer than the model is checked on a few faces and used ...
        assert isinstance(load_runtime(exported), LiteRTRuntime)
        # ... and one older than it (a model retrained after its export) is not.
        os.utime(tflite, (older, older))
        assert isinstance(load_runtime(exported), KerasRuntime)
    finally:
        record.write_bytes(kept)
        os.utime(tflite)
    assert recorded_export(exported, tflite)


def test_a_mismatched_export_is_not_used(exported, tmp_path, tiny_dataset):
    from emotion.config import TrainConfig
    from emotion.training import train

    other = train(tiny_dataset, TrainConfig(epochs=1, batch_size=16, base_filters=8, init="scratch"),
                  tmp_path / "other.keras")
    # Put the tiny model's export beside a different model with the same input shape.
    tflite = other.model_path.with_suffix(".tflite")
    tflite.write_bytes(exported.path.with_suffix(".tflite").read_bytes())
    assert isinstance(load_runtime(load_bundle(other.model_path)), KerasRuntime)


def test_a_recorded_export_that_litert_cannot_run_falls_back_to_keras(exported, tmp_path):
    """A record proves the bytes are unchanged, not that the installed LiteRT can run them (an export
    made by a newer converter, say): the model is then served by Keras, not refused."""
    model_path = Path(shutil.copy(exported.path, tmp_path / "tiny.keras"))
    tflite = model_path.with_suffix(".tflite")
    tflite.write_bytes(b"not a flatbuffer" * 64)
    bundle = read_bundle(model_path)
    export_record_path(tflite).write_text(json.dumps({"model_sha256": bundle.sha256,
                                                      "tflite_sha256": file_sha256(tflite)}))
    assert recorded_export(bundle, tflite)
    assert isinstance(load_runtime(bundle), KerasRuntime)
    with pytest.raises((ModelError, ValueError, RuntimeError)):
        load_runtime(bundle, runtime="litert")


def test_an_export_whose_outputs_do_not_fit_the_metadata_is_refused(exported):
    tflite = exported.path.with_suffix(".tflite")
    with pytest.raises(ModelError, match="1 outputs but its model's metadata lists 3 classes"):
        LiteRTRuntime(tflite, class_count=3)
    three = ModelBundle({**exported.metadata, "class_names": ["a", "b", "c"]}, exported.path, sha256=exported.sha256)
    with pytest.raises(ModelError, match="outputs"):  # and Keras, tried next, says the same
        load_runtime(three)


def test_a_model_replaced_after_its_metadata_was_read_is_refused(exported, tmp_path):
    """Metadata, hash and weights always describe one model: never one file's labels on another's weights,
    nor an export vouched for by a model it was not made from."""
    model_path = Path(shutil.copy(exported.path, tmp_path / "tiny.keras"))
    bundle = read_bundle(model_path)
    shutil.copy(BUNDLED_MODELS["happy_sad"], model_path)  # a training writing to the same path meanwhile
    with pytest.raises(ModelError, match="replaced after its metadata was read"):
        bundle.model  # noqa: B018
    assert read_bundle(model_path).sha256 == file_sha256(BUNDLED_MODELS["happy_sad"]) != bundle.sha256
