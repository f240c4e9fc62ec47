"""The page in a real browser: classify an uploaded photo, train a tiny model, switch to it with the picker,
stream a webcam.

Launches the app in-process and drives Debian's Chromium through Playwright. On a failure the
page is saved to `test-artifacts/<test name>.png` at the repository root.
"""

from __future__ import annotations

import io
import re
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM_PATH = Path("/usr/bin/chromium")
if not CHROMIUM_PATH.is_file():
    pytest.skip(f"browser tests need Chromium at {CHROMIUM_PATH}", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")

from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright  # noqa: E402

from bench.live import camera_args, live_record, start_live_stream, write_face_video  # noqa: E402
from conftest import PROJECT_ROOT, write_dataset_zip  # noqa: E402

pytestmark = pytest.mark.browser

ARTIFACTS_DIR = PROJECT_ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking"]
# Generous: the CPU may be busy training other models while these tests run.
UI_TIMEOUT_MS = 60_000
TRAINING_TIMEOUT_MS = 240_000
# What a user sees: boxes in Okabe-Ito orange for happy, blue for sad.
LABEL_COLORS = {"happy": (230, 159, 0), "sad": (0, 114, 178)}
UNSURE_COLOR = (120, 120, 120)
EPOCHS = 3

expect.set_options(timeout=UI_TIMEOUT_MS)


@pytest.fixture(scope="module")
def playwright():
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright):
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM_PATH), headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def camera_browser(playwright, tmp_path_factory):
    """Chromium whose camera films a face (a generated video), allowed without asking."""
    video = write_face_video(tmp_path_factory.mktemp("camera") / "face.y4m")
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM_PATH), headless=True, args=camera_args(video))
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser, app_url: str):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.goto(app_url)
    yield page
    context.close()


@contextmanager
def screenshot_on_failure(page: Page, name: str):
    try:
        yield
    except BaseException:
        ARTIFACTS_DIR.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS_DIR / f"{name}.png", full_page=True)
        raise


# Finding components: the app sets no element ids, so go by the labels a user reads.

def block(page: Page, label: str) -> Locator:
    """The visible component whose label (or a chart's title) is exactly `label`."""
    label_pattern = re.compile(rf"^\s*{re.escape(label)}\s*$")
    labels = page.locator("[data-testid=block-label], [data-testid=block-info]").filter(has_text=label_pattern)
    return page.locator(".block:visible").filter(has=labels)


def open_tab(page: Page, name: str) -> None:
    # Until every component's code has loaded, Gradio covers the page with "Loading..." and takes no clicks.
    expect(page.get_by_text("Loading...", exact=True).filter(visible=True)).to_have_count(0)
    page.get_by_role("tab", name=name).click()


def table_rows(page: Page, label: str) -> Locator:
    """The body rows of the visible `gr.Dataframe` labelled `label`."""
    return page.locator(".table-container:visible").filter(has_text=label).locator("tbody tr")


def image_at(page: Page, url: str) -> np.ndarray:
    response = page.request.get(url)
    assert response.ok, f"{url}: HTTP {response.status}"
    return np.asarray(Image.open(io.BytesIO(response.body())).convert("RGB"))


def share_of_box_edge_turned_to(colour, annotated: np.ndarray, original: np.ndarray, box) -> float:
    """Share of the pixels on the box's 2-pixel border that are near `colour` now but were not in the photo.

    The annotated image comes back as a JPEG, which blurs a thin coloured line into its surroundings,
    hence the loose tolerance; comparing with the photo keeps a blue background from counting.
    """
    x, y, width, height = box
    border = np.zeros(annotated.shape[:2], dtype=bool)
    border[y:y + height, x:x + width] = True
    border[y + 2:y + height - 2, x + 2:x + width - 2] = False

    def near(pixels):  # (height, width, 3) uint8 -> (height, width) bool
        return np.linalg.norm(pixels.astype(float) - colour, axis=-1) <= 60

    return float((near(annotated) & ~near(original) & border).sum() / border.sum())


# Watching the charts: gr.LinePlot renders Vega-Lite as SVG, one <path> per series, "M x,y L x,y ..." per point.

# Points per drawn line; Vega leaves a line it cannot place (say, a value it takes for a category) uncoloured.
LINE_POINTS_JS = """(plot) => [...plot.querySelectorAll("g.mark-line path")]
    .filter(path => getComputedStyle(path).stroke !== "none")
    .map(path => ((path.getAttribute("d") || "").match(/[ML]/g) || []).length)"""

