"""Model files: a broken or incomplete model is one clear error; writes are atomic."""

from __future__ import annotations

import io
import json
import shutil
import zipfile

import h5py
import keras
import pytest

from emotion import modelfile
from emotion.errors import ModelError
from emotion.modelfile import atomic_path, load_bundle


def test_corrupt_model_file_is_a_clear_error(tiny_training, tmp_path):
    result, _, _ = tiny_training
    broken = tmp_path / "broken.keras"
    broken.write_bytes(result.model_path.read_bytes()[:5000])  # a download cut short
    shutil.copy(result.metadata_path, broken.with_suffix(".json"))
    with pytest.raises(ModelError, match="damaged"):
        load_bundle(broken)


def test_a_trained_model_file_carries_its_own_metadata(tiny_training, tmp_path):
    result, _, _ = tiny_training
    shutil.copy(result.model_path, tmp_path / "alone.keras")  # downloaded without its .json
    bundle = load_bundle(tmp_path / "alone.keras")
    assert bundle.class_names == json.loads(result.metadata_path.read_text())["class_names"]


def test_a_keras_model_without_metadata_is_refused(tmp_path):
    inputs = keras.Input((48, 48, 1))
    keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(inputs))).save(tmp_path / "foreign.keras")
    with pytest.raises(ModelError, match="metadata"):
        load_bundle(tmp_path / "foreign.keras")


def test_a_crash_between_model_and_json_still_leaves_a_consistent_model(tiny_training, tmp_path, monkeypatch):
    result, _, _ = tiny_training
    old = load_bundle(result.model_path)
    target = tmp_path / "model.keras"
    shutil.copy(result.model_path, target)
    shutil.copy(result.metadata_path, target.with_suffix(".json"))

    def killed(*args):
        raise KeyboardInterrupt("killed after the model was renamed into place")

    monkeypatch.setattr(modelfile, "write_json", killed)
    new_metadata = {**old.metadata, "class_names": ["glad", "gloomy"]}
    with pytest.raises(KeyboardInterrupt):
        modelfile.save_bundle(old.model, new_metadata, target)
    assert json.loads(target.with_suffix(".json").read_text())["class_names"] == old.class_names  # the stale copy
    assert load_bundle(target).class_names == ["glad", "gloomy"]  # the model goes with its own metadata


def test_failed_write_leaves_the_old_file_untouched(tmp_path):
    target = tmp_path / "model.keras"
    target.write_bytes(b"the good model")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_bytes(b"half of a new")
            raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"the good model"
    assert list(tmp_path.iterdir()) == [target]


def test_saved_models_carry_no_optimizer_state(tiny_training):
    result, _, _ = tiny_training
    with zipfile.ZipFile(result.model_path) as archive:
        weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
    stored = []
    weights.visit(stored.append)
    assert stored and not [name for name in stored if name.startswith("optimizer/")]  # AdamW would triple the file


def test_a_models_tflite_or_json_stands_for_the_keras_model_beside_it(tmp_path):
    bundled = modelfile.BUNDLED_MODELS["happy_sad"]
    for companion in (bundled.with_suffix(".tflite"), bundled.with_suffix(".json"),
                      bundled.with_suffix(".tflite.json")):
        assert modelfile.read_bundle(companion).path == bundled
    alone = tmp_path / "mine.tflite"
    shutil.copy(bundled.with_suffix(".tflite"), alone)  # downloaded without its .keras
    with pytest.raises(ModelError, match="mine.tflite is a model's TFLite export; the model itself is mine.keras"):
        modelfile.read_bundle(alone)


def test_a_missing_model_file_is_named_missing_not_damaged(tmp_path):
    with pytest.raises(ModelError, match="nope.keras not found"):
        modelfile.read_metadata(tmp_path / "nope.keras")
