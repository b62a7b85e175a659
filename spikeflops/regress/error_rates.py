"""`spikeflops error-rates`: the timing verdict's own error rates on this machine, measured.

A real step (a GPT case, on the pinned CPU thread count) is compared with itself (A/A) and with
itself plus an injected cost (a busy-wait of a fixed share of the step's median time, 2-20 %),
each comparison in ABBA rounds judged by exactly the statistic `spikeflops compare` uses
(:func:`interleave.judge_pairs`, the shipped rule and alpha). The rule and its settings are fixed
before any of these runs (nothing is tuned on them: the rates are out of sample). Per injected
size: how often the verdict was "regressed", "undecided", "unchanged" and "not judged"; the
false-alarm rate (A/A regressed) and each detection rate with a Wilson 95 % interval; and the
smallest size detected in at least 95 % of comparisons. Rounds run in this process, back to back:
`compare`'s fresh process per round adds start-up noise this does not see.
"""

from __future__ import annotations

import math
import time

from workloads.errors import SpikeflopsError


FORMAT = "spikeflops-error-rates/1"
DEFAULT_SIZES = (0.0, 0.02, 0.05, 0.10, 0.20)


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion: honest at 0 of 40, where the normal interval says [0, 0]."""
    if n == 0:
        return 0.0, 1.0
    from scipy.stats import binomtest, norm

    interval = binomtest(successes, n).proportion_ci(confidence_level=1 - 2 * norm.sf(z), method="wilson")
    return float(interval.low), float(interval.high)


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


# what a table can measure: each step's wall time, its thread's on-CPU time, or its blocked time (wall minus
# on-CPU minus run-queue wait); the metric whose rule judges it; and how a slowdown is injected (a busy-wait
# is work, which wall and on-CPU time see; a sleep is a wait, which only wall and blocked time see)
MEASURES = {"wall": ("GPTStep.time_step", "spin"), "oncpu": ("GPTStep.time_step_on_cpu", "spin"),
            "blocked": ("GPTStep.time_step_blocked", "sleep")}


def _side(fn, extra: float, budget: float, measure: str = "wall") -> float:
    """Median per call of ``fn`` (plus ``extra`` injected seconds: busy for wall and on-CPU time, asleep for
    blocked time) of ``measure``; calls until ``budget`` seconds of it are spent (wall time for blocked) and at
    least 3. The three clocks are those of `spikeflops run` (workloads.load.time_calls)."""
    import statistics

    from workloads.load import time_calls

    inject = (lambda: time.sleep(extra)) if MEASURES[measure][1] == "sleep" else (lambda: _spin(extra))

    def step():
        fn()
        if extra:
            inject()

    pick = {"wall": lambda t: t.wall, "oncpu": lambda t: t.on_cpu, "blocked": lambda t: t.blocked}[measure]
    spent = (lambda t: t.wall) if measure == "blocked" else pick
    times = time_calls(step, lambda t: len(t.wall) < 3 or sum(spent(t)) < budget)
    if not pick(times):
        raise SpikeflopsError(f"{measure} time cannot be measured here (no run-queue wait is reported)")
    return statistics.median(pick(times))


def measure_error_rates(fn, sizes, trials: int, rounds: int, budget: float, rule, alpha: float,
                        floor: float, progress=None, max_rounds: int | None = None, measure: str = "wall") -> dict:
    """The table for a prepared callable ``fn`` (see the module's docstring)."""
    max_rounds = max(rounds, max_rounds or rounds)
    looks = max_rounds - rounds + 1
    from workloads.load import CPU_THREADS, LoadProbe
    from .interleave import judge_pairs

    step = _side(fn, 0.0, budget)                       # the injected costs are shares of the wall median
    rows = []
    for size in sizes:
        counts = {"regressed": 0, "undecided": 0, "unchanged": 0, "improved": 0, "not judged": 0}
        shares = []
        used, changes = [], []
        for trial in range(trials):
            pairs, round_shares = [], []
            for r in range(max_rounds):
                got = {}
                for which in ((0, 1) if r % 2 == 0 else (1, 0)):            # ABBA, as compare
                    with LoadProbe(threads=CPU_THREADS) as probe:
                        got[which] = _side(fn, size * step if which == 1 else 0.0, budget, measure)
                    got[f"share{which}"] = probe.record.cpu_share
                pairs.append((got[0], got[1]))
                round_shares.append((got["share0"], got["share1"]))
                if r + 1 < rounds:
                    continue
                v = judge_pairs("error-rates", rule.name, "seconds", (), pairs, rule, alpha, looks=looks,
                                shares=round_shares, floor=floor)
                if v.status != "undecided":                  # as compare: add rounds only while undecided
                    break
            used.append(len(pairs))
            changes.append(v.change)
            shares += [s for pair in round_shares for s in pair]
            counts[v.status] = counts.get(v.status, 0) + 1
            if progress:
                progress(f"  +{100 * size:g}%: comparison {trial + 1}/{trials}: {v.status}")
        judged = trials - counts["not judged"]
        flagged = counts["regressed"]
        low, high = wilson(flagged, judged)
        rows.append({"injected": size, "comparisons": trials, **{k.replace(" ", "_"): n for k, n in counts.items()},
                     "flagged_rate": flagged / judged if judged else None, "flagged_rate_ci95": [low, high],
                     "cpu_share_median": sorted(shares)[len(shares) // 2] if shares else None,
                     "rounds_mean": sum(used) / len(used),
                     "changes": [None if c is None or not math.isfinite(c) else c for c in changes]})
    detected = [r["injected"] for r in rows if r["injected"] > 0 and r["flagged_rate"] is not None
                and r["flagged_rate"] >= 0.95]
    aa = [c for r in rows if r["injected"] == 0 for c in r["changes"] if c is not None]
    return {"format": FORMAT, "step_seconds": step, "rounds": rounds, "max_rounds": max_rounds, "budget_s": budget,
            "trials": trials, "measure": measure, "injected_as": MEASURES[measure][1],
            "aa_spread": max(map(abs, aa)) if aa else None,
            "rule": {"metric": MEASURES[measure][0], "threshold": rule.threshold, "alpha": alpha,
                     "contended_floor": floor},
            "rows": rows, "smallest_detected_at_95": min(detected) if detected else None}


COUNTED_FORMAT = "spikeflops-counted-error-rates/2"
# instructions a loop iteration of workloads.counting's injected work costs (big-int adds): sizes the loops
LOOP_INSTRUCTIONS = 386
# the counted steps a table can be measured on: the SuperSpike step of each backend (mean of 10 / 100 steps)
COUNTED_STEPS = {
    "torch": {"step": "workloads.superspike.counted:torch_step", "steps": 10,
              "case": {"backend": "torch", "device": "cpu", "size": "ci"}},
    "genn": {"step": "workloads.superspike.counted:genn_step", "steps": 100,
             "case": {"backend": "genn", "device": "cpu", "size": "ci"}},
}
COUNTED_STEP = COUNTED_STEPS["torch"]


def count_step(spec: dict, extra_loop: int = 0) -> float:
    """Instructions of one counted step (``spec``) in a fresh valgrind process, with ``extra_loop``
    iterations of injected Python work."""
    from workloads.counting import count

    (result,) = count([dict(spec, extra_loop=extra_loop)] if extra_loop else [spec])
    if "error" in result:
        raise SpikeflopsError(f"a counted process failed: {result['error']}")
    return result["instructions"]


def check_counted_table(done: dict, plan: dict) -> None:
    """A stopped table is continued only if it is this plan's and holds what the plan can hold: no more A/A
    processes or injected ones than planned, only the planned sizes, every count a positive finite number."""
    import math

    def fail(why: str):
        raise SpikeflopsError(f"the earlier table cannot be continued: {why}")

    if done.get("format") != COUNTED_FORMAT or done.get("plan") != plan:
        fail("it was made with another plan (--counted, --trials, --sizes, --counted-step or the threshold "
             "differ): start a new one")
    plain, injected = done.get("plain"), done.get("injected")
    if not isinstance(plain, list) or not isinstance(injected, list):
        fail("its 'plain' and 'injected' fields are missing or not lists")
    if len(plain) > plan["aa"] + 1:
        fail(f"{len(plain)} A/A processes for a plan of {plan['aa'] + 1}")
    values = list(plain)
    for row in injected:
        if not isinstance(row, dict) or row.get("size") not in plan["sizes"] \
                or not isinstance(row.get("instructions"), list):
            fail(f"an injected row outside the plan's sizes or without counts: {str(row)[:80]}")
        if len(row["instructions"]) > plan["trials"]:
            fail(f"{len(row['instructions'])} processes for size {row['size']}, the plan has {plan['trials']}")
        values += row["instructions"]
    if [row["size"] for row in injected] != plan["sizes"]:
        fail("its injected sizes are not the plan's, in the plan's order")
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, (int, float))
           or not math.isfinite(v) or v <= 0]
    if bad:
        fail(f"a count that is not a positive finite number: {bad[0]!r}")


