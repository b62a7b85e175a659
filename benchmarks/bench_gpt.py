"""asv suites for the GPT-2 workload: step times, FLOPs, MFU, tokens/s, max batch, kernel breakdown.

Parameters are the same on every machine; the run profile picks which sizes run.
Measurements that feed several ``track_*`` benchmarks are taken once in ``setup_cache``.
"""

from __future__ import annotations

from workloads.gpt.breakdown import KINDS

from .common import (DEVICES, DTYPES, GPT_SIZES, PROFILE, Benchmark, default_dtype, require_device,
                     require_in_profile, runnable_devices, sync)

VARIANTS = ["book", "fast"]


def _require(size: str, device: str, dtype: str = "float32") -> None:
    require_in_profile(size in PROFILE.gpt_sizes, f"size {size}")
    require_device(device, dtype)


def _skip_unless_cached(cache: dict, key: tuple) -> None:
    if key not in cache:
        raise NotImplementedError(f"{' '.join(key)} is not measured in the {PROFILE.name} profile on this machine")


class GPTStep(Benchmark):
    """Wall time of a synchronised forward pass and of a full training step (AdamW included)."""

    params = (GPT_SIZES, VARIANTS, DTYPES, DEVICES)
    param_names = ["size", "variant", "dtype", "device"]
    version = "gpt-step-2"
    repeat = (10, 20, 30.0)     # enough raw samples for the gate's rank test to see a 10 % change

    def setup(self, size, variant, dtype, device):
        _require(size, device, dtype)
        import torch

        from workloads.gpt.config import get_config
        from workloads.gpt.fast import build_model
        from workloads.gpt.steps import (check_initial_loss, make_forward, make_optimizer, make_train_step,
                                         parse_dtype, random_tokens)

        self.device = torch.device(device)
        cfg = get_config(size, PROFILE.gpt_context)
        model = build_model(cfg, variant, device=self.device, dtype=parse_dtype(dtype))
        inputs, targets = random_tokens(cfg.vocab_size, PROFILE.gpt_batch, cfg.context_length, self.device)
        self.forward = make_forward(model, inputs)
        self.train_step = make_train_step(model, make_optimizer(model), inputs, targets)
        check_initial_loss(self.train_step().item(), cfg.vocab_size)   # right before it is timed
        self.train_step()
        self.forward()
        sync(self.device)

    def time_forward(self, *params):
        self.forward()
        sync(self.device)

    def time_train_step(self, *params):
        self.train_step()
        sync(self.device)

    def peakmem_train_step(self, *params):
        self.train_step()


class GPTThroughput(Benchmark):
    """MFU and tokens/s of a training step (higher is better: the spikeflops gate knows)."""

    params = (GPT_SIZES, VARIANTS, DTYPES, DEVICES)
    param_names = ["size", "variant", "dtype", "device"]
    version = "gpt-throughput-2"
    repeat = 1

    def setup_cache(self):
        import torch

        from workloads.gpt.mfu import measure_step
        from workloads.gpt.steps import parse_dtype
        from workloads.hardware import measure_matmul_peak

        records = {}
        for device in runnable_devices():
            for dtype in DTYPES if device == "cuda" else ["float32"]:
                # the matmul peak once per device and dtype, not once per record
                peak = measure_matmul_peak(torch.device(device), parse_dtype(dtype))
                for size in PROFILE.gpt_sizes:
                    for variant in VARIANTS:
                        records[(size, variant, dtype, device)] = measure_step(
                            size, variant, dtype, PROFILE.gpt_batch, torch.device(device),
                            repeats=PROFILE.gpt_repeats, context_length=PROFILE.gpt_context, matmul_peak=peak)
        return records

    def setup(self, cache, size, variant, dtype, device):
        _require(size, device, dtype)
        _skip_unless_cached(cache, (size, variant, dtype, device))

    def track_tokens_per_s(self, cache, *key):
        return cache[key]["tokens_per_s"]
    track_tokens_per_s.unit = "tokens/s"

    def track_mfu(self, cache, *key):
        """Against the datasheet peak; against the measured matmul peak where there is none (CPU)."""
        r = cache[key]
        return 100.0 * (r["mfu"] if r["mfu"] is not None else r["mfu_vs_measured_peak"])
    track_mfu.unit = "percent"

    def track_mfu_vs_measured_peak(self, cache, *key):
        return 100.0 * cache[key]["mfu_vs_measured_peak"]
    track_mfu_vs_measured_peak.unit = "percent"


class GPTFlops(Benchmark):
    """FLOPs per forward pass and training step at the profile's batch, three ways (deterministic)."""

    params = (GPT_SIZES,)
    param_names = ["size"]
    version = "gpt-flops-2"

    def setup(self, size):
        require_in_profile(size in PROFILE.gpt_sizes, f"size {size}")
        from workloads.gpt import flops
        from workloads.gpt.config import get_config

        cfg = get_config(size, PROFILE.gpt_context)
        self.flops = flops
        self.args = (cfg, PROFILE.gpt_batch, cfg.context_length)

    def track_forward_thop(self, size):
        return self.flops.thop_flops(*self.args)
    track_forward_thop.unit = "FLOP"

    def track_forward_exact(self, size):
        return self.flops.exact_flops(*self.args)
    track_forward_exact.unit = "FLOP"

    def track_forward_analytic(self, size):
        return self.flops.analytic_flops(*self.args)
    track_forward_analytic.unit = "FLOP"

    def track_train_exact(self, size):
        return self.flops.exact_flops(*self.args, backward=True)
    track_train_exact.unit = "FLOP"

    def track_train_analytic(self, size):
        return self.flops.analytic_flops(*self.args, backward=True)
    track_train_analytic.unit = "FLOP"


class GPTMaxBatch(Benchmark):
    """Largest batch of the fast variant: no-grad forward and full training step.

    GPUs: the whole device, bfloat16. CPUs: float32 under the profile's memory budget,
    so the figure is deterministic and comparable across commits.
    """

    params = (GPT_SIZES, ["forward", "train"], DEVICES)
    param_names = ["size", "mode", "device"]
    version = "gpt-maxbatch-2"
    repeat = 1
    timeout = 3600

    def setup(self, size, mode, device):
        _require(size, device, default_dtype(device))
        import torch

        from workloads.gpt.maxbatch import ProbeSpec, search_max_batch

        limit = PROFILE.gpt_memory_limit_bytes if device == "cpu" else None
        spec = ProbeSpec(size, "fast", default_dtype(device), mode, PROFILE.gpt_context)
        self.result = search_max_batch(spec, torch.device(device), limit)

    def track_max_batch(self, *params):
        return self.result.max_batch
    track_max_batch.unit = "sequences"


class GPTKernelBreakdown(Benchmark):
    """Per-step time by kind of op from torch.profiler (self time; device time on GPUs)."""

    params = (GPT_SIZES, VARIANTS, DEVICES, list(KINDS))
    param_names = ["size", "variant", "device", "kind"]
    version = "gpt-breakdown-2"
    repeat = 1

    def setup_cache(self):
        import torch

        from workloads.gpt.breakdown import kernel_breakdown

        return {(size, variant, device): kernel_breakdown(size, variant, default_dtype(device),
                                                          PROFILE.gpt_batch, torch.device(device))
                for device in runnable_devices() for size in PROFILE.gpt_sizes for variant in VARIANTS}

    def setup(self, cache, size, variant, device, kind):
        _require(size, device, default_dtype(device))
        _skip_unless_cached(cache, (size, variant, device))

    def track_seconds(self, cache, size, variant, device, kind):
        return cache[(size, variant, device)][kind]
    track_seconds.unit = "seconds"
