"""Progress bars for long work (evaluation, recommendation, export, downloads).

Shown only when someone is watching: stdout is a terminal or the code runs in a Jupyter
kernel; never in the logs of a non-interactive run unless ``TFREC_PROGRESS=1`` asks for
it (``TFREC_PROGRESS=0`` turns them off everywhere).
"""

from __future__ import annotations

import os
import sys


def interactive() -> bool:
    """Whether progress is wanted: ``TFREC_PROGRESS`` if set, else a terminal or a notebook."""
    forced = os.environ.get("TFREC_PROGRESS")
    if forced in ("0", "1"):
        return forced == "1"
    return sys.stdout.isatty() or "ipykernel" in sys.modules


class Progress:
    """A Keras ``Progbar`` over ``total`` steps when :func:`interactive` and the work is long.

    Args:
        total: Steps the work takes.
        unit: What a step is (shown after the count).
        least: Fewer steps than this is short work: no bar.

    Example:
        >>> progress = Progress(len(chunks), "chunks", least=4)
        >>> for chunk in chunks: ...; progress.advance()
    """

    def __init__(self, total: int, unit: str = "step", least: int = 2) -> None:
        self.bar = None
        self.done = 0
        if total >= max(least, 1) and interactive():
            from tfrec._keras import keras

            self.bar = keras.utils.Progbar(total, unit_name=unit)

    def advance(self, steps: int = 1) -> None:
        """Marks ``steps`` more steps done."""
        self.done += steps
        if self.bar is not None:
            self.bar.update(self.done)
