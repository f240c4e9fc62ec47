"""A live video stream's faces: each face followed across frames by box overlap, its scores smoothed
so labels do not flicker, and the stream's frames per second. One `LiveStream` per visitor stream.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from emotion.faces import FaceBox
from emotion.predictor import FacePrediction, Predictor

SMOOTHING = 0.5  # weight of the newest frame in each face's moving average of scores (1: no smoothing)
MATCH_IOU = 0.3  # a face overlapping a followed face's last box this much is the same face
MISSED_FRAMES = 5  # a face the detector misses for more frames than this is forgotten
RESTART_SECONDS = 2.0  # a pause this long (the stream stopped and started again) starts afresh
FPS_WINDOW_SECONDS = 2.0  # frames per second are counted over this much recent time


@dataclass
class _Track:
    box: FaceBox
    scores: np.ndarray  # (classes,) smoothed probabilities, in the model's class order
    missed: int = 0  # frames since the detector last found this face


@dataclass(frozen=True)
class LiveFrame:
    predictions: list[FacePrediction]  # this frame's faces with smoothed labels, largest first
    frames_per_second: float  # over the last FPS_WINDOW_SECONDS; 0 until two frames arrived


class LiveStream:
    """Follows the faces of one stream of frames. Not thread-safe: one stream's frames come in order."""

    def __init__(self, predictor: Predictor, smoothing: float = SMOOTHING):
        self.predictor = predictor
        self.smoothing = smoothing
        self._tracks: list[_Track] = []
        self._frame_times: deque[float] = deque()

    def process(self, frame: np.ndarray, now: float | None = None) -> LiveFrame:
        """Classify the faces of an RGB uint8 frame, smoothing each face's scores with its past frames."""
        now = time.monotonic() if now is None else now
        if self._frame_times and now - self._frame_times[-1] > RESTART_SECONDS:
            self._tracks, self._frame_times = [], deque()
        self._frame_times.append(now)
        while now - self._frame_times[0] > FPS_WINDOW_SECONDS:
            self._frame_times.popleft()
        tracks = self._follow(self.predictor.predict_image(frame))
        predictions = [self.predictor.face_prediction(track.box, track.scores) for track in tracks]
        return LiveFrame(predictions, self.frames_per_second)

    @property
    def frames_per_second(self) -> float:
        if len(self._frame_times) < 2:
            return 0.0
        return (len(self._frame_times) - 1) / max(self._frame_times[-1] - self._frame_times[0], 1e-9)

    def _follow(self, predictions: list[FacePrediction]) -> list[_Track]:
        """Update the followed faces with this frame's; return the tracks seen in this frame, in its order."""
        names = self.predictor.class_names
        new_scores = [np.array([p.scores[name] for name in names], np.float32) for p in predictions]
        matches = _match_by_overlap([track.box for track in self._tracks], [p.box for p in predictions])
        seen = []
        for index, prediction in enumerate(predictions):
            if index in matches:
                track = self._tracks[matches[index]]
                track.box, track.missed = prediction.box, 0
                track.scores = self.smoothing * new_scores[index] + (1.0 - self.smoothing) * track.scores
            else:
                track = _Track(prediction.box, new_scores[index])
                self._tracks.append(track)
            seen.append(track)
        for track in self._tracks:
            if not any(track is other for other in seen):
                track.missed += 1
        self._tracks = [track for track in self._tracks if track.missed <= MISSED_FRAMES]
        return seen


def _match_by_overlap(old_boxes: list[FaceBox], new_boxes: list[FaceBox]) -> dict[int, int]:
    """{new index: old index}, greedily pairing the most overlapping boxes first (IoU above MATCH_IOU)."""
    pairs = sorted(((box_iou(old, new), new_index, old_index) for old_index, old in enumerate(old_boxes)
                    for new_index, new in enumerate(new_boxes)), reverse=True)
    matches: dict[int, int] = {}
    used_old = set()
    for overlap, new_index, old_index in pairs:
        if overlap < MATCH_IOU:
            break
        if new_index not in matches and old_index not in used_old:
            matches[new_index] = old_index
            used_old.add(old_index)
    return matches


def box_iou(first: FaceBox, second: FaceBox) -> float:
    """Intersection over union of two boxes, in [0, 1]."""
    overlap_width = max(0, min(first.x + first.width, second.x + second.width) - max(first.x, second.x))
    overlap_height = max(0, min(first.y + first.height, second.y + second.height) - max(first.y, second.y))
    overlap = overlap_width * overlap_height
    union = first.area + second.area - overlap
    return overlap / union if union > 0 else 0.0
