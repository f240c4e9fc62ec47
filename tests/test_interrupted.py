"""A training that dies at any point never leaves a half-written model where a good one was.

Faults are injected at named points of the write path (each rename that puts a file in place), not
by killing a process after some seconds, so every case runs on a machine however busy.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from emotion.config import TrainConfig
from emotion.modelfile import load_bundle
from emotion.training import checkpoint_path, train

NEW_CONFIG = TrainConfig(epochs=3, batch_size=16, base_filters=8, init="scratch")


class Killed(BaseException):
    """The process dying at this point: nothing after it runs (cleanup in `finally` blocks aside)."""


def destination(output: Path, point: str) -> Path:
    """The file whose rename into place is where the training dies at `point`."""
    return {
        "replacing the model": output,
        "between the model and its json": output.with_suffix(".json"),
        "writing the plots": output.with_name(f"{output.stem}_curves.png"),
    }[point]


@pytest.mark.parametrize("point", ["replacing the model", "between the model and its json", "writing the plots"])
def test_a_training_killed_at_any_point_leaves_the_old_model_or_a_whole_new_one(tiny_training, tiny_dataset,
                                                                                tmp_path, monkeypatch, point):
    result, _, _ = tiny_training
    output = tmp_path / "model.keras"
    for suffix in (".keras", ".json"):
        shutil.copy(result.model_path.with_suffix(suffix), output.with_suffix(suffix))
    old_bytes = output.read_bytes()
    target, real_replace = destination(output, point), os.replace

    def replace(source, final):
        if Path(final) == target:
            raise Killed(point)
        real_replace(source, final)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(Killed):
        train(tiny_dataset, NEW_CONFIG, output)
    monkeypatch.undo()

    bundle = load_bundle(output)  # always loads: never a truncated file, never a model beside foreign metadata
    replaced = output.read_bytes() != old_bytes
    assert replaced == (point in ("between the model and its json", "writing the plots"))
    assert bundle.metadata["config"]["epochs"] == (3 if replaced else 12)  # its own metadata, whichever it is
    assert np.isfinite(bundle.model(np.zeros((1, 48, 48, 1), np.float32)).numpy()).all()


def test_a_training_killed_during_epoch_3_keeps_the_old_model_and_the_best_epoch_so_far(tiny_training,
                                                                                       tiny_dataset, tmp_path):
    result, _, _ = tiny_training
    output = tmp_path / "model.keras"
    for suffix in (".keras", ".json"):
        shutil.copy(result.model_path.with_suffix(suffix), output.with_suffix(suffix))
    old_bytes = output.read_bytes()

    def on_epoch(progress):
        if progress.epoch == 3:
            raise Killed("during epoch 3")

    with pytest.raises(Killed):
        train(tiny_dataset, TrainConfig(epochs=10, batch_size=16, base_filters=8, init="scratch"), output,
              on_epoch=on_epoch)
    assert output.read_bytes() == old_bytes
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]  # no temporary files left
    checkpoint = load_bundle(checkpoint_path(output))
    assert 1 <= checkpoint.metadata["checkpoint"]["epoch"] <= 3 and checkpoint.class_names == ["happy", "sad"]
