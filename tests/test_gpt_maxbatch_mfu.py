import pytest
import torch

from workloads.errors import SpikeflopsError
from workloads.gpt.maxbatch import ProbeSpec, parse_bytes, search_max_batch
from workloads.gpt.mfu import measure_step
from workloads.memory import find_max_batch, is_oom_error

CPU = torch.device("cpu")


def test_search_finds_the_boundary_of_a_known_predicate():
    for limit in (1, 2, 3, 37, 64, 65, 1000):
        result = find_max_batch(lambda b, n=limit: b <= n, cap=4096)
        assert result.max_batch == limit
        tried = {p.batch: p.fits for p in result.probes}
        assert tried[limit] is True and tried.get(limit + 1) is False   # both sides were actually probed


def test_search_reports_the_cap_and_never_an_untried_batch():
    result = find_max_batch(lambda b: True, cap=100)
    assert result.max_batch == 100 and result.hit_cap
    assert any(p.batch == 100 and p.fits for p in result.probes)


def test_batch_one_not_fitting_is_a_clear_error():
    with pytest.raises(SpikeflopsError, match="batch 1 does not fit"):
        find_max_batch(lambda b: False)


def test_oom_classification():
    assert is_oom_error(MemoryError())
    assert is_oom_error(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 bytes"))
    assert not is_oom_error(RuntimeError("shape mismatch"))
    assert not is_oom_error(ValueError("x"))


def test_parse_bytes():
    assert parse_bytes("4GiB") == 4 * 2**30
    assert parse_bytes("512MiB") == 512 * 2**20
    assert parse_bytes("1.5G") == 1_500_000_000
    for bad in ("lots", "-1GiB", "4XB", ""):
        with pytest.raises(SpikeflopsError):
            parse_bytes(bad)


@pytest.fixture(scope="module")
def cpu_searches():
    spec = ProbeSpec("gpt-nano", "book", "float32", "train")
    small = search_max_batch(spec, CPU, parse_bytes("160MiB"))
    large = search_max_batch(spec, CPU, parse_bytes("256MiB"))
    return spec, small, large


@pytest.mark.slow
def test_cpu_budget_search_result_runs_and_next_size_does_not(cpu_searches):
    from workloads.gpt.maxbatch import _subprocess_fits

    spec, small, _ = cpu_searches
    assert small.max_batch >= 1
    fits = _subprocess_fits(spec, parse_bytes("160MiB"))
    assert fits(small.max_batch)            # re-run independently: it really fits
    assert not fits(small.max_batch + 1)    # and one more does not


@pytest.mark.slow
def test_larger_budget_never_gives_a_smaller_batch(cpu_searches):
    _, small, large = cpu_searches
    assert large.max_batch >= small.max_batch
    assert large.max_batch > small.max_batch    # 96 MiB more holds more than one extra nano sequence


def test_cpu_search_without_a_budget_is_an_error():
    with pytest.raises(SpikeflopsError, match="memory budget"):
        search_max_batch(ProbeSpec("gpt-nano"), CPU, None)


def test_budget_too_small_for_batch_one_is_an_error():
    with pytest.raises(SpikeflopsError, match="batch 1 does not fit"):
        search_max_batch(ProbeSpec("gpt-mini", dtype="float32"), CPU, parse_bytes("8MiB"))


def test_mfu_record_arithmetic_is_consistent():
    r = measure_step("gpt-nano", "fast", "float32", batch=2, device=CPU, warmup=2, repeats=3, gpu_override="A100")
    median = r["seconds_per_step"]["median"]
    assert r["tokens_per_s"] == pytest.approx(2 * 128 / median)
    assert r["achieved_flops_per_s"] == pytest.approx(r["flops_per_step_analytic"] / median)
    assert r["peak"]["flops_per_s"] == pytest.approx(19.5e12)      # A100 fp32 (TF32 off)
    assert r["mfu"] == pytest.approx(r["achieved_flops_per_s"] / 19.5e12)
    assert r["mfu_vs_measured_peak"] == pytest.approx(r["achieved_flops_per_s"] / r["measured_peak"]["flops_per_s"])
    assert r["loss_last"] < r["loss_first"]
    assert r["machine"]["torch"] == torch.__version__


def test_mfu_on_cpu_warns_that_only_the_measured_peak_is_available():
    with pytest.warns(UserWarning, match="measured matmul peak only"):
        r = measure_step("gpt-nano", "book", "float32", batch=1, device=CPU, warmup=1, repeats=2)
    assert r["mfu"] is None and r["mfu_vs_measured_peak"] > 0
