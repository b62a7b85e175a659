"""Read asv result files and pytest-benchmark JSON into one uniform list of measurements.

A measurement is one number (with raw samples where the harness kept them) of one
metric at one parameter combination. Metric names are the case table's, the same in
both harnesses: ``<Family>.<metric>`` (``GPTThroughput.mfu``, ``GPTStep.time_step``),
with the family's parameters as (name, value) strings.
- asv: ``bench_gpt.GPTThroughput.track_mfu`` -> ``GPTThroughput.mfu`` (time_* keep their name);
- pytest-benchmark: each test records its family, parameters, metrics and units in
  ``extra_info``; the timing is the family's timed metric.
A parameter named ``seed`` is folded into samples in both: one metric, one value per seed.
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

from workloads.errors import SpikeflopsError
from workloads.registry import ASV_CASE_PARAM, FAMILIES, row_for_case
from .schema import RUN_FORMAT, ResultEntry
from .fileio import read_json

SEED_PARAM = "seed"


@dataclass(frozen=True)
class Measurement:
    metric: str
    params: tuple[tuple[str, str], ...]      # (name, value) pairs, seed excluded
    unit: str
    value: float                             # the harness's summary (median); NaN: ran, produced no number
    samples: tuple[float, ...] = ()          # raw samples: repeats of a timing, or one value per seed
    parts: tuple[tuple[str, float], ...] = ()   # named parts (an instruction count's functions), if recorded

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
    harness: str                             # "asv", "pytest-benchmark" or "spikeflops-run"
    machine: dict                            # hardware facts that decide comparability
    commit: str | None
    date: float | None                       # when it ran, seconds since the epoch (asv: the commit's date)
    measurements: list[Measurement] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)    # benchmarks that ran and failed
    commit_date: float | None = None         # the commit's date: orders results by commit, not by run
    dirty: bool = False                      # the working tree had uncommitted changes
    index_source: str | None = None          # asv: where parameter names and units came from
    cpu_share: float | None = None           # spikeflops run: the CPU share the whole run got (machine load)

    @property
    def order_key(self) -> tuple:
        """Oldest first: by the commit's date, then by when the run happened."""
        return (self.commit_date or self.date or 0.0, self.date or 0.0, Path(self.path).name)

    def by_key(self) -> dict:
        return {m.key: m for m in self.measurements}


_CACHE: dict[str, tuple[tuple[int, int], ResultSet]] = {}
_CACHE_SIZE = 4096


def load(path: str | os.PathLike) -> ResultSet:
    """A results file of asv, pytest-benchmark or `spikeflops run`; anything else is a one-line SpikeflopsError.

    Parsed once per (path, size, mtime): a report, a gate's history and a bisect read the same files
    again and again. Callers must not mutate the ResultSet they get (every reader builds new ones)."""
    try:
        st = os.stat(path)
        key, stamp = str(Path(path).resolve()), (st.st_size, st.st_mtime_ns)
    except OSError:
        return _parse(path)                          # read_json words the error
    cached = _CACHE.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    rs = _parse(path)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = (stamp, rs)
    return rs


_HEADERS: dict[str, tuple[tuple[int, int], ResultSet]] = {}


def peek(path: str | os.PathLike) -> ResultSet:
    """A results file's header alone (harness, machine, commit, dates), without its measurements: what a
    history needs to pick the newest runs of one machine before it reads just those in full. Its list of
    measurements emptied, the header is read by the same code as the whole file."""
    try:
        st = os.stat(path)
        key, stamp = str(Path(path).resolve()), (st.st_size, st.st_mtime_ns)
    except OSError:
        return _parse(path)
    full = _CACHE.get(key)
    if full is not None and full[0] == stamp:
        return full[1]
    cached = _HEADERS.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    data = read_json(path)
    if isinstance(data, dict):
        for field_name in ("results", "benchmarks"):
            if isinstance(data.get(field_name), (list, dict)):
                data = {**data, field_name: type(data[field_name])()}
    rs = _parse_any(path, data)
    if len(_HEADERS) >= _CACHE_SIZE:
        _HEADERS.pop(next(iter(_HEADERS)))
    _HEADERS[key] = (stamp, rs)
    return rs


