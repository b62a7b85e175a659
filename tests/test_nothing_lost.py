"""Nothing lost, nothing wrong: output folders that are not the tool's own, a full disk, numbers that would
pass anything, inputs that crashed or hung, and text that a terminal or a pull-request comment would obey.

Each case runs the real command line in process (``gate_fixtures.cli``) and checks both the refusal (exit 2,
one line) and that every file that was there before is still there, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from gate_fixtures import cli

ROOT = Path(__file__).resolve().parents[1]
STEP_PARAMS = {"size": "gpt-nano", "variant": "fast", "dtype": "float32", "device": "cpu", "mode": "train",
               "batch": "4", "compile": "False"}


def _fingerprint(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line_refusal(proc, needle: str) -> None:
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert proc.returncode == 2, (proc.args, proc.stdout, proc.stderr)
    assert lines and needle in lines[-1] and "Traceback" not in proc.stderr, (proc.args, proc.stderr)


def _step_run(samples, *, machine="m", cpu="c", family="GPTStep", metric="time_step", unit="seconds",
              params=None) -> dict:
    entry = {"family": family, "params": dict(params or STEP_PARAMS), "units": {metric: unit}, "case": {},
             "metrics": {metric: sorted(samples)[len(samples) // 2]}, "samples": {metric: list(samples)}}
    return {"format": "spikeflops-run/1", "machine_name": machine, "machine": {"cpu": cpu, "cpu_count": 2},
            "commit": "a" * 40, "date": "2026-01-01T00:00:00+00:00", "results": [entry]}


def _write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _git_checkout(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    _write(folder / "results" / "asv" / "kept.json", {"kept": True})
    _write(folder / "notes.txt", "a user's uncommitted notes\n")
    subprocess.run(["git", "-C", str(folder), "add", "results"], check=True)
    return folder


# ------------------------------------------------------------------ output folders that are not the tool's own

def _publish_into_checkout(tmp: Path):
    repo = _git_checkout(tmp / "repo")
    return repo, ["dashboard", repo, "--publish", "--config", repo / "asv.conf.json"], "is a git checkout"


def _publish_into_results(tmp: Path):
    repo = _git_checkout(tmp / "repo")
    return repo, ["dashboard", repo / "results", "--publish", "--config", repo / "asv.conf.json"], "tracked by git"


def _publish_above_a_checkout(tmp: Path):
    _git_checkout(tmp / "above" / "repo")
    return tmp / "above", ["dashboard", tmp / "above", "--publish"], "holds a git checkout below it"


def _publish_above_a_checkout_with_a_planted_marker(tmp: Path):
    """`touch ../.spikeflops-output`, then a publish into `..` from inside the checkout."""
    _git_checkout(tmp / "above" / "repo")
    (tmp / "above" / ".spikeflops-output").touch()
    return tmp / "above", ["dashboard", tmp / "above", "--publish"], "holds a git checkout below it"


def _publish_over_a_users_files_with_a_planted_marker(tmp: Path):
    _write(tmp / "mine" / "thesis.txt", "chapter one")
    _write(tmp / "mine" / "sub" / "data.csv", "1,2\n")
    (tmp / "mine" / ".spikeflops-output").touch()
    return tmp / "mine", ["dashboard", tmp / "mine", "--publish"], "did not write (sub/data.csv, thesis.txt)"


def _publish_into_results_with_a_planted_marker(tmp: Path):
    repo = _git_checkout(tmp / "repo")
    (repo / "results" / ".spikeflops-output").touch()
    return repo, ["dashboard", repo / "results", "--publish", "--config", repo / "asv.conf.json"], "tracked by git"


def _publish_over_a_dashboard_with_a_users_notes(tmp: Path):
    """asv's files (index.json, graphs/, asv.js) beside the user's CNAME and notes.md, no manifest: never
    guessed to be an older version's output."""
    for name in ("index.json", "asv.js", "graphs/summary/x.json", "CNAME", "notes.md"):
        _write(tmp / "site" / name, "{}")
    return tmp / "site", ["dashboard", tmp / "site", "--publish"], "did not write"


