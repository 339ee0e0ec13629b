"""Interaction logs larger than memory: sharded Parquet / CSV files read as a stream.

Nothing here holds the whole log. :func:`scan` makes one pass over the shards, chunk by
chunk, and keeps only per-id counts (the vocabularies, most frequent first, written to
files that ``StringLookup`` could read) and the rating statistics; :func:`stream` is the
``tf.data`` pipeline a model trains on (files interleaved, a shuffle buffer, batches).

The train/test split is a hash of the (user, item) pair, ``to_hash_bucket_fast(user
"\\x1f" item, 10000) < fraction * 10000``: the same TensorFlow op decides it in the scan
and in the pipeline, so both passes agree without storing anything, and the same pair
always lands on the same side (a documented preprocessing step could write the two parts
as separate shards instead; pass ``test_fraction=0`` then).
"""

from __future__ import annotations

import csv
import glob
import json
import os
import socket
import stat
import unicodedata
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from tfrec._keras import tf
from tfrec.data.interactions import ITEM, MAX_ID_CHARS, RATING, USER, WEIGHT
from tfrec.data.model_data import ModelData, RatingStats
from tfrec.errors import DataError

FORMATS = {".parquet": "parquet", ".csv": "csv"}
FIELDS = {"user": USER, "item": ITEM, "rating": RATING, "weight": WEIGHT}
HASH_BUCKETS = 10_000
CHUNK_ROWS = 262_144


@dataclass(frozen=True)
class Shards:
    """The files of an interaction log and which of their columns hold what.

    Attributes:
        pattern: The glob the files came from.
        files: The matching files, sorted.
        format: ``parquet`` or ``csv`` (from the extension; one format per log).
        columns: tfrec field (``user_id``, ``item_id``, optional ``rating``, ``weight``)
            -> the files' column name.
    """

    pattern: str
    files: tuple[str, ...]
    format: str
    columns: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, pattern: str, columns: Mapping[str, str] | str | None = None) -> Shards:
        """The shards a glob matches, with a column mapping (``{"user": "uid", ...}`` or
        the CLI form ``"user=uid,item=song,weight=plays"``; default: columns named
        ``user_id`` and ``item_id``).

        Raises:
            DataError: no file matches, mixed or unknown extensions, a bad mapping, or a
                shard that lacks a mapped column or whose schema differs from the first's.
        """
        files = tuple(sorted(glob.glob(str(pattern))))
        if not files:
            raise DataError(f"--data {pattern!r} matches no file")
        for path in files:
            _check_regular(path)
        kinds = {Path(f).suffix.lower() for f in files}
        if len(kinds) != 1 or next(iter(kinds)) not in FORMATS:
            raise DataError(f"{pattern!r}: shards must all be .parquet or all be .csv, got {sorted(kinds)}")
        shards = cls(str(pattern), files, FORMATS[kinds.pop()], _mapping(columns))
        shards.check_schemas()
        return shards

    def check_schemas(self) -> None:
        """Every shard has the mapped columns, with the first shard's schema."""
        first = None
        for path in self.files:
            names, types = _schema(path, self.format)
            missing = [c for c in self.columns.values() if c not in names]
            if missing:
                raise DataError(f"{path}: no column {missing[0]!r} (mapped by --columns); it has {names}")
            mapped = {c: types.get(c) for c in self.columns.values()}
            if first is None:
                first = (path, mapped)
            elif mapped != first[1]:
                raise DataError(f"{path}: its columns {mapped} differ from {first[0]}'s {first[1]}")

    def chunks(self) -> Iterator[tuple[str, pd.DataFrame]]:
        """``(file, frame)`` chunks of at most ``CHUNK_ROWS`` rows with tfrec's column names,
        ids as strings; a bad value raises naming the file and row."""
        rename = {source: name for name, source in self.columns.items()}
        for path in self.files:
            start = 0
            for frame in _read_chunks(path, self.format, list(self.columns.values())):
                frame = frame.rename(columns=rename)
                _check_chunk(frame, path, start, header=self.format == "csv")
                start += len(frame)
                yield path, frame


