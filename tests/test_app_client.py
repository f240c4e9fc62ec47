"""The launched app through `gradio_client` with its defaults, as the "Use via API" page tells a newcomer."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request

import pytest
from gradio_client import handle_file
from gradio_client.utils import Status

from conftest import api_client, named_outputs, write_dataset_zip
from emotion.modelfile import BUNDLED_MODELS, load_bundle

WAITING = (Status.STARTING, Status.JOINING_QUEUE, Status.SENDING_DATA)
MODEL_FILES = "Your model (.keras, metadata .json, .tflite)"


@pytest.fixture(scope="module")
def client(app_url):
    return api_client(app_url)


def test_predict_with_the_default_client_returns_the_command_line_json(client, grace_hopper_path):
    result = json.loads(client.predict(handle_file(str(grace_hopper_path)), api_name="/predict"))

    assert set(result) == {"path", "faces", "error"}  # the keys of `python -m emotion predict --json`
    assert result["path"] == "grace_hopper.jpg" and result["error"] is None
    face, = result["faces"]
    assert set(face) == {"box", "label", "confidence", "uncertain", "scores"}
    x, y, width, height = face["box"]
    assert 100 < x < 250 and 80 < y < 250 and 120 < width < 300  # on the face, not the whole 512 x 600 photo
    assert face["label"] == max(face["scores"], key=face["scores"].get)
    assert face["confidence"] == face["scores"][face["label"]]


def test_a_text_file_renamed_jpg_comes_back_as_a_message_in_error(client, tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("shopping list")
    result = json.loads(client.predict(handle_file(str(path)), api_name="/predict"))
    assert result == {"path": "notes.jpg", "faces": [], "error": result["error"]}
    assert "not an image" in result["error"]


@pytest.mark.skipif(not BUNDLED_MODELS["emotions"].is_file(), reason="models/emotions.keras is not in this checkout")
def test_predict_takes_the_bundled_model_by_name(client, grace_hopper_path):
    result = json.loads(client.predict(handle_file(str(grace_hopper_path)), model="emotions", api_name="/predict"))
    assert len(result["faces"][0]["scores"]) == 7


def test_the_api_page_names_every_input_and_output(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(endpoints) == {"/predict", "/train", "/stop"}
    assert [p["parameter_name"] for p in endpoints["/predict"]["parameters"]] == ["photo", "model"]
    for name, endpoint in endpoints.items():
        labels = [output["label"] for output in endpoint["returns"]]
        assert labels and all(labels) and not any(re.fullmatch(r"value_\d+", label) for label in labels), name


def test_train_streams_epochs_and_ends_with_a_downloadable_model(client, tmp_path):
    job = client.submit(handle_file(str(write_dataset_zip(tmp_path))), 3, 16, 3e-3, True, "auto", 48, "scratch",
                        api_name="/train")
    updates = [named_outputs(client, "/train", update) for update in job]

    epoch_lines = [update["Status"] for update in updates if " done in " in (update["Status"] or "")]
    assert [line.split()[1] for line in epoch_lines] == ["1/3", "2/3", "3/3"]
    final = named_outputs(client, "/train", job.outputs()[-1])
    assert final["Status"].startswith("**Done.**") and "95% interval" in final["Metrics"]
    model_file = next(file for file in final[MODEL_FILES] if file.endswith(".keras"))
    assert load_bundle(model_file).class_names == ["happy", "sad"]  # downloaded by the client, with its metadata


def test_stop_ends_a_200_epoch_training_and_the_next_one_waits_its_turn(app_url, tmp_path):
    first_visitor, second_visitor = api_client(app_url), api_client(app_url)
    zip_path = write_dataset_zip(tmp_path)
    first = first_visitor.submit(handle_file(str(zip_path)), 200, 32, 3e-3, False, "auto", 48, "scratch",
                                 api_name="/train")
    next(update for update in first  # an epoch in, and 199 to go
         if " done in " in (named_outputs(first_visitor, "/train", update)["Status"] or ""))

    second = second_visitor.submit(handle_file(str(zip_path)), 1, 16, 3e-3, False, "auto", 48, "scratch",
                                   api_name="/train")
    deadline = time.monotonic() + 30
    while second.status().code in WAITING and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)  # long enough for a training that was let in to report something
    assert second.status().code == Status.IN_QUEUE and second.outputs() == []

    assert "No training" in second_visitor.predict(api_name="/stop")  # nobody stops another visitor's training
    assert "Stopping" in first_visitor.predict(api_name="/stop")
    list(first)
    final = named_outputs(first_visitor, "/train", first.outputs()[-1])
    assert "Stopped by you" in final["Status"] and any(file.endswith(".keras") for file in final[MODEL_FILES])
    list(second)
    assert named_outputs(second_visitor, "/train", second.outputs()[-1])["Status"].startswith("**Done.**")



def test_the_app_keeps_no_run_history_of_visitors_photos(app_url):
    """Gradio's run history would keep each visitor's photos and results in their browser, behind a footer
    link that leaves the page and the visitor's session (and the model they trained) with it."""
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{app_url.rstrip('/')}/gradio_api/runs", timeout=30)
    assert refused.value.code == 404