def measure_counted_error_rates(aa: int, trials: int, sizes: tuple[float, ...], threshold: float,
                                progress=lambda text: None, save=lambda table: None, done: dict | None = None,
                                step: dict = COUNTED_STEP, measure=None) -> dict:
    """The counted verdict's error rates on the SuperSpike torch step: ``aa + 1`` processes of the plain step
    (``aa`` consecutive A/A pairs) and ``trials`` processes per injected size (a Python loop adding that share
    of the step's instructions), each judged against the first plain process at ``threshold``: what the
    gate does with two counted runs. Out of sample: the threshold is the shipped one, fixed beforehand.

    Hundreds of processes take hours: ``save`` gets the table (``"complete": False`` until the last process)
    after every process, and ``done``, such a partial table of the same plan, is continued, not redone."""
    measure = measure or (lambda extra_loop=0: count_step(step, extra_loop))
    plan = {"aa": aa, "trials": trials, "sizes": list(sizes), "threshold": threshold, "step": step}
    plain: list[float] = []
    injected = [{"size": size, "loop": None, "instructions": []} for size in sizes]
    if done is not None:
        check_counted_table(done, plan)
        plain = [float(v) for v in done["plain"]]
        injected = [dict(row, instructions=[float(v) for v in row["instructions"]]) for row in done["injected"]]

    def table(complete: bool) -> dict:
        changes = [b / a - 1 for a, b in zip(plain, plain[1:])]
        rows = [_counted_row(0.0, changes, threshold)] + [
            _counted_row(row["size"], [v / plain[0] - 1 for v in row["instructions"]], threshold)
            for row in injected if row["instructions"]]
        return {"format": COUNTED_FORMAT, "complete": complete, "plan": plan, "step": step,
                "threshold": threshold, "plain": plain, "injected": injected, "rows": rows,
                "aa_spread": max(abs(c) for c in changes) if changes else None}

    if plain:
        progress(f"continuing: {len(plain)} of {aa + 1} A/A processes and "
                 f"{sum(len(row['instructions']) for row in injected)} of {trials * len(sizes)} injected ones done")
    while len(plain) < aa + 1:
        plain.append(measure())
        progress(f"A/A process {len(plain)}/{aa + 1}: {plain[-1]:,.1f} instructions a step")
        save(table(False))
    for row in injected:
        row["loop"] = max(1, round(row["size"] * plain[0] / LOOP_INSTRUCTIONS))
        while len(row["instructions"]) < trials:
            row["instructions"].append(measure(row["loop"]))
            progress(f"+{100 * row['size']:g} % ({row['loop']} loop iterations) {len(row['instructions'])}/"
                     f"{trials}: {100 * (row['instructions'][-1] / plain[0] - 1):+.3f} %")
            save(table(False))
    result = table(True)
    save(result)
    return result


def _counted_row(size: float, changes: list[float], threshold: float) -> dict:
    flagged = sum(c > threshold for c in changes)
    low, high = wilson(flagged, len(changes))
    return {"injected": size, "comparisons": len(changes), "flagged": flagged,
            "flagged_rate": flagged / len(changes) if changes else None, "flagged_rate_ci95": [low, high],
            "changes": changes}
