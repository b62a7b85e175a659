"""Hostile results files: every one is a one-line refusal (exit 2) for the gate and a skipped file with a
warning for a report, and nothing is written outside the output folder."""

from __future__ import annotations

import copy
import json

import pytest

from gate_fixtures import cli

PARAMS = {"size": "gpt-nano", "variant": "fast", "mode": "train", "batch": "4"}


def _run_file(metrics=None, samples=None, **top):
    entry = {"family": "GPTOpCount", "params": dict(PARAMS),
             "units": {"operators": "operators", "bytes_allocated": "bytes"}, "case": {},
             "metrics": metrics if metrics is not None else {"operators": 308, "bytes_allocated": 5.4e7},
             "samples": samples or {}}
    data = {"format": "spikeflops-run/1", "machine_name": "m", "machine": {"cpu": "c", "cpu_count": 2},
            "commit": "a" * 40, "date": "2026-01-01T00:00:00+00:00", "results": [entry]}
    data.update(top)
    return data


def _text(data) -> str:
    return data if isinstance(data, str) else json.dumps(data)


def _duplicate_entries():
    data = _run_file()
    data["results"].append(copy.deepcopy(data["results"][0]))
    data["results"][1]["metrics"]["operators"] = 999
    return data


HOSTILE = [
    ("integer commit", _run_file(commit=1234), "not a hash"),
    ("nested 200,000 deep", "[" * 200_000 + "]" * 200_000, "nested too deeply"),
    ("negative count", _run_file({"operators": -5, "bytes_allocated": 1.0}), "impossible"),
    ("zero operators", _run_file({"operators": 0, "bytes_allocated": 1.0}), "0 operators is impossible"),
    ("-inf", _run_file({"operators": float("-inf"), "bytes_allocated": 1.0}), "impossible"),
    ("true as a value", _run_file({"operators": True, "bytes_allocated": 1.0}), "is not a number"),
    ("duplicate key", _text(_run_file()).replace('"commit": "', '"commit": "b", "commit": "', 1), "appears twice"),
    ("duplicate entries", _duplicate_entries(), "recorded twice"),
    ("newer format", _run_file(format="spikeflops-run/2"), "this version reads spikeflops-run/1"),
    ("NaN samples", _run_file(samples={"operators": [308, float("nan")]}), "NaN among its raw samples"),
]


@pytest.mark.parametrize("name,data,needle", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_hostile_results_file_is_one_line_for_the_gate_and_skipped_by_a_report(tmp_path, name, data, needle):
    folder = tmp_path / "results"
    folder.mkdir()
    bad = folder / "bad.json"
    bad.write_text(_text(data))
    (folder / "good.json").write_text(json.dumps(_run_file()))
    proc = cli("gate", bad, bad)
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and needle in lines[0], (name, proc.stderr)
    assert "Traceback" not in proc.stderr
    out = tmp_path / "report"
    rep = cli("report", folder, "--out-dir", out)
    assert rep.returncode == 0, (name, rep.stdout, rep.stderr)
    assert "skipped" in rep.stderr and "bad.json" in rep.stderr, rep.stderr
    after = sorted(p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*"))
    assert set(after) <= {"results", "report"} and sorted(p.name for p in folder.iterdir()) == ["bad.json", "good.json"]


def test_names_from_a_results_file_cannot_add_markdown_or_html_to_a_pr_comment(tmp_path):
    data = _run_file()
    data["results"][0]["params"]["size"] = "# Approved\n<img src=x onerror=alert(1)>|"
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(data))
    md = tmp_path / "gate.md"
    proc = cli("gate", path, path, "--markdown", md)
    assert proc.returncode == 0, proc.stderr
    text = md.read_text()
    assert "<img" not in text and "\n# Approved" not in text and "&lt;img" in text


def test_a_full_disk_is_one_line_and_keeps_the_previous_file(tmp_path, monkeypatch):
    import errno
    import os

    from spikeflops.results.fileio import write_json
    from workloads.errors import SpikeflopsError

    path = tmp_path / "gate.json"
    path.write_text('{"earlier": true}')
    real_replace = os.replace

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(SpikeflopsError, match=r"No space left on device\); the previous file is unchanged"):
        write_json(path, {"new": 1})
    monkeypatch.setattr(os, "replace", real_replace)
    assert path.read_text() == '{"earlier": true}' and sorted(p.name for p in tmp_path.iterdir()) == ["gate.json"]


@pytest.mark.parametrize("name", ["![x](https://example.com/x.png)", "@someone", "[a](javascript:alert(1))",
                                  "`rm -rf /`", "**bold** _it_ ~~gone~~", "www.example.com"])
def test_links_images_mentions_and_code_from_a_results_file_are_inert_in_markdown(tmp_path, name):
    import re

    data = _run_file()
    data["machine_name"] = data["machine"]["cpu"] = name
    data["results"][0]["params"]["size"] = name
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(data))
    md = tmp_path / "gate.md"
    proc = cli("gate", path, path, "--markdown", md)
    assert proc.returncode == 0, proc.stderr
    text = "\n".join(ln for ln in md.read_text().splitlines() if "gpt" in ln.lower() or "evil" in ln)   # its words
    assert text.count("\n") >= 2, md.read_text()
    assert not re.search(r"(?<!\\)!?(?<!\\)\[[^\]]*(?<!\\)\]\((?!\))", text), text      # no link or image
    assert not re.search(r"(?<![\\])`", text) and "@someone" not in text and "javascript:" not in text
    assert "https://" not in text and "www.example" not in text
    assert not re.search(r"(?<!\\)\*\*|(?<!\\)~~", text)


@pytest.mark.parametrize("machine", ["東京", "rocket-🚀", "evil\x1b[31m"])
def test_a_report_draws_any_machine_name(tmp_path, machine):
    """One committed file with a machine name the plot font lacks (or a control character) must not break
    every report: the name is drawn (a control character as its escape, a glyph the font lacks as a box), never a crash."""
    folder = tmp_path / "results"
    folder.mkdir()
    for i, commit in enumerate(("a" * 40, "b" * 40)):
        data = _run_file(machine_name=machine, commit=commit, date=f"2026-01-0{i + 1}T00:00:00+00:00")
        (folder / f"run{i}.json").write_text(json.dumps(data))
    proc = cli("report", folder, "--out-dir", tmp_path / "report")
    assert proc.returncode == 0, proc.stderr
    assert list((tmp_path / "report" / "plots").glob("*.png"))


def test_a_results_file_with_a_huge_function_table_is_capped_when_read_and_said(tmp_path):
    """300,000 named parts (a hostile file): the reader keeps the 2,000 largest and says so, so what the gate
    holds and diffs is bounded by the cap, not by the file."""
    parts = {f"fn_{i}": float(i) for i in range(300_000)}
    data = _run_file(metrics={"operators": 308}, samples={})
    data["results"][0]["parts"] = {"operators": parts}
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(data))
    proc = cli("gate", path, path)
    assert proc.returncode == 0, proc.stderr
    assert "300,000 named parts in a results file; the 2,000 largest are kept" in proc.stderr
