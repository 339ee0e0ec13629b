"""The serving module: named TF Serving signatures over a trained model's towers."""

from __future__ import annotations

import time

import numpy as np

from tfrec._keras import tf
from tfrec.core.chunks import mask_out, rows_per_chunk, top_k_grouped
from tfrec.errors import TfrecError
from tfrec.limits import INDEXES
from tfrec.models.capabilities import FeatureCandidates, HistoryQueries, TextCandidates
from tfrec.models.scoring import Scorer
from tfrec.serving import index as ivf

# ``k`` is int32[B], one value per row: TF Serving's batching session refuses a scalar
# input ("Batching Run() input tensors must have at least one dimension").
K_SPEC = tf.TensorSpec([None], tf.int32, "k")

# The most rows one batch of the shipped batching parameters holds; a request with more
# rows is ranked in chunks of at most this many.
MAX_BATCH_SIZE = 256
# Batch sizes and exclusion widths an XLA core is compiled for (requests are padded up).
ROW_BUCKETS = (1, 4, 16, 64, MAX_BATCH_SIZE)
WIDTH_BUCKETS = (0, 16, 64, 256, 1024, 4096)
# What a row past its own ``k`` (or past the items left) scores: the lowest finite float32,
# so every answer is finite and a REST answer is plain JSON (no ``-Infinity``).
PAD_SCORE = float(np.finfo(np.float32).min)
# The flag a stock ``tensorflow_model_server`` needs for an export made with ``xla=True``
# (its ``main()`` calls ``DisableXlaCompilation()`` without it).
XLA_SERVER_FLAG = "--xla_cpu_compilation_enabled=true"
# Requests for at most this many items run a second, narrower compiled core (a top-k's
# cost grows with k).
NARROW_K = 10


def _bucket(size: tf.Tensor, buckets: tuple[int, ...]) -> tf.Tensor:
    """The smallest bucket holding ``size``; past the last, ``size`` rounded up to a multiple of it."""
    size = tf.cast(size, tf.int32)
    last = buckets[-1]
    table = tf.constant(buckets, tf.int32)
    # Arithmetic, not a tf.cond: each conditional is a function call on every request.
    beyond = (size + last - 1) // last * last
    return tf.reduce_min(tf.where(table >= size, table, tf.maximum(beyond, last)))


def _pad_to(values: tf.Tensor, axis: int, size: tf.Tensor) -> tf.Tensor:
    """``values`` padded with zeros along ``axis`` to ``size``."""
    padding = [[0, 0]] * len(values.shape)
    padding[axis] = [0, size - tf.shape(values)[axis]]
    return tf.pad(values, padding)


