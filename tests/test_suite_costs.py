"""The suite's own costs are a workload of the registry: both harnesses record them, the gate judges them."""

from __future__ import annotations


def test_synthetic_history_holds_every_family_and_reads_back(tmp_path):
    from spikeflops.regress.records import load
    from spikeflops.suite_costs import synthetic_asv_results
    from workloads.registry import FAMILIES

    paths = synthetic_asv_results(tmp_path, 3)
    runs = [load(p) for p in paths]
    assert [r.commit[:8] for r in runs] == ["00000000", "00000001", "00000002"]
    families = {m.metric.split(".")[0] for m in runs[0].measurements}
    assert {"GPTStep", "GPTOpCount", "SuperSpikeTrial", "SuiteReading"} <= families <= set(FAMILIES)


def test_suite_costs_are_measured_and_judged_like_any_metric():
    from spikeflops.regress.rules import load_config
    from workloads.measure import track
    from workloads.profiles import get_profile
    from workloads.registry import select

    rows = select("SuiteReading", "ci") + select("SuiteStartup", "ci")
    assert {r.case.task for r in rows} == {"read", "history", "report", "help"}
    config = load_config(None)
    for row in rows:
        [(name, value)] = track(row, get_profile("ci")).items()
        assert value.value > 0 and len(value.samples) == 3, (row.case, value)
        rule = config.rule_for(f"{row.family}.{name}")
        assert rule is not None and rule.direction == "lower" and rule.threshold > 0


def test_a_short_history_of_a_long_folder_reads_only_its_newest_files_in_full(tmp_path, monkeypatch):
    """1,000 asv results files: `gate --history 3` reads every file's header once and only the newest three
    (of the candidate's machine) in full, so its cost per file stays flat however long the folder grows; a
    second history over the same folder parses nothing again. (How long a file takes to read is a tracked
    benchmark, SuiteReading, not a timed test.)"""
    from spikeflops.regress import records
    from spikeflops.regress.commands import load_history
    from spikeflops.suite_costs import synthetic_asv_results

    paths = synthetic_asv_results(tmp_path, 1000)
    candidate = records.load(paths[-1])
    full, headers = [], []
    real_parse, real_read = records._parse, records.read_json
    monkeypatch.setattr(records, "_parse", lambda p: full.append(p) or real_parse(p))
    monkeypatch.setattr(records, "read_json", lambda p: headers.append(p) or real_read(p))
    runs = load_history(str(paths[0].parent), 3, candidate)
    assert [r.path for r in runs] == [str(p) for p in paths[-4:-1]]          # the newest three before it
    assert len(full) == 3, full
    assert len(headers) == 999 + 3                                          # each header once, each full read once
    full.clear(), headers.clear()
    assert [r.path for r in load_history(str(paths[0].parent), 3, candidate)] == [r.path for r in runs]
    assert full == [] and headers == []
