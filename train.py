"""Train the emotion CNN on a folder or zip of class folders.

    python train.py --data my_photos.zip --output models/mine.keras
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # less of TensorFlow's C++ chatter on stderr (its lines from
# before absl logging starts, oneDNN and CUDA notes, remain: TensorFlow 2.21 prints them whatever this says)

from tqdm import tqdm  # noqa: E402

from emotion.config import LABEL_SOURCES, TrainConfig  # noqa: E402
from emotion.errors import EmotionError  # noqa: E402
from emotion.photos import FACE_MODES  # noqa: E402
from emotion.transfer import SCRATCH_MIN_FILES  # noqa: E402
from emotion.preparation import faces_found, prepare_data, skipped_reasons, thin_classes  # noqa: E402
from emotion.progress import BatchProgress, EpochProgress  # noqa: E402
from emotion.training import checkpoint_path, describe_plan, resolved_config, train  # noqa: E402

DEFAULTS = TrainConfig()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=_HelpFormatter)
    parser.add_argument("--data", required=True, type=Path, help="dataset folder or .zip (class folders, "
                        "optionally under train/ test/ val/)")
    parser.add_argument("--epochs", type=int, default=DEFAULTS.epochs,
                        help=f"epochs to train; at most {DEFAULTS.known_class_epochs} when the base model (--init) "
                        "already knows every class")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size,
                        help="images a training step; smaller for a small dataset, so an epoch has a few steps")
    parser.add_argument("--learning-rate", type=float, default=DEFAULTS.learning_rate, help="AdamW's peak rate")
    parser.add_argument("--image-size", type=int, default=DEFAULTS.image_size, help="square model input, pixels")
    parser.add_argument("--color-mode", choices=("grayscale", "rgb"), default=DEFAULTS.color_mode,
                        help="the model's input colours, from scratch (a base model brings its own)")
    parser.add_argument("--val-split", type=float, default=DEFAULTS.val_split,
                        help="share held out for validation when the dataset has no val/ folder")
    parser.add_argument("--faces", choices=FACE_MODES, default=DEFAULTS.faces,
                        help="auto: detect the faces of photos, take images of at most 160 px for face crops; "
                        "crop: always detect; none: images already are faces")
    parser.add_argument("--no-augment", action="store_true", help="train without data augmentation")
    parser.add_argument("--init", default=DEFAULTS.init,
                        help="where training starts: auto (the seven-emotion model for datasets under "
                        f"{SCRATCH_MIN_FILES} images, else scratch), scratch, emotions, happy_sad, or a .keras path")
    parser.add_argument("--fine-tune-epochs", type=int, default=DEFAULTS.fine_tune_epochs,
                        help="with a base model: epochs that fine-tune its layers after the new head's")
    parser.add_argument("--classes", help="comma-separated class folders to train (default: all of them)")
    parser.add_argument("--labels", choices=LABEL_SOURCES, default=DEFAULTS.labels,
                        help="auto: crowd votes (ferplus_<split>.csv) when the dataset has them, else folders")
    parser.add_argument("--no-class-weights", action="store_true",
                        help="do not rebalance the loss between classes of different sizes")
    parser.add_argument("--output", type=Path, default=Path("models/model.keras"),
                        help="the model file to write; its .json, curves and confusion matrix go beside it")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed, help="for the split, shuffling and weights")
    return parser.parse_args(argv)


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The usage example as written, and each option's default where it has one to show."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.required or action.nargs == 0 or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


class TerminalProgress:
    """A tqdm bar per epoch, fed by the trainer's plain callbacks."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def on_batch(self, progress: BatchProgress) -> None:
        if self.bar is None:
            self.bar = tqdm(total=progress.batches, desc=f"epoch {progress.epoch}/{progress.epochs}",
                            unit="batch", leave=True, dynamic_ncols=True)
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{progress.loss:.4f}", acc=f"{progress.accuracy:.4f}", refresh=False)

    def on_epoch(self, progress: EpochProgress) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{progress.loss:.4f}", acc=f"{progress.accuracy:.4f}",
                                 val_loss=f"{progress.val_loss:.4f}", val_acc=f"{progress.val_accuracy:.4f}")
            self.bar.close()
            self.bar = None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                             image_size=args.image_size, color_mode=args.color_mode, val_split=args.val_split,
                             faces=args.faces, augment=not args.no_augment, seed=args.seed,
                             classes=tuple(name.strip() for name in (args.classes or "").split(",") if name.strip()),
                             labels=args.labels, class_weighting=not args.no_class_weights, init=args.init,
                             fine_tune_epochs=args.fine_tune_epochs)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    progress = TerminalProgress()
    try:
        print(f"reading {args.data} ...")
        prepared = prepare_data(args.data, config)
        summary = prepared.summary
        print(f"layout: {summary['layout']}, {faces_found(summary)}, labels: {summary['labels']}")
        for split, counts in summary["used"].items():
            print(f"  {split}: " + ", ".join(f"{name} {count}" for name, count in counts.items()))
        if summary["skipped"]:
            print(f"skipped {len(summary['skipped'])} file(s) that could not be read:")
            for reason in skipped_reasons(summary):
                print(f"  {reason}")
        for name, count in thin_classes(prepared).items():
            print(f"warning: class {name!r} has only {count} usable image(s); add more (30 or more a class "
                  "is a good start), or expect a model that guesses.")
        if summary["no_face"]:
            print(f"skipped {len(summary['no_face'])} photo(s) with no face found, e.g. {summary['no_face'][0]}")
        print(f"training {describe_plan(config, resolved_config(prepared, config))}")
        result = train(prepared, config, args.output, on_batch=progress.on_batch, on_epoch=progress.on_epoch)
    except KeyboardInterrupt:
        print("\ninterrupted; nothing was written over an existing model.", file=sys.stderr)
        if checkpoint_path(args.output).is_file():
            print(f"the best epoch so far is in {checkpoint_path(args.output)}", file=sys.stderr)
        return 130
    except EmotionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"\nstarted from: {result.started_from}; kept {result.kept_epoch}; metrics on {result.evaluated_on}:")
    print(result.evaluation.format_table())
    low, high = result.evaluation.accuracy_interval()
    print(f"accuracy {result.evaluation.accuracy:.1%}, 95% interval {low:.1%} to {high:.1%} "
          f"({result.evaluation.total} images: the fewer, the wider)")
    print(f"\nmodel:     {result.model_path}\nmetadata:  {result.metadata_path}\n"
          f"curves:    {result.curves_path}\nconfusion: {result.confusion_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
