"""Reading odd image files the way users have them."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from emotion.errors import ImageError
from emotion.images import read_image, read_image_reduced


def gradient(width=64, height=48) -> np.ndarray:
    x = np.linspace(0, 255, width, dtype=np.float32)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    return np.stack([np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width)),
                     np.full((height, width), 128.0)], axis=2).astype(np.uint8)


@pytest.mark.parametrize("extension", ["jpg", "png", "webp", "bmp", "gif"])
def test_common_formats_decode_to_rgb(tmp_path, extension):
    path = tmp_path / f"photo.{extension}"
    Image.fromarray(gradient()).save(path)
    image = read_image(path)
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8
    assert image[:, :, 0].mean() == pytest.approx(gradient()[:, :, 0].mean(), abs=12)


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (20, 20), color) for color in ((250, 250, 250), (0, 0, 0))]
    path = tmp_path / "animated.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert read_image(path).mean() > 200


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((30, 60, 3), np.uint8)
    pixels[:, :30] = 255  # left half white in the stored (landscape) pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    path = tmp_path / "phone.jpg"
    Image.fromarray(pixels).save(path, exif=exif)
    upright = read_image(path)
    assert upright.shape[:2] == (60, 30)  # portrait once upright
    assert upright[:25].mean() > 200 and upright[35:].mean() < 50  # the white half is now on top


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "1"])
def test_any_mode_becomes_rgb(tmp_path, mode):
    path = tmp_path / f"image-{mode}.{'jpg' if mode == 'CMYK' else 'png'}"
    Image.fromarray(gradient()).convert(mode).save(path)
    image = read_image(path)
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8


def test_rgba_transparency_is_white(tmp_path):
    path = tmp_path / "transparent.png"
    Image.new("RGBA", (10, 10), (0, 0, 0, 0)).save(path)
    assert read_image(path).min() == 255


def test_sixteen_bit_keeps_its_range(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (8, 1))
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")
    image = read_image(path)
    assert image[0, 0, 0] == 0 and image[0, -1, 0] == 255  # scaled, not clipped at 255


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"this is a text file, not a picture", "not an image"),
    (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "not an image"),
    # An iPhone's photo (the start of its ISO media header): named, and how to get a JPEG instead.
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64), r"a HEIC/HEIF photo .* Convert it to JPEG"),
    (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1" + bytes(64), r"an AVIF image, .* Convert it to JPEG"),
    (b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avif" + bytes(64), r"an AVIF image, .* Convert it to JPEG"),
])
def test_non_images_raise_one_clear_error(tmp_path, content, message):
    path = tmp_path / "holiday.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=message) as error:
        read_image(path)
    assert "holiday.jpg" in str(error.value)


def test_an_uploaded_heic_photo_is_named_too():
    with pytest.raises(ImageError, match="uploaded image: a HEIC/HEIF photo"):
        read_image(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64))


def test_truncated_jpeg_is_reported(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(gradient(400, 300)).save(buffer, "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageError, match="corrupt or truncated"):
        read_image(path)


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (10_000, 10_000)).save(path)  # 100 MP, a few kB on disk
    with pytest.raises(ImageError, match="megapixels"):
        read_image(path)


def test_bytes_are_accepted():
    buffer = io.BytesIO()
    Image.fromarray(gradient()).save(buffer, "PNG")
    assert read_image(buffer.getvalue()).shape == (48, 64, 3)


@pytest.mark.parametrize("extension", ["jpg", "png"])
def test_large_photos_can_be_read_reduced_with_the_factor_back_to_full_size(tmp_path, extension):
    path = tmp_path / f"phone.{extension}"
    gradient = np.linspace(0, 255, 4000, dtype=np.float32)[None, :].repeat(3000, axis=0)
    Image.fromarray(gradient.astype(np.uint8)).convert("RGB").save(path)

    reduced, factor = read_image_reduced(path, 1000)
    assert reduced.shape == (750, 1000, 3) and factor == pytest.approx(4.0, rel=0.01)
    # The same picture, only smaller: the gradient still runs dark to light across the width.
    assert reduced[:, :50].mean() < 20 and reduced[:, -50:].mean() > 235
    small, factor = read_image_reduced(path, 5000)
    assert small.shape == (3000, 4000, 3) and factor == 1.0
