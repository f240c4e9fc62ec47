"""Speed and memory of the whole product against its targets, as a markdown report.

    python bench/run.py [--output bench/results.md] [--quick] [--fer PATH] [--app PATH]

Photo to result, face classification, training throughput, app start and memory, and the Live tab
in Chromium with a fake camera (needs /usr/bin/chromium and playwright; see bench/live.py). Test
photos are built in memory from matplotlib's sample portrait; nothing is written into the repository
except the report. `--quick` cuts every repetition count by about ten for a smoke run.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import datetime
import importlib.metadata
import io
import json
import math
import operator
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

# TensorFlow's C++ start-up chatter would drown the progress lines on stderr.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import keras  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from emotion.config import TrainConfig  # noqa: E402
from emotion.images import read_image_reduced  # noqa: E402
from emotion.photos import PHOTO_MAX_SIDE  # noqa: E402
from emotion.predictor import Predictor  # noqa: E402
# The trainer's own pieces, so the measured step is the step `train` runs.
from emotion.preparation import PreparedData, prepare_data  # noqa: E402
from emotion.training import compiled_training  # noqa: E402

DEFAULT_OUTPUT = REPOSITORY / "bench" / "results.md"
DEFAULT_FER_PATH = Path(__file__).resolve().parents[2] / "shared/data/fer2013-happy-sad"
SAMPLE_FACE_PATH = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"

TRAINING_STEPS, QUICK_TRAINING_STEPS = 150, 20
TRAINING_SKIPPED_BATCHES = 10  # graph tracing, shuffle buffer filling and thread pools warming up
APP_START_TIMEOUT = 120.0  # seconds
APP_CLIENT_THREADS = 4
MEGABYTE = 1024 * 1024
DETECTION_TARGETS_MS = {"640x480, 1 face": 3}

Photos = dict[str, tuple[bytes, int]]  # label: (JPEG bytes, faces in the photo)


@dataclass(frozen=True)
class Target:
    comparison: str  # "<", "<=" or ">="
    bound: float

    def met_by(self, value: float) -> bool:
        compare = {"<": operator.lt, "<=": operator.le, ">=": operator.ge}[self.comparison]
        return compare(value, self.bound)


@dataclass(frozen=True)
class Measurement:
    name: str
    median: float | None  # None: skipped or failed, the note says why
    p95: float | None  # None for one-off measurements
    unit: str  # "ms", "s", "MB", "images/s" or "faces/s"
    target: Target | None = None
    note: str = ""


def repetitions(full: int, quick: bool) -> int:
    return max(3, full // 10) if quick else full


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# Timing helpers.


def time_calls(call: Callable[[], object], repeats: int, warmup: int = 3) -> np.ndarray:
    """Seconds per call, after `warmup` untimed calls."""
    for _ in range(warmup):
        call()
    seconds = np.empty(repeats)
    for index in range(repeats):
        started = time.perf_counter()
        call()
        seconds[index] = time.perf_counter() - started
    return seconds


def latency(name: str, seconds: np.ndarray, target_ms: float | None = None, note: str = "") -> Measurement:
    target = Target("<=", target_ms) if target_ms is not None else None
    note = f"{note}; n = {len(seconds)}" if note else f"n = {len(seconds)}"
    return Measurement(name, float(np.median(seconds)) * 1000, float(np.percentile(seconds, 95)) * 1000, "ms",
                       target, note)


def throughput(name: str, items: int, seconds: np.ndarray, unit: str, target: float, note: str) -> Measurement:
    # The p95 column is the slow tail: the rate at the 95th-percentile time, not a faster figure.
    return Measurement(name, items / float(np.median(seconds)), items / float(np.percentile(seconds, 95)), unit,
                       Target(">=", target), f"{note}; n = {len(seconds)}")


def skipped(name: str, unit: str, target: Target | None, reason: str) -> Measurement:
    return Measurement(name, None, None, unit, target, f"**skipped: {reason}**")


def memory_megabytes(pid: int | str = "self", field: str = "VmRSS") -> float:
    """A memory figure of /proc/PID/status (VmRSS now, VmHWM peak) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024 / MEGABYTE  # the kernel reports kB
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


