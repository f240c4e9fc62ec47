"""Transfer learning: start a new classifier from a trained model's convolutional layers.

A user's dataset of tens of photos a class is far too small to learn what a face's expression looks
like; the bundled seven-emotion model has learnt that from 23,000 faces. Its layers up to its output
layer become a frozen base under a new output layer for the user's classes (starting from its own
weights for the classes it knows), and may then be fine-tuned at a low learning rate.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import keras
import numpy as np
from keras import layers

from emotion.config import TrainConfig
from emotion.errors import ModelError
from emotion.model import MergeClasses, class_output
from emotion.modelfile import BUNDLED_MODELS, load_bundle, read_metadata, resolve_model_path, save_bundle

log = logging.getLogger(__name__)

BASE_MODELS = ("emotions", "happy_sad")
DEFAULT_BASE = "emotions"
# "auto" starts from DEFAULT_BASE below this many training files, from scratch at or above it. The
# seven-emotion base was itself trained on 23,000 faces; with fewer than a few thousand, learning
# face features from nothing gives a model at chance (see the README).
SCRATCH_MIN_FILES = 5000
FEATURE_LAYER = "pool"  # the global-average-pooled convolutional features, where a read-out's `base` ends
OUTPUT_LAYER = "probability"  # what a new output layer replaces; everything before it is the base
BASE_NAME = "base"
# Folder names for the seven-emotion model's classes: FER+'s nouns, and the usual adjectives.
CLASS_ALIASES = {"happiness": "happy", "smiling": "happy", "sadness": "sad", "anger": "angry", "fearful": "fear",
                 "scared": "fear", "afraid": "fear", "disgusted": "disgust", "surprised": "surprise"}


def resolve_init(config: TrainConfig, train_files: int, class_names: list[str] | None = None) -> TrainConfig:
    """`config` with `init` made concrete ("scratch", a bundled name or a path) and, when a base model
    is used, the input size, colour mode and face margin of that base (its layers expect them), and
    given `class_names`, the short schedule when the base knows every class."""
    init = config.init
    if init == "auto":
        init = DEFAULT_BASE if train_files < SCRATCH_MIN_FILES else "scratch"
    if init == "scratch":
        return dataclasses.replace(config, init="scratch")
    path = resolve_model_path(init)
    if not path.is_file():
        hint = " (a bundled model is missing: restore it with `git checkout models/`)" if init in BUNDLED_MODELS else ""
        raise ModelError(f"init {init!r}: no model file at {path}{hint}. Use auto, scratch, "
                         f"{', '.join(BASE_MODELS)} or the path of a .keras model.")
    preprocessing = read_metadata(path)["preprocessing"]
    config = dataclasses.replace(config, init=init, image_size=int(preprocessing["image_size"]),
                                 color_mode=preprocessing["color_mode"],
                                 face_margin=float(preprocessing["face_margin"]))
    if class_names and len(known_classes(init, class_names)) == len(class_names):
        config = dataclasses.replace(config, epochs=min(config.epochs, config.known_class_epochs), fine_tune_epochs=0)
    return config


def build_transfer_model(config: TrainConfig, class_names: list[str]) -> keras.Model:
    """Every layer of the base model up to its output layer, frozen (BatchNorm and dropout in
    inference mode), under a new output layer for `class_names`.

    A class the base model already knows by name (`happy`, `Sadness`, `surprised`: see
    `known_classes`) starts from the base's own output weights for it, so training starts where the
    base model is: on web-happy-sad-dev, the seven-emotion model read as happy vs sad is right 85.6%
    of the time before any training. Other classes start from random weights.
    """
    bundle = load_bundle(config.init)
    try:
        source_output = bundle.model.get_layer(OUTPUT_LAYER)
    except ValueError:
        raise ModelError(f"{Path(bundle.path).name} has no {OUTPUT_LAYER!r} layer to start from; "
                         "use a model trained by this project.") from None
    base = keras.Model(bundle.model.input, source_output.input, name=BASE_NAME)
    base.trainable = False
    inputs = keras.Input(shape=base.input_shape[1:], name="face")
    # training=False keeps the base's BatchNorm statistics, learnt on 23,000 faces, through fine-tuning too.
    x = base(inputs, training=False)
    x = layers.Dropout(config.dropout, name="head_dropout")(x)
    model = keras.Model(inputs, class_output(x, len(class_names)), name="emotion_transfer")
    known = known_classes(config.init, class_names)
    if known:
        _start_from_known(model.get_layer(OUTPUT_LAYER), source_output, _output_class_names(config.init),
                          [known.get(name) for name in class_names])
    return model


def known_classes(init: str, class_names: list[str]) -> dict[str, str]:
    """The user's classes that the base model `init` has an output for: {user's name: base's name}.
    Names match ignoring case and spaces, and through CLASS_ALIASES. For two classes, both must match."""
    base_names = {name.casefold(): name for name in _output_class_names(init)}
    known = {}
    for name in class_names:
        key = name.strip().casefold()
        key = CLASS_ALIASES.get(key, key)
        if key in base_names:
            known[name] = base_names[key]
    if (len(class_names) == 2 and len(known) < 2) or len(set(known.values())) < len(known):
        return {}  # one sigmoid unit needs both classes; two folders for one base class: no prior
    return known


def _output_class_names(init: str) -> list[str]:
    """The classes of `init`'s output layer: its own, or for a read-out, those of the model it was read out of."""
    metadata = read_metadata(resolve_model_path(init))
    if "read_out" in metadata:
        try:
            return _output_class_names(metadata["init"])
        except ModelError:  # the model it was read out of is gone: its classes are unknown
            return []
    return list(metadata["class_names"])


def _start_from_known(layer, source_layer, source_names: list[str], sources: list[str | None]) -> None:
    """Copy into the new output layer the base's output weights of each known class (`sources`: the
    base's class for each new class, or None)."""
    kernel, bias = (np.asarray(weights, np.float64) for weights in source_layer.get_weights())
    if kernel.shape[1] == 1:  # one sigmoid unit: logits 0 for class 0 and the unit's for class 1
        kernel, bias = np.concatenate([np.zeros_like(kernel), kernel], axis=1), np.array([0.0, bias[0]])
    if kernel.shape[1] != len(source_names):
        log.warning("the base's output layer has %d units for %d classes; every class starts from scratch",
                    kernel.shape[1], len(source_names))
        return
    columns = [source_names.index(source) if source is not None else None for source in sources]
    new_kernel, new_bias = (np.asarray(weights, np.float64) for weights in layer.get_weights())
    if new_kernel.shape[1] == 1:  # both classes are known (see known_classes): the difference of their logits
        new_kernel[:, 0] = kernel[:, columns[1]] - kernel[:, columns[0]]
        new_bias[0] = bias[columns[1]] - bias[columns[0]]
    else:
        for index, column in enumerate(columns):
            if column is not None:
                new_kernel[:, index], new_bias[index] = kernel[:, column], bias[column]
    layer.set_weights([new_kernel.astype(np.float32), new_bias.astype(np.float32)])


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