def _parse(path: str | os.PathLike) -> ResultSet:
    rs = _parse_any(path)
    try:
        _validate(rs)
    except ValueError as exc:
        raise SpikeflopsError(f"{path}: impossible results file ({exc})") from None
    return rs


# units whose values cannot be negative (every unit this suite records), and those that cannot be 0 either
_ZERO_IMPOSSIBLE = {"operators", "FLOP", "parameters", "sequences"}


def declared_metric(name: str):
    from workloads.registry import metric

    return metric(name)


def _validate(rs: ResultSet) -> None:
    """What no benchmark can produce: a commit that is not a hash, a value that is not a finite number (NaN
    aside: "never reached"), a negative size or time, a zero operator count, NaN among raw samples, and
    one metric recorded twice (the last would win, so a file's order could hide a regression)."""
    if rs.commit is not None and not isinstance(rs.commit, str):
        raise ValueError(f"commit is {type(rs.commit).__name__} {rs.commit!r}, not a hash")
    seen = set()
    for m in rs.measurements:
        if m.key in seen:
            raise ValueError(f"{m.label} is recorded twice")
        seen.add(m.key)
        for v in (m.value, *m.samples):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"{m.label}: {v!r} is not a number")
            if math.isinf(v) or v < 0:
                raise ValueError(f"{m.label}: {v!r} is impossible for a {m.unit or 'measurement'}")
        if any(math.isnan(s) for s in m.samples) and not m.metric.endswith("trials_to_target"):
            raise ValueError(f"{m.label}: NaN among its raw samples")
        if m.value == 0 and m.unit in _ZERO_IMPOSSIBLE:
            raise ValueError(f"{m.label}: 0 {m.unit} is impossible")
        declared = declared_metric(m.metric)
        if declared is not None and (declared.timed or declared.positive) and 0 in (m.value, *m.samples):
            what = "a step or trial takes time" if declared.timed else "a step allocates and holds tensors"
            raise ValueError(f"{m.label}: 0 {m.unit or ''} is impossible ({what})")


def _parse_any(path: str | os.PathLike, data=None) -> ResultSet:
    data = read_json(path) if data is None else data
    if not isinstance(data, dict):
        raise SpikeflopsError(f"{path}: not an asv, pytest-benchmark or spikeflops run results file "
                              "(top level is not an object)")
    try:
        if "result_columns" in data or ("results" in data and "commit_hash" in data):
            return _load_asv(Path(path), data)
        if "benchmarks" in data and "machine_info" in data:
            return _load_pytest_benchmark(Path(path), data)
        if str(data.get("format", "")).startswith("spikeflops-run/"):
            if data["format"] != RUN_FORMAT:
                raise SpikeflopsError(f"{path}: results format {data['format']!r}; this version reads {RUN_FORMAT}")
            return _load_spikeflops_run(Path(path), data)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise SpikeflopsError(f"{path}: malformed results file ({type(exc).__name__}: {exc})") from None
    raise SpikeflopsError(f"{path}: not an asv, pytest-benchmark or spikeflops run results file")


# ---------------------------------------------------------------- asv

