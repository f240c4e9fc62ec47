"""The command lines as users run them: `python -m emotion predict --json`, evaluate, export; train.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

from conftest import PROJECT_ROOT


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)


def test_predict_json_contract(tiny_training, grace_hopper_path, tmp_path):
    result, _, _ = tiny_training
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    shutil.copy(grace_hopper_path, folder / "nested" / "grace.jpg")
    Image.new("RGB", (320, 240), (120, 160, 200)).save(folder / "sky.png")
    (folder / "IMG_0001.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64))
    (folder / "notes.txt").write_text("not a photo, and not listed")
    (tmp_path / "fake.jpg").write_text("not an image")
    (tmp_path / "empty").mkdir()

    done = run("-m", "emotion", "predict", "--model", str(result.model_path), "--json",
               str(folder), str(tmp_path / "fake.jpg"), str(tmp_path / "empty"))
    lines = done.stdout.strip().splitlines()
    records = {record["path"].rsplit("/", 1)[-1]: record for record in map(json.loads, lines)}
    assert len(lines) == 4 and set(records) == {"grace.jpg", "sky.png", "IMG_0001.HEIC", "fake.jpg"}
    # An iPhone photo in a folder is reported, not passed over; a folder without images is named.
    assert "a HEIC/HEIF photo" in records["IMG_0001.HEIC"]["error"]
    assert "empty: no images in this folder or below it" in done.stderr
    for record in records.values():
        assert set(record) == {"path", "faces", "error"}

    grace = records["grace.jpg"]
    assert grace["error"] is None and len(grace["faces"]) == 1
    face = grace["faces"][0]
    assert set(face) == {"box", "label", "confidence", "uncertain", "scores"}
    assert len(face["box"]) == 4 and all(isinstance(v, int) for v in face["box"])
    assert face["label"] in ("happy", "sad") and set(face["scores"]) == {"happy", "sad"}
    assert face["confidence"] == max(face["scores"].values())
    assert abs(sum(face["scores"].values()) - 1.0) < 1e-5

    assert records["sky.png"] == {"path": records["sky.png"]["path"], "faces": [], "error": None}
    assert "not an image" in records["fake.jpg"]["error"]
    assert done.returncode == 1  # one file failed, and the exit code says so


def test_predict_faces_none_treats_the_image_as_one_face(tiny_training, tmp_path):
    result, _, _ = tiny_training
    Image.fromarray(np.full((48, 48), 128, np.uint8)).save(tmp_path / "crop.png")
    done = run("-m", "emotion", "predict", "--model", str(result.model_path), "--faces", "none", "--json",
               str(tmp_path / "crop.png"))
    record = json.loads(done.stdout)
    assert done.returncode == 0 and record["faces"][0]["box"] == [0, 0, 48, 48]


def test_predict_is_human_readable_by_default(tiny_training, grace_hopper_path):
    result, _, _ = tiny_training
    done = run("-m", "emotion", "predict", "--model", str(result.model_path), str(grace_hopper_path))
    assert done.returncode == 0
    assert "grace_hopper.jpg: 1 face:" in done.stdout and "%" in done.stdout


def test_evaluate_prints_metrics_and_confusion(tiny_training, tiny_dataset):
    result, _, _ = tiny_training
    done = run("-m", "emotion", "evaluate", "--model", str(result.model_path), "--data", str(tiny_dataset))
    assert done.returncode == 0, done.stderr
    assert "precision" in done.stdout and "confusion matrix" in done.stdout
    assert "support" in done.stdout and " 40" in done.stdout  # every image of each class measured


def test_missing_model_is_one_clear_error(grace_hopper_path, tmp_path):
    done = run("-m", "emotion", "predict", "--model", str(tmp_path / "nope.keras"), str(grace_hopper_path))
    assert done.returncode == 1
    assert "error: model file" in done.stderr and "Traceback" not in done.stderr


def test_train_command_writes_a_model(tmp_path):
    from conftest import write_class_folders

    data = write_class_folders(tmp_path / "faces", per_class=10)
    output = tmp_path / "out" / "cli.keras"
    done = run("train.py", "--data", str(data), "--epochs", "2", "--batch-size", "8", "--output", str(output))
    assert done.returncode == 0, done.stderr
    assert output.is_file() and output.with_suffix(".json").is_file()
    assert "confusion matrix" in done.stdout and str(output) in done.stdout


def test_export_writes_a_checked_tflite_and_its_record(tiny_training, tmp_path):
    result, _, _ = tiny_training
    model = shutil.copy(result.model_path, tmp_path / "tiny.keras")
    done = run("-m", "emotion", "export", "--model", str(model), "--output", str(tmp_path / "phone.tflite"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "wrote " in done.stdout and "largest difference from Keras: " in done.stdout
    record = json.loads((tmp_path / "phone.tflite.json").read_text())
    assert record["model"] == "tiny.keras" and record["largest_difference"] < 1e-4
