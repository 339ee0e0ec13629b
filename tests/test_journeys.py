"""The README, walked the way a user walks it: its code blocks verbatim, from a fresh
working directory, with its relative paths.

The blocks are read from README.md at test time, so these tests follow the README when
it changes. The fresh directory is not beside ``shared/`` (a user's clone is not): the
README's ``download=True`` / ``--download`` find the datasets in the cache the README
names, ``$TFREC_DATA_DIR``, pointed at the shared data (CI never downloads; the download
itself is tested against a local HTTP server in test_hostile.py).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, SHARED_DATA, shared_folder

README = ROOT / "README.md"
BIN = Path(sys.executable).parent


def blocks(language: str) -> list[str]:
    """The README's fenced code blocks of one language, in order."""
    return re.findall(rf"```{language}\n(.*?)\n```", README.read_text(), re.S)


def commands(block: str) -> list[str]:
    """The shell commands of a block: continuation lines joined, comments dropped."""
    joined = block.replace("\\\n", " ")
    return [line.split("#", 1)[0].strip() for line in joined.splitlines() if line.split("#", 1)[0].strip()]


@pytest.fixture()
def fresh(tmp_path) -> Path:
    """An empty working directory with no ``shared`` folder beside it (the datasets come
    from the ``$TFREC_DATA_DIR`` cache, see :func:`_env`)."""
    shared_folder("ml-100k")
    shared_folder("lastfm-2k-audio")
    work = tmp_path / "work"
    work.mkdir()
    assert not (tmp_path / "shared").exists()
    return work


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TFREC_VERBOSE")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    env["TFREC_DATA_DIR"] = str(SHARED_DATA)  # the dataset cache the README names
    return env


def _quiet(stderr: str) -> list[str]:
    """Lines of stderr a user would read as noise or trouble."""
    return [line for line in stderr.splitlines() if line.strip()]


def test_tfrec_help_is_fast_and_only_the_help(fresh) -> None:
    tfrec = shutil.which("tfrec", path=str(BIN))
    assert tfrec, "the tfrec command is not installed in the environment"
    start = time.perf_counter()
    done = subprocess.run(
        [tfrec, "--help"], cwd=fresh, env=_env(), capture_output=True, text=True, timeout=60
    )
    seconds = time.perf_counter() - start
    assert done.returncode == 0 and done.stderr == "" and done.stdout.startswith("usage: tfrec")
    lazy = "import sys, tfrec, tfrec.cli; print('tensorflow' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", lazy], env=_env(), capture_output=True, text=True).stdout
        == "False\n"
    )
    assert seconds < 2.0, f"tfrec --help took {seconds:.1f} s"
    bare = subprocess.run([tfrec], cwd=fresh, env=_env(), capture_output=True, text=True, timeout=60)
    assert bare.returncode == 2 and bare.stderr.startswith("usage: tfrec")


