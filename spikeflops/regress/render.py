"""The gate's verdicts as a terminal table and as a markdown summary for a pull-request comment."""

from __future__ import annotations

import math
from collections import Counter

from ..tables import fit_prose, format_table, markdown_cell
from .judge import CONTENDED, JUDGED_BY_CPU_TIME, STATUSES, TOO_NOISY, Verdict, unjudged

MARKS = {"regressed": "FAIL", "failed": "FAIL", "missing": "miss", "undecided": "undecided", "new": "new",
         "improved": "better", "unchanged": "ok", "not judged": "-"}
ARROWS = {"lower": "lower is better", "higher": "higher is better", "equal": "must not change", "none": "-"}


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if math.isnan(value):
        return "never"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-2):
        text = f"{value:.4g}"
    else:
        text = f"{value:,.4g}" if abs(value) >= 1000 else f"{value:.4g}"
    return f"{text} {_short_unit(unit)}".rstrip()


def _short_unit(unit: str) -> str:
    return {"seconds": "s", "percent": "%", "sequences": "seq", "van Rossum error": ""}.get(unit, unit)


def _change(v: Verdict) -> str:
    if v.change is None:
        return "-"
    if math.isinf(v.change):
        return "+inf" if v.change > 0 else "-inf"
    return f"{100 * v.change:+.1f}%"


def _rows(verdicts: list[Verdict]) -> list[list[str]]:
    return [[MARKS[v.status], v.label, v.rule, _number(v.baseline, v.unit), _number(v.candidate, v.unit),
             _change(v), "-" if v.threshold is None else f"{100 * v.threshold:.3g}%", ARROWS[v.direction],
             v.detail] for v in verdicts]


HEADERS = ["", "metric", "kind", "baseline", "candidate", "change", "threshold", "direction", "note"]


def ordered(verdicts: list[Verdict]) -> list[Verdict]:
    return sorted(verdicts, key=lambda v: (STATUSES.index(v.status), v.label))


def _worth_showing(v: Verdict) -> bool:
    """Changed, undecided, or unjudged because the machine was busy: what a reader must see."""
    return v.status not in ("unchanged", "not judged") or v.detail.startswith(CONTENDED)


def summary_line(verdicts: list[Verdict]) -> str:
    """The verdict and its counts, which add up: "not judged" is split into what a rerun could judge
    (contended, too noisy here) and what is not judged by design (not selected, across hardware, no rule)."""
    counts = Counter(v.status for v in verdicts)
    parts = []
    for status in STATUSES:
        if not counts[status]:
            continue
        if status != "not judged":
            parts.append(f"{counts[status]} {status}")
            continue
        unjudged_here = [v for v in verdicts if v.status == status]
        contended = sum(v.detail.startswith(CONTENDED) for v in unjudged_here)
        noisy = sum(v.detail.startswith(TOO_NOISY) for v in unjudged_here)
        instead = sum(v.detail.startswith(JUDGED_BY_CPU_TIME) for v in unjudged_here)
        design = len(unjudged_here) - contended - noisy - instead
        why = [f"{n} {what}" for n, what in ((contended, "contended"), (noisy, "too noisy here"),
                                              (instead, "judged by on-CPU and blocked time instead"),
                                              (design, "by design")) if n]
        parts.append(f"{counts[status]} not judged ({', '.join(why)})")
    left = unjudged(verdicts)
    if counts["regressed"] or counts["failed"]:
        verdict = "REGRESSION"
    elif left:                  # exit 3: never read as a pass
        verdict = (f"UNDECIDED: no regression found, but {len(left)} metric{'s' if len(left) != 1 else ''} "
                   "stayed undecided or could not be judged here (contended or too noisy; exit 3)")
    else:
        verdict = "no regression"
    return f"{verdict}: " + ", ".join(parts)


# what each kind of verdict cannot see, said wherever one was given: a pass is a pass of what was looked at
BLIND_SPOTS = {
    "counted": "instruction counts cannot see waits (sleeps, I/O, locks), memory stalls, other threads or GPU kernels",
    "oncpu": "on-CPU time cannot see waits",
    "blocked": "blocked time (wall - on-CPU - run-queue wait) cannot see added work",
    "timing": "wall time on a contended machine is not judged; below its threshold a change is not seen",
    "seeds": "seeded convergence sees what the seeds run: a change below the interval it states is not seen",
}


def blind_spots(verdicts: list[Verdict]) -> list[str]:
    """One line per noise model that judged something here: what it cannot see."""
    from .rules import load_config

    config = load_config()
    models = []
    for v in verdicts:
        rule = config.rule_for(v.metric)
        if rule is not None and v.status in ("unchanged", "regressed", "improved") and rule.noise in BLIND_SPOTS:
            models.append(rule.noise)
    return [BLIND_SPOTS[m] for m in dict.fromkeys(models)]


def terminal_report(verdicts: list[Verdict], show_all: bool = False, header: str = "",
                    attributions=(), columns: int | None = -1) -> str:
    """The verdicts for a terminal (``columns`` -1: its width when stdout is one; None: lines kept whole)."""
    shown = [v for v in ordered(verdicts) if show_all or _worth_showing(v)]
    lines = [fit_prose(header, columns)] if header else []
    if shown:
        lines.append(format_table(HEADERS, _rows(shown), columns=columns))
    after = []
    hidden = len(verdicts) - len(shown)
    if hidden:
        after.append(f"({hidden} unchanged or unjudged metrics not shown; --all shows them)")
    if attributions:
        after.append("where it grew (the same runs' breakdown of the step):")
        after += [f"  {a.sentence()}" for a in attributions]
    blind = blind_spots(verdicts)
    if blind:
        after.append("not seen by these verdicts: " + "; ".join(blind))
    after.append(summary_line(verdicts))
    return "\n".join(lines + [fit_prose(line, columns) for line in after])


def markdown_report(verdicts: list[Verdict], header: str = "", attributions=()) -> str:
    changed = [v for v in ordered(verdicts) if _worth_showing(v)]
    judged = [v for v in ordered(verdicts) if v.status != "not judged"]
    out = ["## spikeflops gate", "", f"**{summary_line(verdicts)}**", ""]
    if header:                  # machine names and CPU strings come from results files: inert, line by line
        out += ["  \n".join(markdown_cell(line) for line in header.split("\n") if line.strip()), ""]
    if changed:
        out += [format_table(HEADERS, _rows(changed), markdown=True), ""]
    if attributions:
        out += ["### Where it grew", "", *(f"- {markdown_cell(a.sentence())}" for a in attributions), ""]
    blind = blind_spots(verdicts)
    if blind:
        out += ["### What these verdicts cannot see", "", *(f"- {line}" for line in blind), ""]
    out += ["<details><summary>All judged metrics</summary>", "",
            format_table(HEADERS, _rows(judged), markdown=True) if judged else "(none)", "", "</details>", ""]
    return "\n".join(out)
