"""The web app's tabs. Each tab is one class that lays out its components and wires their events to its
short handlers; a handler converts Gradio values, calls `emotion`, and returns `{component: value}` for
what it changes. `app.py` puts the tabs on one page; `display` turns results into words and tables.
"""

import gradio as gr

from emotion.errors import EmotionError

# The Upload and Webcam tabs and the /predict API share these prediction slots.
PREDICT_EVENTS = {"concurrency_limit": 4, "concurrency_id": "predict"}

# The page's own JavaScript, run in the browser. A model trained in a tab lives as long as the tab (the
# visitor's files are deleted when it closes): its files mark the tab, and leaving a marked tab (closing
# it, reloading, another address) asks first.
TRAINED_MODEL_JS = "(files) => { if (files && files.length) window.emotionTrainedModel = true; }"
LEAVE_GUARD_JS = """() => {
    window.addEventListener("beforeunload", (event) => {
        if (window.emotionTrainedModel) { event.preventDefault(); event.returnValue = ""; }
    });
}"""


def errors_shown(function):
    """Any `EmotionError` a handler meets is shown to the visitor as it is, and the server goes on.

    The message stays on screen until the visitor closes it: it says what to do, and is often read
    after the outputs it replaced.
    """
    def handler(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except EmotionError as error:
            raise gr.Error(str(error), duration=None) from error
    return handler
