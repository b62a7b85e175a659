"""Regression triage end to end, with real commits: a scratch clone of this repository gets commits that
each change one thing, asv measures them, and `spikeflops bisect` finds the one that made a step costlier
in a range of four; `spikeflops gate` on the probes' results names the metric, and `spikeflops compare`
names the bytes a step allocates when a later commit holds an extra copy of the logits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs import run_job, run_step

pytestmark = pytest.mark.e2e          # the end-to-end tier (pyproject.toml markers)
READS_ONE_REPO = pytest.mark.xdist_group("triage-scratch-repo")     # its readers on one worker: `scratch_repo` made once

ROOT = Path(__file__).resolve().parents[1]

EXTRA_COPY = ("        loss.backward()\n",
              "        held = logits.detach().clone()     # injected: a copy of the logits held through backward\n"
              "        loss.backward()\n"
              "        del held\n")
WASTED_FORWARD = ("        flat = logits.flatten(0, 1)\n",
                  "        with torch.no_grad():\n"
                  "            model(inputs)                  # injected: a wasted forward pass, same outputs\n"
                  "        flat = logits.flatten(0, 1)\n")


def _git(repo, *args):
    return run_step(["git", "-C", str(repo), *args])


def _commit(repo, message, path=None, old=None, new=None):
    if path is None:
        with open(repo / "README.md", "a") as f:
            f.write(f"\n{message}\n")
    else:
        text = (repo / path).read_text()
        assert text.count(old) == 1, f"{path}: the injection point moved"
        (repo / path).write_text(text.replace(old, new))
    _git(repo, "commit", "-qam", message)
    return _git(repo, "rev-parse", "HEAD")


def _make_scratch_repo(tmp: Path) -> dict:
    """A clone of this repository with four commits on top: neutral, a wasted forward pass (the culprit),
    a copy of the logits held through backward, neutral."""
    repo = tmp / "repo"
    run_step(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(repo)])
    _git(repo, "config", "user.email", "triage@test")
    _git(repo, "config", "user.name", "triage test")
    good = _git(repo, "rev-parse", "HEAD")
    commits = [_commit(repo, "docs: a neutral change"),
               _commit(repo, "steps: a wasted forward pass", "workloads/gpt/steps.py", *WASTED_FORWARD),
               _commit(repo, "steps: hold a copy of the logits", "workloads/gpt/steps.py", *EXTRA_COPY),
               _commit(repo, "docs: another neutral change")]
    return {"tmp": tmp, "repo": repo, "good": good, "commits": commits}


@pytest.fixture(scope="module")
def scratch_repo(tmp_path_factory):
    return _make_scratch_repo(tmp_path_factory.mktemp("triage"))


# The two end-to-end runs, each on a scratch clone of its own (about 40 s each), each read by one test.
@pytest.fixture(scope="module")
def bisect_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bisect")
    scratch = _make_scratch_repo(folder)
    return run_job([sys.executable, "-m", "spikeflops.cli", "bisect", scratch["good"], scratch["commits"][-1],
                    "--metric", "GPTOpCount.operators", "--match", "fast, train", "--quick",
                    "--repo", scratch["repo"], "--work", folder / "work", "--machine", "triage-test"], folder,
                   env={"HOME": str(folder), "SPIKEFLOPS_PROFILE": "ci"}, meta=scratch)


@pytest.fixture(scope="module")
def compare_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compare")
    scratch = _make_scratch_repo(folder)
    return run_job([sys.executable, "-m", "spikeflops.cli", "compare", scratch["commits"][1],
                    scratch["commits"][2], "--rounds", "2", "--families", "GPTOpCount",
                    "--repo", scratch["repo"]], folder, env={"SPIKEFLOPS_PROFILE": "ci"}, timeout_s=900,
                   meta=scratch)


@pytest.mark.slow
def test_bisect_finds_the_commit_that_made_the_step_costlier_and_the_gate_names_the_metric(bisect_run):
    proc, scratch_repo = bisect_run, bisect_run.meta
    work = proc.folder / "work"
    assert proc.returncode == 0, proc.tail()
    culprit = scratch_repo["commits"][1]
    assert f"first bad commit: {culprit}" in proc.stdout, proc.stdout
    probes = [ln for ln in proc.stdout.splitlines() if ln[:10] in {c[:10] for c in
                                                                    [scratch_repo["good"], *scratch_repo["commits"]]}]
    assert 3 <= len(probes) <= 4, proc.stdout           # GOOD, BAD and a binary search of 4: never a linear walk
    assert all(" BAD " in ln or ln.endswith("good") for ln in probes)
    # every probe was measured: asv wrote a result for each, and the gate reads GOOD vs the culprit
    results = work / "results" / "triage-test"
    good_file = next(results.glob(f"{scratch_repo['good'][:8]}-*.json"))
    bad_file = next(results.glob(f"{culprit[:8]}-*.json"))
    from gate_fixtures import gate as run_gate

    gate = run_gate(good_file, bad_file)
    assert gate.returncode == 1, gate.stdout + gate.stderr
    regressed = [ln for ln in gate.stdout.splitlines() if ln.startswith("FAIL")]
    assert regressed and all("GPTOpCount.operators" in ln for ln in regressed), gate.stdout


def test_a_probe_measures_only_the_rows_its_match_picks():
    """asv's -b picks the benchmarks, but a tracked family's setup measures every row SPIKEFLOPS_CASES lets
    through: bisect's probes set it to the rows --match picks."""
    import re

    from spikeflops.regress.bisect import _matched_rows, _selection
    from workloads.registry import all_rows, case_id

    rows = all_rows("GPTOpCount")
    pattern = re.compile(_selection(*_matched_rows("GPTOpCount.operators", "fast, train"))[1])
    picked = [row for row in rows if pattern.search(f"GPTOpCount {case_id(row)}")]
    assert picked and len(picked) < len(rows)
    assert all({"fast", "train"} <= set(map(str, row.param_values())) for row in picked), picked
    assert not pattern.search("GPTStep " + case_id(picked[0]))


