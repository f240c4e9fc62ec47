"""A training killed at any moment never leaves a half-written model where a good one was."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import PROJECT_ROOT
from emotion.config import TrainConfig
from emotion.modelfile import load_bundle
from emotion.training import checkpoint_path, train


@pytest.mark.parametrize("seconds", [2.0, 6.0, 9.0, 12.0])
def test_a_killed_training_leaves_the_old_model_or_a_whole_new_one(tiny_training, tiny_dataset, tmp_path, seconds):
    result, _, _ = tiny_training
    output = tmp_path / "model.keras"
    for suffix in (".keras", ".json"):
        shutil.copy(result.model_path.with_suffix(suffix), output.with_suffix(suffix))
    old_bytes = output.read_bytes()

    process = subprocess.Popen([sys.executable, "train.py", "--data", str(tiny_dataset), "--output", str(output),
                                "--epochs", "3", "--batch-size", "16"], cwd=PROJECT_ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(seconds)  # from import, through training and evaluation, to the final writes
    process.kill()  # SIGKILL: no handler, no finally block runs
    process.wait()

    bundle = load_bundle(output)  # always loads: never a truncated file
    if output.read_bytes() != old_bytes:  # the new model landed whole, with its own metadata
        assert bundle.metadata["config"]["epochs"] == 3
    probabilities = bundle.model(np.zeros((1, 48, 48, 1), np.float32)).numpy()
    assert np.isfinite(probabilities).all()
    if checkpoint_path(output).exists():  # killed mid-training: the best epoch so far loads as well
        assert load_bundle(checkpoint_path(output)).class_names == ["happy", "sad"]


def test_an_exception_in_a_callback_keeps_the_old_model_and_the_best_epoch_so_far(tiny_training, tiny_dataset,
                                                                                  tmp_path):
    result, _, _ = tiny_training
    output = tmp_path / "model.keras"
    for suffix in (".keras", ".json"):
        shutil.copy(result.model_path.with_suffix(suffix), output.with_suffix(suffix))
    old_bytes = output.read_bytes()

    def on_epoch(progress):
        if progress.epoch == 3:
            raise RuntimeError("the chart went away")

    with pytest.raises(RuntimeError, match="chart"):
        train(tiny_dataset, TrainConfig(epochs=10, batch_size=16, base_filters=8, init="scratch"), output,
              on_epoch=on_epoch)
    assert output.read_bytes() == old_bytes
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]  # no temporary files left
    checkpoint = load_bundle(checkpoint_path(output))
    assert 1 <= checkpoint.metadata["checkpoint"]["epoch"] <= 3 and checkpoint.class_names == ["happy", "sad"]
