"""`spikeflops error-rates`: the timing verdict's false-alarm and detection rates, measured on a real callable."""

from __future__ import annotations

import json

import pytest

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


@pytest.mark.skipif(__import__("workloads.load", fromlist=["x"]).blocked_time_unavailable() is not None,
                    reason="no run-queue wait reported here")
def test_a_wait_is_injected_as_a_sleep_and_judged_by_blocked_time():
    """--measure blocked: the injected slowdown is a sleep (a wait, no work), judged by the blocked-time rule;
    the A/A spread is reported."""
    config = load_config(None)
    rule = config.rule_for("GPTStep.time_step_blocked")

    def work():
        return sum(i * i for i in range(20000))          # a few ms of work, no wait

    table = measure_error_rates(work, (0.0, 5.0), trials=2, rounds=3, budget=0.02, rule=rule,
                                alpha=config.alpha, floor=config.contended_floor, measure="blocked")
    aa, slept = table["rows"]
    assert table["measure"] == "blocked" and table["injected_as"] == "sleep"
    assert table["rule"]["metric"] == "GPTStep.time_step_blocked"
    assert slept["regressed"] == 2, slept                # 5x the step asleep: well above the 1 ms floor
    assert aa["regressed"] == 0 and table["aa_spread"] is not None


def test_the_command_writes_its_table(tmp_path, capsys):
    out = tmp_path / "rates.json"
    assert main(["error-rates", "--trials", "1", "--rounds", "3", "--budget", "0.01", "--sizes", "0,2",
                 "--out", str(out)]) == 0
    table = json.loads(out.read_text())
    assert table["format"] == "spikeflops-error-rates/1" and [r["injected"] for r in table["rows"]] == [0.0, 2.0]
    assert table["threads"] == 1 and table["machine"]
    printed = capsys.readouterr().out
    assert "0% (A/A)" in printed and "smallest slowdown detected" in printed


def _fake_counter(calls: list, fail_after: int | None = None):
    """A stand-in for a valgrind process: 1,000,000 instructions a step, two levels 0.1 % apart (as measured),
    plus the injected loop's share; ``fail_after`` processes then a failure, as a stop would."""
    from spikeflops.regress.error_rates import LOOP_INSTRUCTIONS
    from workloads.errors import SpikeflopsError

    def count(extra_loop: int = 0) -> float:
        if fail_after is not None and len(calls) >= fail_after:
            raise SpikeflopsError("a counted process failed: stopped")
        calls.append(extra_loop)
        return 1_000_000.0 * (1.001 if len(calls) % 7 == 0 else 1.0) + extra_loop * LOOP_INSTRUCTIONS
    return count


def test_counted_error_rates_judge_every_process_and_save_after_each():
    from spikeflops.regress.error_rates import measure_counted_error_rates

    calls, saved = [], []
    table = measure_counted_error_rates(10, 2, (0.01,), 0.005, save=lambda t: saved.append(dict(t)),
                                        measure=_fake_counter(calls))
    assert len(calls) == 11 + 2 and len(saved) == 13 + 1      # after each process, then the finished table
    assert [t["complete"] for t in saved] == [False] * 13 + [True]
    aa, grown = table["rows"]
    assert aa["comparisons"] == 10 and aa["flagged"] == 0 and 0.0009 < table["aa_spread"] < 0.0011
    assert grown["comparisons"] == 2 and grown["flagged"] == 2 and calls[-1] == table["injected"][0]["loop"]


def test_a_stopped_counted_table_is_continued_not_redone(tmp_path, monkeypatch, capsys):
    import spikeflops.regress.error_rates as error_rates

    out = tmp_path / "counted.json"
    calls: list = []
    fake = _fake_counter(calls, fail_after=4)
    monkeypatch.setattr(error_rates, "count_step", lambda spec, extra_loop=0: fake(extra_loop))
    args = ["error-rates", "--counted", "5", "--trials", "2", "--sizes", "0.02", "--out", str(out)]
    assert main(args) == 2                                   # the fifth process "failed"
    partial = json.loads(out.read_text())
    assert partial["complete"] is False and len(partial["plain"]) == 4 and partial["machine"]["cpu"]

    assert main(args) == 2                                   # a plain rerun would overwrite it: refused
    assert "--resume" in capsys.readouterr().err and json.loads(out.read_text()) == partial

    fake = _fake_counter(calls)
    monkeypatch.setattr(error_rates, "count_step", lambda spec, extra_loop=0: fake(extra_loop))
    assert main(args + ["--resume"]) == 0
    table = json.loads(out.read_text())
    assert len(calls) == 6 + 2                               # 4 kept, 2 more plain, 2 injected: none redone
    assert table["complete"] is True and table["plain"][:4] == partial["plain"]
    assert table["started"] == partial["started"] and [r["comparisons"] for r in table["rows"]] == [5, 2]

    assert main(args + ["--resume"]) == 2                    # a finished table has nothing to continue
    assert main(["error-rates", "--resume", "--out", str(out)]) == 2
    assert main(["error-rates", "--counted", "5", "--trials", "3", "--sizes", "0.02", "--out", str(out),
                 "--resume"]) == 2

    other = tmp_path / "other.json"                         # counted on another setup: not one table
    other.write_text(json.dumps({**partial, "counting_machine": {"torch": "2.11.0"}}))
    assert main(["error-rates", "--counted", "5", "--trials", "2", "--sizes", "0.02", "--out", str(other),
                 "--resume"]) == 2
    assert "counted on another setup" in capsys.readouterr().err


@pytest.mark.parametrize("edit, why", [
    (lambda t: t.update(plain=[1e6] * 400), "400 A/A processes for a plan of 6"),
    (lambda t: t["injected"][0].update(size=0.5), "outside the plan's sizes"),
    (lambda t: t["injected"][0].update(instructions=[1e6] * 9), "9 processes for size 0.02"),
    (lambda t: t.update(plain=[1e6, -3.0]), "not a positive finite number"),
    (lambda t: t.update(plain="many"), "not lists"),
    (lambda t: t.pop("injected"), "not lists"),
])
def test_a_stopped_counted_table_that_the_plan_cannot_hold_is_refused_before_any_process(tmp_path, monkeypatch,
                                                                                       capsys, edit, why):
    import spikeflops.regress.error_rates as error_rates

    out = tmp_path / "counted.json"
    calls: list = []
    fake = _fake_counter(calls, fail_after=2)
    monkeypatch.setattr(error_rates, "count_step", lambda spec, extra_loop=0: fake(extra_loop))
    args = ["error-rates", "--counted", "5", "--trials", "2", "--sizes", "0.02", "--out", str(out)]
    assert main(args) == 2
    table = json.loads(out.read_text())
    table["injected"] = [{"size": 0.02, "loop": None, "instructions": []}]
    edit(table)
    out.write_text(json.dumps(table))
    made = len(calls)
    assert main(args + ["--resume"]) == 2 and len(calls) == made        # nothing measured
    err = capsys.readouterr().err.strip().splitlines()
    assert why in err[-1] and "cannot be continued" in err[-1], err
