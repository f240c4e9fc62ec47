"""The web app's words and tables: results of the `emotion` package turned into Markdown, frames and captions.

Plain functions of plain data (no Gradio), so each can be read and tested on its own; the tabs wire them in.
"""

import datetime
import re
import time
from pathlib import Path
from typing import Iterator

import pandas as pd

from emotion.jobs import TrainingJob
from emotion.modelfile import BUNDLED_MODELS, ModelBundle
from emotion.predictor import FacePrediction
from emotion.preparation import FEW_IMAGES, PreparedData, faces_found, skipped_reasons, thin_classes
from emotion.progress import BatchProgress, EpochProgress, TrainResult

README_PATH = Path(__file__).resolve().parent.parent / "README.md"
FACE_TABLE_HEADERS = ["face", "label", "confidence", "x", "y", "width", "height"]
THUMBNAILS_PER_CLASS = 6
SERIES_COLORS = {"training": "#0072B2", "validation": "#E69F00"}


# Photos.

def verdict(prediction: FacePrediction) -> str:
    """`happy 93%`, or `Unsure (leans happy, 58%)`: the wording the command line uses, as a caption."""
    text = prediction.verdict
    return text[:1].upper() + text[1:] if prediction.uncertain else text


def main_face_scores(prediction: FacePrediction) -> dict[str, float]:
    """The scores `gr.Label` shows, its headline the top entry: `Unsure (leans sad)` when the model is unsure."""
    if not prediction.uncertain:
        return dict(prediction.scores)
    return {(f"Unsure (leans {name})" if name == prediction.label else name): score
            for name, score in prediction.scores.items()}


def faces_frame(predictions: list[FacePrediction]) -> pd.DataFrame:
    rows = [[index + 1, verdict(p) if p.uncertain else p.label, f"{p.confidence:.0%}", *p.box.as_list()]
            for index, p in enumerate(predictions)]
    return pd.DataFrame(rows, columns=FACE_TABLE_HEADERS)


def prediction_message(predictions: list[FacePrediction], whole_image: bool) -> str:
    if not predictions:
        return ("**No face found in this photo.** Faces that are small, turned away or half hidden can be "
                "missed. Try a closer photo, or classify the whole image anyway.")
    main = predictions[0]
    looks = f"**{verdict(main)}**" if main.uncertain else f"**{main.label}** ({main.confidence:.0%})"
    if whole_image:
        return f"Whole image: {looks}."
    count = f"{len(predictions)} faces found" if len(predictions) > 1 else "One face found"
    return f"{count}. The largest looks {looks}." if not main.uncertain else f"{count}. The largest: {looks}."


def faces_alt_text(predictions: list[FacePrediction], whole_image: bool = False) -> str:
    """What the labelled photo shows, for screen readers: each face's verdict, largest first."""
    verdicts = "; ".join(verdict(p) for p in predictions)
    if whole_image and predictions:
        return f"The photo, classified as one face: {verdicts}."
    if not predictions:
        return "The photo; no face found."
    if len(predictions) == 1:
        return f"The photo with its face boxed and labelled: {verdicts}."
    return f"The photo with {len(predictions)} faces boxed and labelled, largest first: {verdicts}."


# Training progress.

def training_updates(job: TrainingJob) -> Iterator[tuple[str, dict | None, float | None]]:
    """What to show of a training as it runs: (status line, the history so far when an epoch ended,
    the share done after a batch), until the training ends."""
    history = {"epoch": [], "loss": [], "val_loss": [], "accuracy": [], "val_accuracy": []}
    started = time.monotonic()
    for event in job.events():
        if isinstance(event, EpochProgress):
            for key in history:
                history[key].append(getattr(event, key))
            yield epoch_status(event, started), history, None
        elif isinstance(event, BatchProgress):
            done = (event.epoch - 1 + event.batch / event.batches) / event.epochs
            yield batch_status(event, started, done), None, done
        elif job.stopping:
            yield "Stopping after this batch...", None, None


def curve_frame(history: dict, metric: str) -> pd.DataFrame:
    """Long format for `gr.LinePlot`: one row per epoch and series (training, validation)."""
    rows = [(epoch, value, series) for series, key in (("training", metric), ("validation", f"val_{metric}"))
            for epoch, value in zip(history["epoch"], history[key])]
    return pd.DataFrame(rows, columns=["epoch", "value", "series"])


def batch_status(event: BatchProgress, started: float, done: float) -> str:
    return (f"Epoch {event.epoch}/{event.epochs}, batch {event.batch}/{event.batches}, "
            f"{time_left(started, done)}. Loss {event.loss:.3f}, accuracy {event.accuracy:.1%}.")


def epoch_status(event: EpochProgress, started: float) -> str:
    done = event.epoch / event.epochs
    return (f"Epoch {event.epoch}/{event.epochs} done in {event.seconds:.0f} s, {time_left(started, done)}. "
            f"Validation accuracy {event.val_accuracy:.1%}, loss {event.val_loss:.3f}.")


def time_left(started: float, done: float) -> str:
    if done <= 0:
        return "estimating time left"
    seconds = (time.monotonic() - started) * (1 - done) / done
    return f"about {int(seconds // 60)} min {int(seconds % 60):02d} s left"


# Datasets and results.

