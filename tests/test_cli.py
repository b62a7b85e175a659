import json
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


def test_gpt_flops_table_and_json():
    proc = spikeflops("gpt", "flops", "--sizes", "gpt-small", "--json")
    assert proc.returncode == 0, proc.stderr
    (rec,) = json.loads(proc.stdout)
    assert f"{rec['forward_thop']:.1e}" == "5.1e+11"
    assert rec["forward_exact"] > rec["forward_thop"]
    table = spikeflops("gpt", "flops", "--sizes", "gpt-small", "gpt-xl")
    assert "5.1e+11" in table.stdout and "6.4e+12" in table.stdout


def test_max_batch_writes_json_and_never_a_failed_batch(tmp_path):
    out = tmp_path / "mb.json"
    proc = spikeflops("gpt", "max-batch", "--sizes", "gpt-nano", "--device", "cpu", "--dtype", "float32",
                      "--mode", "train", "--memory-limit", "128MiB", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    (rec,) = json.loads(out.read_text())["records"]
    fits = {p["batch"]: p["fits"] for p in rec["probes"]}
    assert fits[rec["max_batch"]] is True and fits[rec["max_batch"] + 1] is False
    assert "out of memory" in proc.stderr      # progress is shown


def test_asv_configuration_and_benchmarks_are_valid():
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    asv = shutil.which("asv")
    assert asv, "asv is a test dependency"
    proc = subprocess.run([asv, "check", "--python=same"], cwd=root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "No problems found" in proc.stdout, proc.stdout + proc.stderr
