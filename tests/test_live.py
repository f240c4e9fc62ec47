"""Live streams: labels that do not flicker, faces followed as they move, frames per second.

Most tests script the detector's output frame by frame (the frame's first pixel is its number), so
each asserts exactly what a viewer would see; the last one streams a real face across frames.
"""

from __future__ import annotations

import numpy as np
import pytest

from emotion.faces import FaceBox
from emotion.images import read_image
from emotion.live import MISSED_FRAMES, LiveStream
from emotion.predictor import Predictor


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor.load()  # the bundled model; the scripted tests only borrow its class names


def scripted(predictor: Predictor, monkeypatch, frames: list[list[tuple[FaceBox, float]]]) -> list[np.ndarray]:
    """Make `predict_image` answer frame i with the faces of frames[i] (box, probability of happy)."""
    assert predictor.class_names == ["happy", "sad"]

    def predict_image(frame):
        faces = frames[int(frame[0, 0, 0])]
        return [predictor.face_prediction(box, np.array([happy, 1.0 - happy])) for box, happy in faces]

    monkeypatch.setattr(predictor, "predict_image", predict_image)
    return [np.full((48, 64, 3), index, np.uint8) for index in range(len(frames))]


def run(stream: LiveStream, frames: list[np.ndarray], seconds_apart: float = 0.1):
    return [stream.process(frame, now=index * seconds_apart) for index, frame in enumerate(frames)]


def test_a_face_whose_raw_label_flips_every_frame_keeps_one_label(predictor, monkeypatch):
    face = FaceBox(100, 100, 80, 80)
    raw_happy = [0.9, 0.4] * 6  # the classifier hesitates: happy, sad, happy, sad...
    frames = scripted(predictor, monkeypatch, [[(face, happy)] for happy in raw_happy])
    labels = [result.predictions[0].label for result in run(LiveStream(predictor), frames)]
    assert labels == ["happy"] * len(raw_happy)


def test_a_lasting_change_of_expression_shows_within_a_few_frames(predictor, monkeypatch):
    face = FaceBox(100, 100, 80, 80)
    frames = scripted(predictor, monkeypatch, [[(face, 0.9)]] * 5 + [[(face, 0.1)]] * 5)
    labels = [result.predictions[0].label for result in run(LiveStream(predictor), frames)]
    assert labels[:5] == ["happy"] * 5
    assert labels[5] == "happy" and labels[-3:] == ["sad"] * 3  # smoothed, not stuck


def test_two_moving_faces_keep_their_own_labels_whatever_order_they_are_found_in(predictor, monkeypatch):
    frames = []
    for step in range(8):
        left, right = (FaceBox(50 + 5 * step, 100, 80, 80), 0.9), (FaceBox(400 - 5 * step, 100, 80, 80), 0.1)
        frames.append([left, right] if step % 2 else [right, left])
    results = run(LiveStream(predictor), scripted(predictor, monkeypatch, frames))
    for result, faces in zip(results, frames):
        for prediction, (box, happy) in zip(result.predictions, faces):
            assert prediction.box == box  # boxes are this frame's, in the detector's order
            assert prediction.label == ("happy" if happy > 0.5 else "sad")
            assert prediction.scores["happy"] == pytest.approx(happy, abs=1e-6)  # no mixing between faces


def test_a_face_missed_for_a_few_frames_keeps_its_history_and_then_is_forgotten(predictor, monkeypatch):
    face = FaceBox(100, 100, 80, 80)
    brief_gap = [[(face, 0.9)]] * 4 + [[]] * MISSED_FRAMES + [[(face, 0.2)]]
    long_gap = [[(face, 0.9)]] * 4 + [[]] * (MISSED_FRAMES + 1) + [[(face, 0.2)]]
    brief = run(LiveStream(predictor), scripted(predictor, monkeypatch, brief_gap))[-1].predictions[0]
    assert brief.label == "happy" and 0.5 < brief.scores["happy"] < 0.9
    forgotten = run(LiveStream(predictor), scripted(predictor, monkeypatch, long_gap))[-1].predictions[0]
    assert forgotten.label == "sad" and forgotten.scores["happy"] == pytest.approx(0.2, abs=1e-6)


def test_frames_per_second_and_a_fresh_start_after_a_pause(predictor, monkeypatch):
    face = FaceBox(100, 100, 80, 80)
    frames = scripted(predictor, monkeypatch, [[(face, 0.9)]] * 30 + [[(face, 0.1)]])
    stream = LiveStream(predictor)
    results = run(stream, frames[:30], seconds_apart=0.08)
    assert results[0].frames_per_second == 0.0
    assert results[-1].frames_per_second == pytest.approx(12.5, rel=0.01)
    after_pause = stream.process(frames[30], now=30 * 0.08 + 5.0)  # the visitor stopped and restarted
    assert after_pause.predictions[0].label == "sad" and after_pause.frames_per_second == 0.0


def test_a_real_face_moving_across_frames_is_followed_and_its_scores_steadied(predictor, grace_hopper_path):
    face = read_image(grace_hopper_path)[::2, ::2]  # (300, 256, 3)
    stream = LiveStream(predictor)
    raw_happy, smoothed_happy = [], []
    for step in range(12):
        frame = np.full((480, 640, 3), 110, np.uint8)
        left = 40 + 25 * step
        frame[90:390, left:left + face.shape[1]] = face
        raw_happy.append(predictor.predict_image(frame)[0].scores["happy"])
        result = stream.process(frame, now=step / 15)
        assert len(result.predictions) == 1
        box = result.predictions[0].box
        assert left < box.x + box.width / 2 < left + face.shape[1]  # the box moves with the face
        smoothed_happy.append(result.predictions[0].scores["happy"])
    # The classifier's answer on this face jumps by up to 0.6 between frames 25 pixels apart.
    assert np.abs(np.diff(smoothed_happy)).sum() < 0.6 * np.abs(np.diff(raw_happy)).sum()
    assert result.frames_per_second == pytest.approx(15, rel=0.01)
