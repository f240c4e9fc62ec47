"""A training run in a worker thread: progress as a stream of events, stop on request, one at a time.

A server (the web app) starts a `TrainingJob`, drains `events()` to update its charts, and calls
`stop()` from any thread. Only one job trains per process, so two visitors never split the CPU.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path
from typing import Iterator, Union

from emotion.config import TrainConfig
from emotion.errors import EmotionError
from emotion.preparation import PreparedData
from emotion.progress import BatchProgress, EpochProgress, TrainResult

log = logging.getLogger(__name__)

TrainingEvent = Union[BatchProgress, EpochProgress, None]  # None: nothing new within the poll interval

_TRAINING_SLOT = threading.BoundedSemaphore(1)  # one training per process
_FINISHED = object()


class TrainingBusy(EmotionError):
    """Another training is running in this process."""


class TrainingJob:
    def __init__(self, data: Path | PreparedData, config: TrainConfig, output_path: Path):
        self.data, self.config, self.output_path = data, config, Path(output_path)
        self.result: TrainResult | None = None
        self.error: BaseException | None = None
        self._events: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start training in a worker thread; raises `TrainingBusy` when another job is training."""
        if not _TRAINING_SLOT.acquire(blocking=False):
            raise TrainingBusy("another training is running on this server; try again when it has finished.")
        self._thread = threading.Thread(target=self._run, name="training", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the trainer to stop after the current batch; the best model so far is kept."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def done(self) -> bool:
        """True once the worker has ended (or when it never started)."""
        return self._thread is None or not self._thread.is_alive()

    def events(self, poll_seconds: float = 0.5) -> Iterator[TrainingEvent]:
        """Progress events until training ends; `None` every `poll_seconds` without news."""
        while True:
            try:
                event = self._events.get(timeout=poll_seconds)
            except queue.Empty:
                yield None
                continue
            if event is _FINISHED:
                return
            yield event

    def join(self, timeout: float | None = None) -> None:
        """Block until the worker thread ends (or `timeout` seconds pass)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def wait(self) -> TrainResult:
        """Block until the worker ends; the result, or the trainer's exception re-raised."""
        self.join()
        if self.error is not None:
            raise self.error
        return self.result

    def _run(self) -> None:
        try:
            from emotion.training import train  # TensorFlow: loaded by the first training, not by the app's start

            self.result = train(self.data, self.config, self.output_path, on_batch=self._events.put,
                                on_epoch=self._events.put, should_stop=self._stop.is_set)
        except BaseException as error:  # handed to whoever waits; a worker thread has nobody else to tell
            if not isinstance(error, EmotionError):
                log.exception("training failed")
            self.error = error
        finally:
            _TRAINING_SLOT.release()
            self._events.put(_FINISHED)
