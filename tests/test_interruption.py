"""Nothing lost on interruption: a command killed midway (SIGINT or SIGKILL) leaves earlier results
intact and no half-written file where a reader would take it for a result."""

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

COMMANDS = {
    "superspike": ["superspike", "--backend", "torch", "--size", "ci", "--num-trials", "200", "--out-dir", "{out}"],
    "run": ["run", "--profile", "ci", "--families", "SuperSpikeConvergence", "--out", "{out}/run.json"],
}


def _digest(folder: Path) -> dict:
    return {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
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
                            stderr=subprocess.PIPE, text=True, env=env)
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
    else:
        assert proc.returncode == -signal.SIGKILL
    assert _digest(out) == before, "an earlier result changed or a new (partial) file appeared"
    assert not [p for p in out.rglob("*") if p.suffix in (".json", ".csv", ".png") and p.name not in before]
