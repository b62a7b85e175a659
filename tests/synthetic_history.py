"""A long synthetic asv history for the tests that read one: every registered family's ci cases, a commit
per file, values that drift a little from commit to commit."""

from __future__ import annotations

import json
import random
from pathlib import Path

from workloads.registry import FAMILIES, all_rows, case_id


def synthetic_asv_results(folder, files: int, machine: str = "suite-bench") -> list:
    """``files`` asv results files (one commit each) of every registered family's ci cases, under
    ``folder/<machine>/``, with values that drift a little from commit to commit."""
    rng = random.Random(0)
    grids = {}
    for name, family in FAMILIES.items():
        rows = [r for r in all_rows(name) if "ci" in r.profiles]
        if not rows:
            continue
        grids[name] = (family, [[repr(case_id(r)) for r in rows]])     # asv's one case axis
    out = Path(folder) / machine
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(files):
        results = {}
        for name, (family, axes) in grids.items():
            n = len(axes[0])
            for m in family.metrics:
                method = m.name if m.timed else f"track_{m.name}"
                results[f"bench_{family.workload}.{name}.{method}"] = [
                    [1.0 + 0.01 * rng.random() + 0.001 * i for _ in range(n)], axes]
        data = {"version": 2, "commit_hash": f"{i:08x}" + "0" * 32, "date": 1795465980000 + 1000 * i,
                "env_name": "bench", "python": "3", "requirements": {},
                "params": {"machine": machine, "cpu": "bench", "num_cpu": "2", "arch": "x86_64"},
                "result_columns": ["result", "params"], "results": results}
        path = out / f"{i:08x}-bench.json"
        path.write_text(json.dumps(data))
        paths.append(path)
    return paths
