"""Happy or Sad? Facial-expression classification: images, faces, data, model, training, prediction.

    from emotion import Predictor
    Predictor.load().predict_source("photo.jpg")   # the bundled FER-2013 Happy/Sad model

Names are imported on first use, so `import emotion` stays cheap and TensorFlow loads only when needed.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "TrainConfig": "emotion.config",
    "EmotionError": "emotion.errors",
    "ImageError": "emotion.errors",
    "DatasetError": "emotion.errors",
    "ModelError": "emotion.errors",
    "TrainingCancelled": "emotion.errors",
    "read_image": "emotion.images",
    "FaceBox": "emotion.faces",
    "FaceDetector": "emotion.faces",
    "Predictor": "emotion.predictor",
    "FacePrediction": "emotion.predictor",
    "train": "emotion.training",
    "prepare_data": "emotion.preparation",
    "evaluate_dataset": "emotion.evaluation",
    "export_tflite": "emotion.export",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'emotion' has no attribute {name!r}")