def _load_asv(path: Path, data: dict) -> ResultSet:
    """asv's results, read by asv itself (``asv.results.Results``); ``data`` (read once to tell the harness
    apart) gives the header, so a history's header-only read (:func:`peek`) parses no result."""
    if data.get("version") != 2:
        raise SpikeflopsError(f"{path}: asv results format version {data.get('version')!r}; this reads version 2")
    params = data.get("params", {})
    machine = {"harness": "asv", "machine": params.get("machine"), "cpu": params.get("cpu"),
               "num_cpu": _int(params.get("num_cpu")), "arch": params.get("arch"), "gpu": params.get("gpu")}
    commit_date = (data["date"] / 1000.0) if data.get("date") else None
    meta, index_source = _asv_benchmark_meta(path)
    out = ResultSet(str(path), "asv", machine, data.get("commit_hash"), commit_date, commit_date=commit_date,
                    index_source=index_source)
    if not data.get("results"):
        return out
    _refuse_a_grid_longer_than_its_values(path, data)
    from asv.results import Results
    from asv.util import UserError

    try:
        results = Results.load(str(path))
    except UserError as exc:
        raise SpikeflopsError(f"{path}: malformed asv results file ({str(exc).strip().splitlines()[-1]})") from None
    keys = sorted(results.get_all_result_keys())
    values = {key: _as_list(results.get_result_value(key, results.get_result_params(key))) for key in keys}
    # asv writes NaN both for a skipped case and for a benchmark that returned NaN (trials to target never
    # reached): a skipped case skips every metric of its class, so a NaN beside a number of the same class
    # and case is a result and must not vanish as "skipped"
    ran = {(_asv_class(key), case) for key in keys if values[key] is not None
           for case, value in zip(itertools.product(*(results.get_result_params(key) or [])), values[key])
           if isinstance(value, (int, float)) and not math.isnan(value)}
    for key in keys:
        metric = canonical_asv_name(key)
        grid = results.get_result_params(key) or []
        if values[key] is None:                 # the whole benchmark failed (setup error, import error...)
            out.failed.append(metric)
            continue
        info = meta.get(key) or {}
        unit = info.get("unit") or _table_unit(metric) or _default_unit(key)
        name_cases = _case_namer(metric, grid, info.get("param_names"))
        samples = _as_list(results.get_result_samples(key, grid)) or [None] * len(values[key])
        shown = [[unrepr(v) for v in axis] for axis in grid]      # each value unquoted once, not per case
        # lazily, and only as far as there are values: a grid's product can be astronomically long
        combos = zip(itertools.product(*grid), itertools.product(*shown))
        folded: dict[tuple, list[float]] = {}
        for (combo, labels), value, raw in zip(combos, values[key], samples):
            if isinstance(value, float) and math.isnan(value) and (_asv_class(key), combo) not in ran:
                continue                        # skipped; a NaN beside numbers of the same run is a result
            pairs = name_cases(labels)
            if value is None:                   # asv: None = failed, NaN = skipped (NotImplementedError)
                out.failed.append(f"{metric}({', '.join(v for _, v in pairs)})")
                continue
            if any(name == SEED_PARAM for name, _ in pairs):
                folded.setdefault(tuple(p for p in pairs if p[0] != SEED_PARAM), []).append(_num(value, metric))
                continue
            raw_samples = tuple(_num(s, metric) for s in raw) if raw else ()
            out.measurements.append(Measurement(metric, pairs, unit, _num(value, metric), raw_samples))
        for pairs, seed_values in folded.items():
            out.measurements.append(Measurement(metric, pairs, unit, _median(seed_values), tuple(seed_values)))
    return out


def _refuse_a_grid_longer_than_its_values(path: Path, data: dict) -> None:
    """asv writes a value for every case of a benchmark's grid; a file whose grid has more cases than values
    is cut or forged, and asv's reader would build its whole grid (a 58 kB file: 6.5e12 cases, gigabytes)."""
    columns = data.get("result_columns") or []
    if "result" not in columns or "params" not in columns:
        return                                  # asv's reader says what is missing
    at_result, at_params = columns.index("result"), columns.index("params")
    for name, row in data["results"].items():
        values, grid = (row[at_result], row[at_params]) if len(row) > max(at_result, at_params) else (None, None)
        if isinstance(values, list) and isinstance(grid, list) and all(isinstance(a, list) for a in grid):
            cases = math.prod(len(axis) for axis in grid)
            if cases != len(values):
                raise SpikeflopsError(f"{path}: malformed asv results file ({name}: a grid of {cases:.3g} cases "
                                      f"for {len(values)} values)")


def _as_list(value):
    """asv gives an unparameterized benchmark's value (or samples) bare and a grid's as a list."""
    return value if value is None or isinstance(value, list) else [value]


def _asv_class(name: str) -> str:
    return name.rsplit(".", 1)[0]


