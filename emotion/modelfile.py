"""Model files on disk: `<name>.keras` carrying its metadata, with a `<name>.json` copy beside it.

A write goes to a temporary file in the same folder and is renamed into place, so a crash or a
stopped training never leaves a half-written model where a good one was. The metadata (class
names, preprocessing, metrics) travels inside the `.keras` archive, so the one rename that
replaces a model replaces its metadata with it; the `.json` beside it is for people and tools.

Keras (and TensorFlow under it, about 4 s to import) is loaded only when a model's Keras graph is
needed: serving a model with a checked LiteRT export reads its metadata alone (see `runtime`).
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import tempfile
import threading
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from emotion.errors import ModelError
from emotion.preprocess import Preprocessing

if TYPE_CHECKING:
    import keras

MODELS_FOLDER = Path(__file__).resolve().parent.parent / "models"
# The models that ship in models/, by the names `--model` and `Predictor.load` accept.
BUNDLED_MODELS = {"happy_sad": MODELS_FOLDER / "happy_sad.keras", "emotions": MODELS_FOLDER / "emotions.keras"}
DEFAULT_MODEL = "happy_sad"
DEFAULT_MODEL_PATH = BUNDLED_MODELS[DEFAULT_MODEL]
EMBEDDED_METADATA = "emotion.json"  # our entry in the .keras zip, beside Keras' own config and weights


@dataclass(frozen=True)
class ModelBundle:
    """A model file's metadata, and its Keras model, loaded on first use unless given (`loaded`).

    `sha256` is the hash of the file's bytes the metadata was read from ("" for a model built in
    memory): an export recorded against it (`export.recorded_export`) is of this very model.
    """

    metadata: dict
    path: Path
    loaded: "keras.Model | None" = field(default=None, repr=False, compare=False)
    sha256: str = ""
    # One model's load (and TensorFlow's import, about 4 s) never waits for another's.
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @property
    def model(self) -> "keras.Model":
        """The Keras model; raises `ModelError` when the file cannot be loaded, does not match its metadata,
        or has changed since the metadata was read."""
        if self.loaded is None:
            with self._lock:
                if self.loaded is None:
                    model = _load_keras_model(self.path, len(self.class_names), self.sha256)
                    object.__setattr__(self, "loaded", model)  # frozen: set once, under the lock
        return self.loaded

    @property
    def class_names(self) -> list[str]:
        return list(self.metadata["class_names"])

    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing(**self.metadata["preprocessing"])

    @property
    def calibration(self) -> "Calibration":
        return Calibration.from_metadata(self.metadata)


@dataclass(frozen=True)
class Calibration:
    """How a model's raw probabilities become the confidences users see (stored in its metadata).

    `temperature` divides the model's logits (fitted on validation data: above 1 tempers over-confident
    scores); a face whose calibrated confidence is below `uncertain_below` is reported as uncertain.
    """

    temperature: float = 1.0
    uncertain_below: float = 0.0

    @classmethod
    def from_metadata(cls, metadata: dict) -> "Calibration":
        values = metadata.get("calibration") or {}
        return cls(float(values.get("temperature", 1.0)), float(values.get("uncertain_below", 0.0)))

    def to_dict(self) -> dict:
        return {"temperature": self.temperature, "uncertain_below": self.uncertain_below}


def resolve_model_path(model: Path | str | None = None) -> Path:
    """A bundled model's name (`happy_sad`, `emotions`) or None for the default, else a path as given."""
    if model is None or str(model) == "":
        return DEFAULT_MODEL_PATH
    return BUNDLED_MODELS.get(str(model), Path(model))


def metadata_path(model_path: Path) -> Path:
    return Path(model_path).with_suffix(".json")


