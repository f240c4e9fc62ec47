"""Running a classifier on face pixels: LiteRT when the model has a checked `.tflite` export, else Keras.

On a 2-core CPU LiteRT (XNNPACK) classifies one face in 0.4 ms, several times faster than a traced
Keras call (see bench/run.py and the README), with the same outputs to within 1e-4. An export whose
record still matches both files (`export.recorded_export`) is used without importing TensorFlow,
which saves about 4 s of every start (the app's, the command line's).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from emotion.errors import ModelError
from emotion.export import check_parity, recorded_export
from emotion.modelfile import ModelBundle, output_units

log = logging.getLogger(__name__)

MAX_BATCH = 64  # larger batches run in chunks of this size
LITERT_THREADS = 2  # measured on 2 idle cores: the second thread halves the time of any batch, 1 to 64 faces


def class_probabilities(outputs: np.ndarray) -> np.ndarray:
    """Model outputs as (n, classes) probabilities; a sigmoid unit is P(class 1)."""
    outputs = np.asarray(outputs, dtype=np.float32)
    if outputs.shape[-1] == 1:
        return np.concatenate([1.0 - outputs, outputs], axis=-1)
    return outputs


class KerasRuntime:
    """The Keras model as one traced graph for any batch size: no `predict` loop, no retracing."""

    name = "keras"

    def __init__(self, bundle: ModelBundle):
        import tensorflow as tf

        size, channels = bundle.preprocessing.image_size, bundle.preprocessing.channels
        model = bundle.model
        self._infer = tf.function(lambda pixels: model(pixels, training=False), autograph=False, input_signature=[
            tf.TensorSpec((None, size, size, channels), tf.float32)])

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        return self._infer(np.asarray(pixels, np.float32)).numpy()


class LiteRTRuntime:
    """A `.tflite` export, with one interpreter per power-of-two batch size (each used by one call at a time)."""

    name = "litert"

    def __init__(self, tflite_path: Path, class_count: int | None = None):
        self.tflite_path = Path(tflite_path)
        self._interpreters: dict[int, tuple[Interpreter, threading.Lock]] = {}
        self._lock = threading.Lock()
        interpreter, _ = self._interpreter(1)  # fail now, not on the first request, if the file is unusable
        outputs = int(interpreter.get_output_details()[0]["shape"][-1])
        if class_count is not None and outputs != output_units(class_count):
            raise ModelError(f"{self.tflite_path} has {outputs} outputs but its model's metadata lists "
                             f"{class_count} classes; export the model again.")

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        pixels = np.asarray(pixels, np.float32)
        return np.concatenate([self._run(pixels[start:start + MAX_BATCH])
                               for start in range(0, len(pixels), MAX_BATCH)])

    def _run(self, pixels: np.ndarray) -> np.ndarray:
        count = len(pixels)
        bucket = 1 << (count - 1).bit_length()  # 1, 2, 4, ... 64: at most twice the work, few interpreters
        if bucket != count:
            pixels = np.concatenate([pixels, np.zeros((bucket - count, *pixels.shape[1:]), np.float32)])
        interpreter, lock = self._interpreter(bucket)
        with lock:
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], pixels)
            interpreter.invoke()
            outputs = interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()
        return outputs[:count]

    def _interpreter(self, batch: int) -> tuple[Interpreter, threading.Lock]:
        with self._lock:
            if batch not in self._interpreters:
                interpreter = Interpreter(model_path=str(self.tflite_path), num_threads=LITERT_THREADS)
                input_details = interpreter.get_input_details()[0]
                interpreter.resize_tensor_input(input_details["index"], (batch, *input_details["shape"][1:]))
                interpreter.allocate_tensors()
                self._interpreters[batch] = (interpreter, threading.Lock())
            return self._interpreters[batch]


def load_runtime(bundle: ModelBundle, runtime: str = "auto") -> KerasRuntime | LiteRTRuntime:
    """`auto`: LiteRT when `<model>.tflite` exists, is newer than the model and matches it; else Keras.

    An export recorded against this very model file (`export.recorded_export`) is taken as it is; any
    other is first compared with the Keras model on a few faces.
    """
    if runtime not in ("auto", "keras", "litert"):
        raise ValueError(f"runtime must be auto, keras or litert, not {runtime!r}")
    tflite_path = bundle.path.with_suffix(".tflite")
    if runtime == "keras":
        return KerasRuntime(bundle)
    recorded = recorded_export(bundle, tflite_path)
    if not recorded and not (tflite_path.is_file() and tflite_path.stat().st_mtime >= bundle.path.stat().st_mtime):
        if runtime == "litert":
            raise ModelError(f"{tflite_path} is missing or older than {bundle.path.name}; "
                             f"run `python -m emotion export --model {bundle.path}`.")
        return KerasRuntime(bundle)
    try:
        if not recorded:
            check_parity(bundle, tflite_path, samples=4)
        return LiteRTRuntime(tflite_path, len(bundle.class_names))
    except (ModelError, ValueError, RuntimeError) as error:  # or made by a newer converter than is installed
        if runtime == "litert":
            raise
        log.warning("not using %s (%s); falling back to Keras", tflite_path, error)
        return KerasRuntime(bundle)
