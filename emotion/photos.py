"""From an image file to face crops: the one path that training, evaluation and serving share.

A photo is read upright at most PHOTO_MAX_SIDE pixels long (a 12 MP JPEG decodes at a quarter of its
size), its faces are found, and each is cropped as the model expects. Whether to look for faces is
decided the same way everywhere, by the face mode:

- "auto": faces are detected, except in a face crop, which is used whole. A crop is an image of at
  most FACE_CROP_MAX_SIDE pixels (FER-2013's 48 x 48, say) in which the detector finds no face, or a
  face filling at least FACE_CROP_MIN_SHARE of its side; a small image with smaller faces is a
  thumbnail of a scene, and those faces are cropped as in any photo.
- "crop": always detect faces and crop them.
- "none": the whole image is one face.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from emotion.errors import ImageError
from emotion.faces import MIN_FACE_PIXELS, FaceBox, FaceDetector
from emotion.images import ImageSource, as_rgb, read_image_reduced
from emotion.preprocess import Preprocessing, face_pixels, whole_image_box

FACE_MODES = ("auto", "crop", "none")
PHOTO_MAX_SIDE = 1000  # pixels; faces over about 48 pixels stay over 48 pixels at this size
FACE_CROP_MAX_SIDE = 160  # pixels; "auto" takes images no larger than this for face crops
# On 1,000 FER-2013 val/ faces (48 x 48) the detector finds a face in 78%, filling a median 79% of the
# side and under half in 1.2%; in web-happy-sad-dev's 100 x 100 thumbnails, 15% to 45% but for one.
FACE_CROP_MIN_SHARE = 0.5
# Photos worked on at once by `extract_many`, one a core. On web-happy-sad-dev's 100 photos, 2 cores:
# 5.3 ms a photo, against 7.0 ms one photo at a time with the detector's models side by side.
PHOTOS_IN_FLIGHT = 2


@dataclass(frozen=True)
class PhotoFaces:
    """A photo as read and its faces: boxes in `image` pixels, largest first, and the model input for each."""

    image: np.ndarray  # upright RGB uint8, at most PHOTO_MAX_SIDE on its long side
    scale: float  # original size / image size
    boxes: list[FaceBox]
    pixels: np.ndarray  # (faces, size, size, channels) uint8
    detected: bool  # the boxes come from the face detector (else the whole image is the face)


def find_boxes(image: np.ndarray, faces: str, detector: FaceDetector | None) -> tuple[list[FaceBox], bool]:
    """The face boxes of an upright RGB image under a face mode, and whether the detector found them."""
    if faces not in FACE_MODES:
        raise ValueError(f"faces must be one of {FACE_MODES}, not {faces!r}")
    if faces == "none":
        return [whole_image_box(image)], False
    if faces == "auto" and max(image.shape[:2]) <= FACE_CROP_MAX_SIDE:
        if min(image.shape[:2]) < MIN_FACE_PIXELS:
            return [], False
        boxes = detector.detect(image)
        if boxes and max(boxes[0].width, boxes[0].height) < FACE_CROP_MIN_SHARE * min(image.shape[:2]):
            return boxes, True  # a thumbnail of a scene
        return [whole_image_box(image)], False
    return detector.detect(image), True


def extract_faces(source: ImageSource, preprocessing: Preprocessing, faces: str = "auto",
                  detector: FaceDetector | None = None, name: str | None = None) -> PhotoFaces:
    """Read one image and crop its faces; raises `ImageError` when it cannot be read."""
    image, scale = read_image_reduced(source, PHOTO_MAX_SIDE, name)
    return faces_of_image(image, preprocessing, faces, detector, scale)


def faces_of_image(image: np.ndarray, preprocessing: Preprocessing, faces: str = "auto",
                   detector: FaceDetector | None = None, scale: float = 1.0) -> PhotoFaces:
    """Crop the faces of an already decoded upright RGB image (a webcam frame, say)."""
    image = as_rgb(image)
    boxes, detected = find_boxes(image, faces, detector)
    return PhotoFaces(image, scale, boxes, face_pixels(image, boxes, preprocessing), detected)


def extract_many(sources: Iterable[tuple[ImageSource, str | None]], preprocessing: Preprocessing,
                 faces: str = "auto", in_flight: int = PHOTOS_IN_FLIGHT,
                 then: Callable[[PhotoFaces], Any] | None = None) -> Iterator[Any]:
    """`extract_faces` for each (source, name), in order, with the `ImageError` of an unreadable one
    in its place; `then`, if given, is applied to each photo read, on the same thread (the predictor
    classifies its faces there). `in_flight` photos are worked on at once, each on a thread with a
    face detector of its own whose models run one after the other: a whole photo a core, nothing
    handed between threads (decoding, resizing and LiteRT all release the GIL)."""
    local = threading.local()

    def extract(item: tuple[ImageSource, str | None]) -> Any:
        if faces != "none" and not hasattr(local, "detector"):
            local.detector = FaceDetector(side_by_side=False)
        try:
            photo = extract_faces(item[0], preprocessing, faces, getattr(local, "detector", None), item[1])
        except ImageError as error:
            return error
        return then(photo) if then else photo

    with ThreadPoolExecutor(in_flight, thread_name_prefix="extract") as pool:
        pending: deque = deque()
        for item in sources:
            pending.append(pool.submit(extract, item))
            if len(pending) > in_flight:  # read ahead only as far as the threads can work
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
