"""Instructions a step executes, counted by valgrind's callgrind: a timing proxy that a busy co-tenant cannot move.

One process per family measures every counted case it is given (``count(specs)``): Python starts under
callgrind with instrumentation off (importing torch and preparing a model run at valgrind's uninstrumented
speed), and for each case the step is prepared and warmed up, then instrumentation is switched on, the
measured steps run with collection on (``torch._C._valgrind_toggle``), the counts are dumped, and
instrumentation goes off again before the next case is prepared. Each case's dump gives the total and the
functions that executed the most instructions; one more step then runs under a line tracer (workloads.pywork)
for the Python functions whose own work it was (both for "where it grew").

What counts cannot see: memory stalls and cache misses, other threads' work, GPU kernels, and the CPU's own
speed; and valgrind presents one virtual CPU, so libraries pick their code paths for it. oneDNN is switched
off in the counted process (its JIT kernels cost valgrind minutes to translate); the matmuls run MKL's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .errors import SpikeflopsError
from .pywork import keep_largest

def unavailable() -> str | None:
    """Why instructions cannot be counted here, or None."""
    if not sys.platform.startswith("linux"):
        return "instruction counts need valgrind on Linux"
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        return "valgrind is not installed (apt-get install valgrind): instruction counts are skipped"
    return None


_COUNTING_MACHINE: dict = {}


def counting_machine() -> dict | None:
    """What a count depends on besides the code: the CPU valgrind presents (``workloads/cpuid.py`` run under
    it), valgrind's version, the cores, and the Python, torch and numpy versions. Two machines that agree on
    all of it run the same instructions for the same step, whatever their real CPUs; None where valgrind is
    missing or the probe fails. Once per process (about a second)."""
    if "facts" not in _COUNTING_MACHINE:
        _COUNTING_MACHINE["facts"] = None if unavailable() else _probe_counting_machine()
    return _COUNTING_MACHINE["facts"]


def _probe_counting_machine() -> dict | None:
    import platform

    probe = Path(__file__).resolve().parent / "cpuid.py"
    if platform.machine() not in ("x86_64", "AMD64"):
        return None
    try:
        version = subprocess.run(["valgrind", "--version"], capture_output=True, text=True, timeout=60)
        shown = subprocess.run(["valgrind", "-q", "--tool=none", sys.executable, "-S", str(probe)],
                               capture_output=True, text=True, timeout=300)
        cpu = json.loads(shown.stdout.strip().splitlines()[-1]) if shown.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return None
    if not isinstance(cpu, dict):
        return None
    import numpy
    import torch

    return {"valgrind": version.stdout.strip(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__}


# the environment the counted process starts from: nothing of the caller's shell (a variable's size moves the
# heap, and ATEN_CPU_CAPABILITY, OMP_*, MKL_*, GLIBC_TUNABLES or LD_* would choose other code paths), only
# what valgrind, Python and GeNN's build need, at fixed values
def counted_environment(root: str, folder: str) -> dict:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "PYTHONHASHSEED": "0",
            "PYTHONPATH": root, "PYTHONDONTWRITEBYTECODE": "1", "HOME": folder, "TMPDIR": folder,
            "SPIKEFLOPS_CACHE": _cache_dir()}


def _cache_dir() -> str:
    """Where GeNN's generated code is cached (built once, natively, and reused under valgrind)."""
    return os.environ.get("SPIKEFLOPS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "spikeflops")


COUNT_PREFIX = "spikeflops-count-"
SMALLEST_COUNT = 1000               # instructions: a real step executes far more; fewer means nothing was counted


HEARTBEAT_S = 30.0                  # a line this often while a counted process runs: minutes are not a hang


def _stderr_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _wait(proc, timeout_s: float | None, done_path: Path, cases: int, progress) -> tuple[str, bool]:
    """Wait for the counted process, saying every HEARTBEAT_S how long it has run and how many of its cases
    are done; (its stderr, whether it ran past ``timeout_s``)."""
    import time

    start = time.monotonic()
    while True:
        wait = HEARTBEAT_S if timeout_s is None else min(HEARTBEAT_S, max(0.1, timeout_s - (time.monotonic() - start)))
        try:
            _, stderr = proc.communicate(timeout=wait)
            return stderr, False
        except subprocess.TimeoutExpired:
            elapsed = time.monotonic() - start
            if timeout_s is not None and elapsed >= timeout_s:
                return "", True
            try:
                done = len(json.loads(done_path.read_text()))
            except (OSError, ValueError):
                done = 0
            progress(f"    counting under valgrind: {elapsed:.0f} s, {done} of {cases} case{'s' if cases != 1 else ''} "
                     "done")


def count(specs: list[dict], timeout_s: float | None = None, progress=_stderr_line) -> list[dict]:
    """Run ``specs`` in one process under callgrind; per spec ``{"instructions": total per step, "functions":
    {name: per step}}`` or ``{"error": why}``. A spec is ``{"step": "package.module:factory", "case": {...},
    "steps": N}``, optionally with ``"extra_loop": N`` (a Python loop of N iterations after each step: work
    added on purpose). The factory, called with ``case``, prepares outside the instrumented span and returns
    ``(step, close)``. ``timeout_s``: the process is stopped after it, and its cases not yet done fail.
    ``progress`` gets a heartbeat line every HEARTBEAT_S."""
    why = unavailable()
    if why:
        raise SpikeflopsError(why)
    from .isolate import OWNER_FILE, GroupProcess, owner_id, prune_abandoned, stop_group

    # a run killed by SIGKILL cannot remove its folder: those of dead owners go first
    prune_abandoned(COUNT_PREFIX)

    for spec in specs:
        if not isinstance(spec.get("step"), str) or ":" not in spec["step"]:
            raise SpikeflopsError(f"a counted spec names no step factory ('module:function'): {spec!r}")
    with tempfile.TemporaryDirectory(prefix=COUNT_PREFIX) as tmp:
        tmp = Path(tmp)
        (tmp / OWNER_FILE).write_text(owner_id(os.getpid()) or str(os.getpid()))
        (tmp / "specs.json").write_text(json.dumps(specs))
        out = tmp / "callgrind.out"
        # no address-space randomisation: where the heap lands moves the alignment prologues of memset and
        # memcpy, two counts 0.1 % apart for the same step from run to run otherwise
        norandom = ["setarch", os.uname().machine, "-R"] if shutil.which("setarch") else []
        cmd = [*norandom, "valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no",
               f"--callgrind-out-file={out}", sys.executable, "-m", "workloads.counting",
               str(tmp / "specs.json"), str(tmp / "done.json")]
        root = str(Path(__file__).resolve().parent.parent)
        home = tmp / "home"
        home.mkdir()
        timed_out = False
        try:
            with GroupProcess(cmd, env=counted_environment(root, str(home)), cwd=root, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) as proc:
                try:
                    stderr, timed_out = _wait(proc, timeout_s, tmp / "done.json", len(specs), progress)
                except BaseException:
                    stop_group(proc, 5.0)
                    raise
                if timed_out:
                    stop_group(proc, 5.0)
                    _, stderr = proc.communicate()
        except OSError as exc:
            raise SpikeflopsError(f"valgrind could not start: {exc}") from None
        done = json.loads((tmp / "done.json").read_text()) if (tmp / "done.json").is_file() else []
        if timed_out and not done:
            raise SpikeflopsError(f"the counted process did not finish within its {timeout_s:.0f} s")
        if proc.returncode != 0 and not done:
            tail = [ln for ln in (stderr or "").strip().splitlines() if not ln.startswith("==")][-3:]
            raise SpikeflopsError(f"the counted process failed (exit {proc.returncode}): {' / '.join(tail)}")
        ended = ("the counted process ran past its time limit before this case" if timed_out
                 else "the counted process ended before this case")
        return [_result(spec, done[i] if i < len(done) else {"error": ended}, out, i)
                for i, spec in enumerate(specs)]


def _result(spec: dict, entry: dict, out: Path, index: int) -> dict:
    if "error" in entry:
        return entry
    dump = Path(f"{out}.{entry['dump']}")
    if not dump.is_file():
        return {"error": f"callgrind wrote no counts for case {index}"}
    try:
        total, functions = read_dump(dump)
    except ValueError as exc:
        return {"error": f"the counts of case {index} cannot be read: {exc}"}
    steps = max(1, int(spec.get("steps", 1)))
    return {"instructions": total / steps, "functions": {name: n / steps for name, n in functions.items()},
            "python_lines": entry["python_lines"], "python_functions": entry["python_functions"]}


def read_dump(path: Path) -> tuple[int, dict[str, int]]:
    """(total instructions, self instructions of every function down to pywork.KEEP_SHARE of the total) of one
    callgrind dump, read from the file itself: valgrind 3.19's "summary:" (and so callgrind_annotate's total)
    wraps below zero in a dump after instrumentation was switched off and on; "totals:" and the cost lines
    are right. A dump with no positive count (empty, zero, negative) is a ValueError: nothing was counted."""
    names: dict[str, str] = {}
    self_cost: dict[str, int] = {}
    total, current, skip_next = None, "?", False
    with open(path, errors="replace") as f:
        for line in f:
            if not line or line[0] in "\n#":
                continue
            if line[0].isdigit() or line[0] in "+-*":
                if skip_next:                              # the inclusive cost of the call just named
                    skip_next = False
                    continue
                parts = line.split()
                if len(parts) >= 2 and parts[1].isdigit():
                    self_cost[current] = self_cost.get(current, 0) + int(parts[1])
                continue
            key, _, value = line.rstrip("\n").partition("=")
            if key in ("fn", "cfn"):
                name = _name(names, value)
                if key == "fn":
                    current = name
            elif key == "calls":
                skip_next = True
            elif line.startswith("totals:"):
                try:
                    total = int(line.split(":", 1)[1].split()[0])
                except (IndexError, ValueError):
                    raise ValueError(f"{path.name}: an unreadable totals line") from None
    counted = sum(self_cost.values())
    if total is None:
        total = counted
    if total < SMALLEST_COUNT or counted <= 0:
        raise ValueError(f"{path.name}: {total} instructions in all, {counted} in its cost lines: nothing was counted")
    # every function down to 99.9 % of the instructions: no "grew from 0" made by a cut (pywork.keep_largest)
    return total, keep_largest(self_cost)


def _name(names: dict[str, str], value: str) -> str:
    """A compressed callgrind name: "(12) name" defines id 12, "(12)" refers to it."""
    value = value.strip()
    if value.startswith("(") and ")" in value:
        ident, _, name = value[1:].partition(")")
        name = name.strip()
        if name:
            names[ident] = name
        return names.get(ident, f"({ident})")
    return value


# ---------------------------------------------------------------- a family's rows, counted in one process

_COUNTED: dict = {}                 # (family, profile, specs) -> results: one valgrind process per family


# seconds a family's process may take per unit of its declared relative cost and row: ~1.5 s measured on a
# quiet 2-core VM (docs/gate.md), so a runner 10x slower still finishes, and a hung valgrind ends
TIMEOUT_S_PER_COST = 20.0
SHORTEST_TIMEOUT_S = 300.0


def counts_of_row(row, profile, specs_of, siblings, relative_cost: float = 1.0) -> list[dict]:
    """The counts of ``row``: it and its ``siblings`` (the family's rows of ``profile``, as its table lists
    them) are counted in one process the first time one of them is asked for (valgrind's start and torch's
    import under it are paid once). The process is stopped after a time derived from ``relative_cost``."""
    family_rows = [r for r in siblings if profile.name in r.profiles] or [row]
    if row not in family_rows:
        family_rows = [row]
    key = (row.family, profile.name, tuple(family_rows))
    if key not in _COUNTED:
        specs = [spec for r in family_rows for spec in specs_of(r)]
        timeout_s = max(SHORTEST_TIMEOUT_S, TIMEOUT_S_PER_COST * relative_cost * len(family_rows))
        try:
            results = iter(count(specs, timeout_s=timeout_s))
        except SpikeflopsError as exc:                 # every row of the family failed with it: said once
            results = iter([{"error": str(exc)}] * len(specs))
        _COUNTED[key] = {r: [next(results) for _ in specs_of(r)] for r in family_rows}
    out = _COUNTED[key][row]
    failed = [e["error"] for e in out if "error" in e]
    if failed:
        raise SpikeflopsError(f"counting {row.family}: {failed[0]}")
    return out


def measured_here() -> bool:
    """Whether this process counted instructions (a counted family ran)."""
    return bool(_COUNTED)


def as_value(result: dict):
    """A counted case's instructions per step, with the native functions that executed them."""
    from .metrics import Value

    return Value(float(result["instructions"]), parts=tuple(result["functions"].items()))


def python_value(result: dict):
    """The same case's Python line events per step, with the functions whose own lines they are."""
    from .metrics import Value

    return Value(float(result["python_lines"]), parts=tuple(result["python_functions"].items()))


# ---------------------------------------------------------------- the counted process

def _instrumentation(state: str) -> None:
    subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True, capture_output=True)