def canonical_asv_name(name: str) -> str:
    """``bench_gpt.GPTThroughput.track_mfu`` -> ``GPTThroughput.mfu``; time_* and peakmem_* keep their name."""
    parts = name.split(".")
    cls_method = parts[-2:] if len(parts) >= 2 else parts
    method = cls_method[-1]
    if method.startswith("track_"):
        method = method[len("track_"):]
    return ".".join(cls_method[:-1] + [method])


def _asv_benchmark_meta(path: Path) -> tuple[dict, str]:
    """Units and parameter names from the benchmarks.json asv keeps beside the machine folders,
    and where they came from. A results file copied out of its folder has no index beside it:
    then the case table of this checkout names its parameters and units (:func:`_case_namer`)."""
    path = path.resolve()                     # "run.json" typed in its folder: its parents are the real ones
    for candidate in (path.parent.parent / "benchmarks.json", path.parent / "benchmarks.json"):
        if candidate.is_file():
            return _read_benchmark_index(str(candidate.resolve()), candidate.stat().st_mtime_ns), str(candidate)
    return {}, "case table (no benchmarks.json beside the file)"


def _case_namer(metric: str, grid: list, index_names: list | None):
    """How a case of ``metric``'s grid becomes named parameters, in either of asv's layouts of this project:
    one ``case`` axis (a row's id, expanded by the case table into the family's parameters), or one axis per
    parameter (files written before the case axis: named by the index beside them, or by the table)."""
    family = metric.partition(".")[0]
    if len(grid) == 1:
        fallback = (index_names or [ASV_CASE_PARAM])[0]
        return lambda labels: _expand_case(family, labels[0], fallback)
    names = index_names if index_names and len(index_names) == len(grid) else _table_param_names(family, len(grid))
    return lambda labels: tuple(zip(names, labels))


def _expand_case(family: str, case: str, fallback: str) -> tuple[tuple[str, str], ...]:
    """A case id as the family's named parameters; one of another table version keeps its id."""
    row = row_for_case(family, case) if family in FAMILIES else None
    if row is None:
        return ((fallback, case),)
    return tuple(zip(row.param_names, map(str, row.param_values())))


@functools.lru_cache(maxsize=256)          # asked once per benchmark of every file; the table does not change
def _table_param_names(family: str, n_params: int) -> list[str]:
    """A family's parameter names from the case table when they are as many as the grid's axes (else the table
    changed: no guess, numbered)."""
    fam = FAMILIES.get(family)
    if fam is not None and len(fam.params) == n_params:
        return list(fam.params)
    return [f"param{i + 1}" for i in range(n_params)]


@functools.lru_cache(maxsize=1024)
def _table_unit(metric: str) -> str | None:
    fam = FAMILIES.get(metric.partition(".")[0])
    short = metric.partition(".")[2]
    return next((m.unit for m in fam.metrics if m.name == short), None) if fam is not None else None


@functools.lru_cache(maxsize=16)
def _read_benchmark_index(path: str, mtime_ns: int) -> dict:
    """One read per index (a report walks many results files beside the same one); mtime keys a rewrite."""
    data = read_json(path)
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def _default_unit(name: str) -> str:
    short = name.rsplit(".", 1)[-1]
    return "seconds" if short.startswith("time_") else "bytes" if short.startswith(("peakmem_", "mem_")) else ""


def unrepr(text) -> str:
    """asv stores parameter values as their repr ("'gpt-nano'"); show the value. A plain quoted string is
    unquoted directly and every text is parsed once (a 300-commit report spent 89 % of its time here)."""
    return _unrepr_text(text) if isinstance(text, str) else str(text)