def test_bisect_refuses_bad_arguments_in_one_line(tmp_path, monkeypatch):
    from gate_fixtures import cli

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("HOME", str(tmp_path))
    for args, needle in ((["HEAD~1", "HEAD", "--metric", "GPTStep.nothing"], "unknown metric"),
                         (["HEAD", "HEAD~1", "--metric", "GPTOpCount.operators"], "not an ancestor"),
                         (["HEAD", "HEAD", "--metric", "GPTOpCount.operators"], "same commit"),
                         (["nope", "HEAD", "--metric", "GPTOpCount.operators"], "git rev-parse"),
                         (["HEAD~1", "HEAD", "--metric", "GPTOpCount.operators", "--match", "gpt-huge"],
                          "no case of GPTOpCount matches")):
        proc = cli("bisect", *args, "--work", tmp_path / "w", "--machine", "bisect-args-test")
        assert proc.returncode == 2 and needle in proc.stderr.strip().splitlines()[-1], (args, proc.stderr)
        assert not (tmp_path / "w").exists(), "a refused bisect made its work folder"


def test_paired_rounds_see_a_slowdown_through_drift_and_stay_calm_without_one():
    from spikeflops.regress.interleave import judge_pairs
    from spikeflops.regress.rules import load_config

    config = load_config(None)
    rule = config.rule_for("GPTStep.time_step")
    drift = [1.0, 1.6, 0.8, 2.0, 1.2, 1.5]                # the machine's speed moves 2.5x between rounds
    slower = [(d, d * (1.10 + 0.01 * (i % 3))) for i, d in enumerate(drift)]   # 10-12 % slower every round
    calm = [(d, d * (1.0 + (0.01 if i % 2 else -0.01))) for i, d in enumerate(drift)]
    args = ("GPTStep.time_step(x)", "GPTStep.time_step", "seconds", ())

    def status(pairs, **kw):
        return judge_pairs(*args, pairs, rule, config.alpha, **kw).status

    assert status(slower) == "regressed"
    assert status(calm) == "unchanged"
    assert status([(c, b) for b, c in slower]) == "improved"
    assert status(slower[:2]) == "not judged"                    # 2 rounds: no interval
    # unpaired, the same numbers would be hopeless: the baseline's own spread is 2.5x
    assert max(drift) / min(drift) > 2


def test_a_slowdown_worse_in_four_of_five_rounds_is_never_called_unchanged():
    """The sign test at 5 rounds could only flag 5 of 5; a +20 % step worse in 4 of 5 rounds was 'ok'."""
    from spikeflops.regress.interleave import judge_pairs
    from spikeflops.regress.rules import load_config

    config = load_config(None)
    rule = config.rule_for("GPTStep.time_step")
    args = ("GPTStep.time_step(x)", "GPTStep.time_step", "seconds", ())
    for ratios in ([1.21, 1.19, 1.22, 1.18, 0.97], [1.30, 1.12, 1.25, 0.95, 1.21], [1.4, 1.1, 0.9, 1.35, 1.2]):
        v = judge_pairs(*args, [(1.0, r) for r in ratios], rule, config.alpha)
        assert v.status in ("regressed", "undecided"), (ratios, v)
    clear = judge_pairs(*args, [(1.0, r) for r in (1.21, 1.19, 1.22, 1.18, 0.97)], rule, config.alpha)
    assert clear.status == "regressed" and "interval" in clear.detail
    # the unchanged step on a quiet runner (ratios 0.67 .. 2.15): too noisy to call either way
    noisy = judge_pairs(*args, [(1.0, r) for r in (0.67, 0.96, 1.24, 1.87, 2.15)], rule, config.alpha)
    assert noisy.status == "undecided" and "more rounds" in noisy.detail


