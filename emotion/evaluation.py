"""Classification metrics (accuracy, per-class precision / recall / F1, confusion matrix), and
the evaluation of a saved model on a labelled dataset."""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emotion.errors import DatasetError


@dataclass(frozen=True)
class Evaluation:
    class_names: list[str]
    confusion: np.ndarray  # (classes, classes) counts; rows are true labels, columns predictions

    @property
    def total(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / max(self.total, 1))

    def accuracy_interval(self, z: float = 1.96) -> tuple[float, float]:
        """The Wilson 95% interval of the accuracy: how far it may be off from the size of the sample alone."""
        n = self.total
        if n == 0:
            return 0.0, 1.0
        p = self.accuracy
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return max(0.0, centre - half), min(1.0, centre + half)

    def per_class(self) -> dict[str, dict[str, float]]:
        true_positives = np.diag(self.confusion).astype(float)
        support = self.confusion.sum(axis=1)
        predicted = self.confusion.sum(axis=0)
        precision = true_positives / np.maximum(predicted, 1)
        recall = true_positives / np.maximum(support, 1)
        f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
        return {
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                   "support": int(support[i])}
            for i, name in enumerate(self.class_names)
        }

    def to_dict(self) -> dict:
        low, high = self.accuracy_interval()
        return {"accuracy": self.accuracy, "accuracy_95": [low, high], "total": self.total,
                "per_class": self.per_class(), "confusion_matrix": self.confusion.tolist(),
                "class_names": list(self.class_names)}

    def format_table(self) -> str:
        """The metrics and confusion matrix as aligned plain text."""
        width = max(12, *(len(name) + 2 for name in self.class_names))
        lines = [f"{'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
        for name, row in self.per_class().items():
            lines.append(f"{name:<{width}}{row['precision']:>10.3f}{row['recall']:>10.3f}"
                         f"{row['f1']:>10.3f}{row['support']:>10d}")
        lines.append(f"{'accuracy':<{width}}{self.accuracy:>30.3f}{self.total:>10d}")
        lines.append("")
        lines.append("confusion matrix (rows: true, columns: predicted)")
        lines.append(" " * width + "".join(f"{name:>{width}}" for name in self.class_names))
        for name, row in zip(self.class_names, self.confusion):
            lines.append(f"{name:<{width}}" + "".join(f"{count:>{width}d}" for count in row))
        return "\n".join(lines)


def classify_all(classify, arrays, batch_size: int = 256) -> np.ndarray:
    """(faces, classes) probabilities of decoded faces (a `datasets.FaceArrays`), a batch at a time;
    `classify` maps a batch of pixels to probabilities, as `Predictor.classify` does."""
    starts = range(0, len(arrays.labels), batch_size) or [0]  # no faces: classify says how many classes
    return np.concatenate([classify(arrays.pixels[start : start + batch_size]) for start in starts])


def evaluate_arrays(classify, arrays, class_names: list[str]) -> Evaluation:
    """Metrics on decoded faces (a `datasets.FaceArrays`), classified by `classify` (see `classify_all`)."""
    probabilities = classify_all(classify, arrays)
    return evaluate_labels(arrays.labels, probabilities.argmax(axis=1), class_names)


def evaluate_labels(true_labels: np.ndarray, predicted_labels: np.ndarray, class_names: list[str]) -> Evaluation:
    """Metrics from integer labels (n,) in [0, classes)."""
    count = len(class_names)
    confusion = np.zeros((count, count), dtype=np.int64)
    np.add.at(confusion, (np.asarray(true_labels, int), np.asarray(predicted_labels, int)), 1)
    return Evaluation(list(class_names), confusion)


CONFIDENT = 0.8  # a label given with at least this confidence reads as a firm answer


@dataclass(frozen=True)
class DatasetEvaluation:
    evaluation: Evaluation  # against the folder labels
    model_path: Path
    split: str  # which part of the dataset was measured
    face_mode: str
    skipped: int  # unreadable files
    no_face: int  # photos where no face was found
    calibration_error: float  # expected calibration error of the confidences, against the folder labels
    uncertain: float  # share of faces the model marks uncertain
    votes: Evaluation | None = None  # against the crowd-vote majority, for faces with a clear one
    # Folders of classes the model lacks (neutral/, for a Happy/Sad model): folder -> faces, the share
    # given a label with at least CONFIDENT confidence, and their mean confidence.
    other_classes: dict[str, dict[str, float]] = field(default_factory=dict)


def evaluate_dataset(data_path: Path, model_path: Path | str | None = None, faces: str = "auto",
                     workdir: Path | None = None) -> DatasetEvaluation:
    """Measure a saved model on a dataset: its test split, else its val split, else all of it.

    Images go through the predictor's own path (`photos.extract_faces`). When the dataset has crowd
    votes for the split (`ferplus_<split>.csv`), faces are also measured against the vote majority,
    and folders of classes the model lacks (neutral/, for a Happy/Sad model) are left out of the
    folder-label figures. A zip is extracted under `workdir`, or a temporary folder removed afterwards.
    """
    from emotion import calibration, datasets, votes
    from emotion.predictor import Predictor

    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="emotion-dataset-") as temporary:
            return evaluate_dataset(data_path, model_path, faces, Path(temporary))
    predictor = Predictor.load(model_path)
    layout = datasets.open_dataset(Path(data_path), workdir)
    split = next(name for name in ("test", "val", "train") if name in layout.splits)
    vote_file = votes.find_vote_file(layout.root, split)
    by_lower = {name.lower(): name for name in predictor.class_names}
    unknown = [name for name in layout.class_names if name.lower() not in by_lower]
    if unknown and vote_file is None:
        raise DatasetError(f"the dataset has classes the model does not know: {', '.join(unknown)} "
                           f"(the model knows {', '.join(predictor.class_names)}).")
    files = {by_lower[name.lower()]: layout.splits[split].get(name, []) for name in layout.class_names
             if name.lower() in by_lower}
    arrays = datasets.load_faces(files, predictor.class_names, predictor.preprocessing, faces)
    if not len(arrays.labels):
        raise DatasetError(f"{data_path}: no readable images to evaluate.")
    probabilities = classify_all(predictor.classify, arrays)
    evaluation = evaluate_labels(arrays.labels, probabilities.argmax(axis=1), predictor.class_names)
    vote_evaluation = None
    if vote_file is not None:
        voted, _, _ = votes.voted_files(layout.splits[split], predictor.class_names, votes.read_votes(vote_file),
                                        validation=True)
        voted_arrays = datasets.load_faces(voted, predictor.class_names, predictor.preprocessing, faces)
        vote_evaluation = evaluate_arrays(predictor.classify, voted_arrays, predictor.class_names)
    other_classes = {}
    for name in unknown:
        other = datasets.load_faces({name: layout.splits[split].get(name, [])}, [name], predictor.preprocessing,
                                    faces)
        confidence = classify_all(predictor.classify, other).max(axis=1)
        if len(confidence):
            other_classes[name] = {"faces": len(confidence), "confident": float(np.mean(confidence >= CONFIDENT)),
                                   "mean_confidence": float(confidence.mean())}
    return DatasetEvaluation(
        evaluation, predictor.bundle.path, "all" if split == "train" else split, faces, len(arrays.skipped),
        len(arrays.no_face), calibration.expected_calibration_error(probabilities, arrays.labels),
        float(np.mean(probabilities.max(axis=1) < predictor.calibration.uncertain_below)), vote_evaluation,
        other_classes)
