"""The published dashboard of the committed results: one series per machine and case, no empty tile, and
the committed files untouched."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gate_fixtures import committed_copy
from leftovers import digest_tree
from spikeflops.dashboard.publish import publish
from spikeflops.results.interpreter import python_version
from workloads.errors import SpikeflopsError

pytestmark = pytest.mark.e2e          # the end-to-end tier (pyproject.toml markers)

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("recorded,version", [
    ("3.11", "3.11"), ("/root/.pyenv/versions/3.11.7/bin/python3.11", "3.11"), ("/usr/bin/python3.12", "3.12"),
    ("/opt/conda/envs/py3.10/bin/python", None), ("/usr/bin/python", None),
])
def test_interpreter_versions_as_asv_records_them(recorded, version):
    assert python_version(recorded) == version


def committed_project(tmp_path: Path) -> Path:
    """This project's asv configuration over the committed results alone, with an empty folder of local runs:
    what a publish shows never depends on the runs a user has made here."""
    project = tmp_path / "project"
    committed_copy("results/asv", project)
    conf = json.loads((ROOT / "asv.conf.json").read_text())
    conf.update(repo=str(ROOT), benchmark_dir=str(ROOT / "benchmarks"), results_dir=str(project / "local"))
    (project / "asv.conf.json").write_text(json.dumps(conf))
    return project / "asv.conf.json"


def test_publish_of_the_committed_results_has_one_interpreter_and_no_empty_tile(tmp_path, capsys):
    if shutil.which("asv") is None:
        pytest.fail("asv is a test dependency")
    config = committed_project(tmp_path)
    results = config.parent / "results" / "asv"
    before = digest_tree(results)
    recorded = {json.loads(p.read_text())["params"]["python"] for p in results.glob("*/*-*.json")}
    assert len(recorded) > 1              # what asv alone splits: the committed runs mix both kinds
    html = tmp_path / "html"
    publish(config, html)
    index = json.loads((html / "index.json").read_text())
    assert index["params"]["python"] == ["3.11"]
    missing = [b for b in index["benchmarks"] if not (html / "graphs" / "summary" / f"{b}.json").is_file()]
    assert not missing and "bench_gpt.GPTStep.time_step" in index["benchmarks"]
    assert "bench_gpt.GPTMemory.track_peak_memory" not in index["benchmarks"]
    assert "GPTMemory.track_peak_memory: no value on any machine" in capsys.readouterr().err
    assert "https://code.jquery.com" not in (html / "index.html").read_text()
    assert digest_tree(results) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["html", "project"]      # no staging folder beside it


def test_a_failed_publish_leaves_the_old_dashboard(tmp_path):
    html = tmp_path / "html"
    publish(committed_project(tmp_path), html)
    before = digest_tree(html)
    conf = json.loads((ROOT / "asv.conf.json").read_text())
    (tmp_path / "proj").mkdir()
    bad = tmp_path / "proj" / "asv.conf.json"
    bad.write_text(json.dumps({**conf, "results_dir": "nowhere"}))
    with pytest.raises(SpikeflopsError, match="no asv results to publish"):
        publish(bad, html)
    bad.write_text("{not json")
    with pytest.raises(SpikeflopsError, match="not a readable asv configuration"):
        publish(bad, html)
    assert digest_tree(html) == before


def test_a_refactored_harness_keeps_every_committed_history_on_the_dashboard(tmp_path):
    """asv versions a benchmark by its source unless it declares a version: the generated harness declares
    each metric's, so rewriting benchmarks/ (here: a changed line in every tracked benchmark's setup and in
    every timed one's) neither orphans a committed result nor drops a graph of the committed machine."""
    import os
    import subprocess
    import sys

    bench = tmp_path / "benchmarks"
    shutil.copytree(ROOT / "benchmarks", bench, ignore=shutil.ignore_patterns("__pycache__"))
    common = (bench / "common.py").read_text()
    edited = common.replace('raise NotImplementedError("not measured here")',
                            'raise NotImplementedError("not measured on this machine")')
    edited = edited.replace("self.timed()", "(self.timed)()")
    assert "not measured on this machine" in edited and "(self.timed)()" in edited
    (bench / "common.py").write_text(edited)
    conf = json.loads((ROOT / "asv.conf.json").read_text())
    conf.update(repo=str(ROOT), benchmark_dir=str(bench), results_dir=str(tmp_path / "local"),
                html_dir=str(tmp_path / "unused"), env_dir=str(tmp_path / "env"))
    config = tmp_path / "asv.conf.json"
    config.write_text(json.dumps(conf))
    env = {**os.environ, "HOME": str(tmp_path)}                  # asv's machine file
    subprocess.run([sys.executable, "-m", "spikeflops.cli", "info", "--register-asv-machine", "refactor-check"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    proc = subprocess.run(["asv", "run", "--config", str(config), "--python=same", "--quick", "--machine",
                           "refactor-check", "--set-commit-hash", commit, "-b", "^nothing-matches-this$"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    discovered = json.loads((tmp_path / "local" / "benchmarks.json").read_text())
    committed = json.loads((ROOT / "results" / "asv" / "benchmarks.json").read_text())
    # asv exits 1 on "no benchmarks selected": discovery alone is what this run is for. It finds every committed
    # benchmark of a family with a row here (asv's grid is what this machine runs) and nothing unknown.
    from workloads.registry import select

    here = {name for name, entry in committed.items() if isinstance(entry, dict) and select(name.split(".")[-2])}
    assert "Discovering benchmarks" in proc.stdout and here <= set(discovered) <= set(committed), \
        proc.stdout + proc.stderr
    project = tmp_path / "project"
    committed_copy("results/asv", project)
    orphaned = []
    for path in (project / "results" / "asv").glob("*/*-*.json"):
        data = json.loads(path.read_text())
        at = data["result_columns"].index("version")
        orphaned += [f"{path.name}: {name}" for name, row in data["results"].items()
                     if (discovered.get(name) or committed[name])["version"] != row[at]]
    assert not orphaned, orphaned[:5]
    # published with the refactored harness's index over the committed history: every benchmark with a
    # committed value has its graph for the committed machine
    conf.update(repo=str(ROOT), benchmark_dir=str(bench), results_dir=str(tmp_path / "local"))
    (project / "asv.conf.json").write_text(json.dumps(conf))
    html = tmp_path / "html"
    publish(project / "asv.conf.json", html)
    with_values = set()
    for path in (project / "results" / "asv" / "vm-amd-epyc-x2").glob("*-*.json"):
        data = json.loads(path.read_text())
        with_values |= {name for name, row in data["results"].items()
                        if any(v == v and v is not None for v in (row[0] if isinstance(row[0], list) else [row[0]]))}
    graphs = {p.stem for p in (html / "graphs").rglob("*.json") if "machine-vm-amd-epyc-x2" in str(p)}
    assert with_values and with_values <= graphs, sorted(with_values - graphs)[:5]


def test_the_dashboard_is_served_where_a_browser_can_fetch_its_data(tmp_path):
    """A page of asv's dashboard opened from disk cannot fetch its JSON: --serve serves the folder on the
    loopback interface and prints where, and the data comes back over HTTP."""
    import subprocess
    import sys
    import urllib.request

    html = tmp_path / "html"
    html.mkdir()
    (html / "index.html").write_text("<html>dashboard</html>")
    (html / "index.json").write_text(json.dumps({"benchmarks": {}}))
    proc = subprocess.Popen([sys.executable, "-m", "spikeflops.cli", "dashboard", str(html), "--serve", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"serving {html} at http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split(" at ", 1)[1].split()[0]
        with urllib.request.urlopen(url + "index.json", timeout=30) as reply:
            assert json.loads(reply.read()) == {"benchmarks": {}}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = subprocess.run([sys.executable, "-m", "spikeflops.cli", "dashboard", str(empty), "--serve"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "no dashboard here" in refused.stderr


def test_a_local_run_of_a_committed_machine_is_one_series_with_its_history(tmp_path):
    """A user's run of the committed machine, on a host with another kernel and memory (and an interpreter
    path): published beside the history as the same series, and the committed machine file kept."""
    from spikeflops.dashboard.publish import normalised_copy

    committed, local, into = tmp_path / "committed", tmp_path / "local", tmp_path / "into"
    for folder, os_name, ram, python in ((committed, "Linux 6.1", "25276063744", "3.11"),
                                         (local, "Linux 6.18", "24000000000", "/home/me/venv/bin/python3.11")):
        (folder / "m").mkdir(parents=True)
        (folder / "m" / "machine.json").write_text(json.dumps({"machine": "m", "os": os_name, "ram": ram}))
        (folder / "m" / f"{os_name[-1]}-run.json").write_text(json.dumps(
            {"params": {"machine": "m", "os": os_name, "ram": ram, "python": python}, "python": python}))
    normalised_copy(committed, into)
    normalised_copy(local, into)
    assert json.loads((into / "m" / "machine.json").read_text())["os"] == "Linux 6.1"
    params = [json.loads(p.read_text())["params"] for p in (into / "m").glob("*-run.json")]
    assert len(params) == 2 and all(p == {"machine": "m", "os": "Linux 6.1", "ram": "25276063744",
                                          "python": "3.11"} for p in params), params


def test_a_run_of_a_venv_whose_interpreter_names_no_version_joins_its_series(tmp_path):
    """README order: a fresh `.venv` records `.venv/bin/python`; published before `keep`, its series is the
    interpreter's major.minor (asked of it), not a third series named after a path."""
    import sys

    from spikeflops.dashboard.publish import normalised_copy

    here = "%d.%d" % sys.version_info[:2]
    venv_python = tmp_path / "venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.symlink_to(sys.executable)                    # a path with no version in it
    local, into = tmp_path / "local", tmp_path / "into"
    (local / "m").mkdir(parents=True)
    (local / "m" / "machine.json").write_text(json.dumps({"machine": "m"}))
    (local / "m" / "run.json").write_text(json.dumps({"params": {"machine": "m", "python": str(venv_python)},
                                                      "python": str(venv_python)}))
    assert normalised_copy(local, into) == []
    assert json.loads((into / "m" / "run.json").read_text())["params"]["python"] == here
    venv_python.unlink()                                      # gone: said, and left apart
    (warning,) = normalised_copy(local, tmp_path / "again")
    assert "not here to ask" in warning


def test_the_graph_page_leaves_empty_series_out_of_the_legend_and_gives_ticks_enough_digits(tmp_path):
    """asv's graphdisplay.js, as a publish copies it: both fixes taken exactly once, a second pass changes
    nothing, the page still parses (node, where installed), and a page without asv's code says so."""
    import shutil
    import subprocess

    import asv

    from spikeflops.dashboard.graphs import FIXES, PAGE, fix_graph_page

    page = tmp_path / PAGE
    shutil.copy(Path(asv.__file__).parent / "www" / PAGE, page)
    assert fix_graph_page(tmp_path) == []
    fixed = page.read_text()
    assert all(fixed.count(new) == 1 for _, new in FIXES.values())
    assert "toPrecision(3)" not in fixed
    assert fix_graph_page(tmp_path) == [] and page.read_text() == fixed          # idempotent
    if shutil.which("node"):
        check = subprocess.run(["node", "--check", str(page)], capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stderr
    page.write_text("/* another asv */")
    missed = fix_graph_page(tmp_path)
    assert len(missed) == 2 and all("not fixed" in m for m in missed), missed
    assert fix_graph_page(tmp_path / "nowhere")[0].startswith(f"{PAGE}: not in")
