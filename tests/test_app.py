"""The web app's handlers as plain functions: what each tab shows, and errors as gr.Error."""

from __future__ import annotations

import gc
import re
import subprocess
import sys
import weakref
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
from PIL import Image

import app as web
from webapp import display
from conftest import PROJECT_ROOT, write_dataset_zip
from emotion import training
from emotion.annotate import HIGHLIGHT_COLOR, LABEL_COLORS, UNSURE_COLOR, draw_predictions
from emotion.faces import FaceBox
from emotion.images import read_image
from emotion.limits import MAX_IMAGE_UPLOAD_BYTES
from emotion.modelfile import BUNDLED_MODELS
from emotion.predictor import FacePrediction
from emotion.preparation import faces_found
from emotion.serving import Server

EMOTIONS_PRESENT = BUNDLED_MODELS["emotions"].is_file()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    server = Server(sessions_root=tmp_path_factory.mktemp("sessions"))
    yield web.EmotionApp(server)
    server.sessions.close_all()


def request(session: str = "visitor1"):
    return SimpleNamespace(session_hash=session)


def no_progress(*args, **kwargs):
    return None


@pytest.fixture(scope="module")
def dataset_zip(tmp_path_factory) -> Path:
    return write_dataset_zip(tmp_path_factory.mktemp("zip"))


