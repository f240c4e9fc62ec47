"""Serving many visitors: loaded models shared by all (each loaded once), uploads checked, one `Server`.

Nothing here knows about Gradio; each visitor's own state lives in `emotion.sessions`.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections import OrderedDict
from pathlib import Path

from emotion.errors import EmotionError, ModelError
from emotion.limits import MAX_IMAGE_UPLOAD_BYTES
from emotion.modelfile import BUNDLED_MODELS, DEFAULT_MODEL, read_bundle, resolve_model_path
from emotion.predictor import Predictor
from emotion.sessions import Session, SessionStore

log = logging.getLogger(__name__)


class PredictorCache:
    """Loaded predictors by model path, least recently used dropped first; the default is never dropped."""

    def __init__(self, default: Predictor, capacity: int = 4):
        self.default, self.capacity = default, capacity
        self._predictors: OrderedDict[str, Predictor] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model_path: Path | str | None) -> Predictor:
        """The predictor for a bundled model's name or a model path, loading it on first use; the default for None."""
        if model_path is None:
            return self.default
        key = str(resolve_model_path(model_path).resolve())
        if key == str(self.default.bundle.path.resolve()):
            return self.default
        with self._lock:
            if key in self._predictors:
                self._predictors.move_to_end(key)
                return self._predictors[key]
        # Loading happens outside the lock so one slow load never blocks predictions on other models.
        predictor = Predictor(read_bundle(key), detector=self.default.detector)
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


class UploadRefused(EmotionError):
    """An upload is missing or over its size limit; refused before it is read."""


def check_upload(path: Path | str | None, limit: int, what: str) -> None:
    """Raise `UploadRefused` when there is no file at `path` or it is larger than `limit` bytes."""
    if not path or not Path(path).is_file():
        raise UploadRefused(f"Send an {what} file." if what[0] in "aeiou" else f"Send a {what} file.")
    size = Path(path).stat().st_size
    if size > limit:
        raise UploadRefused(f"This {what} is {size / 1024**2:.1f} MB, over the {limit // 1024**2} MB limit. "
                            "Use a smaller file.")


class Server:
    """What a server holds for all its visitors: the loaded models, and every visitor's `Session`."""

    def __init__(self, model: Path | str | None = None, sessions_root: Path | None = None):
        default = Predictor.load(model).warm_up()
        self.predictors = PredictorCache(default)
        self.sessions = SessionStore(sessions_root, on_close=lambda session: self.predictors.forget_under(
            session.folder))
        # The models every visitor may pick: the served default first, then the bundled ones present.
        self.models = {default.bundle.path.stem: default.bundle.path}
        self.models |= {name: path for name, path in BUNDLED_MODELS.items() if path.is_file()}
        self._trainer_loader: threading.Thread | None = None
        self._trainer_lock = threading.Lock()

    @classmethod
    def load(cls, model: Path | str | None = None, sessions_root: Path | None = None) -> "Server":
        """A server on `model`, or on the bundled model (logged) when that one cannot be loaded."""
        if model:
            try:
                return cls(model, sessions_root)
            except ModelError as error:
                log.error("%s Starting with the bundled model instead.", error)
        return cls(None, sessions_root)

    def load_trainer_in_background(self) -> None:
        """Import the trainer (TensorFlow and Keras, about 4 s) on a thread of its own, once, so that a
        visitor's dataset and training do not wait for it; predictions never need it."""
        with self._trainer_lock:
            if self._trainer_loader is None:
                self._trainer_loader = threading.Thread(target=importlib.import_module, args=("emotion.training",),
                                                        name="load-trainer", daemon=True)
                self._trainer_loader.start()

    def model_choices(self, session: Session) -> list[str]:
        """What this visitor may pick: the server's models, then those they trained."""
        return [*self.models, *session.models]

    def predictor(self, session: Session, choice: str | None = None) -> Predictor:
        """The predictor for one of `model_choices(session)`; the default for None. Raises `ModelError`."""
        if not choice:
            return self.predictors.default
        path = self.models.get(choice) or session.models.get(choice)
        if path is None:
            raise ModelError(f"no model named {choice!r} here; pick one of {', '.join(self.model_choices(session))}.")
        return self.predictors.get(path)

    def predict_record(self, path: Path | str | None, name: str, model: str = DEFAULT_MODEL) -> dict:
        """The `predict --json` record of one uploaded image with a bundled model; every failure in "error"."""
        try:
            check_upload(path, MAX_IMAGE_UPLOAD_BYTES, "image")
            if model not in BUNDLED_MODELS or model not in self.models:
                raise ModelError(f"no bundled model named {model!r} on this server; use one of "
                                 f"{', '.join(choice for choice in self.models if choice in BUNDLED_MODELS)}.")
            return self.predictors.get(model).predict_source(path, name=name)
        except EmotionError as error:
            return {"path": name, "faces": [], "error": str(error)}
