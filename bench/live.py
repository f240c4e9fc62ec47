"""The Live tab in Chromium with a fake camera that films a face: shared by bench/run.py and the browser test.

Chromium plays a .y4m video as its camera (`--use-file-for-fake-video-capture`); the video is built
here from matplotlib's sample portrait, sliding left and right, so nothing is committed or downloaded.
Each video frame carries its number as a row of black and white blocks along its top edge, laid out
symmetrically so that a mirrored webcam image reads the same. In the page, a recorder reads that
number when the browser captures a frame to send and when a labelled frame is shown (the "Live
faces" image changes), with times in milliseconds of `performance.now()`.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib.cbook
import numpy as np
from PIL import Image

CHROMIUM_PATH = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
VIDEO_SIZE = (640, 480)  # the usual webcam resolution
# A green-grey wall: no label colour and not the grey of an unsure face's box, so tests can tell them apart.
WALL_COLOR = (60, 90, 70)
VIDEO_FPS = 30
CODE_BITS, CODE_HEIGHT = 8, 24  # frame number: 8 blocks of 40 px, mirrored into the other 8, 24 px tall


def camera_args(video_path: Path) -> list[str]:
    return [*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={video_path}"]


def write_face_video(path: Path, seconds: float = 2.0) -> Path:
    """A 640x480 YUV4MPEG2 video of a portrait sliding left and right over a grey wall; Chromium loops it."""
    portrait = Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    face = np.asarray(portrait.resize((256, 300), Image.Resampling.LANCZOS))
    width, height = VIDEO_SIZE
    frames = round(seconds * VIDEO_FPS)
    with open(path, "wb") as video:
        video.write(f"YUV4MPEG2 W{width} H{height} F{VIDEO_FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for index in range(frames):
            frame = np.full((height, width, 3), WALL_COLOR, np.uint8)
            left = 192 + round(120 * np.sin(2 * np.pi * index / frames))
            frame[90:390, left:left + face.shape[1]] = face
            frame[:CODE_HEIGHT] = _code_strip(index, width)
            video.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


def _code_strip(number: int, width: int) -> np.ndarray:
    bits = [(number >> bit) & 1 for bit in range(CODE_BITS)]
    blocks = np.repeat(np.array(bits + bits[::-1], np.uint8) * 255, width // (2 * CODE_BITS))
    return np.repeat(np.repeat(blocks[None, :, None], CODE_HEIGHT, axis=0), 3, axis=2)


# readCode(source, width): the frame number in the code strip of a canvas or image of that width.
RECORDER_JS = """(codeBits) => {
    const probe = document.createElement("canvas");
    const readCode = (source, width, height) => {
        probe.width = width; probe.height = height;
        const context = probe.getContext("2d", {willReadFrequently: true});
        context.drawImage(source, 0, 0, width, height);
        const row = context.getImageData(0, Math.round(height * 12 / 480), width, 1).data;
        let number = 0;
        for (let bit = 0; bit < codeBits; bit++) {
            const x = Math.round((bit + 0.5) * width / (2 * codeBits));
            if (row[4 * x + 1] > 128) number |= 1 << bit;
        }
        return number;
    };
    window.liveRecord = {sent: [], shown: []};
    // Gradio encodes each streamed frame with toDataURL (snapshots with toBlob).
    const toDataURL = HTMLCanvasElement.prototype.toDataURL;
    HTMLCanvasElement.prototype.toDataURL = function (...options) {
        if (this.width > 0 && this !== probe) {
            window.liveRecord.sent.push([readCode(this, this.width, this.height), performance.now()]);
        }
        return toDataURL.apply(this, options);
    };
    new MutationObserver((mutations) => {
        for (const mutation of mutations) {
            const image = mutation.target;
            if (image.tagName === "IMG" && image.closest("[data-live-output]")) {
                image.decode().then(() => window.liveRecord.shown.push(
                    [readCode(image, image.naturalWidth, image.naturalHeight), performance.now()]), () => {});
            }
        }
    }).observe(document.body, {subtree: true, attributes: true, attributeFilter: ["src"]});
}"""


def start_live_stream(page, timeout_ms: float = 60_000) -> None:
    """Open the Live tab, allow the camera, start streaming, and record frames from now on."""
    live_tab = page.get_by_role("tab", name="Live")
    live_tab.wait_for(timeout=timeout_ms)
    # Until every component's code has loaded, Gradio covers the page with "Loading..." and takes no clicks.
    page.wait_for_function("() => ![...document.querySelectorAll('*')].some(element => element.childElementCount"
                           " === 0 && element.textContent.trim() === 'Loading...' && element.checkVisibility())",
                           timeout=timeout_ms)
    live_tab.click()
    output = page.locator(".block:visible").filter(has=page.locator("[data-testid=block-label]",
                                                                    has_text="Live faces"))
    output.evaluate("(block) => block.setAttribute('data-live-output', '')")
    page.evaluate(RECORDER_JS, CODE_BITS)
    page.get_by_role("button", name="Click to Access Webcam").click()
    page.locator("button:visible", has_text="Record").click(timeout=timeout_ms)


def live_record(page) -> dict[str, list[list[float]]]:
    """{"sent": [[frame number, ms], ...], "shown": [[frame number, ms], ...]} since `start_live_stream`."""
    return page.evaluate("() => window.liveRecord")


def frame_latencies(record: dict[str, list[list[float]]]) -> np.ndarray:
    """For each labelled frame shown, milliseconds since the browser captured that frame to send it.

    The video loops every few seconds, so a frame number is matched with its latest capture before it was shown.
    """
    latencies = []
    for number, shown_at in record["shown"]:
        captures = [sent_at for sent_number, sent_at in record["sent"] if sent_number == number and sent_at < shown_at]
        if captures:
            latencies.append(shown_at - captures[-1])
    return np.asarray(latencies)
