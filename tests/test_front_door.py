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


def test_bare_benchmark_only_collects_the_benchmarks_and_plain_pytest_the_tests():
    bench = _pytest("--benchmark-only", "--collect-only", "-q", env={"SPIKEFLOPS_PROFILE": "ci"})
    ids = [ln for ln in bench.stdout.splitlines() if "::" in ln]
    assert bench.returncode == 0 and ids, bench.stdout + bench.stderr
    assert all(i.startswith("benchmarks/") for i in ids), [i for i in ids if not i.startswith("benchmarks/")][:3]
    tests = _pytest("--collect-only", "-q", "tests/test_stats.py")
    assert tests.returncode == 0 and "tests/test_stats.py::" in tests.stdout


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


def test_keep_copies_new_local_results_into_the_committed_history(tmp_path):
    (tmp_path / "asv.conf.json").write_text(json.dumps({"results_dir": ".asv/results"}))
    local = tmp_path / ".asv" / "results"
    (local / "m1").mkdir(parents=True)
    (local / "m1" / "machine.json").write_text('{"machine": "m1"}')
    (local / "m1" / "abc-env.json").write_text('{"commit_hash": "abc"}')
    (local / "benchmarks.json").write_text('{"version": 2}')
    saved = tmp_path / "spikeflops-out" / "pytest-benchmark" / "m1" / "Linux-CPython-3.11-64bit"
    saved.mkdir(parents=True)
    (saved / "0001_abc_nightly.json").write_text('{"benchmarks": []}')
    kept = tmp_path / "results" / "pytest-benchmark" / "m1" / "Linux-CPython-3.11-64bit"
    kept.mkdir(parents=True)
    (kept / "0001_old_baseline.json").write_text('{"benchmarks": [1]}')
    proc = cli("keep", "--config", tmp_path / "asv.conf.json")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "results" / "asv" / "m1" / "abc-env.json").is_file()
    assert (tmp_path / "results" / "asv" / "benchmarks.json").is_file()
    assert sorted(p.name for p in kept.iterdir()) == ["0001_old_baseline.json", "0002_abc_nightly.json"]
    again = cli("keep", "--config", tmp_path / "asv.conf.json")
    assert again.returncode == 2 and "nothing new to keep" in again.stderr


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
