"""One end-to-end command a test module reads (an asv run, a pytest-benchmark run, bisect, compare, the kit
rehearsal, a valgrind count): run to its end in a folder of its own, as a module-scoped fixture.

Parallelism is pytest-xdist's (the README's test command): the tests that read one command share an
``xdist_group``, so the command runs once, on one worker, while the other worker runs the rest of the suite;
``--dist loadgroup`` starts the largest groups first.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Job:
    """A command that ended: its exit status, its output and the folder it was given."""

    argv: list
    returncode: int
    stdout: str
    stderr: str
    folder: Path
    timed_out: bool = False
    meta: dict = field(default_factory=dict)      # what its maker made for the reader (commits, paths)

    def tail(self, chars: int = 4000) -> str:
        """The end of both outputs, for an assertion's message."""
        return f"{' '.join(map(str, self.argv))[:300]}: exit {self.returncode}" \
               f"{' (timed out)' if self.timed_out else ''}\n{self.stdout[-chars:]}\n{self.stderr[-chars:]}"


def run_job(argv: list, folder: Path, env: dict | None = None, timeout_s: float = 1500.0,
            meta: dict | None = None) -> Job:
    """Runs ``argv`` in the checkout's root with ``env`` added to this process's environment; past
    ``timeout_s`` its whole process group is killed (a session of its own: asv and bisect start children)."""
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([str(a) for a in argv], cwd=ROOT, env={**os.environ, **(env or {})}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    except BaseException:                    # interrupted: leave nothing running
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return Job(list(argv), proc.returncode, out, err, folder, timed_out, meta or {})


def run_step(argv: list, cwd: Path | None = None) -> str:
    """A short step of a job's preparation (a git clone, a commit): its output; fails with it if it fails."""
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))}: exit {proc.returncode}\n{(proc.stdout + proc.stderr)[-2000:]}")
    return proc.stdout.strip()
