"""Deterministic costs of a step: aten operators dispatched and bytes their outputs newly allocate.

Counted on a CPU with a TorchDispatchMode, so every op of the step is seen (autograd runs the
backward on the calling thread there). A fused kernel that replaces five ops, a copy added per
layer or a temporary that doubles in size moves these numbers exactly, with no timing noise:
what a shared CPU runner can judge.
"""

from __future__ import annotations

import collections

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class OpCounter(TorchDispatchMode):
    """Counts aten operator calls and the bytes of their freshly allocated outputs."""

    def __init__(self):
        super().__init__()
        self.calls: collections.Counter = collections.Counter()
        self.bytes_allocated = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.calls[str(func.overloadpacket)] += 1
        inputs = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0]
                  if isinstance(t, torch.Tensor) and t.device.type != "meta"}
        for t in tree_flatten(out)[0]:
            # a view or an in-place result shares an input's storage: nothing new was allocated
            if isinstance(t, torch.Tensor) and t._base is None and t.device.type != "meta" \
                    and t.untyped_storage().data_ptr() not in inputs:
                self.bytes_allocated += t.untyped_storage().nbytes()
        return out

    @property
    def operators(self) -> int:
        return sum(self.calls.values())