def test_photo_with_a_face_gets_a_box_a_label_a_crop_and_a_table_row(page, grace_hopper_path):
    tab = page.upload
    shown = tab.on_photo_change(str(grace_hopper_path), "happy_sad", request())

    original = read_image(grace_hopper_path)
    annotated, table = shown[tab.annotated]["value"], shown[tab.table]
    assert annotated.shape == original.shape
    # Grace Hopper's calm portrait: the model leans one way but says it is unsure, in the table and in the
    # main face's panel, whose headline is its top entry.
    assert len(table) == 1 and re.fullmatch(r"Unsure \(leans (happy|sad), \d+%\)", table.iloc[0]["label"])
    leaning = re.match(r"Unsure \(leans (happy|sad)", table.iloc[0]["label"]).group(1)
    scores = shown[tab.scores]
    assert set(scores) == {f"Unsure (leans {leaning})", "sad" if leaning == "happy" else "happy"}
    assert max(scores, key=scores.get) == f"Unsure (leans {leaning})"
    # The box is drawn where the face is, in neutral grey rather than a label's colour.
    x, y, width, height = (int(table.iloc[0][key]) for key in ("x", "y", "width", "height"))
    assert tuple(int(c) for c in annotated[y + height // 2, x]) == UNSURE_COLOR
    # The face as the model saw it: its 48 x 48 grayscale input, captioned with its label.
    (crop, caption), = shown[tab.crops]
    assert crop.shape == (48, 48) and caption.startswith(table.iloc[0]["label"])
    assert "One face found" in shown[tab.message]
    # A screen reader hears what the labels drawn on the photo say.
    assert shown[tab.annotated]["alt_text"] == f"The photo with its face boxed and labelled: {caption}."
    assert shown[tab.whole_image]["visible"] is False

    # Clicking the row (or the crop) outlines that face's box in white.
    highlighted = tab.on_face_select(shown[tab.shown], SimpleNamespace(index=[0, 1]))[tab.annotated]
    line = max(2, round(max(original.shape[:2]) / 300))
    assert tuple(int(c) for c in highlighted[y + height // 2, x - line]) == HIGHLIGHT_COLOR
    assert tuple(int(c) for c in annotated[y + height // 2, x - line]) != HIGHLIGHT_COLOR


def test_photo_without_a_face_says_so_and_offers_the_whole_image(page, tmp_path):
    path = tmp_path / "sky.png"
    gradient = np.linspace(0, 255, 320 * 240, dtype=np.float32).reshape(240, 320)
    Image.fromarray(gradient.astype(np.uint8)).convert("RGB").save(path)
    tab = page.upload

    shown = tab.on_photo_change(str(path), "happy_sad", request())
    assert "No face found" in shown[tab.message] and shown[tab.scores] is None and len(shown[tab.table]) == 0
    assert shown[tab.whole_image]["visible"] is True and shown[tab.crops] == []
    assert shown[tab.annotated]["alt_text"] == "The photo; no face found."

    shown = tab.on_whole_image_click(str(path), "happy_sad", request())
    assert len(shown[tab.table]) == 1 and len(shown[tab.scores]) == 2
    assert shown[tab.message].startswith("Whole image")
    assert shown[tab.annotated]["alt_text"].startswith("The photo, classified as one face: ")


def test_alt_text_of_a_group_photo_reads_every_face_largest_first():
    def face(size: int, label: str, confidence: float, uncertain: bool = False) -> FacePrediction:
        return FacePrediction(FaceBox(0, 0, size, size), label, confidence, {}, uncertain)

    faces = [face(90, "happy", 0.93), face(60, "sad", 0.55, uncertain=True)]
    assert display.faces_alt_text(faces) == ("The photo with 2 faces boxed and labelled, largest first: "
                                             "happy 93%; Unsure (leans sad, 55%).")


def test_cleared_photo_clears_the_results(page):
    tab = page.webcam
    shown = tab.on_photo_change(None, "happy_sad", request())
    assert shown[tab.annotated] is None and shown[tab.scores] is None and len(shown[tab.table]) == 0
    assert shown[tab.message] == "" and shown[tab.crops] == []


@pytest.mark.parametrize("kind, expected", [
    ("empty", "photo.jpg: the file is empty"),
    ("pdf", "photo.jpg: not an image"),
    ("truncated", "photo.jpg: the image is corrupt or truncated"),
])
def test_bad_files_raise_a_clear_gradio_error(page, tmp_path, grace_hopper_path, kind, expected):
    contents = {"empty": b"", "pdf": b"%PDF-1.4 not really a photo",
                "truncated": grace_hopper_path.read_bytes()[:5000]}
    path = tmp_path / "photo.jpg"
    path.write_bytes(contents[kind])
    with pytest.raises(gr.Error, match=expected):
        page.upload.on_photo_change(str(path), "happy_sad", request())


def test_a_photo_over_the_upload_limit_is_refused_before_decoding(page, tmp_path):
    path = tmp_path / "huge.jpg"
    with path.open("wb") as file:
        file.truncate(MAX_IMAGE_UPLOAD_BYTES + 1)
    with pytest.raises(gr.Error, match="over the 20 MB limit"):
        page.upload.on_photo_change(str(path), "happy_sad", request())


def test_an_uncertain_face_is_unsure_in_grey_never_a_confident_label():
    box = FaceBox(20, 30, 60, 60)
    unsure = FacePrediction(box, "happy", 0.58, {"happy": 0.58, "sad": 0.42}, uncertain=True)
    image = np.full((120, 120, 3), 128, np.uint8)
    drawn = draw_predictions(image, [unsure], ["happy", "sad"])
    assert tuple(int(c) for c in drawn[box.y + 30, box.x]) == UNSURE_COLOR
    assert display.faces_frame([unsure]).iloc[0]["label"] == "Unsure (leans happy, 58%)"
    message = display.prediction_message([unsure], whole_image=False)
    assert "Unsure (leans happy, 58%)" in message and "looks **happy**" not in message


def test_each_of_the_seven_emotions_has_its_own_colour_and_readable_text():
    assert len(set(LABEL_COLORS.values())) == 7 and UNSURE_COLOR not in LABEL_COLORS.values()
    image = np.full((120, 200, 3), 128, np.uint8)
    surprised = FacePrediction(FaceBox(20, 60, 48, 48), "surprise", 0.9, {"surprise": 0.9, "happy": 0.1})
    label = draw_predictions(image, [surprised], ["happy", "surprise"])[38:58, 20:120]
    yellow = np.all(label == LABEL_COLORS["surprise"], axis=-1)
    assert yellow.mean() > 0.3 and (label.max(axis=-1) < 80).any()  # dark text on the yellow label, not white


def test_about_shows_the_readme_for_visitors_without_dead_links():
    text = display.readme()
    assert "## The web app" in text and "## Performance" not in text and not text.startswith("---")
    assert not re.search(r"\]\((?!https?://)", text)  # links into the repository lead nowhere from the app


def test_a_label_near_the_right_edge_moves_left_to_stay_in_the_photo():
    image = np.full((120, 200, 3), 128, np.uint8)
    face = FacePrediction(FaceBox(150, 60, 48, 48), "happy", 0.58, {"happy": 0.58, "sad": 0.42}, uncertain=True)
    drawn = draw_predictions(image, [face], ["happy", "sad"])
    label_row = drawn[50]  # the label sits above the box
    grey = np.all(label_row == UNSURE_COLOR, axis=1) | np.all(label_row == (255, 255, 255), axis=1)
    assert grey[199], "the label runs to the photo's right edge"
    assert grey[:150].any(), "the label starts left of the box, so all of its text is in the photo"


@pytest.mark.skipif(not EMOTIONS_PRESENT, reason="models/emotions.keras is not in this checkout")
def test_the_model_picker_switches_this_tab_to_the_emotions_model_and_about_follows(page, grace_hopper_path):
    shown = page.upload.on_photo_change(str(grace_hopper_path), "emotions", request("picker"))
    assert set(shown[page.upload.scores]) == {"angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"}

    followed = page.about.on_model_select("emotions", request("picker"))
    assert "emotions.keras` (bundled)" in followed[page.about.about]
    assert followed[page.webcam.model] == "emotions"  # the other tab's picker follows
    assert page.server.sessions.get("picker").model == "emotions"


def test_an_unknown_model_choice_is_a_message(page, grace_hopper_path):
    with pytest.raises(gr.Error, match="no model named 'mine'"):
        page.upload.on_photo_change(str(grace_hopper_path), "mine", request())


def test_dataset_upload_shows_counts_and_faces_and_rescans_when_the_image_size_changes(page, dataset_zip):
    tab = page.train
    shown = tab.on_dataset_change(str(dataset_zip), "auto", 48, "scratch", request(), progress=no_progress)
    # Named as the visitor named it; its 48-pixel cartoon faces are face crops, used whole.
    assert shown[tab.summary].startswith("**faces.zip**: class folders, images used whole, as face crops.")
    assert "| happy | 17 | 3 |" in shown[tab.summary] and "| sad | 17 | 3 |" in shown[tab.summary]
    assert len(shown[tab.thumbnails]) == 2 * display.THUMBNAILS_PER_CLASS
    assert {caption for _, caption in shown[tab.thumbnails]} == {"happy", "sad"}
    assert shown[tab.thumbnails][0][0].shape == (48, 48) and shown[tab.start]["interactive"] is True

    rescanned = tab.on_dataset_change(str(dataset_zip), "auto", 64, "scratch", request(), progress=no_progress)
    assert rescanned[tab.thumbnails][0][0].shape == (64, 64)  # the preview is what training will see
    assert "Warning" not in rescanned[tab.summary]
    # Starting from the seven-emotion model, faces are cropped to its input size, whatever the slider says.
    based = tab.on_dataset_change(str(dataset_zip), "auto", 64, "emotions", request(), progress=no_progress)
    assert based[tab.thumbnails][0][0].shape == (48, 48)


@pytest.mark.parametrize("mode, detected, expected", [
    ("auto", 40, "faces cropped from photos"),
    ("auto", 31, "faces cropped from 31 photos; 9 face crops used whole"),
    ("auto", 0, "images used whole, as face crops"),
    ("crop", 40, "faces cropped from photos"),
    ("none", 0, "images used whole (face cropping off)"),
])
def test_the_preview_says_how_images_became_faces(mode, detected, expected):
    summary = {"face_mode": mode, "faces_detected": detected,
               "used": {"train": {"happy": 16, "sad": 16}, "val": {"happy": 4, "sad": 4}}}
    assert faces_found(summary) == expected


def test_a_class_with_few_images_is_warned_about_before_training(page, tmp_path):
    shown = page.train.on_dataset_change(str(write_dataset_zip(tmp_path, per_class=6)), "auto", 48, "scratch",
                                         request("few"), progress=no_progress)
    assert "**Warning:** Few usable images for happy (6), sad (6)" in shown[page.train.summary]


def test_a_file_that_is_not_a_zip_gets_a_clear_message(page, tmp_path):
    path = tmp_path / "dataset.zip"
    path.write_text("not a zip")
    with pytest.raises(gr.Error, match="not a zip file"):
        page.train.on_dataset_change(str(path), "auto", 48, "auto", request(), progress=no_progress)


def test_training_streams_each_epoch_then_offers_the_model_to_this_tab_only(page, dataset_zip, grace_hopper_path):
    tab = page.train
    *_, asked = tab.on_start_click(request("owner"))
    updates = []
    for update in tab.on_train_click(str(dataset_zip), 2, 16, 3e-3, True, "auto", 48, "scratch", 0, asked,
                                     request=request("owner"), progress=no_progress):
        if update[tab.status].startswith("Trained. Converting"):  # the training has ended, its export not yet
            rescanned = tab.on_dataset_change(str(dataset_zip), "auto", 56, "scratch", request("owner"),
                                              progress=no_progress)
            assert rescanned[tab.start]["interactive"] is False  # not yet: a second click would queue behind it
        updates.append(update)
    start, stop = tab.on_buttons(str(dataset_zip), request("owner"))
    assert start["interactive"] is True and stop["interactive"] is False
    assert updates[0][tab.status] == "Training on faces.zip started."  # it says which dataset it trains on
    charts = [update[tab.loss_plot] for update in updates if update.get(tab.loss_plot) is not None]
    # Training + validation points, growing each epoch; the final answer carries the charts once more.
    assert [len(chart) for chart in charts] == [2, 4, 4]
    final = updates[-1]
    # 34 training faces: a fixed schedule, and the status says which epoch was kept and why.
    assert final[tab.status].startswith("**Done.** Kept epoch 2 of 2, the last: with few images, validation")
    assert "Planned: from scratch, 2 epochs, batch 16." in final[tab.status]
    assert final[tab.loss_plot].equals(charts[-2])
    assert "Validation accuracy" in final[tab.metrics] and "95% interval" in final[tab.metrics]
    assert Path(final[tab.confusion]).is_file() and Path(final[tab.curves]).is_file()
    assert sorted(Path(file).suffix for file in final[tab.files]) == [".json", ".keras", ".tflite"]
    name = Path(final[tab.files][0]).stem

    ended = page.about.on_training_end(request("owner"))
    assert ended[tab.use_button]["visible"] is True and name in ended[page.upload.model]["choices"]
    used = page.about.on_use_model_click(request("owner"))
    assert f"`{name}.keras`" in used[page.about.about] and "this browser tab" in used[tab.message]
    assert used[page.webcam.model]["value"] == name
    shown = page.upload.on_photo_change(str(grace_hopper_path), name, request("owner"))
    assert len(shown[page.upload.table]) == 1
    # The next training's end says which model is still in use, not "now use" as if it were the new one.
    assert page.about.on_training_end(request("owner"))[tab.message] == f"Upload, Webcam and Live use **{name}**."

    with pytest.raises(gr.Error, match="Train a model"):
        page.about.on_use_model_click(request("stranger"))
    with pytest.raises(gr.Error, match=f"no model named '{name}'"):
        page.upload.on_photo_change(str(grace_hopper_path), name, request("stranger"))

    model_path = Path(final[tab.files][0])
    page.on_page_unload(request("owner"))
    assert not model_path.exists() and "owner" not in page.server.sessions.ids()


def test_stop_without_a_training_says_so(page):
    assert "No training" in page.train.on_stop_click(request("idle"))[page.train.status]


def test_stop_while_a_training_waits_its_turn_cancels_it_and_a_new_dataset_keeps_start_off(page, dataset_zip):
    tab = page.train
    start, stop, asked = tab.on_start_click(request("queued"))  # Start pressed: the training waits its turn
    assert start["interactive"] is False and stop["interactive"] is True
    # Another zip uploaded meanwhile is previewed, but Start stays off until that training has ended.
    shown = tab.on_dataset_change(str(dataset_zip), "auto", 48, "scratch", request("queued"), progress=no_progress)
    assert shown[tab.summary].startswith("**faces.zip**") and shown[tab.start]["interactive"] is False

    assert "will not start" in tab.on_stop_click(request("queued"))[tab.status]
    # Start is back at once (the cancelled request may wait long behind another visitor's training).
    start, stop = tab.on_buttons(str(dataset_zip), request("queued"))
    assert start["interactive"] is True and stop["interactive"] is False
    *_, again = tab.on_start_click(request("queued"))  # pressed again: this one is not cancelled

    updates = list(tab.on_train_click(str(dataset_zip), 2, 16, 3e-3, True, "auto", 48, "scratch", 0, asked,
                                      request=request("queued"), progress=no_progress))
    assert [update[tab.status] for update in updates] == ["**Cancelled** before it started. Press Start to train."]
    assert page.server.sessions.get("queued").job is None
    # The cancelled request's end leaves the new one waiting: Start off, Stop on.
    start, stop = tab.on_buttons(str(dataset_zip), request("queued"))
    assert start["interactive"] is False and stop["interactive"] is True
    assert "will not start" in tab.on_stop_click(request("queued"))[tab.status]
    assert list(tab.on_train_click(str(dataset_zip), 2, 16, 3e-3, True, "auto", 48, "scratch", 0, again,
                                   request=request("queued"), progress=no_progress))[0][tab.status].startswith(
        "**Cancelled**")
    # Nothing waits any more: Stop says so, and a new preview turns Start on.
    assert "No training" in tab.on_stop_click(request("queued"))[tab.status]
    shown = tab.on_dataset_change(str(dataset_zip), "auto", 48, "scratch", request("queued"), progress=no_progress)
    assert shown[tab.start]["interactive"] is True


def test_a_training_that_cannot_start_frees_start_again(page, tmp_path, dataset_zip):
    tab = page.train
    *_, asked = tab.on_start_click(request("refused"))
    not_a_zip = tmp_path / "notes.zip"
    not_a_zip.write_text("not a zip")
    with pytest.raises(gr.Error, match="not a zip file"):
        list(tab.on_train_click(str(not_a_zip), 2, 16, 3e-3, True, "auto", 48, "scratch", 0, asked,
                                request=request("refused"), progress=no_progress))
    shown = tab.on_dataset_change(str(dataset_zip), "auto", 48, "scratch", request("refused"), progress=no_progress)
    assert shown[tab.start]["interactive"] is True


def test_about_panel_describes_the_bundled_model(page):
    text = display.model_markdown(page.server.predictors.default.bundle)
    assert "happy_sad.keras` (bundled)" in text and "Validation accuracy:" in text
    assert re.search(r"Trained on:.*, \d{1,2} [A-Z][a-z]+ 20\d\d, \d\d:\d\d UTC$", text, re.M)  # when, in words
    assert "Read out of:** emotions" in text and "happy = 1 x happy + 0.5 x neutral" in text


def test_stop_ends_a_200_epoch_training_and_frees_its_model(page, dataset_zip, monkeypatch):
    built, real_build_model = [], training.build_model

    def build_model(*args, **kwargs):
        model = real_build_model(*args, **kwargs)
        built.append(weakref.ref(model))
        return model

    monkeypatch.setattr(training, "build_model", build_model)
    tab = page.train
    updates = tab.on_train_click(str(dataset_zip), 200, 32, 3e-3, False, "auto", 48, "scratch", 0,
                                 request=request("stopper"), progress=no_progress)
    for update in updates:
        if " done in " in update.get(tab.status, ""):
            assert "Stopping" in tab.on_stop_click(request("stopper"))[tab.status]
    assert update[tab.status].startswith("**Done.** Stopped by you")
    del update, updates

    gc.collect()
    assert len(built) == 1 and built[0]() is None, "the stopped training's model (and its optimizer) stays in memory"
    assert page.server.sessions.get("stopper").job is None


def test_live_frames_come_back_labelled_with_one_stream_object_per_visitor(page, grace_hopper_path):
    tab = page.live
    frame = np.full((480, 640, 3), 110, np.uint8)
    frame[90:390, 192:448] = read_image(grace_hopper_path)[::2, ::2]
    shown = tab.on_webcam_stream(frame, None, request("live"))
    annotated, rate, live = shown[tab.labelled], shown[tab.rate], shown[tab.stream]
    assert annotated.shape == frame.shape and not np.array_equal(annotated, frame)
    assert rate.endswith(", 1 face; model `happy_sad` (pick another in the Upload tab)")
    for _ in range(3):  # the same visitor's next frames reuse their stream, which counts the rate
        shown = tab.on_webcam_stream(frame, live, request("live"))
    assert shown[tab.stream] is live and not shown[tab.rate].startswith("**0.0 frames/s")
    assert tab.on_webcam_stream(frame, None, request("other"))[tab.stream] is not live  # another visitor
    assert tab.on_webcam_stream(None, live, request("live")) == {}  # no frame yet: nothing changes


def test_the_page_serves_without_tensorflow_until_the_train_tab_is_opened(tmp_path, grace_hopper_path):
    """TensorFlow takes about 4 s to import: not at start (it would slow the page and the first
    predictions) and not for visitors who only predict; opening the Train tab starts loading it."""
    code = f"""
import sys
from types import SimpleNamespace
import app
from emotion.serving import Server
server = Server(sessions_root={str(tmp_path)!r})
page = app.EmotionApp(server)
shown = page.upload.on_photo_change({str(grace_hopper_path)!r}, "happy_sad", SimpleNamespace(session_hash="one"))
print("predicted", len(shown[page.upload.table]), "tensorflow" in sys.modules)
select = [block_fn for block_fn in page.demo.fns.values()
          if getattr(block_fn.fn, "__func__", None) is Server.load_trainer_in_background]
assert [target[1] for target in select[0].targets] == ["select"], select
select[0].fn()
server._trainer_loader.join()
print("opened", "emotion.training" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-5:] == ["predicted", "1", "False", "opened", "True"]
