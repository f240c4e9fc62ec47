"""Prediction: load a model once, then classify every face of an image in one batched call.

The result per image is the stable JSON contract of `python -m emotion predict --json`:
`{"path", "faces": [{"box": [x, y, w, h], "label", "confidence", "scores": {label: p}}], "error"}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from emotion.errors import EmotionError
from emotion.faces import FaceBox, FaceDetector
from emotion.images import ImageSource, read_image
from emotion.model import class_probabilities
from emotion.modelfile import ModelBundle, load_bundle
from emotion.preprocess import face_pixels, whole_image_box

PREDICT_FACE_MODES = ("auto", "none")  # detect every face, or treat the whole image as one face


@dataclass(frozen=True)
class FacePrediction:
    box: FaceBox  # pixels of the upright image
    label: str
    confidence: float  # probability of `label`
    scores: dict[str, float]  # probability of every class

    def to_dict(self) -> dict:
        return {"box": self.box.as_list(), "label": self.label, "confidence": self.confidence,
                "scores": dict(self.scores)}


class Predictor:
    """A loaded model plus a face detector. Thread-safe for concurrent `predict_*` calls."""

    def __init__(self, bundle: ModelBundle, detector: FaceDetector | None = None):
        self.bundle = bundle
        self.class_names = bundle.class_names
        self.preprocessing = bundle.preprocessing
        self._detector = detector
        size, channels = self.preprocessing.image_size, self.preprocessing.channels
        model = bundle.model
        # One traced graph for any batch size: no Keras `predict` loop, no retracing per call.
        self._infer = tf.function(lambda pixels: model(pixels, training=False), input_signature=[
            tf.TensorSpec((None, size, size, channels), tf.float32)])
        self.classify(np.zeros((1, size, size, channels), np.uint8))  # trace now, not on the first request

    @classmethod
    def load(cls, model_path: Path | str | None = None) -> "Predictor":
        """Load `model_path` (the bundled model when None)."""
        return cls(load_bundle(model_path))

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            self._detector = FaceDetector()
        return self._detector

    def classify(self, pixels: np.ndarray) -> np.ndarray:
        """Class probabilities (faces, classes) for model input (faces, size, size, channels) uint8."""
        if len(pixels) == 0:
            return np.zeros((0, len(self.class_names)), np.float32)
        outputs = self._infer(tf.convert_to_tensor(pixels, tf.float32)).numpy()
        return class_probabilities(outputs)

    def predict_image(self, image: np.ndarray, faces: str = "auto") -> list[FacePrediction]:
        """Every face of an upright RGB uint8 image, largest first; [] when `auto` finds none."""
        if faces not in PREDICT_FACE_MODES:
            raise ValueError(f"faces must be one of {PREDICT_FACE_MODES}, not {faces!r}")
        boxes = self.detector.detect(image) if faces == "auto" else [whole_image_box(image)]
        probabilities = self.classify(face_pixels(image, boxes, self.preprocessing))
        return [self._prediction(box, row) for box, row in zip(boxes, probabilities)]

    def predict_source(self, source: ImageSource, faces: str = "auto", name: str | None = None) -> dict:
        """Read and classify one image; the JSON-contract record, with any failure in `error`."""
        path = name or (str(source) if isinstance(source, (str, Path)) else "uploaded image")
        try:
            image = read_image(source, name=path)
            predictions = self.predict_image(image, faces)
        except EmotionError as error:
            return {"path": path, "faces": [], "error": str(error)}
        return {"path": path, "faces": [prediction.to_dict() for prediction in predictions], "error": None}

    def _prediction(self, box: FaceBox, probabilities: np.ndarray) -> FacePrediction:
        best = int(np.argmax(probabilities))
        scores = {name: float(p) for name, p in zip(self.class_names, probabilities)}
        return FacePrediction(box, self.class_names[best], float(probabilities[best]), scores)
