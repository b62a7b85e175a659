"""GPU tests: run with `python -m pytest -m gpu` on a CUDA machine; every test here skips without one."""

from __future__ import annotations

import time

import pytest
import torch

pytestmark = pytest.mark.gpu

CUDA = "cuda"


def test_cuda_event_timing_agrees_with_a_synchronised_wall_clock():
    from workloads.timing import measure

    a = torch.randn(4096, 4096, device=CUDA)

    def long_kernel():
        for _ in range(20):
            a @ a
    stats = measure(long_kernel, device=CUDA, warmup=2, repeats=5)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(5):
        long_kernel()
    torch.cuda.synchronize()
    wall = (time.perf_counter() - t0) / 5
    assert stats.median == pytest.approx(wall, rel=0.15)


def test_gpu_max_batch_is_monotone_and_the_boundary_is_real():
    from workloads.gpt.case import GPTCase
    from workloads.gpt.maxbatch import search_max_batch
    from workloads.gpt.workload import DoesNotFit, prepare

    case = GPTCase("gpt-mini", "fast", "bfloat16", CUDA, "train", 1)
    total = torch.cuda.get_device_properties(0).total_memory
    small = search_max_batch(case, int(0.1 * total), cap=8192)
    large = search_max_batch(case, int(0.2 * total), cap=8192)
    assert large.max_batch >= small.max_batch >= 1
    torch.cuda.set_per_process_memory_fraction(0.1)
    try:
        with prepare(case.with_(batch=small.max_batch), warmup=0):
            pass
        if not small.hit_cap:
            with pytest.raises(DoesNotFit):
                prepare(case.with_(batch=small.max_batch + 1), warmup=0)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)


def test_gpt_small_mfu_is_plausible_against_both_peaks():
    from workloads.gpt.case import GPTCase
    from workloads.gpt.workload import measure_step

    rec = measure_step(GPTCase("gpt-small", "fast", "bfloat16", CUDA, "train", 8), warmup=3, repeats=10)
    if rec.peak is None or rec.peak.kind != "datasheet":
        pytest.skip(f"no datasheet peak for {rec.device_name}")
    assert 0.05 < rec.mfu < 0.9
    assert rec.mfu_vs_measured_peak < 1.0 and rec.mfu < rec.mfu_vs_measured_peak


def test_torch_superspike_on_cuda_equals_cpu_up_to_the_first_weight_update():
    from workloads.superspike.case import SuperSpikeCase
    from workloads.superspike.workload import prepare

    cpu = prepare(SuperSpikeCase("torch", "cpu", "ci")).run_trial(1.0, record=True)
    gpu = prepare(SuperSpikeCase("torch", CUDA, "ci")).run_trial(1.0, record=True)
    update_ms = 500.0
    for pop in ("input", "hidden", "output"):
        (tc, ic), (tg, ig) = cpu.recorded[pop], gpu.recorded[pop]
        before_c, before_g = tc <= update_ms, tg <= update_ms
        assert list(zip(tc[before_c], ic[before_c])) == list(zip(tg[before_g], ig[before_g])), pop


@pytest.mark.genn
def test_genn_cuda_matches_torch_cuda_on_trial_zero_and_its_timers_fit_in_the_trial():
    from workloads.superspike.case import SuperSpikeCase
    from workloads.superspike.workload import measure_trials, prepare

    genn = prepare(SuperSpikeCase("genn", CUDA, "ci")).run_trial(1.0)
    ref = prepare(SuperSpikeCase("torch", CUDA, "ci")).run_trial(1.0)
    for pop in ("input", "hidden", "output"):
        a, b = genn.spike_counts[pop], ref.spike_counts[pop]
        assert abs(a - b) <= max(2, 0.03 * max(a, b)), (pop, a, b)
    rec = measure_trials(SuperSpikeCase("genn", CUDA, "ci", kernel_profiling=True), repeats=3)
    for i, wall in enumerate(rec.seconds_per_trial):
        kernels = [v[i] for v in rec.kernel_seconds.values()]
        assert any(k > 0 for k in kernels) and sum(kernels) <= wall


@pytest.mark.parametrize("compile", [False, True], ids=["eager-step", "compiled-step"])
def test_graphed_superspike_on_cuda_equals_the_step_loop(compile):
    from workloads.superspike.case import SuperSpikeCase
    from workloads.superspike.training import learning_rate
    from workloads.superspike.workload import prepare

    plain = prepare(SuperSpikeCase("torch", CUDA, "ci", compile=compile))
    graphed = prepare(SuperSpikeCase("torch", CUDA, "ci", compile=compile, cuda_graph=True))
    assert graphed.chunked.use_graphs
    for trial in range(3):                 # trials 1 and 2 start with a weight update
        a = plain.run_trial(learning_rate(trial), record=trial == 2)
        b = graphed.run_trial(learning_rate(trial), record=trial == 2)
        assert a.spike_counts == b.spike_counts and a.sum_sq_error == b.sum_sq_error
        assert a.avg_sqr_err_sum == b.avg_sqr_err_sum
    for pop in ("hidden", "output"):
        assert (a.recorded[pop][0] == b.recorded[pop][0]).all() and (a.recorded[pop][1] == b.recorded[pop][1]).all()
    for name, value in plain.state.items():
        assert torch.equal(value, graphed.state[name]), name
    assert graphed.chunked.graphs, "no CUDA graph was captured"
