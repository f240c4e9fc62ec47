"""Hostile and odd images through every way in: the Upload handler, `/predict`, and
`python -m emotion predict --json`. Each gets a result or one clear message, and the next request works.

Every file is made here, from matplotlib's grace_hopper.jpg or from nothing.
"""

from __future__ import annotations

import io
import json
import re
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
from PIL import Image

import app as web
from conftest import PROJECT_ROOT, box_iou
from emotion.images import read_image
from emotion.limits import MAX_IMAGE_UPLOAD_BYTES
from emotion.serving import Server

BOMB_SIDE = 30_000  # pixels: 900 megapixels, 2.7 GB as RGB
# The stored pixels of a photo with EXIF orientation n are the upright photo with the inverse of
# the transform that orientation asks a viewer to apply.
STORED_FROM_UPRIGHT = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,  # the viewer turns it back 270 (90 clockwise)
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
CROWD_COLUMNS, CROWD_ROWS = 6, 5
HEAD_MARGIN = 1.4  # head tile side / face box side


@dataclass(frozen=True)
class Outcome:
    """What one endpoint made of one file: an error message, or the face boxes [x, y, w, h]."""

    error: str | None
    boxes: list[list[int]]


# Builders: each writes one file into `folder` and returns its path.

def png_bomb(folder: Path) -> Path:
    """A valid 30,000 x 30,000 one-bit PNG: 110 kB on disk, 2.7 GB once decoded to RGB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = bytes(1 + BOMB_SIDE // 8)  # filter byte, then one bit per pixel
    compressor = zlib.compressobj(9)
    pixels = b"".join(compressor.compress(row) for _ in range(BOMB_SIDE)) + compressor.flush()
    header = struct.pack(">IIBBBBB", BOMB_SIDE, BOMB_SIDE, 1, 0, 0, 0, 0)  # 1 bit, grayscale
    path = folder / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))
    return path


def over_upload_limit(folder: Path) -> Path:
    path = folder / "huge.jpg"
    with path.open("wb") as file:
        file.truncate(MAX_IMAGE_UPLOAD_BYTES + 1)  # sparse: takes no disk space
    return path


def saved(name: str, make, **options):
    def build(folder: Path, grace: Image.Image) -> Path:
        path = folder / name
        make(grace).save(path, **options)
        return path
    return build


def raw(name: str, data):
    """`data`: the bytes, or a function of the Grace Hopper image that makes them."""
    def build(folder: Path, grace: Image.Image) -> Path:
        path = folder / name
        path.write_bytes(data(grace) if callable(data) else data)
        return path
    return build


def jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def sixteen_bit(grace: Image.Image) -> Image.Image:
    return Image.fromarray(np.asarray(grace.convert("L"), np.uint16) * 257)  # full 0..65535 range


def transparent_border(grace: Image.Image) -> Image.Image:
    rgba = grace.convert("RGBA")
    alpha = np.zeros((grace.height, grace.width), np.uint8)
    alpha[60:-60, 60:-60] = 255  # the face stays opaque; the border is see-through
    rgba.putalpha(Image.fromarray(alpha))
    return rgba


def animated_gif(folder: Path, grace: Image.Image) -> Path:
    """Grace Hopper, then a black frame: the first frame is the one classified."""
    path = folder / "animated.gif"
    grace.save(path, save_all=True, append_images=[Image.new("RGB", grace.size, (0, 0, 0))], duration=200, loop=0)
    return path


def no_face(grace: Image.Image) -> Image.Image:
    ramp = np.linspace(0, 255, 640 * 480, dtype=np.float32).reshape(480, 640).astype(np.uint8)
    return Image.fromarray(ramp).convert("RGB")


def head_tile(grace: Image.Image, face_box: list[int]) -> Image.Image:
    x, y, width, height = face_box
    side = round(max(width, height) * HEAD_MARGIN)
    left, top = round(x + width / 2 - side / 2), round(y + height / 2 - side / 2)
    return grace.crop((left, top, left + side, top + side))


def crowd(grace: Image.Image, face_box: list[int]) -> Image.Image:
    head = head_tile(grace, face_box)
    canvas = Image.new("RGB", (head.width * CROWD_COLUMNS, head.height * CROWD_ROWS), (255, 255, 255))
    for index in range(CROWD_COLUMNS * CROWD_ROWS):
        row, column = divmod(index, CROWD_COLUMNS)
        canvas.paste(head, (column * head.width, row * head.height))
    return canvas


def oriented(grace: Image.Image, orientation: int) -> tuple[Image.Image, Image.Exif]:
    transform = STORED_FROM_UPRIGHT[orientation]
    stored = grace.transpose(transform) if transform is not None else grace.copy()
    exif = Image.Exif()
    exif[0x0112] = orientation
    return stored, exif


# Expected outcomes: a regex of the one message, or a number of faces.
CASES = {
    "empty": (raw("empty.jpg", b""), "empty.jpg: the file is empty"),
    "text": (raw("text.jpg", b"Dear diary, today I renamed a text file to .jpg."), "text.jpg: not an image"),
    "pdf": (raw("report.jpg", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n"),
            "report.jpg: not an image"),
    "linux executable": (raw("program.jpg", lambda grace: Path(sys.executable).resolve().read_bytes()[:65536]),
                         "program.jpg: not an image"),
    "windows executable": (raw("setup.jpg", b"MZ\x90\x00\x03" + bytes(59) + b"This program cannot be run in DOS mode"),
                           "setup.jpg: not an image"),
    "truncated jpeg": (raw("cut.jpg", lambda grace: jpeg_bytes(grace)[: len(jpeg_bytes(grace)) // 3]),
                       "cut.jpg: the image is corrupt or truncated"),
    "one pixel": (saved("dot.png", lambda grace: Image.new("RGB", (1, 1), (200, 150, 120))), 0),
    "decompression bomb": (lambda folder, grace: png_bomb(folder),
                           "bomb.png: the image has more than the 64 megapixels allowed"),
    "over the upload limit": (lambda folder, grace: over_upload_limit(folder), "over the 20 MB limit"),
    "animated gif": (animated_gif, 1),
    "cmyk jpeg": (saved("cmyk.jpg", lambda grace: grace.convert("CMYK"), quality=95), 1),
    "16-bit png": (saved("deep.png", sixteen_bit), 1),
    "rgba with transparency": (saved("cutout.png", transparent_border), 1),
    "greyscale": (saved("grey.jpg", lambda grace: grace.convert("L"), quality=95), 1),
    "no face": (saved("sky.jpg", no_face), 0),
}
# The command line reads local files, where the web upload limit does not apply: a 20 MB file of
# zeros is simply not an image.
CLI_EXPECTED = {"over the upload limit": "huge.jpg: not an image"}


@pytest.fixture(scope="module")
def grace(grace_hopper_path) -> Image.Image:
    return Image.open(grace_hopper_path).convert("RGB")


@pytest.fixture(scope="module")
def emotion_app(tmp_path_factory):
    server = Server(sessions_root=tmp_path_factory.mktemp("sessions"))
    yield web.EmotionApp(server)
    server.sessions.close_all()


@pytest.fixture(scope="module")
def upright_box(emotion_app, grace_hopper_path) -> list[int]:
    faces = json.loads(emotion_app.predict({"path": str(grace_hopper_path)}))["faces"]
    assert len(faces) == 1
    return faces[0]["box"]


@pytest.fixture(scope="module")
def files(tmp_path_factory, grace, grace_hopper_path, upright_box) -> dict[str, Path]:
    """Every test file, made once: the cases, the eight orientations and the crowd."""
    folder = tmp_path_factory.mktemp("hostile")
    made = {case: build(folder, grace) for case, (build, _) in CASES.items()}
    for orientation in STORED_FROM_UPRIGHT:
        stored, exif = oriented(grace, orientation)
        made[f"orientation {orientation}"] = folder / f"phone-{orientation}.jpg"
        stored.save(made[f"orientation {orientation}"], quality=95, exif=exif)
    made["crowd"] = folder / "crowd.jpg"
    crowd(grace, upright_box).save(made["crowd"], quality=90)
    made["good"] = folder / "grace.jpg"
    made["good"].write_bytes(grace_hopper_path.read_bytes())
    return made


@pytest.fixture(scope="module")
def cli_records(files) -> dict[str, dict]:
    """`python -m emotion predict --json` run once over every file, the good photo last."""
    done = subprocess.run([sys.executable, "-m", "emotion", "predict", "--json", *map(str, files.values())],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(records) == len(files), done.stderr[-2000:]
    assert done.returncode == 1  # some files failed, and the exit code says so
    return {case: record for case, record in zip(files, records)}


def photo_outcome(app: web.EmotionApp, path: Path) -> Outcome:
    """The Upload tab: gr.Error, or the face table."""
    try:
        shown = app.upload.on_photo_change(str(path), "happy_sad", SimpleNamespace(session_hash="visitor"))
    except gr.Error as error:
        return Outcome(error.message, [])
    return Outcome(None, [[int(row[key]) for key in ("x", "y", "width", "height")]
                          for _, row in shown[app.upload.table].iterrows()])


def api_outcome(app: web.EmotionApp, path: Path) -> Outcome:
    """`/predict`, given the file the way Gradio hands it over: the JSON record, failures in "error"."""
    record = json.loads(app.predict({"path": str(path)}))
    assert set(record) == {"path", "faces", "error"}
    return Outcome(record["error"], [face["box"] for face in record["faces"]])


def cli_outcome(record: dict) -> Outcome:
    assert set(record) == {"path", "faces", "error"}
    return Outcome(record["error"], [face["box"] for face in record["faces"]])


def outcome(endpoint: str, app, files, cli_records, case) -> Outcome:
    if endpoint == "cli":
        return cli_outcome(cli_records[case])
    return {"photo": photo_outcome, "api": api_outcome}[endpoint](app, files[case])


ENDPOINTS = ["photo", "api", "cli"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("case", CASES)
def test_each_file_gets_a_result_or_one_clear_message(emotion_app, files, cli_records, upright_box, endpoint, case):
    expected = CLI_EXPECTED.get(case, CASES[case][1]) if endpoint == "cli" else CASES[case][1]
    result = outcome(endpoint, emotion_app, files, cli_records, case)

    if isinstance(expected, str):
        assert result.error is not None and result.boxes == []
        assert len(result.error.splitlines()) == 1 and "Traceback" not in result.error
        assert re.search(expected, result.error), result.error
    else:
        assert result.error is None
        assert len(result.boxes) == expected
        for box in result.boxes:  # whatever the format, the face is Grace Hopper's, where it is upright
            assert box_iou(box, upright_box) > 0.7

    # The same endpoint still serves the next visitor.
    following = cli_outcome(cli_records["good"]) if endpoint == "cli" else outcome(
        endpoint, emotion_app, files, cli_records, "good")
    assert following.error is None and len(following.boxes) == 1


def test_the_odd_files_are_what_they_claim_to_be(files):
    """Guards the builders: each file really has the trait its case is about."""
    modes = {"cmyk jpeg": "CMYK", "16-bit png": "I;16", "rgba with transparency": "RGBA", "greyscale": "L"}
    for case, mode in modes.items():
        assert Image.open(files[case]).mode == mode, case
    assert Image.open(files["animated gif"]).n_frames == 2
    assert Image.open(files["one pixel"]).size == (1, 1)
    assert struct.unpack(">II", files["decompression bomb"].read_bytes()[16:24]) == (BOMB_SIDE, BOMB_SIDE)
    assert files["decompression bomb"].stat().st_size < 200_000
    assert files["over the upload limit"].stat().st_size > MAX_IMAGE_UPLOAD_BYTES


@pytest.mark.parametrize("orientation", sorted(STORED_FROM_UPRIGHT))
def test_every_exif_orientation_is_read_upright(files, grace, orientation):
    stored = Image.open(files[f"orientation {orientation}"])
    assert stored.getexif()[0x0112] == orientation
    upright = read_image(files[f"orientation {orientation}"])
    assert upright.shape == np.asarray(grace).shape
    assert np.abs(upright.astype(int) - np.asarray(grace, int)).mean() < 6


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("orientation", sorted(STORED_FROM_UPRIGHT))
def test_boxes_land_on_the_face_of_the_upright_photo(emotion_app, files, cli_records, upright_box, endpoint,
                                                     orientation):
    result = outcome(endpoint, emotion_app, files, cli_records, f"orientation {orientation}")
    assert result.error is None and len(result.boxes) == 1
    assert box_iou(result.boxes[0], upright_box) > 0.7


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_crowd_of_thirty_faces_is_found_face_by_face(emotion_app, files, cli_records, grace, upright_box, endpoint):
    result = outcome(endpoint, emotion_app, files, cli_records, "crowd")
    # Measured: 26 of the 30. BlazeFace's full-range model sees the whole 1692 x 1410 photo at
    # 192 x 192, where each face is about 23 pixels wide, the edge of what it finds: heads tiled a
    # little larger or smaller give 23 to 27. Finding every face would need detection on tiles.
    assert result.error is None and len(result.boxes) >= 24
    side = head_tile(grace, upright_box).width
    tiles = set()
    for x, y, width, height in result.boxes:
        column, row = (x + width / 2) // side, (y + height / 2) // side
        centre_x, centre_y = (column + 0.5) * side, (row + 0.5) * side
        assert abs(x + width / 2 - centre_x) < side / 4 and abs(y + height / 2 - centre_y) < side / 4
        assert width == pytest.approx(upright_box[2], rel=0.3)
        tiles.add((column, row))
    assert len(tiles) == len(result.boxes), "one box per face, never two on one face"