def test_contended_rounds_are_dropped_and_a_starved_comparison_is_not_judged():
    from spikeflops.regress.interleave import judge_pairs
    from spikeflops.regress.rules import load_config

    config = load_config(None)
    rule = config.rule_for("GPTStep.time_step")
    args = ("GPTStep.time_step(x)", "GPTStep.time_step", "seconds", ())
    pairs = [(1.0, 1.01), (1.0, 0.99), (1.0, 1.0), (1.0, 1.02), (1.0, 0.98)]
    starved = [(0.07, 0.09)] * 5                           # both sides starve alike: a ratio hides it
    v = judge_pairs(*args, pairs, rule, config.alpha, shares=starved, floor=config.contended_floor)
    assert v.status == "not judged" and v.detail.startswith("machine contended"), v
    mixed = [(0.9, 0.95)] * 3 + [(0.1, 0.9)] * 2
    v = judge_pairs(*args, pairs, rule, config.alpha, shares=mixed, floor=config.contended_floor)
    assert v.status == "unchanged" and "2 rounds dropped" in v.detail and "CPU share 0.90-0.90" in v.detail, v
    from spikeflops.regress.render import summary_line
    starved_v = judge_pairs(*args, pairs, rule, config.alpha, shares=starved, floor=config.contended_floor)
    assert "contended" in summary_line([starved_v])


def test_sequential_rounds_spend_alpha_over_their_looks():
    from spikeflops.regress.interleave import judge_pairs
    from spikeflops.regress.rules import load_config

    config = load_config(None)
    rule = config.rule_for("GPTStep.time_step")
    args = ("GPTStep.time_step(x)", "GPTStep.time_step", "seconds", ())
    pairs = [(1.0, r) for r in (1.12, 1.05, 1.15, 1.08, 1.10)]
    one = judge_pairs(*args, pairs, rule, config.alpha, looks=1)
    many = judge_pairs(*args, pairs, rule, config.alpha, looks=8)
    assert one.status == "regressed" and "90% interval" in one.detail
    assert "99% interval" in many.detail                   # each of 8 looks at alpha / 8: a wider interval
    assert many.status in ("regressed", "undecided")


@pytest.mark.slow
def test_compare_runs_both_commits_alternately_and_names_the_metric(compare_run):
    proc, repo = compare_run, compare_run.meta["repo"]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.count("round 1/2") == 2 and proc.stderr.count("round 2/2") == 2, proc.stderr
    # ABBA: the second round starts with the candidate
    order = [ln.split(":")[1].split()[0] for ln in proc.stderr.splitlines() if ln.startswith("round ")]
    assert order == ["baseline", "candidate", "candidate", "baseline"], order
    failed = [ln for ln in proc.stdout.splitlines() if ln.startswith("FAIL")]
    assert any("GPTOpCount.bytes_allocated" in ln for ln in failed), proc.stdout
    assert all("train" in ln for ln in failed), proc.stdout          # the forward pass did not change
    assert _git(repo, "worktree", "list").count("\n") == 0, "the worktrees were not removed"


@READS_ONE_REPO
@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_a_stopped_compare_leaves_no_worktree_process_or_temp_folder(scratch_repo, tmp_path, sig):
    """SIGTERM (a CI cancel, `timeout`) and SIGHUP (a closed terminal) used to leave compare's worktrees
    registered in the user's repository and its child `spikeflops run` measuring."""
    import signal
    import time

    repo, (first, *_rest) = scratch_repo["repo"], scratch_repo["commits"]
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "spikeflops.cli", "compare", scratch_repo["good"], first,
                             "--rounds", "3", "--families", "SuperSpikeConvergence", "--repo", str(repo)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "SPIKEFLOPS_PROFILE": "ci", "TMPDIR": str(scratch),
                                 "PYTHONUNBUFFERED": "1"})
    line = proc.stderr.readline()
    assert line.startswith("round 1/3"), line
    time.sleep(4)                                               # the first round's child is measuring
    assert proc.poll() is None
    with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
        children = f.read().split()
    assert children, "no child spikeflops run to outlive the command"
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + getattr(signal, sig) and "stopped by" in err, err
    time.sleep(1)
    alive = [pid for pid in children if os.path.exists(f"/proc/{pid}") and
             "zombie" not in open(f"/proc/{pid}/status").read().lower()]
    assert not alive, f"child processes outlived compare: {alive}"
    assert _git(repo, "worktree", "list").count("\n") == 0, _git(repo, "worktree", "list")
    assert not list(scratch.iterdir()), list(scratch.iterdir())


