"""Happy or Sad? The web app: classify the faces of an uploaded or webcam photo, and train your own model.

The page, its public API and how it is served. Each tab is a class in `webapp/` that lays out its
components and wires their events to short handlers; each visitor's state is their
`emotion.sessions.Session`, looked up by Gradio's session id. Run `python app.py`;
GRADIO_SERVER_NAME / GRADIO_SERVER_PORT choose the address.
"""

import json
import logging
import os
from pathlib import Path
from typing import Literal

import gradio as gr
from gradio.data_classes import FileData

from emotion.errors import ModelError
from emotion.limits import MAX_DATASET_UPLOAD_BYTES
from emotion.modelfile import DEFAULT_MODEL
from emotion.serving import Server
from webapp import LEAVE_GUARD_JS, PREDICT_EVENTS
from webapp.about_tab import AboutTab
from webapp.live_tab import LiveTab
from webapp.photo_tab import PhotoTab
from webapp.train_tab import TrainTab

BundledModel = Literal["happy_sad", "emotions"]  # what /predict accepts: the keys of BUNDLED_MODELS
# Gradio keeps copies of the files it serves: every 30 minutes, delete those older than an hour.
GRADIO_CACHE_SWEEP = (1800, 3600)


class EmotionApp:
    """The page: its tabs, the public API, and the visitor's session closed when they leave."""

    def __init__(self, server: Server, delete_cache: tuple[int, int] = GRADIO_CACHE_SWEEP):
        self.server = server
        with gr.Blocks(title="Happy or Sad?", delete_cache=delete_cache, analytics_enabled=False) as self.demo:
            gr.Markdown("# Happy or Sad?\nFinds every face in a photo and tells how it looks.")
            with gr.Tab("Upload"):
                self.upload = PhotoTab(server, sources=["upload", "clipboard"], label="Photo")
            with gr.Tab("Webcam"):
                gr.Markdown("Snap a photo with your webcam. If your browser blocks the camera, use the Upload tab.")
                self.webcam = PhotoTab(server, sources=["webcam"], label="Webcam photo")
            with gr.Tab("Live"):
                self.live = LiveTab(server)
            with gr.Tab("Train") as train_tab:
                self.train = TrainTab(server)
            # The trainer (TensorFlow, about 4 s to import) loads while the visitor picks a dataset:
            # never at start, where it would slow the first predictions, nor for visitors who only predict.
            train_tab.select(server.load_trainer_in_background, None, None, queue=False, api_visibility="private")
            with gr.Tab("About"):
                self.about = AboutTab(server, [self.upload, self.webcam], self.train)
            gr.api(self.predict, api_name="predict", **PREDICT_EVENTS)
            self.demo.fns[max(self.demo.fns)].outputs[0].label = "result"  # gr.api would call it "1st"
            self.demo.unload(self.on_page_unload)

    def predict(self, photo: FileData, model: BundledModel = DEFAULT_MODEL) -> str:
        """Classify every face of one image with a bundled model.

        Args:
            photo: a JPEG, PNG, WebP, BMP, GIF or TIFF image, at most 20 MB.
            model: the bundled model: "happy_sad" (the default) or "emotions" (seven emotions).
        Returns:
            The JSON object `python -m emotion predict --json` prints, as a string: {"path", "faces", "error"}.
            Every failure (not an image, too large, no such model) is a message in "error", with no faces.
        """
        path = photo.get("path") if isinstance(photo, dict) else photo
        name = Path((photo.get("orig_name") if isinstance(photo, dict) else None) or path or "upload").name
        return json.dumps(self.server.predict_record(path, name, model))

    def on_page_unload(self, request: gr.Request) -> None:
        """A visitor left: end their training and delete their files."""
        self.server.sessions.close(request.session_hash)


# System fonts: the page must not fetch web fonts from a third party either. The upload cap applies
# to every file before any handler runs; handlers apply the smaller per-kind limits. No run history:
# Gradio would keep every visitor's photos and results in their browser, and its page, a footer link
# away, leaves this one and with it the visitor's session (a model trained in the tab is gone).
LAUNCH_OPTIONS = {
    "max_file_size": MAX_DATASET_UPLOAD_BYTES,
    "run_history": False,
    "js": LEAVE_GUARD_JS,
    "theme": gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]),
}


def launch(server: Server, block: bool = True, delete_cache: tuple[int, int] = GRADIO_CACHE_SWEEP,
           **launch_options) -> EmotionApp:
    """Serve the app: how `python app.py` runs it, and how the tests do (with `block=False`)."""
    app = EmotionApp(server, delete_cache)
    app.demo.queue(default_concurrency_limit=4).launch(prevent_thread_lock=not block, **LAUNCH_OPTIONS,
                                                       **launch_options)
    return app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        server = Server.load(os.environ.get("EMOTION_MODEL"))  # a .keras file to serve instead of the bundled one
    except ModelError as error:  # the bundled model itself is missing or damaged
        raise SystemExit(f"Cannot start: {error}")
    server.sessions.start_sweeper()
    try:
        launch(server)
    finally:
        server.sessions.close_all()


if __name__ == "__main__":
    main()
