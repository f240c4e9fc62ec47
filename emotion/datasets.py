"""Datasets in the layouts users have, as folders or zips, turned into face-pixel arrays.

Layouts: `DIR/<class>/*` (a seeded validation split is taken) and `DIR/train/<class>/*` +
`DIR/test/<class>/*` (optional `DIR/val/<class>/*`), either inside one enclosing folder or not.
Nothing in the user's folder is ever modified; a zip is extracted to a temporary folder.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from emotion.errors import DatasetError, ImageError
from emotion.faces import FaceDetector
from emotion.images import read_image
from emotion.limits import (
    MAX_CLASSES,
    MAX_FOLDER_DEPTH,
    MAX_ZIP_COMPRESSION_RATIO,
    MAX_ZIP_ENTRIES,
    MAX_ZIP_TOTAL_BYTES,
)
from emotion.preprocess import Preprocessing, face_pixels, whole_image_box

log = logging.getLogger(__name__)

SPLIT_NAMES = {"train": "train", "training": "train", "test": "test", "testing": "test",
               "val": "val", "valid": "val", "validation": "val"}  # folder name -> split
JUNK_NAMES = {"__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini"}
# Median longest side (pixels) above which "auto" treats a dataset as photos to detect faces in.
CROP_SIZE_LIMIT = 160


@dataclass
class DatasetLayout:
    """Files per split and class, as found on disk, before any image is decoded."""

    root: Path
    class_names: list[str]
    splits: dict[str, dict[str, list[Path]]]  # "train" / "val" / "test" -> class -> files
    layout: str  # "class folders" or "train/test folders"

    def counts(self) -> dict[str, dict[str, int]]:
        return {split: {name: len(files) for name, files in classes.items()} for split, classes in self.splits.items()}


@dataclass
class FaceArrays:
    """Decoded faces of one split: pixels (n, size, size, channels) uint8, labels (n,) int."""

    pixels: np.ndarray
    labels: np.ndarray
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    no_face: list[str] = field(default_factory=list)


def extract_zip(zip_path: Path, destination: Path) -> Path:
    """Extract a dataset zip into `destination` after checking every entry; return the folder."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as error:
        raise DatasetError(f"{zip_path.name}: not a readable zip file ({error}).") from error
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ZIP_ENTRIES:
            raise DatasetError(f"{zip_path.name}: {len(entries)} entries, more than the {MAX_ZIP_ENTRIES} allowed.")
        total = sum(entry.file_size for entry in entries)
        if total > MAX_ZIP_TOTAL_BYTES:
            raise DatasetError(f"{zip_path.name}: {total / 1e9:.1f} GB uncompressed, more than the "
                               f"{MAX_ZIP_TOTAL_BYTES / 1e9:.1f} GB allowed.")
        for entry in entries:
            if entry.flag_bits & 0x1:
                raise DatasetError(f"{zip_path.name}: the zip is encrypted; zip the folder again without a password.")
            ratio = entry.file_size / max(entry.compress_size, 1)
            if ratio > MAX_ZIP_COMPRESSION_RATIO:
                raise DatasetError(f"{zip_path.name}: entry {entry.filename!r} expands {ratio:.0f} times; "
                                   "this looks like a zip bomb.")
        destination = destination.resolve()
        for entry in entries:
            target = _safe_member_path(entry, destination)
            if target is None:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(entry) as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink)  # streamed: a large entry never sits in memory whole
    return destination


def _safe_member_path(entry: zipfile.ZipInfo, destination: Path) -> Path | None:
    """Where an entry may be written inside `destination`, or None for folders, links and junk."""
    name = entry.filename.replace("\\", "/")
    is_symlink = (entry.external_attr >> 16) & 0o170000 == 0o120000
    if entry.is_dir() or is_symlink:
        return None
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
        raise DatasetError(f"zip entry {entry.filename!r} points outside the dataset folder; refusing the zip.")
    if any(part in JUNK_NAMES or part.startswith("._") for part in parts):
        return None
    if len(parts) > MAX_FOLDER_DEPTH + 1:
        raise DatasetError(f"zip entry {entry.filename!r} is nested more than {MAX_FOLDER_DEPTH} folders deep.")
    target = destination.joinpath(*parts).resolve()
    if destination not in target.parents:
        raise DatasetError(f"zip entry {entry.filename!r} points outside the dataset folder; refusing the zip.")
    return target


def discover(root: Path) -> DatasetLayout:
    """Find the classes and splits of a dataset folder (a zip must be extracted first)."""
    root = _descend_enclosing_folders(Path(root))
    folders = _subfolders(root)
    split_folders = {SPLIT_NAMES[f.name.lower()]: f for f in folders if f.name.lower() in SPLIT_NAMES}
    if "train" in split_folders:
        splits = {split: _class_files(folder) for split, folder in split_folders.items()}
        class_names = sorted(splits["train"])
        for split, classes in splits.items():
            extra = sorted(set(classes) - set(class_names))
            if extra:
                raise DatasetError(f"{split}/ has classes that train/ lacks: {', '.join(extra)}.")
        layout = "train/test folders"
    else:
        splits = {"train": _class_files(root)}
        class_names = sorted(splits["train"])
        layout = "class folders"
    _check_classes(class_names, splits["train"], root)
    return DatasetLayout(root, class_names, splits, layout)


