"""Happy or Sad? The web app: classify the faces of an uploaded or webcam photo, and train your own model.

Layout and wiring only: every handler converts Gradio values, calls the `emotion` package and
converts the result back. Run `python app.py`; GRADIO_SERVER_NAME / GRADIO_SERVER_PORT choose the address.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Union

import gradio as gr
import pandas as pd

from emotion.annotate import draw_predictions
from emotion.config import TrainConfig
from emotion.errors import EmotionError, ModelError
from emotion.export import export_tflite
from emotion.jobs import TrainingBusy, TrainingJob
from emotion.limits import MAX_DATASET_UPLOAD_BYTES, MAX_IMAGE_UPLOAD_BYTES
from emotion.live import LiveStream
from emotion.modelfile import DEFAULT_MODEL_PATH, ModelBundle, load_bundle
from emotion.predictor import FacePrediction, Predictor
from emotion.serving import PredictorCache, SessionFolders
from emotion.training import BatchProgress, EpochProgress, PreparedData, TrainResult, prepare_data

log = logging.getLogger("app")

README_PATH = Path(__file__).resolve().parent / "README.md"
FACE_TABLE_HEADERS = ["face", "label", "confidence", "x", "y", "width", "height"]
THUMBNAILS_PER_CLASS = 6
SESSION_SWEEP_SECONDS = 600  # how often the files of sessions idle too long are looked for
# Gradio keeps copies of the files it serves (uploads, annotated photos, model downloads): every 30
# minutes, delete those older than an hour.
GRADIO_CACHE_SWEEP = (1800, 3600)
SERIES_COLORS = {"training": "#0072B2", "validation": "#E69F00"}
# Live tab. The browser sends a frame every LIVE_FRAME_SECONDS while no answer is pending, and the
# server keeps only the newest frame of each stream, so a slow server drops frames instead of queueing
# them. Each stream holds one of LIVE_STREAMS slots for at most LIVE_TIME_LIMIT seconds; later
# visitors wait in the queue meanwhile, so the two cores are shared by a few smooth streams.
LIVE_FRAME_SECONDS = 0.05
LIVE_STREAMS = 4
LIVE_TIME_LIMIT = 120

Upload = Union[dict, str, None]  # an image value as Gradio sends it without preprocessing, or a path


class EmotionApp:
    """Server-wide state (loaded models, session folders, running trainings) and the UI handlers."""

    def __init__(self, model_path: Path | str | None = None, sessions_root: Path | None = None,
                 sweep_seconds: float | None = SESSION_SWEEP_SECONDS):
        self.predictors = PredictorCache(Predictor.load(model_path).warm_up())
        self.sessions = SessionFolders(sessions_root)
        self.jobs: dict[str, TrainingJob] = {}
        self._prepared: dict[str, tuple[tuple, PreparedData]] = {}
        if sweep_seconds:
            threading.Thread(target=self._sweep, args=(sweep_seconds,), name="session-sweeper", daemon=True).start()

    # Classifying photos.

    def on_photo_change(self, photo: Upload, model_path: str | None):
        """Upload and Webcam tabs: boxes, main-face scores, face table, message, whole-image button."""
        return self._classify(_upload_path(photo), model_path, faces="auto")

    def on_whole_image_click(self, photo: Upload, model_path: str | None):
        return self._classify(_upload_path(photo), model_path, faces="none")

    def on_api_predict(self, photo: Upload, model_path: str | None = None) -> dict:
        """`/predict`: the JSON object `python -m emotion predict --json` prints for one image."""
        photo_path = _upload_path(photo)
        if not photo_path:
            raise gr.Error("Send an image file.")
        _check_upload_size(photo_path, MAX_IMAGE_UPLOAD_BYTES, "image")
        return self._predictor(model_path).predict_source(photo_path, name=Path(photo_path).name)

    def on_live_stream(self, frame, live: LiveStream | None, model_path: str | None):
        """Live tab: a webcam frame in; out, the frame with its faces labelled, the frame rate and the stream."""
        if frame is None:
            return gr.skip(), gr.skip(), live
        predictor = self._predictor(model_path)
        if live is None or live.predictor is not predictor:  # a new stream, or the visitor switched models
            live = LiveStream(predictor)
        result = live.process(frame)
        count = len(result.predictions)
        faces = "no face" if count == 0 else "1 face" if count == 1 else f"{count} faces"
        return (draw_predictions(frame, result.predictions, predictor.class_names),
                f"**{result.frames_per_second:.1f} frames/s**, {faces}", live)

    def _classify(self, photo_path: str | None, model_path: str | None, faces: str):
        if not photo_path:
            return None, None, _faces_frame([]), "", gr.update(visible=False)
        _check_upload_size(photo_path, MAX_IMAGE_UPLOAD_BYTES, "photo")
        predictor = self._predictor(model_path)
        try:
            photo = predictor.predict_photo(photo_path, faces, name=Path(photo_path).name)
        except EmotionError as error:
            raise gr.Error(str(error)) from error
        annotated = draw_predictions(photo.image, photo.predictions, predictor.class_names)
        if not photo.predictions:
            message = ("**No face found in this photo.** Faces that are small, turned away or half hidden can be "
                       "missed. Try a closer photo, or classify the whole image anyway.")
            return annotated, None, _faces_frame([]), message, gr.update(visible=True)
        predictions = photo.in_original_pixels()  # the table gives boxes in the uploaded file's pixels
        message = _prediction_message(predictions, whole_image=faces == "none")
        return annotated, predictions[0].scores, _faces_frame(predictions), message, gr.update(visible=False)

    def _predictor(self, model_path: str | None) -> Predictor:
        if model_path:
            self.sessions.touch(model_path)  # a visitor using their model is not idle
        try:
            return self.predictors.get(model_path)
        except ModelError as error:
            raise gr.Error(f"{error} Use the bundled model (About tab) meanwhile.") from error

    # Training.

    def on_dataset_change(self, dataset_path: str | None, faces: str, image_size: int, request: gr.Request,
                          progress: gr.Progress = gr.Progress()):
        """Train tab: what the uploaded dataset holds, before any training."""
        if not dataset_path:
            return "", None, gr.update(interactive=False)
        session = request.session_hash
        config = _config(faces=faces, image_size=image_size)
        prepared = self._prepare(session, dataset_path, config, progress)
        return _dataset_markdown(prepared), _thumbnails(prepared), gr.update(interactive=True)

    def on_train_click(self, dataset_path: str | None, epochs: int, batch_size: int, learning_rate: float,
                       augment: bool, faces: str, image_size: int, request: gr.Request,
                       progress: gr.Progress = gr.Progress()):
        """Train tab and `/train`: stream charts and progress, then the results and the model files.

        Yields (status, loss chart, accuracy chart, metrics, confusion, curves, downloads, use button, model path).
        """
        if not dataset_path:
            raise gr.Error("Upload a dataset .zip first.")
        session = request.session_hash
        config = _config(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, augment=augment,
                         faces=faces, image_size=image_size)
        prepared = self._prepare(session, dataset_path, config, progress)
        output_path = _new_model_path(self.sessions.folder(session) / "models", dataset_path)
        job = TrainingJob(prepared, config, output_path)
        try:
            job.start()
        except TrainingBusy as error:
            raise gr.Error(str(error)) from error
        self.jobs[session] = job
        try:
            yield from self._stream(job, progress)
            result = job.wait()
        except EmotionError as error:  # TrainingCancelled included: stopped before the first epoch ended
            raise gr.Error(str(error)) from error
        finally:
            job.stop()  # a no-op after a normal end; ends the worker when the visitor has gone
            job.join()  # within a batch; the next queued training starts only after this one ended
            self.jobs.pop(session, None)
        yield self._finish(result)

    def _stream(self, job: TrainingJob, progress: gr.Progress):
        history = {"epoch": [], "loss": [], "val_loss": [], "accuracy": [], "val_accuracy": []}
        started, last_status = time.monotonic(), 0.0
        status = "Training started."
        yield _training_update(status, history)
        for event in job.events():
            if isinstance(event, EpochProgress):
                history["epoch"].append(event.epoch)
                for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
                    history[key].append(getattr(event, key))
                status = _epoch_status(event, started)
                yield _training_update(status, history)
            elif isinstance(event, BatchProgress):
                done = (event.epoch - 1 + event.batch / event.batches) / event.epochs
                progress(done, desc=_batch_status(event, started, done))
                if time.monotonic() - last_status > 1.0:
                    last_status = time.monotonic()
                    yield (_batch_status(event, started, done), *[gr.skip()] * 8)
            elif job.stopping:
                yield ("Stopping after this batch...", *[gr.skip()] * 8)

    def _finish(self, result: TrainResult):
        files = [str(result.model_path), str(result.metadata_path)]
        note = ""
        try:
            files.append(str(export_tflite(load_bundle(result.model_path))))
        except EmotionError as error:
            note = f"\n\nThe TFLite export failed ({error}); the Keras model is complete."
        stopped = "Stopped by you; kept the best epoch so far. " if result.stopped_by_user else ""
        status = f"**Done.** {stopped}Best epoch: {result.best_epoch}.{note}"
        return (status, gr.skip(), gr.skip(), _metrics_markdown(result), str(result.confusion_path),
                str(result.curves_path), files, gr.update(visible=True), str(result.model_path))

    def on_stop_click(self, request: gr.Request) -> str:
        job = self.jobs.get(request.session_hash)
        if job is None:
            return "No training is running in this tab."
        job.stop()
        return "Stopping after this batch; the best model so far is kept."

    def _prepare(self, session: str, dataset_path: str, config: TrainConfig, progress: gr.Progress) -> PreparedData:
        """Decode and crop the dataset once per upload and settings; the scan and Start share it."""
        _check_upload_size(dataset_path, MAX_DATASET_UPLOAD_BYTES, "dataset")
        key = (dataset_path, config.preprocessing, config.faces, config.val_split, config.seed)
        cached = self._prepared.get(session)
        if cached and cached[0] == key:
            return cached[1]
        self.close_idle_sessions()  # frees memory before this dataset takes some
        workdir = self.sessions.folder(session) / "dataset"
        shutil.rmtree(workdir, ignore_errors=True)  # one dataset per session on disk
        try:
            prepared = prepare_data(Path(dataset_path), config, workdir,
                                    on_file=lambda index, total: progress((index, total), desc="Reading images",
                                                                          unit="images"))
        except EmotionError as error:
            raise gr.Error(str(error)) from error
        self._prepared[session] = (key, prepared)
        return prepared

    # Choosing the model.

    def on_use_model_click(self, trained_model_path: str | None, request: gr.Request):
        if not trained_model_path or not self.sessions.owns(request.session_hash, trained_model_path):
            raise gr.Error("Train a model in this tab first.")
        predictor = self._predictor(trained_model_path)
        return trained_model_path, _model_markdown(predictor.bundle), (
            f"Upload and Webcam now use **{Path(trained_model_path).name}** in this browser tab. "
            "Other visitors still see the bundled model.")

    def on_bundled_model_click(self):
        return None, _model_markdown(self.predictors.default.bundle), "Back to the bundled model."

    # Sessions ending.

    def on_page_unload(self, request: gr.Request) -> None:
        """A visitor left: end their training and delete their files."""
        session = request.session_hash
        job = self.jobs.pop(session, None)
        if job is not None:
            job.stop()
            job.join()
        self._forget(session)
        self.sessions.close(session)

    def close_idle_sessions(self) -> None:
        """Delete the files and data of visitors idle too long (who never said goodbye); trainings go on."""
        for session in self.sessions.expire(keep=set(self.jobs.copy())):  # copy(): atomic, jobs change meanwhile
            self._forget(session)

    def _forget(self, session: str) -> None:
        self._prepared.pop(session, None)
        self.predictors.forget_under(self.sessions.root / session)

    def _sweep(self, every_seconds: float) -> None:
        while True:
            time.sleep(every_seconds)
            try:
                self.close_idle_sessions()
            except Exception:  # the sweeper must outlive any one failure
                log.exception("closing idle sessions failed")


def build_demo(app: EmotionApp | None = None, delete_cache: tuple[int, int] = GRADIO_CACHE_SWEEP) -> gr.Blocks:
    app = app or EmotionApp()
    defaults = TrainConfig()
    with gr.Blocks(title="Happy or Sad?", delete_cache=delete_cache, analytics_enabled=False) as demo:
        model_state = gr.State(None)  # this tab's model path; None is the bundled model
        trained_state = gr.State(None)  # the last model trained in this tab
        gr.Markdown("# Happy or Sad?\nFinds every face in a photo and tells whether it looks happy or sad.")
        with gr.Tab("Upload"):
            _photo_tab(app, model_state, sources=["upload", "clipboard"], label="Photo")
        with gr.Tab("Webcam"):
            gr.Markdown("Snap a photo with your webcam. If your browser blocks the camera, use the Upload tab.")
            _photo_tab(app, model_state, sources=["webcam"], label="Webcam photo")
        _live_tab(app, model_state)
        with gr.Tab("Train"):
            trained_message = _train_tab(app, defaults, trained_state)
        with gr.Tab("About"):
            about_markdown = gr.Markdown(_model_markdown(app.predictors.default.bundle))
            bundled_button = gr.Button("Use the bundled model", size="sm")
            with gr.Accordion("README", open=False):
                gr.Markdown(_readme_text())
        trained_message["use_button"].click(app.on_use_model_click, [trained_state],
                                            [model_state, about_markdown, trained_message["message"]],
                                            api_visibility="private")
        bundled_button.click(app.on_bundled_model_click, None, [model_state, about_markdown,
                                                                trained_message["message"]], api_visibility="private")

        # API only: one image in, the command line's JSON object out.
        api_photo = gr.Image(type="filepath", visible=False)
        api_result = gr.JSON(visible=False)
        api_button = gr.Button(visible=False)
        api_button.click(app.on_api_predict, [api_photo, model_state], api_result, api_name="predict",
                         preprocess=False, concurrency_limit=4, concurrency_id="predict")
        demo.unload(app.on_page_unload)
    return demo


def _photo_tab(app: EmotionApp, model_state: gr.State, sources: list[str], label: str) -> None:
    with gr.Row():
        with gr.Column():
            photo_input = gr.Image(type="filepath", sources=sources, label=label)
            whole_image_button = gr.Button("No face found: classify the whole image anyway", visible=False)
        with gr.Column():
            annotated_image = gr.Image(label="Faces", type="numpy", interactive=False, format="jpeg")
            message_markdown = gr.Markdown()
            scores_label = gr.Label(label="Main face (the largest)", num_top_classes=5)
    faces_table = gr.Dataframe(headers=FACE_TABLE_HEADERS, label="Every face", interactive=False)
    outputs = [annotated_image, scores_label, faces_table, message_markdown, whole_image_button]
    # preprocess=False: handlers get the uploaded file untouched (see `_upload_path`).
    photo_input.change(app.on_photo_change, [photo_input, model_state], outputs, api_visibility="private",
                       preprocess=False, concurrency_limit=4, concurrency_id="predict")
    whole_image_button.click(app.on_whole_image_click, [photo_input, model_state], outputs,
                             api_visibility="private", preprocess=False, concurrency_limit=4,
                             concurrency_id="predict")


def _live_tab(app: EmotionApp, model_state: gr.State) -> None:
    with gr.Tab("Live"):
        gr.Markdown("Start your webcam: every face is boxed and labelled as you move, a few times a second. "
                    "Browsers allow the camera only on `localhost` or an `https://` address; if yours stays "
                    "blank or refuses, use the Webcam tab (one snapshot) or Upload.")
        with gr.Row():
            webcam_image = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam")
            with gr.Column():
                live_image = gr.Image(label="Live faces", type="numpy", interactive=False, format="jpeg")
                rate_markdown = gr.Markdown()
        live_state = gr.State(None)  # this visitor's LiveStream: faces followed across frames
        webcam_image.stream(app.on_live_stream, [webcam_image, live_state, model_state],
                            [live_image, rate_markdown, live_state], stream_every=LIVE_FRAME_SECONDS,
                            time_limit=LIVE_TIME_LIMIT, concurrency_limit=LIVE_STREAMS, concurrency_id="live",
                            show_progress="hidden", api_visibility="private")


def _train_tab(app: EmotionApp, defaults: TrainConfig, trained_state: gr.State) -> dict:
    gr.Markdown("Upload a `.zip` of class folders (`happy/`, `sad/`, ... or `train/` and `test/` folders "
                "holding them). Photos are cropped to their face; face crops are used as they are.")
    with gr.Row():
        with gr.Column(scale=1):
            dataset_file = gr.File(label="Dataset (.zip)", file_types=[".zip"], type="filepath")
            with gr.Accordion("Settings", open=False):
                epochs_slider = gr.Slider(1, 200, value=defaults.epochs, step=1, label="Epochs")
                batch_size_slider = gr.Slider(8, 512, value=defaults.batch_size, step=8, label="Batch size")
                learning_rate_number = gr.Number(value=defaults.learning_rate, label="Learning rate", minimum=1e-6,
                                                 maximum=0.5, step=1e-4)
                augment_checkbox = gr.Checkbox(value=defaults.augment, label="Augment (flip, rotate, zoom, shift, "
                                                                             "brightness, contrast)")
                faces_radio = gr.Radio(["auto", "crop", "none"], value=defaults.faces, label="Face cropping",
                                       info="auto: crop faces out of photos, use face crops as they are")
                image_size_slider = gr.Slider(32, 128, value=defaults.image_size, step=8, label="Image size (pixels)")
            with gr.Row():
                start_button = gr.Button("Start", variant="primary", interactive=False)
                stop_button = gr.Button("Stop", variant="stop")
        with gr.Column(scale=2):
            dataset_markdown = gr.Markdown()
            thumbnails_gallery = gr.Gallery(label="A few faces per class, as the model sees them",
                                            columns=THUMBNAILS_PER_CLASS)
    status_markdown = gr.Markdown()
    with gr.Row():
        loss_plot = gr.LinePlot(x="epoch", y="value", color="series", title="Loss", label="Loss", height=260,
                                color_map=SERIES_COLORS)
        accuracy_plot = gr.LinePlot(x="epoch", y="value", color="series", title="Accuracy", label="Accuracy",
                                    height=260, y_lim=[0, 1], color_map=SERIES_COLORS)
    metrics_markdown = gr.Markdown()
    with gr.Row():
        confusion_image = gr.Image(label="Confusion matrix", interactive=False)
        curves_image = gr.Image(label="Training curves", interactive=False)
    model_files = gr.File(label="Your model (.keras, metadata .json, .tflite)", file_count="multiple",
                          interactive=False)
    use_button = gr.Button("Use this model", visible=False, variant="primary")
    message_markdown = gr.Markdown()

    settings = [faces_radio, image_size_slider]
    dataset_file.change(app.on_dataset_change, [dataset_file, *settings],
                        [dataset_markdown, thumbnails_gallery, start_button], api_visibility="private")
    start_button.click(
        app.on_train_click,
        [dataset_file, epochs_slider, batch_size_slider, learning_rate_number, augment_checkbox, *settings],
        [status_markdown, loss_plot, accuracy_plot, metrics_markdown, confusion_image, curves_image, model_files,
         use_button, trained_state],
        api_name="train", concurrency_limit=1, concurrency_id="training",
        show_progress_on=[status_markdown],  # keep the charts visible while the progress bar runs
    )
    stop_button.click(app.on_stop_click, None, status_markdown, queue=False, api_name="stop")
    return {"use_button": use_button, "message": message_markdown}


# Converting results for display.

def _faces_frame(predictions: list[FacePrediction]) -> pd.DataFrame:
    rows = [[index + 1, p.label, f"{p.confidence:.0%}", *p.box.as_list()] for index, p in enumerate(predictions)]
    return pd.DataFrame(rows, columns=FACE_TABLE_HEADERS)


def _prediction_message(predictions: list[FacePrediction], whole_image: bool) -> str:
    if whole_image:
        return f"Whole image: **{predictions[0].label}** ({predictions[0].confidence:.0%})."
    main = predictions[0]
    count = f"{len(predictions)} faces found" if len(predictions) > 1 else "One face found"
    return f"{count}. The largest looks **{main.label}** ({main.confidence:.0%})."


def _training_update(status: str, history: dict):
    if not history["epoch"]:
        # An empty frame would fix the charts' field types as categories for the rest of the run.
        return (status, None, None, *[gr.skip()] * 6)
    return (status, _curve_frame(history, "loss"), _curve_frame(history, "accuracy"), *[gr.skip()] * 6)


def _curve_frame(history: dict, metric: str) -> pd.DataFrame:
    """Long format for `gr.LinePlot`: one row per epoch and series (training, validation)."""
    rows = [(epoch, value, series) for series, key in (("training", metric), ("validation", f"val_{metric}"))
            for epoch, value in zip(history["epoch"], history[key])]
    return pd.DataFrame(rows, columns=["epoch", "value", "series"])


def _batch_status(event: BatchProgress, started: float, done: float) -> str:
    return (f"Epoch {event.epoch}/{event.epochs}, batch {event.batch}/{event.batches}, "
            f"{_time_left(started, done)}. Loss {event.loss:.3f}, accuracy {event.accuracy:.1%}.")


def _epoch_status(event: EpochProgress, started: float) -> str:
    done = event.epoch / event.epochs
    return (f"Epoch {event.epoch}/{event.epochs} done in {event.seconds:.0f} s, {_time_left(started, done)}. "
            f"Validation accuracy {event.val_accuracy:.1%}, loss {event.val_loss:.3f}.")


def _time_left(started: float, done: float) -> str:
    if done <= 0:
        return "estimating time left"
    seconds = (time.monotonic() - started) * (1 - done) / done
    return f"about {int(seconds // 60)} min {int(seconds % 60):02d} s left"


def _dataset_markdown(prepared: PreparedData) -> str:
    summary = prepared.summary
    lines = [f"**{summary['root']}**: {summary['layout']}, faces: "
             f"{'cropped from photos' if summary['face_mode'] == 'crop' else 'images used as they are'}.", "",
             "| class | " + " | ".join(summary["used"]) + " |", "|---" * (len(summary["used"]) + 1) + "|"]
    for name in prepared.class_names:
        counts = [str(split_counts.get(name, 0)) for split_counts in summary["used"].values()]
        lines.append(f"| {name} | " + " | ".join(counts) + " |")
    if summary["skipped"]:
        lines += ["", f"**Skipped {len(summary['skipped'])} file(s) that could not be read:**"]
        lines += [f"- {item['reason']}" for item in summary["skipped"][:10]]
        lines += [f"- ... and {len(summary['skipped']) - 10} more"] if len(summary["skipped"]) > 10 else []
    if summary["no_face"]:
        names = ", ".join(summary["no_face"][:10]) + (" ..." if len(summary["no_face"]) > 10 else "")
        lines += ["", f"**{len(summary['no_face'])} photo(s) with no face found, left out:** {names}"]
    return "\n".join(lines)


def _thumbnails(prepared: PreparedData) -> list[tuple]:
    pixels, labels = prepared.train.pixels, prepared.train.labels
    thumbnails = []
    for index, name in enumerate(prepared.class_names):
        for row in pixels[labels == index][:THUMBNAILS_PER_CLASS]:
            thumbnails.append((row[..., 0] if row.shape[-1] == 1 else row, name))
    return thumbnails


def _metrics_markdown(result: TrainResult) -> str:
    evaluation = result.evaluation
    lines = [f"**{result.evaluated_on.capitalize()} accuracy: {evaluation.accuracy:.1%}** "
             f"on {evaluation.total} images.", "",
             "| class | precision | recall | F1 | images |", "|---|---|---|---|---|"]
    for name, row in evaluation.per_class().items():
        lines.append(f"| {name} | {row['precision']:.1%} | {row['recall']:.1%} | {row['f1']:.3f} | {row['support']} |")
    return "\n".join(lines)


def _model_markdown(bundle: ModelBundle) -> str:
    metadata = bundle.metadata
    validation = metadata.get("metrics", {}).get("validation", {})
    recalls = ", ".join(f"{name} {row['recall']:.1%}" for name, row in validation.get("per_class", {}).items())
    config = metadata.get("config", {})
    dataset = metadata.get("dataset", {})
    return "\n".join([
        "## Active model",
        f"- **File:** `{bundle.path.name}`" + (" (bundled)" if bundle.path.resolve() == DEFAULT_MODEL_PATH else ""),
        f"- **Classes:** {', '.join(bundle.class_names)}",
        f"- **Input:** {bundle.preprocessing.image_size} x {bundle.preprocessing.image_size} "
        f"{bundle.preprocessing.color_mode} face crops",
        f"- **Trained on:** {dataset.get('root', 'unknown')}, {metadata.get('epochs_run', '?')} epochs "
        f"(best {metadata.get('best_epoch', '?')}), batch {config.get('batch_size', '?')}, "
        f"learning rate {config.get('learning_rate', '?')}, {metadata.get('trained_at', 'date unknown')}",
        f"- **Validation accuracy:** {validation['accuracy']:.1%} (recall: {recalls})" if validation else
        "- **Validation accuracy:** not recorded",
    ])


def _readme_text() -> str:
    text = README_PATH.read_text(encoding="utf-8") if README_PATH.is_file() else "README.md is missing."
    return re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.DOTALL)  # the Spaces front matter


# Checking input.

def _config(**settings) -> TrainConfig:
    try:
        return TrainConfig(**{key: int(value) if key in ("epochs", "batch_size", "image_size") else value
                              for key, value in settings.items()})
    except (TypeError, ValueError) as error:
        raise gr.Error(f"Invalid setting: {error}") from error


def _upload_path(photo: Upload) -> str | None:
    """The uploaded file's path from an un-preprocessed image value.

    `gr.Image` would open the file with Pillow before a handler runs, so a corrupt file or a
    decompression bomb would fail inside Gradio with a generic error; events therefore skip
    Gradio's preprocessing (uploads are still confined to Gradio's upload folder) and
    `emotion.read_image` checks size and format first and says what is wrong.
    """
    if isinstance(photo, dict):
        return photo.get("path")
    return photo


def _check_upload_size(path: str, limit: int, what: str) -> None:
    size = Path(path).stat().st_size if Path(path).is_file() else 0
    if size > limit:
        raise gr.Error(f"This {what} is {size / 1024**2:.1f} MB, over the {limit // 1024**2} MB limit. "
                       f"Use a smaller file.")


def _new_model_path(folder: Path, dataset_path: str) -> Path:
    """`<dataset name>-<n>.keras`, never reused: a loaded model is cached by its path."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(dataset_path).stem).strip("_")[:60] or "model"
    number = 1
    while (folder / f"{stem}-{number}.keras").exists() or (folder / f"{stem}-{number}.json").exists():
        number += 1
    return folder / f"{stem}-{number}.keras"


# System fonts: the page must not fetch web fonts from a third party either. The upload cap applies
# to every file before any handler runs; handlers apply the smaller per-kind limits.
LAUNCH_OPTIONS = {
    "max_file_size": MAX_DATASET_UPLOAD_BYTES,
    "theme": gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]),
}

def load_app(model_path: str | None) -> EmotionApp:
    """The app on `model_path`, falling back to the bundled model when that one cannot be loaded."""
    if model_path:
        try:
            return EmotionApp(model_path)
        except ModelError as error:
            log.error("%s Starting with the bundled model instead.", error)
    return EmotionApp()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    model_path = os.environ.get("EMOTION_MODEL")  # a .keras file to serve instead of the bundled one
    try:
        app = load_app(model_path)
    except ModelError as error:  # the bundled model itself is missing or damaged
        raise SystemExit(f"Cannot start: {error}")
    build_demo(app).queue(default_concurrency_limit=4).launch(**LAUNCH_OPTIONS)


if __name__ == "__main__":
    main()
