"""Every command and argument, with each kind of bad value: exit 2, one line on stderr, no traceback.

Run in-process through ``spikeflops.cli.main``: any exception other than the CLI's own one-line
error escapes and fails the test, so a traceback cannot hide behind an exit status. Each case
must be refused before any measurement starts, and must leave existing results untouched.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from spikeflops.cli import main

ROOT = Path(__file__).resolve().parents[1]


READS_ONE_RUN = pytest.mark.xdist_group("bad-input-files")     # its cases on one worker: `bad_files` is made once


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "empty.json").write_text("")
    (d / "binary.json").write_bytes(bytes(range(256)) * 4)
    (d / "empty.ras").write_text("")
    (d / "binary.ras").write_bytes(b"\x00\xff\xfe" * 100)
    (d / "words.ras").write_text("hello world\n")
    (d / "negative.ras").write_text("-1.0 3\n")
    (d / "huge.ras").write_text("0.5 5000\n")
    (d / "long.ras").write_text("99.0 1\n")
    (d / "seed.ras").write_text("0.1 197\n1.5 3\n")      # the demo's network: 200 outputs over 1.89 s
    (d / "folder").mkdir()
    (d / "wheels").mkdir()
    (d / "wheels" / "broken-1.0-py3-none-any.whl").write_bytes(b"not a zip")
    (d / "twice").mkdir()
    for version in ("1.0", "1.1"):
        (d / "twice" / f"thop-{version}-py3-none-any.whl").write_bytes(b"")
    (d / "empty_results").mkdir()
    (d / "bad.toml").write_text("[threshold.time]\nthreshold = -1\n")
    (d / "bad_direction.toml").write_text("[[metric]]\nmatch = '*'\ndirection = 'sideways'\n")
    (d / "no_time.toml").write_text("[threshold.'FLOP count']\nthreshold = 0\n")
    (d / "not.toml").write_text("this is = = not toml\n")
    return d


def _asv_result():
    runs = sorted((ROOT / "results" / "asv").glob("*/*.json"))
    runs = [r for r in runs if r.name != "machine.json"]
    return str(runs[-1]) if runs else None


# (arguments, text the one error line must contain); "{d}" is the folder of bad files
CASES = [
    # numbers: zero, negative, not a number
    ("gpt flops --sizes gpt-nano --batch 0", "--batch: must be a whole number >= 1"),
    ("gpt flops --sizes gpt-nano --batch -1", "--batch: must be a whole number >= 1"),
    ("gpt flops --sizes gpt-nano --batch many", "--batch: must be a whole number >= 1"),
    ("gpt flops --sizes gpt-nano --context-length 0", "--context-length: must be a whole number >= 1"),
    ("gpt mfu --sizes gpt-nano --device cpu --batch -3", "--batch: must be a whole number >= 1"),
    ("gpt mfu --sizes gpt-nano --device cpu --repeats 0", "--repeats: must be a whole number >= 1"),
    ("gpt mfu --sizes gpt-nano --device cpu --warmup -1", "--warmup: must be a whole number >= 0"),
    ("gpt max-batch --sizes gpt-nano --device cpu --cap 0 --memory-limit 1GiB", "--cap: must be a whole number >= 1"),
    ("gpt max-batch --sizes gpt-nano --device cpu --memory-limit -5GiB", "memory"),
    ("gpt max-batch --sizes gpt-nano --device cpu --memory-limit 0", "memory"),
    ("gpt max-batch --sizes gpt-nano --device cpu --memory-limit lots", "cannot read memory size"),
    ("gpt max-batch --sizes gpt-nano --device cpu --memory-limit 20000000TiB", "cannot cap this process's address space"),
    ("gpt mfu --sizes gpt-nano --device cpu --precision autocast", "autocast needs a lower-precision dtype"),
    ("gpt mfu --sizes gpt-nano --device cpu --precision half", "--precision: invalid choice"),
    ("gpt scale --nproc 0 --device cpu", "--nproc: must be a whole number >= 1"),
    ("gpt scale --nproc 2 --device cpu --local-batch -2", "--local-batch: must be a whole number >= 1"),
    ("gpt scale --nproc 2 --device cpu --strategy zero", "--strategy: invalid choice"),
    ("gpt scale --nproc 2 --device tpu", "--device: invalid choice"),
    ("gpt scale --nproc 2 --device cpu --sizes gpt-huge", "unknown model size"),
    ("gpt scale --nproc 2 --device cpu --port 0", "--port: must be a whole number >= 1"),
    ("gpt scale --nproc 2 --device cpu --max-batch", "needs --memory-limit"),
    ("gpt scale --nproc 2 --device cpu --max-batch --memory-limit lots", "cannot read memory size"),
    ("gpt scale --nproc 2 --device cpu --out {d}/folder", "is a folder"),
    ("gpt max-batch --sizes gpt-nano --device cpu", "needs a memory budget"),
    ("gpt max-batch --sizes gpt-mini --device cpu --mode train --memory-limit 8MiB", "batch 1 does not fit"),
    ("superspike --num-trials 0", "--num-trials: must be a whole number >= 1"),
    ("superspike --num-trials -2", "--num-trials: must be a whole number >= 1"),
    ("superspike --seed -1", "--seed: must be a whole number >= 0"),
    ("superspike --record-trial -1", "--record-trial: must be a whole number >= 0"),
    ("superspike --num-trials 2 --record-trial 5", "--record-trial 5 outside 0..1"),
    ("superspike --target-error 0", "--target-error: must be a finite number > 0"),
    ("superspike --target-error nan", "--target-error: must be a finite number > 0"),
    # unknown names
    ("gpt flops --sizes gpt-huge", "unknown model size 'gpt-huge'"),
    ("gpt mfu --sizes gpt-nano --dtype float8", "invalid choice: 'float8'"),
    ("gpt mfu --sizes gpt-nano --device tpu", "device"),
    ("gpt mfu --sizes gpt-nano --device cpu --gpu 'Voodoo 5'", "unknown GPU 'Voodoo 5'"),
    ("gpt mfu --sizes gpt-nano --variant turbo", "invalid choice: 'turbo'"),
    ("gpt mfu --frobnicate", "unrecognized arguments: --frobnicate"),
    ("superspike --backend nest", "invalid choice: 'nest'"),
    ("superspike --size huge", "invalid choice: 'huge'"),
    ("superspike --device tpu --num-trials 1", "device"),
    ("run --profile nightly", "invalid choice: 'nightly'"),
    ("run --families GPTNothing", "unknown family 'GPTNothing'"),
    ("nonsense", "invalid choice"),
    # file arguments: missing, empty, binary, a folder, malformed
    ("superspike --target-file {d}/missing.ras", "no such target file"),
    ("superspike --target-file {d}/empty.ras", "holds no spikes"),
    ("superspike --target-file {d}/binary.ras", "cannot read target file"),
    ("superspike --target-file {d}/folder", "cannot read target file"),
    ("superspike --target-file {d}/words.ras", "not a number pair"),
    ("superspike --target-file {d}/negative.ras", "negative or not finite"),
    ("superspike --target-file {d}/huge.ras", "fit no network size"),
    ("superspike --target-file {d}/long.ras", "fit no network size"),
    ("superspike --size ci --target-file {d}/seed.ras", "use --size full"),
    ("superspike --save-data --num-trials 1", "--save-data writes the spikes of recorded trials"),
    ("superspike --backend genn --cuda-graph --num-trials 1", "--cuda-graph applies to the torch backend only"),
    ("superspike --backend genn --compile --num-trials 1", "--compile applies to the torch backend only"),
    ("gate {d}/missing.json {d}/missing.json", "no such file or folder"),
    ("gate {d}/empty.json {d}/empty.json", "not valid JSON"),
    ("gate {d}/binary.json {d}/binary.json", "cannot read"),
    ("gate {d}/empty_results {d}/empty_results", "no results files in this folder"),
    ("gate {asv} {asv} --config {d}/bad.toml", "threshold must be a finite number >= 0"),
    ("gate {asv} {asv} --config {d}/bad_direction.toml", "[[metric]] tables are the old format"),
    ("gate {asv} {asv} --config {d}/no_time.toml", "no [threshold.'time'] for metric"),
    ("gate {asv} {asv} --config {d}/not.toml", "not valid TOML"),
    ("gate {asv} {asv} --config {d}/missing.toml", "no such gate configuration file"),
    ("gate {asv} {asv} --config {d}/folder", "gate configuration"),
    ("gate {asv} {asv} --config {d}/binary.json", "gate configuration"),
    ("gate {asv} {asv} --noise vibes", "argument --noise: 'vibes': choose from"),
    ("gate {asv} {asv} --history 3", "--history needs a folder"),
    ("gate {d}/empty_results {asv} --history 3", "needs at least 2 earlier results"),
    ("gate {d}/empty_results {asv} --history 0", "--history: must be a whole number >= 1"),
    ("report {d}/empty_results --out-dir {d}/report", "no results"),
    ("report {d}/missing --out-dir {d}/report", "no such file or folder"),
    ("report --config {d}/bad.toml", "threshold must be a finite number >= 0"),
    ("dashboard {d}/missing", "no index.html"),
    ("dashboard {d}/empty_results", "index.html"),
    ("dashboard {d}/html --publish --config {d}/missing.json", "no such asv configuration"),
    ("dashboard {d}/html --publish --config {d}/binary.json", "not a readable asv configuration"),
    ("gpt flops --sizes gpt-nano --out {d}/folder", "--out: "),
    ("run --families GPTFlops --out {d}/folder", "--out: "),
    ("gate {asv} {asv} --markdown {d}/folder", "--markdown: "),
    ("gate {asv} {asv} --out {d}/folder", "--out: "),
    ("error-rates --sizes 0,fast", "--sizes '0,fast'"),
    ("error-rates --sizes -0.1", "each slowdown must be a fraction"),
    ("error-rates --counted 2 --sizes abc", "--sizes 'abc'"),           # refused before any process is counted
    ("error-rates --counted 2 --sizes inf", "each slowdown must be a fraction"),
    ("error-rates --counted 2 --sizes nan", "each slowdown must be a fraction"),
    ("error-rates --trials 0", "--trials: must be a whole number >= 1"),
    ("error-rates --out {d}/folder", "--out: "),
    ("compare HEAD HEAD --max-rounds 0", "--max-rounds: must be a whole number >= 1"),
    ("info --register-asv-machine version", "asv machine name 'version'"),
    ("info --register-asv-machine ../../../x", "asv machine name '../../../x'"),
    ("bisect HEAD~1 HEAD --metric GPTOpCount.operators --machine ../../../x", "asv machine name '../../../x'"),
    ("bisect HEAD~1 HEAD --metric GPTStep.time_step --rounds 0", "--rounds: must be a whole number >= 1"),
    ("kit --plan tpu", "--plan: invalid choice"),
    ("kit --plan rehearsal --stages nope", "unknown kit stage 'nope'"),
    ("kit --plan rehearsal --stages ,", "--stages: name at least one stage"),
    ("kit --plan rehearsal --time-scale 0", "--time-scale: must be a finite number > 0"),
    ("kit --plan rehearsal --budget -5", "--budget: must be a finite number > 0"),
    ("kit --plan rehearsal --stage-budget gpt-max-batch", "give STAGE=SECONDS"),
    ("kit --plan rehearsal --stage-budget gpt-max-batch=-1", "give STAGE=SECONDS"),
    ("kit --plan rehearsal --stage-budget nope=5", "unknown kit stage 'nope'"),
    ("kit --plan rehearsal --stages gpt-flops --stage-budget genn=5", "genn is not among the stages run"),
    ("kit --plan rehearsal --wheels {d}/missing", "missing: no such folder"),
    ("kit --plan rehearsal --wheels {d}/folder", "holds no wheels"),
    ("kit --plan rehearsal --wheels {d}/wheels --out-dir {d}/kit-out", "the carried wheels did not install"),
    ("kit --plan rehearsal --wheels {d}/twice", "more than one wheel of a project"),
    ("kit --prepare-wheels {d}/w --for-python python3", "--for-python 'python3'"),
    ("kit --plan rehearsal --genn-source {d}/folder", "not GeNN's source"),
    ("kit --plan rehearsal --out-dir {d}", "exists and is not an empty folder"),
    ("kit --plan rehearsal --out-dir {d}/empty.json", "exists and is not an empty folder"),
]


@READS_ONE_RUN
@pytest.mark.parametrize("command,needle", CASES, ids=[c for c, _ in CASES])
def test_bad_input_is_one_line_and_exit_2(command, needle, bad_files, capsys, monkeypatch):
    asv = _asv_result()
    if "{asv}" in command and asv is None:
        pytest.skip("needs a committed asv results file")
    monkeypatch.setenv("SPIKEFLOPS_PROFILE", "ci")
    before = _fingerprint(ROOT / "results")
    import shlex

    argv = shlex.split(command.format(d=bad_files, asv=asv))
    try:
        status = main(argv)
    except SystemExit as exc:                 # argparse's own errors
        status = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert status == 2, (command, err)
    assert lines and "error:" in lines[-1] and needle in lines[-1], (command, err)
    assert [line for line in lines if "error:" in line] == [lines[-1]], (command, err)
    assert "Traceback" not in err, err
    assert _fingerprint(ROOT / "results") == before, "a refused command changed committed results"


def _fingerprint(folder: Path) -> dict:
    return {str(p): hashlib.sha1(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
            and not os.path.basename(p).startswith(".")}
