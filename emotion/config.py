"""Training configuration: the one place that holds every default.

The command line and the web app read their defaults from `TrainConfig`; the trainer saves it
next to the weights so a model always says how it was made.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from emotion.modelfile import BUNDLED_MODELS
from emotion.photos import FACE_MODES
from emotion.preprocess import Preprocessing

COLOR_MODES = ("grayscale", "rgb")
LABEL_SOURCES = ("auto", "folders", "votes")


@dataclass(frozen=True)
class TrainConfig:
    # Model input: square side in pixels and colour mode. FER-2013 is 48x48 grayscale.
    image_size: int = 48
    color_mode: str = "grayscale"
    # Added around a detected face box on each side, as a share of its size. 0.1 frames a face as
    # tightly as FER-2013 crops do (brows to chin; compared side by side on real photos).
    face_margin: float = 0.1

    # Optimisation.
    epochs: int = 80
    batch_size: int = 128
    learning_rate: float = 1e-3  # peak of the warm-up + cosine schedule
    weight_decay: float = 1e-4  # AdamW decoupled weight decay
    label_smoothing: float = 0.05
    # Epochs without a better validation epoch (accuracy, then loss) before training stops. FER-2013's
    # validation figures wander for 10 epochs while the cosine tail still improves the model.
    early_stopping_patience: int = 15

    # Data.
    classes: tuple[str, ...] = ()  # class folders to train; () trains every class folder
    # "auto": the dataset's crowd votes (`ferplus_<split>.csv`, see emotion/votes.py) when it has them,
    # else the folders; "folders": each image's folder is its label; "votes": the votes, required.
    labels: str = "auto"
    val_split: float = 0.15  # share of a DIR/<class>/* dataset held out for validation
    faces: str = "auto"  # "auto": detect faces, use face crops whole; "crop"; "none" (emotion/photos.py)
    augment: bool = True
    class_weighting: bool = True  # balance the loss when classes have different sizes

    # Model width: filters of the first convolution block, doubled in each following block.
    base_filters: int = 32
    dropout: float = 0.25

    # Where the convolutional layers start: "auto" (the bundled seven-emotion model for a dataset of a
    # few thousand faces or fewer, else "scratch"), "scratch", a bundled model's name, or a .keras path.
    init: str = "auto"
    # With a base model: `epochs` train the new head on the frozen base, then this many more fine-tune
    # the base's convolutions too, at a tenth of the learning rate. 0 keeps the base frozen.
    fine_tune_epochs: int = 10
    # When the base model has an output for every class (`happy` and `sad`, say: see
    # transfer.known_classes), the new output layer starts as a working classifier: it then trains at
    # most this many epochs and the base is not fine-tuned. 40 FER faces a class of four emotions:
    # 77.3% after 5 epochs, 76.6% after 20, 73.6% after 80 + 10 fine-tuning (78.4% before training).
    known_class_epochs: int = 5

    seed: int = 1337

    def __post_init__(self) -> None:
        if self.faces not in FACE_MODES:
            raise ValueError(f"faces must be one of {FACE_MODES}, not {self.faces!r}")
        if self.color_mode not in COLOR_MODES:
            raise ValueError(f"color_mode must be one of {COLOR_MODES}, not {self.color_mode!r}")
        if self.labels not in LABEL_SOURCES:
            raise ValueError(f"labels must be one of {LABEL_SOURCES}, not {self.labels!r}")
        object.__setattr__(self, "classes", tuple(self.classes))  # a list from JSON or the command line
        if not 16 <= self.image_size <= 256:
            raise ValueError(f"image_size must be between 16 and 256 pixels, not {self.image_size}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1")
        if self.fine_tune_epochs < 0:
            raise ValueError(f"fine_tune_epochs must be 0 or more, not {self.fine_tune_epochs}")
        if self.init not in ("auto", "scratch", *BUNDLED_MODELS) and not str(self.init).lower().endswith(".keras"):
            raise ValueError(f"init must be auto, scratch, {', '.join(BUNDLED_MODELS)} or the path of a .keras "
                             f"model, not {self.init!r}")
        if not 0.0 < self.learning_rate < 1.0:
            raise ValueError(f"learning_rate must be in (0, 1), not {self.learning_rate}")
        if not 0.0 < self.val_split < 0.9:
            raise ValueError(f"val_split must be in (0, 0.9), not {self.val_split}")

    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing(self.image_size, self.color_mode, self.face_margin)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})
