"""Instruction counts (valgrind's callgrind): the same in two processes, and a +1 % change of work is flagged by
the gate with the functions that grew named. Work is added as a Python loop, never as a wall-clock spin
(waiting is no extra work under valgrind). Skipped with the reason where valgrind is missing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from jobs import run_job
from gate_fixtures import cli
from workloads.counting import unavailable

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))]
READS_ONE_RUN = pytest.mark.xdist_group("valgrind-counting")     # one worker runs its readers: it runs once

ROOT = Path(__file__).resolve().parents[1]
SUPERSPIKE = {"step": "workloads.superspike.counted:torch_step", "steps": 10,
              "case": {"backend": "torch", "device": "cpu", "size": "ci"}}
# the counted GPT rows' case (workloads/gpt/table.py COUNTED_CASES, COUNTED_BATCH, COUNTED_CONTEXT)
GPT_TRAIN = {"step": "workloads.gpt.counted:step", "steps": 1,
             "case": {"size": "gpt-nano", "variant": "fast", "dtype": "float32", "device": "cpu", "mode": "train",
                      "batch": 2, "context_length": 64}}


def _run_file(path, family, params, metric, result, python_metric=None):
    from spikeflops.results import ResultEntry

    entry = ResultEntry(family, params, {metric: "instructions"}, {})
    entry.metrics[metric] = result["instructions"]
    entry.parts[metric] = result["functions"]
    if python_metric:                   # the same case's Python line events, as the counted family records them
        entry.units[python_metric] = "line events"
        entry.metrics[python_metric] = result["python_lines"]
        entry.parts[python_metric] = result["python_functions"]
    path.write_text(json.dumps({"format": "spikeflops-run/1", "machine_name": "m",
                                "machine": {"cpu": "c", "cpu_count": 2}, "commit": "a" * 40,
                                "date": "2026-12-01T00:00:00+00:00", "results": [entry.to_dict()]}))
    return path


# ~386 instructions an iteration (the loop adds big ints): about +1.1 % of each step
SUPERSPIKE_LOOP, GPT_LOOP = 30, 3000
LOOP_FUNCTION = "workloads/counting.py:_with_extra_work.<locals>.step"      # where the loop is written

COUNTING_JOB = """
import json, sys
from workloads.counting import count
ss, gpt, ss_loop, gpt_loop = json.loads(sys.argv[2])
first = count([ss])[0]
again = count([ss])[0]
ss_more = count([dict(ss, extra_loop=ss_loop)])[0]     # each first in its process: the same state before it
gpt_plain, gpt_more = count([gpt, dict(gpt, extra_loop=gpt_loop)])
json.dump(dict(first=first, again=again, ss_plain=first, ss_more=ss_more, gpt_plain=gpt_plain,
               gpt_more=gpt_more), open(sys.argv[1], "w"))
"""


@pytest.fixture(scope="module")
def counting_run(tmp_path_factory) -> dict:
    """Four processes under valgrind (about 3 minutes of one core), once for the tests that read them (one
    xdist group: one worker runs them)."""
    folder = tmp_path_factory.mktemp("counting")
    run = run_job([sys.executable, "-c", COUNTING_JOB, folder / "counts.json",
                   json.dumps([SUPERSPIKE, GPT_TRAIN, SUPERSPIKE_LOOP, GPT_LOOP])], folder,
                  env={"PYTHONPATH": str(ROOT)}, timeout_s=900)
    assert run.returncode == 0, run.tail()
    return json.loads((run.folder / "counts.json").read_text())


@READS_ONE_RUN
def test_an_unchanged_step_counts_the_same_in_two_processes(counting_run):
    first, again = counting_run["first"], counting_run["again"]
    assert "error" not in first and "error" not in again, (first.get("error"), again.get("error"))
    assert first["instructions"] > 100_000
    # the gate's threshold for instruction counts is 0.5 %: an A/A pair of one checkout must sit well inside it
    # (400 A/A pairs of consecutive processes spread -0.203 .. +0.227 %: docs/gate.md)
    assert abs(again["instructions"] / first["instructions"] - 1) < 0.0025, (first["instructions"],
                                                                             again["instructions"])


@READS_ONE_RUN
def test_one_percent_more_work_in_a_superspike_step_fails_the_gate_and_names_what_grew(counting_run, tmp_path):
    plain, more = counting_run["ss_plain"], counting_run["ss_more"]
    growth = more["instructions"] / plain["instructions"] - 1
    assert 0.005 < growth < 0.03, growth            # the injection is about +1 % of the step
    params = {"backend": "torch", "device": "cpu", "size": "ci"}
    base = _run_file(tmp_path / "base.json", "SuperSpikeInstructions", params, "instructions_per_step", plain,
                     "python_lines_per_step")
    cand = _run_file(tmp_path / "cand.json", "SuperSpikeInstructions", params, "instructions_per_step", more,
                     "python_lines_per_step")
    proc = cli("gate", base, cand, "--out", tmp_path / "gate.json")
    assert proc.returncode == 1 and "SuperSpikeInstructions.instructions_per_step" in proc.stdout, proc.stdout
    record = json.loads((tmp_path / "gate.json").read_text())
    (grew,) = [a for a in record["attributions"] if a["family"] == "functions"]
    top = max(grew["parts"], key=lambda p: p["candidate"] - p["baseline"])
    assert top["candidate"] > top["baseline"] and "grew most in" in proc.stdout
    # and in the user's code: the function the loop was written into, named first
    assert f"grew most in Python functions in {LOOP_FUNCTION}" in proc.stdout, proc.stdout
    assert cli("gate", base, base).returncode == 0


@READS_ONE_RUN
def test_one_percent_more_work_in_a_gpt_training_step_fails_the_gate(counting_run, tmp_path):
    plain, more = counting_run["gpt_plain"], counting_run["gpt_more"]
    assert "error" not in plain and "error" not in more, (plain.get("error"), more.get("error"))
    growth = more["instructions"] / plain["instructions"] - 1
    assert 0.005 < growth < 0.03, growth
    params = {"size": "gpt-nano", "variant": "fast", "mode": "train", "batch": "2"}
    base = _run_file(tmp_path / "base.json", "GPTInstructions", params, "instructions", plain, "python_lines")
    cand = _run_file(tmp_path / "cand.json", "GPTInstructions", params, "instructions", more, "python_lines")
    proc = cli("gate", base, cand)
    assert proc.returncode == 1 and "GPTInstructions.instructions" in proc.stdout and "grew most in" in proc.stdout
    assert f"grew most in Python functions in {LOOP_FUNCTION}" in proc.stdout, proc.stdout
    # the Python work of the step itself repeats exactly: only the loop's function grew
    grown = {k for k in more["python_functions"] if more["python_functions"][k] != plain["python_functions"].get(k)}
    assert grown == {LOOP_FUNCTION}, grown


@pytest.mark.skipif(__import__("platform").machine() != "x86_64", reason="the CPUID probe is x86-64 only")
def test_the_probe_reads_the_cpu_and_valgrind_shows_its_own():
    """The probe's CPUID reading is the host's model name natively; under valgrind it is the CPU valgrind
    presents, the same on every probe: what a count's portability is decided on."""
    from workloads import counting
    from workloads.cpuid import presented_cpu

    model = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
             if ln.startswith("model name")][0]
    assert presented_cpu()["brand"] == model
    first = counting._probe_counting_machine()
    assert first is not None and first["valgrind"].startswith("valgrind-") and first["cpu"]["vendor"]
    assert first == counting._probe_counting_machine()