def _publish_over_a_manifest_that_lists_other_files(tmp: Path):
    _write(tmp / "site" / "index.json", "{}")
    _write(tmp / "site" / "notes.md", "mine")
    _write(tmp / "site" / ".spikeflops-output", {"format": "spikeflops-output/2", "files": ["index.json"]})
    return tmp / "site", ["dashboard", tmp / "site", "--publish"], "did not write (notes.md)"


def _report_over_a_users_plots(tmp: Path):
    _write(tmp / "paper" / "plots" / "figure1.svg", "<svg/>")
    _write(tmp / "results" / "run.json", _step_run([0.01, 0.011, 0.012]))
    return tmp, ["report", tmp / "results", "--out-dir", tmp / "paper"], "did not write"


def _report_over_a_users_report(tmp: Path):
    _write(tmp / "paper" / "report.md", "my report")
    _write(tmp / "paper" / "plots" / "figure1.png", "png")
    _write(tmp / "results" / "run.json", _step_run([0.01, 0.011, 0.012]))
    return tmp, ["report", tmp / "results", "--out-dir", tmp / "paper"], "did not write"


def _report_into_the_current_folders_parent(tmp: Path):
    _write(tmp / "results" / "run.json", _step_run([0.01, 0.011, 0.012]))
    return tmp, ["report", tmp / "results", "--out-dir", Path.cwd().parent], "holds it"


def _report_into_a_symlink(tmp: Path):
    _write(tmp / "elsewhere" / "mine.txt", "mine")
    os.symlink(tmp / "elsewhere", tmp / "link")
    _write(tmp / "results" / "run.json", _step_run([0.01, 0.011, 0.012]))
    return tmp, ["report", tmp / "results", "--out-dir", tmp / "link"], "symbolic link"


OUTPUT_FOLDERS = [_publish_into_checkout, _publish_into_results, _publish_above_a_checkout,
                  _publish_above_a_checkout_with_a_planted_marker, _publish_over_a_users_files_with_a_planted_marker,
                  _publish_into_results_with_a_planted_marker, _publish_over_a_dashboard_with_a_users_notes,
                  _publish_over_a_manifest_that_lists_other_files, _report_over_a_users_plots,
                  _report_over_a_users_report, _report_into_the_current_folders_parent, _report_into_a_symlink]


@pytest.mark.parametrize("case", OUTPUT_FOLDERS, ids=[c.__name__.lstrip("_") for c in OUTPUT_FOLDERS])
def test_an_output_folder_that_is_not_the_tools_own_is_refused_and_left_whole(tmp_path, case):
    watched, argv, needle = case(tmp_path)
    before = _fingerprint(watched)
    proc = cli(*argv)
    _one_line_refusal(proc, needle)
    assert _fingerprint(watched) == before


def test_a_report_folder_the_tool_made_is_replaced_on_the_next_run(tmp_path):
    results = _write(tmp_path / "results" / "run.json", _step_run([0.01, 0.011, 0.012])).parent
    for _ in range(2):
        proc = cli("report", results, "--out-dir", tmp_path / "out")
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / ".spikeflops-output").is_file() and (tmp_path / "out" / "report.md").is_file()
    manifest = json.loads((tmp_path / "out" / ".spikeflops-output").read_text())
    assert "report.md" in manifest["files"] and any(f.startswith("plots/") for f in manifest["files"])
    _write(tmp_path / "out" / "my-notes.md", "mine")          # the user's file beside it: no third run over it
    proc = cli("report", results, "--out-dir", tmp_path / "out")
    assert proc.returncode == 2 and "did not write (my-notes.md)" in proc.stderr
    assert (tmp_path / "out" / "my-notes.md").read_text() == "mine"