def _factory(path: str):
    """``package.module:function`` imported: a workload's counted step, named by its table."""
    import importlib

    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _with_extra_work(fn, iterations: int):
    """``fn`` followed by a Python loop of ``iterations``: more instructions, not more waiting (a wall-clock
    spin is no extra work under valgrind)."""
    def step():
        fn()
        total = 1 << 70                 # big ints: each iteration allocates, whatever the loop's length
        for i in range(iterations):
            total += i
        return total
    return step


def _main(specs_path: str, done_path: str) -> int:
    import torch

    from .pywork import count_lines

    # one thread (counts of other threads are not collected), and no oneDNN: its JIT kernels cost valgrind
    # minutes to translate; the matmuls run MKL's
    torch.backends.mkldnn.enabled = False
    torch.set_num_threads(1)
    specs = json.loads(Path(specs_path).read_text())
    done, dumps = [], 0
    for spec in specs:
        try:
            fn, close = _factory(spec["step"])(spec["case"])
            if spec.get("extra_loop"):                     # work added on purpose (detection tests, error rates)
                fn = _with_extra_work(fn, int(spec["extra_loop"]))
            fn()                                           # warm: allocator, lazy init
            _instrumentation("on")
            torch._C._valgrind_toggle()
            for _ in range(max(1, int(spec.get("steps", 1)))):
                fn()
            torch._C._valgrind_toggle_and_dump_stats()
            _instrumentation("off")
            # one more step's Python work, traced outside the counted span (where it grew, in Python functions):
            # one, not all of them, as tracing under valgrind is slow and a step's lines repeat step to step
            lines, functions = count_lines(fn, 1)
            close()
            dumps += 1
            done.append({"dump": dumps, "python_lines": lines, "python_functions": functions})
        except Exception as exc:  # noqa: BLE001 - recorded for this case; the next case still runs
            done.append({"error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"})
        Path(done_path).write_text(json.dumps(done))
    return 0


if __name__ == "__main__":
    sys.exit(_main(*sys.argv[1:3]))
