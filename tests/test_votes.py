"""Crowd votes (FER+) as targets: a calm face teaches a Happy/Sad model to be unsure, not to say sad."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from conftest import write_class_folders
from emotion import votes
from emotion.config import TrainConfig
from emotion.preparation import prepare_data

COLUMNS = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF"]


def ballot(**counts) -> dict[str, int]:
    return {column: counts.get(column, 0) for column in COLUMNS}


def test_a_neutral_vote_is_evenly_unsure_for_a_model_without_neutral():
    target, share = votes.vote_distribution(ballot(neutral=6, sadness=4), ["happy", "sad"])
    assert target == pytest.approx([0.3, 0.7]) and share == 1.0
    target, _ = votes.vote_distribution(ballot(neutral=10), ["happy", "sad"])
    assert target == pytest.approx([0.5, 0.5])


def test_a_seven_class_model_keeps_neutral_and_drops_unplaceable_votes():
    names = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    target, share = votes.vote_distribution(ballot(neutral=4, happiness=4, contempt=1, unknown=1), names)
    assert target[names.index("happy")] == pytest.approx(0.5) and target[names.index("neutral")] == pytest.approx(0.5)
    assert share == pytest.approx(0.8)
    assert votes.majority(ballot(happiness=5, neutral=5), names) in (names.index("happy"), names.index("neutral"))
    assert votes.majority(ballot(happiness=4, neutral=3, surprise=3), names) is None  # no clear majority


def write_votes(path: Path, rows: dict[str, dict[str, int]]) -> None:
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["file", *COLUMNS])
        for name, counts in rows.items():
            writer.writerow([name, *(counts[column] for column in COLUMNS)])


@pytest.fixture
def voted_dataset(tmp_path) -> Path:
    """FER-style train/ and val/ folders of happy, neutral and sad faces, with votes for most of them."""
    root = tmp_path / "fer"
    for split, count in (("train", 12), ("val", 6)):
        write_class_folders(root / split, per_class=count, classes=("happy", "neutral", "sad"))
        rows = {}
        for folder, column in (("happy", "happiness"), ("neutral", "neutral"), ("sad", "sadness")):
            for index, path in enumerate(sorted((root / split / folder).glob("*.png"))):
                path.rename(path.with_name(f"{split}_{folder}_{path.name}"))  # FER's names are unique
                if index < count - 2:  # the last two of each folder have no votes, as in FER+
                    rows[f"{split}_{folder}_{path.name}"] = ballot(**{column: 8, "unknown": 2})
        write_votes(root / f"ferplus_{split}.csv", rows)
    return root


def test_training_data_follows_the_votes(voted_dataset):
    prepared = prepare_data(voted_dataset, TrainConfig(classes=("happy", "sad"), init="scratch"))
    assert prepared.class_names == ["happy", "sad"] and prepared.summary["labels"] == "votes"
    train = prepared.train
    # Voted faces of all three folders train, neutral ones towards 50/50; unvoted faces are left out.
    assert len(train.labels) == 3 * 10 and prepared.summary["unvoted"] == 3 * 2 + 3 * 2
    neutral = np.array(["neutral" in Path(path).name for path in train.paths])
    assert np.allclose(train.targets[neutral], 0.5)
    assert np.allclose(train.targets[~neutral].max(axis=1), 1.0)
    # Validation keeps only faces with a clear majority among the model's classes: no neutral ones.
    assert len(prepared.val.labels) == 2 * 4
    assert not any("neutral" in Path(path).name for path in prepared.val.paths)


def test_folders_can_still_be_the_labels(voted_dataset):
    prepared = prepare_data(voted_dataset, TrainConfig(labels="folders", init="scratch"))
    assert prepared.class_names == ["happy", "neutral", "sad"] and prepared.train.targets is None
    assert len(prepared.train.labels) == 3 * 12
