"""TFLite export: what a user gets after `export` is a model that answers as the Keras one did."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from emotion.errors import ModelError
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


def test_an_export_that_differs_from_its_model_is_refused_and_replaces_nothing(tiny_training, tmp_path, monkeypatch):
    from emotion import export

    result, _, _ = tiny_training
    model_path = shutil.copy(result.model_path, tmp_path / "tiny.keras")
    good = export_tflite(load_bundle(model_path))
    kept, record = good.read_bytes(), export.export_record(good)
    assert record["model"] == "tiny.keras" and record["largest_difference"] < export.PARITY_TOLERANCE

    monkeypatch.setattr(export, "PARITY_TOLERANCE", -1.0)  # as if the converter had changed the model
    with pytest.raises(ModelError, match=r"tiny\.tflite \(not written\): TFLite outputs differ"):
        export_tflite(load_bundle(model_path))
    assert good.read_bytes() == kept and export.export_record(good) == record  # the checked export stays


def test_an_export_into_a_folder_takes_the_models_name_and_other_names_are_refused(tiny_training, tmp_path):
    result, _, _ = tiny_training
    bundle = load_bundle(result.model_path)
    folder = tmp_path / "exports"
    folder.mkdir()
    assert export_tflite(bundle, folder) == folder / result.model_path.with_suffix(".tflite").name
    with pytest.raises(ModelError, match="must end in .tflite"):
        export_tflite(bundle, tmp_path / "out.bin")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ModelError, match="cannot write the export to .*a-file"):
        export_tflite(bundle, blocker / "sub" / "model.tflite")