RECORD_LINE_POINTS_JS = """(plot) => {
    const linePoints = %s;
    plot.pointsSeen = [];  // the most points of any line, once per change
    new MutationObserver(() => {
        const most = Math.max(0, ...linePoints(plot));
        if (most > 0 && plot.pointsSeen.at(-1) !== most) plot.pointsSeen.push(most);
    }).observe(plot, {subtree: true, childList: true, attributes: true});
}""" % LINE_POINTS_JS


def line_points(plot: Locator) -> list[int]:
    return plot.evaluate(LINE_POINTS_JS)


def record_line_points(plot: Locator) -> None:
    """From now on, note each time the chart's lines gain or lose points (epochs)."""
    plot.evaluate(RECORD_LINE_POINTS_JS)


def line_points_seen(plot: Locator) -> list[int]:
    return plot.evaluate("(plot) => plot.pointsSeen")


def set_slider(page: Page, label: str, value: int) -> None:
    """Type into the number box beside a slider, as a user would, until the slider follows."""
    number_box = page.get_by_label(f"number input for {label}")
    slider = page.get_by_label(f"range slider for {label}")
    for _ in range(3):
        number_box.fill(str(value))
        number_box.press("Enter")
        try:
            expect(slider).to_have_value(str(value), timeout=5_000)
            return
        except AssertionError:
            pass  # seen once under load: just after the accordion opened, the box went back to its default
    expect(slider).to_have_value(str(value))


def test_uploaded_photo_gets_a_coloured_box_a_label_and_a_table_row(page, grace_hopper_path, request):
    with screenshot_on_failure(page, request.node.name):
        open_tab(page, "Upload")
        photo_input = block(page, "Photo").locator("input[type=file]")
        expect(photo_input).to_be_attached()  # the photo component rendered at all
        photo_input.set_input_files(grace_hopper_path)

        annotated_image = page.locator(".faces-image:visible img")  # no label badge: it would cover labels
        expect(annotated_image).to_be_visible()
        # Grace Hopper's calm portrait: the model leans one way and says it is unsure.
        message = page.get_by_text(re.compile(r"^One face found\. The largest: Unsure \(leans (happy|sad), \d+%\)"))
        expect(message).to_be_visible()
        main_face = block(page, "Main face (the largest)")
        label = main_face.get_by_test_id("label-output-value")
        # Its headline says it is unsure too, never a bare "sad".
        expect(label).to_have_text(re.compile(r"^Unsure \(leans (happy|sad)\)$"))
        label_text = label.inner_text().strip()
        leaning = re.search(r"leans (happy|sad)", label_text).group(1)
        expect(main_face.get_by_test_id(f"{label_text}-confidence-set")).to_have_text(
            re.compile(rf"{re.escape(label_text)}\s*\d+%"))

        crops = page.locator(".face-crops:visible img")  # no label badge: it covered the top of the first crop
        expect(crops).to_have_count(1)  # the face the model classified, as it saw it

        rows = table_rows(page, "Every face")
        expect(rows).to_have_count(1)
        _, row_label, row_confidence, *box = rows.first.locator("td").all_text_contents()
        assert row_label.startswith(f"Unsure (leans {leaning}, ") and re.fullmatch(r"\d+%", row_confidence)

        # A screen reader hears the verdict drawn on the photo.
        expect(annotated_image).to_have_attribute("alt", f"The photo with its face boxed and labelled: {row_label}.")

        photo = np.asarray(Image.open(grace_hopper_path).convert("RGB"))
        annotated = image_at(page, annotated_image.get_attribute("src"))
        assert annotated.shape == photo.shape  # the whole photo, not a crop or a thumbnail
        box = [int(value) for value in box]
        drawn = share_of_box_edge_turned_to(UNSURE_COLOR, annotated, photo, box)
        assert drawn > 0.1, f"only {drawn:.0%} of the box border is grey"
        for color in LABEL_COLORS.values():  # never a confident label's colour
            assert share_of_box_edge_turned_to(color, annotated, photo, box) < drawn


