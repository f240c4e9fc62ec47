"""Datasets in the layouts users have, as folders or zips, turned into face-pixel arrays.

Layouts: `DIR/<class>/*` (a seeded validation split is taken) and `DIR/train/<class>/*` +
`DIR/test/<class>/*` (optional `DIR/val/<class>/*`), either inside one enclosing folder or not.
Nothing in the user's folder is ever modified; a zip is extracted to a temporary folder.
"""

from __future__ import annotations

import logging
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from emotion.archives import JUNK_NAMES, extract_zip
from emotion.errors import DatasetError, ImageError
from emotion.limits import MAX_CLASSES, MAX_FOLDER_DEPTH
from emotion.photos import extract_many
from emotion.preprocess import Preprocessing

log = logging.getLogger(__name__)

SPLIT_NAMES = {"train": "train", "training": "train", "test": "test", "testing": "test",
               "val": "val", "valid": "val", "validation": "val"}  # folder name -> split


@dataclass
class DatasetLayout:
    """Files per split and class, as found on disk, before any image is decoded."""

    root: Path
    class_names: list[str]
    splits: dict[str, dict[str, list[Path]]]  # "train" / "val" / "test" -> class -> files
    layout: str  # "class folders" or "train/test folders"
    name: str = ""  # what the visitor calls it: the folder's name, or the zip's for an extracted zip

    def counts(self) -> dict[str, dict[str, int]]:
        return {split: {name: len(files) for name, files in classes.items()} for split, classes in self.splits.items()}


@dataclass
class FaceArrays:
    """Decoded faces of one split: pixels (n, size, size, channels) uint8, labels (n,) int."""

    pixels: np.ndarray
    labels: np.ndarray
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    no_face: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)  # the file of each face, in order
    # (n, classes) probabilities to train towards (crowd votes); None: the labels, one-hot.
    targets: np.ndarray | None = None
    detected: int = 0  # faces the detector found (the rest are whole images taken for face crops)

    def select(self, keep: np.ndarray) -> "FaceArrays":
        """The faces where the boolean mask `keep` is true (skipped and faceless files are not carried)."""
        return FaceArrays(self.pixels[keep], self.labels[keep],
                          paths=[path for path, kept in zip(self.paths, keep) if kept],
                          targets=None if self.targets is None else self.targets[keep])


def discover(root: Path, name: str | None = None) -> DatasetLayout:
    """Find the classes and splits of a dataset folder (a zip must be extracted first).

    Class names are the folder names without surrounding spaces; two folders whose names differ
    only in case or spaces are refused, and test/ and val/ classes match train/'s in any case.
    `name` is what messages call the dataset (the zip's name for an extracted zip).
    """
    name = name or Path(root).name
    root = _descend_enclosing_folders(Path(root))
    split_folders = {}
    for folder in _subfolders(root):
        split = SPLIT_NAMES.get(_clean_name(folder).lower())
        if split in split_folders:
            raise DatasetError(f"{name}: both {split_folders[split].name}/ and {folder.name}/ hold the {split} split; "
                               "keep one.")
        if split:
            split_folders[split] = folder
    if "train" in split_folders:
        splits = {split: _class_files(folder) for split, folder in split_folders.items()}
        class_names = sorted(splits["train"])
        spelling = {class_name.casefold(): class_name for class_name in class_names}
        for split, classes in splits.items():
            extra = sorted(class_name for class_name in classes if class_name.casefold() not in spelling)
            if extra:
                raise DatasetError(f"{split}/ has classes that train/ lacks: {', '.join(extra)}.")
            splits[split] = {spelling[class_name.casefold()]: files for class_name, files in classes.items()}
        layout = "train/test folders"
    else:
        splits = {"train": _class_files(root)}
        class_names = sorted(splits["train"])
        layout = "class folders"
    if not class_names and (archives := sorted(path.name for path in root.iterdir() if path.suffix.lower() == ".zip")):
        raise DatasetError(f"{name}: holds {', '.join(archives)} instead of class folders; unzip it and use its "
                           "folder, or zip the class folders themselves.")
    loose = [path for path in root.iterdir() if path.is_file() and not _is_junk(path)]
    if not class_names and loose:
        raise DatasetError(f"{name}: {len(loose)} file(s) but no class folders; the folder an image is in is its "
                           "label. Put each class's images in a folder named after it (happy/, sad/, ...) and "
                           "zip those folders.")
    _check_classes(class_names, splits["train"], name)
    return DatasetLayout(root, class_names, splits, layout, name)


def _descend_enclosing_folders(root: Path) -> Path:
    """Skip folders that only wrap the dataset (`dataset.zip` -> `dataset/` -> classes).

    A lone folder of files is a class, not a wrapper: a zip of happy/ alone is one class short.
    """
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder.")
    for _ in range(MAX_FOLDER_DEPTH):
        folders = _subfolders(root)
        has_files = any(p.is_file() and not _is_junk(p) for p in root.iterdir())
        if (len(folders) == 1 and not has_files and _clean_name(folders[0]).lower() not in SPLIT_NAMES
                and _subfolders(folders[0])):
            root = folders[0]
        else:
            break
    return root


