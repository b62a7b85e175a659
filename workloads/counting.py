"""Instructions a step executes, counted by valgrind's callgrind: a timing proxy that a busy co-tenant cannot move.

One process per family measures every counted case it is given (``count(specs)``): Python starts under
callgrind with instrumentation off (importing torch and preparing a model run at valgrind's uninstrumented
speed), and for each case the step is prepared and warmed up, then instrumentation is switched on, the
measured steps run with collection on (``torch._C._valgrind_toggle``), the counts are dumped, and
instrumentation goes off again before the next case is prepared. Each case's dump gives the total and the
functions that executed the most instructions (for "where it grew").

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

TOP_FUNCTIONS = 40                  # functions kept per case, by instructions executed (self cost)


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


def count(specs: list[dict]) -> list[dict]:
    """Run ``specs`` (``{"kind": "gpt"|"superspike", "case": {...}, "steps": N}``, optionally ``"part":
    "update"`` for SuperSpike and ``"extra_loop": N`` to add work on purpose) in one process under
    callgrind; per spec ``{"instructions": total per step, "functions": {name: per step}}`` or ``{"error"}``."""
    why = unavailable()
    if why:
        raise SpikeflopsError(why)
    from .isolate import run_group

    with tempfile.TemporaryDirectory(prefix="spikeflops-count-") as tmp:
        tmp = Path(tmp)
        (tmp / "specs.json").write_text(json.dumps(specs))
        out = tmp / "callgrind.out"
        # no address-space randomisation: where the heap lands moves the alignment prologues of memset and
        # memcpy, two counts 0.1 % apart for the same step from run to run otherwise
        norandom = ["setarch", os.uname().machine, "-R"] if shutil.which("setarch") else []
        cmd = [*norandom, "valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no",
               f"--callgrind-out-file={out}", sys.executable, "-m", "workloads.counting",
               str(tmp / "specs.json"), str(tmp / "done.json")]
        root = str(Path(__file__).resolve().parent.parent)
        # the same environment for every count: a fixed hash seed (dict and set orders, and so the instructions
        # they cost, are the same every run) and nothing of the caller's shell, whose size moves the heap
        env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": root}
        try:
            proc = run_group(cmd, env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        except OSError as exc:
            raise SpikeflopsError(f"valgrind could not start: {exc}") from None
        done = json.loads((tmp / "done.json").read_text()) if (tmp / "done.json").is_file() else []
        if proc.returncode != 0 and not done:
            tail = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith("==")][-3:]
            raise SpikeflopsError(f"the counted process failed (exit {proc.returncode}): {' / '.join(tail)}")
        results = []
        for i, spec in enumerate(specs):
            entry = done[i] if i < len(done) else {"error": "the counted process ended before this case"}
            if "error" not in entry:
                dump = Path(f"{out}.{entry['dump']}")
                if not dump.is_file():
                    entry = {"error": f"callgrind wrote no counts for case {i}"}
                else:
                    total, functions = read_dump(dump)
                    steps = max(1, int(spec.get("steps", 1)))
                    entry = {"instructions": total / steps,
                             "functions": {name: n / steps for name, n in functions.items()}}
            results.append(entry)
        return results


def read_dump(path: Path) -> tuple[int, dict[str, int]]:
    """(total instructions, the TOP_FUNCTIONS functions by self instructions) of one callgrind dump, read
    from the file itself: valgrind 3.19's "summary:" (and so callgrind_annotate's total) wraps below zero
    in a dump after instrumentation was switched off and on; "totals:" and the cost lines are right."""
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
            elif key == "totals" or line.startswith("totals:"):
                total = int(line.split(":", 1)[1].split()[0])
    if total is None:
        total = sum(self_cost.values())
    top = sorted(self_cost.items(), key=lambda kv: -kv[1])[:TOP_FUNCTIONS]
    return total, dict(top)


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


def measure_rows(row, profile, specs_of, siblings) -> list[dict]:
    """The counts of ``row``: it and its ``siblings`` (the family's rows of ``profile``, as its table lists
    them) are counted in one process the first time one of them is asked for (valgrind's start and torch's
    import under it are paid once)."""
    family_rows = [r for r in siblings if profile.name in r.profiles] or [row]
    if row not in family_rows:
        family_rows = [row]
    key = (row.family, profile.name, tuple(family_rows))
    if key not in _COUNTED:
        specs = [spec for r in family_rows for spec in specs_of(r)]
        try:
            results = iter(count(specs))
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
    from .metrics import Value

    return Value(float(result["instructions"]), parts=tuple(result["functions"].items()))


# ---------------------------------------------------------------- the counted process

def _instrumentation(state: str) -> None:
    subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True, capture_output=True)


def _gpt_step(case_dict: dict):
    from .gpt.case import GPTCase
    from .gpt.workload import prepare

    ctx = prepare(GPTCase(**case_dict), warmup=1)
    step = ctx.__enter__()
    return step.run_synced, lambda: ctx.__exit__(None, None, None)


def _superspike_step(case_dict: dict):
    """One simulation step and, as a second callable, one weight update of the torch backend."""
    from .superspike.case import SuperSpikeCase
    from .superspike.torch_backend import r_max_prop
    from .superspike.training import learning_rate
    from .superspike.workload import prepare

    case = SuperSpikeCase(**case_dict)
    model = prepare(case)
    state = {name: value.clone() for name, value in model.state.items()}
    inputs, targets = model.input_raster.clone(), model.target_raster.clone()

    def step():
        model.step_fn(state, inputs[0], targets[0])

    def update():
        r_max_prop(state, "ih", learning_rate(0), case.network.update_timesteps)
        r_max_prop(state, "ho", learning_rate(0), case.network.update_timesteps)

    return step, update


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

    torch.backends.mkldnn.enabled = False
    torch.set_num_threads(1)
    specs = json.loads(Path(specs_path).read_text())
    done, dumps = [], 0
    for spec in specs:
        try:
            if spec["kind"] == "gpt":
                fn, close = _gpt_step(spec["case"])
            else:
                step, update = _superspike_step(spec["case"])
                fn, close = (update if spec.get("part") == "update" else step), (lambda: None)
            if spec.get("extra_loop"):                     # work added on purpose (detection tests, error rates)
                fn = _with_extra_work(fn, int(spec["extra_loop"]))
            fn()                                           # warm: allocator, lazy init
            _instrumentation("on")
            torch._C._valgrind_toggle()
            for _ in range(max(1, int(spec.get("steps", 1)))):
                fn()
            torch._C._valgrind_toggle_and_dump_stats()
            _instrumentation("off")
            close()
            dumps += 1
            done.append({"dump": dumps})
        except Exception as exc:  # noqa: BLE001 - recorded for this case; the next case still runs
            done.append({"error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"})
        Path(done_path).write_text(json.dumps(done))
    return 0


if __name__ == "__main__":
    sys.exit(_main(*sys.argv[1:3]))
