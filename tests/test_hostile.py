"""Hostile input and faults: nothing executes, nothing escapes its folder, nothing is lost.

Grouped by surface: model loading, download/extraction (a real HTTP server on
127.0.0.1 serving crafted archives), and export faults (real processes: two concurrent
exports, ``kill -9`` mid-export). Each case asserts the exact outcome and that nothing
outside the intended folder changed.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tfrec
from tfrec._keras import keras
from tfrec.cli import main
from tfrec.data import download as download_module
from tfrec.data import split
from tfrec.errors import DataError, TfrecError
from tfrec.serving.exporter import ExportError, clean_stale, versions
from tfrec.training import train


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under a folder with its bytes (links listed by target)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            out[str(path.relative_to(folder))] = b"->" + os.readlink(path).encode()
        elif path.is_file():
            out[str(path.relative_to(folder))] = path.read_bytes()
    return out


# === Model loading ===
@pytest.fixture(scope="module")
def saved_model(small, tmp_path_factory) -> Path:
    parts = split(small, "random:0.2", seed=0)
    model = train("biased_mf", parts.train, epochs=1, verbose=0).model
    path = tmp_path_factory.mktemp("saved") / "model.keras"
    model.save(path)
    return path


def _lambda_model(marker: Path):
    """A Keras model whose Lambda layer writes ``marker`` when it runs."""
    inputs = keras.Input((1,))
    code = f"(open({str(marker)!r}, 'w').write('ran'), x)[1]"
    outputs = keras.layers.Lambda(eval(f"lambda x: {code}"))(inputs)  # noqa: S307 - the hostile payload
    model = keras.Model(inputs, outputs)
    marker.unlink(missing_ok=True)  # building the model ran it once; only loading counts
    return model


def test_hdf5_named_keras_with_a_lambda_is_refused_and_runs_nothing(tmp_path) -> None:
    marker = tmp_path / "ran"
    model = _lambda_model(marker)
    h5 = tmp_path / "evil.h5"
    model.save(h5)
    disguised = tmp_path / "model.keras"
    disguised.write_bytes(h5.read_bytes())
    # The hazard is real: Keras itself runs the stored bytecode of this file.
    keras.models.load_model(h5, safe_mode=True)
    assert marker.exists()
    marker.unlink()
    for path in (disguised, h5):
        with pytest.raises(TfrecError, match="not a zip .keras archive"):
            tfrec.models.load(path)
        assert not marker.exists()
    assert main(["export", str(disguised), "--export-dir", str(tmp_path / "exports")]) == 2
    assert not marker.exists() and not (tmp_path / "exports").exists()


def _rewrite_config(source: Path, target: Path, change) -> Path:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            if info.filename == "config.json":
                data = json.dumps(change(json.loads(data))).encode()
            new.writestr(info, data)
    return target


LOAD_CASES = [
    ("folder", lambda src, tmp: tmp, "is a folder"),
    ("missing", lambda src, tmp: tmp / "none.keras", "no file"),
    ("empty-file", lambda src, tmp: (tmp / "e.keras").write_bytes(b"") and tmp / "e.keras" or tmp / "e.keras",
     "not a zip .keras archive"),
    ("truncated", lambda src, tmp: (tmp / "t.keras").write_bytes(src.read_bytes()[:300]) and tmp / "t.keras",
     "not a zip .keras archive"),
    ("zip-named-h5", lambda src, tmp: (tmp / "m.h5").write_bytes(src.read_bytes()) and tmp / "m.h5",
     "not a zip .keras archive"),
    ("no-config", lambda src, tmp: _zip(tmp / "n.keras", {"metadata.json": b"{}"}), "no readable config.json"),
    ("config-not-json", lambda src, tmp: _zip(tmp / "j.keras", {"config.json": b"{"}), "no readable config.json"),
    ("unknown-class", lambda src, tmp: _rewrite_config(
        src, tmp / "u.keras", lambda c: {**c, "class_name": "Evil", "registered_name": "evil>Evil"}),
     "holds a Evil (evil>Evil), not a tfrec model"),
    ("foreign-package", lambda src, tmp: _rewrite_config(
        src, tmp / "f.keras", lambda c: {**c, "registered_name": "other>BiasedMF"}), "not a tfrec model"),
    ("bad-config-value", lambda src, tmp: _rewrite_config(
        src, tmp / "b.keras", lambda c: {**c, "config": {**c["config"], "embedding_dim": "many"}}),
     "does not load as a tfrec model"),
]  # fmt: skip


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize("make, fragment", [c[1:] for c in LOAD_CASES], ids=[c[0] for c in LOAD_CASES])
def test_model_loading_refuses_clearly(saved_model, tmp_path, make, fragment) -> None:
    path = make(saved_model, tmp_path)
    with pytest.raises(TfrecError) as info:
        tfrec.models.load(path)
    assert fragment in str(info.value) and len(str(info.value).splitlines()) == 1, str(info.value)


def test_a_keras_zip_with_a_lambda_model_is_refused(tmp_path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "lambda.keras"
    _lambda_model(marker).save(path)
    with pytest.raises(TfrecError, match="not a tfrec model"):
        tfrec.models.load(path)
    assert not marker.exists()


def test_a_saved_tfrec_model_loads(saved_model) -> None:
    model = tfrec.models.load(saved_model)
    assert type(model).__name__ == "BiasedMF" and np.isfinite(model.score(["u1"], ["i1"])).all()


# === Download and extraction ===
def _tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return path


def _link(name: str, target: str, hard: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info


def _zip_link(path: Path, name: str, target: str, then: tuple[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo(name)
        info.external_attr = (0o120777) << 16
        archive.writestr(info, target)
        if then:
            archive.writestr(*then)
    return path


# (case, archive name as served, builder(path, outside folder), expected error fragment)
ARCHIVES = [
    ("tar-served-as-zip", "ml.zip", lambda p, out: _tar(p, [(f"{out}/evil", b"x")]), "is not a zip archive"),
    ("zip-absolute-member", "ml.zip", lambda p, out: _zip(p, {f"{out}/evil": b"x"}), "absolute path"),
    ("zip-dotdot-member", "ml.zip", lambda p, out: _zip(p, {"ml/../../outside/evil": b"x"}), "'..'"),
    ("zip-dotdot-sibling-prefix", "ml.zip", lambda p, out: _zip(p, {"../data2/evil": b"x"}), "'..'"),
    ("zip-backslash-dotdot", "ml.zip", lambda p, out: _zip(p, {"ml\\..\\..\\evil": b"x"}), "'..'"),
    ("zip-symlink", "ml.zip", lambda p, out: _zip_link(p, "ml/link", str(out), ("ml/link/evil", b"x")),
     "symbolic link"),
    ("zip-truncated", "ml.zip", lambda p, out: p.write_bytes(_zip(p, {"ml/u.data": b"1\t1\t4\t1\n" * 500})
                                                            .read_bytes()[:-40]), "not a zip archive"),
    ("zip-empty-file", "ml.zip", lambda p, out: p.write_bytes(b""), "the server sent an empty file"),
    ("zip-html-error-page", "ml.zip", lambda p, out: p.write_text("<html>moved</html>"), "not a zip archive"),
    ("zip-duplicate-member", "ml.zip", lambda p, out: _zip_dup(p), "appears twice"),
    ("zip-without-folder", "ml.zip", lambda p, out: _zip(p, {"other/u.data": b"x"}), "has no folder 'ml'"),
    ("tar-absolute", "ml.tar", lambda p, out: _tar(p, [(f"{out}/evil", b"x")]), "absolute path"),
    ("tar-dotdot", "ml.tar", lambda p, out: _tar(p, [("ml/../../evil", b"x")]), "'..'"),
    ("tar-symlink-then-write", "ml.tar",
     lambda p, out: _tar(p, [_link("ml/link", str(out)), ("ml/link/evil", b"x")]), "is a link"),
    ("tar-hardlink", "ml.tar", lambda p, out: _tar(p, [_link("ml/h", "/etc/passwd", hard=True)]), "is a link"),
    ("tar-device", "ml.tar", lambda p, out: _tar(p, [_device("ml/dev")]), "special file"),
    ("zip-served-as-tar", "ml.tar", lambda p, out: _zip(p, {"ml/u.data": b"x"}), "is not a tar archive"),
    ("tar-truncated", "ml.tar", lambda p, out: p.write_bytes(_tar(p, [("ml/u.data", b"y" * 5000)])
                                                             .read_bytes()[:700]), "tar archive"),
    ("zip-bomb", "ml.zip", lambda p, out: _zip_bomb(p), "unpacks to more than 67,108,864 bytes (50x its"),
]  # fmt: skip


def _zip_bomb(path: Path) -> Path:
    """~100 KB that unpacks to 96 MiB of zeros (the limit: 64 MiB or 50x the archive)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("ml/u.data", "w") as member:
            for _ in range(96):
                member.write(bytes(1 << 20))
    assert path.stat().st_size < 1 << 20
    return path


