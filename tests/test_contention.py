"""A busy neighbour must not pass for a regression: CPU results carry the CPU share their process got,
and the gate does not judge a candidate whose share fell far below its baseline's."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import time

import pytest

from spikeflops.regress.judge import judge_pair
from spikeflops.results.records import Measurement, ResultSet
from spikeflops.regress.rules import load_config
from workloads.profiles import get_profile
from workloads.registry import select
from workloads.measure import track

PARAMS = (("size", "gpt-nano"),)


def _rs(mfu: float, share: float) -> ResultSet:
    machine = {"harness": "asv", "machine": "m", "cpu": "c", "num_cpu": 2, "arch": "x86_64", "gpu": None}
    return ResultSet("mem", "asv", machine, "0" * 40, 0.0, [
        Measurement("GPTThroughput.mfu", PARAMS, "percent", mfu),
        Measurement("GPTThroughput.cpu_share", PARAMS, "", share)])


def _status(base, cand):
    (verdict,) = [v for v in judge_pair(base, cand, load_config()) if v.metric == "GPTThroughput.mfu"]
    return verdict


def test_a_contended_candidate_is_not_judged_and_a_quiet_one_is():
    contended = _status(_rs(40.0, 0.95), _rs(30.0, 0.45))
    assert contended.status == "not judged" and "contended" in contended.detail
    quiet = _status(_rs(40.0, 0.95), _rs(30.0, 0.93))
    assert quiet.status == "regressed"


def test_a_contended_verdict_is_never_a_silent_pass():
    """Nothing regressed but a metric could not be judged: exit 3 and a summary that says so, never 0."""
    from spikeflops.regress.judge import EXIT_OK, EXIT_UNDECIDED, exit_code
    from spikeflops.regress.render import markdown_report, summary_line

    contended = [v for v in judge_pair(_rs(40.0, 0.95), _rs(30.0, 0.45), load_config())]
    assert exit_code(contended) == EXIT_UNDECIDED
    assert summary_line(contended).startswith("UNDECIDED") and "UNDECIDED" in markdown_report(contended)
    assert exit_code([v for v in judge_pair(_rs(40.0, 0.95), _rs(40.2, 0.93), load_config())]) == EXIT_OK


def test_compare_adds_rounds_for_a_contended_timing_and_exits_3(tmp_path, monkeypatch):
    """A contended round is dropped; with --max-rounds, compare runs more rounds for it while enough
    uncontended rounds could still come, stops as soon as none can, and a timing still contended ends the
    command with exit 3."""
    import json
    import subprocess

    from gate_fixtures import cli
    from spikeflops.regress import interleave

    runs = []

    def fake_run(self, out, families, profile):          # every round of both sides starved of CPU
        runs.append(out.name)
        data = {"format": "spikeflops-run/1", "machine_name": "m", "machine": {"cpu": "c", "cpu_count": 2},
                "commit": self.commit, "date": "2026-01-01T00:00:00+00:00",
                "load": {"cpu_share": 0.2, "threads": 1, "cores": 2, "load_before": 3.0, "load_after": 3.0},
                "results": [{"family": "GPTStep", "params": {"size": "gpt-nano", "variant": "fast",
                             "dtype": "float32", "device": "cpu", "mode": "train", "batch": "4",
                             "compile": "False"}, "units": {"time_step": "seconds"}, "case": {},
                             "metrics": {"time_step": 0.03}, "samples": {"time_step": [0.03, 0.031, 0.029]}}]}
        out.write_text(json.dumps(data))
        from spikeflops.results.records import load
        return load(out)

    monkeypatch.setattr(interleave.Side, "run", fake_run)
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for i in range(2):
        (repo / "f").write_text(str(i))
        subprocess.run(["git", "-C", str(repo), "add", "f"], check=True)
        subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm",
                        f"c{i}"], check=True)
    proc = cli("compare", "HEAD~1", "HEAD", "--repo", repo, "--rounds", "3", "--max-rounds", "5")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    # futile: no round of the 2 left can bring 3 uncontended ones, so it stops after 3 (and says why)
    assert len(runs) == 6, runs
    assert "UNDECIDED" in proc.stdout and "contended" in proc.stdout
    assert "stopping after 3 rounds: 1 contended timing" in proc.stderr, proc.stderr
    runs.clear()
    proc = cli("compare", "HEAD~1", "HEAD", "--repo", repo, "--rounds", "3", "--max-rounds", "7")
    assert proc.returncode == 3 and len(runs) == 10, runs      # 2 more rounds while 3 quiet ones could come
    assert "stopping after 5 rounds" in proc.stderr


def _spin(stop_at: float, parent: int | None = None) -> None:
    x = 0
    while time.time() < stop_at and (parent is None or os.getppid() == parent):
        x += 1


@pytest.mark.e2e                     # end-to-end: spinning processes beside a real run (the e2e tier)
def test_a_run_beside_twice_as_many_spinning_processes_as_cores_is_flagged_and_not_judged():
    # two spinners a core leave the run at most a third of a core a thread: below the gate's floor of 0.5,
    # whatever the quiet run got (a quiet run on a busy runner is contended too: still not judged)
    (row,) = [r for r in select("GPTThroughput", "ci") if r.case.variant == "fast"]
    profile = dataclasses.replace(get_profile("ci"), gpt_repeats=3)     # short: the busy run is the slow one
    quiet = track(row, profile)
    ctx = multiprocessing.get_context("fork")
    # the spinners outlive the busy run and are reaped after it: one reaped during it (multiprocessing reaps
    # finished children whenever a process starts) would add its CPU time to the run's own (RUSAGE_CHILDREN)
    spinners = [ctx.Process(target=_spin, args=(time.time() + 600, os.getpid()))
                for _ in range(2 * (os.cpu_count() or 1))]
    for p in spinners:
        p.start()
    try:
        busy = track(row, profile)
    finally:
        for p in spinners:
            p.terminate()
            p.join()
    assert 0 < quiet["cpu_share"].value <= 1.05 and 0 < busy["cpu_share"].value < 0.5, (quiet, busy)
    base = _rs(quiet["mfu"].value, quiet["cpu_share"].value)
    cand = _rs(busy["mfu"].value, busy["cpu_share"].value)
    verdict = _status(base, cand)
    assert verdict.status == "not judged" and "machine contended" in verdict.detail, (quiet, busy, verdict)


def test_a_run_gated_against_itself_is_unchanged_however_busy_the_machine_was():
    """The same samples on both sides leave no difference for contention to hide (the A/A gate of a run
    against itself passes on a busy runner); one value moved and the same shares make it 'not judged' again."""
    starved = _rs(30.0, 0.3)
    same = _status(starved, starved)
    assert same.status == "unchanged" and same.change == 0, same
    moved = _status(starved, _rs(30.5, 0.3))
    assert moved.status == "not judged" and "contended" in moved.detail


def test_the_summary_counts_add_up_and_say_why_each_was_not_judged():
    from spikeflops.regress.judge import CONTENDED, TOO_NOISY, Verdict
    from spikeflops.regress.render import summary_line

    def v(status, detail=""):
        return Verdict("m", "m", "k", "lower", "s", status, 1.0, 1.0, 0.0, 0.05, detail)

    verdicts = [v("unchanged"), v("not judged", f"{CONTENDED}: x"), v("not judged", f"{TOO_NOISY} (detectable: 9%)"),
                v("not judged", "depends on the machine: not judged across hardware"), v("undecided")]
    line = summary_line(verdicts)
    assert line.startswith("UNDECIDED: no regression found, but 3 metrics stayed undecided"), line
    assert "3 not judged (1 contended, 1 too noisy here, 1 by design)" in line and "1 undecided" in line
