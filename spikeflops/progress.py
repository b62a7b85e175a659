"""Progress lines: to standard error, flushed at once, so that standard output carries only the result and a
long command shows where it is even when its output is piped."""

from __future__ import annotations

import sys


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
