"""asv's grid of this project: one ``case`` axis per family, whose values differ between machines.

Each machine's asv index (``benchmarks.json``) lists only the cases it can run, so the committed index is
the union of every machine's (:func:`merge_indexes`). Results written before the case axis carry one axis per
parameter, most combinations no row; :func:`results_to_case_axis` rewrites such a file's data (on a copy:
committed files are never rewritten) so that asv's publish finds both layouts under the same cases.
"""

from __future__ import annotations

import itertools
import math

from workloads.registry import ASV_CASE_PARAM, case_id_of, row_for_case

from .records import unrepr

_PER_CASE_COLUMNS = ("result", "samples")        # and every stats_* column: one entry per case of the grid


def is_case_axis(entry: dict) -> bool:
    return entry.get("param_names") == [ASV_CASE_PARAM]


def merge_indexes(committed: dict, local: dict) -> dict:
    """The committed index with this machine's, both in the case layout: the local entry of each benchmark
    (this checkout's version, unit, code), its cases after those the committed one already lists; a benchmark
    no longer local (run only on other machines, GPTMemory on a CPU) keeps its committed entry."""
    merged = {key: value for key, value in local.items() if not isinstance(value, dict)}   # asv's "version"
    for name in dict.fromkeys([*committed, *local]):
        old, new = (_index_entry_as_cases(side[name]) if isinstance(side.get(name), dict) else None
                    for side in (committed, local))
        if old is None and new is None:
            continue
        merged[name] = dict(new or old)
        if old is not None and new is not None and is_case_axis(old) and is_case_axis(new):
            merged[name]["params"] = [list(dict.fromkeys([*old["params"][0], *new["params"][0]]))]
    return merged


def cover_results(index: dict, results: dict) -> None:
    """Add to ``index`` (in place) every case a results file's data lists for a benchmark of the case layout, so
    that asv draws it (a case that left the table keeps its history as a series of its own)."""
    columns = results.get("result_columns") or []
    if "params" not in columns or not isinstance(results.get("results"), dict):
        return
    at = columns.index("params")
    for name, row in results["results"].items():
        entry = index.get(name)
        grid = row[at] if isinstance(row, list) and len(row) > at else None
        if isinstance(entry, dict) and is_case_axis(entry) and isinstance(grid, list) and len(grid) == 1:
            entry["params"] = [list(dict.fromkeys([*entry["params"][0], *grid[0]]))]


def _index_entry_as_cases(entry: dict) -> dict:
    """An index entry in the case layout: a grid of one axis per parameter becomes its combinations that are
    rows of the case table (the others never ran anywhere)."""
    if is_case_axis(entry) or not entry.get("param_names"):      # already, or a benchmark without parameters
        return entry
    family = entry.get("name", "").split(".")[-2] if "." in entry.get("name", "") else ""
    cases = [repr(case) for case in (case_id_of(map(unrepr, combo)) for combo in itertools.product(*entry["params"]))
             if row_for_case(family, case) is not None]
    return {**entry, "params": [cases], "param_names": [ASV_CASE_PARAM]}


def results_to_case_axis(data: dict) -> bool:
    """Rewrite an asv results file's data (a dict as read from JSON) in place from one axis per parameter to one
    ``case`` axis; returns whether anything changed. A combination is kept where any metric of its class has a
    value for it (a NaN beside a number is a result, trials never reached), or where it failed."""
    columns = data.get("result_columns") or []
    if "result" not in columns or "params" not in columns or not isinstance(data.get("results"), dict):
        return False
    at = {name: i for i, name in enumerate(columns)}
    per_case = [i for name, i in at.items() if name in _PER_CASE_COLUMNS or name.startswith("stats_")]
    grids = {}
    for name, row in data["results"].items():
        grid = row[at["params"]] if isinstance(row, list) and len(row) > at["params"] else None
        values = row[at["result"]] if isinstance(row, list) and len(row) > at["result"] else None
        if (isinstance(grid, list) and len(grid) > 1 and all(isinstance(axis, list) for axis in grid)
                and isinstance(values, list) and math.prod(map(len, grid)) == len(values)):
            grids[name] = (list(itertools.product(*grid)), values)
    ran = {(name.rsplit(".", 1)[0], combo) for name, (combos, values) in grids.items()
           for combo, value in zip(combos, values) if not _is_nan(value)}
    for name, (combos, _) in grids.items():
        cls = name.rsplit(".", 1)[0]
        keep = [i for i, combo in enumerate(combos) if (cls, combo) in ran]
        row = data["results"][name]
        for i in per_case:
            if i < len(row) and isinstance(row[i], list) and len(row[i]) == len(combos):
                row[i] = [row[i][j] for j in keep]
        row[at["params"]] = [[repr(case_id_of(map(unrepr, combos[j]))) for j in keep]]
    return bool(grids)


def _is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)
