"""The public face of the dataset loaders: ``tfrec.datasets.load(name)``."""

from __future__ import annotations

from pathlib import Path

from tfrec.data import loaders
from tfrec.data.download import archive_type, fetch_archive
from tfrec.data.interactions import Interactions
from tfrec.data.synthetic import synthetic

__all__ = ["download", "load", "locations", "names", "synthetic"]


def names() -> list[str]:
    """The dataset names ``load`` accepts, ``synthetic`` (the embedded default) first."""
    return ["synthetic", *loaders.DATASETS]


def locations() -> dict[str, str]:
    """Where each dataset is looked for (``$TFREC_DATA_DIR/<upstream folder>``)."""
    places = {"synthetic": "(generated in memory, no files)"}
    places.update({name: str(loaders.locate(name)) for name in loaders.DATASETS})
    return places


def load(
    name: str = "synthetic",
    data_dir: str | Path | None = None,
    *,
    download: bool = False,
    **synthetic_options: object,
) -> Interactions:
    """Loads a dataset by name.

    Args:
        name: One of :func:`names`: ``synthetic`` (default), ``movielens-100k``,
            ``movielens-1m``, ``movielens-latest-small``, ``movielens-20m``,
            ``movielens-25m``, ``citeulike-t``, ``goodbooks-10k``.
        data_dir: The folder holding the dataset's upstream files. Default:
            ``$TFREC_DATA_DIR/<upstream folder>`` (``ml-100k``, ``ml-latest-small``, ...),
            else ``~/.tfrec/datasets/<upstream folder>``.
        download: When the files are missing, download the official archive (checksum
            verified, with a progress bar) into that folder first.
        **synthetic_options: Arguments for :func:`synthetic` when ``name="synthetic"``.

    Returns:
        The dataset as :class:`~tfrec.data.Interactions`.

    Raises:
        DataError: unknown name, malformed files; ``DatasetNotFoundError`` (also a
            ``FileNotFoundError``) when files are missing, listing what is expected.

    Example:
        >>> data = tfrec.datasets.load("movielens-100k", data_dir="data/ml-100k")
    """
    if name == "synthetic":
        return synthetic(**synthetic_options)  # type: ignore[arg-type]
    if synthetic_options:
        raise loaders.DataError(f"options {sorted(synthetic_options)} apply only to 'synthetic'")
    return loaders.read(name, data_dir, download=download)


def download(name: str, data_dir: str | Path | None = None, *, url: str | None = None) -> Path:
    """Downloads and unpacks a dataset's official archive (checksum verified).

    Args:
        name: A file-based dataset name.
        data_dir: Target folder (default: where :func:`load` looks).
        url: Another address for the same archive (a mirror); the checksum still applies,
            and so does the archive type of the official one (a mirror cannot turn a zip
            into a tar).

    Returns:
        The folder the files are in.
    """
    spec = loaders.spec(name)
    origin = url or spec.url
    if origin is None:
        raise loaders.DataError(f"dataset {name!r} has no official archive to download")
    return fetch_archive(
        origin,
        loaders.locate(name, data_dir),
        file_hash=spec.file_hash,
        folder=spec.archive_folder,
        kind=archive_type(spec.url or origin),
    )
