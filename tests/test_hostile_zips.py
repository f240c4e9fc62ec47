"""Hostile dataset zips, through the trainer (every one) and the Train tab (one of each kind): each is
refused with a precise message or gives a correct dataset, and nothing is ever written outside the
work folder it was given.

Behaviour chosen for class names: a class is its folder's name without surrounding spaces (so "Happy "
is the class "Happy"); two folders whose names differ only in case or spaces are refused, and test/
and val/ class folders match train/'s whatever their case.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
from PIL import Image

import app as web
from conftest import cartoon_face
from emotion import archives, datasets
from emotion.config import TrainConfig
from emotion.errors import DatasetError
from emotion.serving import Server
from emotion.preparation import prepare_data
from emotion.training import train

TINY = TrainConfig(epochs=1, batch_size=8, base_filters=8, init="scratch")
SYMLINK_ATTR = 0o120777 << 16  # unix mode bits of a symbolic link, where zip keeps them
MEGABYTE = 1024**2


def face_png(expression: str = "happy", seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    cartoon_face(expression, np.random.default_rng(seed)).save(buffer, "PNG")
    return buffer.getvalue()


def faces(prefix: str = "", classes=("happy", "sad"), per_class: int = 6) -> list[tuple[str, bytes]]:
    """Entries of a good class-folder dataset: `<prefix><class>/<n>.png`."""
    return [(f"{prefix}{name}/{index:03d}.png", face_png(name if name in ("happy", "sad") else "happy", index))
            for name in classes for index in range(per_class)]


def write_zip(path: Path, entries) -> Path:
    """Entries are (name, bytes) for files, (name, None) for folders, or ready ZipInfo/bytes pairs."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            if isinstance(name, zipfile.ZipInfo):
                archive.writestr(name, data)
            elif data is None:
                archive.writestr(zipfile.ZipInfo(name.rstrip("/") + "/"), b"")
            else:
                archive.writestr(name, data)
    return path


def symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.external_attr = SYMLINK_ATTR
    return info, target.encode()


