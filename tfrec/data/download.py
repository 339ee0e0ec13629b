"""Downloading upstream dataset archives: checksum, progress, and extraction that stays put.

An archive from the network is untrusted (two datasets have no checksum, and a mirror
can be named), so extraction is ours rather than ``get_file(extract=True)``: only the
archive type the dataset names is opened, every member is resolved against the
extraction folder, absolute names, ``..`` and links are refused, and files are written
by streaming their bytes (no link is ever followed), and the bytes and members written
are bounded (:data:`MAX_EXPANSION` times the archive, at least :data:`MIN_BUDGET`;
:data:`MAX_MEMBERS`), so a small archive cannot fill the disk. Files then move into the target
folder only where nothing is there already: tfrec never deletes or replaces what it did
not create.
"""

from __future__ import annotations

import filecmp
import hashlib
import http.client
import os
import stat
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from tfrec.errors import DataError
from tfrec.progress import interactive

ARCHIVE_TYPES = ("zip", "tar")
# What an archive may unpack to: real datasets expand 3-10x, a zip bomb 1000x.
MAX_EXPANSION = 50
MIN_BUDGET = 64 << 20
MAX_MEMBERS = 100_000


class _Budget:
    """Bytes and members an extraction may still write; refuses past either, in one line."""

    def __init__(self, archive: Path, label: str) -> None:
        size = archive.stat().st_size
        self.limit = max(MIN_BUDGET, MAX_EXPANSION * size)
        self.left, self.members, self.label, self.size = self.limit, 0, label, size

    def member(self) -> None:
        self.members += 1
        if self.members > MAX_MEMBERS:
            raise DataError(f"{self.label}: more than {MAX_MEMBERS:,} members; refused")

    def spend(self, count: int) -> None:
        self.left -= count
        if self.left < 0:
            raise DataError(
                f"{self.label} unpacks to more than {self.limit:,} bytes ({MAX_EXPANSION}x its {self.size:,}, "
                f"at least {MIN_BUDGET:,}); refused"
            )


def archive_type(url: str) -> str:
    """The archive type a URL names by its suffix: ``zip`` or ``tar`` (.tar, .tar.gz, .tgz...)."""
    name = url.rstrip("/").rsplit("/", 1)[-1].lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        return "tar"
    raise DataError(f"{url}: cannot tell the archive type from the name (expected .zip or .tar[.gz])")


def _transfer(url: str, path: Path, file_hash: str | None, timeout: float = 60) -> None:
    """Streams ``url`` into ``path``, with a progress bar when interactive; checks the digest."""
    digest = hashlib.new("sha256" if file_hash and len(file_hash) == 64 else "md5")
    done = total = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, path.open("wb") as out:  # noqa: S310
            total = int(response.headers.get("Content-Length") or 0)
            progress = None
            if interactive() and total > 0:
                from tfrec._keras import keras

                print(f"downloading {url}")
                progress = keras.utils.Progbar(total, unit_name="B")
            done = 0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress.update(done)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
        raise DataError(f"download of {url} failed: {err}") from err
    if done == 0:
        raise DataError(f"download of {url} failed: the server sent an empty file")
    if total and done < total:
        raise DataError(f"download of {url} was cut short: {done:,} of {total:,} bytes")
    if file_hash and digest.hexdigest() != file_hash.lower():
        raise DataError(
            f"download of {url} failed its checksum check: {digest.name} {digest.hexdigest()}, "
            f"expected {file_hash}"
        )


def _member_path(root: Path, name: str, archive: str) -> Path:
    """Where a member named ``name`` lands under ``root``; refuses any name that leaves it."""
    if not name or "\x00" in name:
        raise DataError(f"{archive}: member with an empty or NUL name refused")
    posix = name.replace("\\", "/")
    parts = PurePosixPath(posix).parts
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        raise DataError(f"{archive}: member {name!r} has an absolute path; refused")
    if ".." in parts:
        raise DataError(f"{archive}: member {name!r} climbs out of the folder with '..'; refused")
    destination = (root / PurePosixPath(posix)).resolve()
    if not destination.is_relative_to(root.resolve()):
        raise DataError(f"{archive}: member {name!r} resolves outside the extraction folder; refused")
    return destination


