"""Which part of a step grew: a regressed time metric next to the breakdown the same run measured.

A GPT training step's time (and the tokens/s and MFU derived from it) is split by the
``GPTKernelBreakdown`` kinds (matmul, attention, normalisation, elementwise, loss, optimizer),
a SuperSpike trial by ``SuperSpikeKernelTimes`` (GeNN's kernel timers) or ``SuperSpikePhaseTimes``
(the torch backend's steps and weight updates). Both sides' parts are
read from the same results files the verdict came from, for the same case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .judge import Verdict
from .records import ResultSet



def splits() -> dict:
    """whole-step metric -> its splits, as each metric declares them (``Metric.splits``): (the family that
    splits it, the whole-step parameters that must match the part's, parameter values the whole-step case
    must have for that split to describe it)."""
    from workloads.registry import all_metrics

    return {name: tuple((s.family, s.match, dict(s.when)) for s in m.splits)
            for name, m in all_metrics() if m.splits}


@dataclass(frozen=True)
class Part:
    name: str
    baseline: float
    candidate: float

    @property
    def growth(self) -> float:
        return self.candidate - self.baseline

    @property
    def change(self) -> float:
        return self.growth / self.baseline if self.baseline else math.inf


@dataclass(frozen=True)
class Attribution:
    verdict: Verdict
    family: str                             # the family of the parts, or "functions" for an instruction count
    parts: tuple[Part, ...]                 # largest growth first

    def sentence(self) -> str:
        grown = [p for p in self.parts if p.growth > 0]
        total = sum(p.growth for p in grown)
        if not grown or total <= 0:
            return f"{self.verdict.label}: no part of {self.family} grew (the whole grew outside the profiled ops)"
        fmt = _instructions if self.family == FUNCTIONS else _seconds
        shown = ", ".join(f"{_short(p.name)} {fmt(p.baseline)} -> {fmt(p.candidate)} "
                          f"({100 * p.change:+.0f}%, {100 * p.growth / total:.0f}% of the growth)"
                          for p in grown[:3])
        return f"{self.verdict.label}: grew most in {shown}"


FUNCTIONS = "functions"
SHOWN_NAME = 60             # characters of a (templated C++) function name in a sentence


def _seconds(value: float) -> str:
    return f"{value * 1e3:.3g} ms" if value < 1 else f"{value:.3g} s"


def _instructions(value: float) -> str:
    return f"{value:,.0f} instr"


def _short(name: str) -> str:
    return name if len(name) <= SHOWN_NAME else name[:SHOWN_NAME - 3] + "..."


def attribute(verdicts: list[Verdict], baseline: ResultSet, candidate: ResultSet) -> list[Attribution]:
    """One attribution per regressed whole-step metric whose split both sides measured."""
    out = []
    table = splits()
    base, cand = _parts_by_case(baseline, table), _parts_by_case(candidate, table)
    counted = _counted_parts(verdicts, baseline, candidate)
    out.extend(counted)
    for v in verdicts:
        if v.status != "regressed" or v.metric not in table:
            continue
        params = dict(v.params)
        found = None
        for family, shared, required in table[v.metric]:
            if any(params.get(k) != want for k, want in required.items()):
                continue
            key = (family, tuple(params.get(k) for k in shared))
            if base.get(key) and cand.get(key):
                found = family, base[key], cand[key]
                break
        if found is None:
            continue
        family, b, c = found
        parts = [Part(name, b[name], c[name]) for name in b if name in c
                 and math.isfinite(b[name]) and math.isfinite(c[name])]
        parts.sort(key=lambda p: p.growth, reverse=True)
        out.append(Attribution(v, family, tuple(parts)))
    return out


def _counted_parts(verdicts: list[Verdict], baseline: ResultSet, candidate: ResultSet) -> list[Attribution]:
    """A regressed count split by the functions that executed its instructions (callgrind's self counts of
    both sides, diffed): the functions whose counts grew most."""
    base, cand = baseline.by_key(), candidate.by_key()
    out = []
    for v in verdicts:
        if v.status != "regressed":
            continue
        b, c = base.get((v.metric, v.params)), cand.get((v.metric, v.params))
        if b is None or c is None or not (b.parts and c.parts):
            continue
        before, after = dict(b.parts), dict(c.parts)
        # a function in the top list of one side only counted 0 on the other as far as the files know
        parts = [Part(name, before.get(name, 0.0), after.get(name, 0.0)) for name in set(before) | set(after)]
        parts.sort(key=lambda p: p.growth, reverse=True)
        out.append(Attribution(v, FUNCTIONS, tuple(parts)))
    return out


def _parts_by_case(results: ResultSet, table: dict) -> dict:
    """(family, values of its whole-step parameters) -> {part: seconds}."""
    families = {family: shared for parts in table.values() for family, shared, _ in parts}
    out: dict = {}
    for m in results.measurements:
        family, _, part = m.metric.partition(".")
        if family not in families:
            continue
        params = dict(m.params)
        key = (family, tuple(params.get(k) for k in families[family]))
        out.setdefault(key, {})[part] = m.value
    return out
