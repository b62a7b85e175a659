"""GeNN's model in the gates, proved by injection: each change is made to a copy of the project's source, as a
commit would make it, and measured the way CI measures a pull request (`spikeflops run`, then `spikeflops
gate`). About +1 % work in a neuron's code string and a change of the learning update are flagged by the
counted gate (SuperSpikeGeNNInstructions) with the generated kernel named; a comment-only change is quiet;
a surrogate steepness changed in the GeNN model only is flagged by the seeded convergence gate where it is
large, and where it is small the verdict says what its seeds cannot see."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gate_fixtures import cli
from workloads.counting import unavailable

pytestmark = [pytest.mark.e2e, pytest.mark.genn, pytest.mark.slow]
READS_ONE_RUN = pytest.mark.xdist_group("genn-injection-counts")     # its readers on one worker: `counted` is made once

ROOT = Path(__file__).resolve().parents[1]
BACKEND = "workloads/superspike/genn_backend.py"

# about 40 arithmetic instructions per hidden neuron and step (a polynomial in V, added to V at 1e-9 scale
# so the compiler must compute it): ~+1 % of GeNN's step, all of it in updateNeurons
_POLYNOMIAL = "const scalar x = V * 0.001; scalar p = 1.0; " + "p = p * x + 1.0; " * 20 + "V += 1.0e-9 * p;"
NEURON_WORK = ('sim_code=lif_sim + "errTilda = ISynFeedback;\\n",',
               f'sim_code=lif_sim + "errTilda = ISynFeedback;\\n{_POLYNOMIAL}\\n",')
# one more multiply-add per synapse in r_max_prop: the smallest change a per-synapse update can take (+9 %)
UPDATE_WORK = ("variable += r * gradient;", "variable += r * gradient * (1.0 + 1.0e-6 * upsilon);")
COMMENT_ONLY = ("scalar sPred = 0.0;", "scalar sPred = 0.0;  // the prediction of this step\\n")
STEEPNESS = '"beta": P.BETA,'


def _tree(parent: Path, name: str, edits: tuple[tuple[str, str], ...] = ()) -> Path:
    """A copy of the project's code (workloads/, spikeflops/) with ``edits`` made to the GeNN backend, each
    exactly once: a change fails loudly if the code it edits has moved on."""
    tree = parent / name
    for package in ("workloads", "spikeflops"):
        shutil.copytree(ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__"))
    backend = tree / BACKEND
    text = backend.read_text()
    for old, new in edits:
        assert text.count(old) == 1, f"the injection's anchor {old!r} is not in {BACKEND} exactly once"
        text = text.replace(old, new)
    backend.write_text(text)
    return tree


def _runs(trees: list[Path], args: list[str], env: dict | None = None) -> list[Path]:
    """`spikeflops run ARGS` in each tree, all at once (each with its own GeNN code cache): the results files.
    The environment is this session's without what the test session itself sets up for the registry."""
    base_env = {k: v for k, v in os.environ.items()
                if k not in ("SPIKEFLOPS_EXTRA_WORKLOADS", "SPIKEFLOPS_CASES", "SPIKEFLOPS_PROFILE")}
    procs = []
    for tree in trees:
        out = tree / "run.json"
        procs.append((tree, out, subprocess.Popen(
            [sys.executable, "-m", "spikeflops.cli", "run", *args, "--out", str(out)], cwd=tree,
            env={**base_env, **(env or {}), "PYTHONPATH": str(tree), "SPIKEFLOPS_CACHE": str(tree / "cache")},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    for tree, out, proc in procs:
        printed, _ = proc.communicate(timeout=1200)
        assert proc.returncode == 0 and out.is_file(), f"{tree.name}: exit {proc.returncode}\n{printed[-3000:]}"
    return [out for _, out, _ in procs]


@pytest.fixture(scope="module")
def counted(tmp_path_factory) -> dict[str, Path]:
    if unavailable():
        pytest.skip(unavailable())
    parent = tmp_path_factory.mktemp("genn-counted")
    # names of one length: a path's string moves a count a little (CI counts from equal-length worktrees)
    trees = [_tree(parent, "plain"), _tree(parent, "grown", (NEURON_WORK, UPDATE_WORK)),
             _tree(parent, "noted", (COMMENT_ONLY,))]
    outs = _runs(trees, ["--profile", "counted", "--families", "SuperSpikeGeNNInstructions"])
    return dict(zip(("plain", "grown", "noted"), outs))


def _gate(base: Path, cand: Path, tmp_path: Path, *extra) -> tuple[subprocess.CompletedProcess, dict]:
    proc = cli("gate", base, cand, "--out", tmp_path / "gate.json", *extra)
    return proc, json.loads((tmp_path / "gate.json").read_text())


@READS_ONE_RUN
def test_genn_work_added_in_a_neuron_and_in_the_learning_update_is_flagged_with_the_kernel_named(counted, tmp_path):
    proc, record = _gate(counted["plain"], counted["grown"], tmp_path)
    assert proc.returncode == 1, proc.stdout
    changes = {v["metric"]: v["change"] for v in record["verdicts"] if v["status"] == "regressed"}
    step = changes.get("SuperSpikeGeNNInstructions.instructions_per_step")
    update = changes.get("SuperSpikeGeNNInstructions.instructions_per_update")
    assert step is not None and 0.005 < step < 0.03, (changes, proc.stdout)     # about +1 % of the step
    assert update is not None and update > 0.005, (changes, proc.stdout)
    grew = {a["metric"].partition("(")[0]: a["parts"] for a in record["attributions"] if a["family"] == "functions"}

    def top(metric):
        return max(grew[metric], key=lambda p: p["candidate"] - p["baseline"])["name"]
    assert top("SuperSpikeGeNNInstructions.instructions_per_step") == "updateNeurons", grew
    assert top("SuperSpikeGeNNInstructions.instructions_per_update") == "updateGradientLearn", grew
    assert "grew most in updateNeurons" in proc.stdout and "grew most in updateGradientLearn" in proc.stdout


@READS_ONE_RUN
def test_a_comment_in_a_genn_code_string_is_quiet_and_the_counts_repeat_across_processes(counted, tmp_path):
    proc, record = _gate(counted["plain"], counted["noted"], tmp_path)
    assert proc.returncode == 0, proc.stdout
    verdicts = [v for v in record["verdicts"] if v["metric"].startswith("SuperSpikeGeNNInstructions.instructions_")]
    assert len(verdicts) == 2 and all(v["status"] == "unchanged" for v in verdicts), verdicts
    # the same program from two processes and folders: far inside the 0.5 % threshold
    assert all(abs(v["change"]) < 0.002 for v in verdicts), verdicts
    # the step's Python work is shown beside the counts, never judged, and a code string's comment leaves it alone
    python = [v for v in record["verdicts"] if v["metric"].startswith("SuperSpikeGeNNInstructions.python_lines_")]
    assert len(python) == 2 and all(v["status"] == "not judged" and v["baseline"] == v["candidate"] > 0
                                    for v in python), python


def test_a_surrogate_steepness_changed_in_genn_only_is_judged_by_the_seeded_convergence_gate(tmp_path):
    trees = [_tree(tmp_path, "same"), _tree(tmp_path, "much", ((STEEPNESS, '"beta": P.BETA * 0.3,'),)),
             _tree(tmp_path, "tiny", ((STEEPNESS, '"beta": P.BETA * 0.98,'),))]
    same, much, tiny = _runs(trees, ["--families", "SuperSpikeConvergence"],
                             env={"SPIKEFLOPS_CASES": "^SuperSpikeConvergence genn-cpu"})
    proc, record = _gate(same, much, tmp_path, "--noise", "seeds")
    assert proc.returncode == 1 and "SuperSpikeConvergence.final_error(genn" in proc.stdout, proc.stdout
    flagged = [v for v in record["verdicts"] if v["status"] == "regressed"]
    assert flagged and all(dict(v["params"])["backend"] == "genn" for v in flagged), flagged
    proc, record = _gate(same, tiny, tmp_path, "--noise", "seeds")
    judged = [v for v in record["verdicts"] if v["metric"] == "SuperSpikeConvergence.final_error"]
    assert proc.returncode == 0 and judged and judged[0]["status"] != "regressed", proc.stdout
    assert "is not detectable with these seeds" in judged[0]["detail"], judged
