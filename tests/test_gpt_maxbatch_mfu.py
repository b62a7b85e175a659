import pytest
import torch

from workloads.errors import SpikeflopsError
from spikeflops.argtypes import parse_bytes
from workloads.gpt.maxbatch import ProbeServer, search_max_batch
from workloads.gpt.workload import DoesNotFit, GPTCase, measure_step, prepare, reference_peak, utilisation
from workloads.hardware import Peak
from workloads.memory import ProbeAnswer, find_max_batch, is_oom_error

NANO_TRAIN = GPTCase("gpt-nano", "book", "float32", "cpu", "train", batch=1)

READS_ONE_RUN = pytest.mark.xdist_group("cpu-batch-searches")     # its readers on one worker: `cpu_searches` is made once


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


def test_search_progress_never_promises_fewer_probes_than_are_left():
    for cap in (1, 7, 64, 100, 4096):
        worst_first = 0
        for limit in range(1, min(cap, 300) + 1):
            seen = []
            result = find_max_batch(lambda b, n=limit: b <= n, cap=cap,
                                    progress=lambda probe, outlook: seen.append((probe, outlook)))
            assert [p for p, _ in seen] == result.probes       # every probe is reported, in order
            for i, (probe, outlook) in enumerate(seen):
                assert len(seen) - 1 - i <= outlook.probes_left, (cap, limit, i)
                assert probe.seconds >= 0.0
            assert seen[-1][1].probes_left == 0 and seen[-1][1].describe(0.1) == "done"
            worst_first = max(worst_first, len(seen) - 1)
        if cap <= 300:                  # every limit was tried: the first bound is the true worst case
            assert seen[0][1].probes_left == worst_first


def _aimed(limit, cap, used, budget, seen=None):
    """An aimed search against a known boundary; ``used(b)`` is what a fitting probe of b says it used."""
    return find_max_batch(lambda b: ProbeAnswer(b <= limit, used(b) if b <= limit else None), cap=cap,
                          budget_bytes=budget,
                          progress=None if seen is None else (lambda probe, outlook: seen.append(outlook)))


def test_aimed_search_gives_the_plain_answer_and_an_honest_outlook_whatever_the_line_says():
    import random

    rng = random.Random(0)
    lines = {   # what fitting probes say they used: a true line, a noisy one, nonsense, a flat one
        "linear": lambda limit: ((lambda b: 8_000_000 + 1_130_000 * b), 8_000_000 + 1_130_000 * limit + 500_000),
        "noisy": lambda limit: ((lambda b, r=random.Random(limit): 8_000_000 + 1_130_000 * b
                                 + r.randrange(-2_000_000, 2_000_000)), 8_000_000 + 1_130_000 * limit),
        "nonsense": lambda limit: ((lambda b, r=random.Random(limit): r.randrange(1, 10**9)), rng.randrange(1, 10**9)),
        "flat": lambda limit: ((lambda b: 5), 5),
    }
    for cap in (1, 2, 7, 64, 100, 300):
        for limit in range(1, cap + 20):
            for name, line in lines.items():
                used, budget = line(limit)
                seen = []
                result = _aimed(limit, cap, used, budget, seen)
                assert result.max_batch == min(limit, cap) and result.hit_cap == (limit >= cap), (name, cap, limit)
                tried = {p.batch: p.fits for p in result.probes}
                assert tried[result.max_batch] and (result.max_batch == cap or tried[result.max_batch + 1] is False)
                for i, outlook in enumerate(seen):   # never fewer probes left than announced
                    assert len(seen) - 1 - i <= outlook.probes_left, (name, cap, limit, i)
                assert seen[-1].probes_left == 0