def test_an_archive_of_too_many_members_is_refused(archive_server, tmp_path, monkeypatch) -> None:
    www, base = archive_server
    monkeypatch.setattr(download_module, "MAX_MEMBERS", 50)
    _zip(www / "many.zip", {f"ml/f{i}": b"x" for i in range(51)})
    (tmp_path / "data").mkdir()
    with pytest.raises(DataError, match="more than 50 members; refused"):
        download_module.fetch_archive(f"{base}/many.zip", tmp_path / "data" / "ml", folder="ml")
    assert list((tmp_path / "data").iterdir()) == []  # what it unpacked is gone


def _zip_dup(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ml/u.data", b"a")
        with pytest.warns(UserWarning):
            archive.writestr("ml/u.data", b"b")
    return path


def _device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    return info


@pytest.mark.parametrize(
    "served_as, build, fragment", [c[1:] for c in ARCHIVES], ids=[c[0] for c in ARCHIVES]
)
def test_hostile_archives_are_refused_and_nothing_escapes(archive_server, tmp_path, monkeypatch, served_as, build,
                                                          fragment) -> None:  # fmt: skip
    www, base = archive_server
    outside = tmp_path / "outside"
    outside.mkdir()
    work = tmp_path / "data" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)  # a hostile relative name must not land beside the cwd either
    build(www / served_as, outside)
    target = tmp_path / "data" / "ml"
    before = _tree(tmp_path / "data"), _tree(outside)
    with pytest.raises(DataError) as info:
        download_module.fetch_archive(f"{base}/{served_as}", target, folder="ml")
    assert fragment in str(info.value), str(info.value)
    assert (_tree(tmp_path / "data"), _tree(outside)) == before
    assert not target.exists() and sorted(p.name for p in (tmp_path / "data").iterdir()) == ["work"]
    assert not (tmp_path / "evil").exists() and not (tmp_path / "data2").exists()


