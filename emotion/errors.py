"""The package's own error types: every failure a user can cause is one of these.

Each message says what was wrong and what to do about it, so a CLI or UI can show it as it is.
"""


class EmotionError(Exception):
    """Base class for every error the package raises on purpose."""


class ImageError(EmotionError):
    """An image could not be read: corrupt, not an image, or too large."""


class DatasetError(EmotionError):
    """A dataset folder or zip could not be used for training or evaluation."""


class ModelError(EmotionError):
    """A model file is missing, corrupt, or was not made by this package."""


class TrainingCancelled(EmotionError):
    """Training was stopped by the caller before it finished."""
