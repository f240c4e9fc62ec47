"""The CNN: a strided stem, then a VGG-style stack of Conv2D + BatchNorm + ReLU blocks with pooling and dropout.

Input is raw pixels in [0, 255]; scaling to [0, 1] is the model's first layer, so training and
serving cannot disagree about it. Two classes give one sigmoid unit, more give a softmax.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from emotion.config import TrainConfig

# Keras' default 0.99 needs hundreds of steps before the inference statistics settle; a user's
# dataset of a hundred photos gives a few dozen steps in a whole training, so settle faster.
BATCHNORM_MOMENTUM = 0.9


def build_model(config: TrainConfig, num_classes: int) -> keras.Model:
    """Build the uncompiled classifier for `num_classes` labels."""
    if num_classes < 2:
        raise ValueError(f"need at least two classes, got {num_classes}")
    channels = config.preprocessing.channels
    inputs = keras.Input(shape=(config.image_size, config.image_size, channels), name="face")
    x = layers.Rescaling(1.0 / 255.0, name="scale")(inputs)  # (batch, size, size, channels) in [0, 1]

    # A strided stem halves the resolution before any wide convolution runs: on 2 CPU cores the
    # full-resolution layers cost most of a training step and add little for faces this small.
    filters = config.base_filters
    x = layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(momentum=BATCHNORM_MOMENTUM, name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)

    # Four stages, pooling between them: 24 -> 12 -> 6 -> 3 for FER faces, widths doubling.
    for stage in range(4):
        last = stage == 3
        x = _conv_block(x, filters, convolutions=1 if stage == 0 else 2, pool=not last, name=f"block{stage + 1}")
        filters *= 2

    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(config.dropout, name="head_dropout1")(x)
    x = layers.Dense(256, use_bias=False, name="head_dense")(x)
    x = layers.BatchNormalization(momentum=BATCHNORM_MOMENTUM, name="head_bn")(x)
    x = layers.ReLU(name="head_relu")(x)
    x = layers.Dropout(config.dropout, name="head_dropout2")(x)
    return keras.Model(inputs, class_output(x, num_classes), name="emotion_cnn")


def class_output(x, num_classes: int):
    """The output layer: one sigmoid unit, P(class 1), for two classes; a softmax for more."""
    if num_classes == 2:
        return layers.Dense(1, activation="sigmoid", name="probability")(x)
    return layers.Dense(num_classes, activation="softmax", name="probability")(x)


@keras.saving.register_keras_serializable(package="emotion")
class MergeClasses(layers.Layer):
    """Class probabilities merged into fewer classes: each new class takes a share of each old one.

    `shares` is (old classes, new classes); a two-class model's one unit counts as its two
    probabilities. The merged masses are renormalised, so old classes that give no share anywhere
    drop out; two new classes give one unit, P(new class 1), as `class_output` does.
    """

    def __init__(self, shares: list[list[float]], **kwargs):
        super().__init__(**kwargs)
        self.shares = [[float(share) for share in row] for row in shares]

    def call(self, probabilities):
        if len(self.shares) == 2 and probabilities.shape[-1] == 1:  # a two-class model's unit, P(class 1)
            probabilities = ops.concatenate([1.0 - probabilities, probabilities], axis=-1)
        masses = ops.matmul(probabilities, ops.convert_to_tensor(self.shares, dtype=probabilities.dtype))
        masses = masses / ops.maximum(ops.sum(masses, axis=-1, keepdims=True), 1e-7)
        return masses[:, 1:2] if len(self.shares[0]) == 2 else masses

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1 if len(self.shares[0]) == 2 else len(self.shares[0]))

    def get_config(self) -> dict:
        return {**super().get_config(), "shares": self.shares}


def _conv_block(x, filters: int, convolutions: int, pool: bool, name: str):
    for index in range(convolutions):
        # BatchNorm follows the convolution, so the convolution's own bias would be redundant.
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{index + 1}")(x)
        x = layers.BatchNormalization(momentum=BATCHNORM_MOMENTUM, name=f"{name}_bn{index + 1}")(x)
        x = layers.ReLU(name=f"{name}_relu{index + 1}")(x)
    if pool:
        x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    return layers.SpatialDropout2D(0.1, name=f"{name}_dropout")(x)


def build_augmentation(config: TrainConfig) -> keras.Sequential:
    """Train-time augmentation as Keras preprocessing layers, applied in the data pipeline.

    Works on pixels in [0, 255]; faces are near-frontal, so rotations stay small.
    """
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=config.seed),
            layers.RandomRotation(0.03, fill_mode="reflect", seed=config.seed + 1),  # +-11 degrees
            layers.RandomZoom((-0.1, 0.1), fill_mode="reflect", seed=config.seed + 2),
            layers.RandomTranslation(0.08, 0.08, fill_mode="reflect", seed=config.seed + 3),
            layers.RandomBrightness(0.15, value_range=(0, 255), seed=config.seed + 4),
            layers.RandomContrast(0.2, value_range=(0, 255), seed=config.seed + 5),
        ],
        name="augmentation",
    )
