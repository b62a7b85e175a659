"""A busy neighbour must not pass for a regression: CPU results carry the CPU share their process got,
and the gate does not judge a candidate whose share fell far below its baseline's."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import time

from spikeflops.regress.judge import compare
from spikeflops.regress.records import Measurement, ResultSet
from spikeflops.regress.rules import load_config
from workloads.profiles import get_profile
from workloads.registry import select
from workloads.measure import track

PARAMS = (("size", "gpt-nano"),)


def _rs(mfu: float, share: float) -> ResultSet:
    machine = {"harness": "asv", "machine": "m", "cpu": "c", "num_cpu": 2, "arch": "x86_64", "gpu": None}
    return ResultSet("mem", "asv", machine, "0" * 40, 0.0, [
        Measurement("GPTThroughput.mfu", PARAMS, "percent", mfu),
        Measurement("GPTThroughput.cpu_share", PARAMS, "", share)])


def _status(base, cand):
    (verdict,) = [v for v in compare(base, cand, load_config()) if v.metric == "GPTThroughput.mfu"]
    return verdict


def test_a_contended_candidate_is_not_judged_and_a_quiet_one_is():
    contended = _status(_rs(40.0, 0.95), _rs(30.0, 0.45))
    assert contended.status == "not judged" and "contended" in contended.detail
    quiet = _status(_rs(40.0, 0.95), _rs(30.0, 0.93))
    assert quiet.status == "regressed"


def _spin(stop_at: float) -> None:
    x = 0
    while time.time() < stop_at:
        x += 1


def test_a_busy_co_process_is_either_harmless_or_flagged():
    # the bound: tokens/s within 20 % of the quiet run's, or the run says its CPU share fell (then not judged)
    (row,) = [r for r in select("GPTThroughput", "ci") if r.case.variant == "fast"]
    profile = dataclasses.replace(get_profile("ci"), gpt_repeats=3)     # short: the busy run is the slow one
    quiet = track(row, profile)
    ctx = multiprocessing.get_context("fork")
    spinners = [ctx.Process(target=_spin, args=(time.time() + 60,)) for _ in range(2 * (os.cpu_count() or 1))]
    for p in spinners:
        p.start()
    try:
        busy = track(row, profile)
    finally:
        for p in spinners:
            p.terminate()
            p.join()
    assert 0 < quiet["cpu_share"].value <= 1.05 and 0 < busy["cpu_share"].value <= 1.05
    within = busy["tokens_per_s"].value >= 0.8 * quiet["tokens_per_s"].value
    base = _rs(quiet["mfu"].value, quiet["cpu_share"].value)
    cand = _rs(busy["mfu"].value, busy["cpu_share"].value)
    verdict = _status(base, cand)
    flagged = verdict.status == "not judged" and "contended" in verdict.detail
    assert within or flagged, (quiet, busy, verdict)
