"""What a server needs to serve many visitors: a private folder per session, and loaded models.

Nothing here knows about Gradio; the web app maps its session ids onto these.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path

from emotion.modelfile import load_bundle
from emotion.predictor import Predictor

log = logging.getLogger(__name__)


class SessionFolders:
    """One temporary folder per session under a private root; removed on close or after idling."""

    def __init__(self, root: Path | None = None, max_idle_seconds: float = 2 * 3600):
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="emotion-sessions-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_idle_seconds = max_idle_seconds
        self._last_seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def folder(self, session_id: str) -> Path:
        """The session's folder, created on first use; marks the session as active."""
        if not session_id or not session_id.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"not a usable session id: {session_id!r}")
        with self._lock:
            self._last_seen[session_id] = time.monotonic()
            path = self.root / session_id
            path.mkdir(exist_ok=True)
            return path

    def session_of(self, path: Path | str) -> str | None:
        """The session whose folder holds `path`, or None for a path outside every session's folder."""
        try:
            parts = Path(path).resolve().relative_to(self.root.resolve()).parts
        except ValueError:
            return None
        return parts[0] if parts else None

    def touch(self, path: Path | str) -> None:
        """Mark the session whose folder holds `path` as active (its model is in use); other paths are ignored."""
        session_id = self.session_of(path)
        with self._lock:
            if session_id in self._last_seen:
                self._last_seen[session_id] = time.monotonic()

    def owns(self, session_id: str, path: Path | str) -> bool:
        """True when `path` lies inside the session's own folder."""
        return self.session_of(path) == session_id

    def close(self, session_id: str) -> None:
        """Delete the session's folder and everything in it."""
        with self._lock:
            self._last_seen.pop(session_id, None)
        shutil.rmtree(self.root / session_id, ignore_errors=True)

    def expire(self, keep: set[str] = frozenset()) -> list[str]:
        """Close sessions idle for longer than `max_idle_seconds` (visitors who never said goodbye).

        Sessions in `keep` (busy ones, such as a long training) stay. Returns the sessions closed.
        """
        now = time.monotonic()
        with self._lock:
            idle = [session for session, seen in self._last_seen.items()
                    if now - seen > self.max_idle_seconds and session not in keep]
        for session in idle:
            log.info("session %s expired", session)
            self.close(session)
        return idle

    def sessions(self) -> list[str]:
        with self._lock:
            return sorted(self._last_seen)


class PredictorCache:
    """Loaded predictors by model path, least recently used dropped first; the default is never dropped."""

    def __init__(self, default: Predictor, capacity: int = 4):
        self.default, self.capacity = default, capacity
        self._predictors: OrderedDict[str, Predictor] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model_path: Path | str | None) -> Predictor:
        """The predictor for `model_path`, loading it on first use; the default for None."""
        if model_path is None:
            return self.default
        key = str(Path(model_path).resolve())
        with self._lock:
            if key in self._predictors:
                self._predictors.move_to_end(key)
                return self._predictors[key]
        # Loading happens outside the lock so one slow load never blocks predictions on other models.
        predictor = Predictor(load_bundle(key), detector=self.default.detector)
        with self._lock:
            self._predictors[key] = predictor
            while len(self._predictors) > self.capacity:
                self._predictors.popitem(last=False)
        return predictor

    def forget_under(self, folder: Path | str) -> None:
        """Drop the predictors of every model inside `folder` (a session's, when it ends)."""
        folder = Path(folder).resolve()
        with self._lock:
            for key in [key for key in self._predictors if Path(key).is_relative_to(folder)]:
                del self._predictors[key]