def test_a_mirror_cannot_change_the_archive_type(archive_server, tmp_path) -> None:
    www, base = archive_server
    _tar(www / "ml-100k.tar", [("ml-100k/u.data", b"1\t1\t4\t1\n")])
    with pytest.raises(DataError, match="is not a zip archive"):
        tfrec.datasets.download("movielens-latest-small", tmp_path / "d", url=f"{base}/ml-100k.tar")
    assert not (tmp_path / "d").exists()


def test_download_keeps_the_users_files(archive_server, tmp_path) -> None:
    www, base = archive_server
    _zip(www / "flat.zip", {"docs/readme.txt": b"upstream", "ratings.csv": b"a,b\n"})
    target = tmp_path / "mine"
    (target / "docs").mkdir(parents=True)
    (target / "docs" / "notes.txt").write_text("my notes")
    download_module.fetch_archive(f"{base}/flat.zip", target)
    assert _tree(target) == {
        "docs/notes.txt": b"my notes", "docs/readme.txt": b"upstream", "ratings.csv": b"a,b\n"
    }  # fmt: skip
    # A file of the same name with other bytes: refused, nothing written, the user's file kept.
    (target / "ratings.csv").write_text("my edits")
    _zip(www / "flat2.zip", {"ratings.csv": b"upstream", "new.csv": b"n"})
    with pytest.raises(DataError, match=r"already holds \['ratings.csv'\].*does not replace"):
        download_module.fetch_archive(f"{base}/flat2.zip", target)
    assert (target / "ratings.csv").read_text() == "my edits" and not (target / "new.csv").exists()
    # The same bytes already there: fine (a re-download after a partial copy).
    (target / "ratings.csv").write_text("a,b\n")
    download_module.fetch_archive(f"{base}/flat.zip", target)
    assert (target / "docs" / "notes.txt").read_text() == "my notes"


def test_archive_type_comes_from_the_name() -> None:
    assert download_module.archive_type("https://x/ml-100k.zip") == "zip"
    assert download_module.archive_type("https://x/a.tar.gz") == "tar"
    with pytest.raises(DataError, match="cannot tell the archive type"):
        download_module.archive_type("https://x/archive")


# === Export faults ===
EXPORT_SCRIPT = """
import sys, tfrec
model = tfrec.models.load(sys.argv[1])
print(tfrec.export(model, sys.argv[2]))
"""


# === Untrusted exports: refused before anything of them runs ===
def _file_writing_export(version: Path, marker: Path, secret: Path) -> None:
    """A SavedModel in the export layout whose init op writes ``marker`` and whose
    ``recommend`` signature reads ``secret`` and returns it as item ids."""
    from tfrec._keras import tf

    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        users = tf.compat.v1.placeholder(tf.string, [None], name="user_id")
        k = tf.compat.v1.placeholder(tf.int32, [None], name="k")
        stolen = tf.io.read_file(str(secret))
        items = tf.fill([tf.shape(users)[0], 1], stolen)
        scores = tf.cast(tf.fill([tf.shape(users)[0], 1], 1.0), tf.float32) + tf.cast(k[:1, None], tf.float32) * 0
        init = tf.io.write_file(str(marker), "the init op ran")
        signature = tf.compat.v1.saved_model.predict_signature_def({"user_id": users, "k": k},
                                                                   {"item_ids": items, "scores": scores})  # fmt: skip
        builder = tf.compat.v1.saved_model.Builder(str(version))
        builder.add_meta_graph_and_variables(session, ["serve"], {"recommend": signature}, main_op=init)
        builder.save()


@pytest.fixture(scope="module")
def genuine_metadata(small, tmp_path_factory) -> str:
    model = train("implicit_mf", split(small, "random:0.2", seed=0).train, epochs=1, verbose=0).model
    path = tfrec.export(model, tmp_path_factory.mktemp("genuine") / "m", validate=False)
    assert tfrec.serving.check_trusted(path)["model"] == "implicit_mf"  # a genuine export passes
    return (path / "assets.extra" / "tfrec_metadata.json").read_text()


