"""asv suites for SuperSpike: time per trial, convergence, time-to-target and GeNN's kernel timers."""

from __future__ import annotations

import math

import torch

from workloads.superspike.genn_backend import KERNEL_TIMERS, pygenn_available
from workloads.superspike.params import get_size
from workloads.superspike.workload import make_backend, run_training

from .common import DEVICES, PROFILE, Benchmark, require_device

BACKENDS = ["torch", "genn"]


def _require(backend, device):
    require_device(device)
    if backend == "genn" and not pygenn_available():
        raise NotImplementedError("pygenn is not installed")


class SuperSpikeTrial(Benchmark):
    """Wall time of one trial (GeNN code generation and torch.compile happen in setup, not here)."""

    params = (BACKENDS, DEVICES)
    param_names = ["backend", "device"]
    version = "superspike-trial-1"
    repeat = (1, 3, 600.0)

    def setup(self, backend, device):
        _require(backend, device)
        size = get_size(PROFILE.superspike_size)
        self.model = make_backend(backend, size, seed=0, device=device, kernel_profiling=False,
                                  compile=backend == "torch" and PROFILE.name != "ci")
        out = self.model.run_trial(1.0)                  # warm-up trial, also a correctness check
        if not (math.isfinite(out.sum_sq_error) and out.spike_counts["input"] > 0):
            raise RuntimeError(f"warm-up trial is broken: {out.spike_counts}, error {out.sum_sq_error}")

    def time_trial(self, backend, device):
        self.model.run_trial(1.0)     # ends with a device->host pull: the clock sees finished work


class SuperSpikeConvergence(Benchmark):
    """Error after the profile's trials, trials-to-target and GeNN kernel times per trial."""

    params = (BACKENDS, DEVICES)
    param_names = ["backend", "device"]
    version = "superspike-convergence-1"
    repeat = 1
    timeout = 7200

    def setup(self, backend, device):
        _require(backend, device)
        self.result = run_training(PROFILE.superspike_size, backend, PROFILE.superspike_trials, seed=0,
                                   device=device, kernel_profiling=backend == "genn")
        first, last = self.result.records[0], self.result.records[-1]
        if not last.trial_error < first.trial_error:
            raise RuntimeError(f"no learning: error {first.trial_error} -> {last.trial_error}")

    def track_final_error(self, *params):
        return self.result.records[-1].trial_error
    track_final_error.unit = "van Rossum error"

    def track_final_running_error(self, *params):
        return self.result.records[-1].running_error
    track_final_running_error.unit = "van Rossum error"

    def track_trials_to_target(self, *params):
        return self.result.trials_to_target or float("nan")
    track_trials_to_target.unit = "trials"


class SuperSpikeKernelTimes(Benchmark):
    """GeNN's kernel timers, seconds per trial (median over the profile's timing trials)."""

    params = (DEVICES, list(KERNEL_TIMERS) + ["custom_update_GradientLearn"])
    param_names = ["device", "kernel"]
    version = "superspike-kernels-1"
    repeat = 1

    def setup(self, device, kernel):
        _require("genn", device)
        size = get_size(PROFILE.superspike_size)
        model = make_backend("genn", size, seed=0, device=device, kernel_profiling=True)
        self.samples = [model.run_trial(1.0).kernel_seconds.get(kernel, 0.0)
                        for _ in range(PROFILE.superspike_timing_trials)]

    def track_kernel_seconds(self, device, kernel):
        s = sorted(self.samples)
        return s[len(s) // 2]
    track_kernel_seconds.unit = "seconds"


del torch
