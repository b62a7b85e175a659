"""GPT-2 as built in "Build a Large Language Model From Scratch": FLOPs, max batch, MFU.

The model classes are imported on first use so that importing ``workloads.gpt.config``
(sizes, names) does not import torch: asv's benchmark processes skip unrunnable
parameter combinations before they pay for torch.
"""

from .config import SIZES, GPTConfig, get_config

_LAZY = {"GPTModel": ".model", "FastGPTModel": ".fast", "build_model": ".fast"}

__all__ = ["SIZES", "GPTConfig", "get_config", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
