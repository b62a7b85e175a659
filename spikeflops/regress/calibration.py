"""Per-machine noise from A/A runs: how far each metric moves between runs of the same code here.

A calibration is made from two or more results files of the same machine and commit (asv,
pytest-benchmark or `spikeflops run`). For each metric it keeps the runs' values and the
*detectable change*: the largest relative difference between any two of them. A change that
small has already happened with nothing changed, so the gate cannot tell it from noise. The
gate then judges each metric at the larger of its configured threshold and its detectable
change, and a metric whose detectable change exceeds its threshold is "too noisy here" for any
change within that range: neither a regression nor a pass.
"""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import replace

from workloads.errors import SpikeflopsError
from .judge import Verdict, judge_pair
from ..results.records import ResultSet
from .rules import GateConfig

CALIBRATION_FORMAT = "spikeflops-calibration/1"


def _label(metric: str, params) -> str:
    inner = ", ".join(v for _, v in params)
    return f"{metric}({inner})" if inner else metric


def calibrate(runs: list[ResultSet], config: GateConfig) -> dict:
    """The calibration of ``runs`` (A/A: same machine and code) and the gate's false alarms among them."""
    if len(runs) < 2:
        raise SpikeflopsError(f"calibration needs at least 2 runs of the same code on this machine, got {len(runs)}")
    harnesses = {r.harness for r in runs}
    if len(harnesses) > 1:
        raise SpikeflopsError(f"calibration runs must come from one harness, got {', '.join(sorted(harnesses))}")
    machines = {r.machine.get("machine") or r.machine.get("cpu") for r in runs}
    if len(machines) > 1:
        raise SpikeflopsError(f"calibration runs come from different machines: {', '.join(map(str, machines))}")
    values: dict = {}
    for run in runs:
        for m in run.measurements:
            if math.isfinite(m.value):
                values.setdefault(m.key, (m, []))[1].append(m.value)
    metrics = {}
    for (metric, params), (m, vals) in sorted(values.items()):
        if len(vals) < 2:
            continue
        lo, hi = min(vals), max(vals)
        if lo == 0 and hi != 0:
            continue                # no relative change from zero: left to the threshold and its floor
        detectable = (hi - lo) / abs(lo) if lo else 0.0
        metrics[_label(metric, params)] = {"metric": metric, "params": [list(p) for p in params], "unit": m.unit,
                                           "runs": len(vals), "values": vals, "median": statistics.median(vals),
                                           "detectable": detectable}
    if not metrics:
        raise SpikeflopsError("the calibration runs share no metric measured at least twice")
    pairs = [judge_pair(a, b, config) for a, b in itertools.permutations(runs, 2)]   # every flag is false
    before, judged = false_alarms(pairs)
    after, judged_after = false_alarms([apply(verdicts, {"metrics": metrics}) for verdicts in pairs])
    return {"format": CALIBRATION_FORMAT, "harness": runs[0].harness, "machine": dict(runs[0].machine),
            "runs": [r.path for r in runs], "commits": sorted({r.commit or "?" for r in runs}),
            "metrics": metrics,
            "a_a": {"pairs": len(runs) * (len(runs) - 1) // 2, "judged_at_thresholds": judged,
                    "false_alarms_at_thresholds": before, "judged_calibrated": judged_after,
                    "false_alarms_calibrated": after}}


def false_alarms(pairs: list[list[Verdict]]) -> tuple[int, int]:
    """(regressions flagged, metrics judged) over the verdicts of A/A pairs."""
    verdicts = [v for pair in pairs for v in pair]
    return (sum(v.status == "regressed" for v in verdicts),
            sum(v.status in ("regressed", "improved", "unchanged") for v in verdicts))


def apply(verdicts: list[Verdict], calibration: dict) -> list[Verdict]:
    """Each judged metric at the larger of its threshold and its calibrated detectable change."""
    metrics = calibration.get("metrics", {})
    out = []
    for v in verdicts:
        entry = metrics.get(_label(v.metric, v.params))
        if (entry is None or v.status not in ("regressed", "improved", "unchanged") or v.threshold is None
                or v.change is None):
            out.append(v)
            continue
        detectable = float(entry["detectable"])
        if detectable <= v.threshold:
            out.append(v)
        elif abs(v.change) <= detectable:
            out.append(replace(v, status="not judged", threshold=detectable,
                               detail=f"too noisy here (detectable: {100 * detectable:.1f}%, threshold "
                                      f"{100 * v.threshold:.0f}%)"))
        else:
            out.append(replace(v, threshold=detectable,
                               detail=f"{v.detail}; beyond the calibrated noise ({100 * detectable:.1f}%)"))
    return out


def check(calibration: dict, path: str) -> dict:
    """A calibration file as the gate may use it: every detectable change a finite number >= 0 that still
    is a relative change; one line naming the first entry that is not. (A calibration that leaves nothing
    to judge is refused by the gate, which fails when it judged nothing.)"""
    if not isinstance(calibration, dict) or calibration.get("format") != CALIBRATION_FORMAT:
        raise SpikeflopsError(f"{path}: not a spikeflops calibration file (make one with `spikeflops calibrate`)")
    metrics = calibration.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        raise SpikeflopsError(f"{path}: its \"metrics\" is not a table of calibrated metrics")
    if not isinstance(calibration.get("machine", {}), dict):
        raise SpikeflopsError(f"{path}: its \"machine\" is not a table of machine facts")
    for label, entry in metrics.items():
        value = entry.get("detectable") if isinstance(entry, dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise SpikeflopsError(f"{path}: {_clip(label)}: detectable must be a finite number >= 0, not "
                                  f"{_clip(repr(value))}")
    return calibration


def _clip(text: str, width: int = 80) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."
