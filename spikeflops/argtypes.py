"""argparse value types: a bad number is one line naming the rule, before any work starts."""

from __future__ import annotations

import argparse
import math

from workloads.errors import SpikeflopsError


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

    from .results.fileio import check_writable

    try:
        check_writable(text)
    except SpikeflopsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def parse_bytes(text: str) -> int:
    """'4GiB', '512MiB', '2G', '1000000' -> bytes."""
    units = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6, "mib": 2**20,
             "g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12, "tib": 2**40}
    s = text.strip().lower()
    num = s.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = s[len(num):].strip()
    try:
        value = float(num)
    except ValueError:
        raise SpikeflopsError(f"cannot read memory size {text!r} (try 4GiB or 512MiB)") from None
    if unit not in units or not value > 0:
        raise SpikeflopsError(f"cannot read memory size {text!r} (try 4GiB or 512MiB)")
    return int(value * units[unit])


def noise_models(text: str) -> tuple[str, ...]:
    """--noise: comma-separated noise models, each one the registry declares (workloads.metrics.NOISE_MODELS)."""
    from workloads.metrics import NOISE_MODELS

    chosen = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in chosen if n not in NOISE_MODELS]
    if bad or not chosen:
        raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(NOISE_MODELS)}")
    return chosen
