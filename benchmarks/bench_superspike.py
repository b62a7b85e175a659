"""asv suites for SuperSpike: time per trial, convergence across seeds, trials-to-target, GeNN's kernel timers."""

from __future__ import annotations

import math

from workloads.superspike.genn_backend import CUSTOM_UPDATES, KERNEL_TIMERS, pygenn_available

from .common import DEVICES, PROFILE, Benchmark, require_device, runnable_devices

BACKENDS = ["torch", "genn"]
SEEDS = [0, 1, 2]                   # the gate reads the seed parameter as samples of one metric
KERNELS = list(KERNEL_TIMERS) + [f"custom_update_{name}{part}" for name in CUSTOM_UPDATES
                                  for part in ("", "_transpose")]


def _require(backend: str, device: str) -> None:
    require_device(device)
    if backend == "genn" and not pygenn_available():
        raise NotImplementedError("pygenn is not installed")


def _runnable(backend: str, device: str) -> bool:
    try:
        _require(backend, device)
    except NotImplementedError:
        return False
    return True


class SuperSpikeTrial(Benchmark):
    """Wall time of one trial (GeNN code generation and torch.compile happen in setup, not here)."""

    params = (BACKENDS, DEVICES)
    param_names = ["backend", "device"]
    version = "superspike-trial-2"
    repeat = (4, 5, 600.0)      # >= 4 samples: with 3 against 3 no rank test can reach p < 0.05

    def setup(self, backend, device):
        _require(backend, device)
        from workloads.superspike.params import get_size
        from workloads.superspike.workload import make_backend

        size = get_size(PROFILE.superspike_size)
        self.model = make_backend(backend, size, seed=0, device=device, kernel_profiling=False,
                                  compile=backend == "torch" and PROFILE.name != "ci")
        out = self.model.run_trial(1.0)                  # warm-up trial, also a correctness check
        if not (math.isfinite(out.sum_sq_error) and out.spike_counts["input"] > 0):
            raise RuntimeError(f"warm-up trial is broken: {out.spike_counts}, error {out.sum_sq_error}")

    def time_trial(self, backend, device):
        self.model.run_trial(1.0)     # ends with a device->host pull: the clock sees finished work


class SuperSpikeConvergence(Benchmark):
    """Error after the profile's trials and trials-to-target, one training run per seed."""

    params = (BACKENDS, DEVICES, SEEDS)
    param_names = ["backend", "device", "seed"]
    version = "superspike-convergence-2"
    repeat = 1
    timeout = 7200

    def setup_cache(self):
        from workloads.superspike.workload import run_training

        out = {}
        for backend in BACKENDS:
            for device in runnable_devices():
                if not _runnable(backend, device):
                    continue
                for seed in PROFILE.superspike_seeds:
                    res = run_training(PROFILE.superspike_size, backend, PROFILE.superspike_trials, seed=seed,
                                       device=device, kernel_profiling=False)
                    first, last = res.records[0], res.records[-1]
                    if not last.trial_error < first.trial_error:
                        raise RuntimeError(f"{backend} seed {seed}: no learning, error {first.trial_error} -> "
                                           f"{last.trial_error}")
                    out[(backend, device, seed)] = {"final_error": last.trial_error,
                                                    "final_running_error": last.running_error,
                                                    "trials_to_target": res.trials_to_target}
        return out

    def setup(self, cache, backend, device, seed):
        _require(backend, device)
        if (backend, device, seed) not in cache:
            raise NotImplementedError(f"seed {seed} is not trained in the {PROFILE.name} profile")

    def track_final_error(self, cache, *key):
        return cache[key]["final_error"]
    track_final_error.unit = "van Rossum error"

    def track_final_running_error(self, cache, *key):
        return cache[key]["final_running_error"]
    track_final_running_error.unit = "van Rossum error"

    def track_trials_to_target(self, cache, *key):
        return cache[key]["trials_to_target"] or float("nan")      # NaN: target not reached
    track_trials_to_target.unit = "trials"


class SuperSpikeKernelTimes(Benchmark):
    """GeNN's kernel timers, seconds per trial (median over the profile's timing trials)."""

    params = (DEVICES, KERNELS)
    param_names = ["device", "kernel"]
    version = "superspike-kernels-3"
    repeat = 1

    def setup_cache(self):
        from workloads.superspike.params import get_size
        from workloads.superspike.workload import make_backend

        size = get_size(PROFILE.superspike_size)
        out = {}
        for device in runnable_devices():
            if not _runnable("genn", device):
                continue
            model = make_backend("genn", size, seed=0, device=device, kernel_profiling=True)
            model.run_trial(1.0)                          # warm-up: first-touch page faults, caches
            trials = [model.run_trial(1.0).kernel_seconds for _ in range(PROFILE.superspike_timing_trials)]
            for kernel in KERNELS:
                samples = sorted(t[kernel] for t in trials)     # a missing timer is a bug: KeyError
                out[(device, kernel)] = samples[len(samples) // 2]
        return out

    def setup(self, cache, device, kernel):
        _require("genn", device)

    def track_kernel_seconds(self, cache, device, kernel):
        return cache[(device, kernel)]
    track_kernel_seconds.unit = "seconds"