@contextmanager
def atomic_path(final_path: Path):
    """Yield a temporary path beside `final_path`; move it into place only if the block succeeds."""
    final_path = Path(final_path)
    final_path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{final_path.stem}-", suffix=final_path.suffix,
                                         dir=final_path.parent)
    os.close(handle)
    os.chmod(temporary, 0o644)  # mkstemp makes files private; models and plots are meant to be shared
    try:
        yield Path(temporary)
        os.replace(temporary, final_path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def save_bundle(model: "keras.Model", metadata: dict, model_path: Path) -> Path:
    """Write the model with its metadata inside in one atomic step, then the `.json` copy."""
    import keras

    model_path = Path(model_path)
    # An uncompiled copy: the optimizer's state (twice the weights, for AdamW) is no use to a predictor.
    # (`clone_model` would not do: Keras 3.15 compiles the clone with the original's optimizer.)
    inference_model = keras.Model.from_config(model.get_config())
    inference_model.set_weights(model.get_weights())
    with atomic_path(model_path) as temporary:
        inference_model.save(temporary)
        with zipfile.ZipFile(temporary, "a") as archive:
            archive.writestr(EMBEDDED_METADATA, _json_text(metadata))
    write_json(metadata, metadata_path(model_path))
    return model_path


def write_json(data: dict, path: Path) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(_json_text(data))


def _json_text(data: dict) -> str:
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def read_metadata(model_path: Path, contents: bytes | None = None) -> dict:
    """A model's metadata: from inside the `.keras` file (or its `contents`, when already read), else
    (older or foreign models) the `.json` beside it.

    Raises `ModelError` when there is none or it is not a JSON object.
    """
    model_path = Path(model_path)
    model_file = io.BytesIO(contents) if contents is not None else model_path
    text, source = _embedded_metadata(model_file), model_path
    if text is None:
        if contents is None and not model_path.is_file():
            raise ModelError(f"model file {model_path} not found.")
        source = metadata_path(model_path)
        if model_path.suffix.lower() == ".keras" and not zipfile.is_zipfile(model_file):
            raise ModelError(f"{model_path} is not a Keras model file (a .keras file is a zip); it may be damaged "
                             "or something else renamed. Train a model with train.py, or restore it from git.")
        if not source.is_file():
            raise ModelError(f"{source} not found: a model needs the metadata that train.py writes into it "
                             "(or beside it as JSON).")
        text = source.read_text()
    try:
        metadata = json.loads(text)
    except ValueError as error:
        raise ModelError(f"{source} holds no valid model metadata ({error}).") from error
    if not isinstance(metadata, dict):
        raise ModelError(f"{source} holds no valid model metadata (not a JSON object).")
    return metadata


def _embedded_metadata(model_file: Path | io.BytesIO) -> str | None:
    try:
        with zipfile.ZipFile(model_file) as archive:
            if EMBEDDED_METADATA in archive.namelist():
                return archive.read(EMBEDDED_METADATA).decode()
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError):
        pass  # a damaged model file is reported when Keras tries to load it
    return None


def load_bundle(model_path: Path | str | None = None) -> ModelBundle:
    """Load a model and its metadata; every failure is one `ModelError` saying how to fix it."""
    bundle = read_bundle(model_path)
    bundle.model  # noqa: B018 - loads and checks the Keras model now
    return bundle


def read_bundle(model_path: Path | str | None = None) -> ModelBundle:
    """A model's metadata, checked, with its Keras model left to load on first use (`ModelBundle.model`).

    A model's `.tflite` export or `.json` metadata stands for the `.keras` model beside it, which is
    what identifies the model (its export is used when it matches, see `runtime.load_runtime`).
    """
    model_path = resolve_model_path(model_path)
    if model_path.suffix.lower() in (".tflite", ".json"):
        # NAME.tflite.json is the record of NAME.tflite, itself NAME.keras's export.
        keras_path = Path(str(model_path)[: -len(".tflite.json")] if model_path.name.lower().endswith(".tflite.json")
                          else model_path).with_suffix(".keras")
        if not keras_path.is_file():
            kind = "TFLite export" if model_path.suffix.lower() == ".tflite" else "metadata"
            raise ModelError(f"{model_path} is a model's {kind}; the model itself is {keras_path.name}, which is not "
                             "beside it. Put the .keras, .json and .tflite files of a model in one folder and "
                             "pass the .keras file.")
        model_path = keras_path
    if not model_path.is_file():
        if not model_path.suffix and model_path.parent == Path("."):  # a name, not a path
            raise ModelError(f"no bundled model named {str(model_path)!r} and no such file; the bundled models are "
                             f"{', '.join(BUNDLED_MODELS)}, or pass the path of a .keras file.")
        raise ModelError(f"model file {model_path} not found. Train one with `python train.py --data PATH` "
                         "or restore the bundled model with `git checkout models/`.")
    # The hash and the metadata come from one reading of the file, so they always describe the same model.
    try:
        contents = model_path.read_bytes()
    except OSError as error:
        raise ModelError(f"model file {model_path} could not be read ({error}).") from error
    metadata = read_metadata(model_path, contents)
    try:
        Preprocessing(**metadata["preprocessing"])
        list(metadata["class_names"])
        Calibration.from_metadata(metadata)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ModelError(f"the metadata of {model_path} is not valid ({type(error).__name__}: {error}).") from error
    return ModelBundle(metadata, model_path, sha256=hashlib.sha256(contents).hexdigest())


def output_units(class_count: int) -> int:
    """How many outputs a model of `class_count` classes has: one sigmoid unit for two, else a softmax each."""
    return 1 if class_count == 2 else class_count


def file_sha256(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _load_keras_model(model_path: Path, class_count: int, sha256: str = "") -> "keras.Model":
    import keras

    importlib.import_module("emotion.model")  # registers the layers of ours (MergeClasses) models may hold

    try:
        model = keras.saving.load_model(model_path, compile=False)
    except Exception as error:  # Keras raises many types for a damaged file
        raise ModelError(f"{model_path} could not be loaded; the file is damaged or not a Keras model "
                         f"({type(error).__name__}: {error}). Retrain it or restore it from git.") from error
    if sha256 and file_sha256(model_path) != sha256:
        raise ModelError(f"{model_path} was replaced after its metadata was read (by a training writing to it?); "
                         "load it again once that is done.")
    outputs = model.output_shape[-1]
    if outputs != output_units(class_count):
        raise ModelError(f"{model_path} has {outputs} outputs but its metadata lists {class_count} classes.")
    return model
