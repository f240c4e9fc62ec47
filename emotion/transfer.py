"""Transfer learning: start a new classifier from a trained model's convolutional layers.

A user's dataset of tens of photos a class is far too small to learn what a face's expression looks
like; the bundled seven-emotion model has learnt that from 23,000 faces. Its layers up to the pooled
features become a frozen base under a new head for the user's classes, and may then be fine-tuned at
a low learning rate.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
from keras import layers

from emotion.config import TrainConfig
from emotion.errors import ModelError
from emotion.model import MergeClasses, class_output
from emotion.modelfile import BUNDLED_MODELS, load_bundle, read_metadata, resolve_model_path, save_bundle

BASE_MODELS = ("emotions", "happy_sad")
DEFAULT_BASE = "emotions"
# "auto" starts from DEFAULT_BASE below this many training files, from scratch at or above it. The
# seven-emotion base was itself trained on 23,000 faces; with fewer than a few thousand, learning
# face features from nothing gives a model at chance (see the README).
SCRATCH_MIN_FILES = 5000
FEATURE_LAYER = "pool"  # the base's global-average-pooled convolutional features
BASE_NAME = "base"


def resolve_init(config: TrainConfig, train_files: int) -> TrainConfig:
    """`config` with `init` made concrete ("scratch", a bundled name or a path) and, when a base model
    is used, the input size, colour mode and face margin of that base (its layers expect them)."""
    init = config.init
    if init == "auto":
        init = DEFAULT_BASE if train_files < SCRATCH_MIN_FILES else "scratch"
    if init == "scratch":
        return dataclasses.replace(config, init="scratch")
    path = resolve_model_path(init)
    if not path.is_file():
        hint = " (a bundled model is missing: restore it with `git checkout models/`)" if init in BUNDLED_MODELS else ""
        raise ModelError(f"init {init!r}: no model file at {path}{hint}. Use scratch, "
                         f"{', '.join(BASE_MODELS)} or the path of a .keras model.")
    preprocessing = read_metadata(path)["preprocessing"]
    return dataclasses.replace(config, init=init, image_size=int(preprocessing["image_size"]),
                               color_mode=preprocessing["color_mode"],
                               face_margin=float(preprocessing["face_margin"]))


def build_transfer_model(config: TrainConfig, num_classes: int) -> keras.Model:
    """The base model's convolutional layers (frozen, BatchNorm in inference mode) under a new head."""
    bundle = load_bundle(config.init)
    layer_names = {layer.name for layer in bundle.model.layers}
    if BASE_NAME in layer_names:  # a model trained this way itself: start from the same base
        base = bundle.model.get_layer(BASE_NAME)
    elif FEATURE_LAYER in layer_names:
        base = keras.Model(bundle.model.input, bundle.model.get_layer(FEATURE_LAYER).output, name=BASE_NAME)
    else:
        raise ModelError(f"{Path(bundle.path).name} has no {FEATURE_LAYER!r} layer to start from; "
                         "use a model trained by this project.")
    base.trainable = False
    inputs = keras.Input(shape=base.input_shape[1:], name="face")
    # training=False keeps the base's BatchNorm statistics, learnt on 23,000 faces, through fine-tuning too.
    x = base(inputs, training=False)
    x = layers.Dropout(config.dropout, name="head_dropout")(x)
    return keras.Model(inputs, class_output(x, num_classes), name="emotion_transfer")


def unfreeze_base(model: keras.Model) -> None:
    """Let the base's convolutions learn (BatchNorm layers stay frozen); recompile after this."""
    base = model.get_layer(BASE_NAME)
    base.trainable = True
    for layer in base.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False


def read_out(init: str, shares: dict[str, dict[str, float]]) -> keras.Model:
    """A trained model whose classes are merged into new ones, with no training: the model's layers
    as they are (its convolutional layers as the `base` that transfer learning starts from), then
    `MergeClasses`. `shares` maps each new class to the old classes it takes a share of, e.g.
    {"happy": {"happy": 1, "neutral": 0.5}, "sad": {"sad": 1, "neutral": 0.5}}.
    """
    if len(shares) < 2:
        raise ModelError(f"a read-out needs at least two new classes, not {list(shares)}")
    bundle = load_bundle(init)
    old_classes = bundle.class_names
    unknown = {name for parts in shares.values() for name in parts} - set(old_classes)
    if unknown:
        raise ModelError(f"{sorted(unknown)} not among {Path(bundle.path).name}'s classes {old_classes}")
    model = bundle.model
    names = [layer.name for layer in model.layers]
    if FEATURE_LAYER not in names:
        raise ModelError(f"{Path(bundle.path).name} has no {FEATURE_LAYER!r} layer; "
                         "use a model trained by this project.")
    base = keras.Model(model.input, model.get_layer(FEATURE_LAYER).output, name=BASE_NAME)
    inputs = keras.Input(shape=base.input_shape[1:], name="face")
    x = base(inputs)
    for layer in model.layers[names.index(FEATURE_LAYER) + 1:]:  # the head, layer after layer
        x = layer(x)
    matrix = [[float(shares[new].get(old, 0.0)) for new in shares] for old in old_classes]
    return keras.Model(inputs, MergeClasses(matrix, name="merge_classes")(x), name="emotion_read_out")


def save_read_out(init: str, shares: dict[str, dict[str, float]], output_path: Path) -> Path:
    """Write `read_out(init, shares)` as a model file whose metadata says what it was read out of.

    It is not calibrated yet: run `training.recalibrate` on a dataset of the new classes next.
    """
    base_metadata = read_metadata(resolve_model_path(init))
    class_names = list(shares)
    metadata = {
        "class_names": class_names,
        "preprocessing": base_metadata["preprocessing"],
        "config": {**base_metadata.get("config", {}), "classes": class_names, "init": init},
        "init": init,
        "read_out": shares,
        "dataset": base_metadata.get("dataset", {}),
        "epochs_run": base_metadata.get("epochs_run"),
        "best_epoch": base_metadata.get("best_epoch"),
        "trained_at": base_metadata.get("trained_at"),
        "versions": base_metadata.get("versions", {}),
    }
    save_bundle(read_out(init, shares), metadata, Path(output_path))
    return Path(output_path)