# ------------------------------------------------------------------ a full disk

def test_a_run_on_a_full_disk_prints_its_summary_and_leaves_no_empty_results_file(tmp_path, monkeypatch):
    import tempfile

    from spikeflops.results import fileio as resultsio
    from workloads.errors import SpikeflopsError

    rescue = tmp_path / "tmp"
    rescue.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(rescue))
    monkeypatch.chdir(tmp_path)
    real_write = resultsio.write_text

    def full(path, text):                   # the disk of the output folder is full; the temp folder's is not
        if "spikeflops-out" in str(path):
            raise SpikeflopsError(f"{path}: cannot write (No space left on device); the previous file is unchanged")
        return real_write(path, text)

    monkeypatch.setattr(resultsio, "write_text", full)
    proc = cli("run", "--families", "GPTFlops")
    _one_line_refusal(proc, "No space left on device")
    assert "GPTFlops" in proc.stdout and "forward_exact" in proc.stdout, "the summary was not printed"
    assert list((tmp_path / "spikeflops-out").iterdir()) == [], "a placeholder results file was left"
    saved = list(rescue.glob("run-*.json"))
    assert len(saved) == 1 and str(saved[0]) in proc.stderr
    assert json.loads(saved[0].read_text())["results"], "the rescued file holds no measurements"


# ------------------------------------------------------------------ numbers that would pass anything

def _config(kind: str, value: str):
    """The shipped gate.toml with one kind's threshold set to ``value``."""
    def make(tmp: Path):
        import re

        shipped = (ROOT / "spikeflops" / "regress" / "gate.toml").read_text()
        edited, n = re.subn(rf'(\[threshold\."{kind}"\]\nthreshold = )[^\n]*', rf"\g<1>{value}", shipped)
        assert n == 1, f"gate.toml has no [threshold.\"{kind}\"] to edit"
        return ["--config", _write(tmp / "gate.toml", edited)]
    return make


def _calibration(detectable):
    def make(tmp: Path):
        label = "GPTStep.time_step(gpt-nano, fast, float32, cpu, train, 4, False)"
        data = {"format": "spikeflops-calibration/1", "harness": "spikeflops-run",
                "machine": {"cpu": "c", "num_cpu": 2, "arch": None, "gpu": None},
                "metrics": {label: {"detectable": detectable}}}
        return ["--calibration", _write(tmp / "calibration.json", json.dumps(data))]
    return make


PASS_ANYTHING = [
    ("nan threshold", _config("time", "nan"), "must be a finite number"),
    ("inf threshold", _config("operator count", "inf"), "must be a finite number"),
    ("a calibration that judges nothing", _calibration(1e9), "nothing was compared"),
    ("a calibration of nan", _calibration("nan"), "detectable must be a finite number"),
    ("a calibration of a string", _calibration("big"), "detectable must be a finite number"),
    ("a calibration of a list", _calibration([0.1]), "detectable must be a finite number"),
    ("a deeply nested config", lambda tmp: ["--config", _write(tmp / "deep.toml", "a = " + "[" * 5000 + "]" * 5000)],
     "nested too deeply"),
]


@pytest.mark.parametrize("name,make,needle", PASS_ANYTHING, ids=[p[0] for p in PASS_ANYTHING])
def test_a_number_that_would_pass_anything_is_refused(tmp_path, name, make, needle):
    base = _write(tmp_path / "base.json", _step_run([0.010, 0.011, 0.010, 0.012, 0.011]))
    cand = _write(tmp_path / "cand.json", _step_run([0.10, 0.11, 0.10, 0.12, 0.11]))     # +900 %
    _one_line_refusal(cli("gate", base, cand, *make(tmp_path)), needle)


def test_a_nan_threshold_is_refused_by_report_too(tmp_path):
    config = _config("time", "nan")(tmp_path)
    _one_line_refusal(cli("report", tmp_path, *config, "--out-dir", tmp_path / "out"), "must be a finite number")


