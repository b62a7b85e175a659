"""FLOPs of a GPT forward (and forward+backward) pass, counted three ways.

- ``thop``: 2 x the multiply-accumulates thop attributes to ``nn.Linear``
  modules, as the book's FLOPs notebook reports it. It misses the attention matmuls
  (QK^T and AV) and anything functional; kept for continuity only.
- ``exact``: every matmul-like op torch dispatches, from
  ``torch.utils.flop_counter.FlopCounterMode``, backward included when asked.
- ``analytic``: PaLM's count, 6N + 12*L*H*Q*T per training token (2N + 4*L*H*Q*T
  forward), N the parameters without the embeddings.

All counting runs on meta tensors: no memory is allocated and no GPU is needed.
"""

from __future__ import annotations

import contextlib
import io

import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from .config import GPTConfig
from .fast import build_model

META = torch.device("meta")


def parameter_count(cfg: GPTConfig) -> int:
    """All parameters of the book model, derived by hand (checked against the model in tests)."""
    d, v, L = cfg.emb_dim, cfg.vocab_size, cfg.n_layers
    qkv = 3 * d * d + (3 * d if cfg.qkv_bias else 0)
    attn = qkv + d * d + d                       # + output projection with bias
    ff = (d * 4 * d + 4 * d) + (4 * d * d + d)   # two linears with bias
    norms = 2 * 2 * d                            # two LayerNorms (scale, shift)
    embeddings = v * d + cfg.context_length * d
    return embeddings + L * (attn + ff + norms) + 2 * d + d * v  # + final norm + untied head


def non_embedding_parameter_count(cfg: GPTConfig) -> int:
    """PaLM's N: everything but the token and position embeddings (the untied head counts)."""
    return parameter_count(cfg) - (cfg.vocab_size + cfg.context_length) * cfg.emb_dim


def analytic_flops(cfg: GPTConfig, batch: int, seq_len: int, backward: bool = False) -> float:
    """PaLM's FLOPs for ``batch`` sequences of ``seq_len`` tokens."""
    n = non_embedding_parameter_count(cfg)
    attention = cfg.n_layers * cfg.n_heads * cfg.head_dim * seq_len
    per_token = (6 * n + 12 * attention) if backward else (2 * n + 4 * attention)
    return float(per_token * batch * seq_len)


def _meta_inputs(cfg: GPTConfig, batch: int, seq_len: int):
    tokens = torch.zeros(batch, seq_len, dtype=torch.long, device=META)
    return tokens, tokens.clone()


def exact_flops(cfg: GPTConfig, batch: int, seq_len: int, backward: bool = False,
                variant: str = "book") -> float:
    """Matmul FLOPs torch dispatches for one forward (and backward) pass, counted on meta tensors."""
    model = build_model(cfg, variant, device=META)
    tokens, targets = _meta_inputs(cfg, batch, seq_len)
    counter = FlopCounterMode(display=False)
    with counter:
        if backward:
            logits = model(tokens)
            F.cross_entropy(logits.flatten(0, 1), targets.flatten()).backward()
        else:
            with torch.no_grad():
                model(tokens)
    return float(counter.get_total_flops())


def thop_flops(cfg: GPTConfig, batch: int, seq_len: int, variant: str = "book") -> float:
    """The notebook's number: 2 x thop's MACs for one forward pass."""
    from thop import profile  # import here: thop prints on import and needs distutils on 3.12+

    model = build_model(cfg, variant, device=META)
    tokens, _ = _meta_inputs(cfg, batch, seq_len)
    with contextlib.redirect_stdout(io.StringIO()):
        macs, _params = profile(model, inputs=(tokens,), verbose=False)
    return 2.0 * float(macs)
