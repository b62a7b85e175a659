"""Long commands that a few test modules read (a GPU-kit rehearsal, an asv run, a pytest-benchmark run),
started in the background when the session starts, one after another, while the other modules run in
the foreground: the machine has two cores and most tests keep one busy. The modules that read them run
last (tests/conftest.py), so by then their command has usually ended, and a test waits only for what is
left of it. Only the commands that a selected test asks for are run; a module run alone runs its command
when its test asks.

A test module registers the command behind a fixture's name with ``@early.command(name)`` and takes its
finished run with ``early.take(name)``. Each command's CPU seconds are charged to the test that takes
it (tests/testcosts.py), never to the test that happened to be running when it ended.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from testcosts import charge_background, reap_background

ROOT = Path(__file__).resolve().parents[1]
POLL_S = 0.1


@dataclass(frozen=True)
class Command:
    """What to run: its arguments, environment entries added to this process's, and a time limit."""

    argv: list[str]
    env: dict = field(default_factory=dict)
    timeout_s: float = 1500.0
    meta: dict = field(default_factory=dict)      # what its maker made for the reader (commits, paths)


@dataclass(frozen=True)
class Finished:
    """A command that ended: its exit status, its output, the folder it was given, its CPU and wall seconds."""

    name: str
    returncode: int
    stdout: str
    stderr: str
    folder: Path
    cpu_s: float
    wall_s: float
    timed_out: bool = False
    meta: dict = field(default_factory=dict)

    def tail(self, chars: int = 4000) -> str:
        """The end of both outputs, for an assertion's message."""
        return f"{self.name}: exit {self.returncode}{' (timed out)' if self.timed_out else ''}\n" \
               f"{self.stdout[-chars:]}\n{self.stderr[-chars:]}"


_MAKERS: dict[str, Callable[[Path], Command]] = {}     # fixture name -> makes its command, given a folder
_RUNS: dict[str, "_Run"] = {}
_LOCK = threading.Lock()
_STOPPING = threading.Event()
_SCRATCH: list[Path] = []
_SESSION_START = time.monotonic()
_CURRENT = threading.local()         # the run whose maker is preparing, in this thread


def command(name: str):
    """Registers ``make(folder) -> Command`` as the command behind the fixture ``name``."""
    def register(make: Callable[[Path], Command]):
        _MAKERS[name] = make
        return make
    return register


def names() -> set[str]:
    return set(_MAKERS)


class _Run:
    def __init__(self, name: str):
        self.name = name
        self.ended = threading.Event()
        self.finished: Finished | None = None
        self.error: BaseException | None = None
        self.taken = False
        self.started = False
        self.began_s = 0.0           # seconds after the session's start
        self.waited_s = 0.0          # how long its reader waited for it
        self.prepare_cpu_s = 0.0     # CPU of its maker's steps (early.prepare)

    def run(self) -> None:
        self.started = True
        self.began_s = time.monotonic() - _SESSION_START
        folder = Path(tempfile.mkdtemp(prefix=f"spikeflops-early-{self.name}-"))
        _SCRATCH.append(folder)
        try:
            self.finished = self._run_in(folder)
        except BaseException as exc:        # a broken maker: raised again in the test that takes it
            self.error = exc
        finally:
            self.ended.set()

    def _run_in(self, folder: Path) -> Finished:
        _CURRENT.run = self
        try:
            cmd = _MAKERS[self.name](folder)
        finally:
            _CURRENT.run = None
        out, err = folder / "stdout.txt", folder / "stderr.txt"
        t0 = time.monotonic()
        with open(out, "w") as sink_out, open(err, "w") as sink_err:
            if _STOPPING.is_set():
                return Finished(self.name, -signal.SIGTERM, "", "the session ended first", folder, 0.0, 0.0)
            # a session of its own: its whole tree can be stopped at once
            proc = subprocess.Popen(cmd.argv, cwd=ROOT, env={**os.environ, **cmd.env}, stdout=sink_out,
                                    stderr=sink_err, start_new_session=True)
        timed_out = False

        def stop_it() -> bool:
            nonlocal timed_out
            timed_out = not _STOPPING.is_set() and time.monotonic() - t0 > cmd.timeout_s
            return timed_out or _STOPPING.is_set()

        cpu = _reaped(proc, POLL_S, stop_it)
        return Finished(self.name, proc.returncode, out.read_text(errors="replace"), err.read_text(errors="replace"),
                        folder, cpu + self.prepare_cpu_s, time.monotonic() - t0, timed_out, cmd.meta)


