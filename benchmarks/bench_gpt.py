"""asv suites for the GPT-2 workload: step times, FLOPs, MFU, tokens/s, max batch, kernel breakdown."""

from __future__ import annotations

import torch

from workloads.gpt.breakdown import KINDS, kernel_breakdown
from workloads.gpt.config import SIZES, get_config
from workloads.gpt.fast import build_model
from workloads.gpt.flops import analytic_flops, exact_flops, thop_flops
from workloads.gpt.maxbatch import ProbeSpec, search_max_batch
from workloads.gpt.mfu import measure_step
from workloads.gpt.steps import check_initial_loss, make_forward, make_optimizer, make_train_step, parse_dtype, \
    random_tokens

from .common import DEVICES, DTYPES, PROFILE, Benchmark, require_device, require_in_profile, sync

SIZE_NAMES = list(SIZES)
VARIANTS = ["book", "fast"]


def _check(size, dtype, device):
    require_in_profile(size in PROFILE.gpt_sizes, f"size {size}")
    dev = require_device(device)
    if dev.type == "cpu" and dtype != "float32":
        raise NotImplementedError("CPU runs are float32 only")
    return dev


class GPTStep(Benchmark):
    """Wall time of a synchronised forward pass and of a full training step."""

    params = (SIZE_NAMES, VARIANTS, DTYPES, DEVICES)
    param_names = ["size", "variant", "dtype", "device"]
    version = "gpt-step-1"

    def setup(self, size, variant, dtype, device):
        self.device = _check(size, dtype, device)
        cfg = get_config(size, PROFILE.gpt_context)
        model = build_model(cfg, variant, device=self.device, dtype=parse_dtype(dtype))
        inputs, targets = random_tokens(cfg.vocab_size, PROFILE.gpt_batch, cfg.context_length, self.device)
        self.forward = make_forward(model, inputs)
        self.train_step = make_train_step(model, make_optimizer(model), inputs, targets)
        check_initial_loss(self.train_step().item(), cfg.vocab_size)   # right before timed
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
    """MFU and tokens/s of a training step (larger is better: the spikeflops gate knows)."""

    params = (SIZE_NAMES, VARIANTS, DTYPES, DEVICES)
    param_names = ["size", "variant", "dtype", "device"]
    version = "gpt-throughput-1"
    repeat = 1

    def setup(self, size, variant, dtype, device):
        dev = _check(size, dtype, device)
        self.record = measure_step(size, variant, dtype, PROFILE.gpt_batch, dev, repeats=PROFILE.gpt_repeats,
                                   context_length=PROFILE.gpt_context)

    def track_tokens_per_s(self, *params):
        return self.record["tokens_per_s"]
    track_tokens_per_s.unit = "tokens/s"

    def track_mfu(self, *params):
        """Against the datasheet peak; against the measured matmul peak where there is none (CPU)."""
        r = self.record
        return 100.0 * (r["mfu"] if r["mfu"] is not None else r["mfu_vs_measured_peak"])
    track_mfu.unit = "percent"

    def track_mfu_vs_measured_peak(self, *params):
        return 100.0 * self.record["mfu_vs_measured_peak"]
    track_mfu_vs_measured_peak.unit = "percent"


class GPTFlops(Benchmark):
    """FLOPs per training step and forward pass at the profile's batch, three ways (deterministic)."""

    params = (SIZE_NAMES,)
    param_names = ["size"]
    version = "gpt-flops-1"

    def setup(self, size):
        self.cfg = get_config(size, PROFILE.gpt_context)

    def _args(self):
        return self.cfg, PROFILE.gpt_batch, self.cfg.context_length

    def track_forward_thop(self, size):
        return thop_flops(*self._args())
    track_forward_thop.unit = "FLOP"

    def track_forward_exact(self, size):
        return exact_flops(*self._args())
    track_forward_exact.unit = "FLOP"

    def track_forward_analytic(self, size):
        return analytic_flops(*self._args())
    track_forward_analytic.unit = "FLOP"

    def track_train_exact(self, size):
        return exact_flops(*self._args(), backward=True)
    track_train_exact.unit = "FLOP"

    def track_train_analytic(self, size):
        return analytic_flops(*self._args(), backward=True)
    track_train_analytic.unit = "FLOP"


class GPTMaxBatch(Benchmark):
    """Largest batch: no-grad forward and full training step (CPU: under the profile's memory budget)."""

    params = (SIZE_NAMES, ["forward", "train"], DEVICES)
    param_names = ["size", "mode", "device"]
    version = "gpt-maxbatch-1"
    repeat = 1
    timeout = 3600

    def setup(self, size, mode, device):
        dev = _check(size, "float32" if device == "cpu" else "bfloat16", device)
        dtype = "float32" if dev.type == "cpu" else "bfloat16"
        limit = PROFILE.gpt_memory_limit_bytes if dev.type == "cpu" else None
        self.result = search_max_batch(ProbeSpec(size, "fast", dtype, mode, PROFILE.gpt_context), dev, limit)

    def track_max_batch(self, *params):
        return self.result.max_batch
    track_max_batch.unit = "sequences"


class GPTKernelBreakdown(Benchmark):
    """Per-step time by kind of op from torch.profiler (self time; device time on GPUs)."""

    params = (SIZE_NAMES, VARIANTS, DEVICES, list(KINDS))
    param_names = ["size", "variant", "device", "kind"]
    version = "gpt-breakdown-1"
    repeat = 1

    def setup_cache(self):
        out = {}
        for device in DEVICES:
            if device == "cuda" and not torch.cuda.is_available():
                continue
            dtype = "bfloat16" if device == "cuda" else "float32"
            for size in PROFILE.gpt_sizes:
                for variant in VARIANTS:
                    out[(size, variant, device)] = kernel_breakdown(size, variant, dtype, PROFILE.gpt_batch,
                                                                    torch.device(device))
        return out

    def setup(self, cache, size, variant, device, kind):
        if (size, variant, device) not in cache:
            raise NotImplementedError(f"{size} {variant} on {device} not measured in this profile/machine")

    def track_seconds(self, cache, size, variant, device, kind):
        return cache[(size, variant, device)][kind]
    track_seconds.unit = "seconds"