ZERO = [
    ("a step of 0 s", dict(samples=[0.0, 0.0, 0.0])),
    ("0 bytes allocated", dict(samples=[0], family="GPTOpCount", metric="bytes_allocated", unit="bytes",
                               params={"size": "gpt-nano", "variant": "fast", "mode": "train", "batch": "4"})),
]


@pytest.mark.parametrize("name,kwargs", ZERO, ids=[z[0] for z in ZERO])
def test_zero_times_and_sizes_are_impossible_results(tmp_path, name, kwargs):
    good = dict(kwargs, samples=[0.01, 0.011, 0.012] if "family" not in kwargs else [5e7])
    base = _write(tmp_path / "base.json", _step_run(**good))
    cand = _write(tmp_path / "cand.json", _step_run(**kwargs))
    _one_line_refusal(cli("gate", base, cand), "is impossible")


# ------------------------------------------------------------------ valid input that crashed or hung

def test_a_thousand_samples_per_side_are_judged(tmp_path):
    rng = random.Random(1)
    base = _write(tmp_path / "base.json", _step_run([0.010 * (1 + 0.01 * rng.random()) for _ in range(1000)]))
    cand = _write(tmp_path / "cand.json", _step_run([0.012 * (1 + 0.01 * rng.random()) for _ in range(1000)]))
    proc = cli("gate", base, cand)
    assert proc.returncode == 1 and "1000 vs 1000 samples" in proc.stdout, proc.stdout + proc.stderr


