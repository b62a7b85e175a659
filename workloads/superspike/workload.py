"""The SuperSpike workload contract: a case, one way to prepare it, and measurements that return typed records.

Both harnesses, `spikeflops run` and the CLI build a backend only through
:func:`prepare`, so a case is the same program everywhere (same backend, device,
compile and kernel-profiling switches).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass

from ..errors import SpikeflopsError
from ..hardware import resolve_device
from .genn_backend import SETUP_STAGES
from .conditions import make_initial_conditions
from .params import NetworkSize
from .targets import SpikeTrains, default_target, read_ras
from .training import TrainingResult, learning_rate, train

from .case import BACKENDS, SuperSpikeCase  # noqa: F401 - re-exported: the contract names its case


def load_target(size: NetworkSize, target_file: str | None = None) -> SpikeTrains:
    if target_file:
        return read_ras(target_file, size.num_output, size.trial_ms)
    return default_target(size.num_output, size.trial_ms)  # the picture is fixed, not per-seed


def prepare(case: SuperSpikeCase, cache_dir=None, target: SpikeTrains | None = None):
    """A ready-to-run backend of ``case`` (GeNN: code generated, built and loaded), before its first trial.

    ``target``: the case's target already loaded (a caller that needs it too reads the file once)."""
    size = case.network
    target = target if target is not None else load_target(size, case.target_file)
    conditions = make_initial_conditions(size, case.seed)
    if case.backend == "torch":
        from .torch_backend import TorchSuperSpike

        return TorchSuperSpike(size, conditions, target, resolve_device(case.device),
                               profile_phases=case.kernel_profiling, compile=case.compile,
                               cuda_graph=case.cuda_graph)
    from .genn_backend import GeNNSuperSpike, detect_genn_backend, pygenn_available

    if not pygenn_available():
        raise SpikeflopsError("backend 'genn' needs pygenn, which is not installed (see docs/genn.md)")
    genn_backend = {"auto": None, "cpu": "single_threaded_cpu", "cuda": "cuda"}.get(case.device, case.device)
    return GeNNSuperSpike(size, conditions, target, backend=genn_backend or detect_genn_backend(),
                          kernel_profiling=case.kernel_profiling, cache_dir=cache_dir)


class PreparedTrial:
    """A backend after one checked warm-up trial; calling it runs one more trial at trial 0's learning rate.

    Every trial ends with a device->host pull, so a clock around a call sees finished work.
    """

    def __init__(self, case: SuperSpikeCase):
        self.case = case
        self.model = prepare(case)
        out = self.model.run_trial(learning_rate(0))          # warm-up, and a correctness check
        if not (math.isfinite(out.sum_sq_error) and out.spike_counts["input"] > 0):
            raise SpikeflopsError(f"{case.label()}: the warm-up trial is broken: {out.spike_counts}, "
                                  f"error {out.sum_sq_error}")
        self.outputs = []

    def __call__(self):
        out = self.model.run_trial(learning_rate(0))
        self.outputs.append(out)
        return out


@dataclass(frozen=True)
class TrialTimingRecord:
    case: SuperSpikeCase
    seconds_per_trial: tuple[float, ...]               # one per timed trial
    kernel_seconds: dict[str, tuple[float, ...]]       # kernel or phase -> one value per timed trial
    steps_per_trial: int

    def median_kernel_seconds(self) -> dict[str, float]:
        return {k: statistics.median(v) for k, v in self.kernel_seconds.items()}

    def to_dict(self) -> dict:
        return {"case": self.case.to_dict(), "seconds_per_trial": list(self.seconds_per_trial),
                "kernel_seconds": {k: list(v) for k, v in self.kernel_seconds.items()},
                "steps_per_trial": self.steps_per_trial}


def measure_trials(case: SuperSpikeCase, repeats: int) -> TrialTimingRecord:
    """Wall time of ``repeats`` trials after a warm-up trial, with each kernel timer (or phase) per trial."""
    if repeats < 1:
        raise SpikeflopsError("repeats must be >= 1")
    trial = PreparedTrial(case)
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        trial()
        walls.append(time.perf_counter() - t0)
    kernels: dict[str, list[float]] = {}
    for out in trial.outputs:
        for k, v in out.kernel_seconds.items():
            kernels.setdefault(k, []).append(v)
    return TrialTimingRecord(case=case, seconds_per_trial=tuple(walls),
                             kernel_seconds={k: tuple(v) for k, v in kernels.items()},
                             steps_per_trial=case.network.trial_timesteps)




@dataclass(frozen=True)
class SetupRecord:
    """GeNN's one-off costs before the first trial, in seconds: code generation and compilation into an
    empty cache, loading, GeNN's own init and init_sparse timers, and the initial feedback transpose."""

    case: SuperSpikeCase
    seconds: dict[str, float]
    generated_code_bytes: int                 # GeNN's generated sources: a deterministic cost of the model

    def to_dict(self) -> dict:
        return {"case": self.case.to_dict(), "seconds": dict(self.seconds),
                "generated_code_bytes": self.generated_code_bytes}


