"""A training job in a worker thread: events while it runs, stop on request, one job at a time."""

from __future__ import annotations

import pytest

from emotion.config import TrainConfig
from emotion.errors import TrainingCancelled
from emotion.jobs import TrainingBusy, TrainingJob
from emotion.preparation import prepare_data
from emotion.progress import BatchProgress, EpochProgress

CONFIG = TrainConfig(epochs=30, batch_size=8, base_filters=8, early_stopping_patience=30, init="scratch")


@pytest.fixture(scope="module")
def prepared(tiny_dataset):
    return prepare_data(tiny_dataset, CONFIG)


def test_stop_ends_training_within_a_batch_and_keeps_the_best_epoch(prepared, tmp_path):
    job = TrainingJob(prepared, CONFIG, tmp_path / "model.keras")
    job.start()
    with pytest.raises(TrainingBusy):
        TrainingJob(prepared, CONFIG, tmp_path / "other.keras").start()

    batches_after_stop = 0
    for event in job.events():
        if job.stopping and isinstance(event, BatchProgress):
            batches_after_stop += 1
        if isinstance(event, EpochProgress) and event.epoch == 2:
            job.stop()
    result = job.wait()

    assert result.stopped_by_user and result.best_epoch in (1, 2)
    assert len(result.history["loss"]) <= 3  # 30 epochs were asked for
    assert batches_after_stop <= 1
    assert result.model_path.is_file()


def test_a_failing_training_reraises_in_the_waiting_thread_and_frees_the_slot(prepared, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the output folder should be")
    job = TrainingJob(prepared, TrainConfig(epochs=1, batch_size=8, base_filters=8, init="scratch"),
                      blocked / "model.keras")
    job.start()
    list(job.events())
    with pytest.raises(OSError):
        job.wait()
    next_job = TrainingJob(prepared, TrainConfig(epochs=1, batch_size=8, base_filters=8, init="scratch"),
                           tmp_path / "ok.keras")
    next_job.start()  # the slot is free again: no TrainingBusy
    next_job.stop()
    with pytest.raises(TrainingCancelled):  # stopped within its first batch, so it ends quickly
        next_job.wait()
