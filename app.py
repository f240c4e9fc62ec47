"""Happy or Sad? The web app: classify the faces of an uploaded or webcam photo, and train your own model.

Layout and wiring only. Each tab is one class that lays out its components and wires their events to
its short handlers; a handler converts Gradio values, calls `emotion`, and returns `{component: value}`
for what it changes. Each visitor's state is their `emotion.sessions.Session`, looked up by Gradio's
session id. Run `python app.py`; GRADIO_SERVER_NAME / GRADIO_SERVER_PORT choose the address.
"""

import json
import logging
import os
import time
from pathlib import Path
from typing import Literal

import gradio as gr
from gradio.data_classes import FileData

import app_display as display
from emotion.annotate import draw_predictions
from emotion.config import TrainConfig
from emotion.errors import EmotionError, ModelError
from emotion.export import export_tflite
from emotion.limits import MAX_DATASET_UPLOAD_BYTES, MAX_IMAGE_UPLOAD_BYTES
from emotion.live import LiveStream
from emotion.modelfile import DEFAULT_MODEL, load_bundle
from emotion.serving import Server, check_upload

log = logging.getLogger("app")

BundledModel = Literal["happy_sad", "emotions"]  # what /predict accepts: the keys of BUNDLED_MODELS
INIT_CHOICES = ["auto", "scratch", "emotions", "happy_sad"]  # where a training starts (TrainConfig.init)
PREDICT_EVENTS = {"concurrency_limit": 4, "concurrency_id": "predict"}  # shared by the UI and /predict
# Gradio keeps copies of the files it serves: every 30 minutes, delete those older than an hour.
GRADIO_CACHE_SWEEP = (1800, 3600)
# Live tab. The browser sends a frame every LIVE_FRAME_SECONDS while no answer is pending, and the
# server keeps only the newest frame of each stream, so a slow server drops frames instead of queueing
# them. Each stream holds one of LIVE_STREAMS slots for at most LIVE_TIME_LIMIT seconds; later
# visitors wait in the queue meanwhile, so the two cores are shared by a few smooth streams.
LIVE_FRAME_SECONDS = 0.05
LIVE_STREAMS = 4
LIVE_TIME_LIMIT = 120


