"""The web app's handlers as plain functions: what each returns, the no-face path, errors as gr.Error."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
from PIL import Image

import app as web
from conftest import write_dataset_zip
from emotion import training
from emotion.annotate import LABEL_COLORS
from emotion.images import read_image
from emotion.limits import MAX_IMAGE_UPLOAD_BYTES


@pytest.fixture(scope="module")
def emotion_app(tmp_path_factory):
    return web.EmotionApp(sessions_root=tmp_path_factory.mktemp("sessions"))


def request(session: str = "visitor1"):
    return SimpleNamespace(session_hash=session)


def no_progress(*args, **kwargs):
    return None


@pytest.fixture(scope="module")
def dataset_zip(tmp_path_factory) -> Path:
    return write_dataset_zip(tmp_path_factory.mktemp("zip"))


def test_photo_with_a_face_gets_a_box_a_label_and_a_table_row(emotion_app, grace_hopper_path):
    annotated, scores, table, message, whole_image_button = emotion_app.on_photo_change(str(grace_hopper_path), None)

    original = read_image(grace_hopper_path)
    assert annotated.shape == original.shape
    assert not np.array_equal(annotated, original), "the box must be drawn on the photo"
    assert set(scores) == {"happy", "sad"} and sum(scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert len(table) == 1 and table.iloc[0]["label"] in ("happy", "sad")
    # The box is drawn in the colour of its label, where the face is.
    x, y, width, height = (int(table.iloc[0][key]) for key in ("x", "y", "width", "height"))
    color = LABEL_COLORS[table.iloc[0]["label"]]
    left_edge = annotated[y + height // 2, x]
    assert tuple(int(c) for c in left_edge) == color
    assert "One face found" in message
    assert whole_image_button["visible"] is False


def test_photo_without_a_face_says_so_and_offers_the_whole_image(emotion_app, tmp_path):
    path = tmp_path / "sky.png"
    gradient = np.linspace(0, 255, 320 * 240, dtype=np.float32).reshape(240, 320)
    Image.fromarray(gradient.astype(np.uint8)).convert("RGB").save(path)

    _, scores, table, message, whole_image_button = emotion_app.on_photo_change(str(path), None)
    assert "No face found" in message and scores is None and len(table) == 0
    assert whole_image_button["visible"] is True

    _, scores, table, message, _ = emotion_app.on_whole_image_click(str(path), None)
    assert len(table) == 1 and set(scores) == {"happy", "sad"}
    assert message.startswith("Whole image")


def test_cleared_photo_clears_the_results(emotion_app):
    annotated, scores, table, message, _ = emotion_app.on_photo_change(None, None)
    assert annotated is None and scores is None and len(table) == 0 and message == ""


@pytest.mark.parametrize("kind, expected", [
    ("empty", "photo.jpg: the file is empty"),
    ("pdf", "photo.jpg: not an image"),
    ("truncated", "photo.jpg: the image is corrupt or truncated"),
])
def test_bad_files_raise_a_clear_gradio_error(emotion_app, tmp_path, grace_hopper_path, kind, expected):
    contents = {"empty": b"", "pdf": b"%PDF-1.4 not really a photo",
                "truncated": grace_hopper_path.read_bytes()[:5000]}
    path = tmp_path / "photo.jpg"
    path.write_bytes(contents[kind])
    with pytest.raises(gr.Error, match=expected):
        emotion_app.on_photo_change(str(path), None)


def test_a_photo_over_the_upload_limit_is_refused_before_decoding(emotion_app, tmp_path):
    path = tmp_path / "huge.jpg"
    with path.open("wb") as file:
        file.truncate(MAX_IMAGE_UPLOAD_BYTES + 1)
    with pytest.raises(gr.Error, match="over the 20 MB limit"):
        emotion_app.on_photo_change(str(path), None)


def test_api_predict_returns_the_command_line_json_object(emotion_app, grace_hopper_path):
    result = emotion_app.on_api_predict(str(grace_hopper_path))
    assert result["path"] == "grace_hopper.jpg" and result["error"] is None
    face = result["faces"][0]
    assert set(face) == {"box", "label", "confidence", "uncertain", "scores"} and len(face["box"]) == 4


def test_api_predict_reports_an_unreadable_file_in_error(emotion_app, tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("shopping list")
    result = emotion_app.on_api_predict(str(path))
    assert result["faces"] == [] and "not an image" in result["error"]


def test_dataset_upload_shows_counts_and_thumbnails_before_training(emotion_app, dataset_zip):
    markdown, thumbnails, start_button = emotion_app.on_dataset_change(str(dataset_zip), "auto", 48, request(),
                                                                       progress=no_progress)
    assert "| happy | 17 | 3 |" in markdown and "| sad | 17 | 3 |" in markdown  # train / validation split
    assert len(thumbnails) == 2 * web.THUMBNAILS_PER_CLASS
    assert {caption for _, caption in thumbnails} == {"happy", "sad"}
    assert start_button["interactive"] is True


def test_a_file_that_is_not_a_zip_gets_a_clear_message(emotion_app, tmp_path):
    path = tmp_path / "dataset.zip"
    path.write_text("not a zip")
    with pytest.raises(gr.Error, match="not a zip file"):
        emotion_app.on_dataset_change(str(path), "auto", 48, request(), progress=no_progress)


def test_training_streams_each_epoch_then_offers_the_model(emotion_app, dataset_zip):
    updates = list(emotion_app.on_train_click(str(dataset_zip), 2, 16, 3e-3, True, "auto", 48, request("trainer"),
                                              progress=no_progress))
    epoch_updates = [update for update in updates if isinstance(update[1], type(web._curve_frame(
        {"epoch": [], "loss": [], "val_loss": []}, "loss"))) and len(update[1])]
    assert [len(update[1]) for update in epoch_updates] == [2, 4]  # training + validation points per epoch
    status, _, _, metrics, confusion, curves, files, use_button, model_path = updates[-1]
    assert status.startswith("**Done.**") and "accuracy" in metrics.lower()
    assert Path(confusion).is_file() and Path(curves).is_file()
    assert sorted(Path(file).suffix for file in files) == [".json", ".keras", ".tflite"]
    assert use_button["visible"] is True
    assert emotion_app.sessions.owns("trainer", model_path)


def test_a_trained_model_is_used_only_in_the_session_that_trained_it(emotion_app, dataset_zip, grace_hopper_path):
    updates = list(emotion_app.on_train_click(str(dataset_zip), 1, 16, 3e-3, False, "auto", 48, request("owner"),
                                              progress=no_progress))
    model_path = updates[-1][-1]
    with pytest.raises(gr.Error, match="Train a model"):
        emotion_app.on_use_model_click(model_path, request("stranger"))

    active, about, message = emotion_app.on_use_model_click(model_path, request("owner"))
    assert active == model_path and Path(model_path).name in about and "this browser tab" in message
    # The session's model path lives in its gr.State; the default stays the bundled model.
    assert emotion_app.predictors.get(active) is not emotion_app.predictors.get(None)

    emotion_app.on_page_unload(request("owner"))
    assert not Path(model_path).exists()


def test_stop_without_a_training_says_so(emotion_app):
    assert "No training" in emotion_app.on_stop_click(request("idle"))


def test_about_panel_describes_the_bundled_model(emotion_app):
    text = web._model_markdown(emotion_app.predictors.default.bundle)
    assert "happy_sad.keras" in text and "(bundled)" in text and "Validation accuracy:" in text


def test_a_broken_chosen_model_falls_back_to_the_bundled_one(tmp_path, caplog):
    broken = tmp_path / "mine.keras"
    broken.write_bytes(b"not a model")
    (tmp_path / "mine.json").write_text('{"class_names": ["happy", "sad"], "preprocessing": '
                                        '{"image_size": 48, "color_mode": "grayscale", "face_margin": 0.1}}')
    app = web.load_app(str(broken))
    assert app.predictors.default.bundle.path.name == "happy_sad.keras"
    assert "could not be loaded" in caplog.text and "bundled model instead" in caplog.text


def test_a_session_model_that_breaks_gives_a_message_not_a_crash(emotion_app, tmp_path, grace_hopper_path):
    missing = tmp_path / "gone.keras"
    with pytest.raises(gr.Error, match="not found.*bundled model"):
        emotion_app.on_photo_change(str(grace_hopper_path), str(missing))


def test_idle_sessions_lose_their_files_and_data_but_a_running_training_goes_on(dataset_zip, tmp_path):
    app = web.EmotionApp(sessions_root=tmp_path / "sessions", sweep_seconds=None)
    app.on_dataset_change(str(dataset_zip), "auto", 48, request("idle"), progress=no_progress)
    updates = app.on_train_click(str(dataset_zip), 200, 16, 3e-3, False, "auto", 48, request("busy"),
                                 progress=no_progress)
    next(update for update in updates if " done in " in str(update[0]))  # an epoch in, still training
    idle_folder, busy_folder = app.sessions.root / "idle", app.sessions.root / "busy"
    assert idle_folder.is_dir() and busy_folder.is_dir()

    app.sessions.max_idle_seconds = 0  # as if both visitors went quiet hours ago
    app.close_idle_sessions()
    assert not idle_folder.exists() and "idle" not in app._prepared
    assert busy_folder.is_dir() and "busy" in app.jobs

    app.on_stop_click(request("busy"))
    assert list(updates)[-1][0].startswith("**Done.** Stopped by you")


def test_stop_ends_the_training_and_frees_its_model(emotion_app, dataset_zip, monkeypatch):
    built, real_build_model = [], training.build_model

    def build_model(*args, **kwargs):
        model = real_build_model(*args, **kwargs)
        built.append(weakref.ref(model))
        return model

    monkeypatch.setattr(training, "build_model", build_model)
    updates = emotion_app.on_train_click(str(dataset_zip), 200, 16, 3e-3, False, "auto", 48, request("stopper"),
                                         progress=no_progress)
    for update in updates:
        if " done in " in str(update[0]):
            emotion_app.on_stop_click(request("stopper"))
    assert update[0].startswith("**Done.** Stopped by you")
    del update, updates

    gc.collect()
    assert len(built) == 1 and built[0]() is None, "the stopped training's model (and its optimizer) stays in memory"
    assert "stopper" not in emotion_app.jobs


def test_live_frames_come_back_labelled_with_one_stream_object_per_visitor(emotion_app, grace_hopper_path):
    frame = np.full((480, 640, 3), 110, np.uint8)
    frame[90:390, 192:448] = read_image(grace_hopper_path)[::2, ::2]
    annotated, rate, live = emotion_app.on_live_stream(frame, None, None)
    assert annotated.shape == frame.shape and not np.array_equal(annotated, frame)
    assert rate.endswith(", 1 face")
    for _ in range(3):  # the same visitor's next frames reuse their stream, which counts the rate
        annotated, rate, same = emotion_app.on_live_stream(frame, live, None)
    assert same is live and not rate.startswith("**0.0 frames/s")
    _, _, other = emotion_app.on_live_stream(frame, None, None)  # another visitor
    assert other is not live
    assert emotion_app.on_live_stream(None, live, None)[2] is live  # no frame yet: nothing changes
