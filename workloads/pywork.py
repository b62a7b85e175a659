"""Python-level work of a step, counted per function: where it grew, named in the user's own code.

Instruction counts name the interpreter (``_PyEval_EvalFrameDefault``, ``PyLong_FromLong``) when Python work
grows, and a wait adds no instruction at all. This pass runs a prepared step with a line tracer
(``sys.settrace``): each function's own line events per step, keyed by its file and qualified name. For the
same program the count is the same in every process, on every machine (no clock is read), so two commits'
counts diffed name the functions whose own Python work changed: a loop added to a step, a ``time.sleep``
line, a new tensor op's line. Keys hold no line numbers, so a comment that moves code leaves them alone.

What it cannot see: work in C (a tensor op's kernel counts one line however large), other threads, and the
size of a wait (``time.sleep(0.003)`` is one line, like ``time.sleep(3)``). It names where; the timing,
counted and blocked metrics say how much.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

# named parts kept of a count (a step's Python functions here, its native functions in workloads.counting):
# every one down to this share of the total, at most KEEP_MOST, so that a part of either side is not made to
# "grow from 0" by a cut, and a pathological count stays a small file
KEEP_SHARE, KEEP_MOST = 0.999, 2000

_ROOT = str(Path(__file__).resolve().parent.parent) + os.sep
_SITE_MARKERS = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")
_STDLIB = os.path.dirname(os.__file__) + os.sep


def function_key(code) -> str:
    """``path:qualified name`` of a code object: the path relative to this checkout, to the package folder
    it was installed in, or to the standard library; never a line number (a comment above must not move it)."""
    path = code.co_filename
    # an installed package first: a virtual environment may sit inside the checkout (.venv/lib/.../torch)
    marker = next((m for m in _SITE_MARKERS if m in path), None)
    if marker is not None:
        path = path.rsplit(marker, 1)[1]
    elif path.startswith(_ROOT):
        path = path[len(_ROOT):]
    elif path.startswith(_STDLIB):
        path = path[len(_STDLIB):]
    return f"{path}:{getattr(code, 'co_qualname', code.co_name)}"


def count_lines(step, steps: int = 1) -> tuple[float, dict[str, float]]:
    """Line events per call of ``step`` (called ``steps`` times on this thread, traced): the total, and per
    function, largest first, down to KEEP_SHARE of the total. A tracer already set (a debugger, coverage) is a
    RuntimeError: this would replace it and count nothing it expects."""
    if sys.gettrace() is not None:
        raise RuntimeError("a tracer is already set on this thread (a debugger or coverage): Python work "
                           "cannot be counted under it")
    by_code: dict = {}

    def on_line(frame, event, arg):
        if event == "line":
            code = frame.f_code
            by_code[code] = by_code.get(code, 0) + 1
        return on_line

    def on_call(frame, event, arg):
        return on_line                     # every new frame traced: its own lines count to its function

    steps = max(1, int(steps))
    sys.settrace(on_call)
    try:
        for _ in range(steps):
            step()
    finally:
        sys.settrace(None)
    by_function: dict[str, int] = {}
    for code, n in by_code.items():
        key = function_key(code)
        by_function[key] = by_function.get(key, 0) + n
    return sum(by_function.values()) / steps, keep_largest({k: n / steps for k, n in by_function.items()})


def keep_largest(counts: dict) -> dict:
    """The largest of ``counts`` (name -> count), largest first, until they cover KEEP_SHARE of the total."""
    total = sum(counts.values())
    kept: dict[str, float] = {}
    covered = 0.0
    for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if covered >= KEEP_SHARE * total or len(kept) >= KEEP_MOST:
            break
        kept[name] = n
        covered += n
    return kept


def traceable() -> str | None:
    """Why Python work cannot be counted on this thread now, or None."""
    if sys.gettrace() is not None or (threading.gettrace() if hasattr(threading, "gettrace") else None):
        return "a tracer is already set (a debugger or coverage): Python work is not counted under it"
    return None
