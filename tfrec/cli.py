"""The ``tfrec`` command line: ``tfrec datasets | models | train | export | validate | recommend``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from tfrec.errors import TfrecError


class UserError(Exception):
    """An error in the command line or its inputs: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UserError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tfrec", description="Recommender models on TensorFlow/Keras.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    commands.add_parser("datasets", help="list dataset names and where each is looked for")
    commands.add_parser("models", help="list registered models")
    train = commands.add_parser("train", help="train, evaluate and write metrics.json")
    train.add_argument("model", help="a registered model name (see `tfrec models`)")
    train.add_argument("--dataset", default="synthetic", help="dataset name (default: synthetic)")
    train.add_argument("--data-dir", help="folder holding the dataset's upstream files")
    train.add_argument("--download", action="store_true", help="download the dataset if missing")
    train.add_argument("--split", help="random:F | temporal:F | leave-last-out | fold:NAME | cold-items:F")
    train.add_argument("--epochs", type=int, help="training epochs (default: the model's config)")
    train.add_argument("--batch-size", type=int, help="batch size (default: the model's config)")
    train.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config field, e.g. --set embedding_dim=64 (repeatable)")  # fmt: skip
    train.add_argument("--protocol", help="full | sampled:N | cold-start (default: full for ranking models)")
    train.add_argument("--k", default="10,20", help="top-K cut-offs, comma-separated (default: 10,20)")
    train.add_argument("--output", help="folder for metrics.json (default: runs/MODEL-DATASET)")
    train.add_argument("--quiet", action="store_true", help="no per-epoch progress output")
    train.add_argument("--catch-up", action="store_true",
                       help="lazy optimizer applies embedding rows' skipped momentum steps (better on sparse data)")  # fmt: skip
    train.add_argument(
        "--strategy",
        choices=("default", "mirrored", "multi-worker"),
        default="default",
        help="tf.distribute strategy: default (one device), mirrored (this host's GPUs or devices), "
        "multi-worker (the hosts TF_CONFIG names)",
    )
    train.add_argument(
        "--export-dir", help="export the trained model here (TF Serving layout DIR/<version>/)"
    )
    train.add_argument(
        "--overwrite", action="store_true", help="with --export-dir: replace an existing version"
    )
    export = commands.add_parser("export", help="export a saved model (.keras) to TF Serving's layout")
    export.add_argument("model_path", help="a model saved with model.save(...) (e.g. runs/X/model.keras)")
    export.add_argument("--export-dir", required=True, help="base directory, e.g. exports/two_tower")
    export.add_argument("--version", type=int, help="integer version (default: next free)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing version")
    validate = commands.add_parser("validate", help="check an export through TF Serving's signature path")
    validate.add_argument("export_dir", help="a version directory (exports/NAME/VERSION) or a base directory")
    recommend = commands.add_parser("recommend", help="top-k items for a user, answered by an export")
    recommend.add_argument("export_dir", help="a version directory or a base directory (latest version)")
    recommend.add_argument("--user", required=True, action="append", help="user id (repeatable)")
    recommend.add_argument("-k", type=int, default=10, help="how many items (default: 10)")
    recommend.add_argument("--exclude", nargs="*", default=[], metavar="ITEM", help="item ids to leave out")
    return parser


def _datasets() -> int:
    from tfrec import datasets
    from tfrec.data.loaders import DATASETS

    places = datasets.locations()
    print(f"{'name':<24} {'looked for in':<48} description")
    for name in datasets.names():
        description = (
            DATASETS[name].description if name in DATASETS else "generated with planted structure (default)"
        )
        print(f"{name:<24} {places[name]:<48} {description}")
    return 0


def _models() -> int:
    from tfrec.models import entry, names

    for name in names():
        item = entry(name)
        print(f"{name:<16} {item.task:<10} {item.description}")
    return 0


def _overrides(pairs: Sequence[str], epochs: int | None, batch_size: int | None) -> dict[str, object]:
    overrides: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"argument --set: expected KEY=VALUE, got {pair!r}")
        overrides[key.strip()] = value.strip()
    if epochs is not None:
        if epochs <= 0:
            raise UserError(f"argument --epochs: must be a positive integer, got {epochs}")
        overrides["epochs"] = epochs
    if batch_size is not None:
        if batch_size <= 0:
            raise UserError(f"argument --batch-size: must be a positive integer, got {batch_size}")
        overrides["batch_size"] = batch_size
    return overrides


