"""From a dataset (a folder or a zip) to the faces a training uses: found, decoded, cropped, split.

Importable without TensorFlow, so the web app can describe an upload before the trainer is loaded;
only the base model's metadata is read (through `emotion.transfer`, imported when a dataset is).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from emotion import datasets, votes
from emotion.config import TrainConfig
from emotion.errors import DatasetError

FEW_IMAGES = 10  # usable images a class below which users are warned


@dataclass
class PreparedData:
    class_names: list[str]
    train: datasets.FaceArrays
    val: datasets.FaceArrays
    test: datasets.FaceArrays | None
    summary: dict  # what was found, for the metadata and for people


def prepare_data(data_path: Path, config: TrainConfig, workdir: Path | None = None,
                 on_file: Callable[[int, int], None] | None = None) -> PreparedData:
    """Find, decode and crop a dataset, and split off validation when it has none.

    A zip is extracted under `workdir`; without one, into a temporary folder removed once the
    images are in memory.
    """
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="emotion-dataset-") as temporary:
            return prepare_data(data_path, config, Path(temporary), on_file)
    layout = datasets.open_dataset(Path(data_path), workdir)
    class_names = _chosen_classes(layout, config)
    # A base model decides the input size and colour mode, so the faces are cropped for it.
    from emotion import transfer  # it builds Keras models too: imported here, not with this module

    config = transfer.resolve_init(config, sum(len(files) for files in layout.splits["train"].values()))
    vote_files = {split: votes.find_vote_file(layout.root, split) for split in layout.splits}
    labels = "votes" if config.labels == "votes" or (config.labels == "auto" and vote_files["train"]) else "folders"
    if labels == "votes" and not vote_files["train"]:
        raise DatasetError(f"labels 'votes' needs {votes.VOTE_FILE_PATTERN.format(split='train')} beside the "
                           "dataset's split folders.")
    loaded, unvoted = {}, 0
    for split, files_by_class in layout.splits.items():
        targets = None
        if labels == "votes" and vote_files[split]:
            files_by_class, targets, missing_votes = votes.voted_files(
                files_by_class, class_names, votes.read_votes(vote_files[split]), validation=split != "train")
            unvoted += missing_votes
        arrays = datasets.load_faces(files_by_class, class_names, config.preprocessing, config.faces, on_file)
        if targets is not None:
            arrays.targets = np.stack([targets[path] for path in arrays.paths]) if arrays.paths else None
        loaded[split] = arrays
    train = loaded["train"]
    if "val" in loaded:
        val = loaded["val"]
    else:
        train, val = datasets.split_validation(train, config.val_split, config.seed)
    for split_name, arrays in (("training", train), ("validation", val)):
        missing = [name for index, name in enumerate(class_names) if not np.any(arrays.labels == index)]
        if missing:
            raise DatasetError(f"no usable {split_name} images for class(es) {', '.join(missing)}; each class needs "
                               "at least two readable images (with a face, when faces are detected).")
    summary = {
        "root": layout.name,
        "layout": layout.layout,
        "face_mode": config.faces,
        "faces_detected": sum(arrays.detected for arrays in loaded.values()),  # the rest were used whole
        "labels": labels,
        "files": layout.counts(),
        "used": {"train": _class_counts(train, class_names), "val": _class_counts(val, class_names)},
        "skipped": [{"file": _short(path, layout.root), "reason": reason}
                    for arrays in loaded.values() for path, reason in arrays.skipped],
        "no_face": [_short(path, layout.root) for arrays in loaded.values() for path in arrays.no_face],
    }
    if "test" in loaded:
        summary["used"]["test"] = _class_counts(loaded["test"], class_names)
    if labels == "votes":
        summary["unvoted"] = unvoted  # files the vote files do not cover, left out
    return PreparedData(class_names, train, val, loaded.get("test"), summary)


def faces_found(summary: dict) -> str:
    """How a prepared dataset's images became faces, from its summary: cropped by the detector, used whole,
    or some of each (under "auto")."""
    used = sum(sum(counts.values()) for counts in summary["used"].values())
    cropped = min(summary["faces_detected"], used)
    if summary["face_mode"] == "none":
        return "images used whole (face cropping off)"
    if cropped == used:
        return "faces cropped from photos"
    if cropped == 0:
        return "images used whole, as face crops"
    return f"faces cropped from {cropped} photos; {used - cropped} face crops used whole"


def skipped_reasons(summary: dict, shown: int = 10) -> list[str]:
    """Why each file the dataset's summary lists as unreadable was skipped, the first `shown` of them,
    then how many more."""
    skipped = summary["skipped"]
    more = [f"... and {len(skipped) - shown} more"] if len(skipped) > shown else []
    return [item["reason"] for item in skipped[:shown]] + more


def thin_classes(prepared: PreparedData) -> dict[str, int]:
    """Classes with fewer than FEW_IMAGES usable images (training and validation together): too few to
    learn from, or to trust a validation figure of. Class name -> images."""
    used = prepared.summary["used"]
    counts = {name: sum(split.get(name, 0) for split in (used["train"], used["val"])) for name in prepared.class_names}
    return {name: count for name, count in counts.items() if count < FEW_IMAGES}


def _chosen_classes(layout: datasets.DatasetLayout, config: TrainConfig) -> list[str]:
    """The classes to train: `config.classes` in the dataset's spelling, else every class folder."""
    if not config.classes:
        return layout.class_names
    spelling = {name.casefold(): name for name in layout.class_names}
    unknown = [name for name in config.classes if name.casefold() not in spelling]
    if unknown:
        raise DatasetError(f"the dataset has no class folder(s) {', '.join(unknown)}; "
                           f"it has {', '.join(layout.class_names)}.")
    return sorted(spelling[name.casefold()] for name in config.classes)


def _class_counts(arrays: datasets.FaceArrays, class_names: list[str]) -> dict[str, int]:
    counts = np.bincount(arrays.labels, minlength=len(class_names))
    return {name: int(count) for name, count in zip(class_names, counts)}


def _short(path: str, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return Path(path).name
