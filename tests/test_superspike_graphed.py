"""The chunked (CUDA-graph) SuperSpike runner on a CPU, where its chunks run eagerly: the same trials as the step loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workloads.errors import SpikeflopsError
from workloads.superspike.case import SuperSpikeCase
from workloads.superspike.conditions import make_initial_conditions
from workloads.superspike.graphed import ChunkedTrials, chunk_lengths, trial_segments
from workloads.superspike.params import NetworkSize
from workloads.superspike.targets import default_target
from workloads.superspike.torch_backend import TorchSuperSpike
from workloads.superspike.training import learning_rate


def _segments_by_stepping(first: int, steps: int, update_every: int) -> list[tuple[int, int, bool]]:
    """What the plain loop does, step by step: a weight update after each non-zero multiple of update_every."""
    out, begin = [], 0
    for step in range(steps):
        g = first + step
        if g != 0 and g % update_every == 0:
            out.append((begin, step + 1 - begin, True))
            begin = step + 1
    if begin < steps:
        out.append((begin, steps - begin, False))
    return out


@pytest.mark.parametrize("first", [0, 1, 4999, 5000, 5001, 18900, 37800, 94500])
@pytest.mark.parametrize("steps,update_every", [(18900, 5000), (5000, 5000), (7300, 5000), (13, 5), (1, 1)])
def test_segments_end_where_the_step_loop_updates_the_weights(first, steps, update_every):
    segments = trial_segments(first, steps, update_every)
    assert segments == _segments_by_stepping(first, steps, update_every)
    assert sum(n for _, n, _ in segments) == steps


def test_chunk_lengths_are_a_greedy_sum():
    assert chunk_lengths(5001) == [1000] * 5 + [1]
    assert chunk_lengths(3899) == [1000] * 3 + [100] * 8 + [10] * 9 + [1] * 9
    assert chunk_lengths(0) == []
    assert chunk_lengths(23, (7, 3, 1)) == [7, 7, 7, 1, 1]
    with pytest.raises(ValueError, match="end with 1"):
        ChunkedTrials({"prev_h": torch.zeros(2), "err_o": torch.zeros(2)}, None, torch.zeros(3, 2), torch.zeros(3, 2),
                      sizes=(10, 3))


def _pair(size: NetworkSize, sizes):
    conditions = make_initial_conditions(size, 3)
    target = default_target(size.num_output, size.trial_ms)
    plain = TorchSuperSpike(size, conditions, target)
    chunked = TorchSuperSpike(size, conditions, target, cuda_graph=True)
    chunked.chunked = ChunkedTrials(chunked.state, chunked.step_fn, chunked.input_raster, chunked.target_raster,
                                    sizes=sizes)
    return plain, chunked


def test_chunked_trials_equal_the_step_loop_bit_for_bit_across_weight_updates():
    # 2,600 steps a trial against updates every 5,000: trial 1 updates in its middle, after its step 2,400
    size = NetworkSize("odd", 12, 10, 8, 260.0)
    plain, chunked = _pair(size, sizes=(1000, 7, 1))
    assert not chunked.chunked.use_graphs          # a CPU: the chunks run eagerly
    for trial in range(2):
        record = trial == 1
        a = plain.run_trial(learning_rate(trial), record=record)
        b = chunked.run_trial(learning_rate(trial), record=record)
        assert a.spike_counts == b.spike_counts and a.spike_counts["hidden"] > 0
        assert a.sum_sq_error == b.sum_sq_error and a.avg_sqr_err_sum == b.avg_sqr_err_sum
        if record:
            for pop in ("input", "hidden", "output"):
                np.testing.assert_array_equal(a.recorded[pop][0], b.recorded[pop][0])
                np.testing.assert_array_equal(a.recorded[pop][1], b.recorded[pop][1])
    assert plain.global_step == chunked.global_step == 2 * size.trial_timesteps
    for name, value in plain.state.items():
        assert torch.equal(value, chunked.state[name]), name
    # the weights did change: the test compared a learning network, not a frozen one
    assert not torch.equal(plain.state["w_ho"], torch.as_tensor(make_initial_conditions(size, 3).w_hidden_output))


def test_chunked_phase_timers_cover_steps_and_updates():
    size = NetworkSize("odd", 12, 10, 8, 260.0)
    conditions = make_initial_conditions(size, 0)
    model = TorchSuperSpike(size, conditions, default_target(size.num_output, size.trial_ms), profile_phases=True,
                            cuda_graph=True)
    model.run_trial(1.0)
    out = model.run_trial(1.0)             # global steps 2,600..5,199: an update at 5,000
    assert out.kernel_seconds["step"] > 0 and out.kernel_seconds["gradient_learn"] > 0


def test_cuda_graph_is_a_case_field_labelled_and_torch_only():
    case = SuperSpikeCase("torch", "cuda", "full", cuda_graph=True, compile=True)
    assert "cuda-graph" in case.label() and "compiled" in case.label()
    with pytest.raises(SpikeflopsError, match="torch backend only"):
        SuperSpikeCase("genn", "cuda", "ci", cuda_graph=True)


def test_the_table_times_the_graphed_path_and_keeps_one_convergence_per_model():
    from workloads.registry import all_rows

    graphed = [r for r in all_rows("SuperSpikeTrial") if r.case.cuda_graph]
    assert {(r.case.size, r.case.compile) for r in graphed} == {("ci", False), ("full", False), ("full", True)}
    assert all(r.case.device == "cuda" for r in graphed)
    # torch on a GPU trains through the graphs (bit-identical to the loop), never through compiled steps
    torch_gpu = [r.case for r in all_rows("SuperSpikeConvergence") if r.case.backend == "torch"
                 and r.case.device == "cuda"]
    assert torch_gpu and all(c.cuda_graph and not c.compile for c in torch_gpu)
    assert {c.trials for c in torch_gpu if c.size == "full"} == {20, 600}
    # every profile times the step loop beside the graphs it is compared with
    for profile in ("ci", "regular", "full"):
        timed = {(r.case.size, r.case.compile, r.case.cuda_graph) for r in all_rows("SuperSpikeTrial")
                 if r.case.backend == "torch" and r.case.device == "cuda" and profile in r.profiles}
        assert any(not c and not g for _, c, g in timed) and any(g for _, _, g in timed), profile
    assert not [r for r in all_rows() if r.family not in ("SuperSpikeTrial", "SuperSpikeConvergence")
                and getattr(r.case, "cuda_graph", False)]


class _RecordedChunk:
    """Stands in for a CUDA graph on a CPU: capture records the chunk without running it; replay runs it."""

    def __init__(self, fn):
        self.fn, self.replays = fn, 0

    def replay(self):
        self.replays += 1
        self.fn()


def test_capture_bookkeeping_warm_up_leaves_the_network_unchanged():
    # the GPU path on a CPU: each chunk length is warmed up (which runs steps), the state put back, captured
    # once and replayed; a warm-up that advanced the network, or a capture per replay, would show here
    size = NetworkSize("odd", 12, 10, 8, 260.0)
    plain, graphed = _pair(size, sizes=(1000, 7, 1))
    warm_ups = []
    graphed.chunked = ChunkedTrials(graphed.state, graphed.step_fn, graphed.input_raster, graphed.target_raster,
                                    sizes=(1000, 7, 1), capture=_RecordedChunk,
                                    warm_up=lambda fn: (warm_ups.append(fn), fn()))
    assert graphed.chunked.use_graphs
    for trial in range(2):
        a = plain.run_trial(learning_rate(trial), record=trial == 1)
        b = graphed.run_trial(learning_rate(trial), record=trial == 1)
        assert (a.spike_counts, a.sum_sq_error, a.avg_sqr_err_sum) == (b.spike_counts, b.sum_sq_error,
                                                                        b.avg_sqr_err_sum)
    graphs = graphed.chunked.graphs
    assert set(graphs) == {(1000, False), (7, False), (1, False), (1000, True), (7, True), (1, True)}
    assert len(warm_ups) == len(graphs) and sum(g.replays for g in graphs.values()) > len(graphs)
    for name, value in plain.state.items():
        assert torch.equal(value, graphed.state[name]), name


def test_a_compiled_step_in_chunks_trains_like_the_step_loop():
    # the GPU fast path's program (torch.compile'd step, run in chunks) on a CPU: inductor may round
    # differently, so the first trial is compared within float tolerance, the spikes exactly
    from workloads.superspike.params import get_size

    size = get_size("ci")
    conditions = make_initial_conditions(size, 0)
    target = default_target(size.num_output, size.trial_ms)
    fast = TorchSuperSpike(size, conditions, target, compile=True, cuda_graph=True).run_trial(learning_rate(0))
    loop = TorchSuperSpike(size, conditions, target).run_trial(learning_rate(0))
    assert fast.spike_counts == loop.spike_counts and loop.spike_counts["hidden"] > 0
    assert fast.sum_sq_error == pytest.approx(loop.sum_sq_error, rel=1e-4)