def test_the_dump_parser_reads_a_real_second_case_dump_whose_summary_line_wrapped(tmp_path):
    """A real callgrind dump (valgrind 3.19, the counted process's second case: instrumentation switched off
    and on again) says "summary: 4783" where the step executed 1,395,773 instructions: the parser takes
    "totals:" and the cost lines, never the summary."""
    import gzip

    from workloads.counting import read_dump

    dump = tmp_path / "callgrind.out.2"
    dump.write_bytes(gzip.decompress((ROOT / "tests" / "data" / "callgrind-second-case.out.gz").read_bytes()))
    assert "summary: 4783\n" in dump.read_text()
    total, functions = read_dump(dump)
    assert total == 1_395_773
    assert 0.999 * total <= sum(functions.values()) <= total       # every function down to 99.9 % is kept


@pytest.mark.parametrize("text", ["events: Ir\n", "events: Ir\ntotals: 0\n", "events: Ir\nfn=f\n0 -500\ntotals: -500\n"])
def test_a_dump_with_nothing_counted_is_an_error_not_a_count(tmp_path, text):
    from workloads.counting import read_dump

    (tmp_path / "d").write_text(text)
    with pytest.raises(ValueError, match="nothing was counted"):
        read_dump(tmp_path / "d")


@pytest.mark.parametrize("value", [0.0, -500.0, float("inf"), 12.0])
def test_the_gate_refuses_an_instruction_count_that_no_step_can_have(tmp_path, value):
    good = {"instructions": 1_000_000.0, "functions": {"f": 1_000_000.0}}
    params = {"backend": "torch", "device": "cpu", "size": "ci"}
    base = _run_file(tmp_path / "base.json", "SuperSpikeInstructions", params, "instructions_per_step", good)
    cand = _run_file(tmp_path / "cand.json", "SuperSpikeInstructions", params, "instructions_per_step",
                     {"instructions": value, "functions": {"f": value}})
    proc = cli("gate", base, cand)
    # refused by the reader (negative, infinite: impossible) or the gate (zero, too small: no count), one line
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stdout + proc.stderr
    assert "instructions_per_step" in proc.stderr and ("is no count" in proc.stderr or "impossible" in proc.stderr)


def test_the_counted_process_gets_nothing_of_the_callers_shell(monkeypatch, tmp_path):
    """Variables that choose code paths (ATen's CPU capability, OpenMP, MKL, glibc tunables, LD_*) or only move
    the heap (a large one) never reach the counted process: its environment is a fixed allow-list."""
    from workloads.counting import counted_environment

    for name, value in (("ATEN_CPU_CAPABILITY", "default"), ("OMP_NUM_THREADS", "7"), ("MKL_CBWR", "COMPATIBLE"),
                        ("GLIBC_TUNABLES", "glibc.cpu.hwcaps=-AVX2"), ("LD_PRELOAD", "/x.so"), ("BIG", "x" * 100_000)):
        monkeypatch.setenv(name, value)
    env = counted_environment("/root", str(tmp_path))
    assert set(env) == {"PATH", "LC_ALL", "PYTHONHASHSEED", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "HOME",
                        "TMPDIR", "SPIKEFLOPS_CACHE"}
    assert env["PYTHONHASHSEED"] == "0" and env["PYTHONPATH"] == "/root" and env["HOME"] == str(tmp_path)


def test_the_threshold_column_shows_the_counted_threshold_as_half_a_percent(tmp_path):
    plain = {"instructions": 1_000_000.0, "functions": {"f": 1_000_000.0}}
    params = {"backend": "torch", "device": "cpu", "size": "ci"}
    base = _run_file(tmp_path / "base.json", "SuperSpikeInstructions", params, "instructions_per_step", plain)
    proc = cli("gate", base, base, "--all")
    (row,) = [ln for ln in proc.stdout.splitlines() if "SuperSpikeInstructions.instructions_per_step" in ln]
    assert " 0.5%" in row and " 0%" not in row, row