def test_one_unreadable_file_or_a_fifo_does_not_stop_or_hang_a_folder_gate(tmp_path):
    folder = tmp_path / "results"
    _write(folder / "a-good.json", _step_run([0.010, 0.011, 0.012]))
    _write(folder / "b-broken.json", "{ not json")
    (folder / "c-folder.json").mkdir()
    os.mkfifo(folder / "d-pipe.json")
    base = _write(tmp_path / "base.json", _step_run([0.010, 0.011, 0.012]))
    # a child process with a limit: a FIFO that is opened blocks forever, and must fail this test, not hang it
    code = ("import sys; sys.path.insert(0, 'tests'); from gate_fixtures import cli; "
            f"p = cli('gate', {str(base)!r}, {str(folder)!r}); print(p.returncode); print(p.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    status, *stderr = proc.stdout.splitlines()
    assert status == "0", proc.stdout + proc.stderr
    text = "\n".join(stderr)
    assert "skipped" in text and "b-broken.json" in text and "d-pipe.json" in text and "a-good.json" in text
    report = subprocess.run([sys.executable, "-m", "spikeflops.cli", "report", str(folder), "--out-dir",
                             str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert report.returncode == 0 and "d-pipe.json" in report.stderr, report.stderr


# ------------------------------------------------------------------ text that would be obeyed

HOSTILE_TEXT = "\x1b]0;owned\x07\x1b[2J\u202eevil\x1b[8mhidden <!-- # Approved <img src=x>"


def test_no_raw_control_character_reaches_the_terminal_or_the_markdown(tmp_path):
    data = _step_run([0.010, 0.011, 0.012], machine=HOSTILE_TEXT, cpu=HOSTILE_TEXT)
    base = _write(tmp_path / "base.json", data)
    cand = _write(tmp_path / "cand\x1b[2J.json", data)
    md = tmp_path / "gate.md"
    proc = cli("gate", base, cand, "--markdown", md)
    assert proc.returncode == 0, proc.stderr
    shown = proc.stdout + proc.stderr
    for text in (shown, md.read_text()):
        assert not any(c in text for c in "\x1b\x07\u202e"), repr(text)
    assert "\\x1b]0;owned" in shown and "\\u202e" in shown
    markdown = md.read_text()
    assert "<!--" not in markdown and "<img" not in markdown and "\n# Approved" not in markdown
    # and an error message naming a hostile file name is escaped too
    err = cli("gate", tmp_path / "no\x1b[2Jsuch.json", base)
    assert err.returncode == 2 and "\x1b" not in err.stderr and "\\x1b[2J" in err.stderr


def test_printable_keeps_ordinary_text_and_escapes_every_control_character():
    from spikeflops.textsafe import printable

    assert printable("tab\tnewline\n µs → ü 日本") == "tab\tnewline\n µs → ü 日本"
    for c in [chr(i) for i in range(0x20) if chr(i) not in "\t\n"] + ["\x7f", "\x9b", "\u202e", "\u2066"]:
        assert c not in printable(f"a{c}b") and printable(f"a{c}b").startswith("a\\")


# ------------------------------------------------------------------ leftovers and kills

def test_a_process_group_ends_with_its_parent_even_on_sigkill(tmp_path):
    """The guard of a GroupProcess stops the group when the parent dies without any clean-up (SIGKILL)."""
    import signal
    import time

    from leftovers import new_tag, survivors

    tag = new_tag()
    code = ("import time; from workloads.isolate import GroupProcess; "
            "p = GroupProcess(['sh', '-c', 'sleep 300 & sleep 300 & wait']); print(p.pid, flush=True); time.sleep(300)")
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, **tag})
    group = int(parent.stdout.readline())
    time.sleep(0.5)
    os.killpg(group, 0)                                 # the group runs
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    left = survivors(tag, grace_s=5.0)
    assert not left, f"processes outlived their SIGKILLed parent by 5 s: {left}"


def test_scratch_folders_of_a_dead_owner_are_pruned_by_the_next_command(tmp_path, monkeypatch):
    import tempfile

    from spikeflops.results.fileio import OWNER_FILE, scratch_folder

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    abandoned = tmp_path / "spikeflops-compare-old"
    (abandoned / "tree").mkdir(parents=True)
    (abandoned / OWNER_FILE).write_text(dead.stdout.strip())
    mine = tmp_path / "spikeflops-compare-live"
    mine.mkdir()
    (mine / OWNER_FILE).write_text(str(os.getpid()))
    with scratch_folder("spikeflops-compare-") as work:
        assert work.is_dir()
    assert not abandoned.exists() and mine.exists()

    # the finished run told its user where its rounds are: the next command (even one that fails) keeps it
    with pytest.raises(RuntimeError):
        with scratch_folder("spikeflops-compare-") as failing:
            raise RuntimeError("refused")
    assert work.is_dir() and not failing.exists()


def test_compare_and_bisect_unregister_only_their_own_lost_worktrees(tmp_path, monkeypatch):
    """A user's worktree whose folder is briefly absent stays registered (its index kept); a worktree under a
    killed compare's pruned scratch folder is removed. Never a repository-wide `git worktree prune`."""
    import shutil
    import tempfile

    from spikeflops.gitrepo import git, prune_own_worktrees

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q",
                    "--allow-empty", "-m", "a"], check=True)
    users, ours = tmp_path / "my-worktree", tmp_path / "tmp" / "spikeflops-compare-x1" / "base"
    git(repo, "worktree", "add", "--detach", str(users), "HEAD")
    git(repo, "worktree", "add", "--detach", str(ours), "HEAD")
    shutil.move(users, tmp_path / "moved-away")                # the user's folder, briefly elsewhere
    shutil.rmtree(ours.parent)                                 # a killed compare's, pruned
    assert prune_own_worktrees(repo, "spikeflops-compare-") == [str(ours)]
    listed = git(repo, "worktree", "list", "--porcelain")
    assert f"worktree {users}" in listed and f"worktree {ours}" not in listed


