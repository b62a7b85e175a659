"""The commands a new user types, as typed: bare `pytest --benchmark-only` times the benchmarks, a GPU
profile on a CPU machine is one line (never a machine's memory), harness runs leave `git status` clean
until `spikeflops keep`, and every command of the README's quick start exists as written."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from gate_fixtures import cli

ROOT = Path(__file__).resolve().parents[1]


def _pytest(*args, env=None):
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})


@pytest.mark.e2e                     # end-to-end: a real subprocess run (the e2e tier)
def test_bare_benchmark_only_collects_the_benchmarks_and_plain_pytest_the_tests():
    bench = _pytest("--benchmark-only", "--collect-only", "-q", env={"SPIKEFLOPS_PROFILE": "ci"})
    ids = [ln for ln in bench.stdout.splitlines() if "::" in ln]
    assert bench.returncode == 0 and ids, bench.stdout + bench.stderr
    assert all(i.startswith("benchmarks/") for i in ids), [i for i in ids if not i.startswith("benchmarks/")][:3]
    tests = _pytest("--collect-only", "-q", "tests/test_stats.py")
    assert tests.returncode == 0 and "tests/test_stats.py::" in tests.stdout


@pytest.mark.e2e                     # end-to-end: a real subprocess run (the e2e tier)
def test_a_timed_pytest_benchmark_run_is_saved_without_being_asked_so_keep_has_it(tmp_path):
    """`pytest --benchmark-only` as the README types it (no --benchmark-save) saves the run, named after its
    commit, into the storage that `spikeflops keep` reads."""
    bench = _pytest("benchmarks/test_pytest_benchmark.py", "-k", "test_GPTFlops", "--benchmark-only",
                    f"--benchmark-storage=file://{tmp_path / 'pytest-benchmark'}", env={"SPIKEFLOPS_PROFILE": "ci"})
    assert bench.returncode == 0, bench.stdout[-2000:] + bench.stderr
    saved = list((tmp_path / "pytest-benchmark").glob("*/*/0001_*_run.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())["benchmarks"], saved


@pytest.mark.skipif(bool(__import__("glob").glob("/dev/nvidia[0-9]*")), reason="this machine has a GPU")
def test_a_gpu_profile_on_a_cpu_machine_is_one_line_in_every_harness():
    bench = _pytest("benchmarks/test_pytest_benchmark.py", "--benchmark-only", env={"SPIKEFLOPS_PROFILE": "regular"})
    assert bench.returncode == 4 and "sized for a GPU runner" in bench.stderr, bench.stdout[-2000:] + bench.stderr
    assert "passed" not in bench.stdout
    run = cli("run", "--profile", "full")
    assert run.returncode == 2 and "sized for a GPU runner" in run.stderr.strip().splitlines()[-1], run.stderr


def test_harness_output_folders_are_ignored_by_git():
    conf = json.loads((ROOT / "asv.conf.json").read_text())
    addopts = re.search(r"--benchmark-storage=file://\./(\S+)", (ROOT / "pyproject.toml").read_text()).group(1)
    for folder in (conf["results_dir"], conf["html_dir"], addopts, "spikeflops-out"):
        probe = f"{folder.rstrip('/')}/machine/probe.json"
        ignored = subprocess.run(["git", "check-ignore", "-q", probe], cwd=ROOT)
        assert ignored.returncode == 0, f"{folder} is not ignored: a harness run would dirty the checkout"


ASV_COLUMNS = ["result", "params", "version", "started_at", "duration", "stats_ci_99_a", "stats_ci_99_b",
               "stats_q_25", "stats_q_75", "stats_number", "stats_repeat", "samples", "profile"]


def _asv_result(commit: str, share: float | None = None) -> str:
    results = {} if share is None else {"bench_gpt.GPTThroughput.track_cpu_share": [[share], [["'gpt-nano'"]], "v1"]}
    return json.dumps({"commit_hash": commit, "env_name": "existing-py_root_venv_bin_python3.11", "date": 1,
                       "params": {"machine": "m1", "python": "/root/venv/bin/python3.11"}, "python": "3.11",
                       "requirements": {}, "env_vars": {"X": ""}, "result_columns": ASV_COLUMNS, "results": results,
                       "durations": {}, "version": 2})


def _local_runs(root: Path) -> Path:
    (root / "asv.conf.json").write_text(json.dumps({"results_dir": ".asv/results"}))
    local = root / ".asv" / "results"
    (local / "m1").mkdir(parents=True)
    (local / "m1" / "machine.json").write_text('{"machine": "m1", "os": "Linux 6.1", "ram": "24"}')
    (local / "m1" / "abc-existing-py_root_venv_bin_python3.11-X.json").write_text(_asv_result("abc"))
    (local / "benchmarks.json").write_text('{"version": 2}')
    saved = root / "spikeflops-out" / "pytest-benchmark" / "m1" / "Linux-CPython-3.11-64bit"
    saved.mkdir(parents=True)
    (saved / "0001_abc_nightly.json").write_text('{"benchmarks": [], "machine_info": {}}')
    return local


def test_keep_copies_new_local_results_into_the_committed_history(tmp_path):
    _local_runs(tmp_path)
    kept = tmp_path / "results" / "pytest-benchmark" / "m1" / "Linux-CPython-3.11-64bit"
    kept.mkdir(parents=True)
    (kept / "0001_old_baseline.json").write_text('{"benchmarks": [1], "machine_info": {}}')
    proc = cli("keep", "--config", tmp_path / "asv.conf.json")
    assert proc.returncode == 0, proc.stderr
    assert "found 1 asv result(s) and 1 pytest-benchmark run(s)" in proc.stderr
    # no interpreter path in a committed name: one name for every --python=same run
    assert (tmp_path / "results" / "asv" / "m1" / "abc-existing-py3.11-X.json").is_file()
    assert (tmp_path / "results" / "asv" / "benchmarks.json").is_file()
    assert sorted(p.name for p in kept.iterdir()) == ["0001_old_baseline.json", "0002_abc_nightly.json"]
    again = cli("keep", "--config", tmp_path / "asv.conf.json")
    assert again.returncode == 2 and "nothing new to keep" in again.stderr


def test_keep_leaves_the_committed_machine_file_and_reports_a_differing_result(tmp_path):
    local = _local_runs(tmp_path)
    committed = tmp_path / "results" / "asv" / "m1"
    committed.mkdir(parents=True)
    (committed / "machine.json").write_text('{"machine": "m1", "os": "Linux 5.0", "ram": "16"}')
    (committed / "abc-existing-py3.11-X.json").write_text(_asv_result("abc").replace('"date": 1', '"date": 2'))
    proc = cli("keep", "--config", tmp_path / "asv.conf.json")
    assert proc.returncode == 0, proc.stderr                 # the pytest-benchmark run is new
    assert json.loads((committed / "machine.json").read_text())["os"] == "Linux 5.0"
    assert "the committed machine file stays (this host differs in os, ram)" in proc.stderr
    assert "differs from the kept results/asv/m1/abc-existing-py3.11-X.json: left as it is" in proc.stderr
    assert '"date": 2' in (committed / "abc-existing-py3.11-X.json").read_text()
    assert local.is_dir()


def test_keep_replaces_an_empty_copy_instead_of_calling_it_kept(tmp_path):
    _local_runs(tmp_path)
    broken = tmp_path / "results" / "asv" / "m1" / "abc-existing-py3.11-X.json"
    broken.parent.mkdir(parents=True)
    broken.write_text("")                                   # what a keep cut off by a full disk once left
    proc = cli("keep", "--config", tmp_path / "asv.conf.json")
    assert proc.returncode == 0 and "empty or unreadable; replaced" in proc.stderr, proc.stderr
    assert json.loads(broken.read_text())["commit_hash"] == "abc"


def test_keep_refuses_a_contended_run_unless_asked(tmp_path):
    local = _local_runs(tmp_path)
    (local / "m1" / "abc-existing-py_root_venv_bin_python3.11-X.json").write_text(_asv_result("abc", share=0.33))
    (tmp_path / "spikeflops-out" / "pytest-benchmark" / "m1" / "Linux-CPython-3.11-64bit" /
     "0001_abc_nightly.json").unlink()
    proc = cli("keep", "--config", tmp_path / "asv.conf.json")
    assert proc.returncode == 2 and "not kept, the machine was contended (CPU share 0.33-0.33" in proc.stderr
    assert not (tmp_path / "results").exists()
    proc = cli("keep", "--config", tmp_path / "asv.conf.json", "--allow-contended")
    assert proc.returncode == 0 and "kept although contended" in proc.stderr, proc.stderr
    assert (tmp_path / "results" / "asv" / "m1" / "abc-existing-py3.11-X.json").is_file()


@pytest.mark.parametrize("where", ["source", "destination"])
def test_keep_refuses_links_on_either_side(tmp_path, where):
    local = _local_runs(tmp_path)
    outside = tmp_path / "outside.json"
    outside.write_text('{"secret": true}')
    if where == "source":
        (local / "m1" / "machine.json").unlink()
        (local / "m1" / "machine.json").symlink_to(outside)
    else:
        (tmp_path / "results" / "asv" / "m1").mkdir(parents=True)
        (tmp_path / "results" / "asv" / "m1" / "abc-existing-py3.11-X.json").symlink_to(outside)
    proc = cli("keep", "--config", tmp_path / "asv.conf.json")
    assert proc.returncode == 2 and "is a symbolic link" in proc.stderr, proc.stderr
    assert outside.read_text() == '{"secret": true}'
    assert not (tmp_path / "results" / "pytest-benchmark").exists()        # refused before any copy


def test_keep_refuses_a_file_that_is_not_the_harness_result(tmp_path):
    local = _local_runs(tmp_path)
    (local / "m1" / "abc-existing-py_root_venv_bin_python3.11-X.json").write_text('{"commit_hash": "abc"}')
    proc = cli("keep", "--config", tmp_path / "asv.conf.json")
    assert proc.returncode == 2 and "not a asv result" in proc.stderr and not (tmp_path / "results").exists()


def test_keep_onto_a_full_disk_is_one_line_and_leaves_nothing_half_written(tmp_path, monkeypatch, capsys):
    """The disk fills while the copy is written: exit 2 with one line, no partial or empty file, and the
    retry copies it (a broken file is never taken for one already kept)."""
    import errno

    import spikeflops.results.fileio as resultsio
    from spikeflops.cli import main

    _local_runs(tmp_path)

    def full(f, text):
        f.write(text[: len(text) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(resultsio, "_fill", full)
    assert main(["keep", "--config", str(tmp_path / "asv.conf.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "No space left on device" in err[-1]
    kept = [p for p in (tmp_path / "results").rglob("*") if p.is_file()]
    assert kept == [], kept                                          # no temporary, partial or empty file
    monkeypatch.undo()
    assert main(["keep", "--config", str(tmp_path / "asv.conf.json")]) == 0
    assert (tmp_path / "results" / "asv" / "m1" / "abc-existing-py3.11-X.json").read_text() == \
        (tmp_path / ".asv" / "results" / "m1" / "abc-existing-py_root_venv_bin_python3.11-X.json").read_text()


def _quick_start() -> list[str]:
    """The commands of the README's quick start block (comments and blank lines left out)."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick start.*?```bash\n(.*?)```", text, re.S)
    assert block, "the README has no quick start block"
    commands = []
    for line in block.group(1).splitlines():
        line = line.split("  #", 1)[0].strip()
        if line and not line.startswith("#"):
            commands += [c.strip() for c in line.split("&&")]
    return commands


