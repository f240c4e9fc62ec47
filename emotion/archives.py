"""Extracting a dataset zip safely: every entry checked before anything is written.

Refused: paths leaving the folder, zip bombs, encrypted or damaged entries, oversized directories.
Links are never created, and the junk that zipping tools add (`__MACOSX/`, `.DS_Store`) is skipped.
Every limit comes from `emotion.limits`.
"""

from __future__ import annotations

import shutil
import zipfile
import zlib
from pathlib import Path

from emotion.errors import DatasetError
from emotion.limits import (
    MAX_FOLDER_DEPTH,
    MAX_ZIP_COMPRESSION_RATIO,
    MAX_ZIP_DIRECTORY_BYTES,
    MAX_ZIP_ENTRIES,
    MAX_ZIP_TOTAL_BYTES,
    ZIP_RATIO_MIN_BYTES,
)

JUNK_NAMES = {"__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini"}  # added by macOS and Windows, never data


def extract_zip(zip_path: Path, destination: Path) -> Path:
    """Extract a dataset zip into `destination` after checking every entry; return the folder.

    Nothing is written until every entry has passed; links are never created; any earlier
    extraction at `destination` is replaced, and a failed one is removed.
    """
    _check_zip_end_record(zip_path)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as error:
        raise DatasetError(f"{zip_path.name}: not a readable zip file ({error}).") from error
    with archive:
        entries = archive.infolist()
        _check_zip_directory(zip_path.name, entries)
        destination = destination.resolve()
        planned = [(entry, _safe_member_path(entry, destination)) for entry in entries]
        shutil.rmtree(destination, ignore_errors=True)
        destination.mkdir(parents=True)
        try:
            for entry, target in planned:
                _extract_entry(archive, entry, target)
        except DatasetError:
            shutil.rmtree(destination, ignore_errors=True)
            raise
    return destination


def _check_zip_end_record(zip_path: Path) -> None:
    """Refuse a zip whose directory is too large before `zipfile` reads every record of it into memory."""
    with open(zip_path, "rb") as file:
        end_record = zipfile._EndRecData(file)  # the record ZipFile reads first (zip64 included); None if none
    if end_record is None:
        return  # ZipFile will say what is wrong
    entries, directory_bytes = end_record[zipfile._ECD_ENTRIES_TOTAL], end_record[zipfile._ECD_SIZE]
    if entries > MAX_ZIP_ENTRIES:
        raise DatasetError(f"{zip_path.name}: {entries} entries, more than the {MAX_ZIP_ENTRIES} allowed.")
    if directory_bytes > MAX_ZIP_DIRECTORY_BYTES:
        raise DatasetError(f"{zip_path.name}: the zip's list of files takes {_format_bytes(directory_bytes)}, more "
                           f"than the {_format_bytes(MAX_ZIP_DIRECTORY_BYTES)} allowed (enough for "
                           f"{MAX_ZIP_ENTRIES} files); is this a dataset zip?")


def _check_zip_directory(zip_name: str, entries: list[zipfile.ZipInfo]) -> None:
    """Refuse from the zip's directory alone: too many entries, too large, a bomb, or encrypted."""
    if len(entries) > MAX_ZIP_ENTRIES:
        raise DatasetError(f"{zip_name}: {len(entries)} entries, more than the {MAX_ZIP_ENTRIES} allowed.")
    total = sum(entry.file_size for entry in entries)
    if total > MAX_ZIP_TOTAL_BYTES:
        raise DatasetError(f"{zip_name}: {_format_bytes(total)} uncompressed, more than the "
                           f"{_format_bytes(MAX_ZIP_TOTAL_BYTES)} allowed.")
    for entry in entries:
        if entry.flag_bits & 0x1:
            raise DatasetError(f"{zip_name}: the zip is encrypted; zip the folder again without a password.")
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size > ZIP_RATIO_MIN_BYTES and ratio > MAX_ZIP_COMPRESSION_RATIO:
            raise DatasetError(f"{zip_name}: entry {entry.filename!r} expands {ratio:.0f} times, to "
                               f"{_format_bytes(entry.file_size)}; this looks like a zip bomb.")
    ratio = total / max(sum(entry.compress_size for entry in entries), 1)
    if total > ZIP_RATIO_MIN_BYTES and ratio > MAX_ZIP_COMPRESSION_RATIO:
        raise DatasetError(f"{zip_name}: expands {ratio:.0f} times, to {_format_bytes(total)}; "
                           "this looks like a zip bomb.")


def _safe_member_path(entry: zipfile.ZipInfo, destination: Path) -> Path | None:
    """Where an entry may be written inside `destination`, or None for links and junk."""
    name = entry.filename.replace("\\", "/")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if not parts:  # "./", the dataset folder itself (bsdtar writes it)
        return None
    if name.startswith("/") or ".." in parts or ":" in parts[0]:
        raise DatasetError(f"zip entry {entry.filename!r} points outside the dataset folder; refusing the zip.")
    is_symlink = (entry.external_attr >> 16) & 0o170000 == 0o120000
    if is_symlink or any(part in JUNK_NAMES or part.startswith("._") for part in parts):
        return None
    if len(parts) > MAX_FOLDER_DEPTH + 1:
        raise DatasetError(f"zip entry {entry.filename!r} is nested more than {MAX_FOLDER_DEPTH} folders deep.")
    target = destination.joinpath(*parts).resolve()
    if destination not in target.parents:
        raise DatasetError(f"zip entry {entry.filename!r} points outside the dataset folder; refusing the zip.")
    return target


def _extract_entry(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, target: Path | None) -> None:
    """Write one checked entry; a folder entry makes its folder, so an empty class is still seen."""
    if target is None:
        return
    zip_name = Path(archive.filename).name
    try:
        if entry.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        # Streamed: a large entry never sits in memory whole. zipfile stops at the declared size
        # and checks the CRC, so an entry cannot write more than the directory said it holds.
        with archive.open(entry) as source, open(target, "wb") as sink:
            shutil.copyfileobj(source, sink)
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise DatasetError(f"{zip_name}: entry {entry.filename!r} is damaged ({error}); "
                           "zip the folder again.") from error
    except NotImplementedError as error:
        raise DatasetError(f"{zip_name}: entry {entry.filename!r} uses a compression method that is not supported "
                           f"({error}); zip the folder again with standard (deflate) compression.") from error
    except OSError as error:
        raise DatasetError(f"{zip_name}: entry {entry.filename!r} could not be extracted "
                           f"({error.strerror or error}).") from error


def _format_bytes(count: int) -> str:
    for unit, size in (("GB", 1024**3), ("MB", 1024**2), ("kB", 1024)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} bytes"
