"""`spikeflops compare BASE CAND`: two commits measured alternately in one session, judged on paired rounds.

A shared runner drifts between runs (a co-tenant arrives, the CPU clocks down): a baseline
from another day or machine then differs from the candidate by more than any code change.
Here each round runs both commits back to back (ABBA order, so a drift within a round hits
both sides alike), each from its own git worktree through `spikeflops run`, and a timing is
judged on the rounds' log ratios (candidate/baseline): their mean with a Student-t interval.
Three outcomes, each stated: the interval lies beyond 1 and the estimate beyond the threshold
(regressed, or improved), the interval lies inside the threshold band (unchanged), or neither
(undecided: more rounds are needed, and the verdict says how wide the interval still is).
With ``max_rounds`` above ``rounds`` the comparison adds rounds while anything is undecided,
and spends its alpha over those looks. A round in which either side's process got less than
the contention floor of CPU is dropped and named. Deterministic metrics are judged as the gate
judges them.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import subprocess
import sys
from pathlib import Path

from workloads.errors import SpikeflopsError
from workloads.isolate import run_group

from ..gitrepo import resolve, worktree
from .judge import CONTENDED, Verdict, judged_by_companions, unjudged
from ..results.records import ResultSet, load
from .rules import GateConfig, Rule
from .stats import benjamini_hochberg, worse_ratio

PAIRED_NOISE = ("timing", "median", "oncpu", "blocked")
# what a busy co-tenant spoils for a pair of one round: wall-clock figures. On-CPU time (its run-queue wait
# taken out) and blocked time are kept under contention: base and head of a round share the co-tenant's cache
# pressure, and the paired interval widens (undecided, never a false alarm) where it varies between rounds
CONTENDABLE = ("timing", "median")
MIN_ROUNDS = 3                 # fewer paired rounds give a t interval too wide to decide anything


def judge_pairs(label: str, metric: str, unit: str, params, pairs: list[tuple[float, float]], rule: Rule,
                alpha: float, looks: int = 1, shares: list[tuple[float | None, float | None]] | None = None,
                floor: float = 0.0) -> Verdict:
    """One verdict from (baseline, candidate) values of the same rounds.

    ``looks``: how many times this comparison is (or may be) decided as rounds are added; each look
    gets alpha / looks, so adding rounds until something is decided does not inflate false alarms.
    ``shares``: each round's CPU share of both sides; a round below ``floor`` on either side is dropped.
    """
    shares = shares or [(None, None)] * len(pairs)
    kept, contended = [], 0
    for (b, c), (sb, sc) in zip(pairs, shares):
        if not (math.isfinite(b) and math.isfinite(c)):
            continue
        if rule.noise in CONTENDABLE and any(s is not None and s < floor for s in (sb, sc)):
            contended += 1
            continue
        kept.append((b, c, sb, sc))
    base = statistics.median(b for b, *_ in kept) if kept else None
    cand = statistics.median(c for _, c, *_ in kept) if kept else None
    state = _machine_state(kept, contended, floor)

    def verdict(status, change, detail, p_value=None):
        return Verdict(label, metric, rule.name, rule.direction, unit, status, base, cand, change, rule.threshold,
                       detail, params, p_value)

    if not kept:
        if contended:
            return verdict("not judged", None, f"machine contended: not judged ({state})")
        return verdict("missing", None, "no round measured it on both sides")
    if rule.noise not in PAIRED_NOISE:                # deterministic: any change beyond the threshold
        change = cand / base - 1 if base else (0.0 if cand == base else math.inf)
        worse = change > rule.threshold if rule.direction == "lower" else (
            change < -rule.threshold if rule.direction == "higher" else abs(change) > rule.threshold)
        better = change < -rule.threshold if rule.direction == "lower" else (
            change > rule.threshold if rule.direction == "higher" else False)
        return verdict("regressed" if worse else "improved" if better else "unchanged", change,
                       f"medians over {len(kept)} rounds")
    if rule.floor > 0:          # below the floor a figure is nothing to judge (a blocked time of 0 or 0.2 ms)
        if base < rule.floor and cand < rule.floor:
            return verdict("unchanged", cand / base - 1 if base else 0.0,
                           f"both below the floor {rule.floor:g} over {len(kept)} rounds; {state}")
        kept = [(max(b, rule.floor), max(c, rule.floor), sb, sc) for b, c, sb, sc in kept]
    usable = [(b, c) for b, c, *_ in kept if b > 0 and c > 0]
    if len(usable) < MIN_ROUNDS:
        why = f"machine contended: not judged ({state})" if contended else (
            f"{len(usable)} paired rounds; at least {MIN_ROUNDS} are needed for an interval")
        return verdict("not judged", None, why)
    level = 1 - 2 * alpha / looks                      # two-sided interval, each tail alpha / looks
    ratio, low, high, p_worse = worse_ratio(usable, level, rule.direction)
    change = ratio - 1 if rule.direction != "higher" else 1 / ratio - 1     # candidate vs baseline, as everywhere
    n = len(usable)
    worse_rounds = sum(c / b > 1 for b, c in usable) if rule.direction != "higher" else sum(c / b < 1 for b, c in usable)
    ci = f"{100 * (low - 1):+.1f}% .. {100 * (high - 1):+.1f}% ({100 * level:.0f}% interval, worse direction)"
    detail = f"paired over {n} rounds ({worse_rounds} worse): {ci}; {state}"
    thr = rule.threshold
    if low > 1 and ratio - 1 > thr:
        return verdict("regressed", change, f"{detail}; p={p_worse:.3g}", p_worse)
    if high < 1 and 1 / ratio - 1 > thr:
        return verdict("improved", change, detail, p_worse)
    if high - 1 <= thr and 1 / low - 1 <= thr:
        return verdict("unchanged", change, detail, p_worse)
    return verdict("undecided", change, f"{detail}: the interval reaches past the {100 * thr:g}% threshold, "
                                        "more rounds needed (--max-rounds)", p_worse)


def _machine_state(kept, contended: int, floor: float) -> str:
    shares_b = [sb for _, _, sb, _ in kept if sb is not None]
    shares_c = [sc for _, _, _, sc in kept if sc is not None]
    if not shares_b and not shares_c and not contended:
        return "CPU share not recorded"
    parts = []
    if shares_b and shares_c:
        parts.append(f"CPU share {min(shares_b):.2f}-{max(shares_b):.2f} baseline, "
                     f"{min(shares_c):.2f}-{max(shares_c):.2f} candidate")
    if contended:
        parts.append(f"{contended} round{'s' if contended != 1 else ''} dropped below the floor {floor:g}")
    return "; ".join(parts)


class Side:
    """One commit checked out in its own worktree, run through its own `spikeflops run`."""

    def __init__(self, commit: str, tree: Path):
        self.commit, self.tree = commit, tree

    def run(self, out: Path, families: list[str] | None, profile: str | None) -> ResultSet:
        import os

        cmd = [sys.executable, "-m", "spikeflops.cli", "run", "--out", str(out)]
        cmd += ["--families", *families] if families else []
        cmd += ["--profile", profile] if profile else []
        # `python -m` from the worktree imports that commit's spikeflops and workloads, not the installed ones
        env = {**os.environ, "PYTHONPATH": str(self.tree)}
        proc = run_group(cmd, cwd=self.tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if not out.exists():
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise SpikeflopsError(f"{self.commit[:10]}: spikeflops run failed: {last}")
        return load(out)


def compare_interleaved(repo: Path, base: str, cand: str, rounds: int, config: GateConfig, work: Path,
                        families: list[str] | None = None, profile: str | None = None, say=print,
                        max_rounds: int | None = None, last_runs: dict | None = None) -> list[Verdict]:
    """Run ``rounds`` ABBA rounds, then more (up to ``max_rounds``) while a timing is undecided. ``last_runs``,
    if given, receives the last round's results, baseline at 0 and candidate at 1: where it grew."""
    max_rounds = max(rounds, max_rounds or rounds)
    if rounds < 1:
        raise SpikeflopsError("--rounds must be at least 1")
    work.mkdir(parents=True, exist_ok=True)
    commits = resolve(repo, base), resolve(repo, cand)
    looks = max_rounds - rounds + 1
    values: dict = {}
    shares: dict[int, list] = {}
    verdicts: list[Verdict] = []
    with contextlib.ExitStack() as trees:
        sides = [Side(c, trees.enter_context(worktree(repo, c, work / name)))
                 for c, name in zip(commits, ("base", "cand"))]
        for i in range(max_rounds):
            order = (0, 1) if i % 2 == 0 else (1, 0)         # ABBA: a drift within a round hits both sides
            for which in order:
                side = sides[which]
                say(f"round {i + 1}/{rounds if i < rounds else max_rounds}: "
                    f"{'baseline' if which == 0 else 'candidate'} {side.commit[:10]} ...")
                rs = side.run(work / f"round{i}-{'base' if which == 0 else 'cand'}.json", families, profile)
                shares.setdefault(i, [None, None])[which] = rs.cpu_share
                if last_runs is not None:
                    last_runs[which] = rs
                for m in rs.measurements:
                    entry = values.setdefault(m.key, {"m": m, "rounds": {}})
                    entry["rounds"].setdefault(i, [math.nan, math.nan])[which] = m.value
            if i + 1 < rounds:
                continue
            verdicts = _judge_all(values, shares, config, looks)
            left = max_rounds - (i + 1)
            undecided, futile = _worth_more_rounds(verdicts, shares, config.contended_floor, left)
            if futile and not undecided:
                say(f"stopping after {i + 1} rounds: {len(futile)} contended timing{'s' if len(futile) != 1 else ''} "
                    f"(e.g. {futile[0].label}) cannot reach {MIN_ROUNDS} uncontended rounds in the {left} left")
            if not undecided or i + 1 == max_rounds:
                break
            say(f"{len(undecided)} timing{'s' if len(undecided) != 1 else ''} undecided or contended after "
                f"{i + 1} rounds (e.g. {undecided[0].label}): one more round")
    if not verdicts:
        raise SpikeflopsError("nothing was compared: the runs share no tracked metric")
    return verdicts


