"""Confidence that means what it says: temperature scaling, the "uncertain" threshold, and their measures.

Both are fitted on a model's validation faces by the trainer and stored in its metadata
(`modelfile.Calibration`); the predictor applies them to every face.
"""

from __future__ import annotations

import numpy as np

# Temperatures searched (log-spaced). A tiny validation set cannot support an extreme value.
TEMPERATURES = np.exp(np.linspace(np.log(0.25), np.log(4.0), 81))
MIN_FACES_TO_FIT = 30  # fewer validation faces than this keep temperature 1
# A face is "uncertain" when faces of its confidence are right less often than this on validation.
UNCERTAIN_BELOW_ACCURACY = 0.75
CONFIDENCE_WINDOW = 0.1  # width of the confidence band whose accuracy decides the threshold
MIN_FACES_IN_WINDOW = 20
ECE_BINS = 10


def temper(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Temperature scaling of (n, classes) probabilities: softmax(log(p) / T).

    For two classes this is sigmoid(logit / T). T > 1 softens over-confident scores; argmax is unchanged.
    """
    if temperature == 1.0 or len(probabilities) == 0:
        return probabilities
    logits = np.log(np.clip(probabilities, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    exponentials = np.exp(logits)
    return (exponentials / exponentials.sum(axis=-1, keepdims=True)).astype(np.float32)


def fit_temperature(probabilities: np.ndarray, targets: np.ndarray) -> float:
    """The temperature minimising cross-entropy on validation: probabilities (n, classes) and targets
    (n,) class indices or (n, classes) distributions (crowd votes)."""
    if len(probabilities) < MIN_FACES_TO_FIT:
        return 1.0
    targets = _as_distributions(targets, probabilities.shape[1])
    losses = [-(targets * np.log(np.clip(temper(probabilities, t), 1e-12, 1.0))).sum(axis=1).mean()
              for t in TEMPERATURES]
    return float(TEMPERATURES[int(np.argmin(losses))])


def uncertainty_threshold(probabilities: np.ndarray, targets: np.ndarray,
                          min_accuracy: float = UNCERTAIN_BELOW_ACCURACY) -> float:
    """The lowest confidence from which every band of CONFIDENCE_WINDOW above is right at least
    `min_accuracy` of the time on validation (bands with too few faces do not count). `targets` are
    class indices, or vote distributions: a face is then as right as the share of voters who agree.

    With calibrated scores this lands near `min_accuracy` itself, which is also the answer when the
    validation set is too small to say (a few dozen faces).
    """
    confidence = probabilities.max(axis=1)
    correct = _as_distributions(targets, probabilities.shape[1])[np.arange(len(confidence)),
                                                                 probabilities.argmax(axis=1)]
    threshold = None
    for low in np.arange(0.99, 1.0 / probabilities.shape[1] - 1e-9, -0.01):
        band = (confidence >= low) & (confidence < low + CONFIDENCE_WINDOW)
        if band.sum() < MIN_FACES_IN_WINDOW:
            continue
        if correct[band].mean() < min_accuracy:
            break
        threshold = float(low)
    if threshold is None or len(confidence) < 10 * MIN_FACES_IN_WINDOW:
        return min_accuracy
    return round(threshold, 2)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by their faces."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    error = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        members = (confidence > low) & (confidence <= high)
        if members.any():
            error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(error)


def _as_distributions(targets: np.ndarray, num_classes: int) -> np.ndarray:
    targets = np.asarray(targets)
    if targets.ndim == 1:
        return np.eye(num_classes, dtype=np.float64)[targets.astype(int)]
    return targets.astype(np.float64)
