"""Dataset discovery on every layout users have, folders and zips (hostile zips: test_hostile_zips.py)."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from conftest import write_class_folders
from emotion import datasets
from emotion.errors import DatasetError
from emotion.config import TrainConfig


def zip_folder(folder: Path, zip_path: Path, enclose: str | None = None) -> Path:
    with zipfile.ZipFile(zip_path, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                name = path.relative_to(folder).as_posix()
                archive.write(path, f"{enclose}/{name}" if enclose else name)
    return zip_path


@pytest.fixture
def class_folders(tmp_path) -> Path:
    return write_class_folders(tmp_path / "faces", per_class=6)


@pytest.fixture
def split_folders(tmp_path) -> Path:
    root = tmp_path / "seed"
    write_class_folders(root / "train", per_class=6)
    write_class_folders(root / "test", per_class=3, seed=1)
    return root


def test_class_folders(class_folders):
    layout = datasets.open_dataset(class_folders)
    assert layout.layout == "class folders"
    assert layout.class_names == ["happy", "sad"]
    assert layout.counts() == {"train": {"happy": 6, "sad": 6}}


def test_train_test_folders_with_optional_val(split_folders):
    layout = datasets.open_dataset(split_folders)
    assert layout.layout == "train/test folders"
    assert set(layout.splits) == {"train", "test"}
    write_class_folders(split_folders / "val", per_class=2, seed=2)
    assert datasets.open_dataset(split_folders).counts()["val"] == {"happy": 2, "sad": 2}


@pytest.mark.parametrize("enclose", [None, "my dataset"])
@pytest.mark.parametrize("layout_fixture", ["class_folders", "split_folders"])
def test_zips_with_or_without_an_enclosing_folder(request, tmp_path, enclose, layout_fixture):
    folder = request.getfixturevalue(layout_fixture)
    zip_path = zip_folder(folder, tmp_path / "upload.zip", enclose)
    layout = datasets.open_dataset(zip_path, workdir=tmp_path / "work")
    assert layout.class_names == ["happy", "sad"]
    assert layout.counts()["train"] == {"happy": 6, "sad": 6}
    assert tmp_path / "work" in layout.root.parents


def test_macos_junk_is_ignored(tmp_path, class_folders):
    (class_folders / ".DS_Store").write_bytes(b"\0\1")
    zip_path = zip_folder(class_folders, tmp_path / "mac.zip", "faces")
    with zipfile.ZipFile(zip_path, "a") as archive:
        archive.writestr("__MACOSX/faces/happy/._000.png", b"resource fork")
    layout = datasets.open_dataset(zip_path, workdir=tmp_path / "work")
    assert layout.class_names == ["happy", "sad"]


def test_unreadable_files_are_skipped_and_reported_and_nothing_is_touched(class_folders):
    (class_folders / "sad" / "notes.txt").write_text("not an image")
    (class_folders / "happy" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    before = {p: p.read_bytes() for p in class_folders.rglob("*") if p.is_file()}
    layout = datasets.open_dataset(class_folders)
    arrays = datasets.load_faces(layout.splits["train"], layout.class_names, TrainConfig().preprocessing, "none")
    assert len(arrays.labels) == 12
    assert sorted(Path(name).name for name, _ in arrays.skipped) == ["broken.jpg", "notes.txt"]
    assert {p: p.read_bytes() for p in class_folders.rglob("*") if p.is_file()} == before


def test_photos_without_faces_are_reported(tmp_path, grace_hopper_path):
    for name in ("happy", "sad"):
        (tmp_path / "photos" / name).mkdir(parents=True)
        shutil.copy(grace_hopper_path, tmp_path / "photos" / name / "portrait.jpg")
    from PIL import Image

    Image.new("RGB", (400, 300), (200, 180, 160)).save(tmp_path / "photos" / "sad" / "wall.jpg")
    layout = datasets.open_dataset(tmp_path / "photos")
    arrays = datasets.load_faces(layout.splits["train"], layout.class_names, TrainConfig().preprocessing, "auto")
    assert list(arrays.labels) == [0, 1] and arrays.detected == 2
    assert [Path(p).name for p in arrays.no_face] == ["wall.jpg"]


def test_small_images_are_treated_as_face_crops(class_folders):
    layout = datasets.open_dataset(class_folders)
    arrays = datasets.load_faces(layout.splits["train"], layout.class_names, TrainConfig().preprocessing, "auto")
    assert len(arrays.labels) == 12 and arrays.detected == 0 and not arrays.no_face


def test_validation_split_is_seeded_and_stratified(class_folders):
    layout = datasets.open_dataset(class_folders)
    arrays = datasets.load_faces(layout.splits["train"], layout.class_names, TrainConfig().preprocessing, "none")
    train_a, val_a = datasets.split_validation(arrays, 0.34, seed=3)
    train_b, val_b = datasets.split_validation(arrays, 0.34, seed=3)
    assert (val_a.pixels == val_b.pixels).all()
    assert sorted(val_a.labels.tolist()) == [0, 0, 1, 1]
    assert len(train_a.labels) == 8


def test_one_class_is_refused(tmp_path):
    write_class_folders(tmp_path / "one", per_class=3, classes=("happy",))
    with pytest.raises(DatasetError, match="at least two class folders"):
        datasets.open_dataset(tmp_path / "one")


def test_not_a_zip_is_a_clear_error(tmp_path):
    path = tmp_path / "dataset.zip"
    path.write_text("hello")
    with pytest.raises(DatasetError, match="not a zip file"):
        datasets.open_dataset(path)