def test_many_paired_timings_judged_at_once_keep_their_false_discoveries_controlled():
    from spikeflops.regress.interleave import _control_false_discoveries, judge_pairs
    from spikeflops.regress.rules import load_config

    config = load_config(None)
    rule = config.rule_for("GPTStep.time_step")
    clear = judge_pairs("a", "GPTStep.time_step", "seconds", (), [(1.0, r) for r in (1.3, 1.31, 1.29, 1.3, 1.32)],
                        rule, config.alpha)
    marginal = judge_pairs("b", "GPTStep.time_step", "seconds", (), [(1.0, r) for r in (1.21, 1.0, 1.22, 1.18, 1.02)],
                           rule, config.alpha)
    assert clear.status == marginal.status == "regressed" and clear.p_value < marginal.p_value < config.alpha
    many = [marginal] + [judge_pairs(f"c{i}", "GPTStep.time_step", "seconds", (), [(1.0, 1.0)] * 5, rule,
                                     config.alpha) for i in range(30)] + [clear]
    # alone the marginal one is a regression; among 32 timings its q must also clear alpha
    controlled = {v.label: v.status for v in _control_false_discoveries(many, config.alpha)}
    assert controlled["a"] == "regressed"
    assert controlled["b"] == "undecided"


@READS_ONE_REPO
@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_a_stopped_bisect_leaves_no_worktree_process_or_temp_folder_and_keeps_earlier_results(scratch_repo,
                                                                                               tmp_path, sig):
    """bisect stopped while asv measures a probe: asv and its benchmark processes stop, the probe's
    worktree is gone from the user's repository, and results already in --work stay byte-identical."""
    import shutil
    import signal
    import time

    from leftovers import digest_tree, new_tag, survivors, wait_for_descendant

    repo = scratch_repo["repo"]
    work = tmp_path / "work"
    earlier = work / "results" / "bisect-stop-test"
    earlier.mkdir(parents=True)
    shutil.copy(next(p for p in (ROOT / "results" / "asv").glob("*/*.json") if p.name != "machine.json"), earlier)
    before = digest_tree(earlier)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    tag = new_tag()
    proc = subprocess.Popen([sys.executable, "-m", "spikeflops.cli", "bisect", scratch_repo["good"],
                             scratch_repo["commits"][-1], "--metric", "GPTOpCount.operators", "--match",
                             "fast, train", "--quick", "--repo", str(repo), "--work", str(work), "--machine",
                             "bisect-stop-test"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **tag, "HOME": str(tmp_path), "SPIKEFLOPS_PROFILE": "ci",
                                 "TMPDIR": str(scratch), "PYTHONUNBUFFERED": "1"})
    wait_for_descendant(tag, "asv/benchmark.py")            # asv's benchmark process is measuring a probe
    time.sleep(1)
    assert proc.poll() is None, "bisect ended before it could be stopped"
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + getattr(signal, sig) and f"stopped by {sig}" in err, err
    left = survivors(tag)
    assert not left, f"processes outlived bisect: {left}"
    assert _git(repo, "worktree", "list").count("\n") == 0, _git(repo, "worktree", "list")
    assert not (work / "trees").exists() or not list((work / "trees").iterdir())
    # torch's compile cache (torchinductor_<user>) lives in the temporary folder by design and is kept
    left = [p.name for p in scratch.iterdir() if not p.name.startswith("torchinductor_")]
    assert not left, left
    assert {k: v for k, v in digest_tree(earlier).items() if k in before} == before


def test_a_relative_worktree_path_is_this_processes_not_the_repositorys(tmp_path, monkeypatch):
    """`bisect --work work` from another folder used to put the worktree inside the repository, then fail
    with a traceback looking for it where it was asked."""
    from spikeflops.gitrepo import worktree

    monkeypatch.chdir(tmp_path)
    with worktree(ROOT, "HEAD", Path("work") / "tree") as tree:
        assert tree == tmp_path / "work" / "tree" and (tree / "pyproject.toml").is_file()
    assert not (tmp_path / "work" / "tree").exists() and not (ROOT / "work").exists()
    assert str(tmp_path) not in _git(ROOT, "worktree", "list")