def _descend_enclosing_folders(root: Path) -> Path:
    """Skip folders that only wrap the dataset (`dataset.zip` -> `dataset/` -> classes)."""
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder.")
    for _ in range(MAX_FOLDER_DEPTH):
        folders = _subfolders(root)
        has_files = any(p.is_file() and not _is_junk(p) for p in root.iterdir())
        if len(folders) == 1 and not has_files and folders[0].name.lower() not in SPLIT_NAMES:
            root = folders[0]
        else:
            break
    return root


def _class_files(folder: Path) -> dict[str, list[Path]]:
    """Each subfolder is a class; its files (at any depth) are that class's examples."""
    classes = {}
    for class_folder in _subfolders(folder):
        files = sorted(p for p in class_folder.rglob("*") if p.is_file() and not _is_junk(p))
        classes[class_folder.name] = files
    return classes


def _check_classes(class_names: list[str], train: dict[str, list[Path]], root: Path) -> None:
    if len(class_names) < 2:
        found = f"only {class_names[0]!r}" if class_names else "none"
        raise DatasetError(f"{root.name}: need at least two class folders (for example happy/ and sad/), found {found}.")
    if len(class_names) > MAX_CLASSES:
        raise DatasetError(f"{root.name}: {len(class_names)} class folders, more than the {MAX_CLASSES} allowed; "
                           "is this the right folder?")
    empty = [name for name in class_names if not train[name]]
    if empty:
        raise DatasetError(f"class folder(s) with no files: {', '.join(empty)}. Add images or remove the folder.")


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not _is_junk(p))


def _is_junk(path: Path) -> bool:
    return path.name in JUNK_NAMES or path.name.startswith(".") or path.is_symlink()


def open_dataset(path: Path, workdir: Path | None = None) -> DatasetLayout:
    """Discover a dataset folder, or a zip extracted under `workdir` (a new temporary folder if None)."""
    path = Path(path)
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise DatasetError(f"{path.name}: not a zip file. Give a folder of class folders or a .zip of one.")
        workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="emotion-dataset-"))
        return discover(extract_zip(path, workdir / "extracted"))
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder.")
    return discover(path)


def choose_face_mode(files: list[Path], faces: str, sample: int = 50) -> str:
    """Resolve "auto" to "crop" (photos: detect faces) or "none" (images already are faces)."""
    if faces != "auto":
        return faces
    sides = []
    for path in files[:: max(1, len(files) // sample)][:sample]:
        try:
            sides.append(max(read_image(path).shape[:2]))
        except ImageError:
            continue
    return "crop" if sides and float(np.median(sides)) > CROP_SIZE_LIMIT else "none"


def load_faces(
    files_by_class: dict[str, list[Path]],
    class_names: list[str],
    preprocessing: Preprocessing,
    face_mode: str,
    detector: FaceDetector | None = None,
    on_file: Callable[[int, int], None] | None = None,
) -> FaceArrays:
    """Decode every file and crop its face; undecodable files and faceless photos are reported."""
    if face_mode == "crop" and detector is None:
        detector = FaceDetector()
    items = [(path, label) for label, name in enumerate(class_names) for path in files_by_class.get(name, [])]
    pixels, labels, skipped, no_face = [], [], [], []
    for index, (path, label) in enumerate(items):
        if on_file:
            on_file(index, len(items))
        try:
            image = read_image(path)
        except ImageError as error:
            skipped.append((str(path), str(error)))
            continue
        if face_mode == "crop":
            boxes = detector.detect(image)[:1]  # the largest face is the photo's subject
            if not boxes:
                no_face.append(str(path))
                continue
        else:
            boxes = [whole_image_box(image)]
        pixels.append(face_pixels(image, boxes, preprocessing)[0])
        labels.append(label)
    if skipped:
        log.warning("skipped %d file(s) that could not be read", len(skipped))
    size, channels = preprocessing.image_size, preprocessing.channels
    stacked = np.stack(pixels) if pixels else np.empty((0, size, size, channels), np.uint8)
    return FaceArrays(stacked, np.asarray(labels, dtype=np.int32), skipped, no_face)


def split_validation(arrays: FaceArrays, val_split: float, seed: int) -> tuple[FaceArrays, FaceArrays]:
    """A seeded, stratified split: each class gives the same share to validation."""
    rng = np.random.default_rng(seed)
    val_indices = []
    for label in np.unique(arrays.labels):
        members = np.flatnonzero(arrays.labels == label)
        count = int(round(len(members) * val_split))
        if len(members) > 1:
            count = min(max(count, 1), len(members) - 1)  # keep at least one on each side
            val_indices.extend(rng.choice(members, size=count, replace=False))
    is_val = np.zeros(len(arrays.labels), dtype=bool)
    is_val[np.asarray(val_indices, dtype=int)] = True
    train = FaceArrays(arrays.pixels[~is_val], arrays.labels[~is_val], arrays.skipped, arrays.no_face)
    val = FaceArrays(arrays.pixels[is_val], arrays.labels[is_val])
    return train, val
