"""How well, and how fast, the trainer's defaults learn a user's small dataset.

    python bench/small_data.py ../shared/data/web-happy-sad-dev              # 5-fold cross-validation
    python bench/small_data.py ../shared/data/fer2013 --classes angry,happy,sad,surprise --per-class 40
    python bench/small_data.py DATA --init scratch                            # the same, from scratch

Each fold trains with `emotion.training.train`, exactly as `train.py` does (its own validation split
taken from the fold's training part), and is scored on the held-out part it never saw. With
`--per-class N`, each fold instead trains on N random images a class of the dataset's train/ split
and is scored on its val/ split (FER-2013's layout). Then one full training is timed from the dataset
folder to the downloadable model (face detection, training, saving, TFLite export).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emotion import datasets, transfer  # noqa: E402
from emotion.config import TrainConfig  # noqa: E402
from emotion.evaluation import Evaluation  # noqa: E402
from emotion.export import export_tflite  # noqa: E402
from emotion.modelfile import load_bundle  # noqa: E402
from emotion.preparation import PreparedData  # noqa: E402
from emotion.training import train  # noqa: E402


def folds_of(arrays: datasets.FaceArrays, folds: int, seed: int):
    """(train, test) index arrays of a stratified k-fold split."""
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(arrays.labels), int)
    for label in np.unique(arrays.labels):
        members = rng.permutation(np.flatnonzero(arrays.labels == label))
        fold_of[members] = np.arange(len(members)) % folds
    for fold in range(folds):
        yield fold_of != fold, fold_of == fold


def load(root: Path, split: str, class_names: list[str], config: TrainConfig) -> datasets.FaceArrays:
    layout = datasets.open_dataset(root)
    files = layout.splits[split]
    return datasets.load_faces({name: files[name] for name in class_names}, class_names, config.preprocessing,
                               config.faces)


def score(train_arrays, test_arrays, class_names, config, workdir: Path) -> float:
    train_part, val_part = datasets.split_validation(train_arrays, config.val_split, config.seed)
    prepared = PreparedData(class_names, train_part, val_part, test_arrays,
                            {"files": {"train": {"all": len(train_arrays.labels)}}, "root": "bench"})
    result = train(prepared, config, workdir / "fold.keras")
    return result.evaluation.accuracy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("--classes", help="comma-separated classes (default: all)")
    parser.add_argument("--per-class", type=int, help="train on this many random train/ images a class, test on val/")
    parser.add_argument("--folds", type=int, default=5, help="0: only the timed full training")
    parser.add_argument("--init", default=TrainConfig.init)
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--fine-tune-epochs", type=int, default=TrainConfig.fine_tune_epochs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-timing", action="store_true", help="skip the timed full training")
    args = parser.parse_args()

    layout = datasets.open_dataset(args.data)
    class_names = [name.strip() for name in args.classes.split(",")] if args.classes else layout.class_names
    train_files = args.per_class * len(class_names) if args.per_class else sum(
        len(layout.splits["train"][name]) for name in class_names)
    config = transfer.resolve_init(TrainConfig(init=args.init, epochs=args.epochs,
                                               fine_tune_epochs=args.fine_tune_epochs), train_files, class_names)
    print(f"init: {config.init}, epochs {config.epochs} + fine-tuning {config.fine_tune_epochs}")
    accuracies, tested = [], 0
    with tempfile.TemporaryDirectory() as workdir:
        if args.folds and args.per_class:
            pool = load(args.data, "train", class_names, config)
            test = load(args.data, "val", class_names, config)
            rng = np.random.default_rng(args.seed)
            for fold in range(args.folds):
                keep = np.zeros(len(pool.labels), bool)
                for label in range(len(class_names)):
                    keep[rng.choice(np.flatnonzero(pool.labels == label), args.per_class, replace=False)] = True
                accuracies.append(score(pool.select(keep), test, class_names, config, Path(workdir)))
                tested += len(test.labels)
                print(f"  draw {fold + 1}: {accuracies[-1]:.1%} on {len(test.labels)} val/ faces", flush=True)
        elif args.folds:
            arrays = load(args.data, "train", class_names, config)
            print(f"{len(arrays.labels)} images with a face of {train_files}")
            for fold, (train_mask, test_mask) in enumerate(folds_of(arrays, args.folds, args.seed)):
                accuracies.append(score(arrays.select(train_mask), arrays.select(test_mask), class_names, config,
                                        Path(workdir)))
                tested += int(test_mask.sum())
                print(f"  fold {fold + 1}: {accuracies[-1]:.1%} on {int(test_mask.sum())} held-out faces", flush=True)
        if accuracies:
            report(accuracies, tested)
        if not args.no_timing and not args.per_class:
            started = time.perf_counter()
            result = train(args.data, dataclasses.replace(config, init=args.init), Path(workdir) / "timed.keras")
            export_tflite(load_bundle(result.model_path))
            print(f"full training, dataset folder to downloadable model: {time.perf_counter() - started:.1f} s")
    return 0


def report(accuracies: list[float], tested: int) -> None:
    correct = round(np.mean(accuracies) * tested)
    low, high = Evaluation(["right", "wrong"], np.array([[correct, tested - correct], [0, 0]])).accuracy_interval()
    print(f"accuracy {np.mean(accuracies):.1%} (folds {min(accuracies):.1%} to {max(accuracies):.1%}; "
          f"95% interval {low:.1%} to {high:.1%} over {tested} predictions)")


if __name__ == "__main__":
    sys.exit(main())
