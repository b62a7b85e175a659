"""The distributed GPT case under torchrun: 2 CPU ranks over gloo, a tiny model.

Each launch costs a few seconds (two fresh interpreters importing torch), so one launch per
strategy serves every check of that strategy.
"""

from __future__ import annotations

import os
import socket
import sys

import pytest
from leftovers import new_tag, survivors

from workloads.errors import SpikeflopsError
from workloads.gpt.config import get_config
from workloads.gpt.fast import build_model
from workloads.gpt.launch import launch, port_in_use, threads_per_rank
from workloads.gpt.scale import ScaleCase, ScaleRecord, world_sizes
from workloads.gpt.scale_rank import collective_seconds
from workloads.gpt.steps import make_optimizer, make_train_step, random_tokens

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="torchrun launches are tested on Linux")]
READS_ONE_RUN = pytest.mark.xdist_group("torchrun-launches")     # its readers on one worker: `launched` is made once

CASE = ScaleCase("gpt-nano", "ddp", world_size=2, local_batch=2, context_length=32)


def single_process_losses(case: ScaleCase) -> tuple[float, float]:
    """The loss of the concatenated global batch before and after one update, in this process."""
    cfg = get_config(case.size, case.context_length)
    model = build_model(cfg, case.variant, seed=case.seed)
    inputs, targets = random_tokens(cfg.vocab_size, case.global_batch, cfg.context_length, "cpu", seed=case.seed)
    step = make_train_step(model, make_optimizer(model), inputs, targets)
    return float(step()), float(step())


@pytest.fixture(scope="module", params=["ddp", "fsdp"])
def launched(request):
    case = CASE.with_(strategy=request.param)
    return case, launch(case, warmup=0, repeats=2).record


@READS_ONE_RUN
def test_both_strategies_run_and_one_update_equals_the_single_process_step(launched):
    case, record = launched
    first, second = single_process_losses(case)
    assert record.case == case
    assert record.loss_first == pytest.approx(first, rel=1e-5)
    assert record.loss_second == pytest.approx(second, rel=1e-5)
    assert second < first                                 # the update did something the ranks agree on


@READS_ONE_RUN
def test_ranks_see_identical_gradients(launched):
    _, record = launched
    assert len(record.grad_digests) == 2 and record.grad_digests[0] == record.grad_digests[1]


@READS_ONE_RUN
def test_the_record_is_complete_and_its_numbers_are_consistent(launched):
    case, record = launched
    assert len(record.rank_step_seconds) == 2 and all(len(s) == 2 for s in record.rank_step_seconds)
    # a step ends when its slowest rank ends
    assert record.step_seconds == tuple(max(a, b) for a, b in zip(*record.rank_step_seconds))
    assert record.tokens_per_s == pytest.approx(4 * 32 / record.seconds_per_step)
    assert 0 < record.collective_share < 1                 # two ranks exchange gradients / shards every step
    assert record.topology["backend"] == "gloo" and record.topology["world_size"] == 2
    assert record.peak_flops_per_s and 0 < record.mfu < 1.1
    # its one-rank baseline was timed in the same launch (rank 0 alone, over a group of its own)
    assert record.baseline_tokens_per_s_per_rank > 0 and record.scaling_efficiency == pytest.approx(
        record.tokens_per_s_per_rank / record.baseline_tokens_per_s_per_rank)
    again = ScaleRecord.from_dict(record.to_dict())
    assert again.to_dict() == record.to_dict()


def test_record_arithmetic_on_known_numbers():
    case = ScaleCase("gpt-nano", "ddp", world_size=4, local_batch=3)          # context 128
    rec = ScaleRecord(case=case, step_seconds=(0.5, 0.4, 0.6), rank_step_seconds=((0.5, 0.4, 0.6),) * 4,
                      flops_per_step_per_rank=1e9, peak_flops_per_s=4e9, peak_source="test",
                      collective_seconds=(0.1, 0.2, 0.1, 0.2), profiled_step_seconds=(1.0, 1.0, 1.0, 1.0),
                      loss_first=7.6, loss_second=7.5, loss_last=7.0, grad_digests=("a",) * 4,
                      threads_per_rank=1, baseline_tokens_per_s_per_rank=800.0)
    assert case.global_batch == 12
    assert rec.seconds_per_step == 0.5
    assert rec.tokens_per_s == pytest.approx(12 * 128 / 0.5)
    assert rec.tokens_per_s_per_rank == pytest.approx(3 * 128 / 0.5)
    assert rec.scaling_efficiency == pytest.approx(768 / 800)
    assert rec.mfu == pytest.approx(1e9 / 0.5 / 4e9)
    assert rec.collective_share == pytest.approx(0.15)
    assert rec.with_baseline(768.0).scaling_efficiency == pytest.approx(1.0)
    assert world_sizes(1) == [1] and world_sizes(2) == [1, 2] and world_sizes(6) == [1, 2, 4, 6]


def test_collective_time_is_a_union_of_intervals_not_a_sum():
    class Span:
        def __init__(self, start, end):
            self.start, self.end = start, end

    class Event:
        def __init__(self, name, start, end):
            self.name, self.time_range, self.device_type = name, Span(start, end), "DeviceType.CPU"

    events = [Event("c10d::allreduce_", 0, 100), Event("gloo:all_reduce", 10, 90),    # nested: counted once
              Event("aten::mm", 100, 400), Event("gloo:all_gather", 350, 450)]
    assert collective_seconds(events, on_gpu=False) == pytest.approx(200e-6)


def test_a_failing_rank_ends_the_run_with_its_own_line_and_no_survivors(monkeypatch):
    # this launch's processes only (tagged through the environment they inherit): the other xdist worker may
    # be running a launch of its own
    tag = new_tag()
    for name, value in tag.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SpikeflopsError) as err:
        launch(CASE, warmup=0, repeats=1, fail_on_rank=1)
    message = str(err.value)
    assert "\n" not in message and "rank 1" in message and "failure injected" in message
    # rank 0, blocked in a collective, was stopped too (a SIGKILLed process leaves /proc a moment later: on a
    # busy runner one was still listed as the launch returned)
    assert survivors(tag) == []


def test_a_port_in_use_is_one_clear_line_before_anything_starts():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert port_in_use(port)
        with pytest.raises(SpikeflopsError, match=f"port {port} is already in use"):
            launch(CASE, port=port)


def test_cpu_ranks_share_the_cores_of_the_largest_world():
    cores = os.cpu_count()
    assert threads_per_rank("cpu", 1) == cores
    assert threads_per_rank("cpu", 2) == max(1, cores // 2)
    assert threads_per_rank("cpu", 4 * cores) == 1
    assert threads_per_rank("cuda", 8) == 1