@functools.lru_cache(maxsize=4096)
def _unrepr_text(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"" \
            and "\\" not in text and text[0] not in text[1:-1]:
        return text[1:-1]
    try:
        return str(ast.literal_eval(text))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return str(text)


# ---------------------------------------------------------------- pytest-benchmark

def _load_pytest_benchmark(path: Path, data: dict) -> ResultSet:
    info = data["machine_info"]
    cpu = info.get("cpu")                   # spikeflops' conftest writes the model name; plain pytest-benchmark a dict
    cpu_name = cpu.get("brand_raw") if isinstance(cpu, dict) else cpu
    num_cpu = info.get("cpu_count") or (cpu.get("count") if isinstance(cpu, dict) else None)
    machine = {"harness": "pytest-benchmark", "machine": info.get("spikeflops_machine") or info.get("node"),
               "cpu": cpu_name, "num_cpu": _int(num_cpu), "arch": info.get("machine"), "gpu": info.get("gpu"),
               "counting_machine": info.get("counting_machine")}
    commit_info = data.get("commit_info") or {}
    out = ResultSet(str(path), "pytest-benchmark", machine, commit_info.get("id"), _iso_time(data.get("datetime")),
                    commit_date=_iso_time(commit_info.get("time")), dirty=bool(commit_info.get("dirty")))
    entries = []
    for bench in data["benchmarks"]:
        extra = bench.get("extra_info") or {}
        if not extra.get("family"):
            continue                            # not a spikeflops case (a helper test): nothing to gate
        entry = ResultEntry.from_dict(extra)
        stats = bench.get("stats") or {}
        timed = [m for m in entry.units if m.startswith("time_")]
        if timed and stats.get("median") is not None:   # the harness's own timer: the family's timed metric
            entry.add(timed[0], float(stats["median"]), stats.get("data") or ())
        entries.append(entry)
    _add_entries(out, entries)
    return out


def _load_spikeflops_run(path: Path, data: dict) -> ResultSet:
    facts = data.get("machine") or {}
    machine = {"harness": "spikeflops-run", "machine": data.get("machine_name"), "cpu": facts.get("cpu"),
               "num_cpu": _int(facts.get("cpu_count")), "arch": facts.get("arch"), "gpu": facts.get("gpu"),
               "counting_machine": facts.get("counting_machine")}
    load = data.get("load") if isinstance(data.get("load"), dict) else {}
    share = load.get("cpu_share")
    out = ResultSet(str(path), "spikeflops-run", machine, data.get("commit"), _iso_time(data.get("date")),
                    dirty=bool(data.get("dirty")),
                    cpu_share=float(share) if isinstance(share, (int, float)) and not isinstance(share, bool)
                    and math.isfinite(share) else None)
    entries = [ResultEntry.from_dict(e) for e in data["results"]]
    for entry in entries:
        if entry.error is not None:
            out.failed.append(f"{entry.family}({', '.join(entry.params.values())}): {entry.error}")
    _add_entries(out, [e for e in entries if e.error is None])
    return out


def _add_entries(out: ResultSet, entries: list[ResultEntry]) -> None:
    """Typed entries -> measurements; seeds folded into samples."""
    folded: dict[tuple, list[float]] = {}
    units: dict[str, str] = {}
    for entry in entries:
        params = [(k, v) for k, v in entry.params.items()]
        seedless = tuple(p for p in params if p[0] != SEED_PARAM)
        for metric, value in entry.metrics.items():
            name = f"{entry.family}.{metric}"
            value = math.nan if value is None else value
            units[name] = entry.units.get(metric, "")
            if len(seedless) != len(params):
                folded.setdefault((name, seedless), []).append(value)
                continue
            raw = tuple(entry.samples.get(metric) or ())
            parts = tuple((entry.parts.get(metric) or {}).items())
            out.measurements.append(Measurement(name, seedless, units[name], value, raw, parts))
    for (name, pairs), seed_values in folded.items():
        out.measurements.append(Measurement(name, pairs, units[name], _median(seed_values), tuple(seed_values)))


def _median(values: list[float]) -> float:
    """Median with NaN ("never reached") ranked worst of all: above every number."""
    ordered = sorted(values, key=lambda v: (math.isnan(v), v))
    mid = ordered[len(ordered) // 2]
    if len(ordered) % 2 or math.isnan(mid) or math.isnan(ordered[len(ordered) // 2 - 1]):
        return mid
    return statistics.median(ordered)


def _num(value, where: str) -> float:
    """A number of a results file as a float; ``true`` or a string is an error, not 1.0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}: {value!r} is not a number")
    return float(value)


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
