"""Which local harness results are worth adding to the committed history, where each goes, and the copy.

asv (`asv run`) and pytest-benchmark (`--benchmark-autosave`) write into ignored folders (asv.conf.json's
``results_dir``, ``spikeflops-out/pytest-benchmark``), so a run never dirties the checkout; `spikeflops
keep` copies what these plans name into ``results/asv`` and ``results/pytest-benchmark``, to be committed.

What is never kept: a file that is not its harness's result, a link on either side, a run whose process got
less CPU than the gate's contention floor (unless asked), and a second, different file under a name already
kept. The committed ``machine.json`` of a machine is never rewritten by a local run (asv rewrites its own
copy at every run, with this host's kernel and memory).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from workloads.errors import SpikeflopsError

from .asvgrid import merge_indexes
from .interpreter import interpreter_version

COMMITTED = Path("results")
LOCAL_PYTEST_BENCHMARK = Path("spikeflops-out") / "pytest-benchmark"
_NUMBERED = re.compile(r"^(\d{4})_(.+\.json)$")
# asv names a --python=same run's environment after the interpreter's path ("existing-py_root_.pyenv_..._bin_
# python3.11"): a local path in a committed name. Kept as "existing-py3.11", one name on every machine.
_EXISTING_ENV = re.compile(r"^(?P<commit>[0-9a-f]+)-existing-py_.*?python(?P<version>\d+\.\d+)(?P<rest>-.*)?\.json$")


@dataclass(frozen=True)
class Copy:
    src: Path
    dst: Path
    kind: str                       # "asv result", "asv machine", "asv index", "pytest-benchmark run"
    text: str | None = None         # what to write instead of src's bytes (the index merged with the committed one)


@dataclass
class KeepPlan:
    copies: list[Copy]
    found: dict[str, int]           # what each side held: "asv results" / "pytest-benchmark runs" -> files seen
    notes: list[str]                # what was left as it is, and why


def kept_name(name: str, version: str | None = None, env_vars: dict | None = None) -> str:
    """The committed name of an asv result file: no interpreter path in it ("existing-py3.11", or
    "existing-py" where neither the path nor ``version`` says which Python it was), then the run's matrix
    variables as asv writes them (``-VIRTUALENV_SYSTEM_SITE_PACKAGEStrue``)."""
    commit, sep, env = name.removesuffix(".json").partition("-")
    if not sep or not env.startswith("existing-py_"):
        return name
    match = _EXISTING_ENV.match(name)
    version = match["version"] if match else version
    if env_vars is not None:
        rest = "".join(f"-{key}{value}" for key, value in sorted(env_vars.items()))
    else:
        rest = match["rest"] or "" if match else ""
    return f"{commit}-existing-py{version or ''}{rest}.json"


def _refuse_links(path: Path, root: Path) -> None:
    """A link anywhere from ``root`` down to ``path`` is refused: a copy through it would read or overwrite a
    file outside the results (a committed symlink to a secret, or to a file of the user's)."""
    chain = [path] + [p for p in path.parents if p.is_relative_to(root) and p != root]
    for current in chain:
        if current.is_symlink():
            raise SpikeflopsError(f"{current} is a symbolic link: keep copies only plain files inside the "
                                  "project (remove the link)")


def _read(path: Path, kind: str) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise SpikeflopsError(f"{path}: not a readable {kind} ({exc})") from None
    need = {"asv result": ("commit_hash", "results", "result_columns", "params"), "asv machine": ("machine",),
            "asv index": (), "pytest-benchmark run": ("benchmarks", "machine_info")}[kind]
    if not isinstance(data, dict):
        raise SpikeflopsError(f"{path}: not a {kind} (not a JSON object)")
    missing = [key for key in need if key not in data]
    if missing:
        raise SpikeflopsError(f"{path}: not a {kind} (it lacks {', '.join(missing)})")
    return data


def _contended(path: Path, floor: float) -> str | None:
    """Why a run's timings are not what its machine does (a family recorded a CPU share below ``floor``)."""
    from .records import load

    shares = [m.value for m in load(path).measurements if m.metric.endswith(".cpu_share") and m.value == m.value]
    if shares and min(shares) < floor:
        return f"CPU share {min(shares):.2f}-{max(shares):.2f}, below {floor:g}"
    return None


def plan_keep(root: Path, local_asv: Path, machine: str | None, allow_contended: bool = False,
              contended_floor: float = 0.5) -> KeepPlan:
    plan = KeepPlan([], {"asv results": 0, "pytest-benchmark runs": 0}, [])
    committed = root / COMMITTED
    _asv(plan, root, local_asv, committed / "asv", machine)
    _pytest_benchmark(plan, root, root / LOCAL_PYTEST_BENCHMARK, committed / "pytest-benchmark", machine)
    runs = [c for c in plan.copies if c.kind in ("asv result", "pytest-benchmark run")]
    for copy in runs:
        why = _contended(copy.src, contended_floor)
        if why and not allow_contended:
            plan.copies.remove(copy)
            plan.notes.append(f"{copy.src.relative_to(root)}: not kept, the machine was contended ({why}); rerun on "
                              "a quiet machine, or keep it with --allow-contended")
        elif why:
            plan.notes.append(f"{copy.src.relative_to(root)}: kept although contended ({why}), as asked")
    if not any(c.kind in ("asv result", "pytest-benchmark run") for c in plan.copies):
        plan.copies = []                # a machine file or an index alone is no run to keep
    return plan


def _asv(plan: KeepPlan, root: Path, local: Path, committed: Path, machine: str | None) -> None:
    if not local.is_dir():
        plan.notes.append(f"{local.relative_to(root) if local.is_relative_to(root) else local}: no asv results "
                          "(asv run ... --set-commit-hash saves there)")
        return
    _refuse_links(local, root)
    for folder in sorted(p for p in local.iterdir() if p.is_dir()):
        if machine and folder.name != machine:
            continue
        results = []
        for src in sorted(folder.glob("*.json")):
            _refuse_links(src, root)
            kind = "asv machine" if src.name == "machine.json" else "asv result"
            data = _read(src, kind)
            dst = committed / folder.name / (src.name if kind == "asv machine" else kept_name(
                src.name, interpreter_version(data), data.get("env_vars") if isinstance(data.get("env_vars"), dict)
                else None))
            _refuse_links(dst, root)
            if kind == "asv result":
                plan.found["asv results"] += 1
                results.append(src)
            if not dst.exists():
                plan.copies.append(Copy(src, dst, kind))
            elif not _readable_json(dst):           # an empty or broken copy (an earlier keep cut off): replaced
                plan.copies.append(Copy(src, dst, kind))
                plan.notes.append(f"{dst.relative_to(root)}: empty or unreadable; replaced by this run's copy")
            elif not _same_json(src, dst):
                plan.notes.append(_differs(src, dst, root, kind))
        if not results:
            plan.copies = [c for c in plan.copies if c.src.parent != folder]
    index = local / "benchmarks.json"
    if any(c.kind == "asv result" for c in plan.copies) and index.is_file():
        _refuse_links(index, root)
        kept_index = committed / "benchmarks.json"
        kept = _read(kept_index, "asv index") if _readable_json(kept_index) else {}
        if kept_index.exists() and not kept:
            plan.notes.append(f"{kept_index.relative_to(root)}: empty or unreadable; replaced by this machine's index")
        merged = merge_indexes(kept, _read(index, "asv index"))
        if merged != kept:              # this machine's cases beside every other machine's
            plan.copies.append(Copy(index, kept_index, "asv index", json.dumps(merged, indent=4, sort_keys=True)))


def _differs(src: Path, dst: Path, root: Path, kind: str) -> str:
    if kind == "asv machine":
        mine, kept = json.loads(src.read_text()), json.loads(dst.read_text())
        keys = sorted(k for k in set(mine) | set(kept) if mine.get(k) != kept.get(k))
        return (f"{dst.relative_to(root)}: the committed machine file stays (this host differs in "
                f"{', '.join(keys)}); one machine, one series")
    return (f"{src.relative_to(root)}: differs from the kept {dst.relative_to(root)}: left as it is (remove or "
            "rename one to keep both)")


def _pytest_benchmark(plan: KeepPlan, root: Path, local: Path, committed: Path, machine: str | None) -> None:
    """Saved pytest-benchmark runs (``NNNN_<name>.json`` under <machine>/<platform>/) not in the history
    yet, numbered on after the committed runs of their folder (pytest-benchmark reads them in that order)."""
    if not local.is_dir():
        plan.notes.append(f"{local.relative_to(root)}: no pytest-benchmark runs (python -m pytest --benchmark-only "
                          "saves there)")
        return
    _refuse_links(local, root)
    for src in sorted(local.glob("*/*/*.json")):
        rel = src.relative_to(local)
        if machine and rel.parts[0] != machine:
            continue
        match = _NUMBERED.match(src.name)
        if not match:
            continue
        _refuse_links(src, root)
        _read(src, "pytest-benchmark run")
        plan.found["pytest-benchmark runs"] += 1
        folder = committed / rel.parent
        _refuse_links(folder, root)
        taken = sorted(folder.glob("*.json")) if folder.is_dir() else []
        if any(_NUMBERED.match(t.name) and _NUMBERED.match(t.name).group(2) == match.group(2)
               and _same_json(src, t) for t in taken):
            continue
        numbers = [int(_NUMBERED.match(t.name).group(1)) for t in taken if _NUMBERED.match(t.name)]
        numbers += [int(_NUMBERED.match(c.dst.name).group(1)) for c in plan.copies if c.dst.parent == folder]
        plan.copies.append(Copy(src, folder / f"{max(numbers, default=0) + 1:04d}_{match.group(2)}",
                                "pytest-benchmark run"))


def copy_file(src: Path, dst: Path, text: str | None = None) -> None:
    """``src``'s bytes (or ``text``) into ``dst`` through a temporary file and a rename: a full or read-only disk
    leaves no partial file (one line, the earlier state unchanged), and the copy is read back before it counts."""
    from .fileio import write_text

    text = src.read_text() if text is None else text
    write_text(dst, text)
    if dst.read_text() != text:
        dst.unlink(missing_ok=True)
        raise SpikeflopsError(f"{dst}: the copy does not read back as written; removed")


def _readable_json(path: Path) -> bool:
    try:
        return isinstance(json.loads(path.read_text()), dict)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False


def _same_json(a: Path, b: Path) -> bool:
    try:
        return json.loads(a.read_text()) == json.loads(b.read_text())
    except (OSError, ValueError):
        return False
