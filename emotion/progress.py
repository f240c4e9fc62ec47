"""What a training reports: its progress after each batch and epoch, and its result.

Plain data, importable without TensorFlow: the web app and `train.py` show it, the trainer
(`emotion.training`) makes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from emotion.evaluation import Evaluation


@dataclass(frozen=True)
class BatchProgress:
    epoch: int  # 1-based
    epochs: int
    batch: int  # 1-based within the epoch
    batches: int
    loss: float
    accuracy: float


@dataclass(frozen=True)
class EpochProgress:
    epoch: int  # 1-based
    epochs: int
    loss: float
    accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float  # wall time of this epoch


@dataclass
class TrainResult:
    model_path: Path
    metadata_path: Path
    curves_path: Path
    confusion_path: Path
    evaluation: Evaluation  # on the test split when there is one, else on validation
    evaluated_on: str
    history: dict[str, list[float]]
    best_epoch: int
    stopped_by_user: bool
    summary: dict = field(default_factory=dict)
    init: str = "scratch"  # where training started: scratch, a bundled model's name or a model path
    known_classes: dict[str, str] = field(default_factory=dict)  # class -> the base's class it started from
    last_epoch_kept: bool = False  # a small dataset's fixed schedule: its validation is too small to choose by
    plan: str = ""  # the training as planned, and what that changed of the settings asked for (describe_plan)

    @property
    def started_from(self) -> str:
        """Where training started, in words: `emotions, which already knew happy, sad`."""
        known = f", which already knew {', '.join(self.known_classes)}" if self.known_classes else ""
        return f"{self.init}{known}"

    @property
    def kept_epoch(self) -> str:
        """Which epoch's model was kept, and why: `epoch 22 of 40, the most accurate on validation`."""
        epoch = f"epoch {self.best_epoch} of {len(self.history['loss'])}"
        if self.last_epoch_kept:
            return f"{epoch}, the last: with few images, validation is too small to choose an epoch by"
        return f"{epoch}, the most accurate on validation"
