import math

import pytest
import torch

from workloads.errors import SpikeflopsError
from workloads.hardware import (PEAK_TABLE, datasheet_peak, lookup_gpu, machine_facts, machine_name,
                                measure_matmul_peak, require_gpu)
from workloads.timing import TimingStats, measure


def test_gpu_names_match_exactly_not_by_substring():
    assert lookup_gpu("NVIDIA L4").key == "L4"
    assert lookup_gpu("NVIDIA L40S").key == "L40S"
    assert lookup_gpu("NVIDIA H100 80GB HBM3").key == "H100-SXM"
    assert lookup_gpu("NVIDIA H100 PCIe").key == "H100-PCIe"
    assert lookup_gpu("NVIDIA A10G") is None          # uncertain datasheet: measured peak only
    assert lookup_gpu("NVIDIA GeForce RTX 3090").key == "RTX-3090"
    assert lookup_gpu("NVIDIA H100") is None


def test_unknown_gpu_is_a_clear_error():
    with pytest.raises(SpikeflopsError, match="unknown GPU 'Voodoo 5'"):
        require_gpu("Voodoo 5")


def test_dense_peaks_are_tensor_core_rates():
    a100 = require_gpu("A100")
    assert datasheet_peak(a100, torch.bfloat16).flops_per_s == pytest.approx(312e12)
    assert datasheet_peak(a100, torch.float32).flops_per_s == pytest.approx(19.5e12)
    assert datasheet_peak(a100, torch.float32, allow_tf32=True).flops_per_s == pytest.approx(156e12)
    assert datasheet_peak(require_gpu("T4"), torch.bfloat16) is None   # T4 has no bf16 unit
    for spec in PEAK_TABLE:
        assert spec.source and spec.fp32 > 0
        if spec.bf16:
            assert spec.bf16 > spec.fp32 and spec.bf16 >= spec.tf32


def test_measured_matmul_peak_is_positive_and_sourced():
    peak = measure_matmul_peak(torch.device("cpu"), torch.float32, sizes=(64, 128), repeats=3)
    assert peak.flops_per_s > 1e6 and peak.kind == "measured" and "64, 128" in peak.source


def test_machine_facts_and_name():
    facts = machine_facts()
    assert facts["torch"] == torch.__version__ and facts["cpu_count"] >= 1
    name = machine_name()
    assert name and all(c.isalnum() or c in "-_." for c in name)


def test_machine_names_tell_cpu_models_apart(monkeypatch):
    import workloads.hardware as hw

    names = set()
    for cpu in ("Intel(R) Xeon(R) CPU @ 2.80GHz", "AMD EPYC 7B13 64-Core Processor"):
        monkeypatch.setattr(hw, "machine_facts", lambda cpu=cpu: {"gpu": None, "cpu": cpu, "cpu_count": 2})
        monkeypatch.setenv("SPIKEFLOPS_MACHINE", "vm")
        names.add(hw.machine_name())
    assert names == {"vm-intel-xeon-2.80ghz-x2", "vm-amd-epyc-7b13-x2"}
    monkeypatch.setattr(hw, "machine_facts", lambda: {"gpu": "NVIDIA H100 80GB HBM3", "cpu": "x", "cpu_count": 16})
    assert hw.machine_name() == "vm-nvidia-h100-80gb-hbm3"


def test_timing_stats_from_known_samples():
    s = TimingStats.from_samples([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (s.median, s.minimum, s.maximum, s.q25, s.q75, s.iqr) == (3.0, 1.0, 5.0, 2.0, 4.0, 2.0)
    assert s.stdev == pytest.approx(math.sqrt(2.5))


def test_measure_calls_warmup_outside_the_timed_repeats():
    calls = []
    stats = measure(lambda: calls.append(1), warmup=3, repeats=4)
    assert len(calls) == 7 and stats.repeats == 4 and all(t >= 0 for t in stats.samples)


def test_measured_peak_takes_the_faster_operand_layout(monkeypatch):
    # on a CPU without native bf16, a @ b ran 15x slower than a @ b.T (nn.Linear's layout): a peak
    # from a @ b alone made autocast's linear layers look faster than the "peak" (MFU > 100 %)
    import workloads.timing as timing
    from workloads.timing import TimingStats

    calls = []

    def fake_measure(fn, device, warmup, repeats):
        calls.append(fn)
        seconds = 10.0 if len(calls) % 2 else 1.0          # a @ b first, then a @ b.T, per size
        return TimingStats.from_samples([seconds] * repeats)

    monkeypatch.setattr(timing, "measure", fake_measure)
    peak = measure_matmul_peak(torch.device("cpu"), torch.bfloat16, sizes=(64,), repeats=3)
    assert len(calls) == 2
    assert peak.flops_per_s == 2.0 * 64**3 / 1.0 and "a @ b.T" in peak.source


def test_an_h200_nvl_is_not_read_as_the_sxm_part():
    import torch

    from workloads.hardware import datasheet_peak, lookup_gpu, power_doubt

    sxm, nvl = lookup_gpu("NVIDIA H200"), lookup_gpu("NVIDIA H200 NVL")
    assert sxm.key == "H200" and nvl.key == "H200-NVL"
    assert datasheet_peak(nvl, torch.bfloat16).flops_per_s < 0.9 * datasheet_peak(sxm, torch.bfloat16).flops_per_s
    # a board that calls itself "NVIDIA H200" but is limited to 600 W is another variant: measured peak only
    assert power_doubt(sxm, 600.0) and "600 W" in power_doubt(sxm, 600.0)
    assert power_doubt(sxm, 700.0) is None and power_doubt(sxm, None) is None
    assert power_doubt(nvl, 600.0) is None                    # the NVL row is the NVL's
