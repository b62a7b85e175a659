"""Progress lines: to standard error, flushed at once, so that standard output carries only the result and a
long command shows where it is even when its output is piped."""

from __future__ import annotations

import sys

from .tables import fit_prose


def say(msg: str) -> None:
    """``msg`` on stderr, wrapped to a terminal's width when stderr is one (whole in a log)."""
    sys.stdout.flush()              # what was printed before this line shows before it, in a log of both streams
    print(fit_prose(msg, stream=sys.stderr), file=sys.stderr, flush=True)
