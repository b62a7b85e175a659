"""`spikeflops error-rates`: the timing verdict's false-alarm and detection rates, measured on a real callable."""

from __future__ import annotations

import json

from spikeflops.cli import main
from spikeflops.regress.error_rates import measure_error_rates, wilson
from spikeflops.regress.rules import load_config


def test_wilson_interval_is_honest_at_the_edges():
    low, high = wilson(0, 40)
    assert low == 0.0 and 0.08 < high < 0.1               # 0 of 40 is not "0 %": up to about 9 %
    low, high = wilson(40, 40)
    assert 0.9 < low < 0.92 and high == 1.0
    assert wilson(0, 0) == (0.0, 1.0)                     # nothing judged: nothing known


def test_a_large_injected_slowdown_is_flagged_and_every_comparison_is_counted():
    config = load_config(None)
    rule = config.rule_for("GPTStep.time_step")

    def work():
        return sum(i * i for i in range(3000))

    table = measure_error_rates(work, (0.0, 3.0), trials=3, rounds=3, budget=0.01, rule=rule,
                                alpha=config.alpha, floor=config.contended_floor)
    aa, slow = table["rows"]
    for row in table["rows"]:
        assert sum(row[k] for k in ("regressed", "undecided", "unchanged", "improved", "not_judged")) == 3
    assert slow["regressed"] + slow["not_judged"] == 3, slow      # 4x slower: caught unless the machine starved
    assert aa["injected"] == 0.0 and 0.0 <= (aa["flagged_rate"] or 0.0) <= 1.0
    assert table["rule"]["threshold"] == rule.threshold and table["step_seconds"] > 0


def test_the_command_writes_its_table(tmp_path, capsys):
    out = tmp_path / "rates.json"
    assert main(["error-rates", "--trials", "1", "--rounds", "3", "--budget", "0.01", "--sizes", "0,2",
                 "--out", str(out)]) == 0
    table = json.loads(out.read_text())
    assert table["format"] == "spikeflops-error-rates/1" and [r["injected"] for r in table["rows"]] == [0.0, 2.0]
    assert table["threads"] == 1 and table["machine"]
    printed = capsys.readouterr().out
    assert "0% (A/A)" in printed and "smallest slowdown detected" in printed
