"""Reading images the way users have them: any common format and mode, upright, as RGB uint8.

Every failure becomes one `ImageError` that names the file; nothing here ever crashes a batch.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path
from typing import BinaryIO, Union

import cv2
import numpy as np
from PIL import Image, ImageOps

from emotion.errors import ImageError
from emotion.limits import MAX_IMAGE_PIXELS

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
# Photo formats that cannot be read here: a folder's are still listed, so that each gets its message.
UNREADABLE_PHOTO_EXTENSIONS = (".heic", ".heif", ".avif")
# The only decoders an upload reaches, whatever its name says: Pillow knows forty formats, and each
# parser is attack surface (EPS even runs Ghostscript). "JPEG" also opens phones' multi-picture JPEGs.
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")

ImageSource = Union[str, Path, bytes, BinaryIO]

# A JPEG reduced for a `max_side` is decoded at the smallest DCT scale keeping this share of it: a
# 1920-pixel photo at half scale (960) rather than whole and then shrunk, 10 ms instead of 20. The
# face detector sees 192 pixels either way; face crops lose at most a tenth of their pixels.
DRAFT_MIN_SHARE = 0.9

_SUPPORTED_HINT = "Use a JPEG, PNG, WebP, BMP, GIF or TIFF image."


def is_image_path(path: Path, unreadable_photos: bool = False) -> bool:
    """True when the file name has an image extension (hidden and macOS resource files excluded), or
    with `unreadable_photos`, that of a photo format that cannot be read here (HEIC, AVIF)."""
    extensions = IMAGE_EXTENSIONS + (UNREADABLE_PHOTO_EXTENSIONS if unreadable_photos else ())
    return path.suffix.lower() in extensions and not path.name.startswith(".")


def read_image(source: ImageSource, name: str | None = None) -> np.ndarray:
    """Decode `source` to an upright (height, width, 3) uint8 RGB array.

    EXIF orientation is applied, animated images give their first frame, transparency is
    composited onto white, and 16-bit or float images are scaled to 8 bits.
    """
    return read_image_reduced(source, None, name)[0]


def read_image_reduced(source: ImageSource, max_side: int | None, name: str | None = None) -> tuple[np.ndarray, float]:
    """Like `read_image`, but no larger than `max_side` on its long side, and the factor it shrank by.

    A JPEG, progressive ones included, is decoded at reduced scale (libjpeg's DCT scaling, nearly
    free), which may land up to 10% under `max_side` (DRAFT_MIN_SHARE); anything else is decoded
    whole and then shrunk. Multiply coordinates on the result by the factor for the original.
    """
    name = name or _describe(source)
    if isinstance(source, bytes):
        if not source:
            raise ImageError(f"{name}: the file is empty (0 bytes). {_SUPPORTED_HINT}")
        source = io.BytesIO(source)
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"{name}: no such file.")
        if path.stat().st_size == 0:
            raise ImageError(f"{name}: the file is empty (0 bytes). {_SUPPORTED_HINT}")
    try:
        with warnings.catch_warnings():
            # Pillow warns (and only raises at twice the limit) about large images; we check ourselves.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # Hostile files make Pillow warn about corrupt metadata, in ever new words; not a server log's business.
            warnings.filterwarnings("ignore", category=UserWarning, module="PIL")
            with Image.open(source, formats=IMAGE_FORMATS) as image:
                width, height = image.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise ImageError(
                        f"{name}: the image is {width} x {height} pixels, more than the "
                        f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels allowed. Resize it and try again."
                    )
                image.seek(0)  # first frame of an animated GIF, WebP or PNG
                if max_side and max(width, height) > max_side and image.format == "JPEG":
                    # Pillow's draft picks the smallest DCT scale (1/2, 1/4, 1/8) that keeps this size.
                    ratio = DRAFT_MIN_SHARE * max_side / max(width, height)
                    image.draft("RGB", (max(1, int(width * ratio)), max(1, int(height * ratio))))
                image.load()
                image = _reduce(image, max_side)
                ImageOps.exif_transpose(image, in_place=True)
                pixels = _to_rgb_array(image)
    except ImageError:
        raise
    except Image.DecompressionBombError as error:  # Pillow's own check, at over twice our limit
        raise ImageError(f"{name}: the image has more than the {MAX_IMAGE_PIXELS // 1_000_000} megapixels "
                         "allowed. Resize it and try again.") from error
    except Image.UnidentifiedImageError as error:
        raise ImageError(f"{name}: {_unsupported(source)}") from error
    except (OSError, SyntaxError, ValueError, TypeError, IndexError, KeyError, EOFError, ArithmeticError,
            struct.error, zlib.error) as error:
        # Truncated or corrupt data surfaces as any of these, depending on the decoder (a TIFF offset
        # past the end of memory is an OverflowError, for one).
        raise ImageError(f"{name}: the image is corrupt or truncated, so it cannot be read; save or export it "
                         f"again, or use another photo (the decoder said: {error}).") from error
    if max_side and max(pixels.shape[:2]) > max_side:
        ratio = max_side / max(pixels.shape[:2])
        size = (max(1, round(pixels.shape[1] * ratio)), max(1, round(pixels.shape[0] * ratio)))
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    return pixels, max(width, height) / max(pixels.shape[:2])


def as_rgb(pixels: np.ndarray) -> np.ndarray:
    """An image array a caller hands in, as (height, width, 3) uint8 RGB: grayscale (2-D or one channel)
    is repeated, transparency put onto white; anything else, floats included, is a ValueError that says
    what to pass, rather than a failure deep inside, or no face found."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels (0 to 255), got {pixels.dtype}; for floats in [0, 1] pass "
                         "(image * 255).round().astype(numpy.uint8)")
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an image of shape (height, width) or (height, width, 1, 3 or 4), "
                         f"got {pixels.shape}")
    if pixels.shape[2] == 1:
        return np.repeat(pixels, 3, axis=2)
    if pixels.shape[2] == 4:  # transparency onto white, as `read_image` does
        alpha = pixels[..., 3:].astype(np.float32) / 255.0
        return np.round(pixels[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    return pixels


def _reduce(image: Image.Image, max_side: int | None) -> Image.Image:
    """Shrink a decoded image by the largest whole factor that keeps it at least `max_side` long.

    Done before anything else touches the full-size pixels: a 12 MP PNG is 36 MB, and turning it
    upright, to RGB and to an array at full size cost more than decoding it. Pillow's box reduce is
    the same average as OpenCV's area resize by a whole factor. Palette images keep their size here
    (averaging palette indices would mix unrelated colours) and are shrunk after conversion.
    """
    factor = max(image.size) // max_side if max_side else 1
    if factor < 2 or image.mode not in _REDUCIBLE_MODES:
        return image
    return image.reduce(factor)


_REDUCIBLE_MODES = ("L", "LA", "RGB", "RGBA", "RGBa", "La")


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return _high_depth_to_rgb(image)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def _high_depth_to_rgb(image: Image.Image) -> np.ndarray:
    """16-bit, 32-bit integer or float grayscale to 8 bits, keeping the full tonal range."""
    pixels = np.asarray(image, dtype=np.float64)
    if image.mode == "F" and pixels.size and np.nanmax(pixels) <= 1.0:
        pixels = pixels * 255.0  # float images conventionally hold [0, 1]
    elif pixels.size and np.nanmax(pixels) > 255.0:
        pixels = pixels / 257.0  # 65535 -> 255
    gray = np.clip(np.nan_to_num(pixels), 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


# ISO media "ftyp" brands of the photo formats Pillow cannot read: iPhones save HEIC by default.
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}


def _unsupported(source: BinaryIO | Path | str) -> str:
    """Why an image could not be identified, naming the format when it is a known photo format."""
    try:
        if isinstance(source, (str, Path)):
            with open(source, "rb") as file:
                head = file.read(64)
        else:
            source.seek(0)
            head = source.read(64)
    except OSError:
        head = b""
    brands = {head[index : index + 4] for index in range(8, min(len(head), int.from_bytes(head[:4])), 4)}
    if head[4:8] == b"ftyp" and brands & _AVIF_BRANDS:  # AVIF may carry the generic HEIF brand "mif1" first
        return "an AVIF image, which is not supported. Convert it to JPEG or PNG."
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return ("a HEIC/HEIF photo (the iPhone's own format), which is not supported. Convert it to JPEG (an "
                "iPhone can save JPEGs: Settings > Camera > Formats > Most Compatible).")
    return f"not an image file, or a format that is not supported. {_SUPPORTED_HINT}"


def _describe(source: ImageSource) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    return getattr(source, "name", None) or "uploaded image"
