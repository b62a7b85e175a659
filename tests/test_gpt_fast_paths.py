"""The fast variant's options on a CPU: what each changes, and that each still trains the same model."""

from __future__ import annotations

import pytest
import torch

from workloads.errors import SpikeflopsError
from workloads.gpt.case import GPTCase
from workloads.gpt.fast import build_model
from workloads.gpt.steps import make_optimizer, make_train_step, optimizer_options, random_tokens
from workloads.gpt.workload import prepare


def _first_losses(upcast: bool, dtype=torch.bfloat16, autocast_dtype=None):
    cfg = GPTCase("gpt-nano").config
    model = build_model(cfg, "fast", dtype=dtype, seed=0)
    inputs, targets = random_tokens(cfg.vocab_size, 2, cfg.context_length, "cpu", seed=0)
    step = make_train_step(model, make_optimizer(model), inputs, targets, upcast_logits=upcast,
                           autocast_dtype=autocast_dtype)
    return float(step()), float(step()), model


def test_loss_without_an_fp32_copy_of_the_logits_matches_the_upcast_loss():
    up = _first_losses(upcast=True)
    direct = _first_losses(upcast=False)
    assert direct[0] == pytest.approx(up[0], rel=1e-2)            # cross_entropy accumulates in fp32 itself
    assert direct[1] < direct[0]                                  # and it still trains


def test_autocast_keeps_fp32_master_weights_and_computes_the_same_loss():
    fp32 = _first_losses(upcast=True, dtype=torch.float32)
    auto = _first_losses(upcast=False, dtype=torch.float32, autocast_dtype=torch.bfloat16)
    assert all(p.dtype == torch.float32 for p in auto[2].parameters())
    assert auto[0] == pytest.approx(fp32[0], rel=2e-2) and auto[1] < auto[0]
    case = GPTCase("gpt-nano", "fast", "bfloat16", precision="autocast")
    assert case.param_dtype == torch.float32 and case.autocast_dtype == torch.bfloat16
    assert "autocast" in case.label()
    with pytest.raises(SpikeflopsError, match="autocast needs a lower-precision dtype"):
        GPTCase("gpt-nano", "fast", "float32", precision="autocast")
    with pytest.raises(SpikeflopsError, match="unknown precision"):
        GPTCase("gpt-nano", precision="mixed")


def test_a_padded_vocabulary_is_another_model_labelled_as_such_and_scores_the_real_vocabulary():
    case = GPTCase("gpt-small", "fast", mode="forward", batch=1, context_length=8, pad_vocab=True)
    assert case.config.vocab_size == 50257 and case.model_config.vocab_size == 50304
    assert "padded-vocab 50304" in case.label() and "padded" not in GPTCase("gpt-small").label()
    with prepare(case, warmup=0) as step:
        assert step.model.out_head.weight.shape[0] == 50304
        assert step().shape == (1, 8, 50257)                      # padded logits never reach a loss
    train = case.with_(mode="train")
    with prepare(train, warmup=0) as step:                        # first loss near ln(50257), checked in prepare
        assert step.first_loss == pytest.approx(torch.log(torch.tensor(50257.0)).item(), rel=0.25)


def test_adamw_is_fused_on_cuda_and_foreach_on_a_cpu():
    assert optimizer_options("cuda") == {"fused": True}
    assert optimizer_options("cuda:1") == {"fused": True}
    assert optimizer_options("cpu") == {"foreach": True}
    model = torch.nn.Linear(4, 4)
    assert make_optimizer(model).defaults["foreach"] is True


def test_default_cases_are_unchanged_by_the_options():
    # the table's rows keep the notebook's model and precision: their results stay comparable
    from workloads.registry import all_rows

    for row in all_rows():
        if isinstance(row.case, GPTCase):
            assert row.case.precision == "pure" and not row.case.pad_vocab
            assert row.case.model_config == row.case.config


def test_the_compiled_fast_path_is_timed_in_the_full_profile_only():
    from workloads.registry import all_rows

    compiled = [r for r in all_rows() if isinstance(r.case, GPTCase) and r.case.compile]
    assert {r.family for r in compiled} == {"GPTStep", "GPTThroughput", "GPTMemory"}
    assert all(r.case.variant == "fast" and r.profiles == ("full",) for r in compiled)
    assert any(r.family == "GPTThroughput" and r.case.size == "gpt-small" for r in compiled)
