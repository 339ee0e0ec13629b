"""``tfrec.export``: a trained model to TF Serving's versioned SavedModel layout, validated."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from tfrec._keras import tf
from tfrec.errors import TfrecError
from tfrec.limits import INDEXES, MAX_EXCLUDE_WIDTH, MAX_K_LIMIT
from tfrec.models.registry import entry, names
from tfrec.progress import Progress
from tfrec.serving.module import MAX_BATCH_SIZE, PAD_SCORE, XLA_SERVER_FLAG, ServingModule
from tfrec.serving.warmup import (
    ASSETS_EXTRA,
    WARMUP_FILE,
    WarmupError,
    expected_outputs,
    outputs_of,
    warmup_inputs,
    write_warmup,
)
from tfrec.version import __version__

METADATA_FILE = "tfrec_metadata.json"
BATCHING_FILE = "batching_parameters.txt"
# Where TF Serving's --enable_per_model_batching_parameters reads a model's own batching
# parameters: the SavedModel (version) directory.
PER_MODEL_BATCHING_FILE = "batching_params.pbtxt"
# Batching parameters (text proto) for --enable_batching: every signature input has the
# batch dimension, so all of them batch; every warmup request has at most max_batch_size rows.
BATCHING_PARAMETERS = f"""max_batch_size {{ value: {MAX_BATCH_SIZE} }}
batch_timeout_micros {{ value: 2000 }}
max_enqueued_batches {{ value: 100 }}
num_batch_threads {{ value: 4 }}
"""
CHECKER = Path(__file__).with_name("check_export.py")

# What each signature does; its inputs and outputs are read off the signature itself.
SIGNATURE_DOCS = {
    "serving_default": "retrieval models: recommend with k = serving_default_k; rating/ranking models: score",
    "recommend": "top-k items per user (k per row, at most max_k), the user's training items left out; "
    "a row past its k or past the items left ends in '' ids scored pad_score",
    "recommend_excluding": "recommend, also leaving out each row's exclude_item_ids ('' pads the fixed width)",
    "recommend_including_seen": "recommend without leaving out the user's training items",
    "score": "the model's score of each (user, item) pair",
    "known_users": "1 for a user id in the training vocabulary, 0 for one answered as the unknown user",
    "query_embedding": "the query tower's output per user",
    "item_embedding": "the candidate tower's output per item",
    "similar_items": "the k most similar items per item (cosine of candidate embeddings), the item itself "
    "left out",
    "item_embedding_from_text": "content models: the candidate embedding of an item given by its text (cold items)",
    "score_text": "content models: the score of a user and an item given by its text (cold items)",
    "item_embedding_from_features": "models with dense item features: the candidate embedding of an item given "
    "by its raw feature vector, in dense_features order (cold items)",
    "score_features": "models with dense item features: the score of a user and an item given by its vector",
    "recommend_from_history": "models with a history tower: top-k items for users given by their history "
    "('' pads history_item_ids; history_weights are play counts, 1 without); the history's items left out",
}


def _spec(tensor) -> dict:
    """``{"dtype": "string", "shape": "[B, 64]"}`` of a TensorSpec or symbolic tensor."""
    dims = ["B" if i == 0 and d is None else ("N" if d is None else str(d)) for i, d in enumerate(tensor.shape)]
    return {"dtype": tensor.dtype.name, "shape": "[" + ", ".join(dims) + "]"}


def describe_signatures(functions: Mapping) -> dict:
    """Each signature's inputs and outputs (dtype, shape; B is the batch) and what it does,
    read from the concrete functions that are saved."""
    described = {}
    for name, function in functions.items():
        inputs = tf.nest.flatten(function.structured_input_signature)
        described[name] = {
            "does": SIGNATURE_DOCS[name],
            "inputs": {spec.name: _spec(spec) for spec in inputs},
            "outputs": {key: _spec(value) for key, value in function.structured_outputs.items()},
        }
    return described


class ExportError(TfrecError):
    """An export could not be written or did not validate; nothing was left behind."""


def registered_name(model) -> str:
    """The registry name of a model instance (``two_tower``)."""
    name = getattr(type(model), "registry_name", "")
    if name not in names() or entry(name).model_cls is not type(model):
        raise TfrecError(f"{type(model).__name__} is not a registered tfrec model, so it cannot be exported")
    return name


def versions(base: Path) -> list[int]:
    """The integer versions already under an export base directory (complete ones only).

    A numbered folder without ``saved_model.pb`` (an empty or stray folder) is not a
    version: TF Serving could not load it either.
    """
    base = Path(base)
    if not base.is_dir():
        return []
    return sorted(
        int(p.name) for p in base.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner_pid(path: Path) -> int | None:
    """The pid that owns a name tfrec writes in a base directory, or None for other names.

    Staging folders are ``.tmp-<version>-<pid>-<hex>`` (validator scratch
    ``.tmp-check-<pid>-*``, a replaced version ``.old-<version>-<pid>-<hex>``); a version
    claim ``.claim-<version>`` holds its pid as text.
    """
    parts = path.name.split("-")
    if parts[0] == ".claim" and len(parts) == 2 and parts[1].isdigit():
        try:
            text = path.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None
    if parts[0] in (".tmp", ".old") and len(parts) >= 4 and parts[1].isdigit() and parts[2].isdigit():
        return int(parts[2])
    if parts[0] == ".tmp" and len(parts) >= 4 and parts[1] == "check" and parts[2].isdigit():
        return int(parts[2])
    return None


def clean_stale(base: Path) -> list[str]:
    """Removes staging folders and version claims left in ``base`` by a killed export.

    Only names tfrec itself writes (see :func:`_owner_pid`) whose process is gone are
    removed; anything else in the folder is left alone.

    Returns:
        The names removed.
    """
    removed: list[str] = []
    if not Path(base).is_dir():
        return removed
    for path in Path(base).iterdir():
        pid = _owner_pid(path)
        if pid is None or pid == os.getpid() or _alive(pid):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path.name)
    return removed


def _claim(base: Path, version: int | None, overwrite: bool) -> tuple[int, Path]:
    """Claims a version number atomically; returns (version, claim file).

    The claim is ``.claim-<version>`` created with ``O_EXCL`` (holding this pid), so of
    two exports racing for a number exactly one gets it. With ``version=None`` the
    loser takes the next number; with an explicit version it fails.
    """
    while True:
        claimed = [int(p.name.split("-")[1]) for p in base.glob(".claim-*") if p.name.split("-")[1].isdigit()]
        numbered = [int(p.name) for p in base.iterdir() if p.name.isdigit()]
        number = version if version is not None else max([0, *numbered, *claimed]) + 1
        target = base / str(number)
        if target.exists() and not overwrite:
            raise ExportError(f"{target} already exists; pass overwrite=True (--overwrite) to replace it")
        claim = base / f".claim-{number}"
        try:
            fd = os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            if version is not None:
                raise ExportError(
                    f"another export is writing {target} now; try again when it is done"
                ) from None
            continue
        with os.fdopen(fd, "w") as out:
            out.write(str(os.getpid()))
        if version is None and target.exists():  # completed by a racer between our read and claim
            claim.unlink(missing_ok=True)
            continue
        return number, claim


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the validator gets SIGKILL when the process that started it dies."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _storable(value: np.ndarray) -> np.ndarray:
    """Object (string) arrays as fixed-width bytes, so the .npz loads without pickle."""
    if value.dtype.kind == "O":
        return np.asarray([v if isinstance(v, bytes) else str(v).encode() for v in value.ravel()],
                          dtype=bytes).reshape(value.shape)  # fmt: skip
    return value


def run_checker(
    export_dir: Path,
    expected: dict[str, np.ndarray] | None,
    timeout: float = 600,
    scratch_parent: Path | None = None,
) -> dict:
    """Runs ``check_export.py`` in a fresh Python process; raises ExportError on any problem.

    The path is resolved first (the child runs in a scratch folder), and on Linux the
    child is killed if this process dies, so a killed export leaves no validator behind.
    """
    export_dir = Path(export_dir).resolve()
    prefix = f".tmp-check-{os.getpid()}-" if scratch_parent is not None else "tfrec-check-"
    parent = None if scratch_parent is None else Path(scratch_parent).resolve()
    with tempfile.TemporaryDirectory(prefix=prefix, dir=parent) as scratch:
        args = [sys.executable, str(CHECKER), str(export_dir)]
        if expected is not None:
            path = Path(scratch) / "expected.npz"
            np.savez(path, **{k: _storable(v) for k, v in expected.items()})
            args.append(str(path))
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        env.pop("TF_USE_LEGACY_KERAS", None)
        preexec = _die_with_parent if sys.platform.startswith("linux") else None
        try:
            done = subprocess.run(
                args,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
                cwd=scratch,
                preexec_fn=preexec,
            )
        except subprocess.TimeoutExpired as err:
            raise ExportError(f"validation of {export_dir} did not finish in {timeout:.0f} s") from err
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if str(export_dir) in line or "usage" in line]
        raise ExportError("validation failed: " + ("; ".join(lines) or done.stderr.strip()[-2000:]))
    return json.loads(done.stdout.strip().splitlines()[-1])


def metadata(model, name: str, module: ServingModule, metrics: Mapping[str, float] | None) -> dict:
    """What the export's metadata file says about the model."""
    import tensorflow_recommenders as tfrs

    return {
        "model": name,
        "family": entry(name).model_cls.__module__.rsplit(".", 1)[-1],
        "task": model.task,
        "description": entry(name).description,
        "paper": entry(name).paper,
        **model.export_config(),
        "embedding_dim": module.embedding_dim,
        "catalogue_items": module.num_items,
        "serving_default_k": module.default_k,
        "max_k": module.max_k,
        "max_similar_k": module.max_similar,
        "exclude_width": module.exclude_width,
        "pad_score": PAD_SCORE,
        "xla": module.xla,
        "server_flags": [XLA_SERVER_FLAG] if module.xla else [],
        "index": module.index_report,
        "batching": {
            "max_batch_size": MAX_BATCH_SIZE,
            "per_model_file": PER_MODEL_BATCHING_FILE,
            "file": f"{ASSETS_EXTRA}/{BATCHING_FILE}",
        },
        "seen_items": {
            "pairs": module.seen_pairs,
            "bytes": int(module.seen_offsets.numpy().nbytes) + 4 * module.seen_pairs,
        },
        "metrics": dict(metrics or {}),
        "signatures": describe_signatures(module.signatures()),
        "versions": {
            "tfrec": __version__,
            "tensorflow": tf.__version__,
            "tensorflow_recommenders": tfrs.__version__,
            "python": platform.python_version(),
        },
    }


