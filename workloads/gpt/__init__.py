"""GPT-2 as built in "Build a Large Language Model From Scratch": FLOPs, max batch, MFU."""

from .config import SIZES, GPTConfig, get_config
from .model import GPTModel
from .fast import FastGPTModel, build_model

__all__ = ["SIZES", "GPTConfig", "get_config", "GPTModel", "FastGPTModel", "build_model"]
