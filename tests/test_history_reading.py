"""Reading a long history: a synthetic asv history reads back whole, and a short `--history` of a long
folder reads only the files it needs."""

from __future__ import annotations

from synthetic_history import synthetic_asv_results


def test_synthetic_history_holds_every_family_and_reads_back(tmp_path):
    from spikeflops.results.records import load
    from workloads.registry import FAMILIES

    paths = synthetic_asv_results(tmp_path, 3)
    runs = [load(p) for p in paths]
    assert [r.commit[:8] for r in runs] == ["00000000", "00000001", "00000002"]
    families = {m.metric.split(".")[0] for m in runs[0].measurements}
    assert {"GPTStep", "GPTOpCount", "SuperSpikeTrial", "SuperSpikeOpCount"} <= families <= set(FAMILIES)
    # asv's one case axis, read back as the family's named parameters
    step = next(m for m in runs[0].measurements if m.metric == "GPTStep.time_step")
    assert [name for name, _ in step.params] == list(FAMILIES["GPTStep"].params)


def test_a_short_history_of_a_long_folder_reads_only_its_newest_files_in_full(tmp_path, monkeypatch):
    """1,000 asv results files: `gate --history 3` reads every file's header once and only the newest three
    (of the candidate's machine) in full, so its cost per file stays flat however long the folder grows; a
    second history over the same folder parses nothing again. (Counted reads, not a timed test.)"""
    from spikeflops.results import records
    from spikeflops.regress.inputs import load_history

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
