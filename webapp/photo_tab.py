"""Upload and Webcam: a photo in; every face's box, label and crop out, with the model the visitor picked."""

from pathlib import Path

import gradio as gr
from gradio.data_classes import FileData

from emotion.annotate import draw_predictions
from emotion.limits import MAX_IMAGE_UPLOAD_BYTES
from emotion.serving import Server, check_upload
from webapp import PREDICT_EVENTS, display, errors_shown


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
                # No label badge: it would cover the labels of faces at the photo's top left.
                self.annotated = gr.Image(label="Faces", show_label=False, type="numpy", interactive=False,
                                          format="jpeg", elem_classes=["faces-image"])
                self.message = gr.Markdown()
                self.scores = gr.Label(label="Main face (the largest)", num_top_classes=7)
        # fit_columns=False: a lone face keeps its column's width instead of stretching across the page.
        # No preview: a click outlines that face on the photo instead of enlarging a 48-pixel crop in the strip.
        # Its title above it, not as a badge, which covered the top of the first crop.
        gr.Markdown("Each face as the model sees it (click one to outline it on the photo):")
        self.crops = gr.Gallery(label="Each face as the model sees it", show_label=False, columns=8, height=150,
                                object_fit="contain", fit_columns=False, allow_preview=False,
                                elem_classes=["face-crops"])
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
        predictor, photo = errors_shown(self._classify)(path, model, request.session_hash, faces)
        predictions = photo.in_original_pixels()  # the table gives boxes in the uploaded file's pixels
        # The verdicts as alt text too: screen readers cannot read the labels drawn on the photo.
        drawn = draw_predictions(photo.image, photo.predictions, predictor.class_names)
        return {self.annotated: gr.update(value=drawn, alt_text=display.faces_alt_text(predictions, faces == "none")),
                self.scores: display.main_face_scores(predictions[0]) if predictions else None,
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
