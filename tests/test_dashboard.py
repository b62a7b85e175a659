"""The published dashboard of the committed results: one series per machine and case, no empty tile, and
the committed files untouched."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from leftovers import digest_tree
from spikeflops.dashboard.publish import publish, python_version
from workloads.errors import SpikeflopsError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("recorded,version", [
    ("3.11", "3.11"), ("/root/.pyenv/versions/3.11.7/bin/python3.11", "3.11"), ("/usr/bin/python3.12", "3.12"),
    ("/opt/conda/envs/py3.10/bin/python", None), ("/usr/bin/python", None),
])
def test_interpreter_versions_as_asv_records_them(recorded, version):
    assert python_version(recorded) == version


def test_publish_of_the_committed_results_has_one_interpreter_and_no_empty_tile(tmp_path, capsys):
    if shutil.which("asv") is None:
        pytest.fail("asv is a test dependency")
    results = ROOT / "results" / "asv"
    before = digest_tree(results)
    recorded = {json.loads(p.read_text())["params"]["python"] for p in results.glob("*/*-*.json")}
    assert len(recorded) > 1              # what asv alone splits: the committed runs mix both kinds
    html = tmp_path / "html"
    publish(ROOT / "asv.conf.json", html)
    index = json.loads((html / "index.json").read_text())
    assert index["params"]["python"] == ["3.11"]
    missing = [b for b in index["benchmarks"] if not (html / "graphs" / "summary" / f"{b}.json").is_file()]
    assert not missing and "bench_gpt.GPTStep.time_step" in index["benchmarks"]
    assert "bench_gpt.GPTMemory.track_peak_memory" not in index["benchmarks"]
    assert "GPTMemory.track_peak_memory: no value on any machine" in capsys.readouterr().err
    assert "https://code.jquery.com" not in (html / "index.html").read_text()
    assert digest_tree(results) == before
    assert [p.name for p in tmp_path.iterdir()] == ["html"]          # no staging folder left beside it


def test_a_failed_publish_leaves_the_old_dashboard(tmp_path):
    html = tmp_path / "html"
    publish(ROOT / "asv.conf.json", html)
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
