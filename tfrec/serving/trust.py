"""Checks an export before anything of it runs: tfrec's metadata, and only the ops tfrec's exports use.

A SavedModel is a program: its init op and signatures run whatever ops its graph holds,
file, process and network ops included, as soon as a session loads it. ``validate``,
``recommend`` and :class:`~tfrec.serving.ExportedModel` therefore read ``saved_model.pb``
as a protobuf first (nothing of the export runs) and refuse, in one line, an export that
is not tfrec's: no ``assets.extra/tfrec_metadata.json``, or an op outside :data:`COMPUTE_OPS`
anywhere a signature or the init op can reach. The checkpoint ops (:data:`CHECKPOINT_OPS`:
they read and write files) are allowed only in the functions the SavedModel's saver names
(what the loader runs to restore the variables). ``trust=True`` (CLI ``--trust-export``)
skips the check for a file the user trusts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from tfrec.errors import TfrecError

# Every op a tfrec export uses outside its saver (every registered model, the content
# encoders, dense features and histories, catalogues past the grouped top-k's 65,536
# items, with and without XLA); none reads or writes files, starts processes or talks to
# the network. Tests export each model (and a large catalogue) and check its ops are
# here, so a model that needs a new op adds it here deliberately.
COMPUTE_OPS = frozenset({
    "AddN", "AddV2", "All", "Any", "Assert", "AssignVariableOp", "BiasAdd", "BroadcastTo", "Cast", "ConcatV2",
    "Const", "Conv2D", "Cumsum", "DenseBincount", "DisableCopyOnRead", "DivNoNan", "Einsum", "Equal",
    "ExpandDims", "Fill", "FloorDiv", "FloorMod", "FusedBatchNormV3", "GatherNd", "GatherV2", "Greater", "GreaterEqual",
    "HashTableV2", "Identity", "IdentityN", "If", "IsFinite", "IsInf", "Less", "LessEqual", "Log1p", "LowerBound",
    "LogicalAnd", "LogicalNot", "LogicalOr", "LookupTableFindV2", "LookupTableImportV2", "MatMul",
    "MatrixBandPart", "Max", "Maximum", "Mean", "Min", "Minimum", "Mul", "Neg", "NoOp", "NotEqual", "OnesLike", "Pack", "Pad", "PadV2", "PartitionedCall",
    "Placeholder", "Prod", "RaggedRange", "RaggedTensorToTensor", "RandomUniform", "Range", "ReadVariableOp",
    "RealDiv", "Relu", "Reshape", "ResourceGather", "Rsqrt", "Select", "SelectV2", "Shape", "ShardedFilename",
    "Sigmoid", "Size", "Softmax", "Split", "SplitV", "Sqrt", "Square", "SquaredDifference", "Squeeze", "StopGradient", "StatefulPartitionedCall", "StatelessIf",
    "StatelessWhile", "StaticRegexFullMatch", "StaticRegexReplace", "StridedSlice", "StringJoin",
    "StringLower", "StringSplitV2", "Sub", "Sum", "Tanh", "TensorListFromTensor", "TensorListGetItem",
    "TensorListReserve", "TensorListSetItem", "TensorListStack", "TensorScatterMin", "TensorScatterUpdate", "Tile", "TopKV2",
    "Transpose", "Unpack", "VarHandleOp", "Where", "While", "ZerosLike",
})  # fmt: skip
# The checkpoint ops: allowed only in the functions the saver names.
CHECKPOINT_OPS = frozenset({"SaveV2", "RestoreV2", "MergeV2Checkpoints"})
METADATA = Path("assets.extra") / "tfrec_metadata.json"
# saved_model.pb is read whole; protobuf itself caps a message at 2 GB.
MAX_GRAPH_BYTES = 2**31


class UntrustedExportError(TfrecError):
    """An export that tfrec did not write (or that holds ops tfrec's exports never use)."""


def _called(node) -> Iterator[str]:
    """Names of the functions a node calls (``f``, branches, loop bodies, ...)."""
    for value in node.attr.values():
        if value.HasField("func"):
            yield value.func.name
        if value.HasField("list"):
            yield from (f.name for f in value.list.func)


def _reach(nodes, functions: dict, allowed: frozenset, where: str, seen: set) -> None:
    """Checks ``nodes`` and every function they call, transitively, against ``allowed``."""
    pending = [(node, where) for node in nodes]
    while pending:
        node, place = pending.pop()
        if node.op not in allowed and node.op not in functions:
            raise UntrustedExportError(f"op {node.op!r} (node {node.name!r} in {place})")
        for name in [*_called(node), *([node.op] if node.op in functions else [])]:
            if name not in functions:
                raise UntrustedExportError(f"a call to {name!r}, which the graph does not define")
            if name not in seen:
                seen.add(name)
                pending += [(inner, f"function {name!r}") for inner in functions[name].node_def]


def check_trusted(export_dir: str | os.PathLike) -> dict:
    """Refuses an export tfrec did not write, reading its files only (nothing runs).

    Args:
        export_dir: A version directory (``exports/two_tower/1``).

    Returns:
        The export's metadata.

    Raises:
        UntrustedExportError: no or unreadable ``tfrec_metadata.json``, or an op outside
            :data:`COMPUTE_OPS` (checkpoint ops outside the saver's functions), in one line.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    from tfrec.models.registry import names

    path = Path(export_dir)
    advice = "pass trust=True (CLI: --trust-export) only if you trust this file"
    described = path / METADATA
    try:
        metadata = json.loads(described.read_text()) if described.is_file() and described.stat().st_size < 2**20 else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        metadata = None
    if not isinstance(metadata, dict) or metadata.get("model") not in names():
        raise UntrustedExportError(
            f"{path}: refused: not a tfrec export ({METADATA} missing or not tfrec's); {advice}"
        )
    graph = path / "saved_model.pb"
    if not graph.is_file() or graph.stat().st_size > MAX_GRAPH_BYTES:
        raise UntrustedExportError(f"{path}: refused: no saved_model.pb (or one over 2 GB); {advice}")
    try:
        saved = saved_model_pb2.SavedModel.FromString(graph.read_bytes())
    except Exception as err:  # noqa: BLE001 - any parse failure is a refusal, in one line
        raise UntrustedExportError(f"{path}: refused: saved_model.pb does not parse ({type(err).__name__})") from err
    if len(saved.meta_graphs) != 1 or list(saved.meta_graphs[0].meta_info_def.tags) != ["serve"]:
        raise UntrustedExportError(f"{path}: refused: not one 'serve' graph as tfrec writes; {advice}")
    meta = saved.meta_graphs[0]
    functions = {f.signature.name: f for f in meta.graph_def.library.function}
    saver_nodes = {meta.saver_def.save_tensor_name.split(":")[0], meta.saver_def.restore_op_name.split(":")[0]}
    main = [n for n in meta.graph_def.node if n.name not in saver_nodes]
    seen: set[str] = set()
    try:
        # Signatures and the init op first, so a function they share with the saver is
        # held to the stricter list.
        _reach(main, functions, COMPUTE_OPS, "the graph", seen)
        saver = [n for n in meta.graph_def.node if n.name in saver_nodes]
        _reach(saver, functions, COMPUTE_OPS | CHECKPOINT_OPS, "the saver", seen)
        stray = [f for name, f in functions.items() if name not in seen]
        for function in stray:  # defined but not called from anywhere: held to the strict list too
            _reach(function.node_def, functions, COMPUTE_OPS, f"function {function.signature.name!r}", seen)
    except UntrustedExportError as err:
        raise UntrustedExportError(
            f"{path}: refused: the export uses {err}, which tfrec's exports never use (it could read or write "
            f"files, run processes or reach the network); {advice}"
        ) from None
    return metadata
