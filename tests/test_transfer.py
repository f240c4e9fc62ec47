"""Transfer learning: a new head on a trained model's convolutional layers, chosen by `TrainConfig.init`."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from conftest import tiny_training_config, write_class_folders
from emotion import transfer
from emotion.config import TrainConfig
from emotion.errors import ModelError
from emotion.export import check_parity, export_tflite
from emotion.modelfile import BUNDLED_MODELS, load_bundle
from emotion.predictor import Predictor
from emotion.preparation import prepare_data
from emotion.training import compiled_training, train


@pytest.fixture(scope="module")
def new_task(tmp_path_factory):
    """A user's small dataset: other drawings than the base model saw, three classes."""
    return write_class_folders(tmp_path_factory.mktemp("user") / "faces", per_class=16, seed=7,
                               classes=("frown", "happy", "sad"))


def test_training_starts_from_the_base_weights(tiny_training, new_task):
    base_path = tiny_training[0].model_path
    config = dataclasses.replace(tiny_training_config(), init=str(base_path))
    setup = compiled_training(prepare_data(new_task, config), config)
    base = load_bundle(base_path).model
    started = setup.model.get_layer(transfer.BASE_NAME)
    for name in ("stem_conv", "block4_conv2"):
        for ours, theirs in zip(started.get_layer(name).get_weights(), base.get_layer(name).get_weights()):
            np.testing.assert_array_equal(ours, theirs)
    assert not started.trainable  # frozen while the new head learns
    assert setup.model.output_shape[-1] == 3 and setup.fine_tune_epochs == config.fine_tune_epochs


def test_classes_the_base_knows_start_from_its_own_outputs(tiny_training):
    base_path = str(tiny_training[0].model_path)  # classes happy, sad: one sigmoid unit, P(sad)
    config = dataclasses.replace(tiny_training_config(), init=base_path)
    assert transfer.known_classes(base_path, ["frown", "Happy ", "sadness"]) == {"Happy ": "happy", "sadness": "sad"}
    assert transfer.known_classes(base_path, ["happy", "cat"]) == {}  # one sigmoid unit needs both
    faces = np.random.default_rng(1).integers(0, 256, (8, 48, 48, 1), dtype=np.uint8)
    base_sad = load_bundle(base_path).model.predict(faces, verbose=0)[:, 0]
    # Before any training, the new model already tells happy from sad as the base does.
    two = transfer.build_transfer_model(config, ["happy", "sad"]).predict(faces, verbose=0)[:, 0]
    np.testing.assert_allclose(two, base_sad, atol=1e-5)
    three = transfer.build_transfer_model(config, ["frown", "happy", "sad"]).predict(faces, verbose=0)
    np.testing.assert_allclose(three[:, 2] / (three[:, 1] + three[:, 2]), base_sad, atol=1e-5)
    # Unknown classes start from scratch: a new output layer, not the base's (whose outputs on noise
    # may happen to look alike: both saturate).
    base_kernel = load_bundle(base_path).model.get_layer(transfer.OUTPUT_LAYER).get_weights()[0]
    fresh = transfer.build_transfer_model(config, ["cat", "dog"])
    fresh_kernel = fresh.get_layer(transfer.OUTPUT_LAYER).get_weights()[0]
    assert fresh_kernel.shape == base_kernel.shape and not np.allclose(fresh_kernel, base_kernel, atol=1e-3)
    # A head that starts as a classifier trains briefly and leaves the base alone; others get the full schedule.
    known = transfer.resolve_init(TrainConfig(init=base_path), 100, ["happy", "sad"])
    assert (known.epochs, known.fine_tune_epochs) == (TrainConfig.known_class_epochs, 0)
    unknown = transfer.resolve_init(TrainConfig(init=base_path), 100, ["frown", "happy", "sad"])
    assert (unknown.epochs, unknown.fine_tune_epochs) == (TrainConfig.epochs, TrainConfig.fine_tune_epochs)