def export(
    model,
    export_dir: str | os.PathLike,
    version: int | None = None,
    *,
    overwrite: bool = False,
    metrics: Mapping[str, float] | None = None,
    default_k: int = 10,
    validate: bool = True,
    seen_items: bool = True,
    max_k: int = 100,
    exclude_width: int = 64,
    xla: bool = False,
    index: str = "exact",
    recall: float = 0.95,
) -> Path:
    """Exports a trained model as ``<export_dir>/<version>/``, TF Serving's layout.

    Written into a temporary sibling directory, checked in a fresh process through the
    TF Serving signature path (see :func:`tfrec.serving.validate`), then renamed into
    place: a failure leaves no partial version behind.

    Args:
        model: A trained, registered tfrec model.
        export_dir: The model's base directory (``exports/two_tower``); TF Serving's
            ``--model_base_path``.
        version: Integer version; default one more than the largest present (or 1).
        overwrite: Replace an existing ``version``.
        metrics: Evaluation metrics to record in the metadata file.
        default_k: ``k`` of a retrieval model's ``serving_default`` signature.
        validate: Check the export in a fresh process before renaming it into place.
        seen_items: Carry each training user's seen items (``model.seen_items``) so
            ``recommend`` leaves them out; False leaves the table out (8 bytes per user
            plus 4 per training pair) and ``recommend`` then ranks every item.
        max_k: The most items a request gets (the cores' fixed width).
        exclude_width: The item ids per row of ``recommend_excluding`` (fixed, so batched
            requests share one shape; clients pad with "").
        xla: Compile the numeric cores with XLA (``jit_compile=True``). A stock
            ``tensorflow_model_server`` then needs ``--xla_cpu_compilation_enabled=true``
            (without it the warmup fails and the model does not load); the metadata's
            ``server_flags`` names it. Off by default: the export loads on a server
            started with its default flags.
        index: ``"exact"`` (every item scored per request) or ``"approx"`` (dot-product
            models: an inverted-file index built here; see
            :class:`tfrec.serving.ServingModule`). The metadata's ``index`` records the
            partitions, the probes chosen and the recall measured.
        recall: With ``index="approx"``: the recall@``default_k`` against the exact
            ranking the probes must reach on a sample of users.

    Returns:
        The path of the new version directory.

    Raises:
        ExportError: the version exists (without ``overwrite``), or writing or
            validation failed.
        TfrecError: the model is not a registered tfrec model, or a bad argument.

    Example:
        >>> path = tfrec.export(model, "exports/two_tower")
        >>> tfrec.serving.validate(path)
    """
    base = Path(export_dir)
    if version is not None and (
        not isinstance(version, (int, np.integer)) or isinstance(version, bool) or version < 0
    ):
        raise TfrecError(f"export(): version must be a non-negative integer, got {version!r}")
    for field, value, most in (("max_k", max_k, MAX_K_LIMIT), ("exclude_width", exclude_width, MAX_EXCLUDE_WIDTH)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not 1 <= value <= most:
            raise TfrecError(f"export(): {field} must be an integer in [1, {most}], got {value!r}")
    if index not in INDEXES:  # before anything is written (ServingModule checks it too)
        raise TfrecError(f"export(): index must be one of {', '.join(INDEXES)}, got {index!r}")
    if not isinstance(default_k, (int, np.integer)) or default_k < 1:
        raise TfrecError(f"export(): default_k must be a positive integer, got {default_k!r}")
    name = registered_name(model)
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExportError(f"cannot create {base}: {err.strerror or err}") from err
    clean_stale(base)
    version, claim = _claim(base, None if version is None else int(version), overwrite)
    target = base / str(version)
    staging = base / f".tmp-{version}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    # Export steps: index the catalogue, trace and save, warmup + metadata, validate.
    progress = Progress(
        4 if validate else 3, "export steps", least=2 if len(model.item_vocabulary) >= 100_000 else 99
    )
    try:
        module = ServingModule(
            model.for_serving(),
            default_k=default_k,
            seen_items=seen_items,
            max_k=max_k,
            exclude_width=exclude_width,
            xla=xla,
            index=index,
            recall=recall,
        )
        progress.advance()
        functions = module.signatures()
        aliases = {"tfrec_recommend_top": module.recommend_top, "tfrec_similar_top": module.similar_top}
        if module.narrow_k < module.max_k:
            aliases["tfrec_recommend_top_narrow"] = module.recommend_top_narrow
        tf.saved_model.save(
            module, str(staging), signatures=functions, options=tf.saved_model.SaveOptions(function_aliases=aliases)
        )
        progress.advance()
        extra = staging / ASSETS_EXTRA
        extra.mkdir()
        requests = warmup_inputs(model, module)
        write_warmup(extra / WARMUP_FILE, name, requests)
        (extra / BATCHING_FILE).write_text(BATCHING_PARAMETERS)
        (staging / PER_MODEL_BATCHING_FILE).write_text(BATCHING_PARAMETERS)
        (extra / METADATA_FILE).write_text(
            json.dumps(metadata(model, name, module, metrics), indent=2) + "\n"
        )
        progress.advance()
        if validate:
            run_checker(staging, outputs_of(functions, requests), scratch_parent=base)
            progress.advance()
        if target.exists():
            if not overwrite:
                raise ExportError(f"{target} appeared while exporting; pass overwrite=True to replace it")
            retired = base / f".old-{version}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.replace(target, retired)
            os.rename(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(staging, target)
    except ExportError:
        raise
    except OSError as err:
        raise ExportError(f"writing {target} failed: {err}") from err
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
        claim.unlink(missing_ok=True)
    return target


def validate(export_dir: str | os.PathLike, trust: bool = False) -> dict:
    """Validates an export through the TF Serving signature path in a fresh process.

    The expected outputs come from this process: the export is loaded with
    ``tf.saved_model.load`` and every warmup request is run through its signatures; the
    fresh process (TensorFlow only, no tfrec/TFRS/tf_keras) runs the same requests
    through ``tf.compat.v1.saved_model.loader.load`` and the signature tensors by name,
    and every output's dtype, shape and values must match.

    Before anything of the export runs, :func:`tfrec.serving.check_trusted` reads its
    files and refuses one tfrec did not write (``trust=True`` skips that).

    Args:
        export_dir: A version directory (``exports/two_tower/3``).
        trust: Skip the check of the export's metadata and ops (a file you trust).

    Returns:
        The report: signatures (inputs, outputs, method) and the number of requests run.

    Raises:
        ExportError: anything missing, failing or different, with the reasons.
        UntrustedExportError: not tfrec's export, or ops tfrec's exports never use.

    Example:
        >>> tfrec.serving.validate("exports/two_tower/1")["requests"]
        7
    """
    path = Path(export_dir)
    warmup = path / ASSETS_EXTRA / WARMUP_FILE
    if not (path / "saved_model.pb").is_file():
        raise ExportError(f"{path} is not a SavedModel version directory (no saved_model.pb)")
    if not trust:
        from tfrec.serving.trust import check_trusted

        check_trusted(path)
    if not warmup.is_file():
        raise ExportError(f"{warmup} is missing")
    try:
        outputs = expected_outputs(path)
    except WarmupError as err:
        raise ExportError(str(err)) from err
    return run_checker(path, outputs)
