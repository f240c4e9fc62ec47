"""A training smoke run on a tiny generated dataset: it learns, reports, saves and reloads."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from conftest import tiny_training_config, write_class_folders
from emotion.config import TrainConfig
from emotion.errors import TrainingCancelled
from emotion.predictor import Predictor
from emotion import preparation, training
from emotion.training import train


def test_loss_is_finite_and_decreases(tiny_training):
    result, _, epochs = tiny_training
    losses = [epoch.loss for epoch in epochs]
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < 0.8 * losses[0]


def test_progress_arrives_per_batch_and_per_epoch(tiny_training):
    _, batches, epochs = tiny_training
    assert [epoch.epoch for epoch in epochs] == list(range(1, len(epochs) + 1))
    assert len(batches) == len(epochs) * batches[0].batches
    assert all(0.0 <= epoch.val_accuracy <= 1.0 and math.isfinite(epoch.val_loss) for epoch in epochs)


def test_files_are_written_with_metadata(tiny_training):
    result, _, _ = tiny_training
    for path in (result.model_path, result.metadata_path, result.curves_path, result.confusion_path):
        assert path.is_file() and path.stat().st_size > 0
    assert result.curves_path.read_bytes()[:4] == b"\x89PNG"
    metadata = json.loads(result.metadata_path.read_text())
    assert metadata["class_names"] == ["happy", "sad"]
    assert metadata["preprocessing"] == {"image_size": 48, "color_mode": "grayscale", "face_margin": 0.1}
    assert metadata["config"]["epochs"] == 12
    assert metadata["dataset"]["used"]["train"]["happy"] + metadata["dataset"]["used"]["val"]["happy"] == 40
    assert {"tensorflow", "keras", "numpy"} <= set(metadata["versions"])
    assert 0.0 <= metadata["metrics"]["validation"]["accuracy"] <= 1.0
    assert not list(result.model_path.parent.glob("*.checkpoint.*"))  # cleaned up


def test_a_small_dataset_trains_a_fixed_schedule_and_keeps_the_last_epoch(tiny_training):
    result, _, _ = tiny_training
    metadata = json.loads(result.metadata_path.read_text())
    # 68 training faces: 6 validation faces a class cannot pick an epoch, so every epoch runs.
    assert metadata["schedule"] == "fixed, last epoch kept"
    assert result.best_epoch == len(result.history["loss"]) == 12
    validation = metadata["metrics"]["validation"]
    assert validation["accuracy"] == pytest.approx(result.history["val_accuracy"][-1], abs=1 / validation["total"])
    low, high = validation["accuracy_95"]  # the figure says how uncertain it is
    assert low <= validation["accuracy"] <= high and high - low > 0.2


def test_a_large_dataset_keeps_its_most_accurate_epoch(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(training, "FIXED_SCHEDULE_BELOW", 10)  # as if the tiny dataset were FER-2013
    result = train(tiny_dataset, dataclasses.replace(tiny_training_config(), epochs=6), tmp_path / "best.keras")
    history = result.history
    scores = [(accuracy, -loss) for accuracy, loss in zip(history["val_accuracy"], history["val_loss"])]
    assert result.best_epoch == 1 + scores.index(max(scores))  # loss breaks ties in accuracy
    # The saved weights are that epoch's: measured again through the serving path, same accuracy.
    validation = json.loads(result.metadata_path.read_text())["metrics"]["validation"]
    assert validation["accuracy"] == pytest.approx(history["val_accuracy"][result.best_epoch - 1],
                                                   abs=1 / validation["total"])


def test_tiny_model_learns_the_task(tiny_training):
    result, _, _ = tiny_training
    assert result.evaluation.accuracy >= 0.75  # drawn smiles vs frowns are easy


def test_reload_gives_identical_predictions(tiny_training, tiny_dataset):
    result, _, _ = tiny_training
    images = sorted((tiny_dataset / "sad").glob("*.png"))[:5]
    first, second = Predictor.load(result.model_path), Predictor.load(result.model_path)
    for path in images:
        a = first.predict_source(path, faces="none")
        b = second.predict_source(path, faces="none")
        assert a == b and a["error"] is None


def test_stop_keeps_the_best_model_so_far(tmp_path):
    data = write_class_folders(tmp_path / "faces", per_class=12)
    epochs = []
    config = TrainConfig(epochs=20, batch_size=8, base_filters=8, init="scratch")
    # Stop once the second epoch has ended: training ends within a batch, the best epoch is kept.
    result = train(data, config, tmp_path / "m.keras", on_epoch=epochs.append, should_stop=lambda: len(epochs) >= 2)
    assert result.stopped_by_user and len(result.history["loss"]) == 2
    assert result.model_path.is_file()


def test_stop_within_an_epoch_leaves_that_epoch_out(tmp_path):
    data = write_class_folders(tmp_path / "faces", per_class=12)
    epochs, batches = [], []
    config = TrainConfig(epochs=20, batch_size=8, base_filters=8, init="scratch")
    # Stop after the first batch of the third epoch: Keras still ends that epoch, which must not count.
    result = train(data, config, tmp_path / "m.keras", on_batch=batches.append, on_epoch=epochs.append,
                   should_stop=lambda: bool(batches) and batches[-1].epoch == 3)
    assert [epoch.epoch for epoch in epochs] == [1, 2] and len(result.history["loss"]) == 2
    assert result.kept_epoch.startswith("epoch 2 of 2, the last")


def test_stop_before_the_first_epoch_writes_nothing(tmp_path):
    data = write_class_folders(tmp_path / "faces", per_class=12)
    with pytest.raises(TrainingCancelled):
        train(data, TrainConfig(epochs=3, batch_size=4, base_filters=8, init="scratch"), tmp_path / "m.keras",
              should_stop=lambda: True)
    assert not (tmp_path / "m.keras").exists()


def test_more_than_two_classes_train_a_softmax(tmp_path):
    data = write_class_folders(tmp_path / "faces", per_class=8, classes=("angry", "happy", "sad"))
    result = train(data, TrainConfig(epochs=1, batch_size=8, base_filters=8, init="scratch"), tmp_path / "m.keras")
    predictor = Predictor.load(result.model_path)
    assert predictor.class_names == ["angry", "happy", "sad"]
    scores = predictor.classify(np.zeros((2, 48, 48, 1), np.uint8))
    assert scores.shape == (2, 3) and np.allclose(scores.sum(axis=1), 1.0, atol=1e-5)


def test_long_trainings_compile_with_xla_and_still_learn(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(training, "XLA_MIN_IMAGES", 1)  # as if the tiny dataset were FER-2013
    compiled, real_compiled_training = [], training.compiled_training

    def compiled_training(*args):
        compiled.append(real_compiled_training(*args))
        return compiled[-1]

    monkeypatch.setattr(training, "compiled_training", compiled_training)
    result = train(tiny_dataset, tiny_training_config(), tmp_path / "xla.keras")
    assert compiled[0].model.jit_compile is True
    assert result.history["loss"][-1] < 0.8 * result.history["loss"][0]
    assert Predictor.load(result.model_path).class_names == ["happy", "sad"]


def test_short_trainings_skip_the_xla_compile(tiny_dataset):
    prepared = preparation.prepare_data(tiny_dataset, TrainConfig(init="scratch"))
    assert training.compiled_training(prepared, TrainConfig(epochs=2, init="scratch")).model.jit_compile is False


def test_the_plan_says_what_a_small_dataset_changes_and_the_metadata_records_it(tmp_path):
    data = write_class_folders(tmp_path / "faces", per_class=20)
    prepared = preparation.prepare_data(data, TrainConfig(faces="none"))
    asked = TrainConfig(epochs=10, faces="none", init="auto")
    plan = training.resolved_config(prepared, asked)
    # 34 training faces: the seven-emotion model, which knows happy and sad, for 5 epochs in batches of 16.
    assert (plan.init, plan.epochs, plan.batch_size) == ("emotions", 5, 16)
    assert training.describe_plan(asked, plan) == (
        "from emotions (auto: a small dataset learns best from a base model), 5 epochs (not 10: the base model "
        "already knows every class), batch 16 (not 128: so few images need smaller batches)")
    scratch = TrainConfig(epochs=2, faces="none", init="scratch", base_filters=8)
    assert training.describe_plan(scratch, training.resolved_config(prepared, scratch)) == (
        "from scratch, 2 epochs, batch 16 (not 128: so few images need smaller batches)")
    result = train(prepared, scratch, tmp_path / "m.keras")
    assert json.loads(result.metadata_path.read_text())["config"]["batch_size"] == 16  # as trained, for About
