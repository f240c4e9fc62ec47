"""Training curves and confusion-matrix figures as PNG files (matplotlib, no display needed).

Titles sit on the left: the web app shows each figure with its toolbar over the top right corner.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never open a window
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from emotion.evaluation import Evaluation  # noqa: E402


def plot_curves(history: dict[str, list[float]], path: Path) -> Path:
    """Loss and accuracy per epoch, train and validation, side by side."""
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = range(1, len(history.get("loss", [])) + 1)
    for axis, metric, title in ((loss_axis, "loss", "Loss"), (accuracy_axis, "accuracy", "Accuracy")):
        axis.plot(epochs, history.get(metric, []), label="train")
        axis.plot(epochs, history.get(f"val_{metric}", []), label="validation")
        axis.set_title(title, loc="left")
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_confusion(evaluation: Evaluation, path: Path, title: str = "Confusion matrix") -> Path:
    count = len(evaluation.class_names)
    figure, axis = plt.subplots(figsize=(1.2 * count + 2.5, 1.2 * count + 2))
    axis.imshow(evaluation.confusion, cmap="Blues")
    axis.set_xticks(range(count), evaluation.class_names, rotation=45, ha="right")
    axis.set_yticks(range(count), evaluation.class_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(f"{title}\naccuracy {evaluation.accuracy:.1%}", loc="left")
    threshold = evaluation.confusion.max() / 2 if evaluation.confusion.size else 0
    for row in range(count):
        for column in range(count):
            value = evaluation.confusion[row, column]
            axis.text(column, row, str(value), ha="center", va="center",
                      color="white" if value > threshold else "black")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