def test_training_streams_charts_and_offers_the_model(page, tmp_path, request):
    with screenshot_on_failure(page, request.node.name):
        open_tab(page, "Train")
        start_button = page.get_by_role("button", name="Start", exact=True)
        stop_button = page.get_by_role("button", name="Stop", exact=True)
        expect(start_button).to_be_disabled()
        expect(stop_button).to_be_disabled()  # nothing to stop yet
        assert not page.evaluate("window.emotionTrainedModel")  # nothing to lose by leaving yet
        dataset = write_dataset_zip(tmp_path, per_class=24)
        block(page, "Dataset (.zip)").locator("input[type=file]").set_input_files(dataset)

        summary = page.get_by_role("table").filter(has=page.get_by_role("cell", name="happy", exact=True)).filter(
            has=page.get_by_role("cell", name="sad", exact=True))
        expect(summary.first).to_be_visible()
        expect(start_button).to_be_enabled()

        page.get_by_role("tabpanel").get_by_role("button", name=re.compile(r"^Settings")).click()  # the accordion
        set_slider(page, "Epochs", EPOCHS)
        set_slider(page, "Batch size", 16)

        plots = {name: block(page, name) for name in ("Loss", "Accuracy")}
        for plot in plots.values():
            record_line_points(plot)
        start_button.click()
        expect(stop_button).to_be_enabled()
        expect(start_button).to_be_disabled()  # one training at a time in a tab

        use_button = page.get_by_role("button", name="Use this model")
        expect(use_button).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
        expect(page.get_by_text(re.compile(r"^Done\."))).to_be_visible()
        expect(stop_button).to_be_disabled()  # a click now would only hide the result
        expect(start_button).to_be_enabled()
        # happy and sad are classes the seven-emotion model (the default start) knows: no fine-tuning.
        for name, plot in plots.items():
            points_seen = line_points_seen(plot)
            # Drawn while training, one point per epoch: growing, not only once at the end.
            growth = f"{name} chart, points per line as drawn: {points_seen}"
            assert points_seen[-1:] == [EPOCHS] and len(points_seen) >= 2, growth
            assert points_seen == sorted(points_seen), growth
            assert line_points(plot) == [EPOCHS] * 2, f"{name} chart: training and validation lines"

        model_link = block(page, "Your model (.keras, metadata .json, .tflite)").locator(
            "[data-testid=download-link][download$='.keras']")
        expect(model_link).to_be_visible()
        model_name = model_link.get_attribute("download")
        model_file = page.request.get(model_link.get_attribute("href"))
        assert model_file.ok and model_file.body()[:2] == b"PK"  # a .keras file is a zip

        use_button.click()
        expect(page.get_by_text(f"Upload, Webcam and Live now use {Path(model_name).stem}")).to_be_visible()
        open_tab(page, "Upload")
        expect(block(page, "Model").locator("input")).to_have_value(Path(model_name).stem)  # the picker follows
        open_tab(page, "About")
        expect(page.get_by_text(re.compile(rf"File:\s*{re.escape(model_name)}"))).to_be_visible()

        # Another visitor, meanwhile: still the bundled model, and no way to this one's files.
        stranger = page.context.browser.new_context().new_page()
        try:
            stranger.goto(page.url)
            open_tab(stranger, "About")
            expect(stranger.get_by_text(re.compile(r"File:\s*happy_sad\.keras \(bundled\)"))).to_be_visible()
            expect(stranger.get_by_text(model_name)).to_have_count(0)
        finally:
            stranger.context.close()

        # The trained model lives as long as this browser tab: leaving it asks first.
        dialogs = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.accept()))
        page.goto(page.url)
        assert dialogs == ["beforeunload"]


def test_live_tab_keeps_labelled_frames_arriving(camera_browser, app_url, request):
    page = camera_browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.goto(app_url)
    try:
        with screenshot_on_failure(page, request.node.name):
            start_live_stream(page)
            expect(page.get_by_text(re.compile(r"^\d+\.\d frames/s, 1 face; model happy_sad"))).to_be_visible()
            counts = []
            for _ in range(3):
                counts.append(len(live_record(page)["shown"]))
                page.wait_for_timeout(2_000)
            # At least 2 new frames a second in every window, even on a CI machine busy with trainings
            # (the benchmark measures the real rate): the stream keeps going, it did not stall after one.
            assert all(later - earlier >= 4 for earlier, later in zip(counts, counts[1:])), counts

            # The face is boxed and labelled: in a label's colour, or grey when the model is unsure (Grace
            # Hopper's calm face usually is). Without the drawing, under 100 pixels of the frame are within
            # 15 of any of these colours (the wall is green-grey).
            frame = image_at(page, block(page, "Live faces").locator("img").get_attribute("src"))
            colours = {**LABEL_COLORS, "unsure": UNSURE_COLOR}
            label_pixels = {label: int((np.linalg.norm(frame.astype(float) - colour, axis=-1) < 15).sum())
                            for label, colour in colours.items()}
            assert max(label_pixels.values()) > 300, f"no label drawn on the frame: {label_pixels}"
    finally:
        page.context.close()
