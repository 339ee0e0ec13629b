"""Warmup requests: one realistic request per signature, written to and read from the
export's ``assets.extra/tf_serving_warmup_requests`` (PredictionLog records)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tfrec._keras import tf
from tfrec.errors import TfrecError
from tfrec.models.capabilities import FeatureCandidates, HistoryQueries, TextCandidates

ASSETS_EXTRA = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"


class WarmupError(TfrecError):
    """A warmup request does not run against the export."""


def warmup_inputs(model, module) -> list:
    """``(signature, inputs)`` warmup requests for an export of ``model`` through ``module``.

    One realistic request per signature (known ids, an unknown id; ``exclude_width``
    exclusions a row), one with a different ``k`` per row, and ``recommend`` and
    ``similar_items`` at each of the module's row buckets. With an XLA export, one
    request more for each shape a request can give a compiled core (rows bucket x
    exclusion-width bucket x narrow or wide core), so no request after load compiles.

    Every request is one a batching server accepts: every input has the batch dimension
    (``k`` is one value per row), all inputs the same number of rows, at most
    :data:`MAX_BATCH_SIZE`.
    """
    # Three of each (known ids first, then unknown ones), even for a one-item catalogue.
    users = [*list(model.user_vocabulary[:2]), "unknown-user", "unknown-user-2"][:3]
    items = [*list(model.item_vocabulary[:2]), "unknown-item", "unknown-item-2"][:3]
    small = min(5, module.max_k)
    k = np.full(3, small, np.int32)
    user_ids = np.asarray(users, dtype=object)
    item_ids = np.asarray(items, dtype=object)
    exclude = np.full((3, module.exclude_width), "", dtype=object)
    exclude[0, 0], exclude[1, 0] = items[0], items[1]
    if module.exclude_width > 1:
        exclude[1, 1] = items[0]
    default = (
        {"user_id": user_ids} if model.task == "retrieval" else {"user_id": user_ids, "item_id": item_ids}
    )
    requests = [
        ("serving_default", default),
        ("recommend", {"user_id": user_ids, "k": k}),
        ("recommend", {"user_id": user_ids, "k": np.asarray([1, module.max_k, 2], np.int32)}),
        ("recommend_excluding", {"user_id": user_ids, "k": k, "exclude_item_ids": exclude}),
        ("recommend_including_seen", {"user_id": user_ids, "k": k}),
        ("score", {"user_id": user_ids, "item_id": item_ids}),
        ("known_users", {"user_id": user_ids}),
        ("query_embedding", {"user_id": user_ids}),
        ("item_embedding", {"item_id": item_ids}),
        ("similar_items", {"item_id": item_ids, "k": np.full(3, min(small, module.max_similar), np.int32)}),
    ]
    known = list(model.user_vocabulary) or ["unknown-user"]
    catalogue = list(model.item_vocabulary)
    # Every signature at every row bucket (a first call at a new batch size picks and
    # prepares kernels for it), the k alternating between the two cores' widths.
    for number, size in enumerate(module.row_buckets()):
        batch = np.asarray([known[j % len(known)] for j in range(size)], dtype=object)
        pieces = np.asarray([catalogue[j % len(catalogue)] for j in range(size)], dtype=object)
        ks = np.full(size, module.max_k if number % 2 == 0 else 1, np.int32)
        requests += [
            ("recommend", {"user_id": batch, "k": ks}),
            ("recommend_including_seen", {"user_id": batch, "k": ks}),
            ("recommend_excluding", {"user_id": batch, "k": ks[::-1].copy(),
                                     "exclude_item_ids": np.full((size, module.exclude_width), "", dtype=object)}),
            ("similar_items", {"item_id": pieces, "k": np.full(size, module.max_similar, np.int32)}),
            ("score", {"user_id": batch, "item_id": pieces}),
            ("known_users", {"user_id": batch}),
            ("query_embedding", {"user_id": batch}),
            ("item_embedding", {"item_id": pieces}),
        ]  # fmt: skip
    if module.xla:
        requests += _compiled_shapes(model, module)
    if isinstance(model, TextCandidates):
        texts = np.asarray([*model.example_texts(2), ""], dtype=object)
        requests += [
            ("item_embedding_from_text", {"item_text": texts}),
            ("score_text", {"user_id": user_ids, "item_text": texts}),
        ]
    if isinstance(model, FeatureCandidates) and model.feature_names():
        values = model.example_features(2)
        values = np.concatenate([values, np.zeros((3 - len(values), values.shape[1]), np.float32)])
        requests += [
            ("item_embedding_from_features", {"features": values}),
            ("score_features", {"user_id": user_ids, "features": values}),
        ]
    if isinstance(model, HistoryQueries) and model.has_history():
        history = np.asarray([[items[0], items[1]], [items[2], ""], ["", ""]], dtype=object)
        plays = np.asarray([[10.0, 1.0], [3.0, 0.0], [0.0, 0.0]], np.float32)
        requests.append(("recommend_from_history", {"history_item_ids": history, "history_weights": plays, "k": k}))
    return requests


def _compiled_shapes(model, module) -> list:
    """One request for each shape an XLA export's ``recommend_top`` (and its narrow twin)
    can run at: each row bucket, each exclusion-width bucket a batch can reach (from the
    seen-items table's row lengths, plus ``exclude_width`` for ``recommend_excluding``,
    0 for ``recommend_including_seen``), each core width."""
    counts = np.diff(module.seen_offsets.numpy())[: len(model.user_vocabulary) + 1]
    # A user per reachable width: index 0 is the unknown user (nothing seen).
    names = ["unknown-user", *list(model.user_vocabulary)]
    by_width: dict[tuple[str, int], str] = {}
    for index in np.argsort(counts, kind="stable"):
        count = int(counts[index])
        by_width.setdefault(("recommend", module.width_bucket(count)), names[index])
        by_width.setdefault(("recommend_excluding", module.width_bucket(count + module.exclude_width)), names[index])
    by_width.setdefault(("recommend_including_seen", 0), "unknown-user")
    cores = sorted({module.narrow_k, module.max_k})
    requests, covered = [], set()
    for (signature, width), user in by_width.items():
        for rows in module.row_buckets():
            for core in cores:
                if (width, rows, core) in covered:
                    continue
                covered.add((width, rows, core))
                inputs = {
                    "user_id": np.asarray([user] + ["unknown-user"] * (rows - 1), dtype=object),
                    "k": np.full(rows, core, np.int32),
                }
                if signature == "recommend_excluding":
                    inputs["exclude_item_ids"] = np.full((rows, module.exclude_width), "", dtype=object)
                requests.append((signature, inputs))
    return requests


def write_warmup(path: Path, name: str, requests: list[tuple[str, dict[str, np.ndarray]]]) -> None:
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, inputs in requests:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=name, signature_name=signature)
            )
            for key, value in inputs.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def outputs_of(functions: Mapping[str, Any], requests) -> dict[str, np.ndarray]:
    """Outputs of each request computed in process, keyed ``"<request>/<output>"``."""
    expected = {}
    for number, (signature, inputs) in enumerate(requests):
        tensors = {k: tf.constant(v) for k, v in inputs.items()}
        for key, value in functions[signature](**tensors).items():
            expected[f"{number}/{key}"] = value.numpy()
    return expected


def read_warmup(export_dir: str | os.PathLike) -> list[tuple[str, dict[str, np.ndarray]]]:
    """The ``(signature, inputs)`` of each request in an export's warmup file."""
    from tensorflow_serving.apis import prediction_log_pb2

    requests = []
    for record in tf.data.TFRecordDataset(str(Path(export_dir) / ASSETS_EXTRA / WARMUP_FILE)):
        request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        requests.append((request.model_spec.signature_name or "serving_default", inputs))
    return requests


def expected_outputs(export_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """The warmup requests' outputs from the export loaded in this process (TF2 path)."""
    path = Path(export_dir)
    loaded = tf.saved_model.load(str(path))
    try:
        return outputs_of(loaded.signatures, read_warmup(path))
    except (KeyError, TypeError, tf.errors.OpError) as err:
        raise WarmupError(f"{path}: a warmup request does not run in process: {err}") from err