def test_every_spikeflops_command_of_the_quick_start_exists_as_written():
    """Each `spikeflops ...` of the README's quick start parses with the options it shows (run with --help
    appended: the real runs are other tests' work), so the README cannot drift from the command line."""
    from spikeflops.cli import build_parser

    shown = [c for c in _quick_start() if c.startswith("spikeflops ")]
    assert len(shown) >= 4, shown
    parser = build_parser()
    for command in shown:
        argv = shlex.split(command)[1:]
        try:
            args = parser.parse_args([a for a in argv if not a.startswith("$(")])
        except SystemExit as exc:
            pytest.fail(f"the README's `{command}` does not parse (exit {exc.code})")
        assert callable(args.func), command


def test_a_kept_run_of_a_venv_without_a_version_in_its_path_names_no_path():
    """A venv's `bin/python` names no version: the kept name asks no path of it ("existing-py3.11" when the
    interpreter can still be asked here, "existing-py" when not), and keeps asv's matrix suffix."""
    import sys

    from spikeflops.results.interpreter import interpreter_version
    from spikeflops.results.keep import kept_name

    env = {"VIRTUALENV_SYSTEM_SITE_PACKAGES": "true"}
    name = "c5e6dbfc-existing-py_tmp_my-venv_bin_python-VIRTUALENV_SYSTEM_SITE_PACKAGEStrue.json"
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert interpreter_version({"params": {"python": sys.executable}}) == here
    assert kept_name(name, here, env) == f"c5e6dbfc-existing-py{here}-VIRTUALENV_SYSTEM_SITE_PACKAGEStrue.json"
    assert kept_name(name, None, env) == "c5e6dbfc-existing-py-VIRTUALENV_SYSTEM_SITE_PACKAGEStrue.json"
