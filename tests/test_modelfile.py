"""Model files: a broken or incomplete model is one clear error; writes are atomic."""

from __future__ import annotations

import io
import shutil
import zipfile

import h5py
import pytest

from emotion.errors import ModelError
from emotion.modelfile import atomic_path, load_bundle


def test_corrupt_model_file_is_a_clear_error(tiny_training, tmp_path):
    result, _, _ = tiny_training
    broken = tmp_path / "broken.keras"
    broken.write_bytes(result.model_path.read_bytes()[:5000])  # a download cut short
    shutil.copy(result.metadata_path, broken.with_suffix(".json"))
    with pytest.raises(ModelError, match="damaged"):
        load_bundle(broken)


def test_model_without_metadata_is_refused(tiny_training, tmp_path):
    result, _, _ = tiny_training
    shutil.copy(result.model_path, tmp_path / "lonely.keras")
    with pytest.raises(ModelError, match="metadata"):
        load_bundle(tmp_path / "lonely.keras")


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