class ServingModule(tf.Module):
    """What an export holds: the model, its indexed catalogue and the signatures.

    The candidate tower is run once over the whole catalogue at export time (the
    "index"); a request runs only the query tower, the scoring and the top-k. Lookups
    (string ids to indices) happen in the signature functions; everything after them is
    :meth:`recommend_core` / :meth:`similar_core` (numeric ops only), saved as the
    functions ``recommend_top`` / ``similar_top`` at a fixed ``max_k``, which the
    signatures slice to the requested ``k``; requests for at most :data:`NARROW_K` items
    run ``recommend_top_narrow``, the same core at that width. By default the cores are
    plain graph functions, which a stock ``tensorflow_model_server`` runs as started
    (its ``main()`` disables XLA unless :data:`XLA_SERVER_FLAG` is given); with ``xla``
    they are compiled with XLA (``jit_compile=True``, ``_XlaMustCompile`` in the
    SavedModel) and requests are padded to :data:`ROW_BUCKETS` rows and
    :data:`WIDTH_BUCKETS` exclusions, so XLA compiles a few shapes.

    Every input has the batch dimension and every output has it first, so TF Serving's
    batching session can merge any two requests of one signature. Scores are finite:
    a row past its own ``k``, or past the items left, ends in ``""`` ids scored
    :data:`PAD_SCORE` (the lowest float32), so REST answers are plain JSON.

    Signatures (all ``tensorflow/serving/predict``, named inputs and outputs):
        ``recommend``: ``user_id`` string[B], ``k`` int32[B] (one per row)
        -> ``item_ids`` string[B, k'], ``scores`` float32[B, k'] with
        ``k' = min(max(k), max_k)``; a row asking fewer than ``k'`` ends in ``""`` /
        ``PAD_SCORE``; each user's training items (the seen-items table) are left out.
        ``recommend_excluding``: as ``recommend`` plus ``exclude_item_ids``
        string[B, exclude_width] (pad with ""), more items left out per user.
        ``recommend_including_seen``: as ``recommend`` without leaving out the
        training items (the opt-out).
        Where fewer than ``k'`` items are left for a user, the row ends in ``""`` ids
        with score ``PAD_SCORE``; a left-out item is never returned.
        ``score``: ``user_id``, ``item_id`` string[B] -> ``score`` float32[B].
        ``query_embedding``: ``user_id`` -> ``embedding`` float32[B, d].
        ``item_embedding``: ``item_id`` -> ``embedding`` float32[B, d].
        ``similar_items``: ``item_id`` string[B], ``k`` -> ``item_ids``, ``scores``
        (cosine similarity of candidate embeddings, the item itself left out).
        ``serving_default``: retrieval models: ``recommend`` with ``k`` fixed to
        ``default_k``; rating and ranking models: ``score``.
        Content models add ``item_embedding_from_text`` (``item_text`` -> ``embedding``)
        and ``score_text`` (``user_id``, ``item_text`` -> ``score``) for cold items.
        Models with dense item features add ``item_embedding_from_features``
        (``features`` float32[B, F] raw values -> ``embedding``) and ``score_features``
        (``user_id``, ``features`` -> ``score``) for cold items; models with a history
        tower add ``recommend_from_history`` (``history_item_ids`` string[B, L], ""
        pads; ``history_weights`` float32[B, L], play counts or 1; ``k``) for users
        given by their history, the history's items left out.

    Unknown ids and empty strings go through the OOV path and never fail; ``k < 1``
    fails the request with ``k must be >= 1``. A request with more users (or items, for
    ``similar_items``) than ``rows_per_chunk`` (up to :data:`MAX_BATCH_SIZE`; fewer on
    large catalogues, so a chunk's score matrix holds about 2^25 floats) is ranked chunk
    by chunk, so memory stays bounded whatever the batch size.

    Args:
        model: A trained tfrec model (registered, with towers).
        default_k: ``k`` of ``serving_default`` for retrieval models.
        max_k: The most items a request can get (the compiled cores' width; capped at the
            catalogue size).
        exclude_width: How many item ids each row of ``recommend_excluding`` carries (a
            fixed width, so TF Serving's batching can merge any two requests).
        seen_items: Carry the model's seen-items table (``model.seen_items``, a CSR of
            8 bytes per user + 4 per training pair) so ``recommend`` leaves each user's
            training items out. False exports an empty table (for very large logs).
        xla: Compile the numeric cores with XLA (a server then needs
            :data:`XLA_SERVER_FLAG`); off by default.
        index: ``"exact"`` ranks the whole catalogue per request; ``"approx"`` (dot-product
            models) ranks the items of the query's best partitions of an inverted-file
            index (:mod:`tfrec.serving.index`) built here, with as many partitions probed
            as reach ``recall`` against the exact top ``default_k`` on a sample of users
            (``self.index_report`` says what was chosen and measured). A row left with
            fewer than ``k`` items after its exclusions is ranked exactly instead.
        recall: The recall an approximate index must reach (0 < recall <= 1).
        partitions: The approximate index's k-means partitions (default about
            ``2 * sqrt(items)``).

    Example:
        >>> module = tfrec.serving.ServingModule(model)
        >>> module.recommend(tf.constant(["42"]), tf.constant([5]))["item_ids"]
    """

    def __init__(
        self,
        model,
        default_k: int = 10,
        seen_items: bool = True,
        max_k: int = 100,
        exclude_width: int = 64,
        xla: bool = False,
        index: str = "exact",
        recall: float = 0.95,
        partitions: int | None = None,
    ) -> None:
        super().__init__(name="tfrec_serving")
        if index not in INDEXES:
            raise TfrecError(f"index must be one of {', '.join(INDEXES)}, got {index!r}")
        self.model = model
        self.task = model.task
        catalogue = np.asarray(model.item_vocabulary, dtype=object)
        self.num_items = len(catalogue)
        self.default_k = max(1, min(int(default_k), self.num_items))
        # The compiled cores rank the top max_k; a request's k is capped at it.
        self.max_k = max(1, min(int(max_k), self.num_items))
        self.max_similar = max(1, min(int(max_k), self.num_items - 1))
        # recommend_excluding takes exactly this many exclusions per row ("" pads), so
        # batched requests always share one shape.
        self.exclude_width = int(exclude_width)
        # Users scored at once: a larger request is ranked in chunks of this many rows.
        self.rows_per_chunk = rows_per_chunk(self.num_items, most=MAX_BATCH_SIZE)
        self.xla = bool(xla)
        # The ids answered, a variable (in the checkpoint, not the graph's protobuf).
        self.catalogue = tf.Variable(catalogue.astype(str), dtype=tf.string, trainable=False, name="catalogue")
        candidates = model.catalogue_embeddings()  # in batches: bounded on large catalogues
        _check_finite(model, candidates)
        # The catalogue is held once. A model whose item tables are its candidate embeddings
        # (``catalogue_parts``) is ranked against those tables in place; any other has its
        # candidate tower run once here. Either way the columns ranked are item indices
        # (0, the unknown item, is never returned).
        self.precomputed = model.catalogue_parts() is None
        if self.precomputed:
            unknown = model.candidate_from_index(tf.zeros([1], tf.int64))
            self.candidates = tf.Variable(
                tf.concat([unknown, candidates], axis=0), trainable=False, name="candidates"
            )
        # Cosine similarity divides by each item's norm (one float per item) instead of
        # holding a second, normalized copy of the catalogue.
        norms = tf.sqrt(tf.maximum(tf.reduce_sum(tf.square(candidates), axis=1), 1e-12))
        self.candidate_norms = tf.Variable(tf.concat([[1.0], norms], axis=0), trainable=False, name="candidate_norms")
        self.embedding_dim = int(candidates.shape[1])
        seen = model.seen_items if seen_items else None
        self.seen_pairs = 0 if seen is None else len(seen)
        offsets = np.zeros(len(model.user_vocabulary) + 2, np.int64) if seen is None else seen.offsets
        items = np.zeros(0, np.int32) if seen is None else seen.items
        self.seen_offsets = tf.Variable(offsets, trainable=False, name="seen_offsets")
        self.seen_items = tf.Variable(items, trainable=False, name="seen_items", shape=[None])
        self.approx = index == "approx"
        self.index_report = {"kind": "exact"}
        if self.approx:
            self._build_index(candidates, recall, partitions)
        # The numeric cores, saved as functions of their own (the exporter names them in
        # SaveOptions.function_aliases for TPU converters), compiled with XLA only when
        # asked: integer indices in, the top max_k out; signatures look ids up around them.
        index = tf.TensorSpec([None], tf.int64)
        excluded = tf.TensorSpec([None, None], tf.int64)
        jit = True if self.xla else None
        self.recommend_top = tf.function(self._recommend_top, input_signature=[index, excluded], jit_compile=jit)
        self.narrow_k = min(NARROW_K, self.max_k)
        if self.narrow_k < self.max_k:
            self.recommend_top_narrow = tf.function(
                self._recommend_top_narrow, input_signature=[index, excluded], jit_compile=jit
            )
        self.similar_top = tf.function(self._similar_top, input_signature=[index], jit_compile=jit)
        self.recommend_excluding = tf.function(
            self._recommend_excluding,
            input_signature=[
                tf.TensorSpec([None], tf.string, "user_id"),
                K_SPEC,
                tf.TensorSpec([None, self.exclude_width], tf.string, "exclude_item_ids"),
            ],
        )
        # Text signatures exist only for content models (saving traces every tf.function
        # attribute, so they are not class attributes).
        self.takes_text = isinstance(model, TextCandidates)
        if self.takes_text:
            text = tf.TensorSpec([None], tf.string, "item_text")
            self.item_embedding_from_text = tf.function(self._embed_text, input_signature=[text])
            self.score_text = tf.function(
                self._score_text, input_signature=[tf.TensorSpec([None], tf.string, "user_id"), text]
            )
        self.num_features = len(model.feature_names()) if isinstance(model, FeatureCandidates) else 0
        if self.num_features:
            values = tf.TensorSpec([None, self.num_features], tf.float32, "features")
            self.item_embedding_from_features = tf.function(self._embed_features, input_signature=[values])
            self.score_features = tf.function(
                self._score_features, input_signature=[tf.TensorSpec([None], tf.string, "user_id"), values]
            )
        self.takes_history = isinstance(model, HistoryQueries) and model.has_history()
        if self.takes_history:
            self.recommend_from_history = tf.function(
                self._recommend_from_history,
                input_signature=[
                    tf.TensorSpec([None, None], tf.string, "history_item_ids"),
                    tf.TensorSpec([None, None], tf.float32, "history_weights"),
                    K_SPEC,
                ],
            )

    # === Numeric core (no lookups, no strings: XLA-compilable) ===
    def recommend_core(
        self, user_index: tf.Tensor, exclude_index: tf.Tensor, k
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Top-``k`` catalogue positions and scores for looked-up users.

        Args:
            user_index: int64[B] user indices (0 = unknown).
            exclude_index: int64[B, E] item indices to leave out (0 = padding/unknown).
            k: How many (a Python int when compiled with XLA, else a scalar tensor).

        Returns:
            ``(scores float32[B, k], positions int32[B, k])``.
        """
        queries = self.model.query_from_index(user_index)
        if self.approx:
            return self.approx_top(queries, exclude_index, k)
        return self.exact_top(queries, exclude_index, k)

    def exact_top(self, queries: tf.Tensor, exclude_index: tf.Tensor, k, cosine: bool = False) -> tuple:
        """Top-``k`` over the whole catalogue (``cosine``: dot products over item norms)."""
        if cosine:
            scores = self.catalogue_scores(queries, _dot) / self.candidate_norms[None, :]
        else:
            scores = self.catalogue_scores(queries, self.model.score_all)
        scores = mask_out(scores, exclude_index, exclude_index > 0)
        return self._top_indices(scores, k)

    def approx_top(self, queries: tf.Tensor, exclude_index: tf.Tensor, k, cosine: bool = False) -> tuple:
        """Top-``k`` over the items of each query's ``index_probes`` best partitions (at
        least ``k`` items); a row left with fewer than ``k`` after its exclusions is ranked
        over the whole catalogue (under XLA, whose shapes are static, the whole batch is)."""
        rows, width = self.index_members.shape
        probes = min(int(rows), max(self.index_probes, -(-int(k) // int(width))))  # at least k items
        best = ivf.probe(queries, self.index_centroids, probes)
        members = ivf.flat(tf.gather(self.index_members, best))
        scores = tf.einsum("bd,bmd->bm", queries, ivf.flat(tf.gather(self.index_vectors, best)))
        if cosine:
            scores = scores / tf.gather(self.candidate_norms, members)
        drop = (members == 0) | ivf.excluded(members, exclude_index)
        scores = tf.where(drop, tf.constant(-np.inf, scores.dtype), scores)
        values, columns = tf.math.top_k(scores, k=k)
        positions = tf.cast(tf.maximum(tf.gather(members, columns, batch_dims=1) - 1, 0), tf.int32)
        short = tf.math.is_inf(values[:, -1])  # fewer than k items left in the probed partitions

        def widen() -> tuple[tf.Tensor, tf.Tensor]:
            if self.xla:  # static shapes: the whole batch
                return self.exact_top(queries, exclude_index, k, cosine)
            again = tf.where(short)
            exact = self.exact_top(tf.gather(queries, again[:, 0]), tf.gather(exclude_index, again[:, 0]), k, cosine)
            return tf.tensor_scatter_nd_update(values, again, exact[0]), tf.tensor_scatter_nd_update(positions, again, exact[1])

        return tf.cond(tf.reduce_any(short), widen, lambda: (values, positions))

    def similar_core(self, item_index: tf.Tensor, k) -> tuple[tf.Tensor, tf.Tensor]:
        """Top-``k`` most similar catalogue positions (cosine) for looked-up items."""
        queries = tf.math.l2_normalize(self.model.candidate_from_index(item_index), axis=1)
        exclude = item_index[:, None]
        if self.approx:
            return self.approx_top(queries, exclude, k, cosine=True)
        return self.exact_top(queries, exclude, k, cosine=True)

    def _build_index(self, candidates: tf.Tensor, recall: float, partitions: int | None) -> None:
        """The inverted-file index over ``candidates`` and the fewest probes reaching
        ``recall`` against the exact top ``default_k`` on up to 1,000 known users (their
        training items left out, as ``recommend`` serves them)."""
        if type(self.model).score_all is not Scorer.score_all:
            raise TfrecError(f"index='approx' needs a dot-product model; {type(self.model).__name__} scores otherwise")
        if not (isinstance(recall, (int, float)) and 0 < recall <= 1):
            raise TfrecError(f"recall must be a number in (0, 1], got {recall!r}")
        start = time.perf_counter()
        vectors = candidates.numpy()
        built = ivf.build(vectors, partitions)
        self.index_centroids = tf.Variable(built.centroids, trainable=False, name="index_centroids")
        self.index_members = tf.Variable(built.members, trainable=False, name="index_members")
        # Each row's vectors in its order (pads: zeros, masked): a candidate embedding is
        # the concatenation of the catalogue parts' rows, so its dot product is the score.
        padded = np.vstack([np.zeros((1, vectors.shape[1]), vectors.dtype), vectors])
        self.index_vectors = tf.Variable(padded[built.members], trainable=False, name="index_vectors")
        rows = len(built.members)
        users = len(self.model.user_vocabulary)
        sample = np.random.default_rng(0).choice(np.arange(1, users + 1), size=min(users, 1000), replace=False)
        queries = self.model.query_from_index(tf.constant(sample, tf.int64))
        seen = self._seen(tf.constant(sample, tf.int64))  # as `recommend` serves them
        k = min(self.default_k, self.num_items)

        def top(search) -> np.ndarray:  # in chunks: bounded memory on large catalogues
            step = rows_per_chunk(max(self.num_items, self.index_probes * built.width * self.embedding_dim))
            return np.concatenate([
                search(queries[i : i + step], seen[i : i + step], k)[1].numpy() for i in range(0, len(sample), step)
            ])  # fmt: skip

        self.index_probes, measured = 1, 0.0
        exact = top(self.exact_top)
        for probes in [*(p for p in (2**i for i in range(40)) if p < rows), rows]:
            self.index_probes = probes
            measured = ivf.recall_at(top(self.approx_top), exact)
            if measured >= recall:
                break
        # A chunk's gathered candidates hold about as many floats as an exact chunk's scores.
        self.rows_per_chunk = min(
            self.rows_per_chunk, rows_per_chunk(self.index_probes * built.width * self.embedding_dim, most=MAX_BATCH_SIZE)
        )  # fmt: skip
        self.index_report = {
            "kind": "approx", "partitions": rows, "partition_width": built.width, "probes": self.index_probes,
            "items_scored_per_query": self.index_probes * built.width, f"recall@{k}": round(measured, 4), "target_recall": recall,
            "sample_users": len(sample), "build_seconds": round(time.perf_counter() - start, 2),
        }  # fmt: skip

    def catalogue_scores(self, queries: tf.Tensor, score_all) -> tf.Tensor:
        """``float32[B, num_items + 1]``: each query against every item index, column 0 -inf.

        ``score_all(queries, table)`` scores against one table; a catalogue in several
        parts (a dot-product model's factors and biases) sums each part's dot products
        with its columns of the query (a one-row part applies to every item).
        """
        parts = [self.candidates] if self.precomputed else self.model.catalogue_parts()
        if len(parts) == 1:
            scores = score_all(queries, parts[0])
        else:
            scores, start = 0.0, 0
            for part in parts:
                width = int(part.shape[1])
                scores += _dot(queries[:, start : start + width], part)
                start += width
        unknown = tf.zeros([tf.shape(queries)[0], 1], tf.int64)
        return mask_out(scores, unknown, tf.ones_like(unknown, tf.bool))

    @staticmethod
    def _top_indices(scores: tf.Tensor, k) -> tuple[tf.Tensor, tf.Tensor]:
        """The top ``k`` scores and their catalogue positions (item index - 1).

        :func:`top_k_grouped` on wide rows, in both modes: XLA sorts whole rows for a
        top-k, and TensorFlow's own CPU kernel was slower than the grouped form on
        1M-item rows.
        """
        values, columns = top_k_grouped(scores, k)
        return values, tf.maximum(columns - 1, 0)

    def _recommend_top(self, user_index: tf.Tensor, exclude_index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return self.recommend_core(user_index, exclude_index, self.max_k)

    def _recommend_top_narrow(self, user_index: tf.Tensor, exclude_index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return self.recommend_core(user_index, exclude_index, self.narrow_k)

    def _similar_top(self, item_index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return self.similar_core(item_index, self.max_similar)

    # === Signatures ===
    def _k(self, k: tf.Tensor, rows: tf.Tensor, most: int) -> tuple[tf.Tensor, tf.Tensor]:
        """Each row's ``k`` capped at ``most``, and the answer's width (the largest)."""
        checks = [
            tf.debugging.assert_greater_equal(k, tf.constant(1, tf.int32), message="k must be >= 1"),
            tf.debugging.assert_equal(tf.size(k), rows, message="k needs one value per row"),
        ]
        with tf.control_dependencies(checks):
            k = tf.minimum(k, most)
            return k, tf.maximum(tf.reduce_max(k), 1)

    def _top(self, scores: tf.Tensor, positions: tf.Tensor, k: tf.Tensor, width: tf.Tensor) -> dict:
        """The first ``width`` columns; past a row's own ``k``, or where nothing was left
        (-inf), ``""`` ids scored :data:`PAD_SCORE`."""
        scores, positions = scores[:, :width], positions[:, :width]
        empty = (tf.range(width)[None, :] >= k[:, None]) | (tf.math.is_inf(scores) & (scores < 0))
        return {
            "item_ids": tf.where(empty, "", tf.gather(self.catalogue, positions)),
            "scores": tf.where(empty, tf.constant(PAD_SCORE, scores.dtype), scores),
        }

    def _seen(self, users: tf.Tensor) -> tf.Tensor:
        """int64[B, S]: each user's training item indices from the CSR table (0 pads)."""
        users = tf.clip_by_value(users, 0, tf.shape(self.seen_offsets, out_type=tf.int64)[0] - 2)
        positions = tf.ragged.range(
            tf.gather(self.seen_offsets, users), tf.gather(self.seen_offsets, users + 1)
        )
        rows = tf.gather(self.seen_items, positions)
        return tf.cast(rows.to_tensor(default_value=0), tf.int64)

    def _recommend(
        self, user_id: tf.Tensor, k: tf.Tensor, exclude: tf.Tensor, seen: bool = True
    ) -> dict[str, tf.Tensor]:
        users = self.model.user_index(user_id)
        excluded = self.model.item_index(exclude)
        if seen:
            excluded = tf.concat([self._seen(users), excluded], axis=1)
        k, width = self._k(k, tf.shape(users)[0], self.max_k)
        if self.narrow_k == self.max_k:
            return self._top(*self._in_chunks(self.recommend_top, users, excluded), k, width)
        found = tf.cond(
            width <= self.narrow_k,
            lambda: self._in_chunks(self.recommend_top_narrow, users, excluded),
            lambda: self._in_chunks(self.recommend_top, users, excluded),
        )
        return self._top(*found, k, width)

    def _in_chunks(self, core, rows: tf.Tensor, extra: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``core(rows, extra)`` over chunks of ``rows_per_chunk`` rows (padded with index 0).

        With ``xla``, shapes are bucketed so each core compiles a few times, not once per
        request: rows to the next of :data:`ROW_BUCKETS` (or a whole chunk) and the
        exclusion width to the next of :data:`WIDTH_BUCKETS` (or a multiple of the last),
        padded with index 0 (sliced off / never excluded). Without XLA a graph function
        takes any shape, and nothing is padded but the last chunk.
        """
        step, n = self.rows_per_chunk, tf.shape(rows)[0]
        if self.xla:
            extra = _pad_to(extra, 1, _bucket(tf.shape(extra)[1], WIDTH_BUCKETS))

        def chunked():
            pad = (step - n % step) % step
            rows_ = tf.reshape(tf.pad(rows, [[0, pad]]), [-1, step])
            extra_ = tf.reshape(tf.pad(extra, [[0, pad], [0, 0]]), [-1, step, tf.shape(extra)[1]])
            spec = (tf.TensorSpec([step, None], tf.float32), tf.TensorSpec([step, None], tf.int32))
            scores, positions = tf.map_fn(
                lambda c: core(c[0], c[1]), (rows_, extra_), fn_output_signature=spec
            )
            width = tf.shape(scores)[2]
            return tf.reshape(scores, [-1, width])[:n], tf.reshape(positions, [-1, width])[:n]

        def single():
            if not self.xla:
                return core(rows, extra)
            size = _bucket(n, self.row_buckets())
            scores, positions = core(_pad_to(rows, 0, size), _pad_to(extra, 0, size))
            return scores[:n], positions[:n]

        return tf.cond(n <= step, single, chunked)

    def row_buckets(self) -> tuple[int, ...]:
        """The row counts an XLA core runs at (the largest is a whole chunk)."""
        return tuple(b for b in ROW_BUCKETS if b < self.rows_per_chunk) + (self.rows_per_chunk,)

    @staticmethod
    def width_bucket(width: int) -> int:
        """The exclusion width an XLA core runs at for ``width`` excluded ids a row
        (what :func:`_bucket` computes in the graph)."""
        last = WIDTH_BUCKETS[-1]
        return next((b for b in WIDTH_BUCKETS if b >= width), -(-width // last) * last)

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.string, "user_id"), K_SPEC]
    )
    def recommend(self, user_id: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        """Top-``k`` items for each user (``k`` per row)."""
        return self._recommend(user_id, k, tf.fill([tf.shape(user_id)[0], 0], ""))

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.string, "user_id"), K_SPEC]
    )
    def recommend_including_seen(self, user_id: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        """Top-``k`` items for each user, training items included (the opt-out)."""
        return self._recommend(user_id, k, tf.fill([tf.shape(user_id)[0], 0], ""), seen=False)

    def _recommend_excluding(self, user_id: tf.Tensor, k: tf.Tensor, exclude_item_ids: tf.Tensor) -> dict:
        """Top-``k`` items for each user, leaving out that user's ``exclude_item_ids`` ("" pads)."""
        tf.debugging.assert_equal(
            tf.shape(exclude_item_ids)[0], tf.shape(user_id)[0],
            message="exclude_item_ids needs one row per user_id",
        )  # fmt: skip
        return self._recommend(user_id, k, exclude_item_ids)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, "user_id")])
    def recommend_default(self, user_id: tf.Tensor) -> dict[str, tf.Tensor]:
        """``recommend`` with ``k = default_k``."""
        rows = tf.shape(user_id)[0]
        return self._recommend(user_id, tf.fill([rows], self.default_k), tf.fill([rows, 0], ""))

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, "user_id"),
            tf.TensorSpec([None], tf.string, "item_id"),
        ]
    )
    def score(self, user_id: tf.Tensor, item_id: tf.Tensor) -> dict[str, tf.Tensor]:
        """The model's score of each (user, item) pair (a rating for rating models)."""
        tf.debugging.assert_equal(
            tf.size(user_id), tf.size(item_id), message="user_id and item_id lengths differ"
        )
        return {"score": self.model({"user_id": user_id, "item_id": item_id}, training=False)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, "user_id")])
    def known_users(self, user_id: tf.Tensor) -> dict[str, tf.Tensor]:
        """1 for each user id in the training vocabulary, 0 for one the export answers as
        the unknown (out-of-vocabulary) user."""
        return {"known": tf.cast(self.model.user_index(user_id) > 0, tf.int32)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, "user_id")])
    def __call__(self, user_id: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """TFRS's retrieval-index call, for code written against TFRS's ``BruteForce``
        exports: ``scores, item_ids = loaded(["42"])`` (``recommend`` at ``default_k``, the
        user's training items left out). Python callers only: TF Serving runs signatures."""
        out = self.recommend_default(user_id)
        return out["scores"], out["item_ids"]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, "user_id")])
    def query_embedding(self, user_id: tf.Tensor) -> dict[str, tf.Tensor]:
        """The query tower's output per user."""
        return {"embedding": self.model.query_from_index(self.model.user_index(user_id))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, "item_id")])
    def item_embedding(self, item_id: tf.Tensor) -> dict[str, tf.Tensor]:
        """The candidate tower's output per item."""
        return {"embedding": self.model.candidate_from_index(self.model.item_index(item_id))}

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.string, "item_id"), K_SPEC]
    )
    def similar_items(self, item_id: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        """The ``k`` most similar items per item (cosine), the item itself left out."""
        items = self.model.item_index(item_id)
        k, width = self._k(k, tf.shape(items)[0], self.max_similar)
        found = self._in_chunks(lambda i, _: self.similar_top(i), items, tf.zeros([tf.shape(items)[0], 0], tf.int64))
        return self._top(*found, k, width)

    def _embed_text(self, item_text: tf.Tensor) -> dict[str, tf.Tensor]:
        """Content models: the candidate embedding of items given by their text (cold items)."""
        return {"embedding": self.model.candidate_from_text(item_text)}

    def _score_text(self, user_id: tf.Tensor, item_text: tf.Tensor) -> dict[str, tf.Tensor]:
        """Content models: the score of each (user, item given by its text) pair."""
        tf.debugging.assert_equal(
            tf.size(user_id), tf.size(item_text), message="user_id and item_text lengths differ"
        )
        queries = self.model.query_from_index(self.model.user_index(user_id))
        return {"score": tf.reduce_sum(queries * self.model.candidate_from_text(item_text), axis=1)}

    def _embed_features(self, features: tf.Tensor) -> dict[str, tf.Tensor]:
        """Models with dense features: the candidate embedding of items given by their raw vector."""
        return {"embedding": self.model.candidate_from_features(features)}

    def _score_features(self, user_id: tf.Tensor, features: tf.Tensor) -> dict[str, tf.Tensor]:
        """Models with dense features: the score of each (user, item given by its vector) pair."""
        tf.debugging.assert_equal(
            tf.size(user_id), tf.shape(features)[0], message="user_id and features rows differ"
        )
        queries = self.model.query_from_index(self.model.user_index(user_id))
        return {"score": tf.reduce_sum(queries * self.model.candidate_from_features(features), axis=1)}

    def _recommend_from_history(self, history_item_ids: tf.Tensor, history_weights: tf.Tensor, k: tf.Tensor) -> dict:
        """History models: top-``k`` catalogue items for users given by their history."""
        tf.debugging.assert_equal(
            tf.shape(history_item_ids), tf.shape(history_weights),
            message="history_item_ids and history_weights shapes differ",
        )  # fmt: skip
        items = self.model.item_index(history_item_ids)
        queries = self.model.query_from_history(items, history_weights)
        rows = tf.shape(items)[0]
        k, width = self._k(k, rows, self.max_k)
        in_catalogue = (items > 0) & (items <= self.num_items)  # cold items are not ranked
        exclude = tf.where(in_catalogue, items, tf.zeros_like(items))
        top = self.approx_top if self.approx else self.exact_top
        return self._top(*top(queries, exclude, self.max_k), k, width)

    def signatures(self) -> dict:
        """The concrete functions to save, by signature name."""
        default = self.recommend_default if self.task == "retrieval" else self.score
        text = {}
        if self.takes_text:
            text = {
                "item_embedding_from_text": self.item_embedding_from_text.get_concrete_function(),
                "score_text": self.score_text.get_concrete_function(),
            }
        if self.num_features:
            text["item_embedding_from_features"] = self.item_embedding_from_features.get_concrete_function()
            text["score_features"] = self.score_features.get_concrete_function()
        if self.takes_history:
            text["recommend_from_history"] = self.recommend_from_history.get_concrete_function()
        return {
            **text,
            "serving_default": default.get_concrete_function(),
            "recommend": self.recommend.get_concrete_function(),
            "recommend_excluding": self.recommend_excluding.get_concrete_function(),
            "recommend_including_seen": self.recommend_including_seen.get_concrete_function(),
            "score": self.score.get_concrete_function(),
            "known_users": self.known_users.get_concrete_function(),
            "query_embedding": self.query_embedding.get_concrete_function(),
            "item_embedding": self.item_embedding.get_concrete_function(),
            "similar_items": self.similar_items.get_concrete_function(),
        }


def _dot(queries: tf.Tensor, table: tf.Tensor) -> tf.Tensor:
    """``[B, d] x [N, d] -> [B, N]``."""
    return tf.matmul(queries, table, transpose_b=True)


def _check_finite(model, candidates: tf.Tensor, batch_size: int = 65_536) -> None:
    """Refuses a model whose candidate or query tower outputs are not finite (it diverged)."""
    from tfrec.errors import TfrecError

    bad = "item (candidate)" if not bool(tf.reduce_all(tf.math.is_finite(candidates))) else None
    users = len(model.user_vocabulary) + 1
    for start in range(0, users, batch_size):
        if bad:
            break
        index = tf.range(start, min(start + batch_size, users), dtype=tf.int64)
        if not bool(tf.reduce_all(tf.math.is_finite(model.query_from_index(index)))):
            bad = "user (query)"
    if bad:
        raise TfrecError(
            f"the model's {bad} embeddings hold NaN or inf (training diverged; try a lower "
            "learning_rate): nothing exported"
        )
