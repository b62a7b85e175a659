"""Which part of a step grew: a regressed time metric next to the breakdown the same run measured.

A GPT training step's time (and the tokens/s and MFU derived from it) is split by the
``GPTKernelBreakdown`` kinds (matmul, attention, normalisation, elementwise, loss, optimizer),
a SuperSpike trial by ``SuperSpikeKernelTimes`` (GeNN's kernel timers) or ``SuperSpikePhaseTimes``
(the torch backend's steps and weight updates). Both sides' parts are
read from the same results files the verdict came from, for the same case.

Beside them, in the user's own code: the Python functions whose own line events grew (the family's
``python_lines`` measurement of the same case, workloads.pywork), named first; and for a count, the native
functions that executed the instructions (callgrind's self counts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..textsafe import middle_cut
from .judge import Verdict
from ..results.records import ResultSet



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
    family: str                             # the parts' family, or FUNCTIONS, PYTHON or OPERATORS (below)
    parts: tuple[Part, ...]                 # largest growth first

    def sentence(self) -> str:
        grown = [p for p in self.parts if p.growth > 0]
        total = sum(p.growth for p in grown)
        if not grown or total <= 0:
            return f"{self.verdict.label}: no part of {self.family} grew (the whole grew outside the profiled ops)"
        fmt = {FUNCTIONS: _instructions, PYTHON: _lines, OPERATORS: _calls}.get(self.family, _seconds)
        shown = ", ".join(f"{_short(p.name)} {fmt(p.baseline)} -> {fmt(p.candidate)} "
                          f"({_change(p)}, {100 * p.growth / total:.0f}% of the growth)"
                          for p in grown[:3])
        where = " in Python functions" if self.family == PYTHON else ""
        return f"{self.verdict.label}: grew most{where} in {shown}"


FUNCTIONS = "functions"
PYTHON = "Python functions"
OPERATORS = "operators"                 # an operator count's parts: each aten op with the Python line that dispatched it
PYTHON_LINES = "python_lines"           # the name (or the ending of a companion's name) of a Python-work metric
SHOWN_NAME = 110            # characters of a part's name in a sentence (a templated C++ function, an op's source line)


def _seconds(value: float) -> str:
    return f"{value * 1e3:.3g} ms" if value < 1 else f"{value:.3g} s"


def _instructions(value: float) -> str:
    return f"{value:,.0f} instr"


def _calls(value: float) -> str:
    return f"{value:,.4g}"


def _lines(value: float) -> str:
    return f"{value:,.4g} lines"


def _change(part: Part) -> str:
    return "new" if part.baseline == 0 else f"{100 * part.change:+.0f}%"


def _short(name: str) -> str:
    """``name`` within SHOWN_NAME characters, its middle cut: the end names the function and line."""
    return middle_cut(name, SHOWN_NAME)


def attribute(verdicts: list[Verdict], baseline: ResultSet, candidate: ResultSet) -> list[Attribution]:
    """One attribution per regressed whole-step metric whose split both sides measured."""
    out = []
    table = splits()
    base, cand = _parts_by_case(baseline, table), _parts_by_case(candidate, table)
    out.extend(_python_parts(verdicts, baseline, candidate))
    out.extend(_counted_parts(verdicts, baseline, candidate))
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
    """A regressed count split by its parts, both sides diffed: the functions that executed its instructions
    (callgrind's self counts), or the operators with the Python line that dispatched each."""
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
        parts.sort(key=lambda p: (-p.growth, p.name))
        out.append(Attribution(v, OPERATORS if c.unit == "operators" else FUNCTIONS, tuple(parts)))
    return out


def _python_parts(verdicts: list[Verdict], baseline: ResultSet, candidate: ResultSet) -> list[Attribution]:
    """A regressed metric next to the Python functions whose own line events grew in the same case of the
    same family (its ``python_lines`` measurement, or its timed step's ``<timed>_python_lines``): where a
    loop, a wait or a new tensor op was written."""
    base, cand = baseline.by_key(), candidate.by_key()
    lines_of: dict = {}                     # (family, params) -> {python metric: (baseline, candidate)}
    for (metric, params), m in cand.items():
        if PYTHON_LINES in metric and (metric, params) in base and m.parts and base[(metric, params)].parts:
            lines_of.setdefault((metric.partition(".")[0], params), {})[metric] = (base[(metric, params)], m)
    out = []
    for v in verdicts:
        if v.status != "regressed" or PYTHON_LINES in v.metric:
            continue
        found = _same_span(v.metric, lines_of.get((v.metric.partition(".")[0], v.params), {}))
        if found is None:
            continue
        before, after = dict(found[0].parts), dict(found[1].parts)
        parts = [Part(name, before.get(name, 0.0), after.get(name, 0.0)) for name in set(before) | set(after)]
        parts.sort(key=lambda p: (-p.growth, p.name))
        if parts and parts[0].growth > 0:            # nothing grew in Python: the native breakdown says where
            out.append(Attribution(v, PYTHON, tuple(parts)))
    return out


def _same_span(metric: str, candidates: dict):
    """The Python-work pair that covers what ``metric`` measured: of a family that counts two spans (per
    step, per update), the one of the same span; else the family's only one."""
    span = metric.rpartition("_per_")[2] if "_per_" in metric else None
    same = [pair for name, pair in candidates.items() if span is not None and name.endswith(f"_per_{span}")]
    if same:
        return same[0]
    return next(iter(candidates.values())) if len(candidates) == 1 else None


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