@pytest.mark.parametrize("with_metadata", [False, True], ids=["no-metadata", "borrowed-metadata"])
def test_an_export_with_file_ops_is_refused_before_it_runs(tmp_path, capsys, genuine_metadata, with_metadata) -> None:
    marker, secret = tmp_path / "marker", tmp_path / "secret"
    secret.write_text("private")
    version = tmp_path / "exports" / "m" / "1"
    _file_writing_export(version, marker, secret)
    if with_metadata:  # tfrec's metadata copied in does not make the graph tfrec's
        (version / "assets.extra").mkdir()
        (version / "assets.extra" / "tfrec_metadata.json").write_text(genuine_metadata)
    expected = "op '(Read|Write)File'" if with_metadata else "not a tfrec export"
    with pytest.raises(tfrec.serving.UntrustedExportError, match=expected):
        tfrec.serving.ExportedModel(version)
    for argv in (["validate", str(version)], ["recommend", str(version), "--user", "1"]):
        assert main(argv) != 0
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "refused" in err and "--trust-export" in err, err
    assert not marker.exists()  # nothing of the export ran
    # The opt-out runs it: the refusal above was the only thing in the way.
    served = tfrec.serving.ExportedModel(version, trust=True)
    assert marker.read_text() == "the init op ran"
    assert served.run("recommend", user_id=["1"], k=[1])["item_ids"].tolist() == [["private"]]
    served.close()


def test_an_export_that_calls_undefined_or_unlisted_functions_is_refused(tmp_path, genuine_metadata) -> None:
    from tensorflow.core.protobuf import saved_model_pb2

    from tfrec._keras import tf

    module = tf.Module()
    module.f = tf.function(lambda x: {"y": tf.strings.join([x, tf.io.matching_files("/*")[0]])},
                           input_signature=[tf.TensorSpec([None], tf.string)])  # fmt: skip
    version = tmp_path / "m" / "1"
    tf.saved_model.save(module, str(version), signatures={"serving_default": module.f})
    (version / "assets.extra").mkdir()
    (version / "assets.extra" / "tfrec_metadata.json").write_text(genuine_metadata)
    with pytest.raises(tfrec.serving.UntrustedExportError, match="op 'MatchingFiles' .* in function"):
        tfrec.serving.validate(version)
    # Two graphs, or a graph tagged other than "serve", is not what tfrec writes.
    saved = saved_model_pb2.SavedModel.FromString((version / "saved_model.pb").read_bytes())
    saved.meta_graphs.add().CopyFrom(saved.meta_graphs[0])
    (version / "saved_model.pb").write_bytes(saved.SerializeToString())
    with pytest.raises(tfrec.serving.UntrustedExportError, match="not one 'serve' graph"):
        tfrec.serving.check_trusted(version)


def _export_process(saved_model: Path, base: Path) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, "-c", EXPORT_SCRIPT, str(saved_model), str(base)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


@pytest.mark.slow
def test_two_concurrent_exports_get_two_versions(saved_model, tmp_path) -> None:
    base = tmp_path / "exports" / "m"
    runs = [_export_process(saved_model, base) for _ in range(2)]
    outs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-2000:] for _, err in outs]
    paths = sorted(out.strip().splitlines()[-1] for out, _ in outs)
    assert paths == [str(base / "1"), str(base / "2")]
    assert versions(base) == [1, 2] and sorted(p.name for p in base.iterdir()) == ["1", "2"]
    for path in paths:
        tfrec.serving.validate(path)


def _children_of(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.append(int(status.parent.name))
    return found


@pytest.mark.slow
@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc; the parent-death signal is Linux"
)
def test_kill_9_mid_export_leaves_nothing_that_the_next_export_keeps(saved_model, tmp_path) -> None:
    base = tmp_path / "exports" / "m"
    run = _export_process(saved_model, base)
    deadline = time.time() + 300
    validators: list[int] = []
    while time.time() < deadline and not validators:
        assert run.poll() is None, run.communicate()[1][-2000:]
        if list(base.glob(".tmp-check-*")):
            validators = _children_of(run.pid)
        time.sleep(0.05)
    assert validators, "the export never reached validation"
    run.send_signal(signal.SIGKILL)
    run.wait()
    deadline = time.time() + 20
    while time.time() < deadline and any(Path(f"/proc/{pid}").exists() for pid in validators):
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}/cmdline").exists() and b"check_export" in
                   Path(f"/proc/{pid}/cmdline").read_bytes() for pid in validators), "the validator outlived its parent"  # fmt: skip
    leftovers = sorted(p.name for p in base.iterdir())
    assert any(name.startswith(".tmp-1-") for name in leftovers) and ".claim-1" in leftovers, leftovers
    (base / "users-notes.txt").write_text("keep")
    (base / ".tmp-mine").mkdir()  # not a name tfrec writes: kept
    model = tfrec.models.load(saved_model)
    assert tfrec.export(model, base) == base / "1"
    assert sorted(p.name for p in base.iterdir()) == [".tmp-mine", "1", "users-notes.txt"]


