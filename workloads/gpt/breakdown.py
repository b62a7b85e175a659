"""Kernel-time breakdown of one GPT training step from torch.profiler, grouped by kind."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import get_config

if TYPE_CHECKING:
    import torch

KINDS = ("matmul", "attention", "normalisation", "elementwise", "optimizer")

_MATMUL = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")
_ATTENTION = ("scaled_dot_product", "flash_attention", "efficient_attention", "aten::_softmax", "softmax",
              "aten::masked_fill", "cudnn_attention")
_NORM = ("layer_norm", "aten::var", "aten::mean", "aten::rsqrt", "aten::sqrt")


def classify(op_name: str) -> str:
    if op_name.startswith("aten::_foreach") or "_fused_adam" in op_name:
        return "optimizer"
    if op_name in _MATMUL:
        return "matmul"
    if any(k in op_name for k in _ATTENTION):
        return "attention"
    if any(k in op_name for k in _NORM):
        return "normalisation"
    return "elementwise"


def kernel_breakdown(size: str, variant: str, dtype: str, batch: int, device: torch.device,
                     steps: int = 2) -> dict[str, float]:
    """Seconds per step spent in each kind of op (self time: device time on GPUs, CPU time otherwise)."""
    import torch                     # here, not at module level: KINDS must be importable without torch
    from torch.profiler import ProfilerActivity, profile

    from .fast import build_model
    from .steps import make_optimizer, make_train_step, parse_dtype, random_tokens

    cfg = get_config(size)
    model = build_model(cfg, variant, device=device, dtype=parse_dtype(dtype))
    inputs, targets = random_tokens(cfg.vocab_size, batch, cfg.context_length, device)
    step = make_train_step(model, make_optimizer(model), inputs, targets)
    step()                                          # warm-up: optimizer state, autotuning
    on_gpu = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        if on_gpu:
            torch.cuda.synchronize(device)
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
