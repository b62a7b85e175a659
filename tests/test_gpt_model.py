import pytest
import torch

from workloads.errors import SpikeflopsError
from workloads.gpt import SIZES, build_model, get_config
from workloads.gpt.flops import parameter_count

# The book's totals (untied head, qkv bias on): 163.0M / 406.3M / 838.4M / 1638.0M.
BOOK_PARAMS_M = {"gpt-small": 163.0, "gpt-medium": 406.3, "gpt-large": 838.4, "gpt-xl": 1638.0}


@pytest.mark.parametrize("size", list(BOOK_PARAMS_M))
def test_parameter_counts_of_the_four_sizes(size):
    model = build_model(SIZES[size], "book", device="meta")
    counted = sum(p.numel() for p in model.parameters())
    assert round(counted / 1e6, 1) == BOOK_PARAMS_M[size]
    assert counted == parameter_count(SIZES[size])
    fast = build_model(SIZES[size], "fast", device="meta")
    assert sum(p.numel() for p in fast.parameters()) == counted


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 2e-5), (torch.bfloat16, 0.08)])
def test_fast_variant_matches_book_variant_with_same_weights(dtype, tol):
    cfg = SIZES["gpt-nano"]
    book = build_model(cfg, "book", dtype=dtype, seed=1).eval()
    fast = build_model(cfg, "fast", dtype=dtype, seed=2).eval()
    fast.load_book_state(book)
    tokens = torch.randint(0, cfg.vocab_size, (2, 64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref, out = book(tokens).float(), fast(tokens).float()
    assert ref.shape == (2, 64, cfg.vocab_size)
    scale = ref.abs().max().item()
    assert (ref - out).abs().max().item() <= tol * max(scale, 1.0)


def test_fast_variant_differs_without_loading_weights():
    cfg = SIZES["gpt-nano"]
    book, fast = build_model(cfg, "book", seed=1).eval(), build_model(cfg, "fast", seed=1).eval()
    tokens = torch.zeros(1, 8, dtype=torch.long)
    with torch.no_grad():
        assert not torch.allclose(book(tokens), fast(tokens))


def test_causal_attention_ignores_future_tokens():
    cfg = SIZES["gpt-nano"]
    model = build_model(cfg, "book").eval()
    a = torch.randint(0, cfg.vocab_size, (1, 16), generator=torch.Generator().manual_seed(3))
    b = a.clone()
    b[0, 10:] = (b[0, 10:] + 1) % cfg.vocab_size
    with torch.no_grad():
        assert torch.allclose(model(a)[0, :10], model(b)[0, :10], atol=1e-5)


def test_bad_size_variant_and_context_are_errors():
    with pytest.raises(SpikeflopsError, match="unknown model size"):
        get_config("gpt-huge")
    with pytest.raises(SpikeflopsError, match="unknown variant"):
        build_model(SIZES["gpt-nano"], "turbo")
    with pytest.raises(SpikeflopsError, match="context length"):
        get_config("gpt-nano", 4096)
