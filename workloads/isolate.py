"""Run one measurement in a process of its own, so that a library which ends the process (GeNN calls
``exit(1)`` or aborts from C++ on a CUDA error) costs that case only: it becomes one recorded failure
instead of the loss of a whole run's results."""

from __future__ import annotations

import subprocess

from .errors import SpikeflopsError


def die_with_parent(parent_pid: int) -> None:
    """This process ends when ``parent_pid`` does, even by SIGKILL (which leaves the parent no time to clean
    up): Linux's parent-death signal, and a check for a parent that died before it was set."""
    import os
    import signal
    import sys

    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:
        os._exit(1)


def _child(conn, fn, args, parent_pid) -> None:
    die_with_parent(parent_pid)
    try:
        conn.send(("ok", fn(*args)))
    except SpikeflopsError as exc:
        conn.send(("refused", str(exc)))
    except BaseException as exc:  # noqa: BLE001 - sent to the parent, which raises it there
        conn.send(("crashed", f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"))
    finally:
        conn.close()


def in_child(fn, *args):
    """``fn(*args)`` in a fresh interpreter (spawned: no inherited thread pools); its result, its
    SpikeflopsError, or a SpikeflopsError naming the exit code when the process ended without an answer."""
    import multiprocessing
    import os

    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, fn, args, os.getpid()), daemon=True)
    proc.start()
    send.close()
    try:
        try:
            kind, payload = receive.recv()
        except EOFError:                       # the process ended before it answered
            proc.join()
            code = proc.exitcode
            how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
            raise SpikeflopsError(f"the case's own process {how} before it returned a result "
                                  "(GeNN ends the process on a CUDA error)") from None
        proc.join()
    finally:
        if proc.is_alive():                    # interrupted: the child goes with us
            proc.terminate()
            proc.join()
        receive.close()
    if kind == "refused":
        raise SpikeflopsError(payload)
    if kind == "crashed":
        raise RuntimeError(payload)
    return payload


def stop_group(proc, grace_s: float = 10.0) -> None:
    """SIGTERM to ``proc``'s process group (``proc`` was started in a session of its own), SIGKILL after
    ``grace_s``: the process and everything it started end, whether or not they clean up in time."""
    import os
    import signal
    import subprocess

    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


# The guard of a process group: a tiny interpreter outside the group that holds the read end of a pipe whose
# write end only the parent holds. EOF means the parent ended, however it ended (SIGKILL included): the
# guard then stops whatever is left of the group, SIGTERM first, SIGKILL after a grace.
_GUARD = """
import os, select, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
pgid, grace = int(sys.argv[1]), float(sys.argv[2])
def alive():
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False
while True:
    ready, _, _ = select.select([0], [], [], 1.0)
    if ready and not os.read(0, 64):
        break
for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
    if not alive():
        break
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        break
    end = time.monotonic() + wait
    while time.monotonic() < end and alive():
        time.sleep(0.05)
"""


class GroupProcess(subprocess.Popen):
    """``subprocess.Popen(cmd, start_new_session=True, ...)`` whose whole process group ends with this
    process even when this process is SIGKILLed (no time to clean up): a guard process watches for our
    death and stops the group. Torchrun's ranks, asv's benchmarks and a GeNN build all live in the group.
    Once the command is reaped, the guard is told (its pipe closed), stops any straggler and is reaped too."""

    def __init__(self, cmd, *, guard_grace_s: float = 2.0, **popen_kwargs):
        import os
        import sys

        self._guard = self._guard_pipe = None
        super().__init__(cmd, start_new_session=True, **popen_kwargs)
        read, write = os.pipe()
        try:
            self._guard = subprocess.Popen([sys.executable, "-S", "-c", _GUARD, str(self.pid), str(guard_grace_s)],
                                           stdin=read, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                           start_new_session=True)
            self._guard_pipe = write
        except OSError:
            os.close(write)
        finally:
            os.close(read)

    def wait(self, timeout=None):
        code = super().wait(timeout)
        self._release_guard()
        return code

    def poll(self):
        code = super().poll()
        if code is not None:
            self._release_guard()
        return code

    def _release_guard(self):
        import os

        if self._guard_pipe is not None:
            os.close(self._guard_pipe)
            self._guard_pipe = None
            try:
                self._guard.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._guard.kill()


def run_group(cmd, *, grace_s: float = 10.0, **popen_kwargs):
    """``subprocess.run(cmd, ...)`` in a session of its own, so that when this process is stopped (Ctrl-C,
    SIGTERM) the command and the processes it started are stopped with it, SIGTERM first so they can
    clean up (subprocess.run would SIGKILL the command alone and leave its children running)."""
    import subprocess

    with GroupProcess(cmd, **popen_kwargs) as proc:
        try:
            out, err = proc.communicate()
        except BaseException:
            stop_group(proc, grace_s)
            raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def private_temp_env(folder, env: dict) -> dict:
    """``env`` with the temporary folder moved to ``folder`` (removed by the caller however the command
    ends, so nothing it or its children leave there outlives it), except torch's compile cache, which is
    meant to outlive a command: it stays where torch keeps it, so a later command reuses it."""
    import getpass
    import os
    import tempfile

    try:
        user = getpass.getuser()
    except (KeyError, OSError):            # no name for this uid (a container): torch falls back the same way
        user = "unknown"
    default_cache = os.path.join(tempfile.gettempdir(), f"torchinductor_{user}")
    return {**env, "TORCHINDUCTOR_CACHE_DIR": env.get("TORCHINDUCTOR_CACHE_DIR", default_cache), "TMPDIR": str(folder)}


# ---------------------------------------------------------------- scratch folders and their owners

OWNER_FILE = ".owner"
FINISHED_FILE = ".finished"          # a scratch folder whose command ended well: kept, never pruned
ABANDONED_AFTER_S = 24 * 3600        # a scratch folder of an older version (no owner file) this old is abandoned


def owner_id(pid: int) -> str | None:
    """``pid`` and its start time (Linux): a pid reused by another process does not pass for the owner."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            start = f.read().rsplit(")", 1)[1].split()[19]
        return f"{pid} {start}"
    except (OSError, IndexError):
        return None


def _owner_alive(text: str) -> bool:
    import os

    pid = int(text.split()[0])
    if " " in text:
        return owner_id(pid) == text
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def prune_abandoned(prefix: str) -> list:
    """Remove the scratch folders named ``prefix*`` in the temp folder whose owner is dead; returns them."""
    import shutil
    import tempfile
    import time
    from pathlib import Path

    pruned = []
    for folder in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            if folder.is_symlink() or not folder.is_dir():
                continue
            owner = folder / OWNER_FILE
            if (folder / FINISHED_FILE).is_file():
                continue
            if owner.is_file():
                abandoned = not _owner_alive(owner.read_text().strip())
            else:
                abandoned = time.time() - folder.stat().st_mtime > ABANDONED_AFTER_S
        except (OSError, ValueError, IndexError):
            continue
        if abandoned:
            shutil.rmtree(folder, ignore_errors=True)
            pruned.append(folder)
    return pruned
