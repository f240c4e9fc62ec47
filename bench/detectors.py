"""Compare face detectors on a folder of real photos: share of photos with a face, and latency.

    python bench/detectors.py ../shared/data/web-happy-sad-dev

OpenCV's Haar cascade is measured too when the installed OpenCV still has it (4.x; 5.x dropped it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emotion.errors import ImageError  # noqa: E402
from emotion.faces import FaceDetector  # noqa: E402
from emotion.images import is_image_path, read_image  # noqa: E402


def haar_detector():
    if not hasattr(cv2, "CascadeClassifier"):
        return None
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")

    def detect(image: np.ndarray):
        scale = 640 / max(image.shape[:2])  # the usual recipe: 640 px, grayscale
        small = cv2.resize(image, None, fx=scale, fy=scale) if scale < 1 else image
        gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        return cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))

    return detect


def measure(detect, images, repeats: int = 3) -> tuple[float, int, float]:
    found = faces = 0
    times = []
    for image in images:
        detect(image)  # warm-up
        for _ in range(repeats):
            started = time.perf_counter()
            result = detect(image)
            times.append(time.perf_counter() - started)
        found += len(result) > 0
        faces += len(result)
    return found / len(images), faces, statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    images = []
    for path in sorted(p for p in args.folder.rglob("*") if p.is_file() and is_image_path(p)):
        try:
            images.append(read_image(path))
        except ImageError:
            pass
    detectors = {
        "BlazeFace short-range (128 px)": FaceDetector(("short",)).detect,
        "BlazeFace full-range (192 px)": FaceDetector(("full",)).detect,
        "BlazeFace short + full, merged (ours)": FaceDetector(("short", "full")).detect,
    }
    haar = haar_detector()
    if haar:  # a row beside BlazeFace's, never instead of them
        detectors = {f"OpenCV {cv2.__version__} Haar (640 px)": haar, **detectors}
    print(f"{len(images)} photos from {args.folder}\n")
    print("| detector | photos with a face | faces found | median ms / photo |")
    print("| --- | ---: | ---: | ---: |")
    for name, detect in detectors.items():
        rate, faces, median = measure(detect, images)
        print(f"| {name} | {rate:.0%} | {faces} | {median:.1f} |")


if __name__ == "__main__":
    main()
