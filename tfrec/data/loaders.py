"""Readers for the upstream dataset formats, and where each dataset is looked for.

Each reader takes the folder that holds a dataset's upstream files, exactly as the
upstream archive unpacks them, and returns :class:`~tfrec.data.Interactions` with an
item table (``title``, ``genres``, ``text``) and, where the dataset has one, a user table.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tfrec.data.download import fetch_archive
from tfrec.data.files import read_double_colon, read_lines, read_ratings_frame, read_table, with_text
from tfrec.data.interactions import ITEM, RATING, TIMESTAMP, USER, WEIGHT, Interactions
from tfrec.errors import DataError, DatasetNotFoundError

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip


# === MovieLens 100K ===
def read_movielens_100k(folder: Path) -> Interactions:
    """Reads MovieLens 100K (``u.data``, ``u.item``, ``u.user``, folds ``u1``..``ub``)."""
    folder = Path(folder)
    frame = read_ratings_frame(folder / "u.data", sep="\t")
    items = read_table(
        folder / "u.item",
        sep="|",
        names=["item_id", "title", "release_date", "video_release_date", "url", *ML100K_GENRES],
        encoding="latin-1",
        required=("item_id", ML100K_GENRES[-1]),
    )
    genres = items[list(ML100K_GENRES)]
    bad = ~genres.isin([0, 1, "0", "1"]).all(axis=1).to_numpy()
    if bad.any():
        lines = ", ".join(str(i + 1) for i in np.flatnonzero(bad)[:5])
        raise DataError(f"{folder / 'u.item'}: line(s) {lines}: the 19 genre fields must be 0 or 1")
    flags = genres.astype(int).to_numpy(dtype=bool)
    items["genres"] = ["|".join(np.asarray(ML100K_GENRES)[row]) for row in flags]
    items = with_text(items[["item_id", "title", "genres"]].copy(), "title", "genres")
    users = None
    if (folder / "u.user").exists():
        users = read_table(
            folder / "u.user",
            sep="|",
            names=["user_id", "age", "gender", "occupation", "zip_code"],
            required=("user_id",),
        )
    folds: dict[str, Callable[[], tuple[Interactions, Interactions]]] = {}
    data = Interactions(frame, items=items, users=users, name="movielens-100k", folds=folds)

    def fold(name: str) -> Callable[[], tuple[Interactions, Interactions]]:
        def read() -> tuple[Interactions, Interactions]:
            parts = []
            for part in ("base", "test"):
                path = folder / f"{name}.{part}"
                if not path.exists():
                    raise DatasetNotFoundError(f"fold {name!r} needs {path}, which does not exist")
                parts.append(data.with_frame(read_ratings_frame(path, "\t"), f"movielens-100k/{name}.{part}"))
            return parts[0], parts[1]

        return read

    folds.update({n: fold(n) for n in ("u1", "u2", "u3", "u4", "u5", "ua", "ub")})
    return data


# === MovieLens 1M ===
def read_movielens_1m(folder: Path) -> Interactions:
    """Reads MovieLens 1M (``ratings.dat``, ``movies.dat``, ``users.dat``; ``::``, latin-1)."""
    folder = Path(folder)
    frame = read_double_colon(folder / "ratings.dat", [USER, ITEM, RATING, TIMESTAMP])
    for column in (RATING, TIMESTAMP):
        empty = frame[column].isna().to_numpy()
        if empty.any():
            lines = ", ".join(str(i + 1) for i in np.flatnonzero(empty)[:5])
            raise DataError(f"{folder / 'ratings.dat'}: line(s) {lines} lack field {column!r}")
    items = read_double_colon(folder / "movies.dat", ["item_id", "title", "genres"])
    items = with_text(items, "title", "genres")
    users = None
    if (folder / "users.dat").exists():
        users = read_double_colon(
            folder / "users.dat", ["user_id", "gender", "age", "occupation", "zip_code"]
        )
    return Interactions(frame, items=items, users=users, name="movielens-1m")


# === MovieLens latest / 20M / 25M (CSV) ===
def _read_movielens_csv(folder: Path, name: str) -> Interactions:
    folder = Path(folder)
    names = ["userId", "movieId", "rating", "timestamp"]
    frame = read_table(folder / "ratings.csv", sep=",", names=names, header=True, required=tuple(names))
    frame = frame.rename(columns={"userId": USER, "movieId": ITEM})
    items = read_table(
        folder / "movies.csv", sep=",", names=["movieId", "title", "genres"], header=True,
        required=("movieId",),
    ).rename(columns={"movieId": "item_id"})  # fmt: skip
    items["genres"] = items["genres"].replace("(no genres listed)", "")
    parts = ["title", "genres"]
    tags_path = folder / "tags.csv"
    if tags_path.exists():
        tags = read_table(tags_path, sep=",", names=["userId", "movieId", "tag", "timestamp"], header=True)
        tags = tags.dropna(subset=["tag"])
        tags["tag"] = tags["tag"].astype(str).str.lower().str.strip()
        joined = tags.drop_duplicates(["movieId", "tag"]).groupby("movieId")["tag"].agg(" ".join)
        items["tags"] = items["item_id"].map(joined).fillna("")
        parts.append("tags")
    items = with_text(items, *parts)
    return Interactions(frame, items=items, name=name)


def read_movielens_latest_small(folder: Path) -> Interactions:
    """Reads MovieLens latest-small (``ratings.csv``, ``movies.csv``, ``tags.csv``)."""
    return _read_movielens_csv(folder, "movielens-latest-small")


def read_movielens_20m(folder: Path) -> Interactions:
    """Reads MovieLens 20M (same CSV format as latest-small)."""
    return _read_movielens_csv(folder, "movielens-20m")


def read_movielens_25m(folder: Path) -> Interactions:
    """Reads MovieLens 25M (same CSV format as latest-small)."""
    return _read_movielens_csv(folder, "movielens-25m")


# === CiteULike-t ===
def _read_user_lists(path: Path) -> pd.DataFrame:
    """Reads ``N item item ...`` lines: line number = user id, empty line = no items."""
    users, items = [], []
    for number, line in enumerate(read_lines(path)):
        fields = line.split()
        if not fields:
            continue
        try:
            count, ids = int(fields[0]), [int(f) for f in fields[1:]]
        except ValueError as err:
            raise DataError(f"{path}: line {number + 1} is not 'N item item ...': {err}") from err
        if count != len(ids):
            raise DataError(f"{path}: line {number + 1} announces {count} items but lists {len(ids)}")
        users.extend([number] * len(ids))
        items.extend(ids)
    if not users:
        raise DataError(f"{path}: no user-item pairs")
    return pd.DataFrame({USER: np.asarray(users), ITEM: np.asarray(items)})


def read_citeulike_t(folder: Path) -> Interactions:
    """Reads CiteULike-t: ``users.dat`` pairs, article text from ``mult.dat`` + ``vocabulary.dat``.

    The article text is the bag of words spelled out (each word repeated by its count),
    which is all the public release holds of the articles. Folds ``P1_1`` ... ``P10_3``
    read ``splits/P{n}/{train,test}_P{n}_{k}.dat``.
    """
    folder = Path(folder)
    frame = _read_user_lists(folder / "users.dat")
    vocabulary = np.asarray(read_lines(folder / "vocabulary.dat"), dtype=object)
    texts = []
    for number, line in enumerate(read_lines(folder / "mult.dat")):
        fields = line.split()
        words = []
        for pair in fields[1:]:
            word, _, count = pair.partition(":")
            try:
                words.extend([vocabulary[int(word)]] * int(count))
            except (ValueError, IndexError) as err:
                raise DataError(
                    f"{folder / 'mult.dat'}: line {number + 1} has a bad 'word:count' pair "
                    f"{pair!r} ({len(vocabulary)} words in vocabulary.dat)"
                ) from err
        texts.append(" ".join(words))
    items = pd.DataFrame({"item_id": np.arange(len(texts)), "title": "", "genres": "", "text": texts})
    folds: dict[str, Callable[[], tuple[Interactions, Interactions]]] = {}
    data = Interactions(frame, items=items, name="citeulike-t", folds=folds)

    def fold(p: str, k: str) -> Callable[[], tuple[Interactions, Interactions]]:
        def read() -> tuple[Interactions, Interactions]:
            base = folder / "splits" / f"P{p}"
            train = data.with_frame(
                _read_user_lists(base / f"train_P{p}_{k}.dat"), f"citeulike-t/P{p}_{k}.train"
            )
            test = data.with_frame(
                _read_user_lists(base / f"test_P{p}_{k}.dat"), f"citeulike-t/P{p}_{k}.test"
            )
            return train, test

        return read

    folds.update({f"P{p}_{k}": fold(p, k) for p in ("1", "3", "10") for k in ("1", "2", "3")})
    return data


# === goodbooks-10k ===
def read_goodbooks_10k(folder: Path) -> Interactions:
    """Reads goodbooks-10k (``ratings.csv``, ``books.csv``, optional ``book_tags.csv`` + ``tags.csv``).

    The first release of ``ratings.csv`` held repeated (user, book) rows; the latest
    rating of each pair is kept.
    """
    folder = Path(folder)
    names = ["user_id", "book_id", "rating"]
    frame = read_table(folder / "ratings.csv", sep=",", names=names, header=True, required=tuple(names))
    frame = frame[names].rename(columns={"book_id": ITEM})
    frame = frame.drop_duplicates([USER, ITEM], keep="last")
    books = read_table(
        folder / "books.csv", sep=",", names=["book_id", "goodreads_book_id", "authors", "title"],
        header=True, required=("book_id",),
    )  # fmt: skip
    items = books[["book_id", "title", "authors"]].rename(columns={"book_id": "item_id"})
    items["genres"] = ""
    parts = ["title", "authors"]
    if (folder / "book_tags.csv").exists() and (folder / "tags.csv").exists():
        book_tags = read_table(
            folder / "book_tags.csv", sep=",", names=["goodreads_book_id", "tag_id", "count"], header=True
        )
        tags = read_table(folder / "tags.csv", sep=",", names=["tag_id", "tag_name"], header=True)
        named = book_tags.merge(tags, on="tag_id").sort_values("count", ascending=False)
        top = named.groupby("goodreads_book_id").head(10).groupby("goodreads_book_id")["tag_name"]
        joined = top.agg(lambda s: " ".join(str(t).replace("-", " ") for t in s))
        items["tags"] = books["goodreads_book_id"].map(joined).fillna("").to_numpy()
        parts.append("tags")
    items["authors"] = items["authors"].fillna("").str.replace(",", " ", regex=False)
    items = with_text(items, *parts)
    return Interactions(frame, items=items, name="goodbooks-10k")


# === Last.fm-2k with Spotify audio features ===
# The numeric fields of Spotify's audio-features payload.
AUDIO_FEATURES = (
    "danceability", "energy", "key", "loudness", "mode", "speechiness", "acousticness",
    "instrumentalness", "liveness", "valence", "tempo", "duration_ms", "time_signature",
)  # fmt: skip
HETREC = "hetrec2011-lastfm-2k"
SPOTIFY = "spotify_playlists_audio_features"


def artist_key(name: str) -> str:
    """The artist-name join key: NFKD, combining marks removed, casefolded, trimmed,
    whitespace collapsed, a leading "the " dropped."""
    text = "".join(c for c in unicodedata.normalize("NFKD", str(name)) if not unicodedata.combining(c))
    text = re.sub(r"\s+", " ", text.casefold().strip())
    return text[4:] if text.startswith("the ") else text


def audio_profiles(tracks: pd.DataFrame) -> pd.DataFrame:
    """Per artist key, the mean and standard deviation (population) of each audio feature
    over the artist's tracks, and how many tracks there are.

    Args:
        tracks: Spotify audio-features rows with ``unique_track`` = "artist - title".

    Returns:
        A frame indexed by :func:`artist_key` with columns ``audio_<feature>``,
        ``audio_<feature>_std`` and ``tracks_with_audio``.
    """
    tracks = tracks.drop_duplicates("unique_track")
    artist = tracks["unique_track"].astype(str).str.split(" - ", n=1).str[0]
    values = tracks[list(AUDIO_FEATURES)].apply(pd.to_numeric, errors="coerce").astype(np.float64)
    values["key_"] = artist.map(artist_key).to_numpy()
    grouped = values.dropna().groupby("key_")
    mean = grouped.mean().add_prefix("audio_")
    spread = grouped.std(ddof=0).add_prefix("audio_").add_suffix("_std")
    out = pd.concat([mean, spread], axis=1)
    out["tracks_with_audio"] = grouped.size()
    return out


def read_lastfm_2k_audio(folder: Path) -> Interactions:
    """Reads HetRec 2011 Last.fm-2k joined by artist name with Spotify audio features.

    ``hetrec2011-lastfm-2k/user_artists.dat`` (tab-separated, CRLF) gives the
    interactions, the play count as ``weight``; ``artists.dat`` the item table (``title``
    = the artist's name); ``spotify_playlists_audio_features/audio_features_raw.csv`` the
    tracks, whose artist (``unique_track`` before the first " - ") joins an artist when
    :func:`artist_key` of both names agree. An artist's audio profile is the mean and
    spread of its tracks' 13 features (:func:`audio_profiles`, columns ``audio_*``);
    ``has_audio`` flags the artists that have one (the others keep NaN features and are
    usable by id-only models). No timestamps: the upstream file has none for plays.
    """
    folder = Path(folder)
    names = ["userID", "artistID", "weight"]
    plays = read_table(
        folder / HETREC / "user_artists.dat", sep="\t", names=names, header=True, required=tuple(names)
    )
    frame = pd.DataFrame({USER: plays["userID"], ITEM: plays["artistID"], WEIGHT: plays["weight"]})
    artists = read_table(
        folder / HETREC / "artists.dat", sep="\t", names=["id", "name", "url", "pictureURL"], header=True,
        required=("id",), quoted=False,
    )  # fmt: skip
    tracks = read_table(
        folder / SPOTIFY / "audio_features_raw.csv", sep=",", names=[*AUDIO_FEATURES, "unique_track"],
        header=True, required=("unique_track",),
    )  # fmt: skip
    profiles = audio_profiles(tracks)
    items = pd.DataFrame({"item_id": artists["id"], "title": artists["name"].fillna("").astype(str)})
    keys = items["title"].map(artist_key)
    joined = profiles.reindex(keys.to_numpy())
    joined.index = items.index
    items = pd.concat([items, joined], axis=1)
    items["has_audio"] = joined["tracks_with_audio"].notna().to_numpy()
    items["tracks_with_audio"] = joined["tracks_with_audio"].fillna(0).astype(np.int64).to_numpy()
    items["text"] = items["title"]
    return Interactions(frame, items=items, name="lastfm-2k-audio")


# === Registry ===
@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset comes from and how to read it.

    Attributes:
        name: The public name (``movielens-100k``).
        folder: The upstream folder name, looked for under ``TFREC_DATA_DIR``.
        files: Files that must be present.
        reader: Reads the folder into Interactions.
        url: The official archive, or None where there is none to download.
        file_hash: md5/sha256 of the archive, or None where upstream publishes none.
        archive_folder: The top-level folder inside the archive.
        description: One line for ``tfrec datasets``.
    """

    name: str
    folder: str
    files: tuple[str, ...]
    reader: Callable[[Path], Interactions]
    url: str | None
    file_hash: str | None
    archive_folder: str | None
    description: str


_GROUPLENS = "https://files.grouplens.org/datasets/movielens/"
DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("movielens-100k", "ml-100k", ("u.data", "u.item"), read_movielens_100k,
                    _GROUPLENS + "ml-100k.zip", "0e33842e24a9c977be4e0107933c0723", "ml-100k",
                    "MovieLens 100K: 100,000 ratings 1-5, 943 users, 1,682 movies, folds u1..u5/ua/ub"),
        DatasetSpec("movielens-1m", "ml-1m", ("ratings.dat", "movies.dat"), read_movielens_1m,
                    _GROUPLENS + "ml-1m.zip", "c4d9eecfca2ab87c1945afe126590906", "ml-1m",
                    "MovieLens 1M: 1,000,209 ratings, 6,040 users, 3,706 rated movies ('::' files)"),
        # latest-small is a development release that GroupLens regenerates: no fixed hash.
        DatasetSpec("movielens-latest-small", "ml-latest-small", ("ratings.csv", "movies.csv"),
                    read_movielens_latest_small, _GROUPLENS + "ml-latest-small.zip", None,
                    "ml-latest-small", "MovieLens latest-small: ~100K ratings 0.5-5, titles, genres, tags"),
        DatasetSpec("movielens-20m", "ml-20m", ("ratings.csv", "movies.csv"), read_movielens_20m,
                    _GROUPLENS + "ml-20m.zip", "cd245b17a1ae2cc31bb14903e1204af3", "ml-20m",
                    "MovieLens 20M: 20,000,263 ratings, 138,493 users, 27,278 movies"),
        DatasetSpec("movielens-25m", "ml-25m", ("ratings.csv", "movies.csv"), read_movielens_25m,
                    _GROUPLENS + "ml-25m.zip", "6b51fb2759a8657d3bfcbfc42b592ada", "ml-25m",
                    "MovieLens 25M: 25,000,095 ratings, 162,541 users, 62,423 movies"),
        # CiteULike-t has no official archive; its files come from the CDL/CTR releases.
        DatasetSpec("citeulike-t", "citeulike-t", ("users.dat", "mult.dat", "vocabulary.dat"),
                    read_citeulike_t, None, None, None,
                    "CiteULike-t: 134,860 implicit user-article pairs, article bag-of-words text"),
        DatasetSpec("goodbooks-10k", "goodbooks-10k", ("ratings.csv", "books.csv"), read_goodbooks_10k,
                    "https://github.com/zygmuntz/goodbooks-10k/releases/download/v1.0/goodbooks-10k.zip",
                    None, None, "goodbooks-10k: ~6M ratings 1-5 of 10,000 books, titles, authors, tags"),
        # Two public sources joined by the loader; neither has an official archive here.
        DatasetSpec("lastfm-2k-audio", "lastfm-2k-audio",
                    (f"{HETREC}/user_artists.dat", f"{HETREC}/artists.dat", f"{SPOTIFY}/audio_features_raw.csv"),
                    read_lastfm_2k_audio, None, None, None,
                    "Last.fm-2k: 92,834 user-artist play counts (weight), 1,892 users, 17,632 artists; "
                    "Spotify audio features (audio_*) for 1,938 artists"),
    )
}  # fmt: skip


