"""Kernel-time breakdown of a prepared GPT step from torch.profiler, grouped by kind of op."""

from __future__ import annotations

KINDS = ("matmul", "attention", "normalisation", "elementwise", "loss", "optimizer")

_MATMUL = ("aten::mm", "aten::addmm")
# The book's attention is two batched matmuls (QK^T, AV) around a masked softmax; SDPA is one op.
# Both are attention: a 4-D matmul is dispatched as bmm, a linear layer as mm/addmm.
_ATTENTION = ("aten::bmm", "aten::baddbmm", "scaled_dot_product", "flash_attention", "efficient_attention",
              "cudnn_attention", "aten::_softmax", "aten::softmax", "aten::masked_fill")
_LOSS = ("log_softmax", "nll_loss", "cross_entropy")
_NORM = ("layer_norm", "aten::var", "aten::mean", "aten::rsqrt", "aten::sqrt")


def classify(op_name: str) -> str:
    if op_name.startswith("aten::_foreach") or "_fused_adam" in op_name:
        return "optimizer"
    if any(k in op_name for k in _LOSS):          # before attention: "_log_softmax" contains "_softmax"
        return "loss"
    if op_name in _MATMUL:
        return "matmul"
    if any(k in op_name for k in _ATTENTION):
        return "attention"
    if any(k in op_name for k in _NORM):
        return "normalisation"
    return "elementwise"


def profile_kinds(step, device, steps: int = 3) -> dict[str, float]:
    """Seconds per step in each kind (self time: device time on GPUs, CPU time otherwise).

    A profiler schedule keeps the first profiled step's costs (profiler start-up, lazy
    initialisation) out of the figures: one step waits, one warms up, ``steps`` are recorded.
    """
    import torch
    from torch.profiler import ProfilerActivity, profile, schedule

    from ..quietlogs import without_native_logs

    on_gpu = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    # kineto prints its own start and stop lines to stderr: kept out of the command's output
    with without_native_logs(), profile(activities=activities,
                                        schedule=schedule(wait=1, warmup=1, active=steps, repeat=1)) as prof:
        for _ in range(2 + steps):
            step()
            if on_gpu:
                torch.cuda.synchronize(device)
            prof.step()
    totals = dict.fromkeys(KINDS, 0.0)
    for evt in prof.key_averages():
        if not evt.key.startswith("aten::"):
            continue
        if on_gpu:
            us = getattr(evt, "self_device_time_total", None)
            us = us if us is not None else getattr(evt, "self_cuda_time_total", 0.0)
        else:
            us = evt.self_cpu_time_total
        totals[classify(evt.key)] += us / 1e6 / steps
    return totals
