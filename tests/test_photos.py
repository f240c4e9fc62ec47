"""One path from an image file to face crops, for training, evaluation and serving alike."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from emotion import datasets, photos
from emotion.config import TrainConfig
from emotion.errors import ImageError
from emotion.faces import FaceDetector
from emotion.predictor import Predictor


@pytest.fixture(scope="module")
def predictor():
    return Predictor.load()


def test_a_photo_gives_the_same_face_crop_to_training_and_to_prediction(tmp_path, grace_hopper_path, predictor):
    # A phone-sized photo: both paths read it reduced the same way before detecting and cropping.
    big = tmp_path / "happy" / "portrait.jpg"
    big.parent.mkdir()
    Image.open(grace_hopper_path).resize((2400, 2812)).save(big, quality=95)
    (tmp_path / "sad").mkdir()
    shutil.copy(grace_hopper_path, tmp_path / "sad" / "small.jpg")
    layout = datasets.open_dataset(tmp_path)
    arrays = datasets.load_faces(layout.splits["train"], layout.class_names, predictor.preprocessing, "auto")
    served = photos.extract_faces(big, predictor.preprocessing, "auto", predictor.detector)
    assert served.detected and len(served.boxes) == 1
    np.testing.assert_array_equal(arrays.pixels[0], served.pixels[0])
    # ... and the predictor classifies exactly that crop.
    face = predictor.predict_photo(big).predictions[0]
    assert face.scores == pytest.approx(dict(zip(predictor.class_names, predictor.classify(served.pixels)[0])))


def test_face_modes_mean_the_same_everywhere(grace_hopper_path):
    detector, preprocessing = FaceDetector(), TrainConfig().preprocessing
    photo = Image.open(grace_hopper_path).convert("RGB")  # 512 x 600, the face about 200 pixels wide
    portrait = np.asarray(photo)
    crop = np.asarray(photo.crop((143, 117, 384, 358)).resize((48, 48)))  # FER-2013's framing and size
    thumbnail = np.asarray(photo.resize((100, 117)))  # a web page's thumbnail of the portrait
    assert photos.faces_of_image(portrait, preprocessing, "auto", detector).detected  # a photo: detect
    assert not photos.faces_of_image(crop, preprocessing, "auto", detector).detected  # a face crop: whole
    # As small as a face crop, but the face fills a third of it: a scene, whose face is cropped.
    small = photos.faces_of_image(thumbnail, preprocessing, "auto", detector)
    assert small.detected and len(small.boxes) == 1 and 30 <= small.boxes[0].width <= 50
    assert photos.faces_of_image(portrait, preprocessing, "none", detector).boxes[0].as_list() == [0, 0, 512, 600]
    with pytest.raises(ValueError, match="faces must be one of"):
        photos.find_boxes(portrait, "detect", detector)


def test_many_photos_are_read_in_order_with_unreadable_ones_in_place(tmp_path, grace_hopper_path, predictor):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 cut short")
    sources = [(grace_hopper_path, "a"), (broken, "b"), (grace_hopper_path, "c"), (broken, "d")]
    results = list(photos.extract_many(sources, predictor.preprocessing, in_flight=2))
    assert [isinstance(result, ImageError) for result in results] == [False, True, False, True]
    assert str(results[1]).startswith("b:") and str(results[3]).startswith("d:")
    one = photos.extract_faces(grace_hopper_path, predictor.preprocessing, "auto", predictor.detector)
    for result in results[0::2]:
        assert [box.as_list() for box in result.boxes] == [box.as_list() for box in one.boxes]
        np.testing.assert_array_equal(result.pixels, one.pixels)
