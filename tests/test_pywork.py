"""Python work per function (workloads.pywork): the same count in every process, a loop or a wait written into a
function named as where it grew, and a comment that moves code changing nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from spikeflops.regress.attribution import PYTHON, attribute
from spikeflops.regress.judge import judge_pair
from spikeflops.results.records import Measurement, ResultSet
from spikeflops.regress.rules import load_config
from workloads.pywork import count_lines, function_key, keep_largest

STEP = '''
import time

def helper(x):
    return x + 1

class Model:
    def step(self):
        total = 0
        for i in range(20):
            total = helper(total)
        return total
'''


def _load(tmp_path, name: str, source: str):
    """``source`` as module ``name`` in a file of its own (as a commit would leave it)."""
    import importlib.util

    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lines(tmp_path, name, source):
    module = _load(tmp_path, name, source)
    return count_lines(module.Model().step, 3)


def test_each_function_counts_its_own_lines_per_step(tmp_path):
    total, functions = _lines(tmp_path, "plain", STEP)
    by_name = {key.rsplit(":", 1)[1]: n for key, n in functions.items()}
    assert by_name == {"Model.step": 2 + 2 * 20 + 1, "helper": 20}, functions     # loop header: 21 line events
    assert total == sum(functions.values())


def test_a_loop_added_to_one_function_is_where_it_grew_and_a_comment_changes_no_key(tmp_path):
    _, plain = _lines(tmp_path, "a", STEP)
    looped = STEP.replace("        return total\n", "        for _ in range(50):\n            total += 0\n"
                                                   "        return total\n")
    _, grown = _lines(tmp_path, "b", looped)
    noted = STEP.replace("class Model:\n", "# a comment that moves every line below it\n\nclass Model:\n")
    _, same = _lines(tmp_path, "c", noted)
    strip = lambda d: {k.rsplit(":", 1)[1]: v for k, v in d.items()}      # noqa: E731 - the modules differ by name
    assert strip(same) == strip(plain)
    grew = {k: strip(grown)[k] - strip(plain).get(k, 0) for k in strip(grown)}
    assert grew == {"Model.step": 101, "helper": 0}, grew


def test_a_sleep_is_one_line_of_the_function_that_waits(tmp_path):
    _, plain = _lines(tmp_path, "d", STEP)
    _, slept = _lines(tmp_path, "e", STEP.replace("        return total\n",
                                                  "        time.sleep(0.001)\n        return total\n"))
    assert [v for k, v in slept.items() if k.endswith(":Model.step")] == \
           [v + 1 for k, v in plain.items() if k.endswith(":Model.step")]


@pytest.mark.e2e                     # end-to-end: a real subprocess run (the e2e tier)
def test_the_count_is_the_same_in_another_process():
    code = ("import json; from workloads.gpt.counted import step; from workloads.pywork import count_lines\n"
            "fn, close = step({'size': 'gpt-nano', 'variant': 'fast', 'dtype': 'float32', 'device': 'cpu', "
            "'mode': 'train', 'batch': 2, 'context_length': 32}); fn()\n"
            "print(json.dumps(count_lines(fn, 1))); close()")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
            for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), [r.stderr[-800:] for r in runs]
    first, second = (r.stdout.strip().splitlines()[-1] for r in runs)
    assert first == second and '"torch/nn/modules/module.py:Module._call_impl"' in first


def test_keys_name_the_checkout_relative_file_and_the_qualified_function():
    key = function_key(test_keys_name_the_checkout_relative_file_and_the_qualified_function.__code__)
    assert key == "tests/test_pywork.py:test_keys_name_the_checkout_relative_file_and_the_qualified_function"
    assert function_key(subprocess.run.__code__) == "subprocess.py:run"
    # a virtual environment inside the checkout (python -m venv .venv) names the package, not the folder
    from workloads.pywork import _ROOT

    inside = subprocess.run.__code__.replace(
        co_filename=f"{_ROOT}.venv/lib/python3.11/site-packages/torch/nn/modules/module.py")
    assert function_key(inside) == "torch/nn/modules/module.py:run"


def test_the_kept_functions_cover_all_but_a_thousandth():
    counts = {f"f{i}": 1.0 for i in range(5000)}
    kept = keep_largest(counts)
    assert len(kept) == 2000                     # the cap
    counts = {"big": 1000.0, "small": 5.0, "tiny": 1.0}         # 0.999 of 1006 needs big and small
    assert keep_largest(counts) == {"big": 1000.0, "small": 5.0}


def test_counting_under_another_tracer_is_refused():
    previous = sys.gettrace()
    sys.settrace(lambda *a: None)
    try:
        with pytest.raises(RuntimeError, match="tracer is already set"):
            count_lines(lambda: None)
    finally:
        sys.settrace(previous)


def _rs(blocked: float, run_synced: float, samples=20):
    params = (("size", "gpt-nano"), ("variant", "fast"))
    wobble = [blocked * (1 + 0.01 * (i % 5)) for i in range(samples)]
    return ResultSet("x.json", "spikeflops-run", {"machine": "m", "cpu": "c"}, "abc", 0.0, [
        Measurement("GPTStep.time_step_blocked", params, "seconds", sorted(wobble)[samples // 2], tuple(wobble)),
        Measurement("GPTStep.time_step_python_lines", params, "line events", 100.0 + run_synced, (),
                    (("torch/nn/modules/module.py:Module._call_impl", 100.0),
                     ("workloads/gpt/workload.py:PreparedStep.run_synced", run_synced)))])


def test_a_regressed_wait_names_the_python_function_that_grew_first():
    base, cand = _rs(0.0001, 3.0), _rs(0.0031, 4.0)
    verdicts = judge_pair(base, cand, load_config())
    (blocked,) = [v for v in verdicts if v.metric == "GPTStep.time_step_blocked"]
    assert blocked.status == "regressed", blocked
    found = [a for a in attribute(verdicts, base, cand) if a.family == PYTHON]
    assert len(found) == 1 and found[0].parts[0].name.endswith(":PreparedStep.run_synced")
    assert "grew most in Python functions in workloads/gpt/workload.py:PreparedStep.run_synced 3 lines -> 4 lines" \
        in found[0].sentence(), found[0].sentence()
    (python,) = [v for v in verdicts if v.metric == "GPTStep.time_step_python_lines"]
    assert python.status == "not judged"             # shown, never a verdict of its own


def test_an_extra_tensor_op_fails_the_gate_named_with_the_line_that_dispatched_it(monkeypatch, tmp_path):
    """The issue's "extra elementwise op in the SuperSpike torch step", made in-process: the operator count
    regresses and "where it grew" names the op, the function and the line that dispatched it."""
    import json

    from gate_fixtures import cli
    from spikeflops.results import ResultEntry
    from workloads.measure import track
    from workloads.profiles import get_profile
    from workloads.registry import select
    from workloads.superspike import torch_backend

    (row,) = select("SuperSpikeOpCount", "ci")

    def run_file(name: str):
        entry = ResultEntry.for_row(row)
        entry.add_values(track(row, get_profile("ci")))
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"format": "spikeflops-run/1", "machine_name": "m", "machine": {"cpu": "c"},
                                    "commit": name[0] * 40, "date": "2026-12-01T00:00:00+00:00",
                                    "results": [entry.to_dict()]}))
        return path

    base = run_file("a")
    original = torch_backend._eligibility

    def eligibility_with_an_extra_op(e, *args):
        original(e, *args)
        e.mul_(1.0)

    monkeypatch.setattr(torch_backend, "_eligibility", eligibility_with_an_extra_op)
    cand = run_file("b")
    proc = cli("gate", base, cand, "--out", tmp_path / "gate.json")
    assert proc.returncode == 1 and "SuperSpikeOpCount.operators_per_step" in proc.stdout, proc.stdout
    assert "eligibility_with_an_extra_op: e.mul_(1.0) 0 -> 2 (new, 100% of the growth)" in proc.stdout, proc.stdout
    (found,) = json.loads((tmp_path / "gate.json").read_text())["attributions"]
    top = max(found["parts"], key=lambda p: p["candidate"] - p["baseline"])
    assert top["name"] == ("aten.mul_ from tests/test_pywork.py:test_an_extra_tensor_op_fails_the_gate_named_with_"
                           "the_line_that_dispatched_it.<locals>.eligibility_with_an_extra_op: e.mul_(1.0)"), top
    assert (top["baseline"], top["candidate"]) == (0, 2)          # one per call: two populations
