"""Read asv result files and pytest-benchmark JSON into one uniform list of measurements.

A measurement is one number (with raw samples where the harness kept them) of one
metric at one parameter combination. Metric names:
- asv: the benchmark's name, ``bench_gpt.GPTThroughput.track_mfu``;
- pytest-benchmark: the test function and what was measured, ``test_gpt_train_step.time``
  for the timing and ``test_gpt_train_step.mfu`` for each number in ``extra_info``
  (nested dictionaries are flattened with dots, lists are per-seed samples).
An asv parameter named ``seed`` is folded into samples: one metric, one value per seed.
"""

from __future__ import annotations

import ast
import functools
import itertools
import math
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SpikeflopsError
from ..resultsio import read_json

SEED_PARAM = "seed"


@dataclass(frozen=True)
class Measurement:
    metric: str
    params: tuple[tuple[str, str], ...]      # (name, value) pairs, seed excluded
    unit: str
    value: float                             # the harness's summary (median); NaN: ran, produced no number
    samples: tuple[float, ...] = ()          # raw samples: repeats of a timing, or one value per seed

    @property
    def key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        return self.metric, self.params

    @property
    def label(self) -> str:
        inner = ", ".join(v for _, v in self.params)
        return f"{self.metric}({inner})" if inner else self.metric


@dataclass
class ResultSet:
    """Everything one results file says: where it came from, which machine, which commit, what was measured."""

    path: str
    harness: str                             # "asv" or "pytest-benchmark"
    machine: dict                            # hardware facts that decide comparability
    commit: str | None
    date: float | None                       # seconds since the epoch
    measurements: list[Measurement] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)    # benchmarks that ran and failed

    def by_key(self) -> dict:
        return {m.key: m for m in self.measurements}


