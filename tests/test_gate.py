"""The regression gate is itself tested: on the committed CPU baseline (real runs of this machine)
and on copies of it with one change injected."""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys

import pytest

from gate_fixtures import (committed_asv_runs, committed_pytest_benchmark_runs, copy_json, gate, scale_asv,
                           scale_pytest_benchmark)
from workloads.errors import SpikeflopsError
from spikeflops.regress.judge import judge_pair, exit_code
from spikeflops.results.records import Measurement, ResultSet, load
from spikeflops.regress.rules import load_config
from spikeflops.regress.stats import mann_whitney_u

ASV_RUNS = committed_asv_runs()
PB_RUNS = committed_pytest_benchmark_runs()
needs_asv_baseline = pytest.mark.skipif(len(ASV_RUNS) < 1, reason="no committed asv CPU baseline")
needs_asv_pair = pytest.mark.skipif(len(ASV_RUNS) < 2, reason="the committed asv CPU baseline has one run: "
                                                                 "no real A/A pair yet")
needs_pb_baseline = pytest.mark.skipif(len(PB_RUNS) < 2, reason="no committed pytest-benchmark baseline (two runs)")


# ------------------------------------------------------------------ statistics

@pytest.mark.parametrize("n1,n2", [(1, 1), (3, 4), (5, 5), (10, 12), (25, 30)])
def test_mann_whitney_matches_scipy(n1, n2):
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = random.Random(n1 * 100 + n2)
    for shift in (0.0, 0.3, 1.0):
        x = [rng.random() for _ in range(n1)]
        y = [rng.random() + shift for _ in range(n2)]
        u, p = mann_whitney_u(x, y)
        ref = scipy_stats.mannwhitneyu(x, y, alternative="two-sided",
                                       method="exact" if n1 * n2 <= 400 else "asymptotic")
        assert u == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue, rel=1e-9)


def test_mann_whitney_with_ties_matches_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    x, y = [1.0, 1.0, 2.0, 2.0, 3.0], [2.0, 3.0, 3.0, 4.0, 4.0]
    ref = scipy_stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic")
    assert mann_whitney_u(x, y)[1] == pytest.approx(ref.pvalue)
    assert mann_whitney_u([1.0] * 4, [1.0] * 4)[1] == 1.0


# ------------------------------------------------------------------ judging, on controlled numbers

def _rs(values: dict[str, tuple[float, tuple[float, ...]]]) -> ResultSet:
    machine = {"harness": "asv", "machine": "m", "cpu": "c", "num_cpu": 2, "arch": "x86_64", "gpu": None}
    ms = [Measurement(name, (("size", "gpt-nano"),), "", v, s) for name, (v, s) in values.items()]
    return ResultSet("mem", "asv", machine, "0" * 40, 0.0, ms)


def _statuses(base, cand):
    return {v.metric: v.status for v in judge_pair(_rs(base), _rs(cand), load_config())}


def test_each_direction_and_noise_model():
    rng = random.Random(0)
    t = tuple(1.0 + 0.01 * rng.random() for _ in range(10))
    base = {"GPTStep.time_step": (1.0, t), "GPTThroughput.mfu": (40.0, ()),
            "GPTMaxBatch.max_batch": (40.0, ()), "GPTFlops.forward_exact": (7.0e11, ()),
            "SuperSpikeConvergence.final_error": (1.0e6, (1.0e6, 1.1e6, 0.9e6)),
            "SuperSpikeConvergence.trials_to_target": (6.0, (6.0, 5.0, 7.0))}
    worse = {"GPTStep.time_step": (1.1, tuple(x * 1.1 for x in t)),
             "GPTThroughput.mfu": (38.0, ()),                # 5 % MFU drop
             "GPTMaxBatch.max_batch": (39.0, ()),            # one sequence less
             "GPTFlops.forward_exact": (7.1e11, ()),          # the count changed
             "SuperSpikeConvergence.final_error": (1.2e6, (1.2e6, 1.3e6, 1.1e6)),
             "SuperSpikeConvergence.trials_to_target": (float("nan"), (float("nan"),) * 3)}
    better = {"GPTStep.time_step": (0.8, tuple(x * 0.8 for x in t)),
              "GPTThroughput.mfu": (50.0, ()), "GPTMaxBatch.max_batch": (48.0, ()),
              "GPTFlops.forward_exact": (7.0e11, ()),
              "SuperSpikeConvergence.final_error": (0.5e6, (0.5e6, 0.6e6, 0.4e6)),
              "SuperSpikeConvergence.trials_to_target": (4.0, (4.0, 4.0, 5.0))}
    assert set(_statuses(base, worse).values()) == {"regressed"}
    got = _statuses(base, better)
    assert got.pop("GPTFlops.forward_exact") == "unchanged"
    assert set(got.values()) == {"improved"}
    assert set(_statuses(base, base).values()) == {"unchanged"}


