"""Nothing lost on interruption: a command killed midway (SIGINT, SIGTERM, SIGHUP or SIGKILL) leaves earlier
results intact, no half-written file where a reader would take it for a result, and no process or temporary
folder of its own behind it."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from leftovers import digest_tree, new_tag, survivors, wait_for_descendant
from synthetic_history import synthetic_asv_results

pytestmark = pytest.mark.e2e          # the end-to-end tier (pyproject.toml markers)

COMMANDS = {
    "superspike": ["superspike", "--backend", "torch", "--size", "ci", "--num-trials", "200", "--out-dir", "{out}"],
    "run": ["run", "--profile", "ci", "--families", "SuperSpikeConvergence", "--out", "{out}/run.json"],
}


def _interruptible():
    # a shell that runs this suite in the background starts it with SIGINT ignored, and children inherit
    # that; a user's Ctrl-C reaches a foreground command, so the child starts with the default handler
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _digest(folder: Path) -> dict:
    return {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL],
                         ids=["SIGINT", "SIGTERM", "SIGHUP", "SIGKILL"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_killed_command_keeps_earlier_results_and_leaves_no_partial_file(tmp_path, command, sig):
    out = tmp_path / "out"
    out.mkdir()
    earlier = {"format": "spikeflops-run/1", "note": "an earlier result that must survive"}
    (out / "run.json").write_text(json.dumps(earlier))        # the very file `run` would write
    (out / "earlier-superspike.json").write_text(json.dumps(earlier))
    before = _digest(out)
    args = [a.format(out=out) for a in COMMANDS[command]]
    env = {**os.environ, "SPIKEFLOPS_PROFILE": "ci", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "spikeflops.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, preexec_fn=_interruptible)
    # wait until it is measuring (its first progress line), then interrupt it
    first = proc.stderr.readline()
    assert first, "the command printed no progress"
    time.sleep(3)
    assert proc.poll() is None, "the command ended before it could be interrupted"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "interrupted" in err.strip().splitlines()[-1], err
        assert "Traceback" not in err, err
    elif sig in (signal.SIGTERM, signal.SIGHUP):        # unwound like Ctrl-C, exit 128 + the signal
        assert proc.returncode == 128 + sig and "stopped by" in err.strip().splitlines()[-1], err
        assert "Traceback" not in err, err
    else:
        assert proc.returncode == -signal.SIGKILL
    assert _digest(out) == before, "an earlier result changed or a new (partial) file appeared"
    assert not [p for p in out.rglob("*") if p.suffix in (".json", ".csv", ".png") and p.name not in before]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_a_killed_asv_run_keeps_earlier_results_and_leaves_only_readable_files(tmp_path, sig):
    import shutil

    from spikeflops.results.records import load

    root = Path(__file__).resolve().parents[1]
    committed = sorted(p for p in (root / "results" / "asv").glob("*/*.json") if p.name != "machine.json")
    assert committed, "the committed asv baseline is missing"
    machine = "asv-interrupt-test"
    results = tmp_path / "results"
    (results / machine).mkdir(parents=True)
    earlier = results / machine / committed[0].name
    shutil.copy(committed[0], earlier)
    shutil.copy(root / "results" / "asv" / "benchmarks.json", results / "benchmarks.json")
    before = hashlib.sha1(earlier.read_bytes()).hexdigest()
    conf = json.loads((root / "asv.conf.json").read_text())
    conf.update(repo=str(root), benchmark_dir=str(root / "benchmarks"), env_dir=str(tmp_path / "env"),
                results_dir=str(results), html_dir=str(tmp_path / "html"))
    (tmp_path / "asv.conf.json").write_text(json.dumps(conf))
    env = {**os.environ, "HOME": str(tmp_path), "SPIKEFLOPS_PROFILE": "ci", "PYTHONUNBUFFERED": "1"}
    subprocess.run([shutil.which("asv"), "machine", "--yes", "--machine", machine], env=env, capture_output=True,
                   timeout=120)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
    proc = subprocess.Popen([shutil.which("asv"), "run", "--config", str(tmp_path / "asv.conf.json"),
                             "--python=same", "--quick", "--machine", machine, "--set-commit-hash", head,
                             "-b", "GPTFlops|GPTOpCount|GPTStep"], cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            preexec_fn=_interruptible)
    for line in proc.stdout:                              # wait until benchmarks are running
        if "%]" in line:
            break
    time.sleep(2)
    assert proc.poll() is None, "asv ended before it could be interrupted"
    os.killpg(proc.pid, sig) if sig == signal.SIGKILL else proc.send_signal(sig)
    proc.communicate(timeout=120)
    assert hashlib.sha1(earlier.read_bytes()).hexdigest() == before, "the earlier asv result changed"
    for path in (results / machine).glob("*.json"):      # whatever asv left must be a whole result
        if path.name != "machine.json":
            assert load(path).measurements is not None


def _start_tagged(args, tmp_path, tag):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, **tag, "SPIKEFLOPS_PROFILE": "ci", "PYTHONUNBUFFERED": "1", "TMPDIR": str(scratch)}
    proc = subprocess.Popen([sys.executable, "-m", "spikeflops.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    return proc, scratch


def _stopped_cleanly(proc, sig, tag, scratch):
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig and err.strip().splitlines()[-1] == f"spikeflops: stopped by {sig.name}", err
    assert "Traceback" not in err, err
    left = survivors(tag)
    assert not left, f"processes outlived the command: {left}"
    # torch's compile cache (torchinductor_<user>) lives in the temporary folder by design and is kept
    left = [p.name for p in scratch.iterdir() if not p.name.startswith("torchinductor_")]
    assert not left, f"temporary files left: {left}"


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stopped_report_keeps_the_earlier_report_whole_and_leaves_nothing(tmp_path, sig):
    """A report stopped while drawing leaves the earlier report (its markdown and its plots) as it was:
    never an old report.md beside new plots, nor a report.md missing, nor a half-made folder."""
    results = tmp_path / "results"
    synthetic_asv_results(results, 300)
    out = tmp_path / "report"
    (out / "plots").mkdir(parents=True)
    (out / "report.md").write_text("# an earlier report\n")
    (out / "plots" / "GPTStep.time_step.png").write_bytes(b"an earlier plot")
    (out / ".spikeflops-output").write_text(json.dumps({"format": "spikeflops-output/2",     # the tool's own
                                                        "files": ["plots/GPTStep.time_step.png", "report.md"]}))
    before, inputs = digest_tree(out), digest_tree(results)
    tag = new_tag()
    proc, scratch = _start_tagged(["report", str(results), "--out-dir", str(out)], tmp_path, tag)
    for line in proc.stderr:                      # stop it while it draws
        if "plot 2/" in line:
            break
    assert proc.poll() is None, "the report ended before it could be stopped"
    proc.send_signal(sig)
    _stopped_cleanly(proc, sig, tag, scratch)
    assert digest_tree(out) == before, "the earlier report changed, or a partial one was left"
    assert not [p for p in out.iterdir() if p.name not in ("report.md", "plots", ".spikeflops-output")], \
        list(out.iterdir())
    assert digest_tree(results) == inputs


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stopped_scaling_run_leaves_no_torchrun_rank_or_temp_folder(tmp_path, sig):
    """torchrun and its ranks run in a session of their own (so a terminal's signal does not reach them
    first); a stopped scaling run must still stop all of them and remove its folder."""
    out = tmp_path / "out"
    out.mkdir()
    tag = new_tag()
    proc, scratch = _start_tagged(["gpt", "scale", "--nproc", "2", "--device", "cpu", "--repeats", "200",
                                   "--out", str(out / "scale.json")], tmp_path, tag)
    wait_for_descendant(tag, "workloads.gpt.scale_rank")
    time.sleep(3)                                 # the ranks are past rendezvous and training
    assert proc.poll() is None, "the scaling run ended before it could be stopped"
    proc.send_signal(sig)
    _stopped_cleanly(proc, sig, tag, scratch)
    assert not list(out.iterdir()), list(out.iterdir())


@pytest.mark.slow
def test_a_scaling_run_killed_by_sigkill_leaves_no_torchrun_rank(tmp_path):
    """SIGKILL leaves the command no time to stop anything: the guard of torchrun's process group does it."""
    out = tmp_path / "out"
    out.mkdir()
    tag = new_tag()
    proc, _ = _start_tagged(["gpt", "scale", "--nproc", "2", "--device", "cpu", "--repeats", "200",
                             "--out", str(out / "scale.json")], tmp_path, tag)
    wait_for_descendant(tag, "workloads.gpt.scale_rank")
    time.sleep(2)
    assert proc.poll() is None, "the scaling run ended before it could be killed"
    proc.kill()
    proc.communicate(timeout=30)
    left = survivors(tag, grace_s=5.0)
    assert not left, f"processes outlived a SIGKILLed command by 5 s: {left}"