# Test photos, built in memory from the portrait matplotlib ships.


def encode_jpeg(image: Image.Image, quality: int = 90, progressive: bool = False) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, progressive=progressive)
    return buffer.getvalue()


def encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def background(width: int, height: int, noise: float, seed: int = 0) -> Image.Image:
    """A grey-blue gradient with Gaussian noise of `noise` grey levels, like a wall in a photo."""
    rng = np.random.default_rng(seed)
    gradient = np.linspace(90, 170, width, dtype=np.float32)[None, :, None] * np.array([0.9, 1.0, 1.1], np.float32)
    pixels = gradient + rng.normal(0, noise, (height, width, 1)).astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def paste_centred(canvas: Image.Image, picture: Image.Image, centre_x: int) -> None:
    canvas.paste(picture, (centre_x - picture.width // 2, (canvas.height - picture.height) // 2))


def scaled_to_height(picture: Image.Image, height: int) -> Image.Image:
    return picture.resize((round(picture.width * height / picture.height), height), Image.Resampling.LANCZOS)


def head_crop(portrait: Image.Image, predictor: Predictor) -> Image.Image:
    """A square around the portrait's face, 1.8 face widths wide.

    At 120 px the whole portrait leaves a face of ~45 px, at the edge of what the detector finds
    in a 640 px photo (it finds 3 to 5 of 5 depending on the exact size); a head crop does not.
    """
    face = predictor.detector.detect(np.asarray(portrait))[0]
    centre_x, centre_y, half = face.x + face.width / 2, face.y + face.height / 2, 0.9 * face.width
    return portrait.crop((round(centre_x - half), round(centre_y - half), round(centre_x + half),
                          round(centre_y + half)))


def build_photos(predictor: Predictor) -> Photos:
    """File bytes and the number of faces in each: one face, five faces, and a 12 MP phone photo
    (baseline JPEG, progressive JPEG and PNG)."""
    portrait = Image.open(SAMPLE_FACE_PATH).convert("RGB")

    one_face = background(640, 480, noise=12)
    paste_centred(one_face, scaled_to_height(portrait, 300), 320)

    five_faces = background(640, 480, noise=12, seed=1)
    head = head_crop(portrait, predictor).resize((120, 120), Image.Resampling.LANCZOS)
    for index in range(5):
        paste_centred(five_faces, head, 64 + index * 128)

    # Low noise, so the file is the 3-5 MB of a real 12 MP phone JPEG rather than incompressible.
    phone = background(4000, 3000, noise=3, seed=2)
    paste_centred(phone, scaled_to_height(portrait, 2400), 2000)

    return {"640x480, 1 face": (encode_jpeg(one_face), 1),
            "640x480, 5 faces": (encode_jpeg(five_faces), 5),
            "4000x3000 (12 MP)": (encode_jpeg(phone), 1),
            "4000x3000 (12 MP) progressive JPEG": (encode_jpeg(phone, progressive=True), 1),
            "4000x3000 (12 MP) PNG": (encode_png(phone), 1)}


# 1. Photo to result, and where its time goes.


def faces_note(found: int, expected: int, jpeg: bytes) -> str:
    kind = "PNG" if jpeg.startswith(b"\x89PNG") else "JPEG"
    size = f"{kind} {len(jpeg) / MEGABYTE:.2f} MB" if len(jpeg) > MEGABYTE else f"{kind} {len(jpeg) // 1024} kB"
    if found == expected:
        return f"{found} of {expected} faces found; {size}"
    progress(f"WARNING: found {found} faces where the photo has {expected}")
    return f"**found {found} faces, the photo has {expected}: this row does not measure a full run**; {size}"


def measure_photo_to_result(predictor: Predictor, photos: Photos, quick: bool) -> list[Measurement]:
    targets_ms = {"640x480, 1 face": 5, "640x480, 5 faces": 20, "4000x3000 (12 MP)": 60,
                  "4000x3000 (12 MP) progressive JPEG": 100, "4000x3000 (12 MP) PNG": 100}
    full_repeats = {"640x480, 1 face": 200, "640x480, 5 faces": 200, "4000x3000 (12 MP)": 30,
                    "4000x3000 (12 MP) progressive JPEG": 30, "4000x3000 (12 MP) PNG": 30}
    measurements = []
    for label, (jpeg, expected) in photos.items():
        progress(f"photo to result: {label}")
        result = predictor.predict_source(jpeg)
        note = faces_note(len(result["faces"]), expected, jpeg)
        if result["error"]:
            note = f"**error: {result['error']}**"
        seconds = time_calls(lambda: predictor.predict_source(jpeg), repetitions(full_repeats[label], quick))
        measurements.append(latency(f"photo to result, {label}", seconds, targets_ms[label], note))
    return measurements


def measure_decode_and_detect(predictor: Predictor, photos: Photos, quick: bool) -> list[Measurement]:
    """The two steps as the predictor runs them: decode to at most PHOTO_MAX_SIDE, detect on that."""
    measurements = []
    for label, full in (("640x480, 1 face", 200), ("4000x3000 (12 MP)", 30)):
        progress(f"decode and detection alone: {label}")
        jpeg = photos[label][0]
        image, _ = read_image_reduced(jpeg, PHOTO_MAX_SIDE)
        measurements.append(latency(f"  decode alone (read_image_reduced), {label}",
                                    time_calls(lambda: read_image_reduced(jpeg, PHOTO_MAX_SIDE),
                                               repetitions(full, quick)),
                                    note=f"decoded at {image.shape[1]}x{image.shape[0]}"))
        measurements.append(latency(f"  detection alone (detector.detect), {label}",
                                    time_calls(lambda: predictor.detector.detect(image), repetitions(full, quick)),
                                    DETECTION_TARGETS_MS.get(label)))
    return measurements


# 2. Face classification alone.


def measure_classification(predictor: Predictor, quick: bool) -> list[Measurement]:
    size, channels = predictor.preprocessing.image_size, predictor.preprocessing.channels
    rng = np.random.default_rng(0)
    one_face = rng.integers(0, 256, (1, size, size, channels), dtype=np.uint8)
    batch = rng.integers(0, 256, (64, size, size, channels), dtype=np.uint8)
    progress("classification: one face")
    one = latency("classify 1 face (predictor.classify)",
                  time_calls(lambda: predictor.classify(one_face), repetitions(200, quick)), 2)
    progress("classification: batches of 64")
    seconds = time_calls(lambda: predictor.classify(batch), repetitions(100, quick))
    batches = throughput("classify batches of 64 faces", 64, seconds, "faces/s", 2000, "p95 = rate at p95 batch time")
    return [one, batches]


# 3. Training throughput, with the trainer's own model, loss, schedule and data pipeline.


def measure_training(fer_path: Path, quick: bool) -> list[Measurement]:
    names = ("training throughput", "training time per epoch")
    targets = (Target(">=", 400), None)
    if not (fer_path / "train").is_dir():
        return [skipped(name, unit, target, f"no dataset at {fer_path}")
                for name, unit, target in zip(names, ("images/s", "s"), targets)]
    # The whole CNN trained from scratch with the defaults, as the seven-emotion model was (the Happy/Sad
    # model now trains only a head on its layers, which would measure something else).
    config = TrainConfig(init="scratch")
    progress(f"training: loading faces from {fer_path}")
    started = time.perf_counter()
    prepared = prepare_data(fer_path, config)
    loading_seconds = time.perf_counter() - started
    train_images = len(prepared.train.labels)

    steps = QUICK_TRAINING_STEPS if quick else TRAINING_STEPS
    progress(f"training: {TRAINING_SKIPPED_BATCHES} + {steps} steps of {config.batch_size} images")
    seconds, parameters = time_training_steps(prepared, config, steps)
    images_per_second = throughput(names[0], config.batch_size, seconds, "images/s", 400,
                                   f"batch {config.batch_size}, {parameters:,} parameters, first "
                                   f"{TRAINING_SKIPPED_BATCHES} batches skipped; p95 = rate at p95 step time")
    epoch_seconds = Measurement(names[1], train_images / images_per_second.median, train_images / images_per_second.p95,
                                "s", None, f"{train_images:,} training images / throughput, validation excluded")
    loading = Measurement("  loading the FER faces (prepare_data)", loading_seconds, None, "s", None,
                          f"once; {train_images:,} train + {len(prepared.val.labels):,} validation images")
    return [images_per_second, epoch_seconds, loading]


def time_training_steps(prepared: PreparedData, config: TrainConfig, steps: int) -> tuple[np.ndarray, int]:
    """Seconds per training step in steady state, and the model's parameter count."""
    keras.utils.set_random_seed(config.seed)
    setup = compiled_training(prepared, config)
    timer = StepTimer(TRAINING_SKIPPED_BATCHES + steps + 1)
    epochs = math.ceil(timer.batches / setup.steps_per_epoch)
    setup.model.fit(setup.train_dataset, epochs=epochs, class_weight=setup.class_weight, callbacks=[timer],
                    shuffle=False, verbose=0)
    return np.asarray(timer.intervals[TRAINING_SKIPPED_BATCHES:]), setup.model.count_params()


class StepTimer(keras.callbacks.Callback):
    """Wall time between consecutive batch ends, so input pipeline stalls count; stops after `batches`."""

    def __init__(self, batches: int):
        super().__init__()
        self.batches = batches
        self.intervals: list[float] = []
        self.last_end: float | None = None

    def on_train_batch_end(self, batch, logs=None):
        float((logs or {}).get("loss", 0.0))  # wait for the step's result, not just its dispatch
        now = time.perf_counter()
        if self.last_end is not None:
            self.intervals.append(now - self.last_end)
        self.last_end = now
        if len(self.intervals) + 1 >= self.batches:
            self.model.stop_training = True


# 4 and 5. The app: start, first prediction, and memory over many predictions.


APP_ROWS = (("app start (launch to page served)", "s", Target("<=", 10)),
            ("  gradio_client connection (Client(url))", "s", None),
            ("first prediction through the app (/predict)", "ms", Target("<=", 1000)),
            ("  warm predictions through the app (/predict)", "ms", None),
            ("Live tab: labelled frames shown per second", "frames/s", Target(">=", 10)),
            ("Live tab: frame latency, webcam capture to labelled frame shown", "ms", Target("<", 150)),
            ("app peak RSS (VmHWM)", "MB", None),
            ("app RSS growth over predictions (VmRSS)", "MB", Target("<", 30)),
            ("predictions during a training, 20 clients x 10 (/predict)", "ms", None))
LOAD_CLIENTS, LOAD_PREDICTIONS_EACH = 20, 10
LIVE_SECONDS, LIVE_SECONDS_QUICK, LIVE_WARMUP_SECONDS = 30, 5, 3


def measure_app(app_path: Path, jpeg_path: Path, quick: bool) -> list[Measurement]:
    if not app_path.is_file():
        return [skipped(name, unit, target, f"{app_path.name} does not exist yet") for name, unit, target in APP_ROWS]
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": os.pathsep.join(filter(None, [
               str(REPOSITORY), os.environ.get("PYTHONPATH")]))}
    measured: list[Measurement] = []  # in APP_ROWS order, so a failure skips exactly the rows after it
    with tempfile.TemporaryFile() as log:
        progress(f"app: launching {app_path} on port {port}")
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, str(app_path)], cwd=REPOSITORY, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
        try:
            measure_running_app(process, url, started, jpeg_path, quick, measured)
        except Exception as error:  # noqa: BLE001 - a failure of an app being written is a finding, not a crash
            log.seek(0)
            last_lines = log.read().decode(errors="replace").strip().splitlines()[-5:]
            progress(f"app failed: {error!r}; last app output:\n" + "\n".join(last_lines))
            reason = f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"[:200].replace("|", "/")
            measured += [skipped(name, unit, target, reason) for name, unit, target in APP_ROWS[len(measured):]]
        finally:
            stop(process)
    return measured