def test_new_metrics_have_their_directions():
    base = {"GPTScaling.scaling_efficiency": (95.0, ()), "GPTScaling.tokens_per_s": (1e5, ()),
            "SuperSpikeSetup.build_seconds": (20.0, ()),
            "GPTThroughput.first_step_overhead": (30.0, ())}
    worse = {"GPTScaling.scaling_efficiency": (85.0, ()), "GPTScaling.tokens_per_s": (0.9e5, ()),
             "SuperSpikeSetup.build_seconds": (40.0, ()),
             "GPTThroughput.first_step_overhead": (60.0, ())}
    better = {"GPTScaling.scaling_efficiency": (100.0, ()), "GPTScaling.tokens_per_s": (1.1e5, ()),
              "SuperSpikeSetup.build_seconds": (5.0, ()),
              "GPTThroughput.first_step_overhead": (10.0, ())}
    assert set(_statuses(base, worse).values()) == {"regressed"}
    assert set(_statuses(base, better).values()) == {"improved"}
    tiny = {"GPTThroughput.first_step_overhead": (0.01, ()), "SuperSpikeSetup.build_seconds": (0.01, ())}
    grown = {"GPTThroughput.first_step_overhead": (0.03, ()), "SuperSpikeSetup.build_seconds": (0.03, ())}
    assert "regressed" not in _statuses(tiny, grown).values()        # below the floor: nothing to judge
    # the collective share is shown, not judged: it rises when compute gets faster
    shares = _statuses({"GPTScaling.collective_share": (13.76, ())}, {"GPTScaling.collective_share": (44.61, ())})
    assert set(shares.values()) == {"not judged"}


def test_a_slowdown_within_noise_is_not_significant():
    rng = random.Random(1)
    base = tuple(1.0 + 0.5 * rng.random() for _ in range(8))        # +-25 % noise
    cand = tuple(1.0 + 0.5 * rng.random() for _ in range(8))
    b = {"GPTStep.time_step": (sorted(base)[4], base)}
    c = {"GPTStep.time_step": (sorted(base)[4] * 1.08, cand)}
    (verdict,) = judge_pair(_rs(b), _rs(c), load_config())
    assert verdict.status == "unchanged" and "not significant" in verdict.detail


def test_missing_and_new_metrics_are_named_and_missing_can_fail():
    base = {"GPTStep.time_step": (1.0, ()), "GPTThroughput.mfu": (2.0, ())}
    cand = {"GPTStep.time_step": (1.0, ()), "GPTMemory.peak_memory": (3.0, ())}
    verdicts = judge_pair(_rs(base), _rs(cand), load_config())
    statuses = {v.metric: v.status for v in verdicts}
    assert statuses == {"GPTStep.time_step": "unchanged", "GPTThroughput.mfu": "missing",
                        "GPTMemory.peak_memory": "new"}
    assert exit_code(verdicts) == 0 and exit_code(verdicts, fail_on_missing=True) == 1


# ------------------------------------------------------------------ on the committed real CPU runs (asv)

@needs_asv_baseline
def test_asv_baseline_has_every_kind_of_metric():
    rs = load(ASV_RUNS[-1])
    names = {m.metric for m in rs.measurements}
    assert {"GPTStep.time_step", "GPTThroughput.mfu", "GPTMaxBatch.max_batch", "GPTFlops.forward_exact",
            "SuperSpikeConvergence.final_error", "GPTKernelBreakdown.matmul", "SuperSpikeTrial.time_trial"} <= names
    assert not rs.failed
    seeds = [m for m in rs.measurements if m.metric == "SuperSpikeConvergence.final_error"]
    assert seeds and all(len(m.samples) == 3 for m in seeds)            # the seed parameter folded in


@needs_asv_baseline
def test_asv_same_run_passes():
    proc = gate(ASV_RUNS[-1], ASV_RUNS[-1])
    assert proc.returncode == 0 and "no regression" in proc.stdout, proc.stdout + proc.stderr


@needs_asv_pair
def test_asv_real_a_a_pairs_pass_on_deterministic_metrics():
    # two real runs of the same code: FLOPs, max batch and seeded convergence must agree exactly
    # (timings of this shared VM move between runs; the notes report that false-alarm rate)
    proc = gate(ASV_RUNS[0], ASV_RUNS[1], "--noise", "exact,seeds")
    assert proc.returncode == 0 and "no regression" in proc.stdout, proc.stdout + proc.stderr