def _check_regular(path: str) -> None:
    """A shard is a regular file named directly: a link, FIFO, device or folder is refused
    before anything reads it (a FIFO would block the reader; a link's target is not the
    file the user named)."""
    try:
        mode = os.lstat(path).st_mode
    except OSError as err:
        raise DataError(f"{path}: cannot read the shard: {err.strerror or err}") from err
    if stat.S_ISLNK(mode):
        raise DataError(f"{path}: is a symbolic link; name the file it points to")
    if not stat.S_ISREG(mode):
        raise DataError(f"{path}: not a regular file (a shard must be a .csv or .parquet file)")


def _mapping(columns: Mapping[str, str] | str | None) -> dict[str, str]:
    if columns is None:
        return {USER: USER, ITEM: ITEM}
    if isinstance(columns, str):
        pairs = [part.split("=", 1) for part in columns.split(",") if part.strip()]
        if any(len(p) != 2 or not p[1].strip() for p in pairs):
            raise DataError(f"--columns {columns!r}: expected FIELD=COLUMN pairs, e.g. user=uid,item=song")
        columns = {k.strip(): v.strip() for k, v in pairs}
    unknown = [k for k in columns if k not in FIELDS and k not in FIELDS.values()]
    if unknown:
        raise DataError(f"--columns: unknown field {unknown[0]!r}; fields are {list(FIELDS)}")
    out = {FIELDS.get(k, k): v for k, v in columns.items()}
    for needed in (USER, ITEM):
        out.setdefault(needed, needed)
    return out


def _schema(path: str, fmt: str) -> tuple[list[str], dict[str, str]]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            schema = pq.read_schema(path)
        except Exception as err:  # noqa: BLE001 - pyarrow raises several types for a bad file
            raise DataError(f"{path}: not a readable Parquet file ({err})") from err
        return list(schema.names), {n: str(t) for n, t in zip(schema.names, schema.types)}
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:  # a byte-order mark is not a name
            header = next(csv.reader(handle), [])
    except (UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path}: cannot read the CSV header ({err})") from err
    return header, {n: "csv" for n in header}