def test_a_transferred_model_learns_saves_loads_and_exports(tiny_training, tmp_path):
    base_path = tiny_training[0].model_path
    # Classes the base has no output for, so the new output layer learns them from nothing.
    write_class_folders(tmp_path / "faces", per_class=16, seed=7)
    (tmp_path / "faces" / "happy").rename(tmp_path / "faces" / "grin")
    (tmp_path / "faces" / "sad").rename(tmp_path / "faces" / "pout")
    config = dataclasses.replace(tiny_training_config(), init=str(base_path), epochs=6, fine_tune_epochs=2)
    result = train(tmp_path / "faces", config, tmp_path / "mine.keras")
    assert len(result.history["loss"]) == 8  # 6 with the base frozen, 2 fine-tuning it
    assert result.history["loss"][-1] < result.history["loss"][0]
    metadata = json.loads(result.metadata_path.read_text())
    assert metadata["init"] == metadata["config"]["init"] == str(base_path)  # what it was initialised from
    assert metadata["known_classes"] == {} and result.started_from == str(base_path)
    bundle = load_bundle(result.model_path)
    assert bundle.class_names == ["grin", "pout"]
    assert check_parity(bundle, export_tflite(bundle)) <= 1e-4
    assert Predictor.load(result.model_path).runtime.name == "litert"
    # A model trained this way is a base in its turn (the bundled Happy/Sad model is one).
    again = transfer.build_transfer_model(dataclasses.replace(config, init=str(result.model_path)), ["a", "b"])
    for ours, theirs in zip(again.get_layer("base").get_weights(), bundle.model.get_layer("base").get_weights()):
        np.testing.assert_array_equal(ours, theirs)


def test_auto_starts_small_datasets_from_the_seven_emotion_model():
    if not BUNDLED_MODELS["emotions"].is_file():
        pytest.skip("models/emotions.keras is not in this checkout")
    small = transfer.resolve_init(TrainConfig(image_size=96, color_mode="rgb"), train_files=100)
    assert small.init == "emotions"
    assert (small.image_size, small.color_mode) == (48, "grayscale")  # the base's input, not the setting
    assert transfer.resolve_init(TrainConfig(), train_files=20_000).init == "scratch"
    assert transfer.resolve_init(TrainConfig(init="happy_sad"), train_files=100).init == "happy_sad"


def test_an_unknown_base_is_a_clear_error(tmp_path):
    from emotion.errors import ModelError

    with pytest.raises(ModelError, match="no model file"):
        transfer.resolve_init(TrainConfig(init=str(tmp_path / "missing.keras")), train_files=100)


def test_a_read_out_merges_classes_without_training_and_saves_loads_and_exports(tiny_training, tmp_path):
    """A model's classes merged into fewer, as the bundled Happy/Sad model is read out of the seven emotions."""
    base_path = tiny_training[0].model_path  # classes happy, sad
    shares = {"smiling": {"happy": 1.0}, "not smiling": {"sad": 1.0, "happy": 0.25}}
    path = transfer.save_read_out(str(base_path), shares, tmp_path / "read_out.keras")

    faces = np.random.default_rng(0).integers(0, 256, (8, 48, 48, 1), dtype=np.uint8)
    sad = Predictor.load(base_path, runtime="keras").runtime(faces)[:, 0]  # the base's one unit is P(sad)
    happy = 1.0 - sad
    expected = (sad + 0.25 * happy) / (happy + sad + 0.25 * happy)  # P("not smiling")
    bundle = load_bundle(path)
    assert bundle.class_names == ["smiling", "not smiling"] and bundle.metadata["init"] == str(base_path)
    np.testing.assert_allclose(bundle.model.predict(faces, verbose=0)[:, 0], expected, atol=1e-5)
    assert check_parity(bundle, export_tflite(bundle)) < 1e-4
    with pytest.raises(ModelError, match="not among"):
        transfer.read_out(str(base_path), {"a": {"happy": 1.0}, "b": {"angry": 1.0}})