@needs_asv_baseline
@pytest.mark.parametrize("pattern,factor,add,metric", [
    # 50 %: the committed CPU samples spread widely (shared VM), and the rank test rightly calls 10 % noise there
    ("bench_gpt.GPTStep.time_step", 1.50, 0, "GPTStep.time_step"),
    ("bench_gpt.GPTThroughput.track_mfu", 0.95, 0, "GPTThroughput.mfu"),          # 5 % MFU drop
    ("bench_gpt.GPTMaxBatch.track_max_batch", 1.0, -1, "GPTMaxBatch.max_batch"),   # one sequence less
    ("bench_superspike.SuperSpikeConvergence.track_final_error", 1.25, 0, "SuperSpikeConvergence.final_error"),
])
def test_asv_injected_regression_is_caught(tmp_path, pattern, factor, add, metric):
    base = ASV_RUNS[-1]
    cand = scale_asv(base, tmp_path / "asv" / base.parent.name / base.name, pattern, factor, add)
    md = tmp_path / "summary.md"
    proc = gate(base, cand, "--markdown", md)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    regressed = [line for line in proc.stdout.splitlines() if line.startswith("FAIL")]
    assert regressed and all(metric in line for line in regressed), proc.stdout
    assert "REGRESSION" in md.read_text() and metric in md.read_text()


