"""The case table: every measurement both harnesses and `spikeflops run` make, and which profile makes it.

One environment variable picks the profile: ``SPIKEFLOPS_PROFILE=ci`` (CPU-sized,
minutes; also measures the GPU where there is one), ``regular`` (a GPU runner's
nightly run) or ``full`` (the seeds' full sizes).

The table has one line per GPT size and batch, and one per SuperSpike backend,
device and network; each line expands into the cases of every metric family
(:data:`FAMILIES`). asv's benchmark classes take their ``params`` from here and
pytest-benchmark's tests their ``parametrize`` lists, so adding a line adds the
same cases to both harnesses and to `spikeflops run`.

This module imports no torch: asv's processes decide what to skip before paying for it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from .errors import SpikeflopsError

PROFILE_ENV_VAR = "SPIKEFLOPS_PROFILE"
PROFILE_NAMES = ("ci", "regular", "full")


@dataclass(frozen=True)
class Profile:
    """How hard each harness works per case in a profile (the cases themselves are in the table)."""

    name: str
    gpt_repeats: int                     # timed steps per GPT measurement
    superspike_timing_trials: int        # timed trials per SuperSpike timing
    cpu_memory_limit_bytes: int          # max-batch budget on a CPU (a GPU uses the whole device)


PROFILES = {
    "ci": Profile("ci", gpt_repeats=5, superspike_timing_trials=5, cpu_memory_limit_bytes=256 * 2**20),
    "regular": Profile("regular", gpt_repeats=10, superspike_timing_trials=3, cpu_memory_limit_bytes=8 * 2**30),
    "full": Profile("full", gpt_repeats=20, superspike_timing_trials=5, cpu_memory_limit_bytes=16 * 2**30),
}


def get_profile(name: str | None = None) -> Profile:
    """The profile named, else the one in ``SPIKEFLOPS_PROFILE``, else ``ci``."""
    name = name or os.environ.get(PROFILE_ENV_VAR) or "ci"
    try:
        return PROFILES[name]
    except KeyError:
        raise SpikeflopsError(f"unknown profile {name!r} (from {PROFILE_ENV_VAR}); "
                              f"choose one of {', '.join(PROFILES)}") from None


# ---------------------------------------------------------------- the table

@dataclass(frozen=True)
class GPTLine:
    size: str
    device: str
    dtype: str
    batch: int
    profiles: tuple[str, ...]
    compile: bool = False


@dataclass(frozen=True)
class GPTScaleLine:
    """A distributed training case: ``world_size`` ranks (GPUs, or CPU processes sharing the cores)."""

    size: str
    device: str
    dtype: str
    local_batch: int
    world_size: int
    strategies: tuple[str, ...]
    profiles: tuple[str, ...]


@dataclass(frozen=True)
class SuperSpikeLine:
    backend: str
    device: str
    size: str
    trials: int                          # trials of a convergence run
    profiles: tuple[str, ...]
    compile: bool = False
    cuda_graph: bool = False             # torch: steps as CUDA graph replays of chunks
    convergence: bool = True             # this line's training runs are the model's convergence record
    details: bool = True                 # phase times, operator counts (torch); kernel timers, setup (GeNN)


GPT_TABLE = (
    #       size          device  dtype       batch  profiles
    GPTLine("gpt-nano",   "cpu",  "float32",  4,     ("ci",)),
    GPTLine("gpt-nano",   "cuda", "bfloat16", 4,     ("ci",)),
    GPTLine("gpt-small",  "cuda", "bfloat16", 8,     ("regular",)),
    GPTLine("gpt-small",  "cuda", "bfloat16", 16,    ("full",)),
    GPTLine("gpt-medium", "cuda", "bfloat16", 16,    ("full",)),
    GPTLine("gpt-large",  "cuda", "bfloat16", 16,    ("full",)),
    GPTLine("gpt-xl",     "cuda", "bfloat16", 16,    ("full",)),
    # the fast path toward the hardware's limit (torch.compile: ~a minute per case, so not nightly)
    GPTLine("gpt-small",  "cuda", "bfloat16", 16,    ("full",),   compile=True),
)

GPT_SCALE_TABLE = (
    #            size         device  dtype       local batch  ranks  strategies       profiles
    GPTScaleLine("gpt-nano",  "cpu",  "float32",  2,           2,     ("ddp",),        ("ci",)),
    GPTScaleLine("gpt-small", "cuda", "bfloat16", 8,           1,     ("ddp",),        ("regular",)),
    GPTScaleLine("gpt-small", "cuda", "bfloat16", 8,           2,     ("ddp", "fsdp"), ("regular",)),
    GPTScaleLine("gpt-small", "cuda", "bfloat16", 8,           8,     ("ddp", "fsdp"), ("full",)),
    GPTScaleLine("gpt-xl",    "cuda", "bfloat16", 4,           8,     ("fsdp",),       ("full",)),
)

SUPERSPIKE_TABLE = (
    #              backend  device  size    trials  profiles
    SuperSpikeLine("torch", "cpu",  "ci",   6,      ("ci",)),
    SuperSpikeLine("genn",  "cpu",  "ci",   6,      ("ci",)),
    SuperSpikeLine("genn",  "cuda", "ci",   6,      ("ci",)),
    SuperSpikeLine("genn",  "cuda", "full", 60,     ("regular",)),
    SuperSpikeLine("genn",  "cuda", "full", 600,    ("full",)),
    # torch on a GPU: the step loop is timed (and, small, profiled); the training runs replay the same steps
    # as CUDA graphs, one launch per chunk instead of one per kernel (equality with the loop: tests/test_gpu.py;
    # the speed-up is not measured yet): 180 eager full-size trials (~40 launches a step, 18,900 steps) would
    # not fit a nightly run
    SuperSpikeLine("torch", "cuda", "ci",   6,      ("ci",),                convergence=False),
    SuperSpikeLine("torch", "cuda", "full", 20,     ("regular", "full"),    convergence=False, details=False),
    SuperSpikeLine("torch", "cuda", "ci",   6,      ("ci",),                cuda_graph=True, details=False),
    SuperSpikeLine("torch", "cuda", "full", 20,     ("regular",),           cuda_graph=True, details=False),
    SuperSpikeLine("torch", "cuda", "full", 600,    ("full",),              cuda_graph=True, details=False),
    # compiled steps may round differently: timed only, the fast path's speed (on a CPU: 3x the loop's)
    SuperSpikeLine("torch", "cpu",  "ci",   6,      ("ci",),                compile=True,
                   convergence=False, details=False),
    SuperSpikeLine("torch", "cuda", "full", 20,     ("regular", "full"),    compile=True, cuda_graph=True,
                   convergence=False, details=False),
)

GPT_VARIANTS = ("book", "fast")
SEEDS = (0, 1, 2)                        # convergence runs: the gate reads the seeds as samples of one metric
KERNEL_TIMERS = ("neuron_update", "presynaptic_update", "postsynaptic_update", "synapse_dynamics",
                 "custom_update_GradientLearn", "custom_update_GradientLearn_transpose",
                 "custom_update_CalculateTranspose", "custom_update_CalculateTranspose_transpose")
SETUP_STAGES = ("build", "load", "init", "init_sparse", "initial_transpose")     # GeNN's one-off costs
TORCH_PHASES = ("step", "gradient_learn")      # the torch backend's phase timers (synchronised)
BREAKDOWN_KINDS = ("matmul", "attention", "normalisation", "elementwise", "loss", "optimizer")


# ---------------------------------------------------------------- metric families

@dataclass(frozen=True)
class Metric:
    name: str                            # canonical: "<Family>.<name>" in every harness's results
    unit: str
    timed: bool = False                  # True: the harness's own timer measures it (asv time_*)


@dataclass(frozen=True)
class Family:
    """A group of metrics measured together on the same cases (one asv class, one pytest test)."""

    name: str
    workload: str                        # "gpt" or "superspike"
    params: tuple[str, ...]              # the case fields that vary, in order (asv param_names)
    metrics: tuple[Metric, ...]
    doc: str

    def metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(f"{self.name} has no metric {name!r}")

    @property
    def timed_metric(self) -> Metric | None:
        return next((m for m in self.metrics if m.timed), None)


_GPT_STEP_PARAMS = ("size", "variant", "dtype", "device", "mode", "batch", "compile")

FAMILIES = {f.name: f for f in (
    Family("GPTStep", "gpt", _GPT_STEP_PARAMS, (Metric("time_step", "seconds", timed=True),),
           "Wall time of one synchronised step: a no-grad forward, or forward + loss + backward + AdamW."),
    Family("GPTThroughput", "gpt", _GPT_STEP_PARAMS,
           (Metric("tokens_per_s", "tokens/s"), Metric("mfu", "percent"), Metric("mfu_vs_measured_peak", "percent"),
            Metric("cpu_share", "CPU s per wall s per thread"), Metric("first_step_overhead", "seconds")),
           "Training tokens/s and MFU (against the datasheet peak, else the measured matmul peak), the CPU "
           "share the process got while measuring them (low: a busy machine; the gate then does not judge), "
           "and the one-off cost of the first step beyond a steady one (torch.compile's compile time)."),
    Family("GPTMemory", "gpt", _GPT_STEP_PARAMS, (Metric("peak_memory", "bytes"),),
           "Device memory one training step holds at most (CUDA allocator statistics)."),
    Family("GPTFlops", "gpt", ("size", "batch"),
           tuple(Metric(n, "FLOP") for n in ("forward_thop", "forward_exact", "forward_analytic", "train_exact",
                                              "train_analytic")) + (Metric("parameters", "parameters"),),
           "FLOPs per forward pass and training step, three ways, and the parameter count (deterministic)."),
    Family("GPTOpCount", "gpt", ("size", "variant", "mode", "batch"),
           (Metric("operators", "operators"), Metric("distinct_operators", "operators"),
            Metric("bytes_allocated", "bytes")),
           "aten operators one step dispatches and the bytes their outputs newly allocate, counted on a CPU: "
           "deterministic, judged exactly on any runner."),
    Family("GPTMaxBatch", "gpt", ("size", "variant", "dtype", "device", "mode"), (Metric("max_batch", "sequences"),),
           "Largest batch of a no-grad forward / a training step (CPU: under the profile's memory budget)."),
    Family("GPTKernelBreakdown", "gpt", ("size", "variant", "dtype", "device", "batch"),
           tuple(Metric(k, "seconds") for k in BREAKDOWN_KINDS),
           "Seconds per training step by kind of op, from torch.profiler (device time on GPUs)."),
    Family("GPTScaling", "gpt", ("size", "strategy", "world_size", "local_batch", "device"),
           (Metric("tokens_per_s", "tokens/s"), Metric("tokens_per_s_per_rank", "tokens/s"),
            Metric("mfu", "percent"), Metric("scaling_efficiency", "percent"), Metric("collective_share", "percent")),
           "Training under torchrun (DDP or FSDP2) on world_size ranks, weak scaling: tokens/s, MFU per device, "
           "efficiency against one rank measured in the same run, and the share of step time in collectives."),
    Family("SuperSpikeTrial", "superspike", ("backend", "device", "size", "compile", "cuda_graph"),
           (Metric("time_trial", "seconds", timed=True),),
           "Wall time of one trial after a warm-up trial (ends with a device->host pull)."),
    Family("SuperSpikeConvergence", "superspike", ("backend", "device", "size", "trials", "seed"),
           (Metric("final_error", "van Rossum error"), Metric("final_running_error", "van Rossum error"),
            Metric("trials_to_target", "trials")),
           "Error after a seeded training run and trials until half of trial 0's error (NaN: never)."),
    Family("SuperSpikePhaseTimes", "superspike", ("backend", "device", "size"),
           tuple(Metric(p, "seconds") for p in TORCH_PHASES),
           "The torch backend's phases, seconds per trial (median over the profile's timing trials): the "
           "simulation steps and the weight updates, each synchronised."),
    Family("SuperSpikeOpCount", "superspike", ("backend", "device", "size"),
           (Metric("operators_per_step", "operators"), Metric("bytes_per_step", "bytes"),
            Metric("operators_per_update", "operators")),
           "aten operators of one torch simulation step (and the bytes they newly allocate) and of one weight "
           "update, counted on a CPU: deterministic, judged exactly on any runner."),
    Family("SuperSpikeSetup", "superspike", ("backend", "device", "size"),
           tuple(Metric(f"{stage}_seconds", "seconds") for stage in SETUP_STAGES)
           + (Metric("generated_code_bytes", "bytes"),),
           "GeNN's one-off costs: code generation + build into an empty cache, load, init, init_sparse and "
           "the initial transpose (per-trial timings never see them)."),
    Family("SuperSpikeKernelTimes", "superspike", ("backend", "device", "size"),
           tuple(Metric(k, "seconds") for k in KERNEL_TIMERS),
           "GeNN's kernel timers, seconds per trial (median over the profile's timing trials)."),
)}


# ---------------------------------------------------------------- rows

@dataclass(frozen=True)
class Row:
    family: str
    case: object                         # GPTCase or SuperSpikeCase
    profiles: tuple[str, ...]

    def param_values(self) -> tuple:
        return tuple(getattr(self.case, p) for p in FAMILIES[self.family].params)

    @property
    def device(self) -> str:
        return self.case.device


def _gpt_rows(line: GPTLine):
    from .gpt.case import GPTCase

    def case(**kw):
        return GPTCase(size=line.size, dtype=line.dtype, device=line.device, batch=line.batch,
                       compile=line.compile, **kw)

    # a compiled line is another way to run the fast variant (compile exists for it only): its speed and
    # memory; the breakdown's key has no compile field, and the counts are the model's
    for variant in ("fast",) if line.compile else GPT_VARIANTS:
        for mode in ("forward", "train"):
            yield Row("GPTStep", case(variant=variant, mode=mode), line.profiles)
        yield Row("GPTThroughput", case(variant=variant, mode="train"), line.profiles)
        if not line.compile:
            yield Row("GPTKernelBreakdown", case(variant=variant, mode="train"), line.profiles)
        if line.device.startswith("cuda"):
            yield Row("GPTMemory", case(variant=variant, mode="train"), line.profiles)
    if line.compile:
        return
    # counted on meta tensors: the same numbers on any machine, so every machine can gate them
    yield Row("GPTFlops", case(variant="book", mode="train").with_(device="cpu", dtype="float32", compile=False),
              line.profiles)
    for variant in GPT_VARIANTS:            # counted on a CPU in float32: the model's ops, not the device's
        for mode in ("forward", "train"):
            yield Row("GPTOpCount", case(variant=variant, mode=mode).with_(device="cpu", dtype="float32",
                                                                          compile=False), line.profiles)
    for mode in ("forward", "train"):       # the batch field is what the search varies: 1 in the key
        yield Row("GPTMaxBatch", case(variant="fast", mode=mode).with_(batch=1, compile=False), line.profiles)


def _scale_rows(line: GPTScaleLine):
    from .gpt.scale import ScaleCase

    for strategy in line.strategies:
        yield Row("GPTScaling", ScaleCase(line.size, strategy, line.world_size, line.local_batch, dtype=line.dtype,
                                          device=line.device), line.profiles)


def _superspike_rows(line: SuperSpikeLine):
    from .superspike.case import SuperSpikeCase

    base = SuperSpikeCase(backend=line.backend, device=line.device, size=line.size, trials=line.trials,
                          compile=line.compile, cuda_graph=line.cuda_graph)
    timing = base.with_(trials=1)           # a timing runs its own trials: the run length is not its key
    yield Row("SuperSpikeTrial", timing, line.profiles)
    if line.convergence:
        for seed in SEEDS:
            yield Row("SuperSpikeConvergence", base.with_(seed=seed), line.profiles)
    if not line.details:
        return
    if line.backend == "torch":
        yield Row("SuperSpikePhaseTimes", timing.with_(kernel_profiling=True), line.profiles)
        # the model's ops, counted on a CPU whatever the line's device
        yield Row("SuperSpikeOpCount", timing.with_(device="cpu", compile=False), line.profiles)
    if line.backend == "genn":
        yield Row("SuperSpikeKernelTimes", timing.with_(kernel_profiling=True), line.profiles)
        yield Row("SuperSpikeSetup", timing, line.profiles)


def _lines_rows():
    rows = []
    for line in GPT_TABLE:
        rows += _gpt_rows(line)
    for line in GPT_SCALE_TABLE:
        rows += _scale_rows(line)
    for line in SUPERSPIKE_TABLE:
        rows += _superspike_rows(line)
    return rows


_ROWS: list[Row] | None = None


def all_rows(family: str | None = None) -> list[Row]:
    """Every row of the table (every profile), or those of one family."""
    global _ROWS
    if _ROWS is None:
        merged: dict[tuple, Row] = {}
        for row in _lines_rows():           # one key, one row: lines that share a case share its profiles
            key = (row.family, row.param_values())
            if key in merged:
                if merged[key].case != row.case:
                    raise SpikeflopsError(f"the case table gives {row.family}{key[1]} two different cases")
                row = Row(row.family, row.case, tuple(dict.fromkeys(merged[key].profiles + row.profiles)))
            merged[key] = row
        _ROWS = list(merged.values())
    if family is not None and family not in FAMILIES:
        raise SpikeflopsError(f"unknown metric family {family!r}; choose one of {', '.join(FAMILIES)}")
    return [r for r in _ROWS if family is None or r.family == family]


def device_available(device: str) -> bool:
    """Can this machine run ``device``? Answered without importing torch where no GPU device node exists."""
    import glob
    import sys

    if not device.startswith("cuda"):
        return True
    if sys.platform.startswith("linux") and not (glob.glob("/dev/nvidia[0-9]*") or os.path.exists("/dev/kfd")):
        return False
    import torch

    return torch.cuda.is_available()


def backend_available(row: Row) -> bool:
    if getattr(row.case, "backend", None) == "genn":
        from .superspike.genn_backend import pygenn_available

        return pygenn_available()
    return True


def select(family: str | None = None, profile: Profile | str | None = None, runnable_only: bool = True) -> list[Row]:
    """The rows ``profile`` measures; ``runnable_only``: only those this machine can run."""
    name = profile.name if isinstance(profile, Profile) else get_profile(profile).name
    rows = [r for r in all_rows(family) if name in r.profiles]
    if runnable_only:
        rows = [r for r in rows if why_not_runnable(r, get_profile(name)) is None]
    return rows


def why_not_runnable(row: Row, profile: Profile | None = None) -> str | None:
    """Why this machine and profile skip ``row`` (None: it runs)."""
    profile = profile or get_profile()
    if profile.name not in row.profiles:
        return f"not in the {profile.name} profile"
    if not device_available(row.device):
        return f"no {row.device} device on this machine"
    world = getattr(row.case, "world_size", 1)
    if row.device == "cuda" and world > 1:
        import torch

        if torch.cuda.device_count() < world:
            return f"needs {world} GPUs, this machine has {torch.cuda.device_count()}"
    if not backend_available(row):
        return "pygenn is not installed (build it from GeNN's source: see README)"
    return None


def asv_params(family: str) -> tuple[list[list], list[str]]:
    """asv ``params`` and ``param_names`` of a family: each parameter's values over every row of the table.

    The same on every machine and profile (asv requires it); combinations that are not rows are skipped.
    """
    fam = FAMILIES[family]
    values = []
    for i, _ in enumerate(fam.params):
        seen = []
        for row in all_rows(family):
            v = row.param_values()[i]
            if v not in seen:
                seen.append(v)
        values.append(seen)
    return values, list(fam.params)


def row_for(family: str, values: tuple) -> Row | None:
    """The row of ``family`` whose parameters are ``values``, or None when the combination is not in the table."""
    for row in all_rows(family):
        if row.param_values() == tuple(values):
            return row
    return None


def case_fields(case) -> dict:
    return {f.name: getattr(case, f.name) for f in fields(case)}


def case_id(row: Row) -> str:
    """A short id for test names: the family's parameter values joined by dashes."""
    return "-".join(str(v) for v in row.param_values())