def _worth_more_rounds(verdicts: list[Verdict], shares: dict, floor: float,
                       left: int) -> tuple[list[Verdict], list[Verdict]]:
    """(the verdicts another round may decide, the contended ones no round left can decide). A contended
    wall timing whose on-CPU and blocked time were judged needs no more rounds; one that cannot reach
    MIN_ROUNDS uncontended rounds in the rounds left is futile: a busy runner costs minutes, not half an hour."""
    quiet = sum(all(s is None or s >= floor for s in pair) for pair in shares.values())
    more, futile = [], []
    for v in unjudged(verdicts):
        if v.status == "undecided":
            more.append(v)
        elif v.detail.startswith(CONTENDED):
            (futile if quiet + left < MIN_ROUNDS else more).append(v)
    return more, futile


def _judge_all(values: dict, shares: dict, config: GateConfig, looks: int) -> list[Verdict]:
    verdicts = []
    for _, entry in sorted(values.items()):
        m = entry["m"]
        rule = config.rule_for(m.metric)
        if rule is None or rule.direction == "none":
            continue
        rounds = sorted(entry["rounds"])
        pairs = [tuple(entry["rounds"][r]) for r in rounds]
        round_shares = [tuple(shares.get(r, (None, None))) for r in rounds]
        verdicts.append(judge_pairs(m.label, m.metric, m.unit, m.params, pairs, rule, config.alpha, looks,
                                    round_shares, config.contended_floor))
    return judged_by_companions(_control_false_discoveries(verdicts, config.alpha / looks))


def _control_false_discoveries(verdicts: list[Verdict], alpha: float) -> list[Verdict]:
    """Benjamini-Hochberg over every paired timing's p-value: dozens of timings judged at once must not
    multiply false alarms. A regression whose q misses alpha is undecided, and says so."""
    from dataclasses import replace

    tested = [(i, v.p_value) for i, v in enumerate(verdicts) if v.p_value is not None]
    if len(tested) < 2:
        return verdicts
    qs = benjamini_hochberg([p for _, p in tested])
    out = list(verdicts)
    for (i, _), q in zip(tested, qs):
        v = out[i]
        if v.status != "regressed":
            continue
        out[i] = replace(v, detail=f"{v.detail}, q={q:.3g} over {len(tested)}") if q < alpha else replace(
            v, status="undecided", detail=f"{v.detail}, but q={q:.3g} over {len(tested)} timings: undecided")
    return out