def _train(args: argparse.Namespace) -> int:
    import tfrec
    from tfrec.data import split as split_data
    from tfrec.models import entry
    from tfrec.training import config_dict, train

    item = entry(args.model)
    overrides = _overrides(args.set, args.epochs, args.batch_size)
    tfrec.models.make_config(args.model, **overrides)  # fail fast on bad --set values
    ks = _ks(args.k)
    if args.protocol is not None:
        tfrec.evaluation.parse_protocol(args.protocol)
    output = Path(args.output or Path("runs") / f"{args.model}-{args.dataset}")
    _check_writable(output, "--output")
    if args.export_dir:
        _check_writable(Path(args.export_dir), "--export-dir")
    data = tfrec.datasets.load(args.dataset, args.data_dir, download=args.download)
    spec = args.split or ("random:0.2" if item.task == "rating" else "leave-last-out")
    parts = split_data(data, spec, seed=args.seed)
    print(f"data: {data.summary()}; split {spec}: {len(parts.train):,} train / {len(parts.test):,} test")
    result = train(
        args.model,
        parts.train,
        strategy=_strategy(args.strategy),
        backup_dir=output / "backup",
        seed=args.seed,
        verbose=0 if args.quiet else (1 if sys.stdout.isatty() else 2),
        catch_up=args.catch_up,
        **overrides,
    )
    metrics = tfrec.evaluate(
        result.model, parts.train, parts.test, k=ks, protocol=args.protocol, seed=args.seed
    )
    report = {
        "model": args.model,
        "dataset": args.dataset,
        "split": spec,
        "protocol": args.protocol or ("none" if item.task == "rating" else "full"),
        "config": {**config_dict(result.config), "seed": args.seed},
        "metrics": metrics,
        "train_seconds": round(result.train_seconds, 3),
        "train_examples_per_second": round(result.train_examples_per_second, 1),
        # Epochs this process ran (a run resumed from output/backup starts after 0).
        "epochs_run": result.epochs_run,
    }
    result.model.save(output / "model.keras")
    report["model_path"] = str(output / "model.keras")
    if args.export_dir:
        report["export_path"] = str(
            tfrec.export(result.model, args.export_dir, overwrite=args.overwrite, metrics=metrics)
        )
    path = output / "metrics.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, path)
    print(f"\n{args.model} on {args.dataset} ({spec}), trained in {result.train_seconds:.1f}s "
          f"({result.train_examples_per_second:,.0f} examples/s)")  # fmt: skip
    for name, value in metrics.items():
        print(f"  {name:<14} {value:.4f}")
    print(f"metrics written to {path}; model saved to {report['model_path']}")
    if args.export_dir:
        print(f"exported and validated: {report['export_path']}")
    return 0


def _export(args: argparse.Namespace) -> int:
    import tfrec

    path = Path(args.model_path)
    if not path.is_file():
        raise UserError(f"argument model_path: no file {path}")
    _check_writable(Path(args.export_dir), "--export-dir")
    try:
        model = tfrec.models.load(path)
    except TfrecError as err:
        raise UserError(f"argument model_path: {err}") from err
    target = tfrec.export(model, args.export_dir, args.version, overwrite=args.overwrite)
    print(f"exported and validated: {target}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    import tfrec

    path = _version_dir(Path(args.export_dir))
    report = tfrec.serving.validate(path)
    names = ", ".join(sorted(report["signatures"]))
    print(f"{path}: OK, {report['requests']} warmup requests matched through the TF Serving path ({names})")
    return 0


def _recommend(args: argparse.Namespace) -> int:
    import numpy as np

    import tfrec

    if args.k <= 0:
        raise UserError(f"argument -k: must be a positive integer, got {args.k}")
    served = tfrec.serving.ExportedModel(_version_dir(Path(args.export_dir)))
    if args.exclude:
        exclude = np.asarray([args.exclude] * len(args.user), dtype=object)
        out = served.run("recommend_excluding", user_id=args.user, k=args.k, exclude_item_ids=exclude)
    else:
        out = served.run("recommend", user_id=args.user, k=args.k)
    for user, items, scores in zip(args.user, out["item_ids"], out["scores"]):
        print(f"user {user}:")
        for rank, (item, score) in enumerate(zip(items, scores), start=1):
            print(f"  {rank:>3}. {item}  {score:.4f}")
    return 0


def _version_dir(path: Path) -> Path:
    """A version directory as given, or the latest version under a base directory."""
    if (path / "saved_model.pb").is_file():
        return path
    from tfrec.serving import versions

    found = versions(path)
    if not found:
        raise UserError(f"{path}: no SavedModel here and no numbered version below it")
    return path / str(found[-1])


def _strategy(name: str):
    """The tf.distribute strategy named on the command line (None: the default one)."""
    if name == "default":
        return None
    from tfrec._keras import tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if not os.environ.get("TF_CONFIG"):
        raise UserError(
            "argument --strategy multi-worker: set TF_CONFIG to the cluster and this worker's task"
        )
    return tf.distribute.MultiWorkerMirroredStrategy()


def _ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as err:
        raise UserError(f"argument --k: expected comma-separated positive integers, got {text!r}") from err
    if not ks or min(ks) <= 0:
        raise UserError(f"argument --k: expected comma-separated positive integers, got {text!r}")
    return ks


def _check_writable(output: Path, flag: str) -> None:
    try:
        output.mkdir(parents=True, exist_ok=True)
        probe = output / ".tfrec-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UserError(f"argument {flag}: cannot write to {output}: {err.strerror or err}") from err


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; returns the process exit code."""
    try:
        args = _parser().parse_args(argv)
        if args.command == "datasets":
            return _datasets()
        if args.command == "models":
            return _models()
        commands = {"train": _train, "export": _export, "validate": _validate, "recommend": _recommend}
        return commands[args.command](args)
    except (UserError, TfrecError) as err:
        message = str(err).replace("\n", " ")
        print(f"tfrec: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