def _errors_shown(function):
    """Any `EmotionError` a handler meets is shown to the visitor as it is, and the server goes on."""
    def handler(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except EmotionError as error:
            raise gr.Error(str(error)) from error
    return handler


class PhotoTab:
    """Upload or Webcam: a photo in; every face's box, label and crop out, with the model the visitor picked."""

    def __init__(self, server: Server, sources: list[str], label: str):
        self.server = server
        with gr.Row():
            with gr.Column():
                self.photo = gr.Image(type="filepath", sources=sources, label=label)
                self.model = gr.Dropdown(list(server.models), value=next(iter(server.models)), label="Model",
                                         info="A bundled model, or one you trained in this browser tab")
                self.whole_image = gr.Button("No face found: classify the whole image anyway", visible=False)
            with gr.Column():
                self.annotated = gr.Image(label="Faces", type="numpy", interactive=False, format="jpeg")
                self.message = gr.Markdown()
                self.scores = gr.Label(label="Main face (the largest)", num_top_classes=7)
        self.crops = gr.Gallery(label="Each face as the model sees it", columns=8, height=150, object_fit="contain")
        self.table = gr.Dataframe(headers=display.FACE_TABLE_HEADERS, label="Every face", interactive=False)
        self.shown = gr.State()  # the photo as classified, to redraw it with one face highlighted
        outputs = [self.annotated, self.scores, self.table, self.crops, self.message, self.whole_image, self.shown]
        # preprocess=False: handlers get the uploaded file untouched, and `emotion` says what is wrong with it.
        events = {**PREDICT_EVENTS, "api_visibility": "private", "preprocess": False}
        self.photo.change(self.on_photo_change, [self.photo, self.model], outputs, **events)
        self.model.input(self.on_photo_change, [self.photo, self.model], outputs, **events)
        self.whole_image.click(self.on_whole_image_click, [self.photo, self.model], outputs, **events)
        for clickable in (self.table, self.crops):
            clickable.select(self.on_face_select, self.shown, self.annotated, api_visibility="private")

    def on_photo_change(self, photo: FileData | str | None, model: str | None, request: gr.Request,
                        faces: str = "auto") -> dict:
        """Boxes, the main face's scores, a row and a crop per face, a message; the whole-image button when none."""
        path = photo.get("path") if isinstance(photo, dict) else photo
        if not path:
            return {self.annotated: None, self.scores: None, self.table: display.faces_frame([]), self.crops: [],
                    self.message: "", self.whole_image: gr.update(visible=False), self.shown: None}
        predictor, photo = _errors_shown(self._classify)(path, model, request.session_hash, faces)
        predictions = photo.in_original_pixels()  # the table gives boxes in the uploaded file's pixels
        return {self.annotated: draw_predictions(photo.image, photo.predictions, predictor.class_names),
                self.scores: predictions[0].scores if predictions else None,
                self.table: display.faces_frame(predictions),
                self.crops: [(crop[..., 0] if crop.shape[-1] == 1 else crop, display.verdict(prediction))
                             for crop, prediction in zip(photo.pixels, predictions)],
                self.message: display.prediction_message(predictions, whole_image=faces == "none"),
                self.whole_image: gr.update(visible=not predictions),
                self.shown: {"image": photo.image, "predictions": photo.predictions, "classes": predictor.class_names}}

    def on_whole_image_click(self, photo: FileData | str | None, model: str | None, request: gr.Request) -> dict:
        return self.on_photo_change(photo, model, request, faces="none")

    def on_face_select(self, shown: dict | None, event: gr.SelectData) -> dict:
        """A table row or a crop was clicked: outline that face's box on the photo."""
        if not shown:
            return {}
        index = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
        return {self.annotated: draw_predictions(shown["image"], shown["predictions"], shown["classes"], index)}

    def _classify(self, path: str, model: str | None, session_id: str, faces: str):
        check_upload(path, MAX_IMAGE_UPLOAD_BYTES, "photo")
        predictor = self.server.predictor(self.server.sessions.get(session_id), model)
        return predictor, predictor.predict_photo(path, faces, name=Path(path).name)


class LiveTab:
    """Live: the webcam streams; each frame comes back with its faces followed, smoothed and labelled by the
    model this visitor picked, and the frame rate."""

    def __init__(self, server: Server):
        self.server = server
        gr.Markdown("Start your webcam: every face is boxed and labelled as you move, a few times a second. "
                    "Browsers allow the camera only on `localhost` or an `https://` address; if yours stays "
                    "blank or refuses, use the Webcam tab (one snapshot) or Upload.")
        with gr.Row():
            self.webcam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam")
            with gr.Column():
                self.labelled = gr.Image(label="Live faces", type="numpy", interactive=False, format="jpeg")
                self.rate = gr.Markdown()
        self.stream = gr.State(None)  # this visitor's LiveStream: faces followed across frames
        self.webcam.stream(self.on_webcam_stream, [self.webcam, self.stream], [self.labelled, self.rate, self.stream],
                           stream_every=LIVE_FRAME_SECONDS, time_limit=LIVE_TIME_LIMIT,
                           concurrency_limit=LIVE_STREAMS, concurrency_id="live", show_progress="hidden",
                           api_visibility="private")

    def on_webcam_stream(self, frame, live: LiveStream | None, request: gr.Request) -> dict:
        if frame is None:
            return {}
        session = self.server.sessions.get(request.session_hash)
        predictor = _errors_shown(self.server.predictor)(session, session.model)
        if live is None or live.predictor is not predictor:  # a new stream, or the visitor switched models
            live = LiveStream(predictor)
        result = live.process(frame)
        count = len(result.predictions)
        faces = "no face" if count == 0 else "1 face" if count == 1 else f"{count} faces"
        return {self.labelled: draw_predictions(frame, result.predictions, predictor.class_names),
                self.rate: f"**{result.frames_per_second:.1f} frames/s**, {faces}", self.stream: live}


class TrainTab:
    """Train: a dataset zip in, what it holds, a training streamed as charts, the model out."""

    def __init__(self, server: Server):
        self.server = server
        defaults = TrainConfig()
        gr.Markdown("Upload a `.zip` of class folders (`happy/`, `sad/`, ... or `train/` and `test/` folders "
                    "holding them). Photos are cropped to their face; face crops are used as they are.")
        with gr.Row():
            with gr.Column(scale=1):
                self.dataset = gr.File(label="Dataset (.zip)", file_types=[".zip"], type="filepath")
                with gr.Accordion("Settings", open=False):
                    self.settings = _settings(defaults)  # in the order /train takes them
                with gr.Row():
                    self.start = gr.Button("Start", variant="primary", interactive=False)
                    self.stop = gr.Button("Stop", variant="stop")
            with gr.Column(scale=2):
                self.summary = gr.Markdown()
                self.thumbnails = gr.Gallery(label="A few faces per class, as the model sees them",
                                             columns=display.THUMBNAILS_PER_CLASS)
        self.status = gr.Markdown(label="Status")
        with gr.Row():
            self.loss_plot, self.accuracy_plot = (
                gr.LinePlot(x="epoch", y="value", color="series", title=name, label=name, height=260,
                            color_map=display.SERIES_COLORS, y_lim=limits) for name, limits in
                (("Loss", None), ("Accuracy", [0, 1])))
        self.metrics = gr.Markdown(label="Metrics")
        with gr.Row():
            self.confusion = gr.Image(label="Confusion matrix", interactive=False)
            self.curves = gr.Image(label="Training curves", interactive=False)
        self.files = gr.File(label="Your model (.keras, metadata .json, .tflite)", file_count="multiple",
                             interactive=False)
        self.use_button = gr.Button("Use this model", visible=False, variant="primary")
        self.message = gr.Markdown()

        scan_inputs = [self.dataset, self.settings["faces"], self.settings["image_size"], self.settings["init"]]
        scan_outputs = [self.summary, self.thumbnails, self.start]
        self.dataset.change(self.on_dataset_change, scan_inputs, scan_outputs, api_visibility="private")
        for setting in scan_inputs[1:]:  # they change the faces the model sees: scan again
            setting.change(self.on_dataset_change, scan_inputs, scan_outputs, api_visibility="private",
                           trigger_mode="always_last")
        self.training = self.start.click(
            self.on_train_click, [self.dataset, *self.settings.values()],
            [self.status, self.loss_plot, self.accuracy_plot, self.metrics, self.confusion, self.curves, self.files],
            api_name="train", concurrency_limit=1, concurrency_id="training",
            show_progress_on=[self.status])  # the charts stay visible while the progress bar runs
        self.stop.click(self.on_stop_click, None, self.status, queue=False, api_name="stop")

    def on_dataset_change(self, dataset: str | None, faces: str, image_size: int, init: str, request: gr.Request,
                          progress: gr.Progress = gr.Progress()) -> dict:
        """What the uploaded dataset holds, before any training; scanned again when the preprocessing changes."""
        if not dataset:
            return {self.summary: "", self.thumbnails: None, self.start: gr.update(interactive=False)}
        prepared = self._prepare(dataset, _config(faces=faces, image_size=image_size, init=init), request, progress)
        return {self.summary: display.dataset_markdown(prepared), self.thumbnails: display.thumbnails(prepared),
                self.start: gr.update(interactive=True)}

    def on_train_click(self, dataset: str | None, epochs: int, batch_size: int, learning_rate: float,
                       augment: bool, faces: str, image_size: int, init: str, fine_tune_epochs: int,
                       request: gr.Request, progress: gr.Progress = gr.Progress()):
        """Train tab and `/train`: stream the status and charts, then the results and the model files."""
        if not dataset:
            raise gr.Error("Upload a dataset .zip first.")
        config = _config(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, augment=augment,
                         faces=faces, image_size=image_size, init=init, fine_tune_epochs=fine_tune_epochs)
        session = self.server.sessions.get(request.session_hash)
        prepared = self._prepare(dataset, config, request, progress)
        if display.few_images(prepared):
            gr.Warning(display.few_images(prepared))
        job = _errors_shown(session.start_training)(prepared, config, session.new_model_path(dataset))
        last_status = 0.0
        try:
            yield {self.status: "Training started.", self.loss_plot: None, self.accuracy_plot: None}
            for status, history, done in display.training_updates(job):
                if done is not None:  # a batch: the progress bar each time, the status once a second
                    progress(done, desc=status)
                    if time.monotonic() - last_status < 1.0:
                        continue
                    last_status = time.monotonic()
                charts = {self.loss_plot: display.curve_frame(history, "loss"),
                          self.accuracy_plot: display.curve_frame(history, "accuracy")} if history else {}
                yield {self.status: status, **charts}
            result = _errors_shown(job.wait)()  # TrainingCancelled included: stopped before an epoch ended
        finally:
            session.end_training(job)  # a no-op after a normal end; ends the worker when the visitor has gone
        yield self._finished(session, result)

    def on_stop_click(self, request: gr.Request) -> dict:
        session = self.server.sessions.find(request.session_hash)
        if session is None or session.job is None:
            return {self.status: "No training is running in this tab."}
        session.job.stop()
        return {self.status: "Stopping after this batch; the best model so far is kept."}

    def _prepare(self, dataset: str, config: TrainConfig, request: gr.Request, progress: gr.Progress):
        _errors_shown(check_upload)(dataset, MAX_DATASET_UPLOAD_BYTES, "dataset")
        self.server.sessions.expire()  # frees memory before this dataset takes some
        session = self.server.sessions.get(request.session_hash)
        on_file = lambda index, total: progress((index, total), desc="Reading images", unit="images")  # noqa: E731
        return _errors_shown(session.prepare)(dataset, config, on_file)

    def _finished(self, session, result) -> dict:
        _errors_shown(session.add_model)(result.model_path)
        files, note = [str(result.model_path), str(result.metadata_path)], ""
        try:
            files.append(str(export_tflite(load_bundle(result.model_path))))
        except EmotionError as error:
            note = f"\n\nThe TFLite export failed ({error}); the Keras model is complete."
        stopped = "Stopped by you; kept the best epoch so far. " if result.stopped_by_user else ""
        kept = f"Kept epoch {result.best_epoch} of {len(result.history['loss'])}; started from {result.init}."
        return {self.status: f"**Done.** {stopped}{kept}{note}",
                self.metrics: display.metrics_markdown(result), self.confusion: str(result.confusion_path),
                self.curves: str(result.curves_path), self.files: files}


class AboutTab:
    """About: the model this browser tab uses. It follows the pickers, and offers a model just trained."""

    def __init__(self, server: Server, photo_tabs: list[PhotoTab], train_tab: TrainTab):
        self.server, self.pickers, self.train_tab = server, [tab.model for tab in photo_tabs], train_tab
        self.about = gr.Markdown(display.model_markdown(server.predictors.default.bundle))
        with gr.Accordion("README", open=False):
            gr.Markdown(display.readme())
        for picker in self.pickers:
            picker.input(self.on_model_select, picker, [self.about, *self.pickers], api_visibility="private")
        train_tab.training.then(self.on_training_end, None, [train_tab.use_button, *self.pickers],
                                api_visibility="private")
        train_tab.use_button.click(self.on_use_model_click, None, [self.about, train_tab.message, *self.pickers],
                                   api_visibility="private")

    def on_model_select(self, model: str, request: gr.Request) -> dict:
        """A model was picked in one tab: the other tabs' pickers and this panel follow."""
        session = self.server.sessions.get(request.session_hash)
        session.model = model
        bundle = _errors_shown(self.server.predictor)(session, model).bundle
        return {self.about: display.model_markdown(bundle), **{picker: model for picker in self.pickers}}

    def on_training_end(self, request: gr.Request) -> dict:
        """A training ended: its model joins this tab's pickers, and "Use this model" appears."""
        session = self.server.sessions.get(request.session_hash)
        choices = self.server.model_choices(session)
        return {self.train_tab.use_button: gr.update(visible=bool(session.models)),
                **{picker: gr.update(choices=choices) for picker in self.pickers}}

    def on_use_model_click(self, request: gr.Request) -> dict:
        session = self.server.sessions.get(request.session_hash)
        if not session.models:
            raise gr.Error("Train a model in this tab first.")
        name = list(session.models)[-1]
        choices = self.server.model_choices(session)
        return {**self.on_model_select(name, request),
                **{picker: gr.update(choices=choices, value=name) for picker in self.pickers},
                self.train_tab.message: f"Upload, Webcam and Live now use **{name}** in this browser tab. "
                                        "Other visitors still see the bundled model."}


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
            with gr.Tab("Train"):
                self.train = TrainTab(server)
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


def _settings(defaults: TrainConfig) -> dict:
    """The Train tab's settings by `TrainConfig` field; every default comes from the config."""
    return {
        "epochs": gr.Slider(1, 200, value=defaults.epochs, step=1, label="Epochs"),
        "batch_size": gr.Slider(8, 512, value=defaults.batch_size, step=8, label="Batch size"),
        "learning_rate": gr.Number(value=defaults.learning_rate, label="Learning rate", minimum=1e-6, maximum=0.5,
                                   step=1e-4),
        "augment": gr.Checkbox(value=defaults.augment, label="Augment (flip, rotate, zoom, shift, brightness, "
                                                             "contrast)"),
        "faces": gr.Radio(["auto", "crop", "none"], value=defaults.faces, label="Face cropping",
                          info="auto: crop faces out of photos, use face crops as they are"),
        "image_size": gr.Slider(32, 128, value=defaults.image_size, step=8, label="Image size (pixels)",
                                info="from scratch only: a bundled model's own input size is used otherwise"),
        "init": gr.Radio(INIT_CHOICES, value=defaults.init, label="Start from",
                         info="auto: the bundled emotions model for a small dataset, else from scratch"),
        "fine_tune_epochs": gr.Slider(0, 50, value=defaults.fine_tune_epochs, step=1, label="Fine-tuning epochs",
                                      info="starting from a bundled model: epochs after the ones above in which "
                                           "its layers learn too"),
    }


def _config(**settings) -> TrainConfig:
    try:
        return TrainConfig(**{key: int(value) if key in ("epochs", "batch_size", "image_size", "fine_tune_epochs")
                              else value
                              for key, value in settings.items()})
    except (TypeError, ValueError) as error:
        raise gr.Error(f"Invalid setting: {error}") from error


# System fonts: the page must not fetch web fonts from a third party either. The upload cap applies
# to every file before any handler runs; handlers apply the smaller per-kind limits.
LAUNCH_OPTIONS = {
    "max_file_size": MAX_DATASET_UPLOAD_BYTES,
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
