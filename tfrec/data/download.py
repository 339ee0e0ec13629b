"""Downloading upstream dataset archives, with checksum verification and progress."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tfrec.errors import DataError


def fetch_archive(url: str, target: Path, *, file_hash: str | None = None, folder: str | None = None) -> Path:
    """Downloads an archive and extracts its files into ``target``.

    Uses ``tf_keras.utils.get_file``, which shows a progress bar, verifies ``file_hash``
    (md5 or sha256, chosen by its length) and extracts zip/tar archives. The download
    lands in a temporary folder beside ``target`` first, so an interrupted or corrupt
    download leaves nothing behind in ``target``.

    Args:
        url: Where the archive lives (http, https or file URLs).
        target: The folder that receives the files.
        file_hash: Expected md5 or sha256 hex digest of the archive, or None to skip.
        folder: The top-level folder inside the archive whose files go into ``target``
            (e.g. ``"ml-100k"``); None takes the archive's top level as it is.

    Returns:
        ``target``.

    Raises:
        DataError: the download failed, the checksum did not match, or the archive did
            not contain ``folder``.
    """
    from tfrec._keras import keras

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".tfrec-download-") as tmp:
        name = url.rstrip("/").rsplit("/", 1)[-1] or "archive"
        try:
            keras.utils.get_file(name, url, file_hash=file_hash, cache_dir=tmp, cache_subdir="", extract=True)
        except ValueError as err:  # get_file raises it on a checksum mismatch
            raise DataError(f"download of {url} failed its checksum check: {err}") from err
        except Exception as err:  # noqa: BLE001 - network errors come in many types
            raise DataError(f"download of {url} failed: {err}") from err
        source = Path(tmp) / folder if folder else Path(tmp)
        if not source.is_dir():
            found = sorted(p.name for p in Path(tmp).iterdir() if p.name != name)
            raise DataError(f"archive {url} has no folder {folder!r} (found {found})")
        target.mkdir(exist_ok=True)
        for entry in source.iterdir():
            if entry.name == name and source == Path(tmp):
                continue
            destination = target / entry.name
            if destination.is_dir():
                shutil.rmtree(destination)
            shutil.move(str(entry), str(destination))
    return target