def few_images(prepared: PreparedData) -> str:
    """A warning when a class has fewer than `preparation.FEW_IMAGES` usable images, else ""."""
    small = [f"{name} ({count})" for name, count in thin_classes(prepared).items()]
    if not small:
        return ""
    return (f"Few usable images for {', '.join(small)}: under {FEW_IMAGES} a class is hard to learn "
            "and its validation accuracy means little. Add images if you can (30 or more a class is a good start).")


def dataset_markdown(prepared: PreparedData) -> str:
    summary = prepared.summary
    lines = [f"**{summary['root']}**: {summary['layout']}, {faces_found(summary)}.", "",
             "| class | " + " | ".join(summary["used"]) + " |", "|---" * (len(summary["used"]) + 1) + "|"]
    for name in prepared.class_names:
        counts = [str(split_counts.get(name, 0)) for split_counts in summary["used"].values()]
        lines.append(f"| {name} | " + " | ".join(counts) + " |")
    if few_images(prepared):
        lines += ["", f"**Warning:** {few_images(prepared)}"]
    if summary["skipped"]:
        lines += ["", f"**Skipped {len(summary['skipped'])} file(s) that could not be read:**"]
        lines += [f"- {reason}" for reason in skipped_reasons(summary)]
    if summary["no_face"]:
        names = ", ".join(summary["no_face"][:10]) + (" ..." if len(summary["no_face"]) > 10 else "")
        lines += ["", f"**{len(summary['no_face'])} photo(s) with no face found, left out:** {names}"]
    lines += ["", "A few faces per class, as the model sees them:"]  # the gallery below, which has no label
    return "\n".join(lines)


def thumbnails(prepared: PreparedData) -> list[tuple]:
    pixels, labels = prepared.train.pixels, prepared.train.labels
    shown = []
    for index, name in enumerate(prepared.class_names):
        for row in pixels[labels == index][:THUMBNAILS_PER_CLASS]:
            shown.append((row[..., 0] if row.shape[-1] == 1 else row, name))
    return shown


def metrics_markdown(result: TrainResult) -> str:
    evaluation = result.evaluation
    low, high = evaluation.accuracy_interval()
    lines = [f"**{result.evaluated_on.capitalize()} accuracy: {evaluation.accuracy:.1%}** "
             f"(95% interval {low:.1%} to {high:.1%}) on {evaluation.total} images.", "",
             "| class | precision | recall | F1 | images |", "|---|---|---|---|---|"]
    for name, row in evaluation.per_class().items():
        lines.append(f"| {name} | {row['precision']:.1%} | {row['recall']:.1%} | {row['f1']:.3f} | {row['support']} |")
    return "\n".join(lines)


def model_markdown(bundle: ModelBundle) -> str:
    bundled = bundle.path.resolve() in {path.resolve() for path in BUNDLED_MODELS.values()}
    metadata = bundle.metadata
    validation = metadata.get("metrics", {}).get("validation", {})
    recalls = ", ".join(f"{name} {row['recall']:.1%}" for name, row in validation.get("per_class", {}).items())
    config = metadata.get("config", {})
    dataset = metadata.get("dataset", {})
    return "\n".join([
        "## Active model",
        f"- **File:** `{bundle.path.name}`" + (" (bundled)" if bundled else ""),
        f"- **Classes:** {', '.join(bundle.class_names)}",
        f"- **Input:** {bundle.preprocessing.image_size} x {bundle.preprocessing.image_size} "
        f"{bundle.preprocessing.color_mode} face crops",
        f"- **Trained on:** {dataset.get('root', 'unknown')}, {metadata.get('epochs_run', '?')} epochs "
        f"(best {metadata.get('best_epoch', '?')}), batch {config.get('batch_size', '?')}, "
        f"learning rate {config.get('learning_rate', '?')}, {_date(metadata.get('trained_at'))}",
        *([f"- **Read out of:** {metadata.get('init')}, with no training of its own: "
           + "; ".join(f"{new} = " + " + ".join(f"{share:g} x {old}" for old, share in parts.items())
                       for new, parts in metadata["read_out"].items())] if metadata.get("read_out") else []),
        f"- **Validation accuracy:** {validation['accuracy']:.1%} (recall: {recalls})" if validation else
        "- **Validation accuracy:** not recorded",
    ])


def _date(timestamp: str | None) -> str:
    """`22 November 2026, 05:06 UTC` from the metadata's ISO timestamp (UTC), as it is if it is not one."""
    try:
        moment = datetime.datetime.fromisoformat(timestamp).astimezone(datetime.timezone.utc)
    except (TypeError, ValueError):
        return timestamp or "date unknown"
    return f"{moment.day} {moment:%B %Y, %H:%M} UTC"


def readme() -> str:
    """The README up to its developers' part (performance and on), without the Spaces front matter and the
    page's own title, its links into the repository turned to plain text (they lead nowhere from the app)."""
    text = README_PATH.read_text(encoding="utf-8") if README_PATH.is_file() else "README.md is missing."
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.DOTALL)
    text = re.sub(r"\A\s*# [^\n]*\n", "", text).split("\n## Performance", 1)[0]
    return re.sub(r"\[([^\]]+)\]\((?!https?://)[^)]*\)", r"\1", text)
