"""Model sizes: the book's four GPT-2 sizes and CPU-sized presets of the same shape."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from ..errors import SpikeflopsError


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 50257      # GPT-2 BPE vocabulary
    context_length: int = 1024   # maximum sequence length T (positions learned up to this)
    emb_dim: int = 768           # model width d
    n_heads: int = 12            # attention heads H; head dim Q = d / H
    n_layers: int = 12           # transformer blocks L
    drop_rate: float = 0.0       # dropout everywhere (0 for benchmarking, as the notebook)
    qkv_bias: bool = True        # bias on the query/key/value projections

    def __post_init__(self):
        if self.emb_dim % self.n_heads:
            raise SpikeflopsError(f"emb_dim {self.emb_dim} is not divisible by n_heads {self.n_heads}")

    @property
    def head_dim(self) -> int:
        return self.emb_dim // self.n_heads

    def to_dict(self) -> dict:
        return asdict(self)


_BOOK = dict(vocab_size=50257, context_length=1024, drop_rate=0.0, qkv_bias=True)

SIZES: dict[str, GPTConfig] = {
    "gpt-small": GPTConfig(**_BOOK, emb_dim=768, n_layers=12, n_heads=12),    # "124M"
    "gpt-medium": GPTConfig(**_BOOK, emb_dim=1024, n_layers=24, n_heads=16),  # "355M"
    "gpt-large": GPTConfig(**_BOOK, emb_dim=1280, n_layers=36, n_heads=20),   # "774M"
    "gpt-xl": GPTConfig(**_BOOK, emb_dim=1600, n_layers=48, n_heads=25),      # "1558M"
    # CPU-sized presets: same architecture, small enough for CI on two cores.
    "gpt-mini": GPTConfig(vocab_size=8192, context_length=256, emb_dim=256, n_layers=4, n_heads=4),
    "gpt-nano": GPTConfig(vocab_size=2048, context_length=128, emb_dim=128, n_layers=2, n_heads=4),
}

BOOK_SIZES = ("gpt-small", "gpt-medium", "gpt-large", "gpt-xl")


def get_config(size: str, context_length: int | None = None) -> GPTConfig:
    try:
        cfg = SIZES[size]
    except KeyError:
        raise SpikeflopsError(f"unknown model size {size!r}; choose one of {', '.join(SIZES)}") from None
    if context_length is not None:
        if not 1 <= context_length <= cfg.context_length:
            raise SpikeflopsError(f"context length {context_length} outside 1..{cfg.context_length} for {size}")
        cfg = replace(cfg, context_length=context_length)
    return cfg
