"""Train: a dataset zip in, what it holds, a training streamed as charts, the model out."""

import time

import gradio as gr

from emotion.config import TrainConfig
from emotion.errors import EmotionError
from emotion.export import export_tflite
from emotion.limits import MAX_DATASET_UPLOAD_BYTES
from emotion.modelfile import load_bundle
from emotion.serving import Server, check_upload
from webapp import TRAINED_MODEL_JS, display, errors_shown

INIT_CHOICES = ["auto", "scratch", "emotions", "happy_sad"]  # where a training starts (TrainConfig.init)


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
                    self.stop = gr.Button("Stop", variant="stop", interactive=False)  # while a training runs
                # Right under the buttons: on a phone, the preview stacks between them and anything lower.
                self.status = gr.Markdown(label="Status")
            with gr.Column(scale=2):
                self.summary = gr.Markdown()
                # Its title ends the summary above it: a label badge would cover the first row of faces.
                self.thumbnails = gr.Gallery(label="A few faces per class, as the model sees them", show_label=False,
                                             columns=display.THUMBNAILS_PER_CLASS)
        with gr.Row():
            self.loss_plot, self.accuracy_plot = (
                # No fixed height: it would cut off the legend that tells training from validation.
                gr.LinePlot(x="epoch", y="value", color="series", title=name, label=name, y_title=name.lower(),
                            x_axis_format="d", color_map=display.SERIES_COLORS, y_lim=limits) for name, limits in
                (("Loss", None), ("Accuracy", [0, 1])))
        self.metrics = gr.Markdown(label="Metrics")
        with gr.Row():
            # The figures carry their own titles, which a label badge would cover.
            self.confusion = gr.Image(label="Confusion matrix", show_label=False, interactive=False)
            self.curves = gr.Image(label="Training curves", show_label=False, interactive=False)
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
        # While a training waits for its turn or runs, until it ends however it ends, Stop is on and Start off.
        request = gr.State(None)  # the id of the training this click asked for (Session.ask_training)
        self.training = self.start.click(
            self.on_start_click, None, [self.start, self.stop, request], queue=False, api_visibility="private"
        ).then(
            self.on_train_click, [self.dataset, *self.settings.values(), request],
            [self.status, self.loss_plot, self.accuracy_plot, self.metrics, self.confusion, self.curves, self.files],
            api_name="train", concurrency_limit=1, concurrency_id="training",
            show_progress_on=[self.status])  # the charts stay visible while the progress bar runs
        buttons = dict(fn=self.on_buttons, inputs=self.dataset, outputs=[self.start, self.stop], queue=False,
                       api_visibility="private")
        self.training.then(**buttons)
        self.training.then(None, self.files, None, js=TRAINED_MODEL_JS, api_visibility="private")
        self.stop.click(self.on_stop_click, None, self.status, queue=False, api_name="stop").then(**buttons)

    def on_dataset_change(self, dataset: str | None, faces: str, image_size: int, init: str, request: gr.Request,
                          progress: gr.Progress = gr.Progress()) -> dict:
        """What the uploaded dataset holds, before any training; scanned again when the preprocessing changes."""
        if not dataset:
            return {self.summary: "", self.thumbnails: None, self.start: gr.update(interactive=False)}
        prepared = self._prepare(dataset, _config(faces=faces, image_size=image_size, init=init), request, progress)
        # A new dataset while a training runs: Start stays off until it ends (then it trains on this one).
        start, _ = self.on_buttons(dataset, request)
        return {self.summary: display.dataset_markdown(prepared), self.thumbnails: display.thumbnails(prepared),
                self.start: start}

    def on_start_click(self, request: gr.Request) -> tuple:
        """Start off and Stop on at once, before the training waits for its turn (Stop then cancels it); the
        id of the training asked for."""
        asked = errors_shown(self.server.sessions.get(request.session_hash).ask_training)()
        return gr.update(interactive=False), gr.update(interactive=True), asked

    def on_buttons(self, dataset: str | None, request: gr.Request) -> tuple:
        """Start and Stop as this tab's trainings stand: after one ended, or one waiting was cancelled."""
        underway = self.server.sessions.get(request.session_hash).training_underway
        return gr.update(interactive=bool(dataset) and not underway), gr.update(interactive=underway)

    def on_train_click(self, dataset: str | None, epochs: int, batch_size: int, learning_rate: float,
                       augment: bool, faces: str, image_size: int, init: str, fine_tune_epochs: int,
                       asked: int | None = None, request: gr.Request = None, progress: gr.Progress = gr.Progress()):
        """Train a model on a dataset as the Train tab does (it is /train too): the status and charts as it
        runs, then the results and the model files.

        Args:
            dataset: a .zip of class folders (happy/, sad/, ...), or of train/ and test/ folders holding them.
            epochs: epochs to train (at most 5 when a bundled model already knows every class).
            batch_size: images a training step.
            learning_rate: the optimizer's learning rate.
            augment: flip, rotate, zoom, shift and change the brightness and contrast of training images.
            faces: "auto" (crop faces out of photos, use face crops as they are), "crop" or "none".
            image_size: the model's input side in pixels, when training from scratch.
            init: where training starts: "auto", "scratch", "emotions" or "happy_sad".
            fine_tune_epochs: epochs after those in which a bundled model's own layers learn too.
            asked: the Start button's request id (none through the API).
        Returns:
            The status, the loss and accuracy charts, the metrics, the confusion matrix and curves images,
            and the model files (.keras, its metadata .json, .tflite).
        """
        session = self.server.sessions.get(request.session_hash)
        try:
            yield from self._train(session, dataset, asked, request, progress, epochs=epochs, batch_size=batch_size,
                                   learning_rate=learning_rate, augment=augment, faces=faces, image_size=image_size,
                                   init=init, fine_tune_epochs=fine_tune_epochs)
        finally:
            session.end_request(asked)  # Start comes back on only now, the export included

    def _train(self, session, dataset: str | None, asked: int | None, request: gr.Request, progress: gr.Progress,
               **settings):
        if not dataset:
            raise gr.Error("Upload a dataset .zip first.")
        config = _config(**settings)
        prepared = self._prepare(dataset, config, request, progress)
        job = errors_shown(session.start_training)(prepared, config, session.new_model_path(dataset), asked)
        if job is None:  # Stop was pressed while it waited for its turn
            yield {self.status: "**Cancelled** before it started. Press Start to train."}
            return
        if display.few_images(prepared):
            gr.Warning(display.few_images(prepared))
        last_status = 0.0
        try:
            yield {self.status: f"Training on {prepared.summary['root']} started.", self.loss_plot: None,
                   self.accuracy_plot: None}
            for status, history, done in display.training_updates(job):
                if done is not None:  # a batch: the progress bar each time, the status once a second
                    progress(done, desc=status)
                    if time.monotonic() - last_status < 1.0:
                        continue
                    last_status = time.monotonic()
                charts = {self.loss_plot: display.curve_frame(history, "loss"),
                          self.accuracy_plot: display.curve_frame(history, "accuracy")} if history else {}
                yield {self.status: status, **charts}
            result = errors_shown(job.wait)()  # TrainingCancelled included: stopped before an epoch ended
        finally:
            session.end_training(job)  # a no-op after a normal end; ends the worker when the visitor has gone
        yield {self.status: "Trained. Converting the model to TFLite for fast predictions (a few seconds)..."}
        yield self._finished(session, result)

    def on_stop_click(self, request: gr.Request) -> dict:
        session = self.server.sessions.find(request.session_hash)
        if session is not None and session.job is None and session.cancel_waiting_trainings():
            return {self.status: "**Cancelled**: the training waiting for its turn will not start."}
        if session is None or session.job is None:  # /stop called (the button is off between trainings)
            return {self.status: "No training is running in this tab."}
        session.job.stop()
        return {self.status: "Stopping after this batch; the model of the epochs already finished is kept."}

    def _prepare(self, dataset: str, config: TrainConfig, request: gr.Request, progress: gr.Progress):
        errors_shown(check_upload)(dataset, MAX_DATASET_UPLOAD_BYTES, "dataset")
        self.server.sessions.expire()  # frees memory before this dataset takes some
        session = self.server.sessions.get(request.session_hash)
        on_file = lambda index, total: progress((index, total), desc="Reading images", unit="images")  # noqa: E731
        return errors_shown(session.prepare)(dataset, config, on_file)

    def _finished(self, session, result) -> dict:
        errors_shown(session.add_model)(result.model_path)
        files, note = [str(result.model_path), str(result.metadata_path)], ""
        try:
            files.append(str(export_tflite(load_bundle(result.model_path))))
        except EmotionError as error:
            note = f"\n\nThe TFLite export failed ({error}); the Keras model is complete."
        stopped = "Stopped by you. " if result.stopped_by_user else ""
        kept = f"Kept {result.kept_epoch}; started from {result.started_from}. Planned: {result.plan}."
        history = {**result.history, "epoch": list(range(1, len(result.history["loss"]) + 1))}
        return {self.status: f"**Done.** {stopped}{kept}{note}",
                # The charts once more: /train's final answer carries them too, not bare updates.
                self.loss_plot: display.curve_frame(history, "loss"),
                self.accuracy_plot: display.curve_frame(history, "accuracy"),
                self.metrics: display.metrics_markdown(result), self.confusion: str(result.confusion_path),
                self.curves: str(result.curves_path), self.files: files}


def _settings(defaults: TrainConfig) -> dict:
    """The Train tab's settings by `TrainConfig` field; every default comes from the config."""
    return {
        "epochs": gr.Slider(1, 200, value=defaults.epochs, step=1, label="Epochs",
                            info=f"at most {defaults.known_class_epochs} when the bundled model already knows "
                                 "every class (happy, sad, ...) and so starts as a classifier"),
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
                                           "its layers learn too; none when it already knows every class"),
    }


def _config(**settings) -> TrainConfig:
    try:
        return TrainConfig(**{key: int(value) if key in ("epochs", "batch_size", "image_size", "fine_tune_epochs")
                              else value
                              for key, value in settings.items()})
    except (TypeError, ValueError) as error:
        raise gr.Error(f"Invalid setting: {error}") from error
