"""Strangers on one launched server: files stay private, Gradio's copies expire."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import numpy as np
from gradio_client import Client, handle_file
from PIL import Image

from conftest import PROJECT_ROOT, api_client, launch_app, named_outputs, write_dataset_zip


def test_files_served_are_the_sessions_own_and_only_through_gradio(app_server, tmp_path):
    visitor = Client(app_server.url, verbose=False, download_files=False)  # to see the links a browser gets
    job = visitor.submit(handle_file(str(write_dataset_zip(tmp_path))), 1, 16, 3e-3, False, "auto", 48, "scratch",
                         api_name="/train")
    final = named_outputs(visitor, "/train", job.result())
    model_file = next(file for file in final["Your model (.keras, metadata .json, .tflite)"]
                      if file["orig_name"].endswith(".keras"))
    session_folder = app_server.server.sessions.root / visitor.session_hash
    original = session_folder / "models" / model_file["orig_name"]
    assert original.is_file()

    # The visitor downloads their model through the link they were given, which names no session folder.
    download = httpx.get(model_file["url"], timeout=60)
    assert download.status_code == 200 and download.content == original.read_bytes()
    assert visitor.session_hash not in model_file["url"]
    assert str(app_server.server.sessions.root) not in model_file["url"]

    # Nobody fetches session folders, the project's files or the system's by path.
    stranger = httpx.Client(base_url=app_server.url, timeout=30)
    for path in (original, session_folder / "models", PROJECT_ROOT / "app.py", "/etc/passwd"):
        response = stranger.get(f"/gradio_api/file={path}")
        assert response.status_code in (403, 404), f"{path} was served"

    # /predict takes a bundled model's name only: a caller cannot reach a session's model.
    name = Path(model_file["orig_name"]).stem
    answer = json.loads(visitor.predict(handle_file(str(original)), model=name, api_name="/predict"))
    assert answer["faces"] == [] and f"no bundled model named '{name}'" in answer["error"]


def test_gradio_deletes_its_copies_of_uploads_after_their_time(tmp_path):
    from emotion.serving import Server

    app = launch_app(Server(sessions_root=tmp_path / "sessions"), delete_cache=(1, 5))  # every 1 s, those over 5 s
    demo = app.demo
    try:
        photo = tmp_path / "noise.png"
        pixels = np.random.default_rng(7).integers(0, 256, (200, 200, 3), dtype=np.uint8)  # unique to this test
        Image.fromarray(pixels).save(photo)
        answer = api_client(demo.local_url).predict(handle_file(str(photo)), api_name="/predict")
        assert json.loads(answer)["faces"] == []

        copies = [path for path in Path(demo.GRADIO_CACHE).rglob("noise.png")
                  if path.read_bytes() == photo.read_bytes()]
        assert copies, "the upload should sit in Gradio's cache while it is fresh"
        deadline = time.monotonic() + 20
        while any(path.exists() for path in copies) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not any(path.exists() for path in copies)
    finally:
        demo.close()
