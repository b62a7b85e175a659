"""`spikeflops dashboard --publish`: asv publish over results that asv itself would split or leave empty.

Three things make asv's own dashboard of this project's results misleading, and all are fixed here on a
copy of the results (the committed files are never rewritten):

- each machine's asv index lists only the cases it runs, and asv draws only what the index lists: the copy's
  index is the committed one merged with this checkout's, and a results file written before the case axis
  (one axis per parameter) is rewritten to it (``results.asvgrid``).

- asv records the interpreter of a ``--python=same`` run as its path and that of a virtualenv run as its
  version, and draws a separate series for each, so one machine's history falls apart in two. The copy
  gives every result its interpreter's major.minor version.
- a benchmark with no value on any machine (GPTMemory on CPU machines: it measures CUDA memory) gets a
  tile whose summary asv never writes: an empty tile and a 404. Such benchmarks are left out of the
  dashboard's index, and said so.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from workloads.errors import SpikeflopsError
from ..results.interpreter import interpreter_version

# the results committed to the repository; asv's own results_dir (an ignored folder) holds local runs until
# `spikeflops keep` copies them here
COMMITTED_ASV = Path("results") / "asv"


def read_config(config: Path) -> dict:
    try:
        conf = json.loads(config.read_text())
    except FileNotFoundError:
        raise SpikeflopsError(f"{config}: no such asv configuration") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SpikeflopsError(f"{config}: not a readable asv configuration ({exc})") from None
    if not isinstance(conf, dict):
        raise SpikeflopsError(f"{config}: not an asv configuration (a JSON object is expected)")
    return conf


# asv's facts of a machine that a run records in its params: a host's kernel update or memory size must not
# split one machine's history into two series on the dashboard
MACHINE_FACTS = ("os", "ram", "cpu", "arch", "num_cpu")


def normalised_copy(results: Path, into: Path) -> list[str]:
    """Copy asv's results folder to ``into`` with every result's interpreter as major.minor and its machine
    facts as its machine's first ``machine.json`` says (the committed one, copied first: one machine, one
    series); returns the warnings (files whose interpreter has no version in its name keep it as recorded)."""
    from ..results.asvgrid import cover_results, merge_indexes, results_to_case_axis

    warnings = []
    kept = {path.relative_to(into): path.read_bytes() for path in into.glob("*/machine.json")}
    index = _json_object(into / "benchmarks.json")
    shutil.copytree(results, into, dirs_exist_ok=True)
    for rel, original in kept.items():              # a later folder's machine file never replaces the first
        (into / rel).write_bytes(original)
    # the cases of every machine in one index: asv draws only what its index lists
    merged = merge_indexes(index or {}, _json_object(into / "benchmarks.json") or {})
    for path in sorted(into.rglob("*.json")):
        if path.name in ("benchmarks.json", "machine.json"):
            continue
        data = _json_object(path)
        if data is None:
            continue                           # asv publish says which file it cannot read
        if results_to_case_axis(data):
            path.write_text(json.dumps(data))
        cover_results(merged, data)
        params = data.get("params")
        if not isinstance(params, dict) or not isinstance(params.get("python"), str):
            continue
        facts = _machine_facts(path.parent / "machine.json")
        if any(k in params and params[k] != facts[k] for k in facts):
            params.update({k: facts[k] for k in facts if k in params})
            path.write_text(json.dumps(data))
        version = interpreter_version(data)          # a venv's bin/python is asked, where it still exists
        if version is None:
            warnings.append(f"{path.relative_to(into)}: interpreter {params['python']!r} has no version in "
                            "its name and is not here to ask; its series stays apart")
            continue
        if version != params["python"] or data.get("python") != version:
            params["python"] = data["python"] = version
            path.write_text(json.dumps(data))
    if merged:
        (into / "benchmarks.json").write_text(json.dumps(merged))
    return warnings


def _json_object(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _machine_facts(machine_file: Path) -> dict:
    try:
        data = json.loads(machine_file.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return {}
    return {k: str(data[k]) for k in MACHINE_FACTS if isinstance(data, dict) and k in data}


def benchmarks_without_values(html: Path) -> list[str]:
    """Drop from ``html``'s index the benchmarks asv wrote no summary for (no value on any machine)."""
    index_path = html / "index.json"
    index = json.loads(index_path.read_text())
    empty = sorted(name for name in index.get("benchmarks", {})
                   if not (html / "graphs" / "summary" / f"{name}.json").is_file())
    if empty:
        for name in empty:
            del index["benchmarks"][name]
        index_path.write_text(json.dumps(index))
    return empty


def publish(config: Path, html: Path) -> list[str]:
    """asv publish of ``config``'s results into ``html`` as the module docstring says, made to render offline;
    returns the warnings (also printed). The old dashboard stays until the new one is whole."""
    from workloads.isolate import run_group

    from ..results.fileio import claim_output_folder, mark_output_folder, staged_folder, swap_in
    from .graphs import fix_graph_page
    from .offline import make_offline

    html = claim_output_folder(html, "dashboard").resolve()   # before anything
    conf = read_config(config)
    root = config.resolve().parent
    local = root / conf.get("results_dir", "results")
    sources = [folder for folder in dict.fromkeys(((root / COMMITTED_ASV).resolve(), local.resolve()))
               if folder.is_dir() and any(folder.glob("*/*.json"))]
    if not sources:
        raise SpikeflopsError(f"{local}: no asv results to publish (run `asv run` first)")
    asv = shutil.which("asv")
    if asv is None:
        raise SpikeflopsError("asv is not installed here (pip install asv)")
    with tempfile.TemporaryDirectory(prefix="spikeflops-publish-") as tmp, staged_folder(html.parent) as stage:
        tmp = Path(tmp)
        warnings = []
        for folder in sources:          # the committed history, then this checkout's own runs over it
            warnings += normalised_copy(folder, tmp / "results")
        warnings = list(dict.fromkeys(warnings))
        # the same project, read from where it is: only the results and the output folder differ
        conf.update(repo=str(root / conf.get("repo", ".")),
                    benchmark_dir=str(root / conf.get("benchmark_dir", "benchmarks")),
                    results_dir=str(tmp / "results"), html_dir=str(stage / html.name), env_dir=str(tmp / "env"))
        (tmp / "asv.conf.json").write_text(json.dumps(conf))
        proc = run_group([asv, "publish", "--config", str(tmp / "asv.conf.json")], cwd=root,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0 or not (stage / html.name / "index.json").is_file():
            last = (proc.stderr or proc.stdout or "").strip().splitlines()[-1:] or ["no output"]
            raise SpikeflopsError(f"asv publish failed (exit {proc.returncode}): {last[0]}")
        for name in benchmarks_without_values(stage / html.name):
            warnings.append(f"{name}: no value on any machine; left out of the dashboard")
        _, unknown = make_offline(stage / html.name)
        warnings += fix_graph_page(stage / html.name)
        mark_output_folder(stage / html.name)
        warnings += [f"left as is (no local copy): {url}" for url in sorted(unknown)]
        swap_in(stage, html.parent, (html.name,))
    for warning in warnings:
        print(f"spikeflops dashboard: {warning}", file=sys.stderr)
    return warnings
