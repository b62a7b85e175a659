"""`spikeflops run`: the profile's cases of the table on this machine, with summary tables and a results file.

The same rows and the same measurement functions as both harnesses; the results file
(``spikeflops-run`` format: one entry per row with the family's canonical metrics) is
read by `spikeflops gate` and `spikeflops report` like asv's and pytest-benchmark's.
"""

from __future__ import annotations

import os
import time

from workloads.registry import FAMILIES
from workloads.errors import SpikeflopsError
from .progress import say


CONTENDED_SHARE = 0.5          # the gate's default contended_floor: below it a run's timings say little


def time_row(row, profile):
    """Each timed call of a timed family's row (its rounds, and then on until the profile's time budget of
    the step's own CPU time is spent on a CPU, of wall time on a GPU: a median of a second of 30 ms steps, not
    of five, and as many steps on a busy machine as on a quiet one), timed three ways (workloads.load.StepTimes)."""
    from workloads.load import time_calls
    from workloads.measure import timed, timed_rounds

    spent = (lambda t: sum(t.on_cpu)) if row.device == "cpu" else (lambda t: sum(t.wall))   # a GPU step: wall
    with timed(row) as fn:
        rounds = timed_rounds(row, profile)
        times = time_calls(fn, lambda t: len(t.wall) < rounds or (spent(t) < profile.timing_budget_s
                                                                  and len(t.wall) < 50 * rounds))
        # not a compiled step: its traced call runs the compiler's own Python, not the user's
        # (docs/measurements.md: Python work of a traced step)
        times.python_lines = None if getattr(row.case, "compile", False) else python_lines_of(fn)
        return times


def python_lines_of(fn):
    """One more call of the timed step, traced (workloads.pywork): (its Python line events, per function),
    or None where a tracer is already set (a debugger, coverage), which the results then lack."""
    from workloads.pywork import count_lines, traceable

    return None if traceable() is not None else count_lines(fn, 1)


def measure_rows(rows, profile, progress=say, on_entry=None) -> list[dict]:
    """Each row through the contract (``workloads.measure``); a row that fails is recorded as failed.
    ``on_entry`` sees each entry as soon as it is measured (the GPU kit writes it out at once)."""
    from workloads.isolate import in_child
    from workloads.measure import track
    from workloads.metrics import Value
    from workloads.timing import TimingStats

    from .results import ResultEntry

    entries = []
    for i, row in enumerate(rows, 1):
        family = FAMILIES[row.family]
        progress(f"  [{i}/{len(rows)}] {row.family} {row_label(row)} ...")
        entry = ResultEntry.for_row(row)
        t0 = time.perf_counter()
        try:
            if family.timed_metric:
                # a GeNN row in a process of its own: GeNN ends the process on a CUDA error
                times = (in_child(time_row, row, profile) if getattr(row.case, "backend", None) == "genn"
                         else time_row(row, profile))
                entry.add(family.timed_metric.name, TimingStats.from_samples(times.wall).median, times.wall)
                on_cpu, blocked, python_lines = family.companions
                if times.python_lines:
                    total, functions = times.python_lines
                    entry.add_values({python_lines.name: Value(total, parts=tuple(functions.items()))})
                    entry.units[python_lines.name] = python_lines.unit
                if row.device == "cpu":         # a GPU step's host times say little of the step
                    entry.add(on_cpu.name, TimingStats.from_samples(times.on_cpu).median, times.on_cpu)
                    entry.units[on_cpu.name] = on_cpu.unit
                    if times.blocked:
                        entry.add(blocked.name, TimingStats.from_samples(times.blocked).median, times.blocked)
                        entry.units[blocked.name] = blocked.unit
            else:
                entry.add_values(track(row, profile))
        except SpikeflopsError as exc:
            entry.error = str(exc)
            progress(f"    failed: {exc}")
        except Exception as exc:  # noqa: BLE001 - recorded, printed, and the run exits 1: never swallowed
            # A crash in one case (a kernel this GPU lacks, a capture torch refuses) must not cost the
            # other cases of a long GPU run their results; the traceback goes to stderr for the report.
            import traceback

            entry.error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            progress(f"    crashed: {entry.error}\n{traceback.format_exc()}")
        entry.wall_s = time.perf_counter() - t0
        entries.append(entry.to_dict())
        if on_entry is not None:
            on_entry(entries[-1])
    return entries