def zeros_entry(archive: zipfile.ZipFile, name: str, size: int) -> None:
    """`size` bytes of zeros, streamed in: a 50 MB bomb never sits in memory."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with archive.open(info, "w", force_zip64=True) as entry:
        for _ in range(size // MEGABYTE):
            entry.write(bytes(MEGABYTE))


def snapshot(folder: Path, outside_of: Path) -> dict[str, int]:
    """Every file and folder under `folder` (size, or -1 for folders), except those inside `outside_of`."""
    found = {}
    for current, folder_names, file_names in os.walk(folder):
        current = Path(current)
        folder_names[:] = [name for name in folder_names if current / name != outside_of]
        for name in folder_names:
            found[str(current / name)] = -1
        for name in file_names:
            found[str(current / name)] = (current / name).lstat().st_size
    return found


# Builders: each writes one hostile upload at `path` (tmp_path / "upload" / "dataset.zip").

def traversal(*names):
    return lambda path: write_zip(path, faces() + [(name, b"escaped") for name in names])


def absolute_path(path: Path):
    return write_zip(path, faces() + [(str(path.parent.parent / "absolute-escape.png"), b"escaped")])


def folder_traversal(path: Path):
    return write_zip(path, faces() + [("../../escaped-folder/", None)])


def bomb_entry(path: Path):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in faces():
            archive.writestr(name, data)
        zeros_entry(archive, "happy/bomb.png", 50 * MEGABYTE)  # ~50 kB compressed
    return path


def bomb_spread_over_entries(path: Path):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(12):
            zeros_entry(archive, f"happy/{index:03d}.png", MEGABYTE)
            zeros_entry(archive, f"sad/{index:03d}.png", MEGABYTE)
    return path


def encrypted(path: Path):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in faces():
            archive.writestr(name, data)
            # zipfile cannot encrypt; the flag in the directory is what a reader goes by.
            archive.infolist()[-1].flag_bits |= 0x1
    return path


def understated_size(path: Path):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in faces():
            archive.writestr(name, data)
        archive.writestr("happy/liar.png", os.urandom(200_000))
        archive.infolist()[-1].file_size = 1_000  # the directory claims 1 kB; the data holds 200 kB
    return path


def bad_checksum(path: Path):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in faces():
            archive.writestr(name, data)
        archive.infolist()[-1].CRC ^= 0xFFFF
    return path


def unsupported_compression(path: Path):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in faces():
            archive.writestr(name, data)
        archive.infolist()[-1].compress_type = 9  # deflate64: Windows Explorer writes it, Python cannot read it
    return path


def cut_short(path: Path):
    write_zip(path, faces())
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def write_bytes(data: bytes):
    def build(path: Path):
        path.write_bytes(data)
        return path
    return build


def entries(*extra, base=None):
    return lambda path: write_zip(path, (faces() if base is None else base) + list(extra))


REFUSED = {
    # Paths that lead out of the extraction folder, in every spelling.
    "parent": (traversal("../escaped.png"), "points outside the dataset folder"),
    "grandparent": (traversal("../../escaped.png"), "points outside the dataset folder"),
    "hidden in a class": (traversal("happy/../../../escaped.png"), "points outside the dataset folder"),
    "absolute": (absolute_path, "points outside the dataset folder"),
    "windows drive": (traversal("C:\\escaped.png"), "points outside the dataset folder"),
    "windows drive relative": (traversal("C:escaped.png"), "points outside the dataset folder"),
    "backslash parent": (traversal("..\\..\\escaped.png"), "points outside the dataset folder"),
    "windows share": (traversal("\\\\server\\share\\escaped.png"), "points outside the dataset folder"),
    "folder entry": (folder_traversal, "points outside the dataset folder"),
    # Size.
    "bomb entry": (bomb_entry, r"'happy/bomb.png' expands \d+ times, to 50.0 MB; this looks like a zip bomb"),
    "bomb spread over entries": (bomb_spread_over_entries,
                                 r"dataset.zip: expands \d+ times, to 24.0 MB; this looks like a zip bomb"),
    "deeply nested": (entries(("/".join(["deep"] * 14) + "/happy/1.png", face_png())),
                      "nested more than 12 folders deep"),
    # Damaged or unreadable zips.
    "encrypted": (encrypted, "the zip is encrypted; zip the folder again without a password"),
    "understated size": (understated_size, r"'happy/liar.png' is damaged \(Bad CRC-32"),
    "bad checksum": (bad_checksum, r"'sad/005.png' is damaged \(Bad CRC-32"),
    "unsupported compression": (unsupported_compression, "compression method that is not supported"),
    "file and folder of one name": (entries(("happy", b"a file where a folder must go"), base=faces()[::-1]),
                                    r"could not be extracted \((Not a directory|Is a directory|File exists)\)"),
    "name too long": (entries(("happy/" + "a" * 300 + ".png", face_png())),
                      r"could not be extracted \(File name too long\)"),
    "not a zip": (write_bytes(b"%PDF-1.4 a report, not a dataset"), "dataset.zip: not a zip file"),
    "empty file": (write_bytes(b""), "dataset.zip: not a zip file"),
    "cut short": (cut_short, "dataset.zip: the zip is incomplete or damaged"),
    # Classes.
    "one class": (entries(base=faces(classes=("happy",))), "need at least two class folders .* found only 'happy'"),
    "no classes": (entries(base=[]), "need at least two class folders .* found none"),
    "images and no classes": (entries(base=[(name.split("/")[-1].replace(".png", f"-{name[0]}.png"), data)
                                            for name, data in faces()]),
                              r"dataset.zip: \d+ file\(s\) but no class folders; the folder an image is in is "
                              "its label"),
    "a zip in the zip": (entries(base=[("faces.zip", b"PK\x05\x06" + b"\0" * 18)]),
                         "holds faces.zip instead of class folders; unzip it"),
    "empty class": (entries(("sad/", None), base=faces(classes=("happy",))), "class folder\\(s\\) with no files: sad"),
    "class of junk only": (entries(("sad/.DS_Store", b"\0" * 64), ("sad/Thumbs.db", b"\0" * 64),
                                   base=faces(classes=("happy",))), "found only 'happy'"),
    "class of symlinks only": (entries(symlink("sad/001.png", "/etc/passwd"), base=faces(classes=("happy",))),
                               "found only 'happy'"),
    "21 classes": (entries(base=faces(classes=[f"class{index:02d}" for index in range(21)], per_class=1)),
                   "21 class folders, more than the 20 allowed"),
    "case twins": (entries(base=faces(classes=("Happy", "happy", "sad"))),
                   "class folders 'Happy' and 'happy' differ only in case or spaces"),
    "space twins": (entries(base=faces(classes=("happy", "happy ", "sad"))),
                    "class folders 'happy' and 'happy ' differ only in case or spaces"),
    "blank class name": (entries(base=faces(classes=("   ", "happy", "sad"))), "class folder '   ' has a blank name"),
    "two train folders": (entries(base=faces("train/") + faces("Training/")),
                          "both Training/ and train/ hold the train split"),
    "test class train lacks": (entries(base=faces("train/") + faces("test/", classes=("happy", "angry"))),
                               "test/ has classes that train/ lacks: angry"),
    # Decodable too little: found by the trainer once it reads the images.
    "single image class": (entries(base=faces(classes=("happy",)) + faces(classes=("sad",), per_class=1)),
                           "no usable validation images for class\\(es\\) sad"),
    "non-image class": (entries(("sad/notes.txt", b"shopping list"), ("sad/report.pdf", b"%PDF-1.4"),
                                base=faces(classes=("happy",))), "no usable training images for class\\(es\\) sad"),
    "corrupt image class": (entries(*[(f"sad/{index}.jpg", b"\xff\xd8\xff\xe0 cut") for index in range(4)],
                                    base=faces(classes=("happy",))), "no usable training images for class\\(es\\) sad"),
}


# Every case above goes through the trainer; through the Train tab, one of each kind: the handler only
# passes the package's message on, and nothing it adds may write outside the session's folder.
THROUGH_THE_TAB = ["parent", "bomb entry", "one class"]


@pytest.fixture(scope="module")
def train_tab(tmp_path_factory):
    server = Server(sessions_root=tmp_path_factory.mktemp("sessions"))
    yield web.EmotionApp(server).train
    server.sessions.close_all()


def no_progress(*args, **kwargs):
    return None


def upload_path(tmp_path: Path) -> Path:
    (tmp_path / "upload").mkdir()
    return tmp_path / "upload" / "dataset.zip"


@pytest.mark.parametrize("case", REFUSED)
def test_the_trainer_refuses_with_a_precise_message_and_writes_nothing_outside(tmp_path, case):
    build, message = REFUSED[case]
    zip_path = build(upload_path(tmp_path))
    workdir = tmp_path / "work"
    before = snapshot(tmp_path, outside_of=workdir)

    with pytest.raises(DatasetError, match=message):
        prepare_data(zip_path, TINY, workdir)

    assert snapshot(tmp_path, outside_of=workdir) == before
    assert not any(path.is_symlink() for path in workdir.rglob("*"))


@pytest.mark.parametrize("case", THROUGH_THE_TAB)
def test_the_train_tab_refuses_with_the_same_message_then_takes_a_good_zip(train_tab, tmp_path, case):
    build, message = REFUSED[case]
    zip_path = build(upload_path(tmp_path))
    session = SimpleNamespace(session_hash="hostile")
    sessions = train_tab.server.sessions
    workdir = sessions.get(session.session_hash).folder / "dataset"
    before = snapshot(sessions.root, outside_of=workdir) | snapshot(tmp_path, outside_of=workdir)

    with pytest.raises(gr.Error, match=message):
        train_tab.on_dataset_change(str(zip_path), "auto", 48, "scratch", session, progress=no_progress)
    assert snapshot(sessions.root, outside_of=workdir) | snapshot(tmp_path, outside_of=workdir) == before

    good = write_zip(tmp_path / "good.zip", faces(per_class=4))
    shown = train_tab.on_dataset_change(str(good), "auto", 48, "scratch", session, progress=no_progress)
    assert "| happy |" in shown[train_tab.summary] and "| sad |" in shown[train_tab.summary]
    assert shown[train_tab.start]["interactive"] is True


def test_limits_on_entries_and_total_size_are_enforced(tmp_path, monkeypatch):
    zip_path = write_zip(upload_path(tmp_path), faces())  # 12 entries of about 2 kB
    monkeypatch.setattr(archives, "MAX_ZIP_ENTRIES", 10)
    with pytest.raises(DatasetError, match="dataset.zip: 12 entries, more than the 10 allowed"):
        datasets.open_dataset(zip_path, tmp_path / "work")

    monkeypatch.setattr(archives, "MAX_ZIP_ENTRIES", 1000)
    monkeypatch.setattr(archives, "MAX_ZIP_TOTAL_BYTES", 10 * 1024)
    with pytest.raises(DatasetError, match=r"dataset.zip: \d+\.\d kB uncompressed, more than the 10.0 kB allowed"):
        datasets.open_dataset(zip_path, tmp_path / "work")
    assert not (tmp_path / "work").exists(), "nothing is extracted before every check passed"


def directory_only_zip(path: Path, entries: int, claimed: int) -> Path:
    """A forged zip of nothing but directory records (46 bytes + name each), whose end record
    claims `claimed` entries: how ten million entries fit in a 500 MB upload."""
    records = []
    for index in range(entries):
        name = b"happy/%06d.png" % index
        records.append(struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, len(name),
                                   0, 0, 0, 0, 0, 0) + name)
    directory = b"".join(records)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, claimed, claimed, len(directory), 0, 0)
    path.write_bytes(directory + end)
    return path


def test_a_huge_zip_directory_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(archives, "MAX_ZIP_DIRECTORY_BYTES", 64 * 1024)
    zip_path = directory_only_zip(upload_path(tmp_path), entries=3000, claimed=1)  # 180 kB of directory
    with pytest.raises(DatasetError, match=r"dataset.zip: the zip's list of files takes \d+\.\d kB, "
                                           r"more than the 64.0 kB allowed"):
        datasets.open_dataset(zip_path, tmp_path / "work")

    zip_path = directory_only_zip(tmp_path / "counted.zip", entries=12, claimed=60_000)
    with pytest.raises(DatasetError, match="counted.zip: 60000 entries, more than the 50000 allowed"):
        datasets.open_dataset(zip_path, tmp_path / "work")


def test_symlink_entries_are_never_created_so_nothing_is_written_through_them(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    zip_path = write_zip(upload_path(tmp_path), faces() + [
        symlink("happy/link", str(outside)),  # a link to a folder outside, then a file "inside" it
        ("happy/link/escaped.png", face_png()),
        symlink("sad/passwd.png", "/etc/passwd"),
    ])
    layout = datasets.open_dataset(zip_path, tmp_path / "work")

    assert list(outside.iterdir()) == []
    assert not any(path.is_symlink() for path in (tmp_path / "work").rglob("*"))
    assert (layout.root / "happy" / "link" / "escaped.png").is_file()  # an ordinary folder now
    assert layout.counts() == {"train": {"happy": 7, "sad": 6}}


def messy_zip(path: Path) -> Path:
    """A real-world zip from a Mac and a Windows tool: enclosing folders, junk, stray files, odd names."""
    prefix = "Exports/My Faces/"
    return write_zip(path, faces(prefix, classes=("Happy ", "sad")) + [
        (f"__MACOSX/{prefix}Happy /._000.png", b"resource fork"),
        (f"{prefix}.DS_Store", b"\0" * 6148),
        (f"{prefix}sad/.DS_Store", b"\0" * 6148),
        (f"{prefix}sad/Thumbs.db", b"\0" * 512),
        (f"{prefix}sad/desktop.ini", b"[.ShellClassInfo]"),
        (f"{prefix}Happy /notes.txt", b"taken in March"),
        (f"{prefix}Happy /broken.jpg", b"\xff\xd8\xff\xe0 cut short"),
        (f"{prefix}sad/.hidden/secret.png", face_png("sad", 99)),
        (f"{prefix}sad\\from-windows\\extra.png", face_png("sad", 7)),
        symlink(f"{prefix}sad/link.png", "/etc/passwd"),
    ])


def test_a_messy_but_valid_zip_trains_on_exactly_its_images(tmp_path):
    zip_path = messy_zip(upload_path(tmp_path))
    workdir = tmp_path / "work"
    before = snapshot(tmp_path, outside_of=workdir)

    prepared = prepare_data(zip_path, TINY, workdir)
    assert prepared.class_names == ["Happy", "sad"]  # "Happy " stripped; case kept as written
    assert prepared.summary["files"] == {"train": {"Happy": 8, "sad": 7}}  # with notes.txt and broken.jpg
    skipped = sorted(Path(item["file"]).name for item in prepared.summary["skipped"])
    assert skipped == ["broken.jpg", "notes.txt"]
    used = prepared.summary["used"]
    assert sum(used["train"].values()) + sum(used["val"].values()) == 13

    result = train(prepared, TINY, workdir / "model.keras")
    assert result.model_path.is_file() and result.evaluation.total == sum(used["val"].values())
    assert snapshot(tmp_path, outside_of=workdir) == before


def test_the_train_tab_shows_the_messy_zip_with_its_skipped_files(train_tab, tmp_path):
    zip_path = messy_zip(upload_path(tmp_path))
    shown = train_tab.on_dataset_change(str(zip_path), "auto", 48, "scratch", SimpleNamespace(session_hash="messy"),
                                        progress=no_progress)
    markdown = shown[train_tab.summary]
    assert "| Happy |" in markdown and "broken.jpg" in markdown and "notes.txt" in markdown
    assert {caption for _, caption in shown[train_tab.thumbnails]} == {"Happy", "sad"}
    assert shown[train_tab.start]["interactive"] is True


@pytest.mark.parametrize("train_names, test_names", [
    (("Happy", "Sad"), ("happy", "SAD")),
    (("happy", "sad"), ("happy ", " sad")),
    (("caf\u00e9", "sad"), ("cafe\u0301", "sad")),  # a macOS zip spells é as e + combining accent
])
def test_test_classes_match_train_classes_in_any_case_spacing_or_unicode_form(tmp_path, train_names, test_names):
    zip_path = write_zip(upload_path(tmp_path), faces("train/", train_names, 4) + faces("TEST/", test_names, 2))
    layout = datasets.open_dataset(zip_path, tmp_path / "work")
    assert layout.class_names == sorted(name.strip() for name in train_names)
    assert layout.counts()["test"] == {name.strip(): 2 for name in train_names}


@pytest.mark.parametrize("prefix", ["./", "wrap/", "wrap/" * 5, "wrap/" * 10])
def test_datasets_inside_enclosing_folders_are_found(tmp_path, prefix):
    zip_path = write_zip(upload_path(tmp_path), [(prefix, None)] + faces(prefix))  # "./" as bsdtar writes it
    assert datasets.open_dataset(zip_path, tmp_path / "work").counts() == {"train": {"happy": 6, "sad": 6}}


def test_blank_uncompressed_images_are_not_mistaken_for_a_bomb(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (200, 200), (128, 128, 128)).save(buffer, "BMP")  # 120 kB that deflate to ~150 bytes
    zip_path = write_zip(upload_path(tmp_path), faces() + [("sad/blank.bmp", buffer.getvalue())])
    with zipfile.ZipFile(zip_path) as archive:
        entry = archive.getinfo("sad/blank.bmp")
        assert entry.file_size / entry.compress_size > 200
    assert datasets.open_dataset(zip_path, tmp_path / "work").counts() == {"train": {"happy": 6, "sad": 7}}


def test_a_second_zip_in_the_same_work_folder_replaces_the_first(tmp_path):
    workdir = tmp_path / "work"
    datasets.open_dataset(write_zip(tmp_path / "first.zip", faces(classes=("angry", "calm"))), workdir)
    layout = datasets.open_dataset(write_zip(tmp_path / "second.zip", faces()), workdir)
    assert layout.class_names == ["happy", "sad"]
