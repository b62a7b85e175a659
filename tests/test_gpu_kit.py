"""The GPU kit: its plan (what the 8-minute GPU call measures), its rehearsal on this CPU end to end (the
same command and stages at CI sizes, so the kit cannot rot between GPU loans), and a stage cut off by
its budget keeping what it measured."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from jobs import run_job
from leftovers import new_tag, survivors
from spikeflops.gpukit import plan as kit_plan
from spikeflops.gpukit.runner import StageOutcome, _judge
from spikeflops.results.records import load

pytestmark = pytest.mark.e2e          # the end-to-end tier (pyproject.toml markers)
READS_ONE_RUN = pytest.mark.xdist_group("kit-rehearsal")     # one worker runs its readers: it runs once

ROOT = Path(__file__).resolve().parents[1]
# what a borrowed machine hands back: at most 8 files, named in letters, digits, '.', '_' and '-'
FILES_BACK = 8
FILE_NAME = re.compile(r"[A-Za-z0-9._-]+")


def _kit(*args, env=None, timeout=900):
    return subprocess.run([sys.executable, "-m", "spikeflops.cli", "kit", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


# ---------------------------------------------------------------- the GPU plan, checked without a GPU

def test_gpu_plan_fits_eight_minutes_and_names_every_stage_once():
    assert len(set(kit_plan.STAGE_NAMES)) == len(kit_plan.STAGES)
    assert sum(s.budget("gpu") for s in kit_plan.STAGES) <= kit_plan.GPU_BUDGET_S == 480
    assert kit_plan.default_budget("gpu") == 480
    # the headline figures come before the records that only repeat them
    order = kit_plan.STAGE_NAMES
    assert order.index("gpt-throughput") < order.index("harnesses")
    assert order.index("genn") < order.index("gpu-tests")


def test_gpu_plan_measures_the_seed_table_and_both_backends():
    profile, rows = kit_plan.stage_rows("gpt-throughput", "gpu")
    cases = {(r.case.size, r.case.variant) for r in rows}
    assert cases == {(s, v) for s in ("gpt-small", "gpt-medium", "gpt-large", "gpt-xl") for v in ("book", "fast")}
    assert all(r.case.device == "cuda" and not r.case.compile for r in rows)
    _, flops = kit_plan.stage_rows("gpt-flops", "gpu")
    assert {r.case.size for r in flops} == {"gpt-small", "gpt-medium", "gpt-large", "gpt-xl"}
    _, maxb = kit_plan.stage_rows("gpt-max-batch", "gpu")
    assert {(r.case.size, r.case.mode) for r in maxb} == {(s, m) for s in ("gpt-small", "gpt-medium", "gpt-large",
                                                                          "gpt-xl") for m in ("forward", "train")}
    _, torch_rows = kit_plan.stage_rows("superspike-torch", "gpu")
    assert {(r.case.compile, r.case.cuda_graph) for r in torch_rows} == {(False, False), (False, True), (True, True)}
    assert all(r.case.size == "full" and r.case.device == "cuda" for r in torch_rows)
    _, genn = kit_plan.stage_rows("genn", "gpu")
    timed = [r for r in genn if r.family == "SuperSpikeTrial"]
    profiled = [r for r in genn if r.family == "SuperSpikeKernelTimes"]
    assert timed and not any(r.case.kernel_profiling for r in timed), "timed GeNN trials run without timers"
    assert profiled and all(r.case.kernel_profiling for r in profiled)
    _, conv = kit_plan.stage_rows("convergence", "gpu")
    assert {r.case.backend for r in conv} == {"genn", "torch"}
    assert all(r.case.trials == kit_plan.CONVERGENCE_TRIALS["gpu"] and r.case.size == "full" for r in conv)


def test_mfu_row_takes_the_largest_power_of_two_that_fits():
    earlier = [{"family": "GPTMaxBatch", "params": {"size": "gpt-small", "device": "cuda", "mode": "train"},
                "metrics": {"max_batch": 45.0}}]
    _, rows = kit_plan.stage_rows("gpt-mfu-target", "gpu", earlier)
    (row,) = rows
    assert (row.case.size, row.case.variant, row.case.compile, row.case.batch) == ("gpt-small", "fast", True, 32)
    earlier[0]["metrics"]["max_batch"] = 500.0
    assert kit_plan.stage_rows("gpt-mfu-target", "gpu", earlier)[1][0].case.batch == kit_plan.MFU_BATCH_CAP["gpu"]
    # no max batch measured (that stage cut off): the table's batch
    assert kit_plan.stage_rows("gpt-mfu-target", "gpu", [])[1][0].case.batch == 16


def test_a_stage_that_measured_nothing_is_never_ok():
    rows, tests = kit_plan.stage_named("gpt-flops"), kit_plan.stage_named("gpu-tests")
    assert _judge(rows, StageOutcome("gpt-flops", "", 10), False, 0)[0] == "skipped"
    skipped_all = StageOutcome("gpu-tests", "", 10, items={"tests": {"passed": 0, "skipped": 7, "skip_reasons":
                                                                     {"needs a CUDA device": 7}}})
    status, why = _judge(tests, skipped_all, False, 0)
    assert status == "skipped" and "needs a CUDA device" in why
    failing = StageOutcome("gpu-tests", "", 10, items={"tests": {"passed": 5, "failed": 1}})
    assert _judge(tests, failing, False, 1)[0] == "failed"
    crashed = StageOutcome("genn", "", 10, entries=[{"family": "SuperSpikeTrial", "error": "exited with code 1"}])
    assert _judge(kit_plan.stage_named("genn"), crashed, False, 0)[0] == "failed"
    assert _judge(rows, StageOutcome("gpt-flops", "", 10), False, -9)[0] == "failed"
    assert _judge(rows, StageOutcome("gpt-flops", "", 10, entries=[{"family": "GPTFlops"}]), True, None)[0] == "cut off"


# ---------------------------------------------------------------- the rehearsal, end to end

@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    """The whole rehearsal, once for the tests that read it (one xdist group: one worker runs them)."""
    folder = tmp_path_factory.mktemp("rehearsal")
    run = run_job([sys.executable, "-m", "spikeflops.cli", "kit", "--plan", "rehearsal",
                   "--out-dir", folder / "out", "--time-scale", "4"], folder, timeout_s=900)
    return {"proc": run, "out": folder / "out"}


@READS_ONE_RUN
def test_rehearsal_runs_every_stage_and_says_what_it_could_not_do(rehearsal):
    proc, out = rehearsal["proc"], rehearsal["out"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "kit.json").read_text())
    stages = {s["name"]: s for s in results["kit"]["stages"]}
    assert list(stages) == list(kit_plan.STAGE_NAMES)
    for name in ("facts", "gpt-flops", "gpt-throughput", "superspike-torch", "gpt-max-batch", "gpt-mfu-target"):
        assert stages[name]["status"] == "ok", stages[name]
    assert stages["harnesses"]["status"] in ("ok", "incomplete"), stages["harnesses"]
    # what a CPU cannot do is said, never passed off as done
    assert stages["gpu-tests"]["status"] == "skipped" and "CUDA" in stages["gpu-tests"]["reason"]
    for s in stages.values():
        assert s["status"] == "ok" or s["reason"], s
    # progress: one line as each stage starts and ends
    for name in kit_plan.STAGE_NAMES:
        assert f"] {name}: " in proc.stderr


@READS_ONE_RUN
def test_rehearsal_results_are_right_and_readable_by_the_gate(rehearsal):
    out = rehearsal["out"]
    results = json.loads((out / "kit.json").read_text())
    assert results["kit"]["peaks"]["measured"]["flops_per_s"] > 0
    assert results["machine"]["cpu"]
    by_family = {}
    for e in results["results"]:
        assert "error" not in e, e
        by_family.setdefault(e["family"], []).append(e)
    (flops,) = by_family["GPTFlops"]
    assert flops["metrics"]["train_exact"] == pytest.approx(3 * flops["metrics"]["forward_exact"], rel=0.01)
    throughput = by_family["GPTThroughput"]
    assert all(e["metrics"]["tokens_per_s"] > 0 for e in throughput)
    table_batches = {e["params"]["batch"] for e in throughput[:2]}
    assert throughput[-1]["params"]["batch"] not in table_batches, "the MFU row measured its best batch"
    assert by_family["SuperSpikeTrial"][0]["metrics"]["time_trial"] > 0
    # the gate's reader takes the kit's file like any run's
    loaded = load(out / "kit.json")
    assert any(m.metric == "GPTThroughput.mfu" for m in loaded.measurements)
    if (out / "pytest-benchmark.json").exists():
        pb = load(out / "pytest-benchmark.json")
        assert any(m.metric.startswith("GPTStep.") for m in pb.measurements)


@READS_ONE_RUN
def test_rehearsal_output_fits_what_a_borrowed_machine_hands_back(rehearsal):
    files = [p for p in rehearsal["out"].rglob("*") if p.is_file()]
    assert len(files) <= FILES_BACK, files
    assert all(FILE_NAME.fullmatch(p.name) and p.parent == rehearsal["out"] for p in files), files
    assert not [p for p in files if p.name.startswith("partial-")], "a stage's partial file outlived it"
    assert "## Stages" in (rehearsal["out"] / "kit.md").read_text()


def test_a_stage_cut_off_at_its_budget_keeps_what_was_measured(tmp_path):
    """gpt-max-batch given 5 s (the two searches take about 9 s on a quiet 2-core CPU, so the cut does
    not depend on this machine's speed the way a fraction of its budget would): the forward search may
    finish, the train search is cut off; the facts stage before it and whatever the cut stage wrote stay
    in kit.json, and the stage's processes (the probe helper too) are gone."""
    out, tag = tmp_path / "out", new_tag()
    proc = _kit("--plan", "rehearsal", "--out-dir", str(out), "--stages", "facts,gpt-max-batch",
                "--stage-budget", "gpt-max-batch=5", "--budget", "400", env=tag)
    assert proc.returncode == 1, proc.stderr[-2000:]
    results = json.loads((out / "kit.json").read_text())
    facts, maxb = results["kit"]["stages"]
    assert facts["status"] == "ok" and results["machine"]["cpu"]
    assert maxb["status"] == "cut off" and "cut off at its budget" in maxb["reason"], maxb
    assert maxb["budget_s"] == 5
    assert maxb["entries"] == len([e for e in results["results"] if e["family"] == "GPTMaxBatch"])
    assert not list(out.glob("partial-*"))
    # this command's processes only (tagged): a background command of the session may run a probe of its own
    assert not survivors(tag), f"the cut-off stage's processes (the probe helper) outlived it: {survivors(tag)}"


def test_wheels_that_do_not_install_are_refused_before_any_folder_is_made(tmp_path, capsys):
    from spikeflops.cli import main
    from spikeflops.gpukit.wheels import distribution

    assert distribution(Path("Pympler-1.1-py3-none-any.whl")) == "pympler"
    assert distribution(Path("python_discovery-1.9.6-py3-none-any.whl")) == "python-discovery"
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "broken-1.0-py3-none-any.whl").write_bytes(b"not a zip")
    status = main(["kit", "--plan", "rehearsal", "--wheels", str(tmp_path / "w"), "--out-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert status == 2 and "the carried wheels did not install" in err.strip().splitlines()[-1]
    assert not (tmp_path / "o").exists()