def test_aimed_search_saves_the_large_probes_when_memory_is_linear_in_the_batch():
    for limit in (39, 219, 1000, 3000):
        def used(b):            # gpt-nano on a CPU, measured
            return 8_000_000 + 1_130_000 * b
        aimed = _aimed(limit, 4096, used, used(limit) + 500_000)
        plain = find_max_batch(lambda b, n=limit: b <= n, cap=4096)
        assert aimed.max_batch == plain.max_batch == limit
        large = [p.batch for p in aimed.probes if p.batch > limit // 2]
        assert len(large) <= 3 < len([p for p in plain.probes if p.batch > limit // 2]), (limit, large)


def test_batch_one_not_fitting_is_a_clear_error():
    with pytest.raises(SpikeflopsError, match="batch 1 does not fit"):
        find_max_batch(lambda b: False)


# Messages as torch, cuBLAS and cuDNN raise them (copied from real failures' text).
OOM_MESSAGES = [
    "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you tried to "
    "allocate 134217728 bytes. Error code 12 (Cannot allocate memory)",
    "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`",
    "CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported at some other API call",
    "cuDNN error: CUDNN_STATUS_ALLOC_FAILED",
    "cuDNN error: CUDNN_STATUS_NOT_ENOUGH_WORKSPACE",
]


@pytest.mark.parametrize("message", OOM_MESSAGES)
def test_oom_classification_of_runtime_errors(message):
    assert is_oom_error(RuntimeError(message))


def test_oom_classification_of_types_and_non_oom_errors():
    assert is_oom_error(MemoryError())
    assert is_oom_error(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    for exc in (RuntimeError("shape mismatch"), ValueError("x"),
                RuntimeError("CUDA error: CUBLAS_STATUS_EXECUTION_FAILED when calling `cublasSgemm`")):
        assert not is_oom_error(exc)


def test_parse_bytes():
    assert parse_bytes("4GiB") == 4 * 2**30
    assert parse_bytes("512MiB") == 512 * 2**20
    assert parse_bytes("1.5G") == 1_500_000_000
    for bad in ("lots", "-1GiB", "4XB", "", "0", "nan"):
        with pytest.raises(SpikeflopsError):
            parse_bytes(bad)


@pytest.fixture(scope="module")
def cpu_searches():
    small = search_max_batch(NANO_TRAIN, parse_bytes("160MiB"))
    large = search_max_batch(NANO_TRAIN, parse_bytes("256MiB"))
    return small, large


@READS_ONE_RUN
def test_cpu_budget_search_result_runs_and_next_size_does_not(cpu_searches):
    small, _ = cpu_searches
    assert small.max_batch >= 1
    server = ProbeServer()
    try:
        fitted = server.probe(NANO_TRAIN, small.max_batch, parse_bytes("160MiB"))     # re-run: it really fits
        assert fitted and 0 < fitted.used_bytes <= parse_bytes("160MiB")    # and says what it took of the budget
        assert not server.probe(NANO_TRAIN, small.max_batch + 1, parse_bytes("160MiB"))  # one more does not
    finally:
        server.close()


@READS_ONE_RUN
def test_larger_budget_never_gives_a_smaller_batch(cpu_searches):
    small, large = cpu_searches
    assert large.max_batch > small.max_batch    # 96 MiB more holds more than one extra nano sequence


def test_cpu_search_without_a_budget_is_an_error():
    with pytest.raises(SpikeflopsError, match="memory budget"):
        search_max_batch(NANO_TRAIN, None)


def test_budget_too_small_for_batch_one_is_an_error():
    with pytest.raises(SpikeflopsError, match="batch 1 does not fit"):
        search_max_batch(GPTCase("gpt-mini", "fast", "float32", "cpu", "train", 1), parse_bytes("8MiB"))


def test_memory_fraction_is_restored_after_a_gpu_search(monkeypatch):
    """The cap a GPU search sets must not outlive the search (simulated: no GPU here)."""
    import workloads.gpt.maxbatch as mb

    calls = []
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: type("P", (), {"total_memory": 80 * 2**30}))
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", lambda f, d=None: calls.append(f))
    monkeypatch.setattr(mb, "_in_process_fits", lambda case: (lambda b: b <= 5))
    case = GPTCase.__new__(GPTCase)
    object.__setattr__(case, "device", "cuda")
    for name, value in dict(size="gpt-nano", variant="fast", dtype="bfloat16", mode="train", batch=1, compile=False,
                            seed=0, context_length=None).items():
        object.__setattr__(case, name, value)
    assert search_max_batch(case, 8 * 2**30).max_batch == 5
    assert calls == [0.1, 1.0]
    monkeypatch.setattr(mb, "_in_process_fits", lambda case: (lambda b: 1 / 0))
    with pytest.raises(ZeroDivisionError):
        search_max_batch(case, 8 * 2**30)
    assert calls[-1] == 1.0                     # restored on failure too


def test_forward_case_runs_in_eval_mode_and_train_case_in_train_mode():
    with prepare(NANO_TRAIN.with_(mode="forward")) as fwd:
        assert not fwd.model.training and fwd.optimizer is None
    with prepare(NANO_TRAIN) as train:
        assert train.model.training and train.first_loss > 0


def test_bad_cases_are_one_line_errors():
    for bad in (dict(batch=0), dict(batch=-1), dict(size="gpt-huge"), dict(dtype="int8"), dict(device="tpu"),
                dict(mode="infer"), dict(variant="book", compile=True), dict(context_length=0)):
        with pytest.raises(SpikeflopsError):
            NANO_TRAIN.with_(**bad)


def test_step_record_arithmetic_is_consistent():
    case = GPTCase("gpt-nano", "fast", "float32", "cpu", "train", batch=2)
    r = measure_step(case, warmup=2, repeats=3, gpu_override="A100")
    median = r.seconds_per_step.median
    assert r.tokens_per_s == pytest.approx(2 * 128 / median)
    assert r.achieved_flops_per_s == pytest.approx(r.flops_per_step / median)
    assert r.peak.flops_per_s == pytest.approx(19.5e12) and r.peak.kind == "datasheet"   # A100 fp32 (TF32 off)
    assert r.mfu == pytest.approx(r.achieved_flops_per_s / 19.5e12)
    assert r.mfu_vs_measured_peak == pytest.approx(r.achieved_flops_per_s / r.measured_peak.flops_per_s)
    assert r.loss_last < r.loss_first
    assert len(r.per_step("tokens_per_s")) == 3
    assert r.first_step_seconds > 0
    assert r.first_step_overhead == pytest.approx(max(0.0, r.first_step_seconds - median))
    d = r.to_dict()
    assert d["mfu"] == r.mfu and d["peak"]["kind"] == "datasheet" and d["case"]["batch"] == 2


def test_mfu_on_a_cpu_is_against_the_measured_peak_and_says_so():
    measured = Peak(1e11, "measured: test", kind="measured")
    peak = reference_peak(NANO_TRAIN.torch_device, NANO_TRAIN.dtype, measured)
    assert peak is measured and peak.kind == "measured"
    assert utilisation(5e10, peak) == pytest.approx(0.5)
    assert utilisation(5e10, None) is None


def test_a_case_that_runs_out_of_memory_is_does_not_fit(monkeypatch):
    import workloads.gpt.workload as wl

    def boom(*a, **k):
        raise RuntimeError("CUDA error: out of memory")
    monkeypatch.setattr(wl, "build_model", boom)
    with pytest.raises(DoesNotFit, match="does not fit"):
        prepare(NANO_TRAIN)


def test_a_utilisation_above_100_percent_is_refused_not_tabled(monkeypatch):
    # the CPU bf16 case of issue 13: a "peak" measured on a slow path, beaten by the step itself
    from workloads.gpt import workload
    from workloads.hardware import Peak

    monkeypatch.setattr(workload, "measured_peak", lambda device, dtype: Peak(1.0e6, "a slow matmul", "measured"))
    case = GPTCase("gpt-nano", "fast", "float32", "cpu", "train", batch=1)
    with pytest.raises(SpikeflopsError, match=r"MFU .*% is impossible.*not this device's ceiling"):
        workload.measure_step(case, warmup=1, repeats=2)
