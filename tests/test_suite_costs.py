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
