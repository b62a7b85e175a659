"""argparse value types: a bad number is one line naming the rule, before any work starts."""

from __future__ import annotations

import argparse
import math


def whole_number(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, not {text!r}")
        return value

    return parse


def positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, not {text!r}")
    return value


positive_int = whole_number(1)
non_negative_int = whole_number(0)


def output_file(text: str) -> str:
    """A file the command will write: refused up front (a folder, an unwritable place), before any measuring."""
    from workloads.errors import SpikeflopsError

    from .resultsio import check_writable

    try:
        check_writable(text)
    except SpikeflopsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text