def _read_chunks(path: str, fmt: str, columns: list[str]) -> Iterator[pd.DataFrame]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=CHUNK_ROWS, columns=columns):
                yield batch.to_pandas()
        except OSError as err:
            raise DataError(f"{path}: the Parquet file is corrupt or truncated ({err})") from err
        return
    try:
        yield from pd.read_csv(path, usecols=columns, chunksize=CHUNK_ROWS, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise DataError(f"{path}: cannot read as CSV ({err})") from err


def _check_chunk(frame: pd.DataFrame, path: str, start: int, header: bool) -> None:
    """Ids become strings; ratings and weights numbers; a missing or bad value raises."""
    where = (
        (lambda rows: f"{path}: line {start + rows[0] + 2}")
        if header
        else (lambda rows: f"{path}: row {start + rows[0]}")
    )
    for name in (USER, ITEM):
        values = frame[name]
        lengths = values.astype(str).str.len().to_numpy()
        bad = values.isna().to_numpy() | (lengths == 0)
        if bad.any():
            raise DataError(f"{where(np.flatnonzero(bad))} has no {name}")
        if (lengths > MAX_ID_CHARS).any():
            raise DataError(
                f"{where(np.flatnonzero(lengths > MAX_ID_CHARS))}: {name} longer than {MAX_ID_CHARS} characters "
                f"({int(lengths.max()):,})"
            )
        values = values.astype(str)
        breaks = values.str.contains("[\r\n]", regex=True).to_numpy()
        if breaks.any():
            raise DataError(f"{where(np.flatnonzero(breaks))}: {name} holds a line break (a quoted newline)")
        not_ascii = ~values.str.isascii().to_numpy()
        if not_ascii.any():
            composed = values[not_ascii].map(lambda v: unicodedata.is_normalized("NFC", v)).to_numpy()
            if not composed.all():
                raise DataError(
                    f"{where(np.flatnonzero(not_ascii)[~composed])}: {name} {values[not_ascii][~composed].iloc[0]!r} "
                    "is not in Unicode NFC form (tfrec's ids are; normalise the shards)"
                )
        frame[name] = values
    for name in (RATING, WEIGHT):
        if name in frame.columns:
            numbers = pd.to_numeric(frame[name], errors="coerce").to_numpy(np.float64)
            bad = ~np.isfinite(numbers) | ((numbers < 0) if name == WEIGHT else False)
            if bad.any():
                raise DataError(
                    f"{where(np.flatnonzero(bad))}: {name} {frame[name].iloc[np.flatnonzero(bad)[0]]!r} is not a valid number"
                )
            frame[name] = numbers.astype(np.float32)


def in_test(users: tf.Tensor, items: tf.Tensor, fraction: float) -> tf.Tensor:
    """Whether each (user, item) pair of string ids is in the test part (bool)."""
    key = tf.strings.join([users, items], "\x1f")
    return tf.strings.to_hash_bucket_fast(key, HASH_BUCKETS) < int(round(fraction * HASH_BUCKETS))


def _test_mask(frame: pd.DataFrame, fraction: float) -> np.ndarray:
    if fraction <= 0:
        return np.zeros(len(frame), bool)
    users = tf.constant(frame[USER].to_numpy(dtype=object))
    items = tf.constant(frame[ITEM].to_numpy(dtype=object))
    return in_test(users, items, fraction).numpy()


@dataclass(frozen=True)
class LogSummary:
    """What one pass over a log's training part learned: the vocabularies (most frequent
    first, after ``min_count`` and the size caps), their counts and the rating statistics.

    Attributes:
        users, items: Kept ids.
        user_counts, item_counts: Their training interactions.
        train_rows, test_rows: Rows on each side of the hash split.
        ratings: Training ratings' statistics (when a rating column is mapped).
        test_fraction: The split it was computed with.
        files: Each shard as scanned: ``(path, bytes, mtime_ns, rows)``; a shard changed
            or removed since is refused (:meth:`check_files`), and shards without a row
            are left out of the stream (:meth:`shards_with_rows`).
    """

    users: tuple[str, ...]
    items: tuple[str, ...]
    user_counts: tuple[int, ...]
    item_counts: tuple[int, ...]
    train_rows: int
    test_rows: int
    ratings: RatingStats | None
    test_fraction: float
    files: tuple[tuple[str, int, int, int], ...] = ()

    def check_files(self) -> None:
        """Refuses a shard removed or changed (size or modification time) since the scan:
        the vocabularies and counts describe the files as scanned."""
        for path, size, mtime, _ in self.files:
            try:
                now = os.stat(path)
            except OSError as err:
                raise DataError(
                    f"{path}: the shard is gone since the scan ({err.strerror or err}); rerun to scan the log again"
                ) from err
            if (now.st_size, now.st_mtime_ns) != (size, mtime):
                raise DataError(
                    f"{path}: the shard changed since the scan ({size:,} -> {now.st_size:,} bytes); rerun to scan "
                    "the log again"
                )

    def shards_with_rows(self, shards: Shards) -> Shards:
        """``shards`` less the files the scan found no row in (a header-only shard costs an
        open and a read each epoch, and nothing else)."""
        empty = {path for path, _, _, rows in self.files if rows == 0}
        kept = tuple(f for f in shards.files if f not in empty)
        return shards if len(kept) == len(shards.files) or not kept else replace(shards, files=kept)

    def model_data(self) -> ModelData:
        """The :class:`ModelData` a model is built from (ids and counts; rating statistics)."""
        return ModelData(
            users=self.users, items=self.items, user_counts=self.user_counts, item_counts=self.item_counts,
            ratings=self.ratings,
        )  # fmt: skip

    def write(self, folder: str | Path) -> Path:
        """Writes ``users.tsv`` / ``items.tsv`` (id, count; most frequent first) and
        ``summary.json`` to ``folder``; returns it."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, ids, counts in (
            ("users", self.users, self.user_counts),
            ("items", self.items, self.item_counts),
        ):
            pd.DataFrame({"id": ids, "count": counts}).to_csv(folder / f"{name}.tsv", sep="\t", index=False)
        info = {"train_rows": self.train_rows, "test_rows": self.test_rows, "test_fraction": self.test_fraction,
                "ratings": None if self.ratings is None else vars(self.ratings),
                "files": [dict(zip(("path", "bytes", "mtime_ns", "rows"), f)) for f in self.files]}  # fmt: skip
        (folder / "summary.json").write_text(json.dumps(info, indent=2) + "\n")
        return folder

    @classmethod
    def read(cls, folder: str | Path) -> LogSummary:
        """The summary :meth:`write` wrote."""
        folder = Path(folder)
        tables = [pd.read_csv(folder / f"{n}.tsv", sep="\t", dtype={"id": str}, keep_default_na=False)
                  for n in ("users", "items")]  # fmt: skip
        info = json.loads((folder / "summary.json").read_text())
        ratings = None if info["ratings"] is None else RatingStats(**info["ratings"])
        return cls(
            tuple(tables[0]["id"]), tuple(tables[1]["id"]), tuple(int(c) for c in tables[0]["count"]),
            tuple(int(c) for c in tables[1]["count"]), info["train_rows"], info["test_rows"], ratings,
            info["test_fraction"],
            tuple((f["path"], f["bytes"], f["mtime_ns"], f["rows"]) for f in info.get("files", [])),
        )  # fmt: skip


def scan(
    shards: Shards,
    *,
    test_fraction: float = 0.0,
    min_count: int = 1,
    max_users: int | None = None,
    max_items: int | None = None,
) -> LogSummary:
    """One streaming pass over the training part of a log: vocabularies and statistics.

    Memory grows with the number of distinct ids, never with the number of rows.

    Args:
        shards: The log.
        test_fraction: Share of (user, item) pairs the hash split sends to the test part.
        min_count: Ids with fewer training interactions are left out (they go to the
            model's OOV bucket).
        max_users, max_items: Keep at most this many of the most frequent ids.

    Raises:
        DataError: a bad value (naming file and line), or no training row left.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise DataError(f"test_fraction must be in [0, 1), got {test_fraction!r}")
    users: Counter = Counter()
    items: Counter = Counter()
    train_rows = test_rows = 0
    total = low = high = None
    count = 0
    stats = {path: os.stat(path) for path in shards.files}
    rows = dict.fromkeys(shards.files, 0)
    for path, frame in shards.chunks():
        rows[path] += len(frame)
        test = _test_mask(frame, test_fraction)
        part = frame[~test]
        test_rows += int(test.sum())
        train_rows += len(part)
        users.update(part[USER].value_counts().to_dict())
        items.update(part[ITEM].value_counts().to_dict())
        if RATING in part.columns and len(part):
            values = part[RATING].to_numpy(np.float64)
            total = (total or 0.0) + float(values.sum())
            low = float(values.min()) if low is None else min(low, float(values.min()))
            high = float(values.max()) if high is None else max(high, float(values.max()))
            count += len(values)
    if not train_rows:
        raise DataError(f"{shards.pattern}: no training rows (test_fraction {test_fraction})")
    kept_users = _kept(users, min_count, max_users)
    kept_items = _kept(items, min_count, max_items)
    for what, kept, counts in (("user", kept_users, users), ("item", kept_items, items)):
        if not kept:
            raise DataError(
                f"{shards.pattern}: min_count {min_count} leaves no {what} (the most frequent has "
                f"{max(counts.values()):,} training interactions)"
            )
    ratings = None if total is None else RatingStats(total / count, low, high, count)
    files = tuple((p, stats[p].st_size, stats[p].st_mtime_ns, rows[p]) for p in shards.files)
    summary = LogSummary(
        tuple(u for u, _ in kept_users), tuple(i for i, _ in kept_items), tuple(c for _, c in kept_users),
        tuple(c for _, c in kept_items), train_rows, test_rows, ratings, float(test_fraction), files,
    )  # fmt: skip
    summary.check_files()  # a shard written to while it was scanned
    return summary


def _kept(counts: Counter, min_count: int, most: int | None) -> list[tuple[str, int]]:
    ordered = sorted(((k, c) for k, c in counts.items() if c >= min_count), key=lambda kc: (-kc[1], kc[0]))
    return ordered[:most] if most else ordered


def stream(
    shards: Shards,
    *,
    part: str = "train",
    test_fraction: float = 0.0,
    batch_size: int = 1024,
    shuffle_buffer: int = 100_000,
    seed: int = 0,
    label: str | None = None,
    weights: bool = False,
    input_context: tf.distribute.InputContext | None = None,
    data_service: str | None = None,
) -> tf.data.Dataset:
    """The ``tf.data`` pipeline over one part of a log: ``{"user_id", "item_id"[, "weight"]}``
    batches (``(features, rating)`` with ``label="rating"``).

    Files are read in blocks by an interleave (four files at a time), blocks pass the hash
    split, windows of ``shuffle_buffer`` consecutive rows (blocks of the interleaved files)
    are each permuted (afresh each epoch), and batches are prefetched; memory is the buffers, whatever the log's size. With an
    ``input_context`` (``strategy.distribute_datasets_from_function``) each input
    pipeline reads its own share of the files. With ``data_service`` (a tf.data service
    dispatcher, ``"grpc://host:port"``) the pipeline runs on the service's workers, the
    files dealt out among them (``distributed_epoch``: each row read once per pass), and
    this process only receives batches; the service runs serialized graphs, so it reads
    CSV shards (Parquet is read by Python code, which it cannot run).
    """
    if part not in ("train", "test"):
        raise DataError(f"part must be 'train' or 'test', got {part!r}")
    fields = [USER, ITEM] + [n for n in (RATING, WEIGHT) if n in shards.columns]
    if label is not None and label not in shards.columns:
        raise DataError(f"{shards.pattern}: no {label!r} column mapped (--columns {label}=...)")
    # Absolute paths: the pipeline may run in another process (a tf.data service or
    # parameter-server worker) whose working directory differs.
    files = tf.data.Dataset.from_tensor_slices([os.path.abspath(f) for f in shards.files])
    if input_context is not None and input_context.num_input_pipelines > 1:
        files = files.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if part == "test" and test_fraction <= 0:
        raise DataError("part='test' needs test_fraction > 0")
    if data_service is not None:
        check_remote_readable(shards, "the tf.data service's workers")
        check_reachable(data_service)
    reader = _csv_reader(shards, fields) if shards.format == "csv" else _parquet_reader(shards, fields)

    def this_part(rows):  # the hash split, on a block of rows at once
        if test_fraction <= 0:
            return rows
        keep = tf.equal(in_test(rows[USER], rows[ITEM], test_fraction), part == "test")
        return {name: tf.boolean_mask(values, keep) for name, values in rows.items()}

    def blocks(path):
        return reader(path).map(this_part)

    rows = files.interleave(blocks, cycle_length=min(4, len(shards.files)), num_parallel_calls=tf.data.AUTOTUNE,
                            deterministic=True)  # fmt: skip
    if shuffle_buffer:
        # Windows of `shuffle_buffer` rows (blocks of the interleaved files) are permuted as
        # a whole: far cheaper than passing every row through a row-by-row shuffle buffer.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

        def permuted(window, window_seed):
            order = tf.random.experimental.stateless_shuffle(tf.range(tf.shape(window[USER])[0]), window_seed)
            return {name: tf.gather(values, order) for name, values in window.items()}

        windows = rows.rebatch(shuffle_buffer)
        rows = tf.data.Dataset.zip((windows, seeds)).map(permuted, num_parallel_calls=tf.data.AUTOTUNE)

    def element(r):
        features = {USER: r[USER], ITEM: r[ITEM]}
        if weights:
            features[WEIGHT] = r[WEIGHT]
        return (features, r[label]) if label else features

    batches = rows.rebatch(batch_size).map(element, num_parallel_calls=tf.data.AUTOTUNE)
    if data_service is not None:
        batches = batches.apply(
            tf.data.experimental.service.distribute(processing_mode="distributed_epoch", service=data_service)
        )
    return batches.prefetch(tf.data.AUTOTUNE)


# How long a tf.data service dispatcher may take to accept a connection (its client
# retries without end, so an unreachable address would hang the run).
CONNECT_SECONDS = 10.0


def check_reachable(address: str, timeout: float = CONNECT_SECONDS) -> None:
    """Refuses a tf.data service address (``grpc://host:port``) that accepts no TCP
    connection within ``timeout`` seconds."""
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise DataError(f"--data-service {address!r}: expected grpc://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        raise DataError(
            f"--data-service {address}: no dispatcher answers there within {timeout:g} s ({err.strerror or err})"
        ) from err


def check_remote_readable(shards: Shards, readers: str) -> None:
    """Refuses shards that only this process can read: input pipelines that run in other
    processes (``readers``: tf.data service workers, parameter-server workers) read CSV
    with TensorFlow ops, but cannot run the Python Parquet reader."""
    if shards.format != "csv":
        raise DataError(
            f"{shards.pattern}: {readers} run the input pipeline themselves and cannot run the Python "
            "Parquet reader; write the shards as CSV"
        )


def _csv_reader(shards: Shards, fields: list[str]):
    names, _ = _schema(shards.files[0], "csv")
    sources = [shards.columns[f] for f in fields]
    order = sorted(range(len(fields)), key=lambda j: names.index(sources[j]))  # CsvDataset keeps file order
    defaults = [tf.constant("", tf.string) if fields[j] in (USER, ITEM) else tf.constant(0.0, tf.float32)
                for j in order]  # fmt: skip

    columns = [names.index(sources[j]) for j in order]

    def decode(lines):
        values = tf.io.decode_csv(lines, defaults, select_cols=columns)
        return {fields[j]: v for j, v in zip(order, values)}

    def read(path):
        # As pandas reads them in the scan: the header skipped, blank (or blank-looking)
        # lines skipped, CR LF line ends, RFC 4180 quoting within a line.
        lines = tf.data.TextLineDataset(path).skip(1)
        lines = lines.filter(lambda line: tf.strings.length(tf.strings.strip(line)) > 0)
        return lines.batch(8192).map(decode)

    return read


def _parquet_reader(shards: Shards, fields: list[str]):
    signature = {f: tf.TensorSpec([None], tf.string if f in (USER, ITEM) else tf.float32) for f in fields}
    columns = {f: shards.columns[f] for f in fields}

    def batches(path):
        import pyarrow.parquet as pq

        path = path.decode() if isinstance(path, bytes) else str(path)
        try:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=8192, columns=list(columns.values())):
                frame = batch.to_pandas()
                yield {f: (frame[c].astype(str).to_numpy(dtype=object) if f in (USER, ITEM)
                           else frame[c].to_numpy(np.float32)) for f, c in columns.items()}  # fmt: skip
        except OSError as err:
            raise DataError(f"{path}: the Parquet file is corrupt or truncated ({err})") from err

    def read(path):
        return tf.data.Dataset.from_generator(batches, args=(path,), output_signature=signature)

    return read


def sample_for_evaluation(
    shards: Shards, summary: LogSummary, users: int = 2000, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training and test rows of about ``users`` test users (picked by a hash of their
    id), gathered in one pass: what full-ranking evaluation needs (each sampled user's
    training items are left out), held in memory for those users only.

    Returns:
        ``(train_rows, test_rows)`` frames with ``user_id``, ``item_id`` (and rating / weight),
        each (user, item) pair once.
    """
    if summary.test_fraction <= 0:
        raise DataError("evaluation needs a test part: scan and train with test_fraction > 0")
    summary.check_files()
    share = min(1.0, users / max(len(summary.users), 1))
    cut = int(np.ceil(share * HASH_BUCKETS))
    train_parts, test_parts = [], []
    for _, frame in shards.chunks():
        ids = tf.constant(frame[USER].to_numpy(dtype=object))
        picked = (
            tf.strings.to_hash_bucket_fast(tf.strings.join([ids, str(seed)], "\x1e"), HASH_BUCKETS) < cut
        ).numpy()
        chunk = frame[picked]
        test = _test_mask(chunk, summary.test_fraction)
        train_parts.append(chunk[~test])
        test_parts.append(chunk[test])
    # A log may repeat a (user, item) pair (a replay, a second purchase): evaluation asks
    # which items a user met, so each pair counts once (the last one read, if rated).
    train_rows, test_rows = (
        pd.concat(parts, ignore_index=True).drop_duplicates([USER, ITEM], keep="last", ignore_index=True)
        for parts in (train_parts, test_parts)
    )
    return train_rows, test_rows