def test_the_gate_will_not_write_over_a_file_it_reads(tmp_path):
    base = _write(tmp_path / "base.json", _step_run([0.010, 0.011, 0.012]))
    cand = _write(tmp_path / "cand.json", _step_run([0.010, 0.011, 0.012]))
    before = _fingerprint(tmp_path)
    for option in ("--out", "--markdown"):
        _one_line_refusal(cli("gate", base, cand, option, cand), "is a results file this gate reads")
    assert _fingerprint(tmp_path) == before


def test_calibrate_skips_asvs_own_files_and_names_the_file_after_the_runs_machine_in_the_ignored_folder(tmp_path):
    runs = [_write(tmp_path / "m" / f"run{i}.json", _step_run([0.010 + i * 1e-4, 0.011, 0.012], machine="far-away"))
            for i in range(2)]
    _write(tmp_path / "m" / "machine.json", {"machine": "far-away", "version": 1})
    out = tmp_path / "spikeflops-out" / "calibration"      # never results/: a documented command dirties nothing
    proc = subprocess.run([sys.executable, "-m", "spikeflops.cli", "calibrate", *map(str, runs),
                           str(tmp_path / "m" / "machine.json")], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert "left out 1 asv file" in proc.stderr
    assert [p.name for p in out.iterdir()] == ["far-away-spikeflops-run.json"]
    assert not (tmp_path / "results").exists()


def test_a_broken_extra_workload_table_is_one_line_even_for_help(tmp_path):
    (tmp_path / "broken_table.py").write_text("raise RuntimeError('my table is broken')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
           "SPIKEFLOPS_EXTRA_WORKLOADS": "broken_table"}
    proc = subprocess.run([sys.executable, "-m", "spikeflops.cli", "--help"], capture_output=True, text=True, env=env)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "my table is broken" in lines[0], proc.stderr


def test_a_stopped_kit_keeps_what_the_stage_measured_in_kit_json(tmp_path, monkeypatch):
    """The kit stopped mid-stage (Ctrl-C, SIGTERM): the stage's partial lines go into kit.json, none stays apart."""
    from spikeflops.gpukit import runner
    from spikeflops.results.fileio import read_json

    class Stage:
        name, kind, what, needs = "gpt-rows", "rows", "a stage", None

        def budget(self, plan):
            return 60.0

        def describe(self, plan):
            return self.what

    def stopped_stage(stage, plan, out_dir, *args, **kwargs):
        (out_dir / f"partial-{stage.name}.jsonl").write_text(json.dumps({"entry": {"family": "GPTFlops"}}) + "\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_stage", stopped_stage)
    with pytest.raises(KeyboardInterrupt):
        runner.run_kit("cpu", tmp_path, [Stage()], 120.0, None, None, False, [], say=lambda m: None)
    kit = read_json(tmp_path / "kit.json")
    assert kit["results"] == [{"family": "GPTFlops"}] and kit["kit"]["stages"][0]["status"] == "stopped"
    assert not list(tmp_path.glob("partial-*"))


def test_a_killed_counting_run_leaves_no_folder_that_the_next_count_keeps(tmp_path, monkeypatch):
    """A counted run killed by SIGKILL leaves its spikeflops-count-* folder; the next count prunes it (its
    owner is dead), and leaves a live owner's alone."""
    import tempfile

    from workloads import counting
    from workloads.errors import SpikeflopsError
    from workloads.isolate import OWNER_FILE

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = tmp_path / "spikeflops-count-killed"
    left.mkdir()
    (left / OWNER_FILE).write_text(dead.stdout.strip())
    (left / "callgrind.out.1").write_text("x" * 1000)
    live = tmp_path / "spikeflops-count-live"
    live.mkdir()
    (live / OWNER_FILE).write_text(str(os.getpid()))
    monkeypatch.setattr(counting, "unavailable", lambda: None)
    with pytest.raises(SpikeflopsError, match="names no step factory"):      # refused after the prune
        counting.count([{"case": {}}])
    assert not left.exists() and live.exists()