def measure_setup(case: SuperSpikeCase) -> SetupRecord:
    """Build ``case``'s GeNN model from nothing (a fresh code cache) and time each one-off stage."""
    import tempfile

    if case.backend != "genn":
        raise SpikeflopsError("one-off setup costs are measured for the GeNN backend (code generation and build)")
    with tempfile.TemporaryDirectory(prefix="spikeflops-genn-build-") as cache:
        model = prepare(case.with_(kernel_profiling=True), cache_dir=cache)
        seconds, code_bytes = dict(model.setup_seconds), model.generated_code_bytes
        del model
    if code_bytes <= 0:
        raise SpikeflopsError(f"{case.label()}: GeNN generated no code in the build folder")
    return SetupRecord(case=case, seconds={stage: seconds[stage] for stage in SETUP_STAGES},
                       generated_code_bytes=code_bytes)


@dataclass(frozen=True)
class StepOpCountRecord:
    """aten operators (and bytes newly allocated) of one torch simulation step and of one weight update."""

    case: SuperSpikeCase
    operators_per_step: int
    bytes_per_step: int
    operators_per_update: int
    by_operator: dict[str, int]
    step_by_source: dict[str, int]            # "op from path:function: line" -> calls (opcount.OpCounter)
    update_by_source: dict[str, int]

    def to_dict(self) -> dict:
        return {"case": self.case.to_dict(), "operators_per_step": self.operators_per_step,
                "bytes_per_step": self.bytes_per_step, "operators_per_update": self.operators_per_update,
                "by_operator": dict(self.by_operator)}


def measure_op_count(case: SuperSpikeCase) -> StepOpCountRecord:
    """Count one simulation step's and one update's operators in the torch backend, on a CPU."""
    from ..opcount import OpCounter
    from .torch_backend import r_max_prop

    if case.backend != "torch" or case.device != "cpu":
        raise SpikeflopsError("operator counts are taken of the torch backend on a CPU")
    model = prepare(case)
    # Counted with autograd's dispatch on, on normal copies of the backend's inference-mode state: composite
    # ops then reach the counter as the kernels they run (mm, not matmul), the count this metric has always had.
    state = {name: value.clone() for name, value in model.state.items()}
    inputs, targets = model.input_raster.clone(), model.target_raster.clone()
    with OpCounter() as step_ops:                # the step's row lookups included, as the trial loop makes them
        model.step_fn(state, inputs[0], targets[0])      # the step as the backend runs it
    with OpCounter() as update_ops:
        r_max_prop(state, "ih", learning_rate(0), case.network.update_timesteps)
        r_max_prop(state, "ho", learning_rate(0), case.network.update_timesteps)
    return StepOpCountRecord(case=case, operators_per_step=step_ops.operators,
                             bytes_per_step=step_ops.bytes_allocated, operators_per_update=update_ops.operators,
                             by_operator=dict(sorted(step_ops.calls.items())),
                             step_by_source=dict(step_ops.by_source), update_by_source=dict(update_ops.by_source))


@dataclass(frozen=True)
class ConvergenceRecord:
    """How well and how fast one seeded training run learned (deterministic for a seed and backend)."""

    case: SuperSpikeCase
    first_error: float
    final_error: float
    final_running_error: float
    trials_to_target: int | None          # None: the target error was never reached
    seconds_to_target: float | None
    target_error: float

    def to_dict(self) -> dict:
        return asdict(self)


def measure_convergence(case: SuperSpikeCase) -> ConvergenceRecord:
    """Train ``case.trials`` trials from scratch; fails unless the error fell (learning happened)."""
    result = run_training(case)
    first, last = result.records[0], result.records[-1]
    if not (math.isfinite(last.trial_error) and last.trial_error < first.trial_error):
        raise SpikeflopsError(f"{case.label()}: no learning over {case.trials} trials "
                              f"(error {first.trial_error:.4g} -> {last.trial_error:.4g})")
    return ConvergenceRecord(case=case, first_error=first.trial_error, final_error=last.trial_error,
                             final_running_error=last.running_error, trials_to_target=result.trials_to_target,
                             seconds_to_target=result.seconds_to_target, target_error=result.target_error)


def run_training(case: SuperSpikeCase, record_trials=(), target_error: float | None = None,
                 progress=None, target: SpikeTrains | None = None) -> TrainingResult:
    """The demo's training loop over ``case.trials`` trials (what `spikeflops superspike` runs)."""
    bad = [t for t in record_trials if not 0 <= t < case.trials]
    if bad:
        raise SpikeflopsError(f"--record-trial {bad[0]} outside 0..{case.trials - 1}")
    size = case.network
    target = target if target is not None else load_target(size, case.target_file)
    model = prepare(case, target=target)
    return train(model, size, target, case.trials, case.seed, record_trials, target_error, progress)
