"""On-CPU and blocked time per step: what a busy runner leaves judgeable. A step's wall time splits into the
time its thread ran, the time it waited for a CPU (a co-tenant's doing, /proc/thread-self/schedstat) and
the time it waited for anything else (sleeps, I/O, locks): the first judges work under contention, the last
catches waits that instruction counts cannot see."""

from __future__ import annotations

import statistics
import time

import pytest

from spikeflops.regress.interleave import _worth_more_rounds, judge_pairs
from spikeflops.regress.judge import CONTENDED, Verdict, judged_by_companions
from spikeflops.regress.rules import load_config
from workloads.load import blocked_time_unavailable, time_calls

needs_schedstat = pytest.mark.skipif(blocked_time_unavailable() is not None, reason=str(blocked_time_unavailable()))


def _work(n: int = 20_000) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


@needs_schedstat
def test_a_sleep_shows_as_blocked_time_and_work_as_on_cpu_time():
    calls = lambda times: len(times.wall) < 15     # noqa: E731
    busy = time_calls(_work, calls)
    sleepy = time_calls(lambda: (_work(), time.sleep(0.003)), calls)
    assert len(busy.wall) == len(busy.on_cpu) == len(busy.blocked) == 15
    # a 3 ms sleep is blocked time whatever the co-tenants do; work is on-CPU time, not blocked
    assert statistics.median(sleepy.blocked) > 0.0025, sleepy.blocked
    assert statistics.median(busy.blocked) < 0.0015, busy.blocked
    assert statistics.median(busy.on_cpu) > 0.5 * statistics.median(sleepy.on_cpu)


def test_blocked_time_below_the_floor_is_unchanged_and_a_wait_above_it_regresses():
    rule = load_config().rule_for("GPTStep.time_step_blocked")
    assert rule is not None and rule.noise == "blocked" and rule.floor == pytest.approx(0.001)
    quiet = [(0.0001, 0.0002)] * 5
    assert judge_pairs("b", "GPTStep.time_step_blocked", "seconds", (), quiet, rule, 0.05).status == "unchanged"
    waited = [(0.0001, 0.0031), (0.0, 0.0030), (0.0002, 0.0032), (0.0001, 0.0029), (0.0, 0.0031)]
    verdict = judge_pairs("b", "GPTStep.time_step_blocked", "seconds", (), waited, rule, 0.05)
    assert verdict.status == "regressed", verdict
    # a starved machine (CPU share 0.2) does not stop on-CPU or blocked time being judged
    starved = [(0.2, 0.2)] * 5
    verdict = judge_pairs("b", "GPTStep.time_step_blocked", "seconds", (), waited, rule, 0.05, 1, starved, 0.5)
    assert verdict.status == "regressed", verdict


def _verdict(metric, status, detail=""):
    return Verdict(metric, metric, "k", "lower", "seconds", status, 1.0, 1.0, 0.0, 0.05, detail, (("size", "n"),))


def test_a_contended_wall_timing_is_judged_by_its_on_cpu_and_blocked_time():
    contended = _verdict("GPTStep.time_step", "not judged", f"{CONTENDED}: not judged (CPU share 0.3)")
    judged = judged_by_companions([contended, _verdict("GPTStep.time_step_on_cpu", "unchanged"),
                                    _verdict("GPTStep.time_step_blocked", "unchanged")])
    assert judged[0].detail.startswith("judged by its on-CPU and blocked time (on-CPU unchanged, blocked unchanged)")
    from spikeflops.regress.judge import exit_code

    assert exit_code(judged) == 0
    # without both companions judged it stays undecided (exit 3)
    alone = judged_by_companions([contended, _verdict("GPTStep.time_step_on_cpu", "unchanged")])
    assert alone[0].detail.startswith(CONTENDED) and exit_code(alone) == 3


def test_compare_stops_when_no_round_left_can_decide_a_contended_timing():
    contended = _verdict("GPTStep.time_step", "not judged", f"{CONTENDED}: not judged (CPU share 0.3)")
    starved = {i: [0.3, 0.3] for i in range(5)}
    more, futile = _worth_more_rounds([contended], starved, 0.5, left=2)       # 0 quiet + 2 left < 3
    assert more == [] and futile == [contended]
    more, futile = _worth_more_rounds([contended], starved, 0.5, left=4)       # 4 quiet rounds may still come
    assert more == [contended] and futile == []
    undecided = _verdict("GPTStep.time_step_on_cpu", "undecided", "the interval reaches past the threshold")
    assert _worth_more_rounds([undecided], starved, 0.5, left=1) == ([undecided], [])


def _forked_burner(seconds: float) -> int:
    """A forked child that burns ``seconds`` of CPU and exits: its pid, for the caller to reap."""
    import os

    pid = os.fork()
    if pid == 0:
        end = time.process_time() + seconds
        while time.process_time() < end:
            pass
        os._exit(0)
    return pid


def test_a_child_the_measurement_waited_for_counts_as_its_work():
    """A child reaped during a probe (a GeNN case's own process, torchrun's ranks) is CPU the measurement got:
    the probe counts it."""
    import os

    from workloads.load import LoadProbe

    pid = _forked_burner(0.6)
    with LoadProbe(threads=1) as probe:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if os.waitpid(pid, os.WNOHANG)[0]:
                break
            time.sleep(0.01)
        else:
            pytest.fail("the child did not end")
    assert probe.record.cpu_s >= 0.5, probe.record
