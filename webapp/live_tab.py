"""Live: the webcam streams, and each frame comes back with its faces followed, smoothed and labelled."""

import gradio as gr

from emotion.annotate import draw_predictions
from emotion.live import LiveStream
from emotion.serving import Server
from webapp import errors_shown

# The browser sends a frame every LIVE_FRAME_SECONDS while no answer is pending, and the server keeps
# only the newest frame of each stream, so a slow server drops frames instead of queueing them. Each
# stream holds one of LIVE_STREAMS slots for at most LIVE_TIME_LIMIT seconds; later visitors wait in the
# queue meanwhile, so the two cores are shared by a few smooth streams.
LIVE_FRAME_SECONDS = 0.05
LIVE_STREAMS = 4
LIVE_TIME_LIMIT = 120


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
        predictor = errors_shown(self.server.predictor)(session, session.model)
        if live is None or live.predictor is not predictor:  # a new stream, or the visitor switched models
            live = LiveStream(predictor)
        result = live.process(frame)
        count = len(result.predictions)
        faces = "no face" if count == 0 else "1 face" if count == 1 else f"{count} faces"
        return {self.labelled: draw_predictions(frame, result.predictions, predictor.class_names),
                self.rate: f"**{result.frames_per_second:.1f} frames/s**, {faces}; model "
                           f"`{predictor.bundle.path.stem}` (pick another in the Upload tab)",
                self.stream: live}
