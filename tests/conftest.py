"""Shared fixtures: the real data in ../shared/data and small generated datasets."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

import pytest

import tfrec

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TFREC_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared_folder(name: str) -> Path:
    """The folder of a shared dataset; skips (or fails under TFREC_REQUIRE_SHARED_DATA=1) if absent."""
    folder = SHARED_DATA / name
    if not folder.is_dir():
        reason = f"needs the shared dataset {folder} (absent on this machine)"
        if os.environ.get("TFREC_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(f"TFREC_REQUIRE_SHARED_DATA=1 but the test {reason}")
        pytest.skip(reason)
    return folder


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    return shared_folder("ml-100k")


@pytest.fixture(scope="session")
def ml_latest_dir() -> Path:
    return shared_folder("ml-latest-small")


@pytest.fixture(scope="session")
def citeulike_dir() -> Path:
    return shared_folder("citeulike-t")


@pytest.fixture(scope="session")
def lastfm_dir() -> Path:
    return shared_folder("lastfm-2k-audio")


@pytest.fixture(scope="session")
def ml100k(ml100k_dir: Path) -> tfrec.data.Interactions:
    return tfrec.datasets.load("movielens-100k", ml100k_dir)


@pytest.fixture(scope="session")
def small() -> tfrec.data.Interactions:
    """A small synthetic dataset for fast model tests."""
    return tfrec.datasets.synthetic(num_users=200, num_items=120, num_interactions=5000, seed=1)


@pytest.fixture()
def archive_server(tmp_path):
    """Serves tmp_path/www on 127.0.0.1; yields (that folder, its base URL)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
