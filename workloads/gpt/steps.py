"""What one GPT step does: a forward pass, or a full training step (forward, loss, backward, AdamW).

The step callables never synchronise the device: the timer does. Inputs are
seeded random tokens (never zeros); targets are the inputs shifted by one.
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch.nn import functional as F

from ..errors import SpikeflopsError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def parse_dtype(name: str) -> torch.dtype:
    try:
        return DTYPES[name]
    except KeyError:
        raise SpikeflopsError(f"unknown dtype {name!r}; choose one of {', '.join(DTYPES)}") from None


def random_tokens(vocab_size: int, batch: int, seq_len: int, device, seed: int = 0):
    """(inputs, targets), each (batch, seq_len) int64, from a seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, vocab_size, (batch, seq_len + 1), generator=gen)
    tokens = tokens.to(device)
    return tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()


def optimizer_options(device: torch.device | str) -> dict:
    """AdamW's implementation for a device: the fused CUDA kernel (one launch for every parameter), else
    the multi-tensor foreach kernels a tuned CPU trainer uses."""
    return {"fused": True} if torch.device(device).type == "cuda" else {"foreach": True}


def make_optimizer(model) -> torch.optim.Optimizer:
    """AdamW as the book trains GPT-2, in the implementation its parameters' device runs best."""
    device = next(model.parameters()).device
    return torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1, **optimizer_options(device))


def _autocast(device, dtype):
    """bf16/fp16 autocast over fp32 master weights, or nothing (the model runs in its own dtype)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def make_forward(model, inputs, vocab: int | None = None, autocast_dtype=None):
    """A no-grad forward pass (inference, as the notebook's "forward only" maximum).

    ``vocab``: a model with a padded vocabulary returns only the real vocabulary's logits.
    """
    model.eval()

    def forward():
        with torch.no_grad(), _autocast(inputs.device, autocast_dtype):
            logits = model(inputs)
        return logits if vocab is None else logits[..., :vocab]

    return forward


def make_train_step(model, optimizer, inputs, targets, upcast_logits: bool = True, vocab: int | None = None,
                    autocast_dtype=None):
    """One training step; returns the loss tensor (not synchronised).

    ``upcast_logits``: the book's loss on an fp32 copy of the logits (batch x context x vocab x 4 bytes:
    3.3 GB for gpt-small at batch 16); False lets cross_entropy read the logits as they are (it
    accumulates in fp32 internally). ``vocab``: the real vocabulary of a padded model.
    """
    model.train()

    def train_step():
        with _autocast(inputs.device, autocast_dtype):
            logits = model(inputs)
        if vocab is not None:
            logits = logits[..., :vocab]
        flat = logits.flatten(0, 1)
        loss = F.cross_entropy(flat.float() if upcast_logits else flat, targets.flatten())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    return train_step


def check_initial_loss(loss: float, vocab_size: int) -> None:
    """A freshly initialised model predicts roughly uniformly: loss near ln(vocab)."""
    expected = math.log(vocab_size)
    if not math.isfinite(loss) or abs(loss - expected) > 0.25 * expected:
        raise SpikeflopsError(f"initial loss {loss:.3f} is not near ln(vocab) = {expected:.3f}: the model is broken")
