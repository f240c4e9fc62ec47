"""The trainer: one function used by `train.py` and the web app alike.

It reports progress through plain callables, can be stopped between batches (keeping the best
weights so far), and writes the model, its metadata and its plots atomically.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from emotion import calibration, datasets, transfer
from emotion.config import TrainConfig
from emotion.errors import DatasetError, TrainingCancelled
from emotion.evaluation import classify_all, evaluate_arrays
from emotion.model import build_augmentation, build_model
from emotion.modelfile import ModelBundle, atomic_path, load_bundle, metadata_path, save_bundle
from emotion.plots import plot_confusion, plot_curves
from emotion.predictor import Predictor
from emotion.preparation import PreparedData, prepare_data
from emotion.progress import BatchProgress, EpochProgress, TrainResult

log = logging.getLogger(__name__)

# XLA makes a training step on 2 CPU cores 1.3x faster (FER-2013, batch 128: 335 -> 436 images/s, so
# 0.7 ms less an image) but compiles the step once, about 7 s: it pays off from about 10,000 images seen.
# Under XLA the last, smaller batch of an epoch is dropped (reshuffled each epoch), so it compiles once.
XLA_MIN_IMAGES = 10_000  # training faces x epochs
# Below this many training faces, the validation set is too small to pick an epoch by (6 faces a class
# for 40 photos a class): the schedule is fixed, every epoch runs, and the last one is kept.
FIXED_SCHEDULE_BELOW = 2000
MIN_STEPS = 8  # an epoch has at least this many batches ...
MIN_BATCH_SIZE = 16  # ... unless that would make them smaller than this
CHECKPOINT_SECONDS = 10  # on a fixed schedule, epochs take well under a second: save the checkpoint less often


def train(
    data: Path | PreparedData,
    config: TrainConfig,
    output_path: Path,
    on_batch: Callable[[BatchProgress], None] | None = None,
    on_epoch: Callable[[EpochProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train a model on `data` (a dataset path or prepared arrays) and write it to `output_path`."""
    prepared = data if isinstance(data, PreparedData) else prepare_data(Path(data), config)
    class_names = prepared.class_names
    asked, config = config, resolved_config(prepared, config)  # the metadata records these settings
    keras.utils.set_random_seed(config.seed)

    setup = compiled_training(prepared, config)
    model = setup.model
    output_path = Path(output_path)
    checkpoint = Checkpoint(checkpoint_path(output_path),
                            {**_inference_metadata(config, class_names), "config": config.to_dict()})
    keep_last = len(prepared.train.labels) < FIXED_SCHEDULE_BELOW
    progress = _ProgressCallback(setup.epochs, setup.steps_per_epoch, config.early_stopping_patience, on_batch,
                                 on_epoch, should_stop, checkpoint, keep_last)
    fit = dict(validation_data=setup.val_dataset, class_weight=setup.class_weight, callbacks=[progress],
               shuffle=False, verbose=0)  # the dataset shuffles itself, reseeded every epoch
    model.fit(setup.train_dataset, epochs=config.epochs, **fit)
    if setup.fine_tune_epochs and not model.stop_training:
        # Fine-tuning: the base's convolutions learn too, from a tenth of the learning rate.
        transfer.unfreeze_base(model)
        _compile(model, config, len(class_names), setup.steps_per_epoch, config.learning_rate / 10,
                 setup.fine_tune_epochs, setup.jit_compile)
        model.fit(setup.train_dataset, initial_epoch=config.epochs, epochs=setup.epochs, **fit)
    if progress.best_weights is None:
        raise TrainingCancelled("training stopped before the first epoch ended; nothing was saved.")
    model.set_weights(progress.best_weights)

    fitted, classify = _calibrated(model, _inference_metadata(config, class_names), output_path, prepared)
    known_classes = {} if config.init == "scratch" else transfer.known_classes(config.init, class_names)
    val_evaluation = evaluate_arrays(classify, prepared.val, class_names)
    evaluated_on, evaluation = "validation", val_evaluation
    if prepared.test is not None and len(prepared.test.labels):
        evaluated_on, evaluation = "test", evaluate_arrays(classify, prepared.test, class_names)

    metadata = {
        **_inference_metadata(config, class_names),
        "calibration": fitted,
        "config": config.to_dict(),
        "dataset": prepared.summary,
        "metrics": {"validation": val_evaluation.to_dict(),
                    **({"test": evaluation.to_dict()} if evaluated_on == "test" else {})},
        "init": config.init,
        "known_classes": known_classes,
        "schedule": "fixed, last epoch kept" if keep_last else "most accurate validation epoch kept",
        "best_epoch": progress.best_epoch,
        "epochs_run": len(progress.history["loss"]),
        "stopped_by_user": progress.stopped_by_user,
        "history": progress.history,
        "versions": _versions(),
        "trained_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    save_bundle(model, metadata, output_path)
    curves_path = output_path.with_name(f"{output_path.stem}_curves.png")
    confusion_path = output_path.with_name(f"{output_path.stem}_confusion.png")
    with atomic_path(curves_path) as temporary:
        plot_curves(progress.history, temporary)
    with atomic_path(confusion_path) as temporary:
        plot_confusion(evaluation, temporary, title=f"Confusion matrix, {evaluated_on}")
    checkpoint.remove()
    return TrainResult(output_path, metadata_path(output_path), curves_path, confusion_path, evaluation,
                       evaluated_on, progress.history, progress.best_epoch, progress.stopped_by_user,
                       prepared.summary, config.init, known_classes, keep_last, describe_plan(asked, config))


@dataclass
class CompiledTraining:
    """Everything `model.fit` needs; the trainer and the benchmark build it the same way."""

    model: keras.Model
    train_dataset: tf.data.Dataset  # shuffled, batched, augmented
    val_dataset: tf.data.Dataset
    class_weight: dict[int, float] | None
    steps_per_epoch: int
    fine_tune_epochs: int  # after config.epochs, with the base unfrozen; 0 without a base
    epochs: int  # in all: config.epochs + fine_tune_epochs
    jit_compile: bool  # the training step is compiled with XLA


def resolved_config(prepared: PreparedData, config: TrainConfig) -> TrainConfig:
    """`config` as a training on `prepared` runs it: `init` made concrete, with its base model's input
    and, when the base knows every class, its short schedule (`transfer.resolve_init`); and for a small
    dataset a smaller batch, so that an epoch still has a few steps to learn from."""
    config = transfer.resolve_init(config, _train_file_count(prepared), prepared.class_names)
    faces = len(prepared.train.labels)
    return dataclasses.replace(config, batch_size=min(config.batch_size, max(MIN_BATCH_SIZE,
                                                                             math.ceil(faces / MIN_STEPS))))


def describe_plan(asked: TrainConfig, plan: TrainConfig) -> str:
    """The training `resolved_config` made of the settings asked for, in words: what was changed, and why."""
    start = "from scratch" if plan.init == "scratch" else f"from {Path(plan.init).stem}"
    if asked.init == "auto":
        start += " (auto: " + ("a small dataset learns best from a base model)" if plan.init != "scratch"
                                else "a dataset this large learns from scratch)")
    epochs = f"{plan.epochs} epoch{'s' if plan.epochs != 1 else ''}"
    if plan.epochs < asked.epochs:
        epochs += f" (not {asked.epochs}: the base model already knows every class)"
    elif plan.fine_tune_epochs and plan.init != "scratch":
        epochs += f", then {plan.fine_tune_epochs} fine-tuning its layers"
    batch = f"batch {plan.batch_size}"
    if plan.batch_size < asked.batch_size:
        batch += f" (not {asked.batch_size}: so few images need smaller batches)"
    return f"{start}, {epochs}, {batch}"


def compiled_training(prepared: PreparedData, config: TrainConfig) -> CompiledTraining:
    """A fresh compiled model (AdamW, warm-up + cosine schedule, BCE or CCE) and its input pipelines.

    `config` is resolved first (`resolved_config`): "scratch" builds the CNN, anything else puts a new
    output layer on that model's frozen layers.
    """
    config = resolved_config(prepared, config)
    num_classes = len(prepared.class_names)
    from_scratch = config.init == "scratch"
    if from_scratch:
        model = build_model(config, num_classes)
    else:
        model = transfer.build_transfer_model(config, prepared.class_names)
    batch_size = config.batch_size
    fine_tune_epochs = 0 if from_scratch else config.fine_tune_epochs
    jit_compile = (len(prepared.train.labels) >= batch_size
                   and len(prepared.train.labels) * (config.epochs + fine_tune_epochs) >= XLA_MIN_IMAGES)
    steps_per_epoch = (len(prepared.train.labels) // batch_size if jit_compile
                       else math.ceil(len(prepared.train.labels) / batch_size))
    _compile(model, config, num_classes, steps_per_epoch, config.learning_rate, config.epochs, jit_compile)
    class_weight = _class_weights(prepared.train, num_classes) if config.class_weighting else None
    return CompiledTraining(model, _training_dataset(prepared.train, config, num_classes, batch_size, jit_compile),
                            _dataset(prepared.val, num_classes), class_weight, steps_per_epoch, fine_tune_epochs,
                            config.epochs + fine_tune_epochs, jit_compile)


def _compile(model: keras.Model, config: TrainConfig, num_classes: int, steps_per_epoch: int, learning_rate: float,
             epochs: int, jit_compile: bool) -> None:
    model.compile(
        optimizer=keras.optimizers.AdamW(_learning_rate_schedule(learning_rate, epochs, steps_per_epoch),
                                         weight_decay=config.weight_decay),
        loss=_loss(config, num_classes),
        metrics=[_accuracy(num_classes)],
        jit_compile=jit_compile,
    )
    # Built now, the optimizer's variables exist before `fit` traces its step: TensorFlow traces the
    # step once instead of twice (a second trace follows any trace that creates variables), 1 to 2 s less.
    model.optimizer.build(model.trainable_variables)


def _train_file_count(prepared: PreparedData) -> int:
    return sum(prepared.summary["files"]["train"].values())


def checkpoint_path(output_path: Path) -> Path:
    """Where a training into `output_path` keeps its best epoch so far."""
    output_path = Path(output_path)
    return output_path.with_name(f"{output_path.stem}.checkpoint.keras")


@dataclass
class Checkpoint:
    """The best epoch so far as a loadable model, so a training killed late still leaves its work."""

    path: Path
    metadata: dict  # what a predictor needs, and the config

    def save(self, model: keras.Model, epoch: int, val_accuracy: float, val_loss: float) -> None:
        save_bundle(model, {**self.metadata, "checkpoint": {"epoch": epoch, "val_accuracy": val_accuracy,
                                                            "val_loss": val_loss}}, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        metadata_path(self.path).unlink(missing_ok=True)


class _ProgressCallback(keras.callbacks.Callback):
    """Forwards Keras events to plain callables, honours `should_stop`, keeps the best weights.

    With `keep_last` (a fixed schedule for small datasets) every completed epoch replaces the kept
    one, nothing stops early, and the checkpoint is written at most every CHECKPOINT_SECONDS.
    """

    def __init__(self, epochs, batches, patience, on_batch, on_epoch, should_stop, checkpoint: Checkpoint,
                 keep_last: bool = False):
        super().__init__()
        self.epochs, self.batches, self.patience, self.keep_last = epochs, batches, patience, keep_last
        self.last_checkpoint = -math.inf
        self.on_batch, self.on_epoch, self.should_stop = on_batch, on_epoch, should_stop
        self.checkpoint = checkpoint
        self.history: dict[str, list[float]] = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
        self.best_weights, self.best_epoch, self.best_score = None, 0, (-math.inf, -math.inf)
        self.stopped_by_user = False
        self.cut_short = False  # the user stopped within an epoch: it is incomplete and not recorded
        self.epoch_started = time.monotonic()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.epoch_started = epoch + 1, time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        if self.on_batch:
            self.on_batch(BatchProgress(self.epoch, self.epochs, batch + 1, self.batches,
                                        float(logs.get("loss", math.nan)), float(logs.get("accuracy", math.nan))))
        self.cut_short = self._check_stop()

    def on_epoch_end(self, epoch, logs=None):
        if self.cut_short:  # Keras ends the interrupted epoch too; it never counts, in the history or the charts
            return
        logs = logs or {}
        for key in self.history:
            self.history[key].append(float(logs.get(key, math.nan)))
        val_loss, val_accuracy = self.history["val_loss"][-1], self.history["val_accuracy"][-1]
        # The best epoch is the most accurate on validation; validation loss breaks ties, which small
        # validation sets have many of.
        score = (val_accuracy, -val_loss)
        if self.keep_last or score > self.best_score:
            self.best_score, self.best_epoch = score, epoch + 1
            self.best_weights = self.model.get_weights()
            if not self.keep_last or time.monotonic() - self.last_checkpoint >= CHECKPOINT_SECONDS:
                self.checkpoint.save(self.model, epoch + 1, val_accuracy, val_loss)
                self.last_checkpoint = time.monotonic()
        if self.on_epoch:
            self.on_epoch(EpochProgress(epoch + 1, self.epochs, *(self.history[k][-1] for k in self.history),
                                        time.monotonic() - self.epoch_started))
        if not self.keep_last and epoch + 1 - self.best_epoch >= self.patience:
            log.info("early stopping: no better validation epoch for %d epochs", self.patience)
            self.model.stop_training = True
        self._check_stop()

    def _check_stop(self) -> bool:
        """Stop training when the user asked to; True then."""
        if self.should_stop and self.should_stop():
            self.stopped_by_user = True
            self.model.stop_training = True
        return self.stopped_by_user


def calibrate(classify: Callable[[np.ndarray], np.ndarray], prepared: PreparedData) -> dict:
    """Fit the temperature and the uncertain threshold on validation faces (`classify`: uncalibrated).

    Both are fitted against the validation labels (with crowd votes, each face's clear majority), so
    a confidence is the chance that the label is right, which is what the calibration error measures.
    Fitted against the vote distributions instead, calm faces included, the seven-emotion model's
    error on `val/` was 9.7%, against 0.8% this way: votes measure how people disagree on a face, not
    how often the model is right.
    """
    val = prepared.val
    raw = classify_all(classify, val)
    temperature = calibration.fit_temperature(raw, val.labels)
    calibrated = calibration.temper(raw, temperature)
    return {"temperature": temperature,
            "uncertain_below": calibration.uncertainty_threshold(calibrated, val.labels),
            "fitted_on": f"{len(val.labels)} validation faces, against their "
                         f"{'clear vote majority' if val.targets is not None else 'labels'}",
            "ece_before": calibration.expected_calibration_error(raw, val.labels),
            "ece_after": calibration.expected_calibration_error(calibrated, val.labels)}


def recalibrate(model_path: Path | str, data_path: Path) -> dict:
    """Fit a saved model's temperature and uncertain threshold again, on `data_path`'s validation faces
    (its val/ split, else a seeded share as in training), and store them in the model with the
    validation metrics they give; returns them.

    For a model trained before calibration existed, or to calibrate on photos like the ones it will see.
    Re-export its `.tflite` afterwards (`python -m emotion export`): the model file is newer then.
    """
    bundle = load_bundle(model_path)
    # init as "scratch" before the config is checked: a model read out of another records that one's path.
    config = dataclasses.replace(TrainConfig.from_dict({**bundle.metadata.get("config", {}), "init": "scratch"}),
                                 **bundle.preprocessing.to_dict(), classes=tuple(bundle.class_names))
    prepared = prepare_data(Path(data_path), config)
    if len(prepared.val.labels) < calibration.MIN_FACES_TO_FIT:
        raise DatasetError(f"{data_path}: only {len(prepared.val.labels)} validation faces, too few to fit a "
                           f"calibration (at least {calibration.MIN_FACES_TO_FIT}; the uncertain threshold needs "
                           f"{10 * calibration.MIN_FACES_IN_WINDOW}). The model is unchanged. Use a dataset with a "
                           "larger val/ folder.")
    uncalibrated = {key: value for key, value in bundle.metadata.items() if key != "calibration"}
    fitted, classify = _calibrated(bundle.model, uncalibrated, bundle.path, prepared)
    validation = evaluate_arrays(classify, prepared.val, bundle.class_names).to_dict()
    metrics = {**bundle.metadata.get("metrics", {}), "validation": validation}
    save_bundle(bundle.model, {**uncalibrated, "calibration": fitted, "metrics": metrics}, bundle.path)
    return fitted


def _calibrated(model: keras.Model, metadata: dict, path: Path, prepared: PreparedData) -> tuple[dict, Callable]:
    """Fit a model's calibration on `prepared`'s validation faces (`metadata`: without one); the fitted
    values and the calibrated serving path's `classify`, so the metrics saved are what users will get."""
    fitted = calibrate(Predictor(ModelBundle(metadata, path, model), runtime="keras").classify, prepared)
    return fitted, Predictor(ModelBundle({**metadata, "calibration": fitted}, path, model), runtime="keras").classify


def _inference_metadata(config: TrainConfig, class_names: list[str]) -> dict:
    """What a predictor needs to know about a model: its labels and how faces become its input."""
    return {"class_names": class_names, "preprocessing": config.preprocessing.to_dict()}


def _learning_rate_schedule(learning_rate: float, epochs: int, steps_per_epoch: int):
    # A short linear warm-up protects the fresh BatchNorm statistics; cosine decay to zero after.
    total_steps = epochs * steps_per_epoch
    warmup_steps = min(total_steps // 10, 2 * steps_per_epoch)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate / 10, decay_steps=max(1, total_steps - warmup_steps),
        warmup_target=learning_rate, warmup_steps=warmup_steps)


def _accuracy(num_classes: int) -> keras.metrics.Metric:
    """Share of faces whose most probable class is the target's (its most voted class, for vote targets)."""
    if num_classes == 2:
        return keras.metrics.MeanMetricWrapper(
            lambda target, output: keras.ops.cast(keras.ops.equal(target > 0.5, output > 0.5), "float32"),
            name="accuracy")
    return keras.metrics.CategoricalAccuracy(name="accuracy")


def _loss(config: TrainConfig, num_classes: int):
    if num_classes == 2:
        return keras.losses.BinaryCrossentropy(label_smoothing=config.label_smoothing)
    return keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)


def _targets(arrays: datasets.FaceArrays, num_classes: int) -> np.ndarray:
    """(n, 1) P(class_names[1]) for two classes, else (n, classes): the votes when given, else one-hot labels."""
    if arrays.targets is not None:
        targets = arrays.targets.astype(np.float32)
    else:
        targets = keras.utils.to_categorical(arrays.labels, num_classes).astype(np.float32)
    return targets[:, 1:2] if num_classes == 2 else targets


def _dataset(arrays: datasets.FaceArrays, num_classes: int) -> tf.data.Dataset:
    targets = _targets(arrays, num_classes)
    return tf.data.Dataset.from_tensor_slices((arrays.pixels, targets)).batch(256).prefetch(tf.data.AUTOTUNE)


def _training_dataset(arrays: datasets.FaceArrays, config: TrainConfig, num_classes: int, batch_size: int,
                      drop_remainder: bool) -> tf.data.Dataset:
    targets = _targets(arrays, num_classes)
    dataset = tf.data.Dataset.from_tensor_slices((arrays.pixels, targets))
    dataset = dataset.shuffle(len(targets), seed=config.seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if config.augment:
        augmentation = build_augmentation(config)
        dataset = dataset.map(lambda pixels, target: (augmentation(tf.cast(pixels, tf.float32), training=True), target),
                              num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _class_weights(arrays: datasets.FaceArrays, num_classes: int) -> dict[int, float]:
    """Weights that give each class the same share of the loss; vote targets count fractionally."""
    if arrays.targets is not None:
        counts = arrays.targets.sum(axis=0).astype(float)
    else:
        counts = np.bincount(arrays.labels, minlength=num_classes).astype(float)
    total = counts.sum()
    return {index: float(total / (num_classes * max(count, 1))) for index, count in enumerate(counts)}


def _versions() -> dict[str, str]:
    import cv2
    import PIL

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "opencv": cv2.__version__, "pillow": PIL.__version__}