@needs_asv_baseline
@pytest.mark.parametrize("pattern,factor,add", [
    ("bench_gpt.GPTStep.time_*", 0.7, 0), ("bench_gpt.GPTThroughput.track_*", 1.3, 0),
    ("bench_gpt.GPTMaxBatch.track_max_batch", 1.0, 5),
    ("bench_superspike.SuperSpikeConvergence.track_final_error", 0.5, 0),
])
def test_asv_improvement_is_never_a_regression(tmp_path, pattern, factor, add):
    base = ASV_RUNS[-1]
    cand = scale_asv(base, tmp_path / "asv" / base.parent.name / base.name, pattern, factor, add)
    proc = gate(base, cand, "--out", tmp_path / "v.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    verdicts = json.loads((tmp_path / "v.json").read_text())["verdicts"]
    assert any(v["status"] == "improved" for v in verdicts)
    assert not any(v["status"] == "regressed" for v in verdicts)


@needs_asv_baseline
def test_asv_other_hardware_is_refused_unless_asked(tmp_path):
    base = ASV_RUNS[-1]

    def move(data):
        data["params"]["cpu"] = "Some Other CPU"
        data["params"]["machine"] = "elsewhere-nvidia-h100"

    cand = copy_json(base, tmp_path / "asv" / "elsewhere" / base.name, move)
    proc = gate(base, cand)
    assert proc.returncode == 2 and "different hardware" in proc.stderr and "--cross-hardware" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert gate(base, cand, "--cross-hardware").returncode == 0


@needs_asv_baseline
def test_asv_file_copied_without_its_index_still_compares(tmp_path):
    # a baseline kept aside (a CI artifact) has no benchmarks.json beside it: the case table names its metrics,
    # so a convergence regression in the candidate is still caught instead of "N missing, M new"
    base = ASV_RUNS[-1]
    kept = copy_json(base, tmp_path / "kept" / base.name)
    assert not (tmp_path / "benchmarks.json").exists() and not (tmp_path / "kept" / "benchmarks.json").exists()
    from workloads.registry import FAMILIES

    def table_still_matches(m):             # a family whose parameters changed since the file was written
        return len([p for p in FAMILIES[m.metric.split(".")[0]].params if p != "seed"]) == len(m.params)

    indexed, copied = load(base).measurements, load(kept).measurements
    assert {m.key for m in copied if table_still_matches(m)} == {m.key for m in indexed if table_still_matches(m)}
    # where the table changed, the copy's parameters are not guessed from it
    assert all(name.startswith("param") for m in copied if not table_still_matches(m) for name, _ in m.params)
    worse = scale_asv(base, tmp_path / "asv" / base.parent.name / base.name,
                      "bench_superspike.SuperSpikeConvergence.track_final_error", 1.25)
    proc = gate(kept, worse)
    assert proc.returncode == 1 and "SuperSpikeConvergence.final_error" in proc.stdout, proc.stdout + proc.stderr
    assert "names from the case table" in proc.stdout


@needs_asv_baseline
def test_an_asv_file_named_from_its_own_folder_finds_its_index(monkeypatch):
    # `spikeflops gate a.json b.json` typed inside the machine folder: the index two levels up still names it
    base = ASV_RUNS[-1]
    monkeypatch.chdir(base.parent)
    from pathlib import Path

    rs = load(Path(base.name))
    assert rs.index_source and rs.index_source.endswith("benchmarks.json")


@needs_asv_baseline
def test_a_gate_that_compared_nothing_fails_loudly(tmp_path):
    base = ASV_RUNS[-1]

    def rename(data):                       # another suite's benchmarks: no metric in common
        data["results"] = {k.replace("bench_", "other_").replace(".GPT", ".Foreign").replace(".Super", ".Foreign"): v
                           for k, v in data["results"].items()}

    def another_cpu(data):                  # the same metrics from another machine: only portable ones judged
        data["params"]["cpu"] = "Another CPU"

    foreign = copy_json(base, tmp_path / "foreign" / base.name, rename)
    elsewhere = copy_json(base, tmp_path / "elsewhere" / base.name, another_cpu)
    for args in [(base, foreign), (base, elsewhere, "--noise", "median,timing", "--cross-hardware")]:
        proc = gate(*args)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "nothing was compared" in lines[0], proc.stderr


@needs_asv_baseline
def test_asv_trials_to_target_never_reached_is_the_worst_regression(tmp_path):
    # asv writes NaN for a skipped case and for "never reached" alike; beside a number of the same case it is a result
    base = ASV_RUNS[-1]
    name = "bench_superspike.SuperSpikeConvergence.track_trials_to_target"
    data = json.loads(base.read_text())
    assert any(v == v for v in data["results"][name][0]), "the baseline reached the target somewhere"

    def never(d):
        row = d["results"][name]
        row[0] = [float("nan")] * len(row[0])

    cand = copy_json(base, tmp_path / "asv" / base.parent.name / base.name, never)
    never_reached = [m for m in load(cand).measurements if m.metric == "SuperSpikeConvergence.trials_to_target"]
    assert never_reached and all(m.value != m.value for m in never_reached)
    proc = gate(base, cand)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert any(line.startswith("FAIL") and "trials_to_target" in line for line in proc.stdout.splitlines())


@needs_asv_baseline
def test_cross_hardware_judges_only_portable_metrics(tmp_path):
    # a CPU memory budget fits a different batch on another CPU model: across machines max batch is shown, not judged
    base = ASV_RUNS[-1]

    def elsewhere(data):
        data["params"]["cpu"] = "Some Other CPU"

    moved = copy_json(base, tmp_path / "asv" / "elsewhere" / base.name, elsewhere)
    batch = scale_asv(moved, tmp_path / "asv" / "elsewhere2" / base.name, "bench_gpt.GPTMaxBatch.track_max_batch",
                      1.0, -4)
    proc = gate(base, batch, "--cross-hardware", "--all")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "depends on the machine" in proc.stdout
    flops = scale_asv(moved, tmp_path / "asv" / "elsewhere3" / base.name, "bench_gpt.GPTFlops.track_forward_exact",
                      1.01)
    proc = gate(base, flops, "--cross-hardware")
    assert proc.returncode == 1 and "GPTFlops.forward_exact" in proc.stdout, proc.stdout + proc.stderr


def test_counts_are_judged_across_hardware_only_where_valgrind_showed_the_same_machine(tmp_path):
    """Instruction counts depend on the CPU valgrind presents (a fixed model chosen by the host's features) and
    the software, not on the host's CPU: two hosts that agree on those are judged; otherwise not, with why."""
    shown = {"valgrind": "valgrind-3.19.0", "cpu_count": 2, "python": "3.11.7", "torch": "2.13.0+cpu",
             "numpy": "2.4.6", "cpu": {"vendor": "GenuineIntel", "brand": "Intel(R) Core(TM) i7-4910MQ CPU @ 2.90GHz",
                                      "signature": "0x306c3", "features": "7ffafbff bfebfbff 000427aa 0 0"}}

    def run(path, cpu, instructions, counting):
        results = [{"family": "SuperSpikeInstructions", "params": {"backend": "torch", "device": "cpu", "size": "ci"},
                    "units": {"instructions_per_step": "instructions"}, "case": {},
                    "metrics": {"instructions_per_step": instructions}, "samples": {}},
                   {"family": "SuperSpikeOpCount", "params": {"backend": "torch", "device": "cpu", "size": "ci"},
                    "units": {"operators_per_step": "operators"}, "case": {},
                    "metrics": {"operators_per_step": 91}, "samples": {}}]
        path.write_text(json.dumps({"format": "spikeflops-run/1", "machine_name": cpu,
                                    "machine": {"cpu": cpu, "cpu_count": 2, "counting_machine": counting},
                                    "commit": "a" * 40, "date": "2026-12-01T00:00:00+00:00", "results": results}))
        return path

    base = run(tmp_path / "intel.json", "Intel(R) Xeon(R) Processor", 1_065_880.4, shown)
    grown = run(tmp_path / "amd.json", "AMD EPYC 7B13", 1_065_880.4 * 1.01, shown)
    proc = gate(base, grown, "--cross-hardware")
    assert proc.returncode == 1 and "SuperSpikeInstructions.instructions_per_step" in proc.stdout, proc.stdout
    other_torch = run(tmp_path / "amd-torch.json", "AMD EPYC 7B13", 1_065_880.4 * 1.01, {**shown, "torch": "2.11.0"})
    proc = gate(base, other_torch, "--cross-hardware", "--all")
    assert proc.returncode == 0 and "counted on another setup (torch: '2.13.0+cpu' against '2.11.0')" in proc.stdout
    unknown = run(tmp_path / "amd-unknown.json", "AMD EPYC 7B13", 1_065_880.4 * 1.01, None)
    proc = gate(base, unknown, "--cross-hardware", "--all")
    assert proc.returncode == 0 and "valgrind counted on is not recorded" in proc.stdout, proc.stdout
    # an empty or partial record on both sides is no evidence of one machine: never judged across hardware
    for name, record in (("empty", {}), ("partial", {"python": "3.11.7"})):
        a = run(tmp_path / f"a-{name}.json", "Intel(R) Xeon(R) Processor", 1_065_880.4, record)
        b = run(tmp_path / f"b-{name}.json", "AMD EPYC 7B13", 1_065_880.4 * 1.01, record)
        proc = gate(a, b, "--cross-hardware", "--all")
        assert proc.returncode == 0 and "counting machine lacks" in proc.stdout, proc.stdout


# ------------------------------------------------------------------ pytest-benchmark files

@needs_pb_baseline
def test_pytest_benchmark_a_a_passes_and_injections_are_caught(tmp_path):
    for a, b in zip(PB_RUNS, PB_RUNS[1:]):
        proc = gate(a, b, "--noise", "exact,seeds")
        assert proc.returncode == 0, proc.stdout + proc.stderr
    base = PB_RUNS[0]
    assert gate(base, base).returncode == 0
    # each injection into a copy of one real run, so that only the injection differs
    # 50 %, as for asv: 5 raw samples on this shared VM spread more than 10 %, and the rank test (rightly) says so
    slow = scale_pytest_benchmark(base, tmp_path / "slow.json", "test_GPTStep", "time", 1.50)
    out = gate(base, slow)
    assert out.returncode == 1 and "GPTStep.time_step" in out.stdout, out.stdout
    mfu = scale_pytest_benchmark(base, tmp_path / "mfu.json", "test_GPTThroughput", "mfu_vs_measured_peak", 0.95)
    out = gate(base, mfu)
    assert out.returncode == 1 and "GPTThroughput.mfu_vs_measured_peak" in out.stdout, out.stdout
    batch = scale_pytest_benchmark(base, tmp_path / "batch.json", "test_GPTMaxBatch", "max_batch", 1.0, -1)
    out = gate(base, batch)
    assert out.returncode == 1 and "GPTMaxBatch.max_batch" in out.stdout, out.stdout
    err = scale_pytest_benchmark(base, tmp_path / "err.json", "test_SuperSpikeConvergence", "final_error", 1.25)
    out = gate(base, err)
    assert out.returncode == 1 and "SuperSpikeConvergence.final_error" in out.stdout, out.stdout
    fast = scale_pytest_benchmark(base, tmp_path / "fast.json", "test_GPTStep", "time", 0.7)
    out = gate(base, fast, "--all")
    assert out.returncode == 0 and "better" in out.stdout, out.stdout


# ------------------------------------------------------------------ bad input

def test_bad_input_is_one_line_and_exit_2(tmp_path):
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"results": {')
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    bad_config = tmp_path / "gate.toml"
    bad_config.write_text('[threshold."time"]\nthreshold = 0.05\ndirection = "sideways"\n')
    cases = [
        ((corrupt, corrupt), "not valid JSON"),
        ((other, other), "not an asv, pytest-benchmark or spikeflops run results file"),
        ((tmp_path / "nope.json", other), "no such file or folder"),
        ((other, other, "--config", bad_config), "unknown key 'direction' (declared with each metric"),
        ((other, other, "--noise", "vibes"), "--noise"),
    ]
    for args, needle in cases:
        proc = gate(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], (args, proc.stderr)


def test_missing_config_file_is_an_error():
    with pytest.raises(SpikeflopsError, match="no such gate configuration file"):
        load_config("/nonexistent/gate.toml")


# ------------------------------------------------------------------ multiple comparisons

def test_benjamini_hochberg_textbook_cases():
    from spikeflops.regress.stats import benjamini_hochberg

    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert benjamini_hochberg([0.5]) == [0.5]
    assert benjamini_hochberg([]) == []
    assert benjamini_hochberg([0.9, 0.95, 1.0]) == pytest.approx([1.0, 1.0, 1.0])   # monotone, capped at 1
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = random.Random(3)
    ps = [rng.random() ** 3 for _ in range(40)]
    assert benjamini_hochberg(ps) == pytest.approx(list(scipy_stats.false_discovery_control(ps)))


def test_many_timings_judged_at_once_control_false_discoveries():
    # 120 timings that did not change (+-30 % noise) and one that got twice as slow: judged one by one at
    # p < 0.05, several unchanged ones would be called slower; with BH over all of them, only the real one
    rng = random.Random(5)
    base, cand = [], []
    machine = {"harness": "asv", "machine": "m", "cpu": "c", "num_cpu": 2, "arch": "x86_64", "gpu": None}
    for i in range(121):                    # one timed metric at 121 cases
        b = tuple(1.0 + 0.6 * rng.random() for _ in range(8))
        c = tuple(1.0 + 0.6 * rng.random() for _ in range(8))
        if i == 0:
            c = tuple(2.0 * x for x in c)
        params = (("case", str(i)),)
        base.append(Measurement("GPTStep.time_step", params, "seconds", statistics.median(b), b))
        cand.append(Measurement("GPTStep.time_step", params, "seconds", statistics.median(c), c))
    alone = [b.label for b, c in zip(base[1:], cand[1:]) if c.value > 1.05 * b.value
             and mann_whitney_u(list(b.samples), list(c.samples))[1] < 0.05]
    assert alone, "the uncorrected test must raise false alarms here, or this test proves nothing"
    verdicts = judge_pair(ResultSet("b", "asv", machine, "0" * 40, 0.0, base),
                          ResultSet("c", "asv", machine, "0" * 40, 0.0, cand), load_config())
    regressed = [v.label for v in verdicts if v.status == "regressed"]
    assert regressed == ["GPTStep.time_step(0)"], (regressed, alone)
    tested = [v for v in verdicts if "Mann-Whitney" in v.detail]
    assert len(tested) > 1 and all("Benjamini-Hochberg" in v.detail and "over 121 timing tests" in v.detail
                                   for v in tested)


# ------------------------------------------------------------------ lookback over history

def test_history_median_neither_raises_nor_hides_on_one_wild_run():
    from spikeflops.regress.judge import pool_history

    rng = random.Random(7)

    def run(level, mfu):
        t = tuple(level * (1.0 + 0.01 * rng.random()) for _ in range(10))
        return _rs({"GPTStep.time_step": (statistics.median(t), t), "GPTThroughput.mfu": (mfu, ()),
                    "GPTFlops.forward_exact": (7.0e11, ())})

    history = [run(1.0, 40.0), run(1.02, 40.5), run(0.98, 39.5), run(1.5, 25.0), run(1.01, 40.2)]   # one wild run
    base, spreads = pool_history(history)
    assert spreads[("GPTThroughput.mfu", (("size", "gpt-nano"),))] < 0.04     # the wild run does not set the spread

    def statuses(cand):
        return {v.metric: v.status for v in judge_pair(base, cand, load_config(), spreads=spreads)}

    assert set(statuses(run(1.0, 40.1)).values()) == {"unchanged"}
    # against the wild run alone, the same candidate would read as a big improvement
    assert statuses(run(1.0, 40.1)) != {v.metric: v.status for v in judge_pair(history[3], run(1.0, 40.1), load_config())}
    worse = statuses(run(1.25, 34.0))
    assert worse["GPTStep.time_step"] == "regressed" and worse["GPTThroughput.mfu"] == "regressed"


@needs_asv_pair
def test_gate_history_on_the_committed_runs(tmp_path):
    # the committed runs alone, copied: the folder they live in may also hold a run the user kept there
    folder = tmp_path / "history" / ASV_RUNS[-1].parent.name
    for run in ASV_RUNS + [ASV_RUNS[-1].parent / "machine.json"]:
        copy_json(run, folder / run.name)
    copy_json(ASV_RUNS[-1].parent.parent / "benchmarks.json", folder.parent / "benchmarks.json")
    cand = scale_asv(ASV_RUNS[-1], tmp_path / "asv" / folder.name / "cand.json",
                     "bench_superspike.SuperSpikeConvergence.track_final_error", 1.25)
    proc = gate(folder, cand, "--history", "5", "--noise", "exact,seeds")
    assert proc.returncode == 1 and "SuperSpikeConvergence.final_error" in proc.stdout, proc.stdout + proc.stderr
    assert f"median of {min(len(ASV_RUNS), 5)} runs" in proc.stdout     # every committed run of this machine
    same = copy_json(ASV_RUNS[-1], tmp_path / "asv" / folder.name / "same.json")
    assert gate(folder, same, "--history", "5", "--noise", "exact,seeds").returncode == 0


@needs_asv_baseline
def test_a_slower_step_is_attributed_to_the_part_that_grew(tmp_path):
    """GPT steps 50 % slower because matmuls doubled: the verdict names matmul, not the whole step."""
    src = ASV_RUNS[-1]
    slower = scale_asv(src, tmp_path / "m" / "slow-step.json", "bench_gpt.GPTStep.time_step", 1.5)
    cand = scale_asv(slower, tmp_path / "m" / "cand.json", "bench_gpt.GPTKernelBreakdown.track_matmul", 2.0)
    md = tmp_path / "summary.md"
    proc = gate(src, cand, "--markdown", md)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip().startswith("GPTStep.time_step(")]
    assert lines and all("grew most in matmul" in ln for ln in lines), proc.stdout
    assert "train" in lines[0] and not any("forward" in ln for ln in lines)   # the split is a training step's
    assert "### Where it grew" in md.read_text() and "grew most in matmul" in md.read_text()


@needs_asv_pair
def test_calibration_silences_the_a_a_pair_and_still_catches_a_real_regression(tmp_path):
    cal = tmp_path / "cal.json"
    refused = subprocess.run([sys.executable, "-m", "spikeflops.cli", "calibrate", ASV_RUNS[0], ASV_RUNS[1],
                              "--out", cal], capture_output=True, text=True, timeout=300)
    # two commits' runs are no A/A pair unless asked (these two differ only in code that no metric moves)
    assert refused.returncode == 2 and "are of 2 commits" in refused.stderr and not cal.exists(), refused.stderr
    proc = subprocess.run([sys.executable, "-m", "spikeflops.cli", "calibrate", ASV_RUNS[0], ASV_RUNS[1],
                           "--out", cal, "--allow-different-commits"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "A/A false alarms" in proc.stdout, proc.stdout + proc.stderr
    assert "WARNING: runs of 2 commits" in proc.stderr
    data = json.loads(cal.read_text())
    assert data["metrics"]["GPTFlops.forward_exact(gpt-nano, 4)"]["detectable"] == 0.0   # deterministic
    # the real A/A pair, every metric judged (timings too): no alarm once calibrated
    calibrated = gate(ASV_RUNS[0], ASV_RUNS[1], "--calibration", cal, "--all")
    # nothing regressed, but what is too noisy here was not judged: exit 3, never a silent pass
    assert calibrated.returncode == 3 and "too noisy here" in calibrated.stdout, calibrated.stdout
    assert calibrated.stdout.strip().splitlines()[-1].startswith("UNDECIDED")
    # a change far beyond anything the A/A runs showed is still a regression; one within it is "too noisy"
    worse = scale_asv(ASV_RUNS[1], tmp_path / "m" / "worse.json", "bench_gpt.GPTFlops.track_forward_exact", 1.01)
    proc = gate(ASV_RUNS[0], worse, "--calibration", cal)
    assert proc.returncode == 1 and "GPTFlops.forward_exact" in proc.stdout, proc.stdout
    slower = scale_asv(ASV_RUNS[1], tmp_path / "m" / "slower.json", "bench_gpt.GPTStep.time_step", 1.2)
    proc = gate(ASV_RUNS[1], slower, "--calibration", cal, "--all")
    assert proc.returncode == 3 and "too noisy here" in proc.stdout, proc.stdout


def test_calibration_input_errors_are_one_line(tmp_path):
    if len(ASV_RUNS) < 1:
        pytest.skip("no committed asv run")
    for args, needle in (([ASV_RUNS[0]], "at least 2"), ([ASV_RUNS[0], ASV_RUNS[0]], "given twice"),
                         (["--runs", "1"], "at least 2")):
        proc = subprocess.run([sys.executable, "-m", "spikeflops.cli", "calibrate", *map(str, args),
                               "--out", tmp_path / "c.json"], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and needle in proc.stderr.strip().splitlines()[-1], proc.stderr
    not_cal = tmp_path / "not.json"
    not_cal.write_text("{}")
    proc = gate(ASV_RUNS[0], ASV_RUNS[0], "--calibration", not_cal)
    assert proc.returncode == 2 and "not a spikeflops calibration file" in proc.stderr


def test_a_slower_torch_trial_is_attributed_to_its_phase():
    from spikeflops.regress.attribution import attribute

    def rs(trial, step, update):
        params = (("backend", "torch"), ("device", "cpu"), ("size", "ci"))
        return ResultSet("x", "spikeflops-run", {}, "c", 0.0, [
            Measurement("SuperSpikeTrial.time_trial", params + (("compile", "False"),), "seconds", trial),
            Measurement("SuperSpikePhaseTimes.step", params, "seconds", step),
            Measurement("SuperSpikePhaseTimes.gradient_learn", params, "seconds", update)])

    base, cand = rs(2.0, 1.9, 0.1), rs(3.0, 1.95, 1.05)       # the updates grew, the steps did not
    verdicts = judge_pair(base, cand, load_config())
    found = attribute(verdicts, base, cand)
    assert len(found) == 1 and found[0].family == "SuperSpikePhaseTimes"
    assert found[0].parts[0].name == "gradient_learn" and "grew most in gradient_learn" in found[0].sentence()


def _seeded(values, metric="SuperSpikeConvergence.final_error"):
    from spikeflops.results.records import Measurement, ResultSet

    rs = ResultSet("x.json", "spikeflops-run", {"machine": "m", "cpu": "c"}, "abc", 0.0)
    params = (("backend", "torch"), ("device", "cpu"), ("size", "ci"))
    median = sorted(values)[len(values) // 2]
    rs.measurements.append(Measurement(metric, params, "van Rossum error", median, tuple(values)))
    return rs


def test_a_consistent_per_seed_learning_loss_below_the_threshold_is_caught_with_ten_seeds():
    """beta 1000 -> 850 made every seed worse by 1.4-6.6 %: the median (+1.4 %) passed a 10 % threshold."""
    from spikeflops.regress.judge import judge_pair
    from spikeflops.regress.rules import load_config

    config = load_config(None)
    base = [100.0 + 7 * i for i in range(10)]
    worse = [b * (1 + d) for b, d in zip(base, (0.066, 0.014, 0.014, 0.03, 0.045, 0.02, 0.025, 0.05, 0.018, 0.035))]
    [v] = judge_pair(_seeded(base), _seeded(worse), config)
    assert v.status == "regressed" and "consistent across seeds" in v.detail, v
    # three seeds of the same change: the interval is too wide to call it, and the verdict says how wide
    [v3] = judge_pair(_seeded(base[:3]), _seeded(worse[:3]), config)
    assert v3.status in ("undecided", "unchanged") and "not detectable with these seeds" in v3.detail, v3
    # the same seeds, unchanged code up to rounding: no alarm
    calm = [b * (1 + (0.004 if i % 2 else -0.004)) for i, b in enumerate(base)]
    [v0] = judge_pair(_seeded(base), _seeded(calm), config)
    assert v0.status == "unchanged", v0


def test_the_nightly_profile_runs_enough_seeds_to_pair():
    from workloads.registry import select

    seeds: dict = {}
    for row in select("SuperSpikeConvergence", "regular", runnable_only=False):
        seeds.setdefault((row.case.backend, row.case.device, row.case.size), set()).add(row.case.seed)
    assert seeds and all(len(s) >= 10 for s in seeds.values()), seeds


def test_history_uses_the_newest_level_not_a_window_across_a_change():
    """`--history 200` missed +20-24 % that `--history 10` caught: the old level widened the threshold."""
    from spikeflops.regress.judge import pool_history

    rng = random.Random(3)

    def run(level):
        t = tuple(level * (1.0 + 0.01 * rng.random()) for _ in range(10))
        return _rs({"GPTStep.time_step": (statistics.median(t), t), "GPTFlops.forward_exact": (7.0e11, ())})

    history = [run(1.25) for _ in range(30)] + [run(1.0) for _ in range(10)]    # an improvement 10 runs ago
    base, spreads = pool_history(history)
    key = ("GPTStep.time_step", (("size", "gpt-nano"),))
    assert abs(base.by_key()[key].value - 1.0) < 0.02 and spreads[key] < 0.02, (base.by_key()[key], spreads[key])
    verdicts = {v.metric: v.status for v in judge_pair(base, run(1.22), load_config(), spreads=spreads)}
    assert verdicts["GPTStep.time_step"] == "regressed"


def test_history_leaves_out_other_machines_and_refuses_without_two_of_its_own(tmp_path, capsys):
    import json

    from spikeflops.regress.inputs import load_history
    from spikeflops.results.records import load

    def write(name, machine):
        data = {"format": "spikeflops-run/1", "machine_name": machine, "machine": {"cpu": machine, "cpu_count": 2},
                "commit": "a" * 40, "date": "2026-01-01T00:00:00+00:00", "results": []}
        (tmp_path / name).write_text(json.dumps(data))
        return tmp_path / name

    cand = load(write("cand.json", "amd"))
    for i in range(3):
        write(f"intel{i}.json", "intel")
    write("amd0.json", "amd")
    with pytest.raises(SpikeflopsError, match=r"at least 2 earlier results of the candidate's machine, found 1 "
                                              r"\(3 more came from other machines"):
        load_history(str(tmp_path), 10, cand)
    write("amd1.json", "amd")
    runs = load_history(str(tmp_path), 10, cand)
    assert sorted(r.path.rsplit("/", 1)[-1] for r in runs) == ["amd0.json", "amd1.json"]
    assert "3 runs of other machines left out" in capsys.readouterr().err


def test_a_stale_baseline_says_how_old_it_is_and_what_it_cannot_judge(tmp_path):
    """A metric newer than the baseline is "new", never judged: the gate says so in its header (terminal and
    markdown) with the baseline's age, so a kept tensor measured only by a new metric cannot pass unseen."""
    def run(metrics, date):
        return {"format": "spikeflops-run/1", "machine_name": "m", "machine": {"cpu": "c", "cpu_count": 2},
                "commit": "a" * 40, "date": date,
                "results": [{"family": "GPTOpCount", "params": {"size": "gpt-nano", "variant": "fast", "mode": "train",
                                                                "batch": "4"},
                             "units": {k: "bytes" if "bytes" in k else "operators" for k in metrics}, "case": {},
                             "metrics": metrics, "samples": {}}]}
    old = {"operators": 308, "bytes_allocated": 5.4e7}
    base = tmp_path / "base.json"
    base.write_text(json.dumps(run(old, "2026-11-01T00:00:00+00:00")))
    cand = tmp_path / "cand.json"
    cand.write_text(json.dumps(run({**old, "retained_live_bytes": 1.5e7}, "2026-12-01T00:00:00+00:00")))
    md = tmp_path / "gate.md"
    proc = gate(base, cand, "--markdown", md)
    assert proc.returncode == 0, proc.stderr
    assert "STALE BASELINE: its commit is 30 days older" in proc.stdout and "retained_live_bytes" in proc.stdout
    assert "STALE BASELINE" in md.read_text()
