"""The gate's verdicts on the committed results, as plain data: what a redesign must leave unchanged.

``python tests/committed_verdicts.py`` rewrites ``tests/data/committed_verdicts.json`` (only on purpose:
a change to a rule or a reader that moves a verdict is a change to look at, not to re-bless).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]
GOLDEN = HERE / "data" / "committed_verdicts.json"


def _plain(x):
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    if isinstance(x, float):
        return float(f"{x:.12g}")
    return x


def comparisons() -> dict[str, list[dict]]:
    """name -> verdicts of every gate this test pins: consecutive asv runs (all noise models and the
    deterministic ones), the two pytest-benchmark runs, and the asv history against its newest run."""
    from gate_fixtures import committed_asv_runs, committed_pytest_benchmark_runs
    from spikeflops.regress.judge import judge_pair, pool_history
    from spikeflops.results.records import load
    from spikeflops.regress.rules import load_config

    config = load_config()
    asv = [load(p) for p in committed_asv_runs()]
    pb = [load(p) for p in committed_pytest_benchmark_runs()]
    pairs = {f"asv {a.commit[:8]} -> {b.commit[:8]}": (a, b) for a, b in zip(asv, asv[1:])}
    pairs[f"pytest-benchmark {Path(pb[0].path).name} -> {Path(pb[1].path).name}"] = (pb[0], pb[1])
    out = {}
    for name, (base, cand) in pairs.items():
        for noise in (None, ("exact", "seeds")):
            out[f"{name} [{','.join(noise) if noise else 'all'}]"] = _rows(judge_pair(base, cand, config, noise))
    pooled, spreads = pool_history(asv[:-1])
    out[f"asv history of {len(asv) - 1} -> {asv[-1].commit[:8]}"] = _rows(judge_pair(pooled, asv[-1], config,
                                                                                    spreads=spreads))
    return out


def _rows(verdicts) -> list[dict]:
    return [{"label": v.label, "status": v.status, "direction": v.direction, "threshold": _plain(v.threshold),
             "baseline": _plain(v.baseline), "candidate": _plain(v.candidate)} for v in verdicts]


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(comparisons(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