def test_stale_cleaning_removes_only_dead_owners(tmp_path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    for name in (f".tmp-3-{dead}-abcd", f".tmp-check-{dead}-x", f".old-2-{dead}-ff", f".tmp-4-{os.getpid()}-aa",
                 ".tmp-notours", "7"):  # fmt: skip
        (tmp_path / name).mkdir()
    (tmp_path / ".claim-3").write_text(dead)
    (tmp_path / ".claim-4").write_text(str(os.getppid()))
    assert sorted(clean_stale(tmp_path)) == sorted(
        [f".tmp-3-{dead}-abcd", f".tmp-check-{dead}-x", f".old-2-{dead}-ff", ".claim-3"]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".claim-4",
        f".tmp-4-{os.getpid()}-aa",
        ".tmp-notours",
        "7",
    ]


def test_an_explicit_version_being_written_is_refused(saved_model, tmp_path) -> None:
    base = tmp_path / "m"
    base.mkdir()
    (base / ".claim-5").write_text(str(os.getppid()))  # a live process holds version 5
    model = tfrec.models.load(saved_model)
    with pytest.raises(ExportError, match="another export is writing .*5 now"):
        tfrec.export(model, base, version=5, validate=False)
    assert tfrec.export(model, base, validate=False) == base / "6"  # the next free number


def test_a_stray_empty_version_folder_is_neither_served_nor_replaced(saved_model, tmp_path) -> None:
    base = tmp_path / "m"
    model = tfrec.models.load(saved_model)
    tfrec.export(model, base)
    (base / "2").mkdir()
    (base / "2" / "mine.txt").write_text("keep")
    assert versions(base) == [1]
    served = tfrec.serving.ExportedModel(base)
    assert served.path == base / "1"
    served.close()
    assert main(["recommend", str(base), "--user", "u1", "-k", "2"]) == 0
    assert tfrec.export(model, base, validate=False) == base / "3"
    assert (base / "2" / "mine.txt").read_text() == "keep"


# === Loaders: silent corruption and misleading messages ===
HEADER = "userId,movieId,rating,timestamp\n"
MOVIES = "movieId,title,genres\n1,Toy Story (1995),Animation\n2,Heat (1995),Action\n"
GENRES = "|0" * 18
LOADER_CASES = [
    ("rating-beyond-float32", "latest", HEADER + "1,1,1e39,100\n", "beyond float32's range at row"),
    ("negative-rating-beyond-float32", "latest", HEADER + "1,1,-1e39,100\n", "beyond float32's range"),
    ("timestamp-beyond-int64", "latest", HEADER + "1,1,4,1e30\n", "beyond the int64 range"),
    ("timestamp-negative-huge", "latest", HEADER + "1,1,4,-1e30\n", "beyond the int64 range"),
    ("u-item-short-row", "100k", "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0\n", "lack field 'Western'"),
    ("u-item-genre-not-a-flag", "100k", f"1|Toy Story (1995)|01-Jan-1995||http://x|2{GENRES}\n",
     "genre fields must be 0 or 1"),
    ("u-item-genre-text", "100k", f"1|Toy Story (1995)|01-Jan-1995||http://x|yes{GENRES}\n",
     "genre fields must be 0 or 1"),
]  # fmt: skip


@pytest.mark.parametrize(
    "kind, text, fragment", [c[1:] for c in LOADER_CASES], ids=[c[0] for c in LOADER_CASES]
)
def test_loaders_refuse_what_they_would_corrupt(tmp_path, kind, text, fragment) -> None:
    if kind == "latest":
        (tmp_path / "ratings.csv").write_text(text)
        (tmp_path / "movies.csv").write_text(MOVIES)
        name = "movielens-latest-small"
    else:
        (tmp_path / "u.data").write_text("1\t1\t4\t100\n")
        (tmp_path / "u.item").write_text(text)
        name = "movielens-100k"
    with pytest.raises(DataError) as info:
        tfrec.datasets.load(name, tmp_path)
    assert fragment in str(info.value), str(info.value)


def test_short_u_item_rows_no_longer_get_every_genre(tmp_path) -> None:
    (tmp_path / "u.data").write_text("1\t1\t4\t100\n")
    (tmp_path / "u.item").write_text(f"1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1{'|0' * 14}\n")
    data = tfrec.datasets.load("movielens-100k", tmp_path)
    assert data.items.loc["1", "genres"] == "Animation|Children's"


def test_a_bad_byte_deep_in_a_file_is_reported_where_it_is(tmp_path) -> None:
    good = HEADER + "".join(f"{u},{u % 7},4,{100 + u}\n" for u in range(1, 40_000))
    raw = good.encode() + b"99999,1,4,1\xff\n"
    (tmp_path / "ratings.csv").write_bytes(raw)
    (tmp_path / "movies.csv").write_text(MOVIES)
    with pytest.raises(DataError) as info:
        tfrec.datasets.load("movielens-latest-small", tmp_path)
    assert f"at byte {len(raw) - 2}, line 40001" in str(info.value), str(info.value)


DATA_DIR_CASES = [
    (["--data-dir", "/nonexistent-tfrec"], "name the dataset too (--dataset NAME"),
    (
        ["--dataset", "movielens-100k", "--data-dir", "/nonexistent-tfrec"],
        "/nonexistent-tfrec does not exist",
    ),
    (["--dataset", "movielens-100k", "--data-dir", "/etc/hostname"], "/etc/hostname is a file, not a folder"),
    (["--seed", "-1"], "argument --seed: must be an integer in [0, 4294967295], got -1"),
    (["--seed", str(2**64)], "argument --seed: must be an integer in [0, 4294967295]"),
    (["--batch-size", str(2**40)], "argument --batch-size: must be an integer in [1, 2147483647]"),
    (["--epochs", str(10**12)], "argument --epochs: must be an integer in [1, 1000000]"),
    (["--k", str(2**40)], "argument --k: expected comma-separated positive integers"),
    (["--set", "learning_rate=nan"], "learning_rate=nan is invalid: must be a finite number"),
    (["--set", "learning_rate=-inf"], "learning_rate=-inf is invalid: must be a finite number"),
    (["--set", "embedding_dim=1000000000"], "implicit_mf with this config would need about"),
    (["--strategy", "multi-worker"], "set TF_CONFIG"),
    (["--output", "/etc/hostname/run"], "cannot write to /etc/hostname/run"),
]


@pytest.mark.parametrize("argv, fragment", DATA_DIR_CASES, ids=[" ".join(a)[:40] for a, _ in DATA_DIR_CASES])
def test_cli_train_refuses_before_training(tmp_path, monkeypatch, capsys, argv, fragment) -> None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "implicit_mf", *argv]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("tfrec: error: ") and fragment in err, err
    assert "Epoch" not in captured.out and list(tmp_path.iterdir()) == []


