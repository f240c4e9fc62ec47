"""The launched app through `gradio_client`: the `/predict` and `/train` endpoints as API users call them."""

from __future__ import annotations


import httpx
import pytest
from gradio_client import handle_file

from conftest import api_client, write_dataset_zip
from emotion.modelfile import load_bundle


@pytest.fixture(scope="module")
def client(app_url):
    return api_client(app_url)


def test_predict_endpoint_classifies_a_real_face(client, grace_hopper_path):
    result = client.predict(handle_file(str(grace_hopper_path)), api_name="/predict")

    assert result["path"] == "grace_hopper.jpg" and result["error"] is None
    assert len(result["faces"]) == 1
    face = result["faces"][0]
    x, y, width, height = face["box"]
    assert 100 < x < 250 and 80 < y < 250 and 120 < width < 300  # on the face, not the whole 512 x 600 photo
    assert face["label"] in ("happy", "sad") and face["confidence"] == max(face["scores"].values())


def test_predict_endpoint_reports_a_non_image(client, tmp_path):
    path = tmp_path / "program.jpg"
    path.write_bytes(b"MZ\x90\x00" + bytes(200))  # an executable renamed .jpg
    result = client.predict(handle_file(str(path)), api_name="/predict")
    assert result["faces"] == [] and "not an image" in result["error"]


def test_train_endpoint_streams_epochs_and_ends_with_a_downloadable_model(client, tmp_path):
    zip_path = write_dataset_zip(tmp_path)

    job = client.submit(handle_file(str(zip_path)), 3, 16, 3e-3, True, "auto", 48, api_name="/train")
    statuses = [update[0] for update in job]

    epoch_lines = [status for status in statuses if " done in " in status]
    assert [line.split()[1] for line in epoch_lines] == ["1/3", "2/3", "3/3"]
    final = job.outputs()[-1]
    assert final[0].startswith("**Done.**")
    model_file = next(file for file in final[6] if file["orig_name"].endswith(".keras"))
    download = httpx.get(model_file["url"], timeout=60)
    assert download.status_code == 200
    saved = tmp_path / "downloaded.keras"
    saved.write_bytes(download.content)
    (tmp_path / "downloaded.json").write_bytes(httpx.get(
        next(file for file in final[6] if file["orig_name"].endswith(".json"))["url"], timeout=60).content)
    assert load_bundle(saved).class_names == ["happy", "sad"]


def test_stop_endpoint_ends_the_clients_training_and_keeps_the_best_epoch(client, tmp_path):
    zip_path = write_dataset_zip(tmp_path)

    job = client.submit(handle_file(str(zip_path)), 200, 8, 3e-3, True, "auto", 48, api_name="/train")
    statuses = []
    for update in job:
        statuses.append(update[0])
        if " done in " in update[0]:
            assert "Stopping" in client.predict(api_name="/stop")
    final = job.outputs()[-1]
    assert "Stopped by you" in final[0]
    assert len([status for status in statuses if " done in " in status]) <= 3  # of 200 epochs asked for
    assert any(file["orig_name"].endswith(".keras") for file in final[6])
