"""Confidence that means what it says: a fitted temperature, applied by both runtimes, and an uncertain flag."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import write_class_folders
from emotion import calibration
from emotion.errors import DatasetError
from emotion.export import export_tflite
from emotion.modelfile import load_bundle, save_bundle
from emotion.calibration import temper
from emotion.predictor import Predictor
from emotion.training import recalibrate


def overconfident_scores(count: int, temperature: float, seed: int = 0):
    """Scores that are `temperature` times too sharp: labels drawn from the softer truth."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.0, size=(count, 3))
    truth = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(3, p=row) for row in truth])
    sharp = np.exp(logits * temperature) / np.exp(logits * temperature).sum(axis=1, keepdims=True)
    return sharp, labels


def test_the_fitted_temperature_undoes_overconfidence():
    scores, labels = overconfident_scores(4000, temperature=2.0)
    temperature = calibration.fit_temperature(scores, labels)
    assert temperature == pytest.approx(2.0, rel=0.15)
    before = calibration.expected_calibration_error(scores, labels)
    after = calibration.expected_calibration_error(temper(scores, temperature), labels)
    assert after < 0.03 < before


def test_too_few_faces_keep_the_scores_as_they_are():
    scores, labels = overconfident_scores(10, temperature=3.0)
    assert calibration.fit_temperature(scores, labels) == 1.0
    assert calibration.uncertainty_threshold(scores, labels) == calibration.UNCERTAIN_BELOW_ACCURACY


def test_the_threshold_is_where_validation_accuracy_falls_below_75_percent():
    scores, labels = overconfident_scores(6000, temperature=1.0, seed=1)  # calibrated already
    threshold = calibration.uncertainty_threshold(scores, labels)
    assert 0.6 <= threshold <= 0.85
    confident = scores.max(axis=1) >= threshold
    assert (scores.argmax(axis=1) == labels)[confident].mean() >= 0.75


@pytest.fixture
def calibrated_model(tiny_training, tmp_path):
    """The tiny model with a temperature of 3 and an uncertain threshold of 0.9 in its metadata, exported."""
    bundle = load_bundle(tiny_training[0].model_path)
    metadata = {**bundle.metadata, "calibration": {"temperature": 3.0, "uncertain_below": 0.9}}
    path = save_bundle(bundle.model, metadata, tmp_path / "calibrated.keras")
    export_tflite(load_bundle(path))
    return path


def test_both_runtimes_give_the_same_calibrated_scores(calibrated_model, tiny_dataset):
    keras_predictor = Predictor.load(calibrated_model, runtime="keras")
    litert_predictor = Predictor.load(calibrated_model, runtime="litert")
    faces = np.stack([np.asarray(Image.open(path))[..., None]
                      for path in sorted((tiny_dataset / "happy").glob("*.png"))[:8]])
    raw = keras_predictor.bundle.model(faces.astype(np.float32), training=False).numpy()[:, 0]
    calibrated = keras_predictor.classify(faces)
    np.testing.assert_allclose(calibrated, litert_predictor.classify(faces), atol=1e-4)
    # Tempered: less extreme than the raw sigmoid, on the same side of one half.
    assert np.all(np.abs(calibrated[:, 1] - 0.5) <= np.abs(raw - 0.5) + 1e-6)
    assert np.array_equal(calibrated[:, 1] > 0.5, raw > 0.5)


def test_faces_below_the_threshold_are_marked_uncertain(calibrated_model, tiny_dataset):
    predictor = Predictor.load(calibrated_model)
    record = predictor.predict_source(sorted((tiny_dataset / "happy").glob("*.png"))[0], faces="none")
    face = record["faces"][0]
    assert face["uncertain"] == (face["confidence"] < 0.9)
    assert face["confidence"] < 0.9  # a temperature of 3 leaves no drawn face 90% sure


def test_recalibrating_on_too_few_faces_leaves_the_model_as_it_was(tiny_training, tmp_path):
    result, _, _ = tiny_training
    model = tmp_path / "mine.keras"
    bundle = load_bundle(result.model_path)
    # As a model read out of the seven-emotion model's export records it: not an init a training takes.
    config = {**bundle.metadata["config"], "init": "models/emotions.tflite"}
    save_bundle(bundle.model, {**bundle.metadata, "config": config}, model)
    before = model.read_bytes()
    few = write_class_folders(tmp_path / "few", per_class=8)  # 16 faces: a few validation faces
    with pytest.raises(DatasetError, match="too few to fit a calibration .* The model is unchanged"):
        recalibrate(model, few)
    assert model.read_bytes() == before
