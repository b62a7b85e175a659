"""Training-step throughput and model FLOP utilisation (PaLM's MFU) of a GPT size.

The step is timed with warm-up and repeats on the device's own clock; FLOPs
come from the analytic (PaLM) and exact counts, never thop's. MFU is quoted
against the datasheet peak of the detected GPU for the dtype in use (with the
peak's source) and against a matmul peak measured on the spot, which is the
only peak a CPU or an unknown GPU has.
"""

from __future__ import annotations

import math
import warnings

import torch

from ..errors import SpikeflopsError
from ..hardware import Peak, require_gpu, as_dict, device_name, machine_facts, measure_matmul_peak, peak_for
from ..memory import is_oom_error
from ..timing import measure, synchronize
from .config import get_config
from .fast import build_model
from .flops import analytic_flops, exact_flops
from .steps import check_initial_loss, make_forward, make_optimizer, make_train_step, parse_dtype, random_tokens

MODES = ("train", "forward")


def measure_step(size: str, variant: str = "book", dtype: str = "bfloat16", batch: int = 4,
                 device: torch.device | None = None, mode: str = "train", context_length: int | None = None,
                 compile: bool = False, warmup: int = 3, repeats: int = 10, seed: int = 0,
                 gpu_override: str | None = None, matmul_peak: bool | Peak = True) -> dict:
    """Time one step of ``mode`` and return a self-describing JSON-able record.

    ``matmul_peak``: True measures the matmul peak now, False skips it, a ``Peak`` is reused
    (measure it once per device and dtype when recording many sizes).
    """
    if mode not in MODES:
        raise SpikeflopsError(f"unknown mode {mode!r}; choose train or forward")
    if batch < 1 or repeats < 1 or warmup < 0:
        raise SpikeflopsError("batch and repeats must be >= 1, warmup >= 0")
    device = device or torch.device("cpu")
    if gpu_override:
        require_gpu(gpu_override)      # fail before minutes of timing, not after
    torch_dtype = parse_dtype(dtype)
    cfg = get_config(size, context_length)
    seq_len = cfg.context_length
    backward = mode == "train"

    model = build_model(cfg, variant, device=device, dtype=torch_dtype, compile=compile, seed=seed)
    inputs, targets = random_tokens(cfg.vocab_size, batch, seq_len, device, seed=seed)
    try:
        if backward:
            step = make_train_step(model, make_optimizer(model), inputs, targets)
            first_loss = step().item()   # also the first warm-up step (compiles, allocates optimizer state)
            check_initial_loss(first_loss, cfg.vocab_size)
        else:
            step = make_forward(model, inputs)
            logits = step()
            if not torch.isfinite(logits).all():
                raise SpikeflopsError("forward pass produced non-finite logits")
        stats = measure(step, device=device, warmup=max(warmup - 1, 0), repeats=repeats)
        last_loss = step().item() if backward else None
        synchronize(device)
    except Exception as exc:  # noqa: BLE001 - an OOM becomes a clear message, everything else propagates
        if is_oom_error(exc):
            raise SpikeflopsError(f"{size} at batch {batch} does not fit in memory on {device_name(device)}") from None
        raise
    if backward and not (math.isfinite(last_loss) and last_loss < first_loss):
        raise SpikeflopsError(f"loss did not fall over {warmup + repeats} steps ({first_loss:.3f} -> {last_loss:.3f})")

    flops_analytic = analytic_flops(cfg, batch, seq_len, backward=backward)
    flops_exact = exact_flops(cfg, batch, seq_len, backward=backward, variant=variant)
    seconds = stats.median
    achieved = flops_analytic / seconds
    peak = peak_for(device, torch_dtype, gpu_override)
    if isinstance(matmul_peak, Peak):
        measured = matmul_peak
    else:
        measured = measure_matmul_peak(device, torch_dtype) if matmul_peak else None
    if peak is None:
        warnings.warn(f"no datasheet peak for {device_name(device)} in {dtype}: MFU is against the measured "
                      "matmul peak only", stacklevel=2)
    tokens = batch * seq_len
    return {
        "workload": "gpt", "mode": mode, "size": size, "variant": variant, "dtype": dtype,
        "compile": compile, "batch": batch, "seq_len": seq_len, "config": cfg.to_dict(),
        "device": str(device), "device_name": device_name(device),
        "seed": seed, "warmup": warmup, "repeats": repeats,
        "seconds_per_step": stats.to_dict(),
        "tokens_per_s": tokens / seconds,
        "flops_per_step_analytic": flops_analytic, "flops_per_step_exact": flops_exact,
        "achieved_flops_per_s": achieved,
        "peak": as_dict(peak),
        "mfu": None if peak is None else achieved / peak.flops_per_s,
        "mfu_exact": None if peak is None else (flops_exact / seconds) / peak.flops_per_s,
        "measured_peak": as_dict(measured),
        "mfu_vs_measured_peak": None if measured is None else achieved / measured.flops_per_s,
        "loss_first": first_loss if backward else None, "loss_last": last_loss,
        "machine": machine_facts(),
    }