def prepare(argv: list[str], cwd: Path | None = None) -> str:
    """A short step of a maker (a git clone, a commit): run to its end, its output returned, its CPU seconds
    counted with its command's. Fails with its output if it fails."""
    with tempfile.TemporaryFile("w+") as sink:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT, text=True)
        cpu = _reaped(proc, 0.01)
        sink.seek(0)
        output = sink.read()
    run = getattr(_CURRENT, "run", None)
    if run is not None:
        run.prepare_cpu_s += cpu
    else:                              # called in a test: its CPU is that test's
        charge_background(cpu)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))}: exit {proc.returncode}\n{output[-2000:]}")
    return output.strip()


def _reaped(proc: subprocess.Popen, poll_s: float, stop_it: Callable[[], bool] = lambda: False) -> float:
    """Waits for ``proc`` (its whole process group is killed once ``stop_it()`` is true) and returns its CPU
    seconds. Reaped here, never by Popen: os.wait4 gives this command's own CPU seconds."""
    killed = False
    while (ended := reap_background(proc.pid)) is None:
        if not killed and stop_it():
            killed = True
            _stop_group(proc.pid)
        time.sleep(poll_s)
    status, cpu = ended
    proc.returncode = os.waitstatus_to_exitcode(status)      # Popen must not wait for it again
    return cpu


def _stop_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def start(wanted: list[str]) -> None:
    """Runs the commands named, in this order, one at a time, in a background thread."""
    with _LOCK:
        queue = [_RUNS.setdefault(name, _Run(name)) for name in wanted if name not in _RUNS]

    def lane():
        for run in queue:
            run.run()

    if queue:
        threading.Thread(target=lane, name="early commands", daemon=True).start()


def take(name: str) -> Finished:
    """The finished run of ``name``'s command: the background one (waited for), else one run now. Its CPU
    seconds are charged to the test calling this, once."""
    with _LOCK:
        run = _RUNS.get(name)
        foreground = run is None
        if foreground:
            run = _RUNS[name] = _Run(name)
    t0 = time.monotonic()
    if foreground:
        run.run()
    run.ended.wait()
    run.waited_s = time.monotonic() - t0
    if run.finished is None:
        raise RuntimeError(f"the background command {name!r} could not run: {run.error!r}") from run.error
    with _LOCK:
        if not run.taken:
            run.taken = True
            charge_background(run.finished.cpu_s)
    return run.finished


def summary() -> list[str]:
    """A line per command run this session: when it started and ended (seconds into the session), its
    CPU seconds, and how long its reader waited for it."""
    lines = []
    for run in _RUNS.values():
        done = run.finished
        if done is None:
            lines.append(f"{run.name}: {'could not run: ' + repr(run.error) if run.error else 'not run'}")
            continue
        lines.append(f"{run.name}: {run.began_s:.0f} -> {run.began_s + done.wall_s:.0f} s, {done.cpu_s:.1f} CPU s, "
                     f"exit {done.returncode}" + (f", its reader waited {run.waited_s:.0f} s" if run.taken else
                                                  ", never taken"))
    return lines


def stop() -> None:
    """At the session's end: stops a command still running (its loop sees this within POLL_S and stops its
    whole group), starts no other, removes their folders."""
    _STOPPING.set()
    for run in list(_RUNS.values()):
        if run.started:
            run.ended.wait(timeout=30)
    for folder in _SCRATCH:
        shutil.rmtree(folder, ignore_errors=True)