def _class_files(folder: Path) -> dict[str, list[Path]]:
    """Each subfolder is a class; its files (at any depth, outside junk folders) are that class's examples."""
    classes, folders = {}, {}
    for class_folder in _subfolders(folder):
        class_name = _clean_name(class_folder)
        if not class_name:
            raise DatasetError(f"class folder {class_folder.name!r} has a blank name; rename it.")
        twin = folders.setdefault(class_name.casefold(), class_folder)
        if twin is not class_folder:
            raise DatasetError(f"class folders {twin.name!r} and {class_folder.name!r} differ only in case or spaces; "
                               "rename one, or merge them into one folder.")
        classes[class_name] = sorted(
            p for p in class_folder.rglob("*")
            if p.is_file() and not any(_is_junk_name(part) for part in p.relative_to(class_folder).parts)
        )
    return classes


def _clean_name(folder: Path) -> str:
    """A folder's name as a class or split name: without surrounding spaces, in one Unicode form
    (macOS zips spell accented letters decomposed)."""
    return unicodedata.normalize("NFC", folder.name).strip()


def _check_classes(class_names: list[str], train: dict[str, list[Path]], name: str) -> None:
    if len(class_names) < 2:
        found = f"only {class_names[0]!r}" if class_names else "none"
        raise DatasetError(f"{name}: need at least two class folders (for example happy/ and sad/), found {found}.")
    if len(class_names) > MAX_CLASSES:
        raise DatasetError(f"{name}: {len(class_names)} class folders, more than the {MAX_CLASSES} allowed; "
                           "is this the right folder?")
    empty = [class_name for class_name in class_names if not train[class_name]]
    if empty:
        raise DatasetError(f"class folder(s) with no files: {', '.join(empty)}. Add images or remove the folder.")


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not _is_junk(p))


def _is_junk(path: Path) -> bool:
    return _is_junk_name(path.name) or path.is_symlink()


def _is_junk_name(name: str) -> bool:
    return name in JUNK_NAMES or name.startswith(".")


def open_dataset(path: Path, workdir: Path | None = None) -> DatasetLayout:
    """Discover a dataset folder, or a zip extracted under `workdir` (a new temporary folder if None)."""
    path = Path(path)
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise DatasetError(_not_a_zip_message(path))
        workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="emotion-dataset-"))
        return discover(extract_zip(path, workdir / "extracted"), name=path.name)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder.")
    return discover(path)


def _not_a_zip_message(path: Path) -> str:
    with open(path, "rb") as file:
        starts_like_a_zip = file.read(4) == b"PK\x03\x04"
    if starts_like_a_zip:  # the directory is at the end: an upload cut short loses it
        return f"{path.name}: the zip is incomplete or damaged (its directory is missing); zip the folder again."
    return f"{path.name}: not a zip file. A dataset is a folder of class folders (happy/, sad/, ...), or a .zip of one."


def load_faces(
    files_by_class: dict[str, list[Path]],
    class_names: list[str],
    preprocessing: Preprocessing,
    faces: str,
    on_file: Callable[[int, int], None] | None = None,
) -> FaceArrays:
    """Read every file and crop its face through `photos.extract_faces`, the predictor's own path
    (`extract_many`: a photo a core); the largest face of a photo is its subject. Unreadable files
    and faceless photos are reported."""
    items = [(path, label) for label, name in enumerate(class_names) for path in files_by_class.get(name, [])]
    # No server folders in messages: a file is named by its class folder and its name.
    named = ((path, f"{path.parent.name}/{path.name}") for path, _ in items)
    pixels, labels, paths, skipped, no_face = [], [], [], [], []
    detected = 0
    for index, (photo, (path, label)) in enumerate(zip(extract_many(named, preprocessing, faces), items)):
        if on_file:
            on_file(index, len(items))
        if isinstance(photo, ImageError):
            skipped.append((str(path), str(photo)))
            continue
        if not photo.boxes:
            no_face.append(str(path))
            continue
        detected += photo.detected
        pixels.append(photo.pixels[0])
        labels.append(label)
        paths.append(str(path))
    if skipped:
        log.warning("skipped %d file(s) that could not be read", len(skipped))
    size, channels = preprocessing.image_size, preprocessing.channels
    stacked = np.stack(pixels) if pixels else np.empty((0, size, size, channels), np.uint8)
    return FaceArrays(stacked, np.asarray(labels, dtype=np.int32), skipped, no_face, paths, detected=detected)


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
    train = arrays.select(~is_val)
    train.skipped, train.no_face = arrays.skipped, arrays.no_face
    return train, arrays.select(is_val)
