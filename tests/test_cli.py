import json
import os
import time
import subprocess
import sys

import pytest


def spikeflops(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "spikeflops.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def assert_one_line_error(proc, needle):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    # progress lines may come first; the error is one line, the last one
    errors = [line for line in lines if "error:" in line]
    assert errors == [lines[-1]] and needle in lines[-1], proc.stderr


@pytest.mark.parametrize("args,needle", [
    # the whole table of bad input runs in-process (test_bad_input.py); here the real process's exit path
    (["gpt", "flops", "--batch", "0"], "--batch: must be a whole number >= 1"),
    (["superspike", "--target-file", "/nonexistent.ras", "--num-trials", "1"], "no such target file"),
])
def test_bad_input_gives_one_line_and_exit_2(args, needle):
    assert_one_line_error(spikeflops(*args), needle)


@pytest.mark.e2e                     # end-to-end: a real subprocess run (the e2e tier)
def test_gpt_flops_table_and_json():
    proc = spikeflops("gpt", "flops", "--sizes", "gpt-small", "--json")
    assert proc.returncode == 0, proc.stderr
    (rec,) = json.loads(proc.stdout)
    assert f"{rec['forward_thop']:.1e}" == "5.1e+11"
    assert rec["forward_exact"] > rec["forward_thop"]
    table = spikeflops("gpt", "flops", "--sizes", "gpt-small", "gpt-xl")
    assert "5.1e+11" in table.stdout and "6.4e+12" in table.stdout
    assert "counting FLOPs of gpt-xl (2/2)" in table.stderr        # long counts show progress


@pytest.mark.e2e                     # end-to-end: a real subprocess run (the e2e tier)
def test_max_batch_writes_json_and_never_a_failed_batch(tmp_path):
    out = tmp_path / "mb.json"
    proc = spikeflops("gpt", "max-batch", "--sizes", "gpt-nano", "--device", "cpu", "--dtype", "float32",
                      "--mode", "train", "--memory-limit", "128MiB", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    (rec,) = json.loads(out.read_text())["records"]
    fits = {p["batch"]: p["fits"] for p in rec["probes"]}
    assert fits[rec["max_batch"]] is True and fits[rec["max_batch"] + 1] is False
    assert "out of memory" in proc.stderr      # progress is shown, with what is left of the search
    progress = [line for line in proc.stderr.splitlines() if "gpt-nano train: batch" in line]
    assert "more probes" in progress[0] and progress[-1].endswith("; done"), proc.stderr


def test_asv_configuration_and_benchmarks_are_valid():
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    asv = shutil.which("asv")
    assert asv, "asv is a test dependency"
    proc = subprocess.run([asv, "check", "--python=same"], cwd=root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "No problems found" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.e2e                     # end-to-end: a real subprocess run (the e2e tier)
def test_superspike_runs_as_the_seed_types_it_and_never_overwrites(tmp_path):
    # a target made for the ci network, given without --size: the network is chosen from the file
    target = tmp_path / "small-target.ras"
    target.write_text("".join(f"{0.02 + 0.01 * (i % 40):.3f} {1 + i % 50}\n" for i in range(200)))
    out = tmp_path / "out"
    args = ["superspike", "--backend", "torch", "--target-file", str(target), "--num-trials", "2",
            "--record-trial", "0", "1", "--save-data", "--out-dir", str(out)]
    first = spikeflops(*args)
    assert first.returncode == 0, first.stderr
    assert "using --size ci" in first.stderr
    time.sleep(1.1)                               # names carry the start time to the second
    second = spikeflops(*args)
    assert second.returncode == 0, second.stderr
    records = sorted(out.glob("*.json"))
    assert len(records) == 2 and all("2trials" in p.name for p in records)      # two runs, two records
    rasters = sorted(out.glob("*-rasters.png"))
    assert len(rasters) == 2 and all(p.read_bytes()[:4] == b"\x89PNG" for p in rasters)
    csvs = list(out.glob("*-spikes/output_spikes_1.csv"))
    assert len(csvs) == 2 and all(len(p.read_text().splitlines()) > 1 for p in csvs)
    assert oct(records[0].stat().st_mode & 0o777) == oct(0o666 & ~_umask())     # not mkstemp's 0600


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.e2e                     # end-to-end: a real subprocess run (the e2e tier)
def test_run_writes_a_results_file_with_spread_and_machine_load(tmp_path):
    from spikeflops.results.records import load

    out = tmp_path / "run.json"
    proc = spikeflops("run", "--profile", "ci", "--families", "GPTStep", "GPTFlops", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "load average" in proc.stdout and "range" in proc.stdout and "(n=" in proc.stdout, proc.stdout
    assert "CPU share" in proc.stdout and "of 1 intra-op thread" in proc.stdout, proc.stdout
    # each case on a line of its own, its metrics under it: the table fits 120 columns even unwrapped (a pipe)
    lines = proc.stdout.splitlines()        # (a busy machine adds a contention banner above the table)
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("case / metric")):]
    assert "GPTFlops gpt-nano 4" in table and "  forward_exact" in "\n".join(table), proc.stdout
    assert max(len(line) for line in table) <= 120, proc.stdout
    data = json.loads(out.read_text())
    assert set(data["load"]) >= {"load_before", "load_after", "cores", "cpu_s", "wall_s", "cpu_share"}
    assert data["load"]["cpu_s"] > 0 and data["load"]["wall_s"] > 0
    rs = load(out)
    steps = [m for m in rs.measurements if m.metric == "GPTStep.time_step"]
    # at least the profile's 5 rounds, and on until a second of steps is spent (the ci time budget)
    assert len(steps) == 4 and all(len(m.samples) >= 5 and m.value > 0 for m in steps)
    # the budget is the step's own CPU time on a CPU (torch's helper threads can make it exceed the wall time)
    on_cpu = [m for m in rs.measurements if m.metric == "GPTStep.time_step_on_cpu"]
    assert len(on_cpu) == 4 and all(sum(m.samples) >= 1.0 or len(m.samples) == 5 * 50 for m in on_cpu), \
        [(len(m.samples), sum(m.samples)) for m in on_cpu]
    assert any(m.metric == "GPTFlops.forward_exact" and m.value > 0 for m in rs.measurements)


def test_run_records_a_crashed_case_and_measures_the_rest(monkeypatch):
    # one case that crashes (not a SpikeflopsError) must not lose the others' results of a long GPU run
    import workloads.measure as measure
    from spikeflops.run import measure_rows
    from workloads.profiles import get_profile
    from workloads.registry import select

    rows = select("GPTFlops", "ci")[:1] + select("GPTOpCount", "ci")[:1]
    real_track = measure.track

    def track(row, profile):
        if row.family == "GPTFlops":
            raise RuntimeError("CUDA error: operation not permitted when stream is capturing\nmore detail")
        return real_track(row, profile)

    monkeypatch.setattr(measure, "track", track)
    said = []
    crashed, measured = measure_rows(rows, get_profile("ci"), progress=said.append)
    assert crashed["error"] == "RuntimeError: CUDA error: operation not permitted when stream is capturing"
    assert "error" not in measured and measured["metrics"]["operators"] > 0
    assert any("Traceback" in line for line in said)


def test_run_starts_its_longest_untimed_rows_first():
    from spikeflops.run import runs_alongside, start_order
    from workloads.registry import FAMILIES, select

    rows = [r for f in FAMILIES for r in select(f, "ci") if runs_alongside(r)]
    order = [rows[i] for i in start_order(rows)]
    assert sorted(start_order(rows)) == list(range(len(rows)))              # every row, once
    costs = [FAMILIES[r.family].relative_cost for r in order]
    assert costs == sorted(costs, reverse=True) and costs[0] > costs[-1]
    assert order[0].family == "SuperSpikeConvergence" and order[-1].family != "SuperSpikeConvergence"
    # among equals the table's order stays
    flops_and_counts = [r for r in order if FAMILIES[r.family].relative_cost == 1.0]
    assert flops_and_counts == [r for r in rows if FAMILIES[r.family].relative_cost == 1.0]


def test_run_prints_the_reference_tables_from_its_entries():
    from spikeflops.run import reference_tables

    def entry(family, params, metrics, error=None):
        e = {"family": family, "params": {k: str(v) for k, v in params.items()}, "metrics": metrics}
        return {**e, "error": error} if error else e

    step = dict(size="gpt-small", variant="fast", dtype="bfloat16", device="cuda", mode="train", batch=8,
                compile=False)
    entries = [entry("GPTThroughput", step, {"tokens_per_s": 150000.0, "mfu": 41.5}),
               entry("GPTThroughput", {**step, "variant": "book"}, {}, error="does not fit"),
               entry("GPTFlops", dict(size="gpt-small", batch=8), {"forward_exact": 1.2e12, "train_exact": 3.6e12}),
               entry("GPTMaxBatch", dict(size="gpt-small", variant="fast", dtype="bfloat16", device="cuda",
                                         mode="forward"), {"max_batch": 512.0}),
               entry("SuperSpikeTrial", dict(backend="genn", device="cuda", size="full", compile=False,
                                             cuda_graph=False), {"time_trial": 0.21}),
               entry("SuperSpikeTrial", dict(backend="torch", device="cuda", size="full", compile=True,
                                             cuda_graph=True), {"time_trial": 0.35})]
    (title, headers, rows), (_, _, spike), (_, _, targets) = reference_tables(entries)
    assert len(rows) == 1                                   # the failed case is in the main table, not here
    row = dict(zip(headers, rows[0]))
    assert row["fwd FLOPs"] == "1.200e+12" and row["max batch fwd"] == "512" and row["max batch train"] == "-"
    assert row["tokens/s"] == "150,000" and row["MFU"] == "41.5 %"
    assert spike == [["genn", "cuda", "full", "generated code", "210.00 ms"],
                     ["torch", "cuda", "full", "compiled + cuda graph", "350.00 ms"]]
    assert targets == [["gpt-small training MFU (fast) >= 55 % of the dense bf16 peak", "41.5 %", "missed"],
                       ["SuperSpike torch, CUDA graph: full trial <= 0.1 s", "350.00 ms", "missed"],
                       ["SuperSpike torch, CUDA graph: no slower than GeNN CUDA", "350.00 ms vs 210.00 ms", "missed"]]


@pytest.mark.e2e                     # end-to-end: a real subprocess run (the e2e tier)
@pytest.mark.genn
def test_genn_build_output_stays_off_stdout_so_json_parses(tmp_path):
    # GeNN runs make and a compiler whose lines went to stdout, before the --json record
    import shutil

    shutil.rmtree(tmp_path / "cache", ignore_errors=True)
    env_cache = {"SPIKEFLOPS_CACHE": str(tmp_path / "cache")}    # an empty cache: GeNN builds, make prints
    proc = subprocess.run([sys.executable, "-m", "spikeflops.cli", "superspike", "--backend", "genn",
                           "--num-trials", "1", "--json", "--out-dir", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=900, env={**os.environ, **env_cache})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["backend"] == "genn"
    assert "make" in proc.stderr                  # the build's lines are still shown, on stderr


def test_run_prints_its_tables_when_a_case_fails(monkeypatch, tmp_path, capsys):
    """A failed row had 3 cells in a 4-column table: an IndexError traceback instead of the summary."""
    import workloads.measure as measure
    from spikeflops.cli import main
    from workloads.errors import SpikeflopsError

    def track(row, profile):
        raise SpikeflopsError("this case cannot run here")

    monkeypatch.setattr(measure, "track", track)
    out = tmp_path / "run.json"
    assert main(["run", "--profile", "ci", "--families", "GPTFlops", "--out", str(out)]) == 1
    printed = capsys.readouterr()
    assert "FAILED" in printed.out and "this case cannot run here" in printed.out, printed.out
    assert "Traceback" not in printed.err and out.is_file()


def test_two_runs_in_the_same_second_get_two_files(tmp_path):
    from spikeflops.results.fileio import claim_new, write_json

    first, second = claim_new(tmp_path / "run-x.json"), claim_new(tmp_path / "run-x.json")
    assert first != second and second.name == "run-x-2.json"
    write_json(first, {"a": 1})
    write_json(second, {"b": 2})
    assert json.loads(first.read_text()) == {"a": 1} and json.loads(second.read_text()) == {"b": 2}


def test_superspike_refuses_an_unwritable_out_dir_before_training(tmp_path, monkeypatch, capsys):
    import workloads.superspike.workload as workload
    from spikeflops.cli import main

    def never(*a, **k):
        raise AssertionError("trained before checking --out-dir")

    monkeypatch.setattr(workload, "run_training", never)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["superspike", "--num-trials", "1", "--out-dir", str(blocker / "sub")]) == 2
    assert "cannot make its folder" in capsys.readouterr().err
    assert main(["report", "results", "--out-dir", str(blocker / "sub")]) == 2


def test_run_names_the_cases_it_leaves_out_and_why(tmp_path, monkeypatch, capsys):
    from spikeflops.cli import main

    monkeypatch.setenv("SPIKEFLOPS_CASES", "^GPTFlops")
    assert main(["run", "--profile", "ci", "--families", "GPTFlops", "SuperSpikeOpCount",
                 "--out", str(tmp_path / "run.json")]) == 0
    err = capsys.readouterr().err
    assert "left out 1 case (not selected by SPIKEFLOPS_CASES): SuperSpikeOpCount torch-cpu-ci" in err, err


def test_gate_of_a_run_file_against_asv_results_says_which_command_makes_a_comparable_file(tmp_path):
    from gate_fixtures import cli, committed_asv_runs

    runs = committed_asv_runs()
    if not runs:
        pytest.skip("needs a committed asv results file")
    run_file = tmp_path / "run.json"
    run_file.write_text(json.dumps({"format": "spikeflops-run/1", "machine_name": "m", "machine": {},
                                    "commit": "a" * 40, "date": "2026-01-01T00:00:00+00:00", "results": []}))
    proc = cli("gate", runs[-1].parent, run_file)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and "asv run --python=same" in last and "--noise exact,seeds" in last, proc.stderr
    # timings stay refused across harnesses even when asked for
    assert cli("gate", runs[-1].parent, run_file, "--noise", "exact,timing").returncode == 2


def test_a_run_file_is_gated_against_the_committed_asv_baseline_on_what_every_harness_measures_alike(tmp_path):
    """The newcomer's path: `spikeflops run` of the FLOP and operator counts, gated against the committed asv
    results (another harness, perhaps another CPU) on the exact metrics: the same keys, compared, passed;
    one FLOP count changed in the run file is a regression."""
    from gate_fixtures import cli, committed_asv_runs
    from spikeflops.cli import main

    runs = committed_asv_runs()
    if not runs:
        pytest.skip("needs a committed asv results file")
    run_file = tmp_path / "run.json"
    assert main(["run", "--profile", "ci", "--families", "GPTFlops", "GPTOpCount", "--out", str(run_file)]) == 0
    proc = cli("gate", runs[-1].parent, run_file, "--noise", "exact", "--cross-hardware", "--json")
    assert proc.returncode == 0, proc.stderr
    verdicts = json.loads(proc.stdout)["verdicts"]
    judged = [v for v in verdicts if v["status"] in ("unchanged", "regressed", "improved", "undecided")]
    assert judged and all(v["status"] == "unchanged" for v in judged), verdicts
    assert any(v["metric"].startswith("GPTFlops.") for v in judged), verdicts
    assert "CROSS-HARNESS: asv baseline, spikeflops-run candidate" in cli(
        "gate", runs[-1].parent, run_file, "--noise", "exact", "--cross-hardware").stdout
    data = json.loads(run_file.read_text())
    flops = next(e for e in data["results"] if e["family"] == "GPTFlops")
    name = next(iter(flops["metrics"]))
    flops["metrics"][name] *= 1.01
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(data))
    proc = cli("gate", runs[-1].parent, changed, "--noise", "exact", "--cross-hardware")
    assert proc.returncode == 1 and f"GPTFlops.{name}" in proc.stdout, proc.stdout[-3000:]


def test_the_same_machine_is_the_same_hardware_in_every_harness():
    """asv's machine file says gpu 'none' and its arch; a run file records the arch and no GPU as null: the
    same machine, not a cross-hardware comparison."""
    from types import SimpleNamespace

    from spikeflops.regress.judge import hardware_difference
    from workloads.hardware import machine_facts

    facts = machine_facts()
    assert facts["arch"]
    asv = SimpleNamespace(harness="asv", machine={"machine": "m", "cpu": facts["cpu"], "num_cpu": facts["cpu_count"],
                                                  "arch": facts["arch"], "gpu": "none"})
    run = SimpleNamespace(harness="spikeflops-run", machine={"machine": "m", "cpu": facts["cpu"],
                                                             "num_cpu": facts["cpu_count"], "arch": facts["arch"],
                                                             "gpu": None})
    assert hardware_difference(asv, run) is None
    assert "gpu differs" in hardware_difference(asv, SimpleNamespace(harness="spikeflops-run",
                                                                     machine={**run.machine, "gpu": "NVIDIA H200"}))
    # a file from before run files recorded the arch (the committed test-costs baseline) is the same machine;
    # an arch both sides recorded still decides, and so does the CPU model beside a missing arch
    older = SimpleNamespace(harness="spikeflops-run", machine={k: v for k, v in run.machine.items() if k != "arch"})
    assert hardware_difference(older, run) is None and hardware_difference(run, older) is None
    assert "arch differs" in hardware_difference(run, SimpleNamespace(harness="spikeflops-run",
                                                                      machine={**run.machine, "arch": "aarch64"}))
    assert "cpu differs" in hardware_difference(older, SimpleNamespace(harness="spikeflops-run",
                                                                       machine={**run.machine, "cpu": "Other CPU"}))


@pytest.mark.parametrize("how", ["exit", "abort"])
def test_a_case_whose_process_ends_is_one_recorded_failure_and_the_run_goes_on(monkeypatch, how):
    """GeNN calls exit(1) or aborts on a CUDA error: in its own process that is one failed case."""
    import os

    import workloads.measure as measure
    from spikeflops.run import measure_rows
    from workloads.isolate import in_child
    from workloads.profiles import get_profile
    from workloads.registry import select

    rows = select("GPTFlops", "ci")[:1] + select("GPTOpCount", "ci")[:1]
    real_track = measure.track

    def track(row, profile):
        if row.family == "GPTFlops":            # what a GeNN row does, through the same isolation
            return in_child(os._exit, 1) if how == "exit" else in_child(os.abort)
        return real_track(row, profile)

    monkeypatch.setattr(measure, "track", track)
    entries = measure_rows(rows, get_profile("ci"), progress=lambda msg: None)
    assert len(entries) == 2
    wanted = "exited with code 1" if how == "exit" else "killed by signal 6"
    assert wanted in entries[0]["error"], entries[0]
    assert "error" not in entries[1] and entries[1]["metrics"]["operators"] > 0


def test_registering_with_asv_keeps_a_symlinked_machine_file_a_symlink(tmp_path, monkeypatch):
    from spikeflops.asvmachine import register

    real = tmp_path / "dotfiles" / "asv-machine.json"
    real.parent.mkdir()
    real.write_text(json.dumps({"version": 1, "other": {"machine": "other"}}))
    link = tmp_path / ".asv-machine.json"
    link.symlink_to(real)
    monkeypatch.setenv("ASV_MACHINE_FILE", str(link))
    name, _ = register("bench-box")
    assert link.is_symlink() and name == "bench-box"
    data = json.loads(real.read_text())
    assert set(data) == {"version", "other", "bench-box"}


def test_the_contention_banner_speaks_only_of_what_the_run_measured():
    from spikeflops.commands.run import contention_banner

    counted = contention_banner(0.3, [{"family": "SuperSpikeGeNNInstructions", "metrics": {"instructions_per_step": 1.0}}])
    assert "MACHINE CONTENDED" not in counted and "measured no timing" in counted
    timed = contention_banner(0.3, [{"family": "GPTStep", "metrics": {"time_step": 0.1}},
                                    {"family": "GPTFlops", "metrics": {"train_exact": 1.0}}])
    assert timed.startswith("MACHINE CONTENDED") and "GPTStep.time_step" in timed and "GPTFlops" not in timed


def test_a_counted_process_says_it_is_alive_while_it_runs(monkeypatch, tmp_path):
    """A family counted under valgrind takes minutes: a heartbeat line with the elapsed time and the cases
    done, every HEARTBEAT_S, instead of silence (a stand-in process here, not valgrind)."""
    import subprocess as sp
    import sys

    from workloads import counting

    monkeypatch.setattr(counting, "HEARTBEAT_S", 0.2)
    (tmp_path / "done.json").write_text('[{"dump": 1}]')
    proc = sp.Popen([sys.executable, "-c", "import time; time.sleep(1)"], stdout=sp.PIPE, stderr=sp.PIPE, text=True)
    said = []
    _, timed_out = counting._wait(proc, None, tmp_path / "done.json", 2, said.append)
    assert not timed_out and said and all("counting under valgrind" in s and "1 of 2 cases done" in s for s in said)
    proc = sp.Popen([sys.executable, "-c", "import time; time.sleep(30)"], stdout=sp.PIPE, stderr=sp.PIPE, text=True)
    _, timed_out = counting._wait(proc, 0.5, tmp_path / "done.json", 2, said.append)
    proc.kill()
    proc.communicate()
    assert timed_out


def test_a_terminal_table_wraps_its_last_column_to_120_columns_and_a_pipe_keeps_lines_whole():
    from spikeflops.tables import format_table

    note = "paired over 5 rounds (3 worse): -1.2% .. +3.4% (90% interval, worse direction); " * 3
    rows = [["ok", "GPTStep.time_step(gpt-nano, fast, float32, cpu, train, 4, False)", note.strip()]]
    wrapped = format_table(["", "metric", "note"], rows, columns=120).splitlines()
    assert max(len(line) for line in wrapped) <= 120 and len(wrapped) > 3
    assert " ".join(" ".join(wrapped[2:]).split()) .endswith(" ".join(note.split()))        # nothing lost
    whole = format_table(["", "metric", "note"], rows, columns=None).splitlines()
    assert len(whole) == 3 and whole[2].endswith(note.strip())


def test_the_gate_s_prose_fits_a_terminal_too_and_a_path_stays_whole():
    """The gate's header and closing lines (machines, cross-hardware, blind spots) wrap like its table does."""
    from spikeflops.regress.render import terminal_report

    path = "results/asv/vm-intel-xeon-x2/16d3e613-existing-py3.11-VIRTUALENV_SYSTEM_SITE_PACKAGEStrue.json"
    header = (f"baseline {path} (asv, commit 16d3e613, machine vm-intel-xeon-x2, none)\n"
              "CROSS-HARDWARE: cpu differs: baseline 'Intel(R) Xeon(R) Processor', candidate 'AMD EPYC'; only "
              "portable metrics are judged, and instruction counts where valgrind showed both the same machine")
    wrapped = terminal_report([], header=header, columns=120).splitlines()
    assert all(len(line) <= 120 or path in line for line in wrapped), wrapped
    assert any(path in line for line in wrapped) and len(wrapped) > 3
    assert " ".join(" ".join(wrapped).split()).startswith(" ".join(header.split()))       # nothing lost
    whole = terminal_report([], header=header, columns=None).splitlines()
    assert whole[:2] == header.splitlines()


def test_the_profilers_own_log_lines_stay_out_of_the_output_and_other_lines_pass(capfd):
    """kineto writes `USDT:... profiler_start` to file descriptor 2 around every profiled block: filtered
    there, while every other line written in the block still reaches stderr, in order."""
    import os

    import torch

    from workloads.gpt.breakdown import profile_kinds
    from workloads.quietlogs import without_native_logs

    profile_kinds(lambda: torch.ones(64, 64) @ torch.ones(64, 64), torch.device("cpu"), 2)
    with without_native_logs():
        os.write(2, b"USDT:2026-12-06 SyncActivityProfilerHandler.cpp:52] profiler_start\n")
        os.write(2, b"a warning the user must see\n")
    err = capfd.readouterr().err
    assert "USDT:" not in err and "profiler_start" not in err and "a warning the user must see" in err


def test_the_pytest_benchmark_summary_flags_a_contended_run_and_prints_units_once():
    import importlib.util
    from pathlib import Path
    from types import SimpleNamespace

    spec = importlib.util.spec_from_file_location("bench_conftest", Path(__file__).parents[1] / "benchmarks" / "conftest.py")
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    lines = []
    reporter = SimpleNamespace(section=lambda t: lines.append(t), write_line=lambda t: lines.append(t))
    bench = SimpleNamespace(param="gpt-nano", extra_info={
        "family": "GPTThroughput", "metrics": {"cpu_share": 0.25, "final_error": 3.96e6},
        "units": {"cpu_share": "", "final_error": "van Rossum error"}})
    config = SimpleNamespace(_benchmarksession=SimpleNamespace(benchmarks=[bench]))
    plugin.pytest_terminal_summary(reporter, config)
    text = "\n".join(lines)
    assert "MACHINE CONTENDED" in text and "0.25-0.25" in text
    assert "3.96e+06  van Rossum error" in text and "Mvan" not in text