def default_root() -> Path:
    """The root folder datasets are looked for in: ``$TFREC_DATA_DIR`` or ``~/.tfrec/datasets``."""
    return Path(os.environ.get("TFREC_DATA_DIR") or Path.home() / ".tfrec" / "datasets")


def spec(name: str) -> DatasetSpec:
    """Returns the spec of a file-based dataset, or raises a ValueError listing names."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; available: {['synthetic', *DATASETS]}")
    return DATASETS[name]


def locate(name: str, data_dir: str | Path | None = None) -> Path:
    """The folder a dataset is read from: ``data_dir`` or ``<root>/<upstream folder>``."""
    return Path(data_dir) if data_dir is not None else default_root() / spec(name).folder


def read(name: str, data_dir: str | Path | None = None, *, download: bool = False) -> Interactions:
    """Reads a file-based dataset, downloading it first when asked and missing.

    Raises:
        DatasetNotFoundError: files missing (and ``download`` is False or impossible);
            the message lists the expected files and how to get them.
        DataError: the files are malformed, or the download failed.
    """
    dataset = spec(name)
    folder = locate(name, data_dir)
    how = (
        f"download {dataset.url} and unpack it there, or pass download=True (CLI: --download)"
        if dataset.url
        else "no official archive exists; copy the files from the dataset's published release"
    )
    guidance = (
        f"pass data_dir=/path/to/{dataset.folder} (CLI: --data-dir) or set TFREC_DATA_DIR "
        f"to a folder holding {dataset.folder}/; or {how}"
    )
    if data_dir is not None and not download and not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise DatasetNotFoundError(
            f"dataset {name!r}: the data folder {folder} {what} (expects {list(dataset.files)} in it); {guidance}"
        )
    missing = [f for f in dataset.files if not (folder / f).is_file()]
    if missing and download and dataset.url:
        fetch_archive(dataset.url, folder, file_hash=dataset.file_hash, folder=dataset.archive_folder)
        missing = [f for f in dataset.files if not (folder / f).is_file()]
    if missing:
        lacks = (
            f"has none of its files {missing}"
            if len(missing) == len(dataset.files)
            else f"lacks {missing} of its files {list(dataset.files)}"
        )
        raise DatasetNotFoundError(f"dataset {name!r}: {folder} {lacks}; {guidance}")
    try:
        return dataset.reader(folder)
    except DataError as err:
        if str(folder) in str(err):
            raise
        # Validation errors name columns and rows; say which dataset folder they came from.
        raise DataError(f"{folder}: {err}") from err