@pytest.mark.slow
def test_the_python_tour_runs_verbatim_and_quietly(fresh) -> None:
    script = "\n\n".join(blocks("python"))
    assert "../shared" not in script and 'tfrec.export(model, "exports/biased_mf")' in script
    assert 'tfrec.datasets.load("movielens-100k", download=True)' in script
    (fresh / "tour.py").write_text(script + "\n")
    done = subprocess.run([sys.executable, "tour.py"], cwd=fresh, env=_env(), capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert _quiet(done.stderr) == [], done.stderr[-3000:]
    assert (fresh / "exports" / "biased_mf" / "1" / "saved_model.pb").is_file()
    assert "'rmse'" in done.stdout and "'item_ids'" in done.stdout
    assert "array([['egg']]" in done.stdout  # the DataFrame example: ann's one unrated item
    assert (fresh / "runs" / "biased_mf.keras").is_file()  # saved, then loaded back
    assert sorted(p.name for p in fresh.iterdir()) == ["exports", "runs", "tour.py"]  # nothing else left
    # The export answers with str ids, none of them user 1's training items.
    check = (
        "import tfrec\n"
        "served = tfrec.serving.ExportedModel('exports/biased_mf')\n"
        "print(' '.join(served.run('recommend', user_id=['1'], k=10)['item_ids'][0]))\n"
    )
    answer = subprocess.run([sys.executable, "-c", check], cwd=fresh, env=_env(), capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert answer.returncode == 0 and _quiet(answer.stderr) == [], answer.stderr[-2000:]
    recommended = answer.stdout.split()
    train = pd.read_csv(SHARED_DATA / "ml-100k" / "u1.base", sep="\t", names=["u", "i", "r", "t"], dtype=str)
    seen = set(train.loc[train["u"] == "1", "i"])
    assert len(recommended) == 10 and not set(recommended) & seen


@pytest.mark.slow
def test_the_cli_commands_run_verbatim_and_quietly(fresh) -> None:
    cli = [c for block in blocks("bash") for c in commands(block) if c.startswith("tfrec ")]
    assert any(" --export-dir exports/" in c for c in cli) and any(
        c.startswith("tfrec recommend") for c in cli
    )
    outputs = {}
    for command in cli:
        done = subprocess.run(["bash", "-c", command], cwd=fresh, env=_env(), capture_output=True, text=True,
                              timeout=900)  # fmt: skip
        assert done.returncode == 0, f"{command}: {done.stderr[-3000:]}"
        assert _quiet(done.stderr) == [], f"{command}: {done.stderr[-3000:]}"
        outputs[command] = done.stdout
    train = next(c for c in cli if c.startswith("tfrec train"))
    output = Path(re.search(r"--output (\S+)", train).group(1))
    export = Path(re.search(r"--export-dir (\S+)", train).group(1))
    assert (fresh / output / "metrics.json").is_file() and (fresh / output / "model.keras").is_file()
    assert not (fresh / output / "backup").exists()
    assert (fresh / export / "1" / "saved_model.pb").is_file() and (
        fresh / export / "2" / "saved_model.pb"
    ).is_file()
    recommend = next(c for c in cli if c.startswith("tfrec recommend"))
    user = re.search(r"--user (\S+)", recommend).group(1)
    items = re.findall(r"^\s+\d+\. (\S+)\s", outputs[recommend], re.M)
    base = pd.read_csv(SHARED_DATA / "ml-100k" / "u1.base", sep="\t", names=["u", "i", "r", "t"], dtype=str)
    seen = set(base.loc[base["u"] == user, "i"])
    assert items and not set(items) & seen and all(not i.startswith("b'") for i in items)
    assert outputs[recommend].startswith(f"user {user}:\n"), outputs[recommend]  # a known user, said plainly
    assert "baseline: global mean rating" in outputs[train]


@pytest.mark.slow
def test_make_demo_shows_a_baseline_and_what_to_run_next(fresh) -> None:
    """The demo's recipe, run as make runs it (from a fresh folder): the metrics beside a
    no-learning baseline, then commands for what to do next that work as printed."""
    recipe = re.search(r"^demo:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M).group(1)
    lines = [line.strip().replace("$(VENV)/bin/", f"{BIN}/") for line in recipe.splitlines()]
    train = next(line for line in lines if not line.startswith("@"))
    done = subprocess.run(["bash", "-c", train], cwd=fresh, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and _quiet(done.stderr) == [], done.stderr[-2000:]
    table = re.search(r"^\s+model\s+baseline\n\s+rmse\s+([\d.]+)\s+([\d.]+)$", done.stdout, re.M)
    assert table and float(table.group(1)) < float(table.group(2)), done.stdout
    echoed = " ".join(line for line in lines if line.startswith("@echo"))
    following = re.findall(rf"({re.escape(str(BIN))}/tfrec (?:export|recommend) [^;\"]*?)(?: and|;|\"|$)", echoed)
    assert len(following) == 2, echoed
    for command in following:
        done = subprocess.run(["bash", "-c", command], cwd=fresh, env=_env(), capture_output=True, text=True,
                              timeout=600)  # fmt: skip
        assert done.returncode == 0 and _quiet(done.stderr) == [], f"{command}: {done.stderr[-2000:]}"
    assert re.search(r"^user u0:\n\s+1\. i\d+ ", done.stdout, re.M), done.stdout


def test_the_python_versions_the_readme_states_are_the_ones_declared() -> None:
    """README: 3.11 tested (3.12, 3.13 resolve; 3.10 does not): setup.cfg says >=3.11.

    The resolution itself was checked with
    `pip install --dry-run --ignore-installed --python-version 3.X --only-binary=:all: --target /tmp/x -r requirements.txt`
    (3.10: pandas==3.1.1 has no wheel; 3.11-3.13 resolve); it needs the package index, so it
    is not repeated here.
    """
    import configparser
    import sys

    readme = README.read_text()
    assert "Python 3.11 (what the tests run on" in readme and "not for 3.10" in readme
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert config["options"]["python_requires"].strip() == ">=3.11"
    assert sys.version_info >= (3, 11)
