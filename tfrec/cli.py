"""The ``tfrec`` command line: ``tfrec datasets | models | train | tune | export | validate | recommend``."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from tfrec import cli_checks as checks
from tfrec.cli_checks import RUN_FILE, UserError
from tfrec.errors import TfrecError
from tfrec.limits import INDEXES, MAX_EXCLUDE_WIDTH, MAX_K_LIMIT


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UserError(message)


def _data_arguments(command: argparse.ArgumentParser) -> None:
    """The model and data arguments ``train`` and ``tune`` share."""
    command.add_argument("model", help="a registered model name (see `tfrec models`)")
    command.add_argument("--dataset", help="dataset name (default: synthetic)")
    command.add_argument("--data-dir", help="folder holding the dataset's upstream files")
    command.add_argument("--download", action="store_true", help="download the dataset if missing")
    command.add_argument("--split", help="random:F | temporal:F | leave-last-out | fold:NAME | cold-items:F")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tfrec", description="Recommender models on TensorFlow/Keras.")
    parser.add_argument(
        "--verbose", action="store_true", help="show TensorFlow's own log and warnings (also TFREC_VERBOSE=1)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    commands.add_parser("datasets", help="list dataset names and where each is looked for")
    commands.add_parser("models", help="list registered models")
    train = commands.add_parser("train", help="train, evaluate and write metrics.json")
    _data_arguments(train)
    train.add_argument("--epochs", type=int, help="training epochs (default: the model's config)")
    train.add_argument("--batch-size", type=int, help="batch size (default: the model's config)")
    train.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config field, e.g. --set embedding_dim=64 (repeatable)")  # fmt: skip
    train.add_argument("--validation", metavar="SPEC",
                       help="hold a split of the training part out as validation (the --split forms but "
                       "fold:NAME); each epoch logs val_ metrics on it, recorded in metrics.json")  # fmt: skip
    train.add_argument("--protocol", help="full | sampled:N | cold-start (default: full for ranking models)")
    train.add_argument("--k", default="10,20", help="top-K cut-offs, comma-separated (default: 10,20)")
    train.add_argument("--output", help="folder for metrics.json (default: runs/MODEL-DATASET)")
    train.add_argument("--quiet", action="store_true", help="no per-epoch progress output")
    train.add_argument("--catch-up", action="store_true",
                       help="lazy optimizer applies embedding rows' skipped momentum steps (better on sparse data)")  # fmt: skip
    train.add_argument(
        "--strategy",
        choices=("default", "mirrored", "multi-worker", "parameter-server"),
        default="default",
        help="tf.distribute strategy: default (one device), mirrored (this host's GPUs or devices), "
        "multi-worker (the hosts TF_CONFIG names), parameter-server (this process the chief of the "
        "TF_CONFIG cluster; its workers and servers run `tfrec cluster-task`)",
    )
    train.add_argument("--min-shard-bytes", type=int,
                       help="parameter-server: split a table over the servers in parts of at least this "
                       "many bytes (default 262144)")  # fmt: skip
    train.add_argument(
        "--export-dir", help="export the trained model here (TF Serving layout DIR/<version>/)"
    )
    train.add_argument(
        "--overwrite", action="store_true", help="with --export-dir: replace an existing version"
    )
    export_flags(train, "with --export-dir: ")
    train.add_argument("--config", metavar="FILE",
                       help="a config file written by `tfrec tune` (its values; --set overrides them)")  # fmt: skip
    stream = train.add_argument_group("streaming from sharded files (instead of --dataset)")
    stream.add_argument("--data", metavar="GLOB",
                        help="train on Parquet or CSV shards streamed from disk, e.g. 'logs/part-*.parquet'")  # fmt: skip
    stream.add_argument("--columns", metavar="MAP",
                        help="which columns hold what: user=COL,item=COL[,rating=COL][,weight=COL] "
                        "(default: user_id, item_id)")  # fmt: skip
    stream.add_argument("--test-fraction", type=float, default=0.1,
                        help="share of (user, item) pairs the hash split holds out (default 0.1)")  # fmt: skip
    stream.add_argument(
        "--min-count", type=int, default=1, help="drop ids with fewer training rows (default 1)"
    )
    stream.add_argument("--max-users", type=int, help="keep at most this many most frequent users")
    stream.add_argument("--max-items", type=int, help="keep at most this many most frequent items")
    stream.add_argument("--shuffle-buffer", type=int, default=100_000, help="rows in the shuffle buffer")
    stream.add_argument("--data-service", metavar="ADDRESS",
                        help="a tf.data service dispatcher (grpc://host:port) whose workers read the CSV shards")  # fmt: skip
    stream.add_argument("--eval-users", type=int, default=2000,
                        help="evaluate on about this many test users (their rows gathered in one pass)")  # fmt: skip
    tune = commands.add_parser(
        "tune", help="search a model's config on a validation part of the training split"
    )
    _data_arguments(tune)
    tune.add_argument("--validation", metavar="SPEC",
                      help="split of the training part to score trials on (default: random:0.1 for rating "
                      "models, leave-last-out otherwise)")  # fmt: skip
    tune.add_argument(
        "--trials", type=int, default=20, help="trials to run (default: 20; added to a resumed study)"
    )
    tune.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    tune.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="hold a config field fixed (repeatable)")  # fmt: skip
    tune.add_argument(
        "--output", help="folder for study.db and best_config.json (default: runs/tune-MODEL-DATASET)"
    )
    export = commands.add_parser("export", help="export a saved model (.keras) to TF Serving's layout")
    export.add_argument("model_path", help="a model saved with model.save(...) (e.g. runs/X/model.keras)")
    export.add_argument("--export-dir", required=True, help="base directory, e.g. exports/two_tower")
    export.add_argument("--version", type=int, help="integer version (default: next free)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing version")
    export_flags(export, "")
    cluster_task = commands.add_parser(
        "cluster-task",
        help="serve as the parameter-server cluster's worker or server that TF_CONFIG names, until stopped "
        "(TensorFlow's gRPC server: all interfaces, unauthenticated, runs any op a client sends; keep it on a "
        "private network or behind a firewall)",
    )
    cluster_task.add_argument("--allow-public-interfaces", action="store_true",
                              help="start even on a host with a public (internet-routable) address, where anyone "
                              "who reaches the port can run ops, files included, in this process")  # fmt: skip
    validate = commands.add_parser("validate", help="check an export through TF Serving's signature path")
    validate.add_argument("export_dir", help="a version directory (exports/NAME/VERSION) or a base directory")
    validate.add_argument("--trust-export", action="store_true",
                          help="skip the check that refuses an export tfrec did not write (its metadata, and ops "
                          "that could read files, run processes or reach the network): only for files you trust")  # fmt: skip
    recommend = commands.add_parser("recommend", help="top-k items for a user, answered by an export")
    recommend.add_argument("export_dir", help="a version directory or a base directory (latest version)")
    recommend.add_argument("--user", required=True, action="append", help="user id (repeatable)")
    recommend.add_argument("-k", type=int, default=10, help="how many items (default: 10)")
    recommend.add_argument("--trust-export", action="store_true",
                           help="skip the check that refuses an export tfrec did not write: only for files you trust")  # fmt: skip
    recommend.add_argument(
        "--exclude", nargs="*", default=[], metavar="ITEM", help="more item ids to leave out"
    )
    recommend.add_argument(
        "--include-seen", action="store_true", help="do not leave out the user's training items"
    )
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


def export_flags(parser: argparse.ArgumentParser, prefix: str) -> None:
    """The export options ``train`` (with ``--export-dir``) and ``export`` share."""
    parser.add_argument("--no-seen-items", action="store_true",
                        help=f"{prefix}leave the users' training items out (recommend then ranks every item)")
    parser.add_argument("--max-k", type=int, default=100, help=f"{prefix}the most items a request gets (default 100)")
    parser.add_argument("--exclude-width", type=int, default=64,
                        help=f"{prefix}item ids per row of recommend_excluding (default 64)")
    parser.add_argument("--xla", action="store_true",
                        help=f"{prefix}compile the serving cores with XLA (TF Serving then needs "
                        "--xla_cpu_compilation_enabled=true; without it the model does not load)")
    parser.add_argument("--index", choices=INDEXES, default="exact",
                        help=f"{prefix}exact: rank the whole catalogue per request; approx: an inverted-file "
                        "index built at export, probing as few partitions as reach --recall (dot-product models)")
    parser.add_argument("--recall", type=float, default=0.95,
                        help=f"{prefix}with --index approx: the recall@k against exact to reach (default 0.95)")  # fmt: skip


def export_options(args: argparse.Namespace) -> dict:
    """``tfrec.export`` keyword arguments from the flags of :func:`export_flags`, checked."""
    checks.bounded(args.max_k, "--max-k", 1, MAX_K_LIMIT)
    checks.bounded(args.exclude_width, "--exclude-width", 1, MAX_EXCLUDE_WIDTH)
    if not 0 < args.recall <= 1:
        raise UserError(f"argument --recall: must be a number in (0, 1], got {args.recall}")
    return {"seen_items": not args.no_seen_items, "max_k": args.max_k, "exclude_width": args.exclude_width,
            "xla": args.xla, "index": args.index, "recall": args.recall}  # fmt: skip


def _train(args: argparse.Namespace) -> int:
    import tfrec
    from tfrec.data import split as split_data
    from tfrec.evaluation import check_protocol
    from tfrec.models import entry
    from tfrec.models.registry import config_to_dict
    from tfrec.training import train

    checks.bounded(args.seed, "--seed", 0, 2**32 - 1)
    export_options(args)
    if args.data is not None:
        return _train_streaming(args)
    if args.data_dir and args.dataset is None:
        raise UserError("argument --data-dir: name the dataset too (--dataset NAME; see `tfrec datasets`)")
    args.dataset = args.dataset or "synthetic"
    item = entry(args.model)
    overrides = {
        **checks.config_file(args.config, args.model),
        **checks.overrides(args.set, args.epochs, args.batch_size),
    }
    config = tfrec.models.make_config(args.model, **overrides)  # fail fast on bad --set values
    ks = checks.ks(args.k)
    if args.protocol is not None:
        tfrec.evaluation.parse_protocol(args.protocol)
    strategy = checks.strategy(args.strategy, args.min_shard_bytes, args.model)
    output = Path(args.output or Path("runs") / f"{args.model}-{args.dataset}")
    checks.check_writable(output, "--output")
    if args.export_dir:
        checks.check_writable(Path(args.export_dir), "--export-dir")
    data = tfrec.datasets.load(args.dataset, args.data_dir, download=args.download)
    spec = args.split or ("random:0.2" if item.task == "rating" else "leave-last-out")
    parts = split_data(data, spec, seed=args.seed, validation=args.validation)
    check_protocol(parts.train, parts.test, task=item.task, k=ks, protocol=args.protocol)
    checks.check_memory(args.model, config, item.model_cls.prepare(parts.train, config))
    backup = output / "backup"
    key = checks.run_key(args, overrides, spec)
    checks.check_resume(backup, key)
    held = f" / {len(parts.validation):,} validation" if parts.validation is not None else ""
    print(
        f"data: {data.summary()}; split {parts.spec}: {len(parts.train):,} train{held} / {len(parts.test):,} test"
    )
    with checks.writing(output, backup):
        backup.mkdir(exist_ok=True)
        checks.write_json(backup / RUN_FILE, key)
        result = train(
            args.model,
            parts.train,
            strategy=strategy,
            backup_dir=backup,
            seed=args.seed,
            verbose=0 if args.quiet else (1 if sys.stdout.isatty() else 2),
            catch_up=args.catch_up,
            validation=parts.validation,
            **overrides,
        )
        (backup / RUN_FILE).unlink(missing_ok=True)
        model_path = output / "model.keras"
        result.model.save(model_path)  # saved before evaluation: a failure later loses no training
        metrics = tfrec.evaluate(
            result.model, parts.train, parts.test, k=ks, protocol=args.protocol, seed=args.seed
        )
        what, figures = tfrec.evaluation.baseline(
            parts.train, parts.test, task=item.task, k=ks, protocol=args.protocol, seed=args.seed
        )
        report = {
            "model": args.model,
            "dataset": args.dataset,
            "split": spec,
            "protocol": args.protocol or ("none" if item.task == "rating" else "full"),
            "config": {**config_to_dict(result.config), "seed": args.seed},
            "metrics": metrics,
            "train_seconds": round(result.train_seconds, 3),
            "train_examples_per_second": round(result.train_examples_per_second, 1),
            # Epochs this process ran (a run resumed from output/backup starts after 0).
            "epochs_run": result.epochs_run,
            "model_path": str(model_path),
            "baseline": {"name": what, "metrics": figures},
        }
        if parts.validation is not None:  # the last epoch's figures on the validation part
            report["validation"] = {
                "split": args.validation,
                "metrics": {k[4:]: v[-1] for k, v in result.history.items() if k.startswith("val_") and v},
            }
        headline = f"{args.model} on {args.dataset} ({spec})"
        return _report(args, output, report, result, headline, seen_items=not args.no_seen_items)


def _train_streaming(args: argparse.Namespace) -> int:
    """``tfrec train MODEL --data GLOB``: scan, train from the stream, evaluate on a sample, export."""
    import tfrec
    from tfrec.data import streaming
    from tfrec.models.registry import config_to_dict
    from tfrec.training import train_streaming

    clash = [flag for flag, value in (("--dataset", args.dataset), ("--data-dir", args.data_dir),
             ("--split", args.split), ("--validation", args.validation)) if value]  # fmt: skip
    if clash:
        raise UserError(f"argument --data: streamed data takes --test-fraction, not {clash[0]}")
    checks.bounded(args.min_count, "--min-count", 1)
    checks.bounded(args.shuffle_buffer, "--shuffle-buffer", 0)
    checks.bounded(args.eval_users, "--eval-users", 1)
    if not 0.0 < args.test_fraction < 1.0:
        raise UserError(
            f"argument --test-fraction: must be between 0 and 1 (exclusive), got {args.test_fraction}"
        )
    overrides = {
        **checks.config_file(args.config, args.model),
        **checks.overrides(args.set, args.epochs, args.batch_size),
    }
    config = tfrec.models.make_config(args.model, **overrides)
    if tfrec.models.entry(args.model).model_cls.stream_fields(config) is None:  # before reading any file
        raise UserError(
            f"argument --data: {args.model} with this config cannot train from streamed files; streaming "
            "models: implicit_mf, biased_mf, two_tower without dense_features / history_length"
        )
    for flag, value in (("--max-users", args.max_users), ("--max-items", args.max_items)):
        if value is not None:
            checks.bounded(value, flag, 1)
    ks = checks.ks(args.k)
    output = Path(args.output or Path("runs") / f"{args.model}-stream")
    checks.check_writable(output, "--output")
    if args.export_dir:
        checks.check_writable(Path(args.export_dir), "--export-dir")
    shards = streaming.Shards.of(args.data, args.columns)
    if args.strategy == "parameter-server":  # before connecting to the cluster
        streaming.check_remote_readable(shards, "parameter-server workers")
    strategy = checks.strategy(args.strategy, args.min_shard_bytes, args.model)
    summary = streaming.scan(
        shards, test_fraction=args.test_fraction, min_count=args.min_count, max_users=args.max_users,
        max_items=args.max_items,
    )  # fmt: skip
    checks.check_memory(args.model, config, summary.model_data())
    print(f"data: {len(shards.files)} {shards.format} shards; {summary.train_rows:,} train / "
          f"{summary.test_rows:,} test rows; {len(summary.users):,} users, {len(summary.items):,} items kept")  # fmt: skip
    with checks.writing(output, output / "backup"):
        summary.write(output / "vocabulary")
        result = train_streaming(
            args.model, shards, summary=summary, shuffle_buffer=args.shuffle_buffer, data_service=args.data_service,
            seed=args.seed,
            strategy=strategy, backup_dir=output / "backup",
            verbose=0 if args.quiet else (1 if sys.stdout.isatty() else 2), **overrides,
        )  # fmt: skip
        model_path = output / "model.keras"
        result.model.save(model_path)
        train_rows, test_rows = streaming.sample_for_evaluation(
            shards, summary, users=args.eval_users, seed=args.seed
        )
        metrics, baseline = {}, None
        if len(test_rows):
            metrics = tfrec.evaluate(
                result.model, train_rows, test_rows, k=ks, protocol=args.protocol, seed=args.seed
            )
            what, figures = tfrec.evaluation.baseline(
                train_rows, test_rows, task=result.model.task, k=ks, protocol=args.protocol, seed=args.seed
            )
            baseline = {"name": what + " (of the sampled users' training rows)", "metrics": figures}
        report = {
            "model": args.model,
            "data": args.data,
            "columns": dict(shards.columns),
            "split": f"hash:{args.test_fraction:g}",
            "evaluated_on": f"a sample of {test_rows['user_id'].nunique() if len(test_rows) else 0:,} test users",
            "config": {**config_to_dict(config), "seed": args.seed},
            "metrics": metrics,
            "train_seconds": round(result.train_seconds, 3),
            "train_examples_per_second": round(result.train_examples_per_second, 1),
            "epochs_run": result.epochs_run,
            "vocabulary": str(output / "vocabulary"),
            "model_path": str(model_path),
        }
        if baseline is not None:
            report["baseline"] = baseline
        # No seen-items table in an export: the training log is not held in memory.
        headline = f"{args.model} streamed from {args.data}; {report['evaluated_on']}"
        return _report(args, output, report, result, headline, seen_items=False)


def _report(
    args: argparse.Namespace, output: Path, report: dict, result, headline: str, seen_items: bool
) -> int:
    """Writes ``metrics.json``, prints the metrics and, with ``--export-dir``, exports."""
    import tfrec

    path, metrics = output / "metrics.json", report["metrics"]
    if result.placement:  # the parameter servers each table's parts lived on
        report["placement"] = result.placement
    checks.write_json(path, report)
    print(
        f"\n{headline}: trained in {result.train_seconds:.1f}s ({result.train_examples_per_second:,.0f} examples/s)"
    )
    for table, devices in result.placement.items():
        tasks = ", ".join(device.split("/")[1][4:] + " " + device.split("/")[3][5:] for device in devices)
        print(f"  {table}: {len(devices)} parts on parameter servers ({tasks})")
    against = report.get("baseline", {}).get("metrics", {})
    if metrics:
        print(f"  {'':<14} {'model':>10} {'baseline' if against else '':>10}")
    for name, value in metrics.items():
        shown = [f"{int(v):,}" if name == "users" else f"{v:.4f}" for v in (value, against.get(name)) if v is not None]
        print(f"  {name:<14} " + " ".join(f"{v:>10}" for v in shown))
    if against:
        print(f"  baseline: {report['baseline']['name']} (no learning), on the same test split")
    print(f"metrics written to {path}; model saved to {report['model_path']}")
    if args.export_dir:
        exported = tfrec.export(
            result.model, args.export_dir, overwrite=args.overwrite, metrics=metrics,
            **{**export_options(args), "seen_items": seen_items},
        )  # fmt: skip
        report["export_path"] = str(exported)
        checks.write_json(path, report)
        without = (
            "" if seen_items else " (without a seen-items table: clients exclude through recommend_excluding)"
        )
        print(f"exported and validated: {exported}{without}")
        print_index(exported)
    return 0


def print_index(export_path: Path) -> None:
    """One line on an approximate index: what was chosen and the recall measured at export."""
    from tfrec.serving.exporter import ASSETS_EXTRA, METADATA_FILE

    index = json.loads((Path(export_path) / ASSETS_EXTRA / METADATA_FILE).read_text()).get("index", {})
    if index.get("kind") == "approx":
        recall = next(f"{key} {value}" for key, value in index.items() if key.startswith("recall@"))
        print(f"approximate index: {index['probes']} of {index['partitions']} partitions probed "
              f"({index['items_scored_per_query']} items scored a query), {recall} against exact on "
              f"{index['sample_users']} users (target {index['target_recall']})")  # fmt: skip


def _tune(args: argparse.Namespace) -> int:
    import tfrec
    from tfrec.data import split as split_data
    from tfrec.models import entry
    from tfrec.tuning import tune

    checks.bounded(args.seed, "--seed", 0, 2**32 - 1)
    checks.bounded(args.trials, "--trials", 1, 100_000)
    if args.data_dir and args.dataset is None:
        raise UserError("argument --data-dir: name the dataset too (--dataset NAME; see `tfrec datasets`)")
    args.dataset = args.dataset or "synthetic"
    task = entry(args.model).task
    fixed = checks.overrides(args.set, None, None)
    tfrec.models.make_config(args.model, **fixed)  # fail fast on bad --set values
    output = Path(args.output or Path("runs") / f"tune-{args.model}-{args.dataset}")
    checks.check_writable(output, "--output")
    data = tfrec.datasets.load(args.dataset, args.data_dir, download=args.download)
    spec = args.split or ("random:0.2" if task == "rating" else "leave-last-out")
    parts = split_data(data, spec, seed=args.seed)
    print(f"data: {data.summary()}; tuning on the training part of {spec} ({len(parts.train):,} rows); "
          "the test part is not used")  # fmt: skip
    with checks.writing(output):
        result = tune(args.model, parts.train, validation=args.validation, trials=args.trials, seed=args.seed,
                      storage=output / "study.db", **fixed)  # fmt: skip
    for trial in result.trials:
        value = "-" if trial["value"] is None else f"{trial['value']:.4f}"
        print(f"  trial {trial['number']:>3} {trial['state']:<9} {result.monitor} {value}  {trial['params']}")
    path = output / "best_config.json"
    checks.write_json(path, {
        "model": args.model, "dataset": args.dataset, "split": spec, "validation": args.validation,
        "monitor": result.monitor, "best_value": result.best_value, "config": result.best_config,
    })  # fmt: skip
    command = ["tfrec", "train", args.model, "--dataset", args.dataset]
    command += ["--data-dir", args.data_dir] if args.data_dir else []
    command += ["--split", spec, "--config", str(path)]
    print(f"best {result.monitor} {result.best_value:.4f}; config written to {path}\n"
          f"train with it: {shlex.join(command)}")  # fmt: skip
    return 0


def _export(args: argparse.Namespace) -> int:
    import tfrec

    options = export_options(args)
    path = Path(args.model_path)
    if not path.is_file():
        raise UserError(f"argument model_path: no file {path}")
    checks.check_writable(Path(args.export_dir), "--export-dir")
    try:
        model = tfrec.models.load(path)
    except TfrecError as err:
        raise UserError(f"argument model_path: {err}") from err
    target = tfrec.export(model, args.export_dir, args.version, overwrite=args.overwrite, **options)
    print(f"exported and validated: {target}")
    print_index(target)
    if args.xla:
        print("this export compiles with XLA: start tensorflow_model_server with --xla_cpu_compilation_enabled=true")
    return 0


def _validate(args: argparse.Namespace) -> int:
    import tfrec

    path = version_dir(Path(args.export_dir))
    report = tfrec.serving.validate(path, trust=args.trust_export)
    names = ", ".join(sorted(report["signatures"]))
    print(f"{path}: OK, {report['requests']} warmup requests matched through the TF Serving path ({names})")
    return 0


def _recommend(args: argparse.Namespace) -> int:
    import numpy as np

    import tfrec

    checks.bounded(args.k, "-k", 1)
    served = tfrec.serving.ExportedModel(version_dir(Path(args.export_dir)), trust=args.trust_export)
    if served.max_k is not None and args.k > served.max_k:
        raise UserError(f"argument -k: at most {served.max_k} (the export's max_k; export again with a larger --max-k)")
    if args.exclude and args.include_seen:
        raise UserError(
            "argument --include-seen: not with --exclude (the export leaves seen items out there)"
        )
    if args.exclude:
        width = served.input_shape("recommend_excluding", "exclude_item_ids")[1]
        if len(args.exclude) > width:
            raise UserError(
                f"argument --exclude: at most {width} item ids (the export's exclude width; "
                "export again with a larger --exclude-width)"
            )
        exclude = np.asarray([args.exclude + [""] * (width - len(args.exclude))] * len(args.user), dtype=object)
        out = served.run("recommend_excluding", user_id=args.user, k=args.k, exclude_item_ids=exclude)
    elif args.include_seen:
        out = served.run("recommend_including_seen", user_id=args.user, k=args.k)
    else:
        out = served.run("recommend", user_id=args.user, k=args.k)
    known = (
        served.run("known_users", user_id=args.user)["known"]
        if "known_users" in served.signatures
        else np.ones(len(args.user), np.int32)  # an export from before the signature existed
    )
    for user, is_known, items, scores in zip(args.user, known, out["item_ids"], out["scores"]):
        shown = [(item, score) for item, score in zip(items, scores) if item]  # "" ends a row
        if is_known:
            print(f"user {user}:")
        else:
            print(f"user {user}: not in the training data; these are the answers for an unknown user")
        width = max((len(item) for item, _ in shown), default=0)
        for rank, (item, score) in enumerate(shown, start=1):
            print(f"  {rank:>3}. {item:<{width}}  {score:>10.4f}")
    return 0


def version_dir(path: Path) -> Path:
    """A version directory as given, or the latest version under a base directory."""
    if (path / "saved_model.pb").is_file():
        return path
    from tfrec.serving import versions

    found = versions(path)
    if not found:
        raise UserError(f"{path}: no SavedModel here and no numbered version below it")
    return path / str(found[-1])


def _cluster_task(args: argparse.Namespace) -> int:
    """``tfrec cluster-task``: this process serves as a parameter-server cluster's worker or server."""
    import signal

    from tfrec.core.parameter_servers import serve_cluster_task

    task = checks.cluster_config(os.environ.get("TF_CONFIG"), "tfrec cluster-task", ("worker", "ps"))
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C stops the server (it waits in C++)
    serve_cluster_task(allow_public=args.allow_public_interfaces, ready=lambda where: print(
        f"tfrec: {task} serving on {where} (unauthenticated: private network only; stop with Ctrl-C)",
        flush=True))  # fmt: skip
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; returns the process exit code."""
    parser = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in argv or os.environ.get("TFREC_VERBOSE") == "1"
    if verbose:
        os.environ["TFREC_VERBOSE"] = "1"
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    try:
        if not argv:
            parser.print_usage(sys.stderr)
            raise UserError(
                "name a command: datasets, models, train, tune, export, validate, recommend, cluster-task "
                "(see --help)"
            )
        args = parser.parse_args(argv)
        if args.command == "datasets":
            return _datasets()
        if args.command == "models":
            return _models()
        commands = {
            "train": _train, "tune": _tune, "export": _export, "validate": _validate, "recommend": _recommend,
            "cluster-task": _cluster_task,
        }  # fmt: skip
        return commands[args.command](args)
    except (UserError, TfrecError) as err:
        message = str(err).replace("\n", " ")
        print(f"tfrec: error: {message}", file=sys.stderr)
        return 2
    except (checks.Interrupted, KeyboardInterrupt) as err:
        print(f"tfrec: {err if isinstance(err, checks.Interrupted) else 'interrupted'}", file=sys.stderr)
        return 130
    except (OSError, MemoryError) as err:
        print(
            f"tfrec: error: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
            file=sys.stderr,
        )
        return 2
    except Exception as err:
        if verbose:
            raise
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        print(f"tfrec: error: {type(err).__name__}: {first} (--verbose shows the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