def runs_alongside(row) -> bool:
    """Whether ``row`` may be measured beside another: a CPU row whose every number is exact or seeded (FLOPs,
    operator counts, max batch under an address-space cap, a seeded training run's error), so that sharing
    the cores can change how long it takes and nothing it reports. Timings always run alone."""
    family = FAMILIES[row.family]
    return row.device == "cpu" and all(m.noise in ("exact", "seeds") for m in family.metrics)


def _measure_one(row, profile) -> dict:
    """One row in a worker process (module-level, so the worker can import it)."""
    return measure_rows([row], profile, progress=lambda msg: None)[0]


def start_order(rows) -> list[int]:
    """Indexes of ``rows``, longest first by their family's ``relative_cost`` (table order among equals): a pool
    hands rows out in this order, so the last to start is a short one and the workers finish together
    instead of one core idling while the other trains a seed (docs/measurements.md has what it saved)."""
    return sorted(range(len(rows)), key=lambda i: -FAMILIES[rows[i].family].relative_cost)


def measure_alongside(rows, profile, progress=say) -> list[dict]:
    """``rows`` (each one that :func:`runs_alongside`) over a pool of worker processes, one per core (at most
    four): the untimed half of a CPU run in half the time. Entries come back in the order of ``rows``."""
    import concurrent.futures
    import multiprocessing

    workers = max(1, min(len(rows), os.cpu_count() or 1, 4))
    if workers < 2:                         # one row or one core: a worker would only add a torch import
        return measure_rows(rows, profile, progress)
    progress(f"  {len(rows)} untimed cases on {workers} worker process{'es' if workers != 1 else ''} ...")
    entries: list[dict | None] = [None] * len(rows)
    from workloads.isolate import die_with_parent

    # a worker dies with the run, even with a run killed by SIGKILL, which can clean nothing up itself
    pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                                  initializer=die_with_parent, initargs=(os.getpid(),))
    try:
        futures = {pool.submit(_measure_one, rows[i], profile): i for i in start_order(rows)}
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            i = futures[future]
            row = rows[i]
            try:
                entries[i] = future.result()
            except Exception as exc:  # noqa: BLE001 - a worker that died: that row is recorded as failed
                from .results import ResultEntry

                entry = ResultEntry.for_row(row)
                entry.error = f"its worker process ended: {type(exc).__name__}: {exc}".strip()
                entries[i] = entry.to_dict()
            e = entries[i]
            progress(f"  [{done}/{len(rows)}] {row.family} {row_label(row)} "
                     + (f"failed: {e['error']}" if "error" in e else f"{e.get('wall_s', 0):.1f} s"))
    finally:                                # Ctrl-C, SIGTERM: no worker outlives the run
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
    return entries


def reference_tables(entries: list[dict]) -> list[tuple[str, list[str], list[list[str]]]]:
    """The reference documents' tables, corrected, from this run's entries: GPT per size and variant
    (the book's FLOPs notebook), SuperSpike per backend (GeNN's demo)."""
    def metric(family, name, **params):
        for e in entries:
            if e["family"] == family and "error" not in e and all(e["params"].get(k) == str(v)
                                                                    for k, v in params.items()):
                value = e["metrics"].get(name)
                if value is not None:
                    return value
        return None

    gpt_rows = []
    for e in entries:
        if e["family"] != "GPTThroughput" or "error" in e:
            continue
        p = e["params"]
        size, variant, batch = p["size"], p["variant"], p["batch"]
        mfu = e["metrics"].get("mfu")
        gpt_rows.append([size, variant, p["dtype"], p["device"], batch,
                         _num(metric("GPTFlops", "forward_exact", size=size, batch=batch), "FLOP"),
                         _num(metric("GPTFlops", "train_exact", size=size, batch=batch), "FLOP"),
                         _num(metric("GPTMaxBatch", "max_batch", size=size, variant="fast", dtype=p["dtype"],
                                     device=p["device"], mode="forward"), ""),
                         _num(metric("GPTMaxBatch", "max_batch", size=size, variant="fast", dtype=p["dtype"],
                                     device=p["device"], mode="train"), ""),
                         _num(e["metrics"].get("tokens_per_s"), "tokens/s"), _num(mfu, "percent")])
    spike_rows = [[e["params"]["backend"], e["params"]["device"], e["params"]["size"], _execution(e["params"]),
                   _num(e["metrics"].get("time_trial"), "seconds")]
                  for e in entries if e["family"] == "SuperSpikeTrial" and "error" not in e]
    tables = []
    if gpt_rows:
        tables.append(("GPT-2 (the book's FLOPs notebook, corrected: exact FLOPs, max batch of the fast variant, "
                       "MFU vs the datasheet peak, else the measured one)",
                       ["size", "variant", "dtype", "device", "batch", "fwd FLOPs", "train FLOPs",
                        "max batch fwd", "max batch train", "tokens/s", "MFU"], gpt_rows))
    if spike_rows:
        tables.append(("SuperSpike: seconds per trial", ["backend", "device", "size", "execution", "s/trial"],
                       spike_rows))
    target_rows = _target_rows(entries)
    if target_rows:
        tables.append(("Targets (set for an H100; a benchmark's figure, not a test)",
                       ["target", "reached", "verdict"], target_rows))
    return tables


