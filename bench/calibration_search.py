"""Can any calibration of the Happy/Sad read-out meet both of its confidence targets?

    python bench/calibration_search.py [--fer ../shared/data/fer2013] [--web ../shared/data/web-happy-sad-dev]

The bundled Happy/Sad model is the seven-emotion model read out with half of P(neutral) to each
class, then a temperature. This searches a wider family on FER-2013 `val/` only: the share of
P(neutral) kept (0 = happy against sad alone, 1 = the bundled read-out), then a power map of the
logit, z -> a sign(z) |z|^g (g = 1 is a temperature), fitted by cross-entropy on the val/ faces with
a clear happy or sad FER+ majority, subject to at most `--neutral-cap` of val/neutral/ faces given
80% confidence or more. The web photos are only measured, never fitted on.

It then asks how low the web error can be on so few faces at all: if the bundled model were
perfectly calibrated on web photos, each face with confidence c would be right with probability c;
drawing that many times gives the error a perfect calibration would still show (its noise floor),
on the 90 faces and on resampled sets of other sizes.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from emotion import datasets, votes  # noqa: E402
from emotion.calibration import expected_calibration_error  # noqa: E402
from emotion.runtime import class_probabilities  # noqa: E402
from emotion.predictor import Predictor  # noqa: E402

HAPPY_SAD = ["happy", "sad"]
NEUTRAL_SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)
POWERS = np.linspace(0.3, 1.2, 19)
SCALES = np.exp(np.linspace(np.log(0.2), np.log(8.0), 80))
CONFIDENT = 0.8
NOISE_FLOOR_DRAWS = 2000
NOISE_FLOOR_SIZES = (90, 134, 300, 1000)  # web faces: this folder's, then sets of other sizes


def seven_emotion_scores(predictor: Predictor, files: dict[str, list[Path]], class_names: list[str]):
    """Uncalibrated seven-emotion probabilities (faces, 7), labels and the faces' pixels, through the
    served face path."""
    arrays = datasets.load_faces(files, class_names, predictor.preprocessing, "auto")
    return class_probabilities(predictor.runtime(arrays.pixels)), arrays.labels, arrays.pixels


def noise_floor(confidence: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """The calibration error of `size` faces drawn from `confidence`, each right with probability equal
    to its confidence (a perfectly calibrated model), NOISE_FLOOR_DRAWS times."""
    errors = []
    for _ in range(NOISE_FLOOR_DRAWS):
        drawn = rng.choice(confidence, size) if size != len(confidence) else confidence
        right = rng.random(size) < drawn
        # As two-class probabilities whose first class is the label when the face is right.
        errors.append(expected_calibration_error(np.stack([drawn, 1 - drawn], axis=1), np.where(right, 0, 1)))
    return np.asarray(errors)


def report_noise_floor(emotions: Predictor, pixels: np.ndarray, labels: np.ndarray) -> None:
    """The bundled Happy/Sad model's web calibration error, and what a perfect calibration of its
    confidences would still show on that many faces and on other numbers of them."""
    bundled = Predictor.load("happy_sad")
    assert bundled.preprocessing == emotions.preprocessing, "the faces were cropped for the seven-emotion model"
    scores = bundled.classify(pixels)
    confidence = scores.max(axis=1)
    rng = np.random.default_rng(0)
    resampled = [expected_calibration_error(scores[pick], labels[pick])
                 for pick in (rng.integers(0, len(labels), len(labels)) for _ in range(NOISE_FLOOR_DRAWS))]
    print(f"\nThe bundled model on the {len(labels)} web faces: calibration error "
          f"{expected_calibration_error(scores, labels):.1%} (95% bootstrap interval "
          f"{np.percentile(resampled, 2.5):.1%} to {np.percentile(resampled, 97.5):.1%}), mean confidence "
          f"{confidence.mean():.1%}, {np.mean(scores.argmax(axis=1) == labels):.1%} right.")
    print("The error a perfectly calibrated model with these confidences would still show:\n")
    print("| web faces | median | 90th percentile |")
    print("| ---: | ---: | ---: |")
    for size in NOISE_FLOOR_SIZES:
        floor = noise_floor(confidence, size, rng)
        print(f"| {size} | {np.median(floor):.1%} | {np.percentile(floor, 90):.1%} |")


def happy_probability(scores: np.ndarray, names: list[str], neutral_share: float) -> np.ndarray:
    happy, sad, neutral = (scores[:, names.index(name)] for name in ("happy", "sad", "neutral"))
    share = (happy + neutral_share / 2 * neutral) / (happy + sad + neutral_share * neutral)
    return np.clip(share, 1e-7, 1 - 1e-7)


def calibrated(p_happy: np.ndarray, scale: float, power: float) -> np.ndarray:
    logit = np.log(p_happy / (1 - p_happy))
    happy = 1 / (1 + np.exp(-scale * np.sign(logit) * np.abs(logit) ** power))
    return np.stack([happy, 1 - happy], axis=1)  # (faces, [happy, sad])


def cross_entropy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.log(np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, 1)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fer", type=Path, default=REPOSITORY.parent / "shared" / "data" / "fer2013")
    parser.add_argument("--web", type=Path, default=REPOSITORY.parent / "shared" / "data" / "web-happy-sad-dev")
    parser.add_argument("--neutral-cap", type=float, default=0.25, help="share of val/neutral/ at 80%%+ allowed")
    args = parser.parse_args()

    predictor = Predictor.load("emotions")
    names = predictor.class_names
    fer = datasets.open_dataset(args.fer)
    voted, _, _ = votes.voted_files(fer.splits["val"], HAPPY_SAD,
                                    votes.read_votes(votes.find_vote_file(fer.root, "val")), validation=True)
    val, val_labels, _ = seven_emotion_scores(predictor, voted, HAPPY_SAD)
    neutral, _, _ = seven_emotion_scores(predictor, {"neutral": fer.splits["val"]["neutral"]}, ["neutral"])
    web_layout = datasets.open_dataset(args.web)
    web, web_labels, web_pixels = seven_emotion_scores(predictor, web_layout.splits["train"], HAPPY_SAD)
    print(f"{len(val_labels)} clear happy/sad val/ faces, {len(neutral)} val/neutral/ faces, "
          f"{len(web_labels)} web faces (measured only)\n")
    print("| share of P(neutral) kept | a | g | val/neutral/ at 80%+ | val/ ECE | web ECE |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for neutral_share in NEUTRAL_SHARES:
        best = None
        for power in POWERS:
            for scale in SCALES:
                confident = np.mean(calibrated(happy_probability(neutral, names, neutral_share), scale, power)
                                    .max(axis=1) >= CONFIDENT)
                if confident > args.neutral_cap:
                    continue
                loss = cross_entropy(calibrated(happy_probability(val, names, neutral_share), scale, power),
                                     val_labels)
                if best is None or loss < best[0]:
                    best = (loss, scale, power, confident)
        if best is None:
            print(f"| {neutral_share:.2f} | – | – | over the cap at any setting | – | – |")
            continue
        _, scale, power, confident = best
        val_error = expected_calibration_error(calibrated(happy_probability(val, names, neutral_share), scale, power),
                                               val_labels)
        web_error = expected_calibration_error(calibrated(happy_probability(web, names, neutral_share), scale, power),
                                               web_labels)
        print(f"| {neutral_share:.2f} | {scale:.2f} | {power:.2f} | {confident:.1%} | {val_error:.1%} "
              f"| {web_error:.1%} |")

    report_noise_floor(predictor, web_pixels, web_labels)


if __name__ == "__main__":
    main()
