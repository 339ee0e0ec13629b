"""Holding back the informational lines TensorFlow's C++ runtime prints while it loads.

TensorFlow writes absl's preamble ("All log messages before absl::InitializeLog() ...")
and info lines ("oneDNN custom operations are on", "Could not find cuda drivers") to the
process's stderr as its libraries load. The runtime reads ``TF_CPP_MIN_LOG_LEVEL`` from
the environment the process started with, so ``import tfrec`` setting it cannot silence
them. Instead, :func:`install` puts an import hook in front of ``import tensorflow``
(whoever imports it first: tfrec, or the user's own ``import tensorflow``): while the
module loads, file descriptor 2 goes to a temporary file; afterwards every line that is
not one of those info lines is written through, so warnings and errors still show.
``TFREC_VERBOSE=1`` turns the hook off.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile

INFO = re.compile(r"^(I\d{4} |WARNING: All log messages before absl::InitializeLog)")


def _held_back(load) -> None:
    """Runs ``load()`` with fd 2 captured; writes through the lines that are not INFO."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            load()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode("utf-8", "replace").splitlines()
            kept = [line for line in lines if line.strip() and not INFO.match(line)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")


class _Loader(importlib.abc.Loader):
    def __init__(self, loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        _held_back(lambda: self._loader.exec_module(module))


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: the real finders take it from here
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


def install() -> None:
    """Holds back TensorFlow's load-time info lines, unless it is loaded or TFREC_VERBOSE=1."""
    if os.environ.get("TFREC_VERBOSE") == "1" or "tensorflow" in sys.modules:
        return
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
