"""The suite's own costs are a workload of the registry: both harnesses record them, the gate judges them."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e          # the end-to-end tier (pyproject.toml markers)


def test_synthetic_history_holds_every_family_and_reads_back(tmp_path):
    from spikeflops.regress.records import load
    from benchmarks.suite_costs import synthetic_asv_results
    from workloads.registry import FAMILIES

    paths = synthetic_asv_results(tmp_path, 3)
    runs = [load(p) for p in paths]
    assert [r.commit[:8] for r in runs] == ["00000000", "00000001", "00000002"]
    families = {m.metric.split(".")[0] for m in runs[0].measurements}
    assert {"GPTStep", "GPTOpCount", "SuperSpikeTrial", "SuiteReading"} <= families <= set(FAMILIES)


def test_suite_costs_are_measured_and_judged_like_any_metric():
    from spikeflops.regress.rules import load_config
    from workloads.measure import track
    from workloads.profiles import get_profile
    from workloads.registry import select

    rows = select("SuiteReading", "ci") + select("SuiteStartup", "ci")
    assert {r.case.task for r in rows} == {"read", "history", "report", "help"}
    config = load_config(None)
    for row in rows:
        [(name, value)] = track(row, get_profile("ci")).items()
        assert value.value > 0 and len(value.samples) == 3, (row.case, value)
        rule = config.rule_for(f"{row.family}.{name}")
        assert rule is not None and rule.direction == "lower" and rule.threshold > 0


def test_a_short_history_of_a_long_folder_reads_only_its_newest_files_in_full(tmp_path, monkeypatch):
    """1,000 asv results files: `gate --history 3` reads every file's header once and only the newest three
    (of the candidate's machine) in full, so its cost per file stays flat however long the folder grows; a
    second history over the same folder parses nothing again. (How long a file takes to read is a tracked
    benchmark, SuiteReading, not a timed test.)"""
    from spikeflops.regress import records
    from spikeflops.regress.inputs import load_history
    from benchmarks.suite_costs import synthetic_asv_results

    paths = synthetic_asv_results(tmp_path, 1000)
    candidate = records.load(paths[-1])
    full, headers = [], []
    real_parse, real_read = records._parse, records.read_json
    monkeypatch.setattr(records, "_parse", lambda p: full.append(p) or real_parse(p))
    monkeypatch.setattr(records, "read_json", lambda p: headers.append(p) or real_read(p))
    runs = load_history(str(paths[0].parent), 3, candidate)
    assert [r.path for r in runs] == [str(p) for p in paths[-4:-1]]          # the newest three before it
    assert len(full) == 3, full
    assert len(headers) == 999 + 3                                          # each header once, each full read once
    full.clear(), headers.clear()
    assert [r.path for r in load_history(str(paths[0].parent), 3, candidate)] == [r.path for r in runs]
    assert full == [] and headers == []


def _pytest_with_costs(folder, env_path, *args):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k != "SPIKEFLOPS_TEST_COSTS"}
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join([str(root / "tests"), str(root), env.get("PYTHONPATH", "")])
    if env_path is not None:
        env["SPIKEFLOPS_TEST_COSTS"] = str(env_path)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "testcosts",
                           *args, str(folder)], cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def test_every_test_module_s_costs_are_recorded_with_its_children_and_read_by_the_gate(tmp_path):
    """Three modules, one of which waits on a child that burns about 0.4 s of CPU: each module is one
    SuiteTests entry keyed like the benchmark rows, the child's CPU is counted, the costliest is printed
    first, and the gate reads the file like any run's."""
    import json

    from spikeflops.regress.records import load
    from spikeflops.regress.rules import load_config

    tests = tmp_path / "t"
    tests.mkdir()
    (tests / "test_child.py").write_text(
        "import subprocess, sys\n"
        "def test_burns_in_a_child():\n"
        "    code = 'import time\\nt = time.process_time()\\nwhile time.process_time() - t < 0.4: pass'\n"
        "    subprocess.run([sys.executable, '-c', code], check=True)\n")
    (tests / "test_quick.py").write_text("def test_a():\n    assert 1\n\ndef test_b():\n    assert 2\n")
    (tests / "test_other.py").write_text("def test_c():\n    assert 3\n")
    out = tmp_path / "costs" / "tests.json"
    proc = _pytest_with_costs(tests, out)
    assert proc.returncode == 0, proc.stdout[-2000:]
    summary = proc.stdout.split("costliest test modules", 1)[1].splitlines()[1]
    assert summary.endswith("test_child.py"), proc.stdout
    data = json.loads(out.read_text())
    assert data["format"] == "spikeflops-run/1" and data["profile"] == "tests"
    by_module = {e["params"]["module"]: e for e in data["results"]}
    assert set(by_module) == {"test_child.py", "test_quick.py", "test_other.py"}
    assert by_module["test_quick.py"]["case"]["tests"] == 2
    child = by_module["test_child.py"]["metrics"]
    assert child["cpu_seconds"] >= 0.4 and child["wall_seconds"] >= 0.4
    assert by_module["test_quick.py"]["metrics"]["cpu_seconds"] < child["cpu_seconds"]
    run = load(out)
    rule = load_config(None).rule_for("SuiteTests.cpu_seconds")
    assert rule is not None and rule.direction == "lower"
    assert load_config(None).rule_for("SuiteTests.wall_seconds").direction == "none"
    assert {m.params for m in run.measurements if m.metric == "SuiteTests.cpu_seconds"} == {
        (("module", name),) for name in by_module}


def test_a_background_command_runs_beside_the_other_modules_and_is_charged_to_the_test_that_takes_it(tmp_path):
    """tests/early.py and tests/conftest.py in a session of their own: a module that reads a background
    command (about 0.5 s of CPU) is named first but runs last; the command runs while another module
    waits for it to end; its CPU is charged to the reader, not to the module it ended under."""
    import json
    import shutil
    from pathlib import Path

    tests = tmp_path / "t"
    tests.mkdir()
    for name in ("early.py", "conftest.py"):
        shutil.copy(Path(__file__).with_name(name), tests / name)
    (tests / "test_a_reader.py").write_text(
        "import sys\nimport pytest\nimport early\n"
        "@early.command('burner')\n"
        "def _burner(folder):\n"
        "    code = 'import time\\nt = time.process_time()\\nwhile time.process_time() - t < 0.5: pass\\nprint(42)'\n"
        "    return early.Command([sys.executable, '-c', code])\n"
        "@pytest.fixture\n"
        "def burner():\n"
        "    return early.take('burner')\n"
        "def test_reads(burner):\n"
        "    assert burner.returncode == 0 and burner.stdout.strip() == '42' and burner.cpu_s >= 0.5\n"
        "    open('order', 'a').write('reader\\n')\n"
        "    open('folder', 'w').write(str(burner.folder))\n")
    (tests / "test_b_waiter.py").write_text(
        "import early\n"
        "def test_waits_for_the_background_command():\n"
        "    assert early._RUNS['burner'].ended.wait(timeout=120)\n"
        "    open('order', 'a').write('waiter\\n')\n")
    out = tmp_path / "costs.json"
    proc = _pytest_with_costs(tests, out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert (tests / "order").read_text().split() == ["waiter", "reader"]
    by_module = {e["params"]["module"]: e["metrics"] for e in json.loads(out.read_text())["results"]}
    assert by_module["test_a_reader.py"]["cpu_seconds"] >= 0.5, by_module
    assert by_module["test_b_waiter.py"]["cpu_seconds"] < 0.3, by_module
    assert by_module["test_a_reader.py"]["wall_seconds"] < 0.5, by_module     # it had ended: nothing to wait for
    assert not Path((tests / "folder").read_text()).exists()          # its scratch folder went with the session


def test_a_test_costs_file_that_cannot_be_written_is_refused_before_any_test_runs(tmp_path):
    tests = tmp_path / "t"
    tests.mkdir()
    (tests / "test_never.py").write_text("def test_x():\n    open('ran', 'w').write('1')\n")
    (tmp_path / "a-file").write_text("")
    proc = _pytest_with_costs(tests, tmp_path / "a-file" / "costs.json")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "SPIKEFLOPS_TEST_COSTS" in proc.stderr and not (tests / "ran").exists()


def test_the_costly_test_modules_are_benchmark_rows_that_exist_outside_the_ci_profile():
    from pathlib import Path

    from benchmarks.suite_costs import COSTLY_TEST_MODULES
    from workloads.registry import all_rows

    rows = all_rows("SuiteTests")
    assert [r.case.module for r in rows] == list(COSTLY_TEST_MODULES) and rows
    root = Path(__file__).resolve().parent.parent
    assert all((root / r.case.module).is_file() and "ci" not in r.profiles for r in rows)


def test_a_suite_tests_row_runs_its_module_twice_and_a_module_that_fails_measures_nothing():
    import pytest

    from benchmarks.suite_costs import TESTS, SuiteCase
    from workloads.profiles import get_profile

    quick = TESTS.row(SuiteCase("tests", module="tests/test_gpt_model.py"), ("full",))
    values = TESTS.measure(quick, get_profile("full"))
    cpu, wall = values["cpu_seconds"], values["wall_seconds"]
    assert len(cpu.samples) == len(wall.samples) == 2 and min(cpu.samples) > 0 and min(wall.samples) > 0
    missing = TESTS.row(SuiteCase("tests", module="tests/test_no_such_module.py"), ("full",))
    with pytest.raises(RuntimeError, match="a failing module measures no suite cost"):
        TESTS.measure(missing, get_profile("full"))
