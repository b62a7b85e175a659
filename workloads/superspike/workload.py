"""One entry point for harnesses and the CLI: build a backend from a size, a seed and a target."""

from __future__ import annotations

from ..errors import SpikeflopsError
from ..hardware import resolve_device
from .conditions import make_initial_conditions
from .params import NetworkSize, get_size
from .targets import SpikeTrains, default_target, read_ras
from .training import TrainingResult, train

BACKENDS = ("torch", "genn")


def load_target(size: NetworkSize, target_file: str | None = None) -> SpikeTrains:
    if target_file:
        return read_ras(target_file, size.num_output, size.trial_ms)
    return default_target(size.num_output, size.trial_ms)  # the picture is fixed, not per-seed


def make_backend(backend: str, size: NetworkSize, seed: int = 0, target: SpikeTrains | None = None,
                 device: str | None = None, compile: bool | None = None, kernel_profiling: bool = True,
                 cache_dir=None):
    """A ready-to-run backend. ``device``: cpu/cuda/auto for torch; cpu/cuda/auto for GeNN."""
    target = target if target is not None else load_target(size)
    conditions = make_initial_conditions(size, seed)
    if backend == "torch":
        dev = resolve_device(device)
        from .torch_backend import TorchSuperSpike

        return TorchSuperSpike(size, conditions, target, dev, profile_phases=kernel_profiling,
                               compile=bool(compile))
    if backend == "genn":
        from .genn_backend import GeNNSuperSpike, detect_genn_backend, pygenn_available

        if not pygenn_available():
            raise SpikeflopsError("backend 'genn' needs pygenn, which is not installed (see README: GeNN)")
        genn_backend = {None: None, "auto": None, "cpu": "single_threaded_cpu", "cuda": "cuda"}.get(device, device)
        return GeNNSuperSpike(size, conditions, target, backend=genn_backend or detect_genn_backend(),
                              kernel_profiling=kernel_profiling, cache_dir=cache_dir)
    raise SpikeflopsError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def run_training(size_name: str, backend: str, num_trials: int, seed: int = 0, target_file: str | None = None,
                 device: str | None = None, record_trials=(), target_error: float | None = None,
                 compile: bool | None = None, kernel_profiling: bool = True, progress=None) -> TrainingResult:
    if num_trials < 1:
        raise SpikeflopsError("--num-trials must be >= 1")
    size = get_size(size_name)
    bad = [t for t in record_trials if not 0 <= t < num_trials]
    if bad:
        raise SpikeflopsError(f"--record-trial {bad[0]} outside 0..{num_trials - 1}")
    target = load_target(size, target_file)
    model = make_backend(backend, size, seed, target, device, compile, kernel_profiling)
    return train(model, size, target, num_trials, seed, record_trials, target_error, progress)
