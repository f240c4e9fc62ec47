"""Export to TFLite (LiteRT) for phones and edge devices, checked against the Keras model.

A checked export leaves a record beside it (`<model>.tflite.json`): the SHA-256 of the `.keras` file
it was made from and of the `.tflite` itself, and how far their outputs were apart. While both files
still match it, the predictor serves the export without loading Keras at all (see `runtime`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from emotion.errors import ModelError
from emotion.modelfile import ModelBundle, atomic_path, file_sha256, write_json

PARITY_TOLERANCE = 1e-4  # largest allowed difference between Keras and TFLite probabilities


def export_tflite(bundle: ModelBundle, output_path: Path | None = None) -> Path:
    """Write `<model>.tflite` (float32) beside the model unless `output_path` says otherwise, checked
    against the Keras model before it replaces anything (`check_parity`), and its record beside it
    (for a model read from a file: one built in memory has no file to vouch for)."""
    output_path = Path(output_path) if output_path else bundle.path.with_suffix(".tflite")
    if output_path.is_dir():  # a folder: the model's name in it
        output_path = output_path / bundle.path.with_suffix(".tflite").name
    if output_path.suffix.lower() != ".tflite":
        raise ModelError(f"{output_path}: the export's name must end in .tflite (the runtime looks for it by name).")
    record_path = export_record_path(output_path)
    try:
        output_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ModelError(f"cannot write the export to {output_path.parent} ({error.strerror}); pick another "
                         "--output.") from error
    with atomic_path(output_path) as temporary:
        bundle.model.export(str(temporary.with_suffix(".tflite")), format="litert", verbose=False)
        temporary.with_suffix(".tflite").replace(temporary)
        difference = check_parity(bundle, temporary, shown_as=f"{output_path} (not written)")
        record_path.unlink(missing_ok=True)  # the record of the export about to be replaced
    if bundle.sha256:
        write_json({"model": bundle.path.name, "model_sha256": bundle.sha256,
                    "tflite_sha256": file_sha256(output_path), "largest_difference": difference}, record_path)
    return output_path


def export_record_path(tflite_path: Path) -> Path:
    return Path(tflite_path).with_suffix(".tflite.json")


def export_record(tflite_path: Path) -> dict | None:
    """What `export_tflite` recorded of an export, or None."""
    try:
        record = json.loads(export_record_path(tflite_path).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def recorded_export(bundle: ModelBundle, tflite_path: Path) -> bool:
    """True when `tflite_path` was exported from this very model (the file as `bundle` read it) and
    checked (`export_tflite`), and has not changed since: it can then be served without loading Keras."""
    record = export_record(tflite_path)
    return (record is not None and bool(bundle.sha256) and record.get("model_sha256") == bundle.sha256
            and Path(tflite_path).is_file() and record.get("tflite_sha256") == file_sha256(tflite_path))


def tflite_probabilities(tflite_path: Path, pixels: np.ndarray) -> np.ndarray:
    """Raw model outputs of a .tflite file for a batch of uint8 face pixels."""
    interpreter = Interpreter(model_path=str(tflite_path))
    input_index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(input_index, pixels.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(input_index, pixels.astype(np.float32))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def check_parity(bundle: ModelBundle, tflite_path: Path, samples: int = 32, seed: int = 0,
                 shown_as: str | None = None) -> float:
    """Largest absolute difference between the two models' outputs on random faces; raises if too large,
    naming the export as `shown_as` (default: its path)."""
    preprocessing = bundle.preprocessing
    shape = (samples, preprocessing.image_size, preprocessing.image_size, preprocessing.channels)
    pixels = np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)
    keras_outputs = bundle.model(pixels.astype(np.float32), training=False).numpy()
    difference = float(np.max(np.abs(keras_outputs - tflite_probabilities(tflite_path, pixels))))
    if difference > PARITY_TOLERANCE:
        raise ModelError(f"{shown_as or tflite_path}: TFLite outputs differ from Keras by {difference:.2e} "
                         f"(allowed {PARITY_TOLERANCE:.0e}); do not ship this export.")
    return difference
