"""Run one measurement in a process of its own, so that a library which ends the process (GeNN calls
``exit(1)`` or aborts from C++ on a CUDA error) costs that case only: it becomes one recorded failure
instead of the loss of a whole run's results."""

from __future__ import annotations

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
