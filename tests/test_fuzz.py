"""Property-based fuzzing of the image decoder and the predictor: random and mutated bytes give a
result or the package's own error, never any other exception."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from emotion.errors import ImageError
from emotion.images import read_image
from emotion.predictor import Predictor

# Found by this test: a TIFF whose StripOffsets tag claims 8-byte values (type LONG8) reads pixel
# bytes as a file offset past 2**63, and Pillow raised OverflowError from seek().
TIFF_HUGE_STRIP_OFFSET = bytes.fromhex(
    "49492a000800000009000001040001000000040000000101040001000000040000000201030001000000080000000301"
    "0300010000000100000006010300010000000100000011011000010000007a00000016010400010000000400000017"
    "01040001000000100000001c010300010000000100000000000000ffffffffffffffffffffffffffffffff"
)


def small_image_files() -> list[bytes]:
    """One small valid file per supported format, with EXIF where the format carries it."""
    pixels = np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate on reading: the EXIF parser is exercised too
    files = []
    for image_format, options in [("JPEG", {"exif": exif}), ("PNG", {"exif": exif}), ("GIF", {}),
                                  ("WEBP", {"exif": exif}), ("BMP", {}), ("TIFF", {"exif": exif}),
                                  ("TIFF", {"compression": "tiff_lzw"})]:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, image_format, **options)
        files.append(buffer.getvalue())
    return files


SEEDS = small_image_files()
# Random bytes rarely get past format detection; behind a real signature they reach each parser.
SIGNATURES = [b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"RIFF\x00\x01\x00\x00WEBPVP8 ", b"BM",
              b"II*\x00", b"MM\x00*"]


@st.composite
def mutated_files(draw) -> bytes:
    """A valid file with a few byte flips, cuts, deletions and splices from another file."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "flip", "truncate", "delete", "splice"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del data[at:]
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        else:
            donor = draw(st.sampled_from(SEEDS))
            start = draw(st.integers(0, len(donor) - 1))
            data[at:at] = donor[start:start + draw(st.integers(1, 256))]
    return bytes(data)


hostile_bytes = st.one_of(
    st.binary(max_size=2048),
    st.builds(lambda signature, rest: signature + rest, st.sampled_from(SIGNATURES), st.binary(max_size=1024)),
    mutated_files(),
)


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor.load()


def test_the_seeds_are_valid_images():
    for data in SEEDS:
        image = read_image(data)
        assert sorted(image.shape[:2]) == [12, 16] and image.shape[2] == 3


@settings(max_examples=2000, deadline=None)
@given(data=hostile_bytes)
@example(data=TIFF_HUGE_STRIP_OFFSET)
def test_the_decoder_gives_an_image_or_an_image_error(data):
    try:
        image = read_image(data)
    except ImageError as error:
        assert str(error).startswith("uploaded image: ")
        return
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8 and min(image.shape) >= 1


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(mutated_files(), hostile_bytes), faces=st.sampled_from(["auto", "none"]))
@example(data=TIFF_HUGE_STRIP_OFFSET, faces="auto")
@example(data=b"", faces="auto")
def test_the_predictor_gives_a_record_or_an_error_record(predictor, data, faces):
    """Both paths: faces detected in the image, and the whole image classified as one face."""
    record = predictor.predict_source(data, faces=faces)
    assert set(record) == {"path", "faces", "error"}
    if record["error"] is not None:
        assert isinstance(record["error"], str) and record["faces"] == []
        return
    for face in record["faces"]:
        assert len(face["box"]) == 4 and face["label"] in predictor.class_names
        assert sum(face["scores"].values()) == pytest.approx(1.0, abs=1e-4)