def _write_stream(source, destination: Path, budget: _Budget) -> None:
    budget.member()
    destination.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL + O_NOFOLLOW: a name that is already there (a link planted by an earlier
    # member, or a duplicate) is never written through.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(destination, flags, 0o644)
    except FileExistsError as err:
        raise DataError(f"archive member {destination.name!r} appears twice; refused") from err
    with os.fdopen(fd, "wb") as out:
        # Counted as written (a zip header's sizes can lie), stopped once over the budget.
        while block := source.read(1 << 20):
            budget.spend(len(block))
            out.write(block)


def _extract_zip(archive: Path, root: Path, label: str) -> None:
    budget = _Budget(archive, label)
    if not zipfile.is_zipfile(archive):
        raise DataError(f"{label} is not a zip archive (corrupt, truncated or another format)")
    try:
        with zipfile.ZipFile(archive) as bundle:
            for info in bundle.infolist():
                destination = _member_path(root, info.filename, label)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise DataError(f"{label}: member {info.filename!r} is a symbolic link; refused")
                if info.is_dir():
                    budget.member()
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                with bundle.open(info) as source:
                    _write_stream(source, destination, budget)
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as err:
        raise DataError(f"{label} is a corrupt or truncated zip archive: {err}") from err


def _extract_tar(archive: Path, root: Path, label: str) -> None:
    budget = _Budget(archive, label)
    try:
        with tarfile.open(archive, "r:*") as bundle:
            for member in bundle:
                destination = _member_path(root, member.name, label)
                if member.isdir():
                    budget.member()
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                if not member.isfile():
                    kind = "link" if member.issym() or member.islnk() else "special file"
                    raise DataError(f"{label}: member {member.name!r} is a {kind}; refused")
                source = bundle.extractfile(member)
                assert source is not None  # a regular file always has a stream
                with source:
                    _write_stream(source, destination, budget)
    except (tarfile.TarError, EOFError, OSError) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"{label} is not a readable tar archive (corrupt or truncated): {err}") from err


def extract(archive: Path, root: Path, kind: str, label: str | None = None) -> None:
    """Extracts ``archive`` (of type ``kind``: zip or tar) into the folder ``root``.

    Raises:
        DataError: the file is not that type of archive, is truncated, has a member
            that would land outside ``root`` (absolute, ``..``, a link or special file), or
            unpacks past its budget (:data:`MAX_EXPANSION` x its size, :data:`MAX_MEMBERS`).
    """
    if kind not in ARCHIVE_TYPES:
        raise DataError(f"unknown archive type {kind!r}; expected one of {list(ARCHIVE_TYPES)}")
    label = label or str(archive)
    if kind == "zip":
        _extract_zip(archive, root, label)
    else:
        if zipfile.is_zipfile(archive) or not tarfile.is_tarfile(archive):
            raise DataError(f"{label} is not a tar archive (corrupt, truncated or another format)")
        _extract_tar(archive, root, label)


def _place(source: Path, target: Path, url: str) -> None:
    """Moves every file under ``source`` into ``target``; never replaces what is there.

    A file already present with the same bytes is left as it is; one with other bytes
    (or a folder where a file goes) stops the whole move before anything is written.
    """
    files = sorted(p for p in source.rglob("*") if p.is_file())
    conflicts = []
    for path in files:
        destination = target / path.relative_to(source)
        if destination.is_symlink() or (destination.exists() and not (
            destination.is_file() and filecmp.cmp(path, destination, shallow=False)
        )):  # fmt: skip
            conflicts.append(str(path.relative_to(source)))
    if conflicts:
        raise DataError(
            f"{target} already holds {conflicts[:5]}{' ...' if len(conflicts) > 5 else ''} with other "
            f"contents than {url}; tfrec does not replace files it did not create: move them away or "
            "choose another data_dir"
        )
    target.mkdir(parents=True, exist_ok=True)
    for path in files:
        destination = target / path.relative_to(source)
        if destination.exists():
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, destination)


def fetch_archive(
    url: str,
    target: Path,
    *,
    file_hash: str | None = None,
    folder: str | None = None,
    kind: str | None = None,
) -> Path:
    """Downloads an archive and extracts its files into ``target``.

    The transfer shows a progress bar when interactive (a terminal or a notebook) and
    verifies ``file_hash`` (md5 or sha256, chosen by its length); extraction is
    :func:`extract`. Everything lands in a temporary folder beside ``target`` first, so
    an interrupted, corrupt or hostile download leaves nothing behind in ``target``.

    Args:
        url: Where the archive lives (http, https or file URLs).
        target: The folder that receives the files.
        file_hash: Expected md5 or sha256 hex digest of the archive, or None to skip.
        folder: The top-level folder inside the archive whose files go into ``target``
            (e.g. ``"ml-100k"``); None takes the archive's top level as it is.
        kind: The archive type (``zip`` or ``tar``); default: from the URL's suffix. A
            file of another type is refused, whatever its content.

    Returns:
        ``target``.

    Raises:
        DataError: the download failed, the checksum did not match, the archive is not
            of the named type or is corrupt, a member would escape the folder, the
            archive did not contain ``folder``, or ``target`` holds other files of the
            same names.
    """
    kind = kind or archive_type(url)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".tfrec-download-") as tmp:
        download = Path(tmp) / "download"
        unpacked = Path(tmp) / "unpacked"
        download.mkdir()
        unpacked.mkdir()
        archive = download / f"archive.{kind}"
        _transfer(url, archive, file_hash)
        extract(archive, unpacked, kind, label=f"archive {url}")
        source = unpacked / folder if folder else unpacked
        if not source.is_dir() or source.is_symlink():
            found = sorted(p.name for p in unpacked.iterdir())
            raise DataError(f"archive {url} has no folder {folder!r} (found {found})")
        _place(source, target, url)
    return target
