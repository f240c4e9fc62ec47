"""Prediction on real and generated photos: boxes on the upright image, batching, no-face results."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import box_iou
from emotion.images import read_image
from emotion.predictor import Predictor
from emotion.preprocess import face_pixels


@pytest.fixture(scope="module")
def predictor(tiny_training) -> Predictor:
    result, _, _ = tiny_training
    return Predictor.load(result.model_path)


def test_phone_photo_boxes_land_on_the_upright_face(predictor, grace_hopper_path, tmp_path):
    upright = predictor.predict_source(grace_hopper_path)["faces"]
    # Store the pixels rotated, with the EXIF tag that tells viewers to rotate them back.
    stored = Image.open(grace_hopper_path).transpose(Image.Transpose.ROTATE_90)  # counter-clockwise
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    path = tmp_path / "phone.jpg"
    stored.save(path, exif=exif, quality=95)

    rotated = predictor.predict_source(path)["faces"]
    assert len(upright) == len(rotated) == 1
    assert np.allclose(upright[0]["box"], rotated[0]["box"], atol=12)


def test_every_face_of_a_photo_is_classified_and_batching_changes_nothing(predictor, grace_hopper_path):
    image = read_image(grace_hopper_path)
    pair = np.concatenate([image, image[:, ::-1]], axis=1)  # the portrait and its mirror side by side
    faces = predictor.predict_image(pair)
    assert len(faces) == 2 and abs(faces[0].box.x - faces[1].box.x) > 300
    pixels = face_pixels(pair, [face.box for face in faces], predictor.preprocessing)
    one_at_a_time = np.concatenate([predictor.classify(pixels[i : i + 1]) for i in range(len(faces))])
    batched = np.array([[face.scores[name] for name in predictor.class_names] for face in faces])
    assert np.allclose(batched, one_at_a_time, atol=1e-5)


def test_no_face_gives_an_empty_list_and_none_mode_classifies_the_whole_image(predictor):
    sky = np.full((240, 320, 3), (120, 160, 200), np.uint8)
    assert predictor.predict_image(sky) == []
    whole = predictor.predict_image(sky, faces="none")
    assert len(whole) == 1 and whole[0].box.as_list() == [0, 0, 320, 240]
    assert sum(whole[0].scores.values()) == pytest.approx(1.0, abs=1e-5)


def test_grayscale_and_rgba_arrays_find_the_face_and_floats_are_refused_plainly(predictor, grace_hopper_path):
    image = read_image(grace_hopper_path)
    gray = np.asarray(Image.fromarray(image).convert("L"))
    rgba = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
    for array in (gray, gray[..., None], rgba):
        assert len(predictor.predict_image(array)) == 1
    with pytest.raises(ValueError, match=r"expected uint8 pixels .* got float32"):
        predictor.predict_image(image.astype(np.float32) / 255)  # rather than "no face"
    with pytest.raises(ValueError, match=r"got \(2, 3, 4, 5\)"):
        predictor.predict_image(np.zeros((2, 3, 4, 5), np.uint8))


def test_unreadable_upload_is_an_error_record_not_an_exception(predictor):
    record = predictor.predict_source(b"\x00\x01garbage", name="upload.jpg")
    assert record["faces"] == [] and "upload.jpg" in record["error"]


def test_many_photos_come_back_in_order_with_failures_in_place(predictor, grace_hopper_path, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    sources = [grace_hopper_path, broken, grace_hopper_path, tmp_path / "missing.png", grace_hopper_path]
    records = list(predictor.predict_sources(sources))  # two at a time
    assert [record["path"] for record in records] == [str(source) for source in sources]
    assert records == [predictor.predict_source(source) for source in sources]
    assert [record["error"] is None for record in records] == [True, False, True, False, True]


def test_a_12_megapixel_photo_gives_boxes_in_its_own_pixels(predictor, grace_hopper_path, tmp_path):
    face = Image.open(grace_hopper_path)  # 512 x 600
    canvas = Image.new("RGB", (4000, 3000), (90, 110, 100))
    canvas.paste(face.resize((1536, 1800)), (1200, 600))  # three times larger, at a known place
    path = tmp_path / "phone.jpg"
    canvas.save(path, quality=90)

    small = predictor.predict_source(grace_hopper_path)["faces"][0]["box"]
    large = predictor.predict_source(path)["faces"]
    assert len(large) == 1
    expected = [1200 + 3 * small[0], 600 + 3 * small[1], 3 * small[2], 3 * small[3]]
    assert box_iou(large[0]["box"], expected) > 0.7  # the detector sees the face at another scale: close, not equal
