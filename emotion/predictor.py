"""Prediction: load a model once, then classify every face of an image in one batched call.

The result per image is the stable JSON contract of `python -m emotion predict --json`:
`{"path", "faces": [{"box": [x, y, w, h], "label", "confidence", "uncertain", "scores": {label: p}}], "error"}`.
Confidences are calibrated with the temperature in the model's metadata, and a face whose confidence
is below the model's `uncertain_below` is marked uncertain.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from emotion.errors import EmotionError, ImageError
from emotion.faces import FaceBox, FaceDetector
from emotion.images import ImageSource
from emotion.calibration import temper
from emotion.modelfile import ModelBundle, read_bundle
from emotion.photos import PHOTOS_IN_FLIGHT, PhotoFaces, extract_faces, extract_many, faces_of_image
from emotion.runtime import class_probabilities, load_runtime


def verdict(label: str, confidence: float, uncertain: bool) -> str:
    """`happy 93%`, or `unsure (leans happy, 58%)` below the model's threshold: one wording for every output."""
    if uncertain:
        return f"unsure (leans {label}, {confidence:.0%})"
    return f"{label} {confidence:.0%}"


@dataclass(frozen=True)
class FacePrediction:
    box: FaceBox  # pixels of the upright image
    label: str
    confidence: float  # calibrated probability of `label`
    scores: dict[str, float]  # calibrated probability of every class
    uncertain: bool = False  # confidence below the model's threshold: the label is only a lean

    @property
    def verdict(self) -> str:
        return verdict(self.label, self.confidence, self.uncertain)

    def to_dict(self) -> dict:
        return {"box": self.box.as_list(), "label": self.label, "confidence": self.confidence,
                "uncertain": self.uncertain, "scores": dict(self.scores)}


@dataclass(frozen=True)
class PhotoPrediction:
    """A photo as classified: the (possibly reduced) image, and its faces in that image's pixels."""

    image: np.ndarray  # upright RGB uint8, at most photos.PHOTO_MAX_SIDE on its long side
    scale: float  # original size / image size
    predictions: list[FacePrediction]
    pixels: np.ndarray  # (faces, size, size, channels) uint8: each face as the model saw it

    def in_original_pixels(self) -> list[FacePrediction]:
        return [replace(prediction, box=prediction.box.scaled(self.scale)) for prediction in self.predictions]


class Predictor:
    """A loaded model plus a face detector. Thread-safe for concurrent `predict_*` calls."""

    def __init__(self, bundle: ModelBundle, detector: FaceDetector | None = None, runtime: str = "auto"):
        self.bundle = bundle
        self.class_names = bundle.class_names
        self.preprocessing = bundle.preprocessing
        self.calibration = bundle.calibration
        self._detector = detector
        self.runtime = load_runtime(bundle, runtime)
        size, channels = self.preprocessing.image_size, self.preprocessing.channels
        self.classify(np.zeros((1, size, size, channels), np.uint8))  # warm up now, not on the first request

    @classmethod
    def load(cls, model_path: Path | str | None = None, runtime: str = "auto") -> "Predictor":
        """Load a bundled model by name (`happy_sad`, `emotions`), a `.keras` path, or the default when None."""
        return cls(read_bundle(model_path), runtime=runtime)

    def warm_up(self) -> "Predictor":
        """Build the face detector and run the whole path once, so a server's first request is not slower."""
        self.predict_image(np.full((480, 640, 3), 128, np.uint8))
        return self

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            self._detector = FaceDetector()
        return self._detector

    def classify(self, pixels: np.ndarray) -> np.ndarray:
        """Calibrated class probabilities (faces, classes) for model input (faces, size, size, channels) uint8."""
        if len(pixels) == 0:
            return np.zeros((0, len(self.class_names)), np.float32)
        return temper(class_probabilities(self.runtime(pixels)), self.calibration.temperature)

    def predict_image(self, image: np.ndarray, faces: str = "auto") -> list[FacePrediction]:
        """Every face of an upright RGB uint8 image (grayscale and RGBA are taken too), largest first; []
        when no face is found. Raises ValueError for other arrays (floats, say)."""
        return self._predict(faces_of_image(image, self.preprocessing, faces, self.detector))

    def predict_photo(self, source: ImageSource, faces: str = "auto", name: str | None = None) -> PhotoPrediction:
        """Read and classify one photo file; raises `ImageError` when it cannot be read.

        The photo goes through `photos.extract_faces`, the path the dataset loader takes too.
        """
        return self._classified(extract_faces(source, self.preprocessing, faces, self.detector, name))

    def _classified(self, photo: PhotoFaces) -> PhotoPrediction:
        return PhotoPrediction(photo.image, photo.scale, self._predict(photo), photo.pixels)

    def _predict(self, photo: PhotoFaces) -> list[FacePrediction]:
        probabilities = self.classify(photo.pixels)
        return [self.face_prediction(box, row) for box, row in zip(photo.boxes, probabilities)]

    def predict_source(self, source: ImageSource, faces: str = "auto", name: str | None = None) -> dict:
        """Read and classify one image; the JSON-contract record (boxes in the file's own pixels),
        with any failure in `error`."""
        path = _source_name(source, name)
        try:
            return _record(path, self.predict_photo(source, faces, name=path))
        except EmotionError as error:
            return _error_record(path, error)

    def predict_sources(self, sources: Iterable[ImageSource], faces: str = "auto",
                        in_flight: int = PHOTOS_IN_FLIGHT) -> Iterator[dict]:
        """`predict_source` for each image, in order, `in_flight` photos at a time, each on a core with a
        face detector of its own (`photos.extract_many`): the quickest for many photos."""
        items, named = itertools.tee((source, _source_name(source, None)) for source in sources)
        for photo, (_, path) in zip(extract_many(items, self.preprocessing, faces, in_flight, self._classified), named):
            yield _error_record(path, photo) if isinstance(photo, ImageError) else _record(path, photo)

    def face_prediction(self, box: FaceBox, probabilities: np.ndarray) -> FacePrediction:
        """The prediction for a face from its calibrated class probabilities (classes,)."""
        best = int(np.argmax(probabilities))
        scores = {name: float(p) for name, p in zip(self.class_names, probabilities)}
        confidence = float(probabilities[best])
        return FacePrediction(box, self.class_names[best], confidence, scores,
                              uncertain=confidence < self.calibration.uncertain_below)


def _source_name(source: ImageSource, name: str | None) -> str:
    return name or (str(source) if isinstance(source, (str, Path)) else "uploaded image")


def _record(path: str, photo: PhotoPrediction) -> dict:
    return {"path": path, "faces": [prediction.to_dict() for prediction in photo.in_original_pixels()],
            "error": None}


def _error_record(path: str, error: EmotionError) -> dict:
    return {"path": path, "faces": [], "error": str(error)}
