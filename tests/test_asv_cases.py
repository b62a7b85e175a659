"""asv's grid is one ``case`` axis per family, the rows this machine runs: the readers, `keep` and the dashboard
give the same named cases for it as for the committed files written with one axis per parameter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gate_fixtures import HISTORY_ASV_COMMITS, RESULTS, committed_copy
from spikeflops.results.asvgrid import cover_results, merge_indexes, results_to_case_axis
from spikeflops.results.records import load
from workloads.registry import (ASV_CASE_PARAM, FAMILIES, all_rows, asv_params, case_id, row_for_case, select)

ROOT = Path(__file__).resolve().parents[1]
# the committed files of the older layout (one axis per parameter), named: a run the user keeps beside them is
# none of them
OLD_LAYOUT_COMMITS = (*HISTORY_ASV_COMMITS, "16d3e613")
COMMITTED_ASV = sorted(p for p in (RESULTS / "asv").glob("*/*-*.json") if p.name.split("-")[0] in OLD_LAYOUT_COMMITS)


def _measured(path: Path) -> tuple[list, list]:
    rs = load(path)
    return sorted((m.metric, m.params, m.unit, m.value, m.samples) for m in rs.measurements), sorted(rs.failed)


def test_every_row_has_a_case_id_of_its_own_that_leads_back_to_it():
    for family in FAMILIES:
        rows = all_rows(family)
        assert len({case_id(r) for r in rows}) == len(rows), family
        assert all(row_for_case(family, case_id(r)) == r for r in rows), family
    assert row_for_case("GPTStep", "no-such-case") is None


@pytest.mark.parametrize("profile", ["ci", "counted"])
def test_the_asv_grid_is_exactly_the_rows_this_profile_runs_here(profile):
    for family in FAMILIES:
        params, names = asv_params(family, profile)
        assert names == [ASV_CASE_PARAM]
        assert params == [[case_id(r) for r in select(family, profile)]], family


def test_asv_lists_no_family_without_a_row_here():
    """asv reads the suites' classes: a family none of whose rows runs here (GPTMemory without CUDA) has none."""
    env = {"SPIKEFLOPS_PROFILE": "ci", "SPIKEFLOPS_CASES": "^GPTFlops gpt-nano-4$"}
    code = ("import benchmarks.suites as s; from workloads.registry import FAMILIES; "
            "print(sorted(n for n in FAMILIES if hasattr(s, n))); print(s.GPTFlops.params)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["['GPTFlops']", "[['gpt-nano-4']]"]


@pytest.mark.parametrize("path", COMMITTED_ASV, ids=[p.name.split("-")[0] for p in COMMITTED_ASV])
def test_a_committed_file_rewritten_to_the_case_axis_reads_as_the_same_cases(path, tmp_path):
    """Where the family's parameters are still the table's, every measurement and failure is the same, named
    the same; a family whose parameters changed since (named param1... before) keeps its case id instead."""
    data = json.loads(path.read_text())
    before_size = sum(len(json.dumps(v)) for v in data["results"].values())
    assert results_to_case_axis(data)
    assert not results_to_case_axis(data)                      # once is enough: already one axis
    at = data["result_columns"].index("params")
    assert all(len(row[at]) == 1 for row in data["results"].values() if row[at])
    assert sum(len(json.dumps(v)) for v in data["results"].values()) < before_size / 2   # the empty cells gone
    copy = tmp_path / "m" / path.name
    copy.parent.mkdir()
    copy.write_text(json.dumps(data))
    old, new = _measured(path), _measured(copy)
    assert old[1] == new[1]
    renamed = {m[0] for m in old[0] if m[1] and m[1][0][0] == "param1"}
    assert [m for m in old[0] if m[0] not in renamed] == [m for m in new[0] if m[0] not in renamed]
    for metric in renamed:
        assert all(m[1][0][0] == ASV_CASE_PARAM for m in new[0] if m[0] == metric), metric
    assert len(old[0]) == len(new[0])


def test_the_committed_index_lists_every_row_and_files_of_both_layouts_read_by_it(tmp_path):
    assert len(COMMITTED_ASV) == len(OLD_LAYOUT_COMMITS), COMMITTED_ASV
    index = json.loads((committed_copy("results/asv", tmp_path) / "benchmarks.json").read_text())
    for name, entry in index.items():
        if not isinstance(entry, dict):
            continue
        family = name.split(".")[-2]
        assert entry["param_names"] == [ASV_CASE_PARAM], name
        assert set(entry["params"][0]) >= {repr(case_id(r)) for r in all_rows(family)}, name
    # the old layout's files beside it: named by the case table, as before
    rs = load(next(p for p in COMMITTED_ASV if p.name.startswith("77ab5194")))
    assert any(dict(m.params).get("size") == "gpt-nano" for m in rs.measurements)


def _entry(name: str, cases: list[str], version: str = "1") -> dict:
    return {"name": name, "param_names": [ASV_CASE_PARAM], "params": [[repr(c) for c in cases]], "version": version}


def test_merged_indexes_keep_every_machine_s_cases_and_this_checkout_s_entries():
    step, memory = "bench_gpt.GPTStep.time_step", "bench_gpt.GPTMemory.track_peak_memory"
    committed = {step: _entry(step, ["gpu-case", "cpu-case"]), memory: _entry(memory, ["gpu-case"]), "version": 2}
    local = {step: _entry(step, ["cpu-case", "new-case"], version="2"), "version": 2}
    merged = merge_indexes(committed, local)
    assert merged[step]["params"] == [["'gpu-case'", "'cpu-case'", "'new-case'"]]
    assert merged[step]["version"] == "2"                        # this checkout's entry, with every case
    assert merged[memory] == committed[memory]                   # run only elsewhere: kept
    assert merged["version"] == 2
    # an index of one axis per parameter becomes the rows of its grid
    old = {"name": "bench_gpt.GPTFlops.track_forward_analytic", "param_names": ["size", "batch"],
           "params": [["'gpt-nano'", "'gpt-small'"], ["4", "8"]]}
    converted = merge_indexes({old["name"]: old}, {})[old["name"]]
    assert converted["param_names"] == [ASV_CASE_PARAM]
    assert set(converted["params"][0]) == {"'gpt-nano-4'", "'gpt-small-8'"}   # the grid's two rows, not all four
    # a file's case the index does not list (a row that left the table) is added, so asv draws it
    data = {"result_columns": ["result", "params"], "results": {step: [[1.0], [["'old-case'"]]]}}
    cover_results(merged, data)
    assert "'old-case'" in merged[step]["params"][0]


def test_keep_merges_this_machine_s_index_into_the_committed_one(tmp_path):
    from test_front_door import _local_runs, cli

    local = _local_runs(tmp_path)
    step = "bench_gpt.GPTStep.time_step"
    (local / "benchmarks.json").write_text(json.dumps({step: _entry(step, ["cpu-case"]), "version": 2}))
    committed = tmp_path / "results" / "asv"
    committed.mkdir(parents=True)
    (committed / "benchmarks.json").write_text(json.dumps({step: _entry(step, ["gpu-case"]), "version": 2}))
    proc = cli("keep", "--config", tmp_path / "asv.conf.json")
    assert proc.returncode == 0, proc.stderr
    assert "merged .asv/results/benchmarks.json -> results/asv/benchmarks.json" in proc.stdout
    kept = json.loads((committed / "benchmarks.json").read_text())
    assert kept[step]["params"] == [["'gpu-case'", "'cpu-case'"]]


def test_the_dashboard_copy_puts_old_files_on_the_case_axis_and_its_index_covers_every_machine(tmp_path):
    from spikeflops.dashboard.publish import normalised_copy

    committed = committed_copy("results/asv", tmp_path / "committed")
    local = tmp_path / "local"
    (local / "here").mkdir(parents=True)
    step = "bench_gpt.GPTStep.time_step"
    (local / "benchmarks.json").write_text(json.dumps({step: _entry(step, ["only-here"]), "version": 2}))
    into = tmp_path / "copy"
    normalised_copy(committed, into)
    normalised_copy(local, into)
    index = json.loads((into / "benchmarks.json").read_text())
    assert "'only-here'" in index[step]["params"][0]
    assert "'gpt-small-fast-bfloat16-cuda-train-8-False'" in index[step]["params"][0]   # a GPU row of the table
    assert "bench_gpt.GPTMemory.track_peak_memory" in index       # CUDA only: in no local index here
    for path in into.glob("*/*-*.json"):
        data = json.loads(path.read_text())
        at = data["result_columns"].index("params")
        for name, row in data["results"].items():
            if row[at]:
                assert len(row[at]) == 1 and set(row[at][0]) <= set(index[name]["params"][0]), (path.name, name)
    # the committed files themselves are untouched
    again = committed_copy("results/asv", tmp_path / "again")
    assert all(p.read_bytes() == (again / p.relative_to(committed)).read_bytes() for p in committed.rglob("*.json"))


def test_bisect_selects_its_cases_in_either_layout_of_the_commits_it_measures():
    import re

    from spikeflops.regress.bisect import _matched_rows, _selection

    regex, cases = _selection(*_matched_rows("GPTStep.time_step", "gpt-nano, book, float32, cpu, train"))
    assert re.search(regex, "bench_gpt.GPTStep.time_step('gpt-nano-book-float32-cpu-train-4-False')")
    assert re.search(regex, "bench_gpt.GPTStep.time_step('gpt-nano', 'book', 'float32', 'cpu', 'train', 4, False)")
    assert not re.search(regex, "bench_gpt.GPTStep.time_step('gpt-nano-fast-float32-cpu-train-4-False')")
    assert re.search(cases, "GPTStep gpt-nano-book-float32-cpu-train-4-False")
