"""What one GPT step does: a forward pass, or a full training step (forward, loss, backward, AdamW).

The step callables never synchronise the device: the timer does. Inputs are
seeded random tokens (never zeros); targets are the inputs shifted by one.
"""

from __future__ import annotations

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


def make_optimizer(model) -> torch.optim.Optimizer:
    # foreach=True: the multi-tensor kernels a tuned trainer uses; fused is CUDA-only on older torch.
    return torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1, foreach=True)


def make_forward(model, inputs):
    """A no-grad forward pass (inference, as the seed's "forward only" maximum)."""
    model.eval()

    def forward():
        with torch.no_grad():
            return model(inputs)

    return forward


def make_train_step(model, optimizer, inputs, targets):
    """One training step; returns the loss tensor (not synchronised)."""
    model.train()

    def train_step():
        logits = model(inputs)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
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
