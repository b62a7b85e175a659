import numpy as np
import pytest

from workloads.errors import SpikeflopsError
from workloads.superspike.targets import (SpikeTrains, default_target, read_ras, spike_source_raster,
                                          write_ras)


def write(tmp_path, text, name="t.ras"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_read_unsorted_ras_groups_by_neuron(tmp_path):
    p = write(tmp_path, "0.5 2\n0.1 1\n0.2 2\n\n1.0 1\n")
    t = read_ras(p, num_neurons=3, trial_ms=1890.0)
    assert t.num_spikes == 4
    assert list(t.starts) == [0, 2, 4] and list(t.ends) == [2, 4, 4]
    np.testing.assert_allclose(t.times_ms, [100.0, 1000.0, 200.0, 500.0])


def test_write_then_read_round_trips(tmp_path):
    t = default_target(20, 300.0)
    write_ras(tmp_path / "rt.ras", t)
    back = read_ras(tmp_path / "rt.ras", 20, 300.0)
    assert back.num_spikes == t.num_spikes
    np.testing.assert_allclose(back.times_ms, t.times_ms, atol=1e-3)


@pytest.mark.parametrize("text,needle", [
    ("0.1 1\nabc 2\n", ":2: not a number pair"),
    ("0.1 1 7\n", ":1: expected"),
    ("0.1 0\n", ":1: neuron id 0 outside 1..3"),
    ("0.1 4\n", ":1: neuron id 4 outside 1..3"),
    ("-0.1 1\n", ":1: spike time -0.1 s is negative"),
    ("nan 1\n", "negative or not finite"),
    ("0.1 1\n2.5 2\n", ":2: spike time 2.5 s is past the trial"),
    ("", "holds no spikes"),
    ("\n\n", "holds no spikes"),
])
def test_malformed_targets_name_file_and_line(tmp_path, text, needle):
    p = write(tmp_path, text)
    with pytest.raises(SpikeflopsError) as err:
        read_ras(p, num_neurons=3, trial_ms=1890.0)
    assert str(p) in str(err.value) and needle in str(err.value)
    assert "\n" not in str(err.value)


def test_binary_file_is_a_clear_error(tmp_path):
    p = tmp_path / "bin.ras"
    p.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(SpikeflopsError, match="cannot read target file"):
        read_ras(p, 3, 1890.0)


def test_default_target_is_a_picture_of_realistic_density():
    t = default_target(200, 1890.0)
    assert 8000 < t.num_spikes < 12000       # the paper's Radcliffe Camera target has 10,367
    assert (t.times_ms >= 0).all() and (t.times_ms < 1890.0).all()
    assert default_target(200, 1890.0).times_ms.tolist() == t.times_ms.tolist()   # fixed, reproducible


def test_spike_source_raster_follows_genns_rule():
    # neuron 0: two spikes due in the same step -> second delayed by one step; neuron 1: spike at t=0.
    t = SpikeTrains.from_spikes([0.25, 0.26, 0.0, 5.0], [0, 0, 1, 1], 2)
    r = spike_source_raster(t, num_steps=30, dt_ms=0.1)
    assert list(np.nonzero(r[:, 0])[0]) == [3, 4]
    assert list(np.nonzero(r[:, 1])[0]) == [0]      # 5.0 ms is past 30 steps


def test_the_cli_parses_a_target_file_once(tmp_path, monkeypatch):
    # the network is chosen from the file's extent; training and the raster plot share one parsed target
    import workloads.superspike.workload as workload
    from spikeflops.cli import main

    target = write(tmp_path, "".join(f"{0.02 + 0.01 * (i % 40):.3f} {1 + i % 50}\n" for i in range(200)))
    parsed = []
    monkeypatch.setattr(workload, "read_ras", lambda *a, **k: parsed.append(a) or read_ras(*a, **k))
    rc = main(["superspike", "--backend", "torch", "--device", "cpu", "--target-file", str(target), "--num-trials", "1",
               "--record-trial", "0", "--out-dir", str(tmp_path / "out")])
    assert rc == 0 and len(parsed) == 1


def test_a_genn_backend_pygenn_lacks_is_one_line_not_a_key_error(tmp_path, monkeypatch):
    """`--backend genn --device cuda` with a CPU-only pygenn ended in GeNN's raw KeyError: 'cuda'."""
    import sys

    from workloads.errors import SpikeflopsError
    from workloads.superspike.genn_backend import detect_genn_backend, genn_backends, require_genn_backend

    fake = tmp_path / "pygenn"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "single_threaded_cpu_backend.py").write_text("")        # a CPU-only build
    for name in [m for m in sys.modules if m == "pygenn" or m.startswith("pygenn.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert genn_backends() == ("single_threaded_cpu",)
        assert detect_genn_backend() == "single_threaded_cpu"        # whatever torch sees
        assert require_genn_backend("single_threaded_cpu") == "single_threaded_cpu"
        with pytest.raises(SpikeflopsError, match="this pygenn has no cuda backend .it offers: single_threaded_cpu"):
            require_genn_backend("cuda")
    finally:                      # the fake must not outlive the test (later tests ask whether pygenn exists)
        for name in [m for m in sys.modules if m == "pygenn" or m.startswith("pygenn.")]:
            del sys.modules[name]
