"""pytest-benchmark twins of the asv suites: same workload functions, same profile, same numbers.

`pytest --benchmark-only` times them; plain `pytest` runs each once as a test.
Each asserts its result is right before anything is timed; non-time metrics go
to ``extra_info``.
"""

from __future__ import annotations

import math

import pytest
import torch

from workloads.gpt.config import get_config
from workloads.gpt.fast import build_model
from workloads.gpt.flops import analytic_flops, exact_flops, thop_flops
from workloads.gpt.maxbatch import ProbeSpec, search_max_batch
from workloads.gpt.mfu import measure_step
from workloads.gpt.steps import check_initial_loss, make_optimizer, make_train_step, random_tokens
from workloads.profiles import get_profile
from workloads.superspike.genn_backend import pygenn_available
from workloads.superspike.params import get_size
from workloads.superspike.workload import make_backend, run_training

PROFILE = get_profile()
SIZE = PROFILE.gpt_sizes[0]


def _dtype(device):
    return "bfloat16" if device.type == "cuda" else "float32"


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@pytest.mark.parametrize("variant", ["book", "fast"])
def test_gpt_train_step(benchmark, device, variant):
    cfg = get_config(SIZE, PROFILE.gpt_context)
    model = build_model(cfg, variant, device=device, dtype=torch.float32 if device.type == "cpu" else torch.bfloat16)
    inputs, targets = random_tokens(cfg.vocab_size, PROFILE.gpt_batch, cfg.context_length, device)
    step = make_train_step(model, make_optimizer(model), inputs, targets)
    first = step().item()
    check_initial_loss(first, cfg.vocab_size)
    second = step().item()
    assert second < first                                   # learning happens before anything is timed
    record = measure_step(SIZE, variant, _dtype(device), PROFILE.gpt_batch, device, repeats=PROFILE.gpt_repeats,
                          context_length=PROFILE.gpt_context, matmul_peak=True)
    # per timed step, not just the median: the gate's rank test needs the samples
    per_step = [record["seconds_per_step"]["median"] / s for s in record["seconds_per_step"]["samples"]]
    benchmark.extra_info.update(
        size=SIZE, variant=variant, dtype=_dtype(device), batch=PROFILE.gpt_batch,
        tokens_per_s=[record["tokens_per_s"] * f for f in per_step],
        mfu=None if record["mfu"] is None else [record["mfu"] * f for f in per_step],
        mfu_vs_measured_peak=[record["mfu_vs_measured_peak"] * f for f in per_step],
        flops_per_step_analytic=record["flops_per_step_analytic"], flops_per_step_exact=record["flops_per_step_exact"],
        peak=record["peak"], measured_peak=record["measured_peak"])

    def timed():
        step()
        _sync(device)

    benchmark.pedantic(timed, rounds=PROFILE.gpt_repeats, iterations=1, warmup_rounds=1)


def test_gpt_flops(benchmark):
    cfg = get_config(SIZE, PROFILE.gpt_context)
    b, t = PROFILE.gpt_batch, cfg.context_length
    d = cfg.emb_dim
    linear = 2 * b * t * (cfg.n_layers * 12 * d * d + d * cfg.vocab_size)
    attention = cfg.n_layers * 4 * b * t * t * d
    fwd = exact_flops(cfg, b, t)
    assert fwd == linear + attention and thop_flops(cfg, b, t) == linear   # matches the formula first
    benchmark.extra_info.update(size=SIZE, batch=b, forward_thop=linear, forward_exact=fwd,
                                forward_analytic=analytic_flops(cfg, b, t),
                                train_exact=3 * fwd, train_analytic=analytic_flops(cfg, b, t, backward=True))
    benchmark.pedantic(exact_flops, args=(cfg, b, t, True), rounds=3, iterations=1)


@pytest.mark.slow
def test_gpt_max_batch(benchmark, device):
    limit = PROFILE.gpt_memory_limit_bytes if device.type == "cpu" else None
    spec = ProbeSpec(SIZE, "fast", _dtype(device), "train", PROFILE.gpt_context)
    result = benchmark.pedantic(search_max_batch, args=(spec, device, limit), rounds=1, iterations=1)
    probes = {p.batch: p.fits for p in result.probes}
    assert result.max_batch >= 1 and probes[result.max_batch]
    assert result.hit_cap or probes[result.max_batch + 1] is False
    benchmark.extra_info.update(size=SIZE, mode="train", max_batch=result.max_batch, memory_limit_bytes=limit)


BACKENDS = ["torch", pytest.param("genn", marks=pytest.mark.genn)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_superspike_trial(benchmark, device, backend):
    size = get_size(PROFILE.superspike_size)
    model = make_backend(backend, size, seed=0, device=device.type, kernel_profiling=backend == "genn")
    warm = model.run_trial(1.0)
    assert math.isfinite(warm.sum_sq_error) and warm.spike_counts["input"] > 0
    outputs = []
    benchmark.pedantic(lambda: outputs.append(model.run_trial(1.0)), rounds=PROFILE.superspike_timing_trials,
                       iterations=1)
    kernels = {}
    for out in outputs:
        for k, v in out.kernel_seconds.items():
            kernels.setdefault(k, []).append(v)
    # one value per timed trial: the gate ranks them (a median of few trials on a shared CPU swings by half)
    benchmark.extra_info.update(backend=backend, size=size.name, steps_per_trial=size.trial_timesteps,
                                kernel_seconds=kernels)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_superspike_convergence(benchmark, device, backend):
    """One training run per seed of the profile; the gate compares the per-seed lists.
    Run as a plain test (timing disabled) one seed is enough to check that learning happens."""
    seeds = PROFILE.superspike_seeds if not benchmark.disabled else PROFILE.superspike_seeds[:1]

    def train_all_seeds():
        return [run_training(PROFILE.superspike_size, backend, PROFILE.superspike_trials, seed=seed,
                             device=device.type, kernel_profiling=False) for seed in seeds]

    results = benchmark.pedantic(train_all_seeds, rounds=1, iterations=1)
    for result in results:
        first, last = result.records[0], result.records[-1]
        assert math.isfinite(last.trial_error) and last.trial_error < first.trial_error, result.seed
    benchmark.extra_info.update(
        backend=backend, trials=PROFILE.superspike_trials, seeds=list(seeds),
        first_error=[r.records[0].trial_error for r in results],
        final_error=[r.records[-1].trial_error for r in results],
        final_running_error=[r.records[-1].running_error for r in results],
        trials_to_target=[r.trials_to_target for r in results],
        seconds_to_target=[r.seconds_to_target for r in results])


def test_genn_skip_reason_is_clear():
    if pygenn_available():
        pytest.skip("pygenn is installed here")
    with pytest.raises(Exception, match="pygenn"):
        make_backend("genn", get_size("ci"))
