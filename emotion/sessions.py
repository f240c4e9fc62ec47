"""One visitor's server-side state (folder, prepared dataset, training, models), and the store holding them all.

Nothing here knows about Gradio: a server maps its session ids onto `Session`s. A session that is
closed (the visitor left, or idled too long) deletes its folder and refuses anything new, so work
that finishes after the close (a dataset scan, a training) leaves nothing behind.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from emotion.config import TrainConfig
from emotion.errors import EmotionError
from emotion.jobs import TrainingJob
from emotion.preparation import PreparedData, prepare_data

log = logging.getLogger(__name__)

SESSION_ID = re.compile(r"[A-Za-z0-9_-]+")
MAX_IDLE_SECONDS = 2 * 3600  # a visitor who never said goodbye is forgotten after this
SWEEP_SECONDS = 600  # how often the store looks for them


class SessionClosed(EmotionError):
    """The visitor's session ended while their request was being served."""


class Session:
    """One visitor: a private folder, the dataset prepared from their upload, their training and models."""

    def __init__(self, session_id: str, folder: Path):
        self.id, self.folder = session_id, folder
        self.last_seen = time.monotonic()
        self.models: dict[str, Path] = {}  # models trained here, by the name the visitor sees
        self.model: str | None = None  # the model this visitor chose; None is the server's default
        self._prepared: tuple[tuple, PreparedData] | None = None  # (what it was made from, the data)
        self._job: TrainingJob | None = None
        # Trainings asked for (the Start button), from the click until their handler has finished, the
        # export included: waiting for the server's one training slot, cancelled while waiting, or started.
        self._requests: dict[int, str] = {}
        self._last_request = 0
        self._closed = False
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def busy(self) -> bool:
        """True while this visitor's training runs (an idle visitor's long training is not cut short)."""
        job = self._job
        return job is not None and not job.done

    @property
    def job(self) -> TrainingJob | None:
        return self._job

    @property
    def training_underway(self) -> bool:
        """True from the moment a training is asked for until its request has ended (waiting for its turn,
        training, exporting), unless it was cancelled while it waited; or while a training runs."""
        with self._lock:
            return any(state != "cancelled" for state in self._requests.values()) or self.busy

    def ask_training(self) -> int:
        """A training was asked for, and may wait its turn (the server trains one at a time): its request id,
        for `start_training` and `end_request`."""
        with self._lock:
            self._check_open()
            self._last_request += 1
            self._requests[self._last_request] = "waiting"
            return self._last_request

    def cancel_waiting_trainings(self) -> bool:
        """Stop pressed before the trainings asked for started: they will not. False when none was waiting."""
        with self._lock:
            waiting = [request for request, state in self._requests.items() if state == "waiting"]
            self._requests.update(dict.fromkeys(waiting, "cancelled"))
            return bool(waiting)

    def end_request(self, request: int | None) -> None:
        """The handler of a training asked for has finished, however it finished."""
        with self._lock:
            self._requests.pop(request, None)

    def prepare(self, dataset_path: Path | str, config: TrainConfig,
                on_file: Callable[[int, int], None] | None = None) -> PreparedData:
        """The dataset decoded and cropped under `config`, scanned once per upload and preprocessing.

        Raises `SessionClosed` when the session closed meanwhile; what the scan wrote is deleted then.
        """
        key = (str(dataset_path), config.preprocessing, config.faces, config.val_split, config.seed, config.classes,
               config.init)  # a base model brings its own input size
        with self._lock:
            self._check_open()
            if self._prepared and self._prepared[0] == key:
                return self._prepared[1]
            self._prepared = None  # one dataset per session in memory and on disk
        workdir = self.folder / "dataset"
        shutil.rmtree(workdir, ignore_errors=True)
        try:
            prepared = prepare_data(Path(dataset_path), config, workdir, on_file)
        except Exception:
            if not self._closed:
                raise
            prepared = None  # the close deleted the files under the scan: it failed because the visitor left
        finally:
            if self._closed:  # closed during the scan, which may have written after the folder was deleted
                shutil.rmtree(self.folder, ignore_errors=True)
        with self._lock:
            self._check_open()
            self._prepared = (key, prepared)
        return prepared

    @property
    def prepared(self) -> PreparedData | None:
        prepared = self._prepared
        return prepared[1] if prepared else None

    def start_training(self, prepared: PreparedData, config: TrainConfig, output_path: Path,
                       request: int | None = None) -> TrainingJob | None:
        """Start this visitor's training, or None when its `request` (`ask_training`) was cancelled while it
        waited its turn; raises `TrainingBusy` when the server trains already."""
        with self._lock:
            self._check_open()
            if self._requests.get(request) == "cancelled":
                return None
            if request in self._requests:
                self._requests[request] = "started"
            job = TrainingJob(prepared, config, output_path)
            job.start()
            self._job = job
        return job

    def end_training(self, job: TrainingJob) -> None:
        """Stop `job` if still running and wait for it (within a batch)."""
        job.stop()
        job.join()
        with self._lock:
            if self._job is job:
                self._job = None

    def new_model_path(self, dataset_path: Path | str) -> Path:
        """`models/<dataset name>-<n>.keras` in this session's folder, never reused (models are cached by path)."""
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(dataset_path).stem).strip("_")[:60] or "model"
        number = 1
        while (self.folder / "models" / f"{stem}-{number}.keras").exists() or f"{stem}-{number}" in self.models:
            number += 1
        return self.folder / "models" / f"{stem}-{number}.keras"

    def add_model(self, model_path: Path) -> str:
        """Keep a model trained here; returns the name it is listed under."""
        with self._lock:
            self._check_open()
            self.models[model_path.stem] = model_path
        return model_path.stem

    def close(self) -> None:
        """End the training, forget the data, delete the folder. Safe to call any number of times."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            job, self._job, self._prepared = self._job, None, None
            self.models = {}
        if job is not None:
            job.stop()
            job.join()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _check_open(self) -> None:
        if self._closed:
            raise SessionClosed("this session has ended; reload the page to start again.")


class SessionStore:
    """Every visitor's `Session`, behind one lock; closes those that leave or idle too long."""

    def __init__(self, root: Path | None = None, max_idle_seconds: float = MAX_IDLE_SECONDS,
                 on_close: Callable[[Session], None] | None = None):
        self._own_root = root is None  # a temporary root of its own, removed by close_all()
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="emotion-sessions-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_idle_seconds = max_idle_seconds
        self.on_close = on_close  # told after a session closed (the server drops its loaded models)
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._stop_sweeping = threading.Event()
        self._sweeper: threading.Thread | None = None

    def get(self, session_id: str) -> Session:
        """The visitor's session, created on first use; marks it as active."""
        if not session_id or not SESSION_ID.fullmatch(session_id):
            raise ValueError(f"not a usable session id: {session_id!r}")
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                folder = self.root / session_id
                folder.mkdir(exist_ok=True)
                session = self._sessions[session_id] = Session(session_id, folder)
            session.last_seen = time.monotonic()
            return session

    def find(self, session_id: str) -> Session | None:
        """The session if it exists, without creating or touching it."""
        with self._lock:
            return self._sessions.get(session_id)

    def ids(self) -> list[str]:
        with self._lock:
            return sorted(self._sessions)

    def close(self, session_id: str) -> None:
        """The visitor left: end their training and delete their files and data."""
        with self._lock:
            session = self._sessions.pop(session_id, None)
        if session is not None:
            self._close(session)

    def expire(self) -> list[str]:
        """Close sessions idle longer than `max_idle_seconds`, except those still training. Returns their ids."""
        now = time.monotonic()
        with self._lock:
            idle = [session for session in self._sessions.values()
                    if now - session.last_seen > self.max_idle_seconds and not session.training_underway]
            for session in idle:
                del self._sessions[session.id]
        for session in idle:
            log.info("session %s expired", session.id)
            self._close(session)
        return [session.id for session in idle]

    def close_all(self) -> None:
        """The server is stopping: stop the sweeper and close every session (and a temporary root)."""
        self.stop_sweeper()
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            self._close(session)
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def start_sweeper(self, every_seconds: float = SWEEP_SECONDS) -> None:
        """Look for idle sessions every `every_seconds` in a background thread, until `stop_sweeper()`."""
        if self._sweeper is not None:
            return
        self._stop_sweeping.clear()
        self._sweeper = threading.Thread(target=self._sweep, args=(every_seconds,), name="session-sweeper",
                                         daemon=True)
        self._sweeper.start()

    def stop_sweeper(self) -> None:
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            self._stop_sweeping.set()
            sweeper.join()

    def _sweep(self, every_seconds: float) -> None:
        while not self._stop_sweeping.wait(every_seconds):
            try:
                self.expire()
            except Exception:  # the sweeper must outlive any one failure
                log.exception("closing idle sessions failed")

    def _close(self, session: Session) -> None:
        session.close()
        if self.on_close is not None:
            self.on_close(session)
