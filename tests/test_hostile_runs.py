"""Hostile input, round 3: tuning studies, streamed shards, ids from a user's DataFrame, and
runs that meet a full disk, Ctrl-C or a second run on the same folder.

Grouped by surface like tests/test_hostile.py: each case asserts the exact outcome (a
one-line error naming what is wrong, or the documented rule) and that nothing outside
the target folder changed.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tfrec.cli import main
from tfrec.data import Interactions, split, streaming
from tfrec.errors import DataError, TfrecError
from tfrec.training import train, train_streaming
from tfrec.tuning import tune


def _one_line_error(capsys, fragment: str) -> str:
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("tfrec: error: ") and fragment in err, err
    assert "Traceback" not in captured.err
    return err


# === Tuning studies ===
@pytest.fixture(scope="module")
def tune_data(small) -> Interactions:
    return split(small, "leave-last-out", seed=0).train


def test_a_study_resumes_only_for_what_defined_it(tune_data, tmp_path) -> None:
    """Another seed, other fixed fields or other data are refused with the differences
    named; the file keeps the first study untouched."""
    study = tmp_path / "study.db"
    first = tune("implicit_mf", tune_data, trials=1, seed=0, storage=study, epochs=1)
    assert [t["state"] for t in first.trials] == ["COMPLETE"]
    before = study.read_bytes()
    cases = [
        (dict(seed=1, epochs=1), r"holds a study with other seed \(0, now 1\)"),
        (dict(seed=0, epochs=1, learning_rate=0.01),
         r"other fixed \(\{'epochs': '1'\}, now \{'epochs': '1', 'learning_rate': '0.01'\}\)"),
        (dict(seed=0, epochs=2), r"other fixed \(\{'epochs': '1'\}, now \{'epochs': '2'\}\)"),
    ]  # fmt: skip
    for settings, fragment in cases:
        with pytest.raises(TfrecError, match=fragment):
            tune("implicit_mf", tune_data, trials=1, storage=study, **settings)
    other = tune_data.with_frame(tune_data.frame.iloc[1:])
    with pytest.raises(TfrecError, match=r"other data \('4,\d{3} rows, sha256 [0-9a-f]{16}', now '4,\d{3} rows"):
        tune("implicit_mf", other, trials=1, seed=0, storage=study, epochs=1)
    with pytest.raises(TfrecError, match=r"other validation \('leave-last-out', now 'random:0.2'\)"):
        tune("implicit_mf", tune_data, trials=1, seed=0, storage=study, epochs=1, validation="random:0.2")
    assert study.read_bytes() == before


def test_a_resumed_study_fails_stale_trials_and_continues_its_sampler(tune_data, tmp_path) -> None:
    import optuna

    study = tmp_path / "study.db"
    tune("implicit_mf", tune_data, trials=1, seed=0, storage=study, epochs=1)
    # A process killed mid-trial leaves its trial RUNNING in the file.
    optuna.load_study(study_name="implicit_mf", storage=f"sqlite:///{study}").ask()
    resumed = tune("implicit_mf", tune_data, trials=1, seed=0, storage=study, epochs=1)
    assert [t["state"] for t in resumed.trials] == ["COMPLETE", "FAIL", "COMPLETE"]
    # Re-seeding the sampler with the same seed would draw trial 0's parameters again.
    assert resumed.trials[2]["params"] != resumed.trials[0]["params"]


def test_a_corrupt_study_file_is_named(tune_data, tmp_path) -> None:
    study = tmp_path / "study.db"
    study.write_bytes(b"not sqlite " * 100)
    with pytest.raises(TfrecError, match=rf"{study} is not a readable study file \(.*file is not a database\)"):
        tune("implicit_mf", tune_data, trials=1, storage=study, epochs=1)
    assert study.read_bytes() == b"not sqlite " * 100


def test_the_printed_train_command_runs_as_printed(ml100k_dir, tmp_path, monkeypatch, capsys) -> None:
    """`tfrec tune --data-dir DIR` prints a train command that keeps --data-dir; pasted, it trains."""
    monkeypatch.chdir(tmp_path)
    argv = ["tune", "implicit_mf", "--dataset", "movielens-100k", "--data-dir", str(ml100k_dir), "--trials", "1",
            "--set", "epochs=1", "--output", "my tune"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    command = next(line for line in out.splitlines() if line.startswith("train with it: "))
    words = shlex.split(command.removeprefix("train with it: "))
    assert words[:3] == ["tfrec", "train", "implicit_mf"] and "--data-dir" in words, command
    assert not (tmp_path / "my tune" / ".tfrec-lock").exists()
    assert main([*words[1:], "--output", "run"]) == 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["dataset"] == "movielens-100k"


# === Streamed shards ===
def _log(folder: Path, rows: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"user_id": [f"u{u}" for u in rng.integers(0, 40, rows)],
                         "item_id": [f"i{i}" for i in rng.integers(0, 30, rows)]})  # fmt: skip


def _streamed_pairs(shards: streaming.Shards) -> list[tuple[str, str]]:
    data = streaming.stream(shards, batch_size=64, shuffle_buffer=0)
    return [(u.decode(), i.decode()) for batch in data for u, i in zip(batch["user_id"].numpy(), batch["item_id"].numpy())]


def test_both_passes_read_csv_one_way(tmp_path) -> None:
    """Blank and blank-looking lines, a byte-order mark, CR LF line ends and quoted commas:
    the scan (pandas) and the training stream (TensorFlow) read the same rows."""
    frame = _log(tmp_path)
    frame.loc[3, "item_id"] = "i,quoted"
    body = "\r\n".join(f'{u},"{i}"' if "," in i else f"{u},{i}" for u, i in frame.itertuples(index=False))
    text = "\ufeffuser_id,item_id\r\n" + body.replace("\r\nu1,", "\r\n\r\n   \r\nu1,", 1) + "\r\n\r\n\r\n"
    (tmp_path / "part-0.csv").write_bytes(text.encode())
    shards = streaming.Shards.of(str(tmp_path / "part-*.csv"))
    summary = streaming.scan(shards)
    pairs = _streamed_pairs(shards)
    assert summary.train_rows == len(frame) == len(pairs)
    assert pairs == list(frame.itertuples(index=False, name=None))


def test_a_shard_changed_or_removed_after_the_scan_is_named(tmp_path) -> None:
    for n in range(2):
        _log(tmp_path, seed=n).to_csv(tmp_path / f"part-{n}.csv", index=False)
    shards = streaming.Shards.of(str(tmp_path / "part-*.csv"))
    summary = streaming.scan(shards, test_fraction=0.2)
    changed = tmp_path / "part-1.csv"
    _log(tmp_path, rows=500, seed=7).to_csv(changed, index=False)
    with pytest.raises(DataError, match=rf"{changed}: the shard changed since the scan \([\d,]+ -> [\d,]+ bytes\)"):
        train_streaming("implicit_mf", shards, summary=summary, epochs=1, verbose=0)
    with pytest.raises(DataError, match="the shard changed since the scan"):
        streaming.sample_for_evaluation(shards, summary)
    summary = streaming.scan(shards, test_fraction=0.2)
    changed.unlink()
    with pytest.raises(DataError, match=rf"{changed}: the shard is gone since the scan"):
        train_streaming("implicit_mf", shards, summary=summary, epochs=1, verbose=0)


def test_header_only_shards_are_left_out_of_the_stream(tmp_path) -> None:
    _log(tmp_path).to_csv(tmp_path / "part-0000.csv", index=False)
    for n in range(1, 200):
        (tmp_path / f"part-{n:04d}.csv").write_text("user_id,item_id\n")
    shards = streaming.Shards.of(str(tmp_path / "part-*.csv"))
    summary = streaming.scan(shards)
    assert [rows for *_, rows in summary.files] == [400] + [0] * 199
    assert summary.shards_with_rows(shards).files == (str(tmp_path / "part-0000.csv"),)
    read = summary.write(tmp_path / "vocabulary")
    assert streaming.LogSummary.read(read) == summary


def test_links_fifos_and_folders_are_refused_before_any_read(tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:the first line of a private file\n")
    data = tmp_path / "data"
    data.mkdir()
    _log(data).to_csv(data / "part-0.csv", index=False)
    (data / "part-1.csv").symlink_to(secret)
    with pytest.raises(DataError, match=r"part-1.csv: is a symbolic link; name the file it points to") as err:
        streaming.Shards.of(str(data / "part-*.csv"))
    assert "root:x" not in str(err.value)
    (data / "part-1.csv").unlink()
    os.mkfifo(data / "part-2.csv")
    start = time.monotonic()
    with pytest.raises(DataError, match=r"part-2.csv: not a regular file"):
        streaming.Shards.of(str(data / "part-*.csv"))
    assert time.monotonic() - start < 5


def test_a_min_count_above_every_count_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys) -> None:
    _log(tmp_path).to_csv(tmp_path / "part-0.csv", index=False)
    with pytest.raises(DataError, match=r"min_count 1000 leaves no user \(the most frequent has \d+ training"):
        streaming.scan(streaming.Shards.of(str(tmp_path / "part-*.csv")), min_count=1000)
    monkeypatch.chdir(tmp_path)
    argv = ["train", "implicit_mf", "--data", "part-*.csv", "--min-count", "1000", "--output", "run"]
    assert main(argv) == 2
    _one_line_error(capsys, "min_count 1000 leaves no user")
    assert not (tmp_path / "run").exists()


def test_an_unreachable_data_service_is_refused_in_seconds(tmp_path) -> None:
    _log(tmp_path).to_csv(tmp_path / "part-0.csv", index=False)
    shards = streaming.Shards.of(str(tmp_path / "part-*.csv"))
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(DataError, match=rf"--data-service grpc://127.0.0.1:{port}: no dispatcher answers there"):
        streaming.stream(shards, data_service=f"grpc://127.0.0.1:{port}")
    assert time.monotonic() - start < streaming.CONNECT_SECONDS + 5
    with pytest.raises(DataError, match="expected grpc://HOST:PORT"):
        streaming.stream(shards, data_service="grpc://nowhere")


def test_streamed_ids_follow_the_in_memory_rules(tmp_path) -> None:
    """A decomposed (NFD) id, which the in-memory path would normalise, and an id with a
    quoted line break, which one pass would split, are refused naming the line."""
    nfd = unicodedata.normalize("NFD", "José")
    (tmp_path / "a.csv").write_text(f"user_id,item_id\nu1,i1\n{nfd},i2\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"a.csv: line 3: user_id 'Jose\u0301' is not in Unicode NFC form"):
        streaming.scan(streaming.Shards.of(str(tmp_path / "a.csv")))
    (tmp_path / "b.csv").write_text('user_id,item_id\nu1,"i\n2"\n')
    with pytest.raises(DataError, match=r"b.csv: line 2: item_id holds a line break"):
        streaming.scan(streaming.Shards.of(str(tmp_path / "b.csv")))


# === Ids and values from a user's DataFrame ===
def test_id_rules_are_one_and_documented() -> None:
    with pytest.raises(DataError, match=r"column 'user_id' holds the same id as different types \(e.g. '1' as "
                                        r"\['int', 'str'\]\)"):  # fmt: skip
        Interactions(pd.DataFrame({"user_id": [1, "1"], "item_id": ["a", "b"]}))
    mixed = Interactions(pd.DataFrame({"user_id": [1.0, "x"], "item_id": ["a", "b"]}))
    floats = Interactions(pd.DataFrame({"user_id": [1.0, 2.0], "item_id": ["a", "b"]}))
    assert list(mixed.frame.user_id) == ["1", "x"] and list(floats.frame.user_id) == ["1", "2"]
    forms = Interactions(pd.DataFrame({"user_id": [unicodedata.normalize("NFD", "José"), "José", "Zoë"],
                                       "item_id": ["a", "b", "c"]}))  # fmt: skip
    assert forms.num_users == 2 and set(forms.frame.user_id) == {unicodedata.normalize("NFC", "José"), "Zoë"}
    # The same in an object column (mixed types): two spellings of one text merge, as one type.
    mixed_forms = Interactions(pd.DataFrame({"user_id": pd.Series([unicodedata.normalize("NFD", "José"), "José", 3],
                                                                  dtype=object), "item_id": ["a", "b", "c"]}))  # fmt: skip
    assert list(mixed_forms.frame.user_id) == [unicodedata.normalize("NFC", "José")] * 2 + ["3"]


def test_datetime_timestamps_become_seconds() -> None:
    times = pd.to_datetime(["1970-01-01 00:00:10", "2020-01-01 00:00:01.9"], format="ISO8601")
    naive = Interactions(pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"], "timestamp": times}))
    assert list(naive.frame.timestamp) == [10, 1577836801]
    paris = times.tz_localize("Europe/Paris")
    zoned = Interactions(pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"], "timestamp": paris}))
    assert list(zoned.frame.timestamp) == [10 - 3600, 1577836801 - 3600]
    with pytest.raises(DataError, match=r"column 'timestamp' has missing times \(NaT\) at rows 1"):
        Interactions(pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"],
                                   "timestamp": pd.to_datetime(["2020-01-01", None])}))  # fmt: skip


def test_recommend_reads_ids_by_the_same_rules(small) -> None:
    """A user trained as "José" (NFC) is found from the NFD spelling; a whole float finds
    the integer id, as in training."""
    frame = small.frame.copy()
    first, second = frame.user_id.unique()[:2]
    frame.loc[frame.user_id == first, "user_id"] = "José"
    frame.loc[frame.user_id == second, "user_id"] = "7"
    model = train("implicit_mf", frame, epochs=1, verbose=0).model
    by_nfc = model.recommend(["José", "7"], k=5)
    by_other_forms = model.recommend(np.asarray([unicodedata.normalize("NFD", "José"), 7.0], dtype=object), k=5)
    unknown = model.recommend(["nobody"], k=5)
    for ours, theirs in zip(by_nfc, by_other_forms):
        np.testing.assert_array_equal(ours, theirs)
    assert not np.array_equal(by_nfc[1][0], unknown[1][0])


def test_a_diverged_train_raises(small) -> None:
    huge = small.frame.assign(rating=np.float32(3e38))
    with pytest.raises(TfrecError, match=r"training diverged: the loss is (nan|inf) from epoch 1"):
        train("biased_mf", huge, epochs=1, verbose=0)


# === Runs: a full disk, Ctrl-C, two runs on one folder ===
def test_an_interrupted_run_with_nothing_checkpointed_blocks_no_other_run(tmp_path, monkeypatch, capsys) -> None:
    backup = tmp_path / "run" / "backup"
    backup.mkdir(parents=True)
    (backup / "tfrec-run.json").write_text(json.dumps({"model": "gmf"}))
    (backup / "chief").mkdir()  # what Keras made before the first epoch ended
    monkeypatch.chdir(tmp_path)
    assert main(["train", "implicit_mf", "--epochs", "1", "--output", "run"]) == 0
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["metrics.json", "model.keras"]


def test_a_second_run_on_a_folder_being_written_is_refused(tmp_path, monkeypatch, capsys) -> None:
    output = tmp_path / "run"
    output.mkdir()
    with open(output / ".tfrec-lock", "w") as held:  # another run holds the folder
        held.write("4242")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(["train", "implicit_mf", "--epochs", "1", "--output", str(output)]) == 2
        _one_line_error(capsys, f"--output: {output} is being written by another tfrec run (pid 4242)")
        assert main(["tune", "implicit_mf", "--trials", "1", "--output", str(output)]) == 2
        _one_line_error(capsys, "is being written by another tfrec run")
    assert sorted(p.name for p in output.iterdir()) == [".tfrec-lock"]


@pytest.fixture()
def small_disk(tmp_path):
    """A 300 KiB file system (tmpfs): too small for a checkpoint of the default data."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"needs permission to mount a tmpfs ({made.stderr.decode().strip()[:80]})")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_is_named_and_leaves_no_partial_files(small_disk, monkeypatch, capsys) -> None:
    monkeypatch.chdir(small_disk.parent)
    assert main(["train", "implicit_mf", "--epochs", "2", "--output", str(small_disk / "run")]) == 2
    _one_line_error(capsys, f"no space left on device while writing {small_disk / 'run'}")
    assert list(small_disk.iterdir()) == []


