"""About: the model this browser tab uses; it follows the pickers, and offers a model just trained."""

import gradio as gr

from emotion.serving import Server
from webapp import display, errors_shown
from webapp.photo_tab import PhotoTab
from webapp.train_tab import TrainTab



class AboutTab:
    """About: the model this browser tab uses. It follows the pickers, and offers a model just trained."""

    def __init__(self, server: Server, photo_tabs: list[PhotoTab], train_tab: TrainTab):
        self.server, self.pickers, self.train_tab = server, [tab.model for tab in photo_tabs], train_tab
        self.about = gr.Markdown(display.model_markdown(server.predictors.default.bundle))
        with gr.Accordion("README", open=False):
            gr.Markdown(display.readme())
        for picker in self.pickers:
            picker.input(self.on_model_select, picker, [self.about, *self.pickers], api_visibility="private")
        train_tab.training.then(self.on_training_end, None, [train_tab.use_button, train_tab.message, *self.pickers],
                                api_visibility="private")
        train_tab.use_button.click(self.on_use_model_click, None, [self.about, train_tab.message, *self.pickers],
                                   api_visibility="private")

    def on_model_select(self, model: str, request: gr.Request) -> dict:
        """A model was picked in one tab: the other tabs' pickers and this panel follow."""
        session = self.server.sessions.get(request.session_hash)
        session.model = model
        bundle = errors_shown(self.server.predictor)(session, model).bundle
        return {self.about: display.model_markdown(bundle), **{picker: model for picker in self.pickers}}

    def on_training_end(self, request: gr.Request) -> dict:
        """A training ended: its model joins this tab's pickers, and "Use this model" appears; the note of a
        model used before it goes, or it would read as if the new one were in use."""
        session = self.server.sessions.get(request.session_hash)
        choices = self.server.model_choices(session)
        in_use = f"Upload, Webcam and Live use **{session.model}**." if session.model in session.models else ""
        return {self.train_tab.use_button: gr.update(visible=bool(session.models)), self.train_tab.message: in_use,
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