def load(path: str | os.PathLike) -> ResultSet:
    """A results file of either harness; anything else is a one-line SpikeflopsError."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise SpikeflopsError(f"{path}: not an asv or pytest-benchmark results file (top level is not an object)")
    try:
        if "result_columns" in data or ("results" in data and "commit_hash" in data):
            return _load_asv(Path(path), data)
        if "benchmarks" in data and "machine_info" in data:
            return _load_pytest_benchmark(Path(path), data)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise SpikeflopsError(f"{path}: malformed results file ({type(exc).__name__}: {exc})") from None
    raise SpikeflopsError(f"{path}: not an asv or pytest-benchmark results file")


# ---------------------------------------------------------------- asv

_ASV_OLD_COLUMNS = ["result", "params", "version", "started_at", "duration", "stats_ci_99_a", "stats_ci_99_b",
                    "stats_q_25", "stats_q_75", "stats_number", "stats_repeat", "samples", "profile"]


def _load_asv(path: Path, data: dict) -> ResultSet:
    if data.get("version") != 2:
        raise SpikeflopsError(f"{path}: asv results format version {data.get('version')!r}; this reads version 2")
    columns = data.get("result_columns", _ASV_OLD_COLUMNS)
    meta = _asv_benchmark_meta(path)
    params = data.get("params", {})
    machine = {"harness": "asv", "machine": params.get("machine"), "cpu": params.get("cpu"),
               "num_cpu": _int(params.get("num_cpu")), "arch": params.get("arch"), "gpu": params.get("gpu")}
    out = ResultSet(str(path), "asv", machine, data.get("commit_hash"),
                    (data["date"] / 1000.0) if data.get("date") else None)
    for name, row in data["results"].items():
        cols = dict(zip(columns, row))
        info = meta.get(name, {})
        unit = info.get("unit") or _default_unit(name)
        values = cols.get("result")
        samples = cols.get("samples")
        names = info.get("param_names") or [f"param{i + 1}" for i in range(len(cols.get("params") or []))]
        combos = list(itertools.product(*cols["params"])) if cols.get("params") else [()]
        if values is None:                      # the whole benchmark failed (setup error, import error...)
            out.failed.append(name)
            continue
        if not isinstance(values, list):
            values, samples = [values], [samples]
        samples = samples if isinstance(samples, list) else [None] * len(values)
        folded: dict[tuple, list[float]] = {}
        for combo, value, raw in zip(combos, values, samples):
            pairs = tuple((n, _unrepr(v)) for n, v in zip(names, combo))
            if value is None:                   # asv: None = failed, NaN = skipped (NotImplementedError)
                out.failed.append(f"{name}({', '.join(v for _, v in pairs)})")
                continue
            if isinstance(value, float) and math.isnan(value):
                continue
            seedless = tuple(p for p in pairs if p[0] != SEED_PARAM)
            if len(seedless) != len(pairs):
                folded.setdefault(seedless, []).append(float(value))
                continue
            raw_samples = tuple(float(s) for s in raw) if raw else ()
            out.measurements.append(Measurement(name, pairs, unit, float(value), raw_samples))
        for pairs, seed_values in folded.items():
            out.measurements.append(Measurement(name, pairs, unit, _median(seed_values), tuple(seed_values)))
    return out


def _asv_benchmark_meta(path: Path) -> dict:
    """Units and parameter names from the benchmarks.json asv keeps beside the machine folders."""
    for candidate in (path.parent.parent / "benchmarks.json", path.parent / "benchmarks.json"):
        if candidate.is_file():
            return _read_benchmark_index(str(candidate.resolve()), candidate.stat().st_mtime_ns)
    return {}


@functools.lru_cache(maxsize=16)
def _read_benchmark_index(path: str, mtime_ns: int) -> dict:
    """One read per index (a report walks many results files beside the same one); mtime keys a rewrite."""
    data = read_json(path)
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def _default_unit(name: str) -> str:
    short = name.rsplit(".", 1)[-1]
    return "seconds" if short.startswith("time_") else "bytes" if short.startswith(("peakmem_", "mem_")) else ""


def _unrepr(text) -> str:
    """asv stores parameter values as their repr ("'gpt-nano'"); show the value."""
    try:
        return str(ast.literal_eval(text))
    except (ValueError, SyntaxError):
        return str(text)


# ---------------------------------------------------------------- pytest-benchmark

def _load_pytest_benchmark(path: Path, data: dict) -> ResultSet:
    info = data["machine_info"]
    cpu = info.get("cpu")                   # spikeflops' conftest writes the model name; plain pytest-benchmark a dict
    cpu_name = cpu.get("brand_raw") if isinstance(cpu, dict) else cpu
    num_cpu = info.get("cpu_count") or (cpu.get("count") if isinstance(cpu, dict) else None)
    machine = {"harness": "pytest-benchmark", "machine": info.get("spikeflops_machine") or info.get("node"),
               "cpu": cpu_name, "num_cpu": _int(num_cpu), "arch": info.get("machine"), "gpu": info.get("gpu")}
    commit = (data.get("commit_info") or {}).get("id")
    out = ResultSet(str(path), "pytest-benchmark", machine, commit, _iso_time(data.get("datetime")))
    for bench in data["benchmarks"]:
        test = bench["name"].split("[", 1)[0]
        pairs = tuple((str(k), str(v)) for k, v in sorted((bench.get("params") or {}).items()))
        stats = bench.get("stats") or {}
        if stats.get("median") is not None:
            raw = tuple(float(s) for s in stats.get("data") or ())
            out.measurements.append(Measurement(f"{test}.time", pairs, "seconds", float(stats["median"]), raw))
        for key, value in _flatten(bench.get("extra_info") or {}):
            m = _extra_measurement(f"{test}.{key}", pairs, value)
            if m is not None:
                out.measurements.append(m)
    return out


def _flatten(info: dict, prefix: str = ""):
    for key, value in info.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _extra_measurement(metric: str, pairs, value) -> Measurement | None:
    """Numbers become measurements, lists of numbers per-seed samples; None means "not reached" (NaN)."""
    if isinstance(value, bool) or isinstance(value, str):
        return None
    if isinstance(value, (int, float)):
        return Measurement(metric, pairs, "", float(value), ())
    if isinstance(value, list) and value and all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
                                                 for v in value):
        samples = tuple(math.nan if v is None else float(v) for v in value)
        return Measurement(metric, pairs, "", _median(list(samples)), samples)
    return None


def _median(values: list[float]) -> float:
    """Median with NaN ("never reached") ranked worst of all: above every number."""
    ordered = sorted(values, key=lambda v: (math.isnan(v), v))
    mid = ordered[len(ordered) // 2]
    if len(ordered) % 2 or math.isnan(mid) or math.isnan(ordered[len(ordered) // 2 - 1]):
        return mid
    return statistics.median(ordered)


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _iso_time(text):
    from datetime import datetime

    try:
        return datetime.fromisoformat(text).timestamp()
    except (TypeError, ValueError):
        return None