@pytest.mark.slow
def test_ctrl_c_is_one_line_and_leaves_a_resumable_backup(tmp_path) -> None:
    output = tmp_path / "run"
    command = [sys.executable, "-m", "tfrec", "train", "implicit_mf", "--epochs", "40", "--output", str(output)]
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and not list(output.rglob("checkpoint")):
        assert run.poll() is None, run.stderr.read()[-2000:]
        time.sleep(0.2)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err[-2000:]
    assert err == f"tfrec: interrupted; rerun the same command to resume from the last finished epoch in {output / 'backup'}\n"
    assert (output / "backup" / "tfrec-run.json").is_file() and not (output / ".tfrec-lock").exists()
    resumed = subprocess.run([*command[:-4], "--epochs", "2", "--output", str(output)], capture_output=True, text=True)
    assert resumed.returncode == 2 and "holds an interrupted run with other overrides" in resumed.stderr


# === Memory: one estimate per model from its config ===
@pytest.mark.parametrize("argv, fragment", [
    (["mlp", "--set", "mlp_layers=1000000,1000000"], "mlp with this config would need about 11,19"),
    (["neumf", "--set", "mlp_layers=100000,100000"], "neumf with this config would need about 11"),
    (["gmf", "--set", "factors=100000000"], "gmf with this config would need about 3,35"),
    (["ials", "--set", "embedding_dim=5000", "--set", "solver=cholesky"], "ials with this config would need about 19"),
    (["content_tower", "--set", "embedding_dim=100000000"], "content_tower with this config would need about 3,35"),
], ids=["mlp-layers", "neumf-layers", "gmf-factors", "ials-cholesky-workspace", "text-model-tables"])  # fmt: skip
def test_every_table_layer_and_workspace_counts_before_training(tmp_path, monkeypatch, capsys, argv, fragment) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["train", *argv, "--epochs", "1", "--output", "run"]) == 2
    _one_line_error(capsys, fragment)
    assert list(tmp_path.iterdir()) == []


def test_default_configs_are_estimated_small(small) -> None:
    from tfrec.models import entry, names
    from tfrec.models.registry import make_config
    from tfrec.training import memory_estimate

    for name in names():
        config = make_config(name)
        data = entry(name).model_cls.prepare(small, config)
        weights = len(data.users) + len(data.items)
        assert weights * 4 <= memory_estimate(name, config, data) < 64 * 2**20, name
