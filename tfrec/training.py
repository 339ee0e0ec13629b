"""The default training recipe behind ``tfrec train``: build, compile, ``model.fit``."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfrec._keras import keras, tf
from tfrec.core.distribute import PerReplicaData
from tfrec.core.parameter_servers import cluster_failures, is_parameter_server, placement
from tfrec.data.interactions import Interactions, as_interactions
from tfrec.data.model_data import ModelData
from tfrec.errors import TfrecError
from tfrec.models.registry import entry, make_config
from tfrec.optimizers import CatchUp, LazyAdam


@dataclass
class TrainResult:
    """What :func:`train` produced."""

    model: keras.Model
    config: Any
    history: dict[str, list[float]]
    train_seconds: float
    train_examples_per_second: float
    epochs_run: list[int] = dataclasses.field(default_factory=list)
    placement: dict[str, list[str]] = dataclasses.field(default_factory=dict)


def train(
    name: str,
    train_data: Interactions,
    *,
    seed: int = 0,
    verbose: int | str = "auto",
    strategy: tf.distribute.Strategy | None = None,
    backup_dir: str | os.PathLike | None = None,
    steps_per_execution: int | None = None,
    callbacks: list[keras.callbacks.Callback] | None = None,
    catch_up: bool = False,
    validation: Interactions | None = None,
    **overrides: Any,
) -> TrainResult:
    """Trains registered model ``name`` on a training split with its default recipe.

    The recipe is the one a user would write: ``tfrec.models.build`` the model, turn the
    split into a ``tf.data`` pipeline (``model.training_data``), compile with Adam (:class:`tfrec.optimizers.LazyAdam`: embedding rows updated lazily) at the
    config's learning rate and call ``model.fit`` for the config's epochs. A model whose
    config has no learning rate (``bayesian_mf``: sampled, not gradient-trained) is
    compiled without an optimizer.

    Args:
        name: Registered model name.
        train_data: Training interactions.
        seed: Seeds Python, NumPy and TensorFlow, the shuffle and any sampling.
        verbose: Keras ``fit`` verbosity (progress bars).
        strategy: A ``tf.distribute`` strategy to build and train under
            (``MirroredStrategy`` for the GPUs of one host, ``MultiWorkerMirroredStrategy``
            across hosts, ``TPUStrategy``); ``batch_size`` is then the global batch. Under
            ``ParameterServerStrategy`` (:func:`tfrec.core.parameter_servers.parameter_server_strategy`)
            each worker takes its share of the batches, the tables may be split over the
            servers, and the result holds the trained tables gathered into one model
            (``for_serving``) and where their parts lived (``placement``).
        backup_dir: Checkpoint the model and optimizer here after every epoch
            (Keras ``BackupAndRestore``); a run started again with the same directory
            resumes from the last finished epoch, and (without a ``strategy``) trains the
            later epochs on the same orders, so it ends where an uninterrupted run does.
            Removed when training completes.
        steps_per_execution: Training steps Keras runs per call into the TensorFlow
            graph. None picks up to 32 (fewer when an epoch is shorter; 1 under a
            ``strategy``): at the default
            batch sizes the per-call overhead otherwise costs ~30% of the training speed
            (bench/train_speed.py). Progress bars then update every that many steps.
        callbacks: Extra Keras callbacks for ``model.fit``.
        catch_up: Let the lazy optimizer apply, in closed form, the momentum steps dense
            Adam would have given embedding rows between the batches that touch them
            (:class:`tfrec.optimizers.LazyAdam`); off by default (figures: bench/TUNING.md).
        validation: Held-out interactions from the training data (``split(...,
            validation=...)``): each epoch's logs gain ``val_rmse`` (rating models) or
            ``val_recall@10`` etc. (:class:`tfrec.evaluation.RankingMetrics`).
        **overrides: Config fields to change (``epochs=5``, ``embedding_dim=64``...).

    Returns:
        A :class:`TrainResult` with the fitted model and timing.

    Example:
        >>> result = tfrec.training.train("biased_mf", split.train, epochs=3)
    """
    config = make_config(name, **overrides)
    train_data = as_interactions(train_data, "train_data")
    keras.utils.set_random_seed(seed)
    model_cls = entry(name).model_cls
    if is_parameter_server(strategy):
        check_parameter_servers(name)

    def scope():
        return strategy.scope() if strategy is not None else contextlib.nullcontext()

    with scope():  # variables (and the optimizer's) are created under the strategy
        model = model_cls.from_data(train_data, config).remember_seen(train_data)

        def pretrain(other: str, **settings: Any) -> keras.Model:
            return train(other, train_data, seed=seed, verbose=verbose, **settings).model

        model.before_fit(train_data, pretrain)  # e.g. NeuMF's optional pre-training
    model.build_now()  # one call in the default replica context marks it built
    steps = None
    if is_parameter_server(strategy):
        dataset, steps = _per_worker(model_cls, train_data, config, seed)
    else:
        with scope():  # a model may deal its data out per replica itself (ials)
            dataset = model_cls.training_data(train_data, config, seed)
    if steps_per_execution is None:
        # Under a mirrored strategy, replicas all-gather sparse gradients whose row counts
        # differ on a last partial batch, which a multi-step graph loop rejects: one step
        # per call. A parameter-server worker runs its steps alone: several per call.
        if strategy is None or is_parameter_server(strategy):
            steps_per_execution = min(32, steps) if steps else _steps_per_execution(dataset)
        else:
            steps_per_execution = 1
    with scope():
        if model_cls.gradient_trained:
            optimizer = LazyAdam(config.learning_rate, catch_up=catch_up)
            model.compile(optimizer=optimizer, steps_per_execution=steps_per_execution)
        else:  # sampled or solved (bayesian_mf, ials): the model's own compile
            model.compile(steps_per_execution=steps_per_execution)
    start = time.perf_counter()
    callbacks = [CatchUp(), *(callbacks or [])] if catch_up else list(callbacks or [])
    if validation is not None:  # first, so later callbacks (early stopping) read its logs
        from tfrec.evaluation.callback import RankingMetrics

        protocol = None if model.task == "rating" else "full"
        callbacks.insert(0, RankingMetrics(train_data, validation, k=10, protocol=protocol))
    if backup_dir is not None:
        # absolute: under parameter servers the servers write their parts of the checkpoint
        callbacks.append(keras.callbacks.BackupAndRestore(os.path.abspath(backup_dir)))
    if isinstance(dataset, PerReplicaData):  # dealt out per replica by the model (ials)
        dataset, steps = dataset.dataset, dataset.steps
    if backup_dir is not None and strategy is None:
        _skip_finished_epochs(dataset, backup_dir)
    return _gathered(_fit(model, config, dataset, steps, verbose, callbacks, len(train_data), start), strategy)


def _skip_finished_epochs(dataset, backup_dir) -> None:
    """Draws the epoch orders that a backup's finished epochs used, so a resumed run trains
    each later epoch on the order an uninterrupted run would have.

    Each pass over a training dataset draws that epoch's seeds (``Dataset.random`` with
    ``rerandomize_each_iteration``) when its iterator is made; making an iterator per
    finished epoch (read from the backup's ``ckpt_saved_epoch``) advances them alike.
    One process only: a distributed dataset is rebuilt per worker, so a resumed strategy
    run restores the weights and draws its later epochs' orders afresh.
    """
    found = tf.train.latest_checkpoint(os.path.join(os.path.abspath(backup_dir), "chief"))
    if found is None:
        return
    reader = tf.train.load_checkpoint(found)
    key = "ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE"
    if not reader.has_tensor(key):
        return
    for _ in range(int(reader.get_tensor(key)) + 1):
        iter(dataset)


def _gathered(result: TrainResult, strategy) -> TrainResult:
    """Under parameter servers: the trained tables gathered from the servers into one
    model (what saving, evaluation and export read) and where their parts lived."""
    if is_parameter_server(strategy):
        result.placement, result.model = placement(result.model), result.model.for_serving()
    return result


def check_parameter_servers(name: str) -> None:
    """Refuses a model that cannot train under parameter servers (only gradient-trained
    models do: ``ials`` solves its rows and ``bayesian_mf`` samples them)."""
    if not entry(name).model_cls.gradient_trained:
        raise TfrecError(
            f"{name} cannot train under parameter servers (it solves or samples its tables instead of "
            "taking gradient steps); use the mirrored or multi-worker strategy"
        )


def _fit(
    model, config, dataset, steps: int | None, verbose, callbacks: list, rows: int, start: float
) -> TrainResult:
    """``model.fit`` for the config's epochs, timed from ``start``; ``rows`` examples an epoch."""
    backups = [c.backup_dir for c in callbacks if isinstance(c, keras.callbacks.BackupAndRestore)]
    servers = is_parameter_server(model.distribute_strategy)
    watch = cluster_failures(*backups[:1]) if servers else contextlib.nullcontext()
    with watch:
        history = model.fit(
            dataset, epochs=config.epochs, steps_per_epoch=steps, verbose=verbose, callbacks=callbacks
        )
    seconds = time.perf_counter() - start
    losses = history.history.get("loss", [])
    diverged = [epoch for epoch, loss in enumerate(losses) if not math.isfinite(float(loss))]
    if diverged:
        raise TfrecError(
            f"training diverged: the loss is {float(losses[diverged[0]])} from epoch {diverged[0] + 1} "
            "(try a lower learning_rate, e.g. --set learning_rate=...); the model is not returned"
        )
    return TrainResult(
        model=model,
        config=config,
        history={k: [float(v) for v in vs] for k, vs in history.history.items()},
        train_seconds=seconds,
        train_examples_per_second=rows * max(len(history.epoch), 1) / max(seconds, 1e-9),
        epochs_run=[int(e) for e in history.epoch],
    )


def _per_worker(model_cls, train_data: Interactions, config, seed: int):
    """The training batches for ``ParameterServerStrategy`` workers, and an epoch's steps.

    Every worker builds the model's batches in the same seeded order, keeps every
    n-th of them (n workers) and repeats without end; the coordinator hands the
    epoch's steps to whichever worker is free, so one epoch covers each batch about once.
    """
    batches = model_cls.training_data(train_data, config, seed)
    steps = int(batches.cardinality())
    if steps < 0:  # not known from the pipeline's shape: count one epoch
        steps = int(batches.reduce(0, lambda count, _: count + 1))

    def per_worker(context: tf.distribute.InputContext) -> tf.data.Dataset:
        batches = model_cls.training_data(train_data, config, seed)
        return batches.shard(context.num_input_pipelines, context.input_pipeline_id).repeat()

    return keras.utils.experimental.DatasetCreator(per_worker), steps


def memory_estimate(name: str, config: Any, data: ModelData) -> int:
    """Bytes training model ``name`` with ``config`` on ``data`` needs at least: every
    weight (counted by building the model in a graph, where a variable takes no memory
    until it is initialised) in float32, three times over with the optimizer's two slots,
    plus the model's :meth:`~tfrec.models.recommender.Recommender.working_bytes`.

    A model whose build must run eagerly (text vocabularies adapted and tokenised from
    the data) is counted by its id tables alone (rows x ``embedding_dim``).
    """
    model_cls = entry(name).model_cls
    slots = 3 if model_cls.gradient_trained else 1
    rows = len(data.users) + len(data.items) + 2
    dim = getattr(config, "embedding_dim", 0)
    weights = rows * dim if isinstance(dim, int) else 0
    if weights * 4 * slots < 1 << 40:  # else already far beyond any machine: no need to build
        try:
            with tf.Graph().as_default():
                model = model_cls(config, data)
                model.build_now()
                weights = sum(int(np.prod(w.shape)) for w in model.weights)
        except Exception:  # noqa: BLE001 - eager-only steps (adapting or tokenising text) fail in a graph
            pass  # counted by the id tables; the real build reports any real error
    return 4 * slots * weights + model_cls.working_bytes(config, data)


def _steps_per_execution(dataset: tf.data.Dataset, most: int = 32) -> int:
    """Up to ``most`` steps per graph call, never more than an epoch has (1 if unknown)."""
    steps = int(dataset.cardinality())
    return min(most, steps) if steps > 0 else 1


def train_streaming(
    name: str,
    shards,
    *,
    summary=None,
    test_fraction: float = 0.0,
    shuffle_buffer: int = 100_000,
    data_service: str | None = None,
    seed: int = 0,
    verbose: int | str = "auto",
    strategy: tf.distribute.Strategy | None = None,
    backup_dir: str | os.PathLike | None = None,
    callbacks: list | None = None,
    **overrides: Any,
) -> TrainResult:
    """Trains registered model ``name`` on a log streamed from sharded files.

    The vocabularies and counts come from ``summary`` (:func:`tfrec.data.streaming.scan`,
    run here when None), the batches from :func:`tfrec.data.streaming.stream` (its
    training part under the hash split of ``test_fraction``); the log is never held in
    memory. The models that train from ids and counts alone stream: ``implicit_mf``,
    ``biased_mf`` (with a mapped rating column) and ``two_tower`` without dense features
    or a history (each model's ``stream_fields(config)``). Under a multi-replica ``strategy``
    each input pipeline reads its own share of the files and an epoch is the training
    rows over the global batch.

    Args:
        name: Registered model name.
        shards: :class:`tfrec.data.streaming.Shards`.
        summary: The log's :class:`~tfrec.data.streaming.LogSummary`, or None to scan.
        test_fraction: The hash split's test share (rows on that side are not trained on).
        shuffle_buffer: Rows in the shuffle buffer.
        data_service: A tf.data service dispatcher (``"grpc://host:port"``) whose workers
            read and batch the shards (CSV), or None to read them in this process.
        seed, verbose, strategy, backup_dir, callbacks, **overrides: As for :func:`train`.

    Raises:
        TfrecError: the model cannot train from a stream with this config.
    """
    from tfrec.data.interactions import RATING, WEIGHT
    from tfrec.data.streaming import check_remote_readable, scan, stream

    config = make_config(name, **overrides)
    model_cls = entry(name).model_cls
    fields = model_cls.stream_fields(config)
    if fields is None:
        raise TfrecError(
            f"{name} with this config cannot train from streamed files (it needs the data in memory: "
            "side features, dense features, histories or sampled negatives); streaming models: "
            "implicit_mf, biased_mf, two_tower without dense_features / history_length"
        )
    if summary is None:
        summary = scan(shards, test_fraction=test_fraction)
    summary.check_files()
    shards = summary.shards_with_rows(shards)
    keras.utils.set_random_seed(seed)
    task = model_cls.task_for(config)
    label = RATING if task == "rating" else None
    weights = WEIGHT in fields and WEIGHT in shards.columns
    options = dict(test_fraction=summary.test_fraction, shuffle_buffer=shuffle_buffer, seed=seed,
                   label=label, weights=weights, data_service=data_service)  # fmt: skip
    servers = is_parameter_server(strategy)
    if servers:
        check_parameter_servers(name)
        check_remote_readable(shards, "parameter-server workers")
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = model_cls(config, summary.model_data())
    model.build_now()
    # An epoch is one pass over the training rows: its steps are known from the scan, so
    # the stream repeats and Keras counts the steps (several per call on one replica).
    steps = max(1, -(-summary.train_rows // config.batch_size))
    if servers:  # each worker streams its share of the files; a step is one worker batch

        def per_worker(context: tf.distribute.InputContext) -> tf.data.Dataset:
            return stream(shards, batch_size=config.batch_size, input_context=context, **options).repeat()

        dataset, per_call = keras.utils.experimental.DatasetCreator(per_worker), 1
    elif replicas > 1:

        def per_pipeline(context: tf.distribute.InputContext) -> tf.data.Dataset:
            batch = context.get_per_replica_batch_size(config.batch_size)
            return stream(shards, batch_size=batch, input_context=context, **options).repeat()

        dataset, per_call = strategy.distribute_datasets_from_function(per_pipeline), 1
    else:
        dataset, per_call = stream(shards, batch_size=config.batch_size, **options).repeat(), min(32, steps)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model.compile(optimizer=LazyAdam(config.learning_rate), steps_per_execution=per_call)
    callbacks = [_ShardWatch(summary), *(callbacks or [])]
    if backup_dir is not None:
        # absolute: under parameter servers the servers write their parts of the checkpoint
        callbacks.append(keras.callbacks.BackupAndRestore(os.path.abspath(backup_dir)))
    try:
        result = _fit(model, config, dataset, steps, verbose, callbacks, summary.train_rows, time.perf_counter())
    except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError, tf.errors.DataLossError):
        summary.check_files()  # names a shard removed or changed while it was read
        raise
    return _gathered(result, strategy)


class _ShardWatch(keras.callbacks.Callback):
    """Refuses, before each epoch, a shard changed or removed since the scan."""

    def __init__(self, summary) -> None:
        super().__init__()
        self.summary = summary

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.summary.check_files()
