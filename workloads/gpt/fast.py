"""The `fast` variant: the same function and parameters as the book's GPT, built for speed.

Fused qkv projection, ``scaled_dot_product_attention`` (causal: flash or
memory-efficient kernels on GPUs), native LayerNorm and tanh-GELU, optional
``torch.compile``. ``load_book_state`` copies a book model's weights in so the
two variants can be checked against each other.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import SpikeflopsError
from .config import GPTConfig
from .model import GPTModel

from .case import VARIANTS  # noqa: F401 - one list of variants


class FastAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_heads, self.head_dim, self.drop_rate = cfg.n_heads, cfg.head_dim, cfg.drop_rate
        self.qkv = nn.Linear(cfg.emb_dim, 3 * cfg.emb_dim, bias=cfg.qkv_bias)
        self.out_proj = nn.Linear(cfg.emb_dim, cfg.emb_dim)

    def forward(self, x):
        b, t, d = x.shape
        qkv = self.qkv(x).view(b, t, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (3, B, H, T, Q)
        context = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], is_causal=True,
                                                 dropout_p=self.drop_rate if self.training else 0.0)
        return self.out_proj(context.transpose(1, 2).reshape(b, t, d))


class FastBlock(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.emb_dim, eps=1e-5)
        self.att = FastAttention(cfg)
        self.norm2 = nn.LayerNorm(cfg.emb_dim, eps=1e-5)
        self.ff = nn.Sequential(nn.Linear(cfg.emb_dim, 4 * cfg.emb_dim), nn.GELU(approximate="tanh"),
                                nn.Linear(4 * cfg.emb_dim, cfg.emb_dim))
        self.drop = nn.Dropout(cfg.drop_rate)

    def forward(self, x):
        x = x + self.drop(self.att(self.norm1(x)))
        return x + self.drop(self.ff(self.norm2(x)))


class FastGPTModel(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.emb_dim)
        self.pos_emb = nn.Embedding(cfg.context_length, cfg.emb_dim)
        self.drop_emb = nn.Dropout(cfg.drop_rate)
        self.blocks = nn.ModuleList(FastBlock(cfg) for _ in range(cfg.n_layers))
        self.final_norm = nn.LayerNorm(cfg.emb_dim, eps=1e-5)
        self.out_head = nn.Linear(cfg.emb_dim, cfg.vocab_size, bias=False)

    def forward(self, in_idx):  # (B, T) -> (B, T, vocab)
        pos = torch.arange(in_idx.shape[1], device=in_idx.device)
        x = self.drop_emb(self.tok_emb(in_idx) + self.pos_emb(pos))
        for block in self.blocks:
            x = block(x)
        return self.out_head(self.final_norm(x))

    @torch.no_grad()
    def load_book_state(self, book: GPTModel) -> "FastGPTModel":
        """Copy a book model's parameters (q, k, v concatenated into the fused projection)."""
        self.tok_emb.weight.copy_(book.tok_emb.weight)
        self.pos_emb.weight.copy_(book.pos_emb.weight)
        for fast, ref in zip(self.blocks, book.trf_blocks):
            att = ref.att
            fast.att.qkv.weight.copy_(torch.cat([att.W_query.weight, att.W_key.weight, att.W_value.weight]))
            if fast.att.qkv.bias is not None:
                fast.att.qkv.bias.copy_(torch.cat([att.W_query.bias, att.W_key.bias, att.W_value.bias]))
            fast.att.out_proj.load_state_dict(att.out_proj.state_dict())
            for fast_norm, ref_norm in ((fast.norm1, ref.norm1), (fast.norm2, ref.norm2)):
                fast_norm.weight.copy_(ref_norm.scale)
                fast_norm.bias.copy_(ref_norm.shift)
            fast.ff[0].load_state_dict(ref.ff.layers[0].state_dict())
            fast.ff[2].load_state_dict(ref.ff.layers[2].state_dict())
        self.final_norm.weight.copy_(book.final_norm.scale)
        self.final_norm.bias.copy_(book.final_norm.shift)
        self.out_head.weight.copy_(book.out_head.weight)
        return self


def build_model(cfg: GPTConfig, variant: str = "book", device: torch.device | str = "cpu",
                dtype: torch.dtype = torch.float32, compile: bool = False, seed: int | None = 0) -> nn.Module:
    """A freshly initialised model of ``variant`` on ``device`` in ``dtype`` (all parameters cast)."""
    if variant not in VARIANTS:
        raise SpikeflopsError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if compile and variant != "fast":
        raise SpikeflopsError("torch.compile is offered for the fast variant only")
    if seed is not None and torch.device(device).type != "meta":
        torch.manual_seed(seed)
    with torch.device(device):
        model = (GPTModel if variant == "book" else FastGPTModel)(cfg)
    model = model.to(dtype=dtype)
    if compile:
        model = torch.compile(model)
    return model