def app_row(index: int, median: float, note: str) -> Measurement:
    name, unit, target = APP_ROWS[index]
    return Measurement(name, median, None, unit, target, note)


def measure_running_app(process: subprocess.Popen, url: str, started: float, jpeg_path: Path, quick: bool,
                        measured: list[Measurement]) -> None:
    """Append the APP_ROWS measurements to `measured` one by one, as each is taken."""
    from gradio_client import Client, handle_file  # only this measurement needs it

    measured.append(app_row(0, wait_until_served(process, url, started), "one launch"))
    progress(f"app: page served after {measured[0].median:.1f} s")
    connect_started = time.perf_counter()
    client = Client(url, verbose=False, analytics_enabled=False)  # the defaults, as the API page shows them
    measured.append(app_row(1, time.perf_counter() - connect_started, "once"))

    def predict():
        return json.loads(client.predict(handle_file(str(jpeg_path)), api_name="/predict"))

    try:
        first_started = time.perf_counter()
        first_result = predict()
        measured.append(app_row(2, (time.perf_counter() - first_started) * 1000, app_result_note(first_result)))
        measured.append(latency(APP_ROWS[3][0], time_calls(predict, repeats=9, warmup=0),
                                note="sequential, one client"))
        measured += measure_live(url, quick)
        rss_after_10 = memory_megabytes(process.pid)  # the first call and these nine
        total = repetitions(1000, quick)
        progress(f"app: {total - 10} more predictions with {APP_CLIENT_THREADS} client threads")
        # A client per thread, as visitors are: threads sharing one gradio_client Client share its one
        # event stream, which can end under one thread while another's prediction waits (CancelledError).
        per_thread, thread_clients = threading.local(), []

        def predict_as_one_of_many(_: int) -> None:
            if not hasattr(per_thread, "client"):
                per_thread.client = Client(url, verbose=False, analytics_enabled=False)
                thread_clients.append(per_thread.client)
            json.loads(per_thread.client.predict(handle_file(str(jpeg_path)), api_name="/predict"))

        try:
            with concurrent.futures.ThreadPoolExecutor(APP_CLIENT_THREADS) as pool:
                list(pool.map(predict_as_one_of_many, range(total - 10)))
        finally:
            for thread_client in thread_clients:
                thread_client.close()
        rss_after_all = memory_megabytes(process.pid)
        measured.append(app_row(6, memory_megabytes(process.pid, "VmHWM"), f"after start and {total} predictions"))
        measured.append(app_row(7, rss_after_all - rss_after_10,
                                f"{rss_after_10:.0f} MB after 10 predictions, {rss_after_all:.0f} MB after {total}"))
        measured.append(measure_load(url, jpeg_path, quick))
    finally:
        client.close()


