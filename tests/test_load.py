"""A crowd: 12 clients making 4 predictions each while a training runs, through the launched app."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from gradio_client import handle_file

from conftest import api_client, named_outputs, write_dataset_zip

pytestmark = pytest.mark.slow

CLIENTS, PREDICTIONS_EACH = 12, 4  # three times the app's 4 prediction slots


def test_every_prediction_succeeds_while_a_training_runs(app_url, grace_hopper_path, tmp_path):
    zip_path = write_dataset_zip(tmp_path, per_class=20)
    trainer = api_client(app_url)
    training = trainer.submit(handle_file(str(zip_path)), 4, 16, 3e-3, True, "auto", 48, "scratch", api_name="/train")
    statuses = []
    watcher = threading.Thread(target=lambda: statuses.extend(
        named_outputs(trainer, "/train", update)["Status"] for update in training))
    watcher.start()

    def one_client(index: int) -> list[dict]:
        client = api_client(app_url)
        return [json.loads(client.predict(handle_file(str(grace_hopper_path)), api_name="/predict"))
                for _ in range(PREDICTIONS_EACH)]

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = [result for batch in pool.map(one_client, range(CLIENTS)) for result in batch]
    watcher.join(timeout=600)

    assert len(results) == CLIENTS * PREDICTIONS_EACH
    assert all(result["error"] is None and len(result["faces"]) == 1 for result in results)
    assert len({result["faces"][0]["label"] for result in results}) == 1  # same photo, same answer, under load
    assert len([status for status in statuses if " done in " in (status or "")]) == 4
    assert named_outputs(trainer, "/train", training.outputs()[-1])["Status"].startswith("**Done.**")
