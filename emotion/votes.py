"""Crowd votes as training targets: FER+ (ten annotators a face) in place of a face's folder label.

A dataset may carry `ferplus_<split>.csv` beside its split folders (columns `file`, then vote counts for
neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF). Each face's votes
become a probability distribution over the model's classes; faces the voters mostly could not place
among those classes are left out.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from emotion.errors import DatasetError

VOTE_FILE_PATTERN = "ferplus_{split}.csv"
# FER+ column -> the class-folder name FER-2013 uses for it; the rest (contempt, unknown, NF) map to none.
FERPLUS_CLASSES = {"neutral": "neutral", "happiness": "happy", "surprise": "surprise", "sadness": "sad",
                   "anger": "angry", "disgust": "disgust", "fear": "fear"}
# A face is trained on when at least this share of its votes falls on the model's classes (neutral
# included), and validated on when one class holds at least this share: the FER+ "clear majority".
MIN_VOTE_SHARE = 0.5


def find_vote_file(root: Path, split: str) -> Path | None:
    path = Path(root) / VOTE_FILE_PATTERN.format(split=split)
    return path if path.is_file() else None


def read_votes(path: Path) -> dict[str, dict[str, int]]:
    """File name -> {FER+ column: votes}, for every row of a FER+ vote file."""
    try:
        with open(path, newline="", encoding="utf-8") as file:
            reader = csv.DictReader(file)
            columns = [name for name in reader.fieldnames or [] if name != "file"]
            if "file" not in (reader.fieldnames or []) or not set(FERPLUS_CLASSES) <= set(columns):
                raise DatasetError(f"{path.name}: expected a `file` column and the FER+ vote columns "
                                   f"({', '.join(FERPLUS_CLASSES)}, ...).")
            return {row["file"]: {name: int(row[name] or 0) for name in columns} for row in reader}
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path.name}: not a readable vote file ({error}).") from error


def vote_distribution(votes: dict[str, int], class_names: list[str]) -> tuple[np.ndarray, float]:
    """A face's target over `class_names` (sums to 1, or all zeros), and the share of its votes it uses.

    When the model has no neutral class (a Happy/Sad model), a neutral vote counts as evenly unsure
    between the classes: a calm face teaches the model to be unsure, not to call it sad.
    """
    total = sum(votes.values())
    index = {name: position for position, name in enumerate(class_names)}
    weights = np.zeros(len(class_names), np.float64)
    for column, count in votes.items():
        name = FERPLUS_CLASSES.get(column)
        if name in index:
            weights[index[name]] += count
        elif name == "neutral":
            weights += count / len(class_names)
    used = float(weights.sum())
    if used == 0 or total == 0:
        return np.zeros(len(class_names), np.float32), 0.0
    return (weights / used).astype(np.float32), used / total


def majority(votes: dict[str, int], class_names: list[str]) -> int | None:
    """The class holding at least MIN_VOTE_SHARE of all a face's votes, or None (no clear majority)."""
    total = sum(votes.values())
    for column, count in votes.items():
        name = FERPLUS_CLASSES.get(column)
        if name in class_names and total and count / total >= MIN_VOTE_SHARE:
            return class_names.index(name)
    return None


def voted_files(files_by_class: dict[str, list[Path]], class_names: list[str], rows: dict[str, dict[str, int]],
                validation: bool) -> tuple[dict[str, list[Path]], dict[str, np.ndarray], int]:
    """Sort a split's files by their votes instead of their folders.

    Every file of every folder is a candidate (a folder is only the original label). For training a
    face needs MIN_VOTE_SHARE of its votes on the classes and trains towards its vote distribution; for
    validation it needs a clear majority, its target. Returns files by class (the target's most voted
    class), each file's target, and how many files had no votes at all.
    """
    by_class: dict[str, list[Path]] = {name: [] for name in class_names}
    targets: dict[str, np.ndarray] = {}
    unvoted = 0
    for path in sorted({path for files in files_by_class.values() for path in files}):
        votes = rows.get(path.name)
        if votes is None:
            unvoted += 1
            continue
        if validation:
            label = majority(votes, class_names)
            if label is None:
                continue
            target = np.eye(len(class_names), dtype=np.float32)[label]
        else:
            target, share = vote_distribution(votes, class_names)
            if share < MIN_VOTE_SHARE:
                continue
            label = int(np.argmax(target))
        by_class[class_names[label]].append(path)
        targets[str(path)] = target
    return by_class, targets, unvoted