def measure_load(url: str, jpeg_path: Path, quick: bool) -> Measurement:
    """Latency of /predict for 20 concurrent clients while the same server trains a model."""
    from gradio_client import Client, handle_file

    clients = LOAD_CLIENTS if not quick else 4
    zip_path = jpeg_path.with_name("dataset.zip")
    write_training_zip(zip_path)
    trainer = Client(url, verbose=False, analytics_enabled=False)
    training = trainer.submit(handle_file(str(zip_path)), 200, 16, 1e-3, True, "none", 48, "scratch",
                              api_name="/train")
    outputs = [output["label"] for output in trainer.view_api(print_info=False, return_format="dict")[
        "named_endpoints"]["/train"]["returns"]]
    while not any(" done in " in str(dict(zip(outputs, update))["Status"]) for update in training.outputs()):
        time.sleep(0.2)  # predictions start once the training is past its first epoch
    progress(f"app: {clients} clients x {LOAD_PREDICTIONS_EACH} predictions during a training")

    def one_client(_: int) -> list[float]:
        client = Client(url, verbose=False, analytics_enabled=False)
        seconds = []
        for _ in range(LOAD_PREDICTIONS_EACH):
            started = time.perf_counter()
            result = json.loads(client.predict(handle_file(str(jpeg_path)), api_name="/predict"))
            seconds.append(time.perf_counter() - started)
            if result.get("error") or len(result.get("faces", [])) != 1:
                raise RuntimeError(f"a prediction under load failed: {result}")
        client.close()
        return seconds

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        seconds = np.concatenate([np.asarray(batch) for batch in pool.map(one_client, range(clients))])
    still_training = not training.done()
    training.cancel()
    trainer.close()
    note = f"all {len(seconds)} succeeded; " + ("training ran throughout" if still_training else
                                               "**training ended before the predictions did**")
    return latency(APP_ROWS[8][0], seconds, note=note)


