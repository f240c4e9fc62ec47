"""Strangers on one launched server: trainings take turns, files stay private, Gradio's copies expire."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
from gradio_client import handle_file
from gradio_client.utils import Status
from PIL import Image

from conftest import PROJECT_ROOT, api_client, launch_app, write_dataset_zip

WAITING = (Status.STARTING, Status.JOINING_QUEUE, Status.SENDING_DATA)


def test_a_second_training_waits_in_the_queue_until_the_first_has_ended(app_url, tmp_path):
    first_visitor, second_visitor = api_client(app_url), api_client(app_url)
    zip_path = write_dataset_zip(tmp_path)
    first = first_visitor.submit(handle_file(str(zip_path)), 200, 8, 3e-3, False, "auto", 48, api_name="/train")
    next(update for update in first if " done in " in update[0])  # an epoch in, and 199 to go

    second = second_visitor.submit(handle_file(str(zip_path)), 1, 16, 3e-3, False, "auto", 48, api_name="/train")
    deadline = time.monotonic() + 30
    while second.status().code in WAITING and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)  # long enough for a training that was let in to report something
    assert second.status().code == Status.IN_QUEUE and second.outputs() == []

    assert "Stopping" in first_visitor.predict(api_name="/stop")
    list(first)  # to its end
    assert "Stopped by you" in first.outputs()[-1][0]
    list(second)
    assert second.outputs()[-1][0].startswith("**Done.**")  # it ran once the first had finished


def test_files_served_are_the_sessions_own_and_only_through_gradio(app_server, tmp_path):
    visitor = api_client(app_server.url)
    job = visitor.submit(handle_file(str(write_dataset_zip(tmp_path))), 1, 16, 3e-3, False, "auto", 48,
                         api_name="/train")
    final = job.result()
    model_file = next(file for file in final[6] if file["orig_name"].endswith(".keras"))
    session_folder = app_server.app.sessions.root / visitor.session_hash
    original = session_folder / "models" / model_file["orig_name"]
    assert original.is_file()

    # The visitor downloads their model through the link they were given, which names no session folder.
    download = httpx.get(model_file["url"], timeout=60)
    assert download.status_code == 200 and download.content == original.read_bytes()
    assert visitor.session_hash not in model_file["url"] and str(app_server.app.sessions.root) not in model_file["url"]

    # Nobody fetches session folders, the project's files or the system's by path.
    stranger = httpx.Client(base_url=app_server.url, timeout=30)
    for path in (original, session_folder / "models", PROJECT_ROOT / "app.py", "/etc/passwd"):
        response = stranger.get(f"/gradio_api/file={path}")
        assert response.status_code in (403, 404), f"{path} was served"

    # /predict takes only a photo: a caller cannot name a model (a session's model lives server-side).
    parameters = visitor.view_api(print_info=False, return_format="dict")["named_endpoints"]["/predict"]["parameters"]
    assert [parameter["parameter_name"] for parameter in parameters] == ["photo"]


def test_gradio_deletes_its_copies_of_uploads_after_their_time(tmp_path):
    import app as web

    demo = launch_app(web.EmotionApp(sessions_root=tmp_path / "sessions", sweep_seconds=None),
                      delete_cache=(1, 5))  # every second, delete copies older than 5 s
    try:
        photo = tmp_path / "noise.png"
        pixels = np.random.default_rng(7).integers(0, 256, (64, 64, 3), dtype=np.uint8)  # unique to this test
        Image.fromarray(pixels).save(photo)
        assert api_client(demo.local_url).predict(handle_file(str(photo)), api_name="/predict")["faces"] == []

        copies = [path for path in Path(demo.GRADIO_CACHE).rglob("noise.png")
                  if path.read_bytes() == photo.read_bytes()]
        assert copies, "the upload should sit in Gradio's cache while it is fresh"
        deadline = time.monotonic() + 20
        while any(path.exists() for path in copies) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not any(path.exists() for path in copies)
    finally:
        demo.close()
