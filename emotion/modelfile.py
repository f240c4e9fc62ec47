"""Model files on disk: `<name>.keras` with its `<name>.json` metadata, written atomically.

A write goes to a temporary file in the same folder and is renamed into place, so a crash or a
stopped training never leaves a half-written model where a good one was.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import keras

from emotion.errors import ModelError
from emotion.preprocess import Preprocessing

DEFAULT_MODEL_PATH = Path(__file__).resolve().parent.parent / "models" / "happy_sad.keras"


@dataclass(frozen=True)
class ModelBundle:
    model: keras.Model
    metadata: dict
    path: Path

    @property
    def class_names(self) -> list[str]:
        return list(self.metadata["class_names"])

    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing(**self.metadata["preprocessing"])


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


def save_bundle(model: keras.Model, metadata: dict, model_path: Path) -> Path:
    """Write the model, then its metadata; each file appears whole or not at all."""
    model_path = Path(model_path)
    # An uncompiled copy: the optimizer's state (twice the weights, for AdamW) is no use to a predictor.
    # (`clone_model` would not do: Keras 3.15 compiles the clone with the original's optimizer.)
    inference_model = keras.Model.from_config(model.get_config())
    inference_model.set_weights(model.get_weights())
    with atomic_path(model_path) as temporary:
        inference_model.save(temporary)
    write_json(metadata, metadata_path(model_path))
    return model_path


def write_json(data: dict, path: Path) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def load_bundle(model_path: Path | str | None = None) -> ModelBundle:
    """Load a model and its metadata; every failure is one `ModelError` saying how to fix it."""
    model_path = Path(model_path) if model_path else DEFAULT_MODEL_PATH
    info_path = metadata_path(model_path)
    if not model_path.is_file():
        raise ModelError(f"model file {model_path} not found. Train one with `python train.py --data PATH` "
                         "or restore the bundled model with `git checkout models/`.")
    if not info_path.is_file():
        raise ModelError(f"{info_path} not found: a model needs the metadata JSON that train.py writes beside it.")
    try:
        metadata = json.loads(info_path.read_text())
        Preprocessing(**metadata["preprocessing"])
        class_names = list(metadata["class_names"])
    except (ValueError, KeyError, TypeError) as error:
        raise ModelError(f"{info_path} is not valid model metadata ({error}).") from error
    try:
        model = keras.saving.load_model(model_path, compile=False)
    except Exception as error:  # Keras raises many types for a damaged file
        raise ModelError(f"{model_path} could not be loaded; the file is damaged or not a Keras model "
                         f"({type(error).__name__}: {error}). Retrain it or restore it from git.") from error
    outputs = model.output_shape[-1]
    if outputs != (1 if len(class_names) == 2 else len(class_names)):
        raise ModelError(f"{model_path} has {outputs} outputs but its metadata lists {len(class_names)} classes.")
    return ModelBundle(model, metadata, model_path)