def test_config_files_and_export_shapes_get_the_flags_bounds(tmp_path_factory, monkeypatch, capsys) -> None:
    """``--config`` values pass the bounds the flags have; the file is read bounded (no
    device, no endless read, no deep nesting); export shape flags are bounded too."""
    files = tmp_path_factory.mktemp("configs")
    cases = {
        "epochs.json": ('{"model": "implicit_mf", "config": {"epochs": 1000000000000}}',
                        "--config: epochs must be an integer in [1, 1000000], got 1000000000000"),
        "batch.json": ('{"model": "implicit_mf", "config": {"batch_size": 1099511627776}}',
                       "--config: batch_size must be an integer in [1, 2147483647]"),
        "deep.json": ("[" * 100_000 + "]" * 100_000, "is not JSON: nested too deeply"),
        "big.json": (" " * (2 << 20), "is over 1024 KiB"),
    }  # fmt: skip
    argvs = [(["--config", str(files / name)], fragment) for name, (text, fragment) in cases.items()]
    for name, (text, _) in cases.items():
        (files / name).write_text(text)
    argvs += [
        (["--config", "/dev/zero"], "/dev/zero is not a regular file"),
        (["--export-dir", "e", "--exclude-width", "2147483647"], "--exclude-width: must be an integer in [1, 4096]"),
        (["--export-dir", "e", "--max-k", "10000000"], "--max-k: must be an integer in [1, 10000]"),
    ]
    work = tmp_path_factory.mktemp("work")
    monkeypatch.chdir(work)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    for argv, fragment in argvs:
        assert main(["train", "implicit_mf", *argv]) == 2
        captured = capsys.readouterr()
        err = captured.err.strip()
        assert len(err.splitlines()) == 1 and fragment in err, (argv, err)
        assert "Epoch" not in captured.out and list(work.iterdir()) == []
    with pytest.raises(TfrecError, match=r"exclude_width must be an integer in \[1, 4096\]"):
        tfrec.export(object(), work / "x", exclude_width=5000)


@pytest.mark.parametrize("tf_config, fragment", [
    ("{", "TF_CONFIG is not valid JSON"),
    ('{"cluster": {}}', "TF_CONFIG needs cluster.worker"),
    ('{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}', "needs cluster.worker"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}}', "needs task.type"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}', "task.index 3 is outside"),
    ('[1, 2]', "TF_CONFIG needs cluster.worker"),
    ('{"cluster": {"worker": ["127.0.0.1:1"], "chief": 3}, "task": {"type": "chief", "index": 0}}', "needs task.type"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": ["worker"], "index": 0}}', "needs task.type"),
], ids=["not-json", "no-workers", "worker-without-port", "no-task", "index-outside", "a-list", "job-not-a-list",
        "type-not-a-string"])  # fmt: skip
