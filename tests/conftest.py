"""Shared fixtures: generated images and datasets, a real face from matplotlib, a tiny trained model."""

from __future__ import annotations

import os
import socket
import zipfile
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import matplotlib.cbook  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FER_VAL = PROJECT_ROOT.parent / "shared" / "data" / "fer2013-happy-sad" / "val"
FER_ALL = PROJECT_ROOT.parent / "shared" / "data" / "fer2013"  # seven classes, with FER+ votes


@pytest.fixture(scope="session")
def grace_hopper_path() -> Path:
    """A real photo of a face that matplotlib ships (512 x 600, RGB JPEG)."""
    return Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def cartoon_face(expression: str, rng: np.random.Generator, size: int = 48) -> Image.Image:
    """A grayscale drawn face whose mouth curves up (happy) or down (sad), with noise and jitter."""
    image = Image.new("L", (size, size), int(rng.integers(20, 60)))
    draw = ImageDraw.Draw(image)
    shift = int(rng.integers(-2, 3))
    draw.ellipse((4 + shift, 4, size - 4 + shift, size - 4), fill=int(rng.integers(150, 200)))
    for eye_x in (16, 32):
        draw.ellipse((eye_x - 3 + shift, 15, eye_x + 3 + shift, 21), fill=30)
    mouth = (14 + shift, 24, 34 + shift, 40) if expression == "happy" else (14 + shift, 30, 34 + shift, 46)
    start, end = (20, 160) if expression == "happy" else (200, 340)
    draw.arc(mouth, start, end, fill=20, width=3)
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 8, (size, size))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def write_class_folders(root: Path, per_class: int = 24, seed: int = 0, classes=("happy", "sad")) -> Path:
    rng = np.random.default_rng(seed)
    for expression in classes:
        folder = root / expression
        folder.mkdir(parents=True, exist_ok=True)
        drawn = expression if expression in ("happy", "sad") else "happy"
        for index in range(per_class):
            cartoon_face(drawn, rng).save(folder / f"{index:03d}.png")
    return root


def write_dataset_zip(folder: Path, per_class: int = 20) -> Path:
    """`folder/faces.zip` holding `faces/happy/*.png` and `faces/sad/*.png`, as a user would zip them."""
    root = write_class_folders(folder / "faces", per_class=per_class)
    zip_path = folder / "faces.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        for file in sorted(root.rglob("*.png")):
            archive.write(file, file.relative_to(folder))
    return zip_path


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    return write_class_folders(tmp_path_factory.mktemp("tiny") / "faces", per_class=40)


def tiny_training_config():
    """Settings under which a narrow model learns the tiny dataset in a few seconds, every epoch run."""
    from emotion.config import TrainConfig

    return TrainConfig(epochs=12, batch_size=16, base_filters=8, learning_rate=3e-3, early_stopping_patience=20,
                       init="scratch")


@pytest.fixture(scope="session")
def tiny_training(tiny_dataset, tmp_path_factory):
    """A model trained for a few epochs on the tiny dataset, with the progress it reported."""
    from emotion.training import train

    batches, epochs = [], []
    output = tmp_path_factory.mktemp("model") / "tiny.keras"
    result = train(tiny_dataset, tiny_training_config(), output, on_batch=batches.append, on_epoch=epochs.append)
    return result, batches, epochs


def box_iou(first: list[int], second: list[int]) -> float:
    """Intersection over union of two [x, y, width, height] boxes."""
    (x0, y0, w0, h0), (x1, y1, w1, h1) = first, second
    overlap_w = max(0, min(x0 + w0, x1 + w1) - max(x0, x1))
    overlap_h = max(0, min(y0 + h0, y1 + h1) - max(y0, y1))
    overlap = overlap_w * overlap_h
    return overlap / (w0 * h0 + w1 * h1 - overlap)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_app(server, **options):
    """The web app on `server`, launched in this process by the function `python app.py` uses."""
    import app as web

    return web.launch(server, block=False, server_name="127.0.0.1", server_port=free_port(), quiet=True, **options)


def api_client(url: str):
    """A gradio_client session (one per visitor), with the client's defaults as the API page shows them."""
    from gradio_client import Client

    return Client(url, verbose=False)


def named_outputs(client, api_name: str, values) -> dict:
    """An endpoint's outputs by the names the API page gives them, as the client returns them in order."""
    returns = client.view_api(print_info=False, return_format="dict")["named_endpoints"][api_name]["returns"]
    return {output["label"]: value for output, value in zip(returns, values)}


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    """The web app with private session folders, and its server-side state for tests to inspect."""
    from emotion.serving import Server

    server = Server(sessions_root=tmp_path_factory.mktemp("sessions"))
    app = launch_app(server)
    yield SimpleNamespace(url=app.demo.local_url, server=server, app=app)
    app.demo.close()
    server.sessions.close_all()


@pytest.fixture(scope="module")
def app_url(app_server) -> str:
    return app_server.url