def measure_live(url: str, quick: bool) -> list[Measurement]:
    """The Live tab in Chromium with a fake camera filming a face: frames shown per second and their age."""
    from playwright.sync_api import sync_playwright

    from bench.live import CHROMIUM_PATH, camera_args, frame_latencies, live_record, start_live_stream, \
        write_face_video

    window_seconds = LIVE_SECONDS_QUICK if quick else LIVE_SECONDS
    progress(f"app: Live tab with Chromium's fake camera for {window_seconds} s")
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        video = write_face_video(Path(folder) / "face.y4m")
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM_PATH), headless=True,
                                             args=camera_args(video))
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            start_live_stream(page)
            page.wait_for_function("() => window.liveRecord.shown.length > 0", timeout=60_000)
            page.wait_for_timeout(LIVE_WARMUP_SECONDS * 1000)
            window_start = page.evaluate("() => performance.now()")
            page.wait_for_timeout(window_seconds * 1000)
            record = live_record(page)
        finally:
            browser.close()
    shown = np.array([at for _, at in record["shown"] if at >= window_start])
    per_second = np.bincount(((shown - window_start) // 1000).astype(int), minlength=window_seconds)[:window_seconds]
    window = {"sent": record["sent"], "shown": [item for item in record["shown"] if item[1] >= window_start]}
    latencies = frame_latencies(window) / 1000
    rate = Measurement(APP_ROWS[4][0], float(np.median(per_second)), float(np.percentile(per_second, 5)),
                       "frames/s", APP_ROWS[4][2], f"one visitor; p95 = the slowest 5% of seconds; "
                       f"{len(shown)} frames in {window_seconds} s")
    age = latency(APP_ROWS[5][0], latencies, note="the frame's number, drawn in the video, read back in the page")
    return [rate, dataclasses.replace(age, target=APP_ROWS[5][2])]


def write_training_zip(path: Path, per_class: int = 40) -> None:
    """Face crops cut from the sample portrait with jitter and noise, split into two arbitrary classes."""
    portrait = np.asarray(Image.open(SAMPLE_FACE_PATH).convert("L"))
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as archive:
        for label in ("happy", "sad"):
            for index in range(per_class):
                top, left = rng.integers(100, 180), rng.integers(130, 200)
                crop = portrait[top:top + 200, left:left + 200].astype(np.float32) + rng.normal(0, 10, (200, 200))
                face = Image.fromarray(np.clip(crop, 0, 255).astype(np.uint8)).resize((48, 48))
                buffer = io.BytesIO()
                face.save(buffer, format="PNG")
                archive.writestr(f"faces/{label}/{index:03d}.png", buffer.getvalue())


def app_result_note(result) -> str:
    """How many faces the app's answer holds; a differently shaped answer is reported as found."""
    candidates = result if isinstance(result, (list, tuple)) else [result]
    record = next((item for item in candidates if isinstance(item, dict) and "faces" in item), None)
    if record is None:
        return f"**answer has no 'faces' record: {type(result).__name__}**"
    if record.get("error"):
        return f"**error: {record['error']}**"
    found = len(record["faces"])
    return f"{found} face found" if found == 1 else f"**{found} faces found, the photo has 1**"


def wait_until_served(process: subprocess.Popen, url: str, started: float) -> float:
    """Seconds from `started` until GET `url` answers 200."""
    import httpx

    while time.perf_counter() - started < APP_START_TIMEOUT:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with code {process.returncode} before serving its page")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.05)
    raise TimeoutError(f"the page was not served within {APP_START_TIMEOUT:.0f} s")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def measure_predictor_memory(predictor: Predictor, jpeg: bytes, quick: bool) -> Measurement:
    total = repetitions(1000, quick)
    progress(f"memory: predict_source in this process, 10 then {total} calls")
    for _ in range(10):
        predictor.predict_source(jpeg)
    after_10 = memory_megabytes()
    for _ in range(total - 10):
        predictor.predict_source(jpeg)
    after_all = memory_megabytes()
    return Measurement("in-process RSS growth over predict_source calls", after_all - after_10, None, "MB",
                       Target("<", 30), f"{after_10:.0f} MB after 10 calls, {after_all:.0f} MB after {total}")


# The report.


def machine_lines(load_average: float) -> list[str]:
    versions = {name: package_version(distribution) for name, distribution in (
        ("TensorFlow", "tensorflow"), ("Keras", "keras"), ("NumPy", "numpy"), ("Pillow", "pillow"))}
    versions["OpenCV"] = cv2.__version__
    versions["ai-edge-litert"] = package_version("ai-edge-litert")
    versions["Gradio"] = package_version("gradio")
    return [f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores "
            f"(load average {load_average:.1f} when the run started)",
            f"- Python {platform.python_version()}, "
            + ", ".join(f"{name} {version}" for name, version in versions.items()),
            f"- Date: {datetime.datetime.now().astimezone().isoformat(timespec='minutes')}"]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def package_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit in ("images/s", "faces/s", "frames/s"):
        return f"{value:,.0f} {unit}"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:.1f} {unit}"


def format_target(measurement: Measurement) -> str:
    target = measurement.target
    if target is None:
        return ""
    symbol = {"<": "<", "<=": "≤", ">=": "≥"}[target.comparison]
    text = f"{symbol} {target.bound:g} {measurement.unit}"
    if measurement.median is None:
        return text
    return f"{text}: met" if target.met_by(measurement.median) else f"{text}: **missed**"


def report(measurements: list[Measurement], quick: bool, load_average: float) -> str:
    lines = ["# Benchmark results", "", *machine_lines(load_average), ""]
    if quick:
        lines += ["Quick smoke run (`--quick`): about a tenth of the repetitions; figures are indicative only.", ""]
    lines += ["| measurement | median | p95 | target | notes |", "| --- | ---: | ---: | --- | --- |"]
    for item in measurements:
        lines.append(f"| {item.name} | {format_value(item.median, item.unit)} | {format_value(item.p95, item.unit)} "
                     f"| {format_target(item)} | {item.note} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="markdown file for the report")
    parser.add_argument("--quick", action="store_true", help="about a tenth of the repetitions, for smoke runs")
    parser.add_argument("--fer", type=Path, default=DEFAULT_FER_PATH, help="FER-2013 happy/sad folder (train/ inside)")
    parser.add_argument("--app", type=Path, default=REPOSITORY / "app.py", help="the Gradio app to launch")
    args = parser.parse_args()
    load_average = os.getloadavg()[0]  # now: by the end, the benchmark's own training and clients weigh in

    progress("loading the bundled model")
    started = time.perf_counter()
    predictor = Predictor.load()
    predictor.detector  # noqa: B018 - builds the detector now, so no measurement pays for it
    measurements = [Measurement("load model and detector (Predictor.load)", time.perf_counter() - started, None, "s",
                                None, f"once, in this process; faces classified with {predictor.runtime.name}")]
    photos = build_photos(predictor)
    measurements += measure_photo_to_result(predictor, photos, args.quick)
    measurements += measure_decode_and_detect(predictor, photos, args.quick)
    measurements += measure_classification(predictor, args.quick)
    measurements.append(measure_predictor_memory(predictor, photos["640x480, 1 face"][0], args.quick))
    measurements += measure_training(args.fer, args.quick)
    with tempfile.TemporaryDirectory() as folder:
        jpeg_path = Path(folder) / "one_face.jpg"
        jpeg_path.write_bytes(photos["640x480, 1 face"][0])
        measurements += measure_app(args.app.resolve(), jpeg_path, args.quick)

    text = report(measurements, args.quick, load_average)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    progress(f"report written to {args.output}")


if __name__ == "__main__":
    main()