def test_malformed_tf_config_is_one_line(monkeypatch, capsys, tmp_path, tf_config, fragment) -> None:
    monkeypatch.setenv("TF_CONFIG", tf_config)
    assert main(["train", "gmf", "--strategy", "multi-worker", "--output", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err, err


PS_CLUSTER = {"chief": ["127.0.0.1:1"], "worker": ["127.0.0.1:2"], "ps": ["127.0.0.1:3"]}


@pytest.mark.parametrize("argv, tf_config, fragment", [
    (["train", "gmf", "--strategy", "parameter-server"], {"cluster": {"worker": ["127.0.0.1:2"]},
     "task": {"type": "worker", "index": 0}}, "TF_CONFIG needs cluster.ps"),
    (["train", "gmf", "--strategy", "parameter-server"], {"cluster": PS_CLUSTER,
     "task": {"type": "worker", "index": 0}}, "this process is TF_CONFIG's worker, expected chief"),
    (["train", "ials", "--strategy", "parameter-server"], {"cluster": PS_CLUSTER,
     "task": {"type": "chief", "index": 0}}, "ials cannot train under parameter servers"),
    (["train", "bayesian_mf", "--strategy", "parameter-server"], {"cluster": PS_CLUSTER,
     "task": {"type": "chief", "index": 0}}, "bayesian_mf cannot train under parameter servers"),
    (["train", "gmf", "--min-shard-bytes", "1024"], None, "--min-shard-bytes: only with --strategy parameter-server"),
    (["train", "gmf", "--strategy", "parameter-server", "--min-shard-bytes", "0"], {"cluster": PS_CLUSTER,
     "task": {"type": "chief", "index": 0}}, "--min-shard-bytes: must be an integer in [1,"),
    (["cluster-task"], None, "cluster-task: set TF_CONFIG"),
    (["cluster-task"], {"cluster": PS_CLUSTER, "task": {"type": "chief", "index": 0}},
     "this process is TF_CONFIG's chief, expected worker or ps"),
], ids=["no-servers", "not-the-chief", "ials", "bayesian_mf", "shard-bytes-alone", "shard-bytes-0",
        "task-without-config", "task-is-chief"])  # fmt: skip
def test_parameter_server_refusals_are_one_line(monkeypatch, capsys, tmp_path, argv, tf_config, fragment) -> None:
    """Refused before any data is read or any server is contacted (the addresses are unused ports)."""
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err, err
    assert list(tmp_path.iterdir()) == []


def test_cluster_servers_refuse_a_host_with_a_public_address(monkeypatch, capsys, tmp_path) -> None:
    """TensorFlow's servers bind every interface and run any op a client sends: on a host
    with a public address neither ``tfrec cluster-task`` nor ``local_cluster`` starts one
    unless asked, and nothing listens afterwards."""
    import socket

    from tfrec.core import parameter_servers

    assert all(":" in a or a.count(".") == 3 for a in parameter_servers.exposed_addresses())
    monkeypatch.setattr(parameter_servers, "exposed_addresses", lambda: ["198.51.100.7"])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cluster = {"chief": ["127.0.0.1:1"], "worker": [f"127.0.0.1:{port}"], "ps": ["127.0.0.1:3"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    assert main(["cluster-task"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cluster task worker 0: not started" in err, err
    assert "198.51.100.7" in err and "unauthenticated" in err and "--allow-public-interfaces" in err
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing listens
    with pytest.raises(TfrecError, match="local_cluster: not started: this host has public addresses"):
        with parameter_servers.local_cluster(workers=1, servers=1):
            pass


def test_one_huge_id_is_refused_and_long_ids_cost_their_length_only(tmp_path) -> None:
    """A 10,000-character id is refused in one line (in memory and streamed); ids up to the
    limit are held as Python strings, so memory follows the data, not rows x longest id."""
    import tracemalloc

    from tfrec.data import streaming
    from tfrec.data.interactions import MAX_ID_CHARS
    from tfrec.data.vocabulary import _by_count

    frame = pd.DataFrame({"user_id": ["a", "b", "x" * 10_000], "item_id": ["1", "2", "3"]})
    with pytest.raises(DataError, match=r"column 'user_id' has ids longer than 1024 characters at rows 2 "
                                        r"\(the longest: 10,000\)"):  # fmt: skip
        tfrec.data.Interactions(frame)
    (tmp_path / "part-0.csv").write_text("user_id,item_id\na,1\n" + "y" * 10_000 + ",2\n")
    with pytest.raises(DataError, match=r"part-0.csv: line 3: user_id longer than 1024 characters"):
        streaming.scan(streaming.Shards.of(str(tmp_path / "part-*.csv")))
    rows = 200_000
    values = np.asarray([f"u{i % 5000}" for i in range(rows)] + ["z" * MAX_ID_CHARS], dtype=object)
    tracemalloc.start()
    ids, counts = _by_count(values)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(ids) == 5001 and ids[-1] == "z" * MAX_ID_CHARS and counts.sum() == rows + 1
    assert peak < 64 * 2**20, peak  # a fixed-width array would take rows x 1024 x 4 = 820 MB


# === Property-based: the parsers never fail in an unexplained way ===
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tfrec import cli_checks  # noqa: E402
from tfrec.cli_checks import UserError  # noqa: E402

# TFREC_PROPERTY_EXAMPLES=600 for a deeper search than CI's 60 examples per property.
PROPERTY = settings(
    max_examples=int(os.environ.get("TFREC_PROPERTY_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@PROPERTY
@given(text=st.text(max_size=40))
def test_k_parsing_is_a_tuple_of_ints_or_one_clear_error(text) -> None:
    try:
        ks = cli_checks.ks(text)
    except UserError as err:
        assert str(err).startswith("argument --k: expected comma-separated positive integers")
        return
    assert ks and all(isinstance(k, int) and 1 <= k <= 2**31 - 1 for k in ks)


@PROPERTY
@given(pairs=st.lists(st.text(max_size=20), max_size=4),
       epochs=st.one_of(st.none(), st.integers(-10, 2**40)), batch=st.one_of(st.none(), st.integers(-10, 2**40)))  # fmt: skip
def test_set_parsing_is_a_dict_or_one_clear_error(pairs, epochs, batch) -> None:
    try:
        overrides = cli_checks.overrides(pairs, epochs, batch)
    except UserError as err:
        assert str(err).startswith(("argument --set:", "argument --epochs:", "argument --batch-size:"))
        return
    assert all(isinstance(k, str) and k for k in overrides)


@PROPERTY
@given(argv=st.lists(st.sampled_from(["-k", "0", "5", "x", "--user", "u", "--exclude", "--include-seen", "",
                                      "--nope", "-1", "99999999999"]), max_size=6))  # fmt: skip
def test_recommend_argument_errors_are_one_line(argv) -> None:
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["recommend", "/nonexistent-export", *argv])
    lines = err.getvalue().strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("tfrec: error: ")


CELL = st.text(
    alphabet=st.characters(blacklist_characters=',"\n\r', blacklist_categories=("Cs",)), max_size=8
)


@PROPERTY
@given(rows=st.lists(st.tuples(CELL, CELL, st.one_of(st.floats(allow_nan=True, allow_infinity=True), CELL),
                               st.one_of(st.integers(-(2**70), 2**70), CELL)), min_size=0, max_size=6))  # fmt: skip
def test_the_csv_loader_loads_or_says_what_is_wrong(tmp_path_factory, rows) -> None:
    folder = tmp_path_factory.mktemp("prop")
    text = HEADER + "".join(f"{u},{i},{r},{t}\n" for u, i, r, t in rows)
    (folder / "ratings.csv").write_text(text, encoding="utf-8")
    (folder / "movies.csv").write_text(MOVIES)
    try:
        data = tfrec.datasets.load("movielens-latest-small", folder)
    except DataError as err:
        assert str(folder) in str(err) and "\n" not in str(err).strip()
        return
    frame = data.frame
    assert len(frame) == len(rows)
    assert np.isfinite(frame["rating"].to_numpy()).all() and frame["timestamp"].dtype == np.int64
    assert (frame["user_id"].str.len() > 0).all()


@PROPERTY
@given(raw=st.binary(max_size=200))
def test_the_ml100k_loader_on_arbitrary_bytes_never_crashes(tmp_path_factory, raw) -> None:
    folder = tmp_path_factory.mktemp("bytes")
    (folder / "u.data").write_bytes(raw)
    (folder / "u.item").write_text(f"1|T|01-Jan-1995||http://x|0{GENRES}\n")
    try:
        data = tfrec.datasets.load("movielens-100k", folder)
    except DataError:
        return
    assert len(data) >= 1 and np.isfinite(data.frame["rating"].to_numpy()).all()


def test_a_one_item_catalogue_trains_exports_and_answers(tmp_path) -> None:
    frame = pd.DataFrame({"user_id": ["a", "b", "c"], "item_id": ["x", "x", "x"]})
    model = train("implicit_mf", frame, epochs=1, verbose=0).model
    served = tfrec.serving.ExportedModel(tfrec.export(model, tmp_path / "one"))
    answer = served.run("recommend", user_id=["a", "new"], k=1)
    assert answer["item_ids"].tolist() == [[""], ["x"]] and answer["scores"][0, 0] == np.finfo(np.float32).min
    assert served.run("similar_items", item_id=["x"], k=1)["item_ids"].tolist() == [[""]]
    with pytest.raises(TfrecError, match=r"k=3 is more than this export answers \(1, its max_k\)"):
        served.run("recommend", user_id=["a"], k=3)
    with pytest.raises(TfrecError, match="k must be an integer or one integer per row, got 2.7"):
        served.run("recommend", user_id=["a"], k=2.7)
    served.close()


@pytest.mark.parametrize("ids", ["INF", "-inf", "1e300"], ids=["inf", "minus-inf", "huge"])
def test_ids_that_parse_as_non_finite_numbers_are_refused(tmp_path, ids) -> None:
    # Found by the property test above: pandas reads a lone 'INF' movieId as float inf.
    (tmp_path / "ratings.csv").write_text(HEADER + f"0,{ids},0.0,0\n")
    (tmp_path / "movies.csv").write_text(MOVIES)
    with pytest.raises(DataError, match="non-finite or out-of-range numbers"):
        tfrec.datasets.load("movielens-latest-small", tmp_path)