def _execution(params: dict) -> str:
    """How the torch SuperSpike step ran: eager, compiled, and/or as CUDA graph replays (GeNN: its own code)."""
    if params.get("backend") == "genn":
        return "generated code"
    parts = [name for name, key in (("compiled", "compile"), ("cuda graph", "cuda_graph")) if params.get(key) == "True"]
    return " + ".join(parts) or "eager"


def _target_rows(entries) -> list[list[str]]:
    """The GPU fast paths' targets, where this run measured them."""
    rows = []
    for size, goal in (("gpt-small", 55.0), ("gpt-xl", 60.0)):
        mfus = [e["metrics"].get("mfu") for e in entries
                if e["family"] == "GPTThroughput" and "error" not in e and e["params"]["size"] == size
                and e["params"]["device"].startswith("cuda") and e["params"]["variant"] == "fast"]
        mfus = [m for m in mfus if m is not None]
        if mfus:
            best = max(mfus)
            rows.append([f"{size} training MFU (fast) >= {goal:g} % of the dense bf16 peak", format_value(best, "percent"),
                         "met" if best >= goal else "missed"])

    def trial_seconds(backend, **execution):
        return [e["metrics"]["time_trial"] for e in entries
                if e["family"] == "SuperSpikeTrial" and "error" not in e and e["metrics"].get("time_trial")
                and e["params"]["backend"] == backend and e["params"]["size"] == "full"
                and e["params"]["device"].startswith("cuda")
                and all(e["params"].get(k) == str(v) for k, v in execution.items())]
    graphed, genn = trial_seconds("torch", cuda_graph=True), trial_seconds("genn")
    if graphed:
        best = min(graphed)
        rows.append(["SuperSpike torch, CUDA graph: full trial <= 0.1 s", format_value(best, "seconds"),
                     "met" if best <= 0.1 else "missed"])
        if genn:
            rows.append(["SuperSpike torch, CUDA graph: no slower than GeNN CUDA",
                         f"{format_value(best, 'seconds')} vs {format_value(min(genn), 'seconds')}",
                         "met" if best <= min(genn) else "missed"])
    return rows


def _num(value, unit) -> str:
    return "-" if value is None else format_value(value, unit)


def format_load(value) -> str:
    return "?" if value is None else f"{value:.2f}"


def format_value(value, unit) -> str:
    if value is None:
        return "not reached" if unit == "trials" else "-"
    if unit == "percent":
        return f"{value:.1f} %"
    if unit == "seconds":
        return f"{value * 1e3:.2f} ms" if value < 1 else f"{value:.3f} s"
    if unit in ("FLOP", "bytes"):
        return f"{value:.3e}"
    if unit == "tokens/s":
        return f"{value:,.0f}"
    return f"{value:.4g}"


def row_label(row) -> str:
    return case_label(dict(zip(row.param_names, map(str, row.param_values()))))


def case_label(params: dict) -> str:
    """A case's varying values, a flag named (``compile=False``): a bare ``False False`` says nothing."""
    return " ".join(f"{k}={v}" if str(v) in ("True", "False") else str(v) for k, v in params.items())
