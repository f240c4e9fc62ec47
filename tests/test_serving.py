"""The server's side of serving: loaded models shared by visitors, bundled names, uploads checked."""

from __future__ import annotations

import shutil
from pathlib import Path

from emotion.limits import MAX_IMAGE_UPLOAD_BYTES
from emotion.predictor import Predictor
from emotion.serving import PredictorCache, Server


def test_predictor_cache_loads_once_drops_the_oldest_and_forgets_a_sessions_models(tiny_training, tmp_path):
    result, _, _ = tiny_training
    paths = []
    for name in ("alice", "bob", "carol"):
        (tmp_path / name).mkdir()
        paths.append(Path(shutil.copy(result.model_path, tmp_path / name / "model.keras")))
    default = Predictor.load(result.model_path)
    cache = PredictorCache(default, capacity=2)
    alice, bob = cache.get(paths[0]), cache.get(paths[1])
    assert cache.get(None) is default and cache.get(paths[0]) is alice  # loaded once; alice is now the newest
    cache.get(paths[2])  # a third model for two places: bob's, the least recently used, goes
    assert cache.get(paths[0]) is alice and cache.get(paths[1]) is not bob
    cache.forget_under(tmp_path / "alice")  # alice's session ended
    assert cache.get(paths[0]) is not alice and cache.get(None) is default


def test_the_bundled_model_is_served_by_name(tmp_path):
    server = Server(sessions_root=tmp_path)
    assert server.predictors.get("happy_sad") is server.predictors.default
    assert list(server.models)[0] == "happy_sad"


def test_every_bad_request_to_predict_is_a_message_in_error(tmp_path, grace_hopper_path):
    server = Server(sessions_root=tmp_path / "sessions")
    huge = tmp_path / "huge.jpg"
    with huge.open("wb") as file:
        file.truncate(MAX_IMAGE_UPLOAD_BYTES + 1)
    text = tmp_path / "notes.jpg"
    text.write_text("shopping list")
    for path, name, model, expected in [(huge, "huge.jpg", "happy_sad", "over the 20 MB limit"),
                                        (text, "notes.jpg", "happy_sad", "not an image"),
                                        (None, "upload", "happy_sad", "Send an image file"),
                                        (grace_hopper_path, "grace.jpg", "mine", "no bundled model named 'mine'")]:
        record = server.predict_record(path, name, model)
        assert record["path"] == name and record["faces"] == [] and expected in record["error"]
    good = server.predict_record(grace_hopper_path, "grace.jpg")
    assert good["error"] is None and len(good["faces"]) == 1


def test_a_broken_chosen_model_falls_back_to_the_bundled_one(tmp_path, caplog):
    broken = tmp_path / "mine.keras"
    broken.write_bytes(b"not a model")
    (tmp_path / "mine.json").write_text('{"class_names": ["happy", "sad"], "preprocessing": '
                                        '{"image_size": 48, "color_mode": "grayscale", "face_margin": 0.1}}')
    server = Server.load(str(broken), tmp_path / "sessions")
    assert server.predictors.default.bundle.path.name == "happy_sad.keras"
    assert "mine.keras is not a Keras model file" in caplog.text and "bundled model instead" in caplog.text
