"""The SuperSpike workload's declaration: its table lines, its metric families and how each measures a row.

One line per backend, device and network, each tagged with the profiles that run it. Imports
no torch (and no pygenn): each family's measurement imports the workload when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..metrics import Family, Metric, Split, Timed, Value, Workload, python_lines_metric
from .backend import TORCH_PHASES
from .genn_backend import SETUP_STAGES, TRIAL_TIMERS


SEEDS = (0, 1, 2)                        # a line's convergence seeds unless it names more


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
    seeds: tuple[int, ...] = SEEDS       # its convergence runs, one per seed (the gate pairs them by seed)
    details: bool = True                 # phase times, operator counts (torch); kernel timers, setup (GeNN)


SUPERSPIKE_TABLE = (
    #              backend  device  size    trials  profiles
    SuperSpikeLine("torch", "cpu",  "ci",   6,      ("ci",)),
    SuperSpikeLine("genn",  "cpu",  "ci",   6,      ("ci",)),
    SuperSpikeLine("genn",  "cuda", "ci",   6,      ("ci",)),
    # nightly: ten seeds, so that a consistent learning loss of about 3 % (every seed a little worse, as a
    # surrogate steepness of 850 instead of 1000 was) is seen by the gate's paired test; three cannot
    SuperSpikeLine("genn",  "cuda", "full", 60,     ("regular",),           seeds=tuple(range(10))),
    SuperSpikeLine("genn",  "cuda", "full", 600,    ("full",),              seeds=tuple(range(10))),
    # torch on a GPU: the step loop is timed (and, small, profiled); the training runs replay the same steps
    # as CUDA graphs, one launch per chunk instead of one per kernel (equality with the loop: tests/test_gpu.py;
    # the speed-up is not measured yet): 180 eager full-size trials (~40 launches a step, 18,900 steps) would
    # not fit a nightly run
    SuperSpikeLine("torch", "cuda", "ci",   6,      ("ci",),                convergence=False),
    SuperSpikeLine("torch", "cuda", "full", 20,     ("regular", "full"),    convergence=False, details=False),
    SuperSpikeLine("torch", "cuda", "ci",   6,      ("ci",),                cuda_graph=True, details=False),
    SuperSpikeLine("torch", "cuda", "full", 20,     ("regular",),           cuda_graph=True, details=False,
                   seeds=tuple(range(10))),
    SuperSpikeLine("torch", "cuda", "full", 600,    ("full",),              cuda_graph=True, details=False),
    # compiled steps may round differently: timed only, the fast path's speed (on a CPU: 3x the loop's)
    SuperSpikeLine("torch", "cpu",  "ci",   6,      ("ci",),                compile=True,
                   convergence=False, details=False),
    SuperSpikeLine("torch", "cuda", "full", 20,     ("regular", "full"),    compile=True, cuda_graph=True,
                   convergence=False, details=False),
)



# ---------------------------------------------------------------- how each family measures a row

def _prepare_trial(row):
    from .workload import PreparedTrial

    return Timed(PreparedTrial(row.case))


def _convergence(row, profile):
    import math

    from .workload import measure_convergence

    rec = measure_convergence(row.case)
    return {"final_error": Value(rec.final_error), "final_running_error": Value(rec.final_running_error),
            "trials_to_target": Value(math.nan if rec.trials_to_target is None else float(rec.trials_to_target))}


def _op_count(row, profile):
    from .workload import measure_op_count

    rec = measure_op_count(row.case)
    def largest(counts: dict) -> tuple:
        return tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    return {"operators_per_step": Value(float(rec.operators_per_step), parts=largest(rec.step_by_source)),
            "bytes_per_step": Value(float(rec.bytes_per_step)),
            "operators_per_update": Value(float(rec.operators_per_update), parts=largest(rec.update_by_source))}


def _setup(row, profile):
    from .workload import measure_setup

    rec = measure_setup(row.case)
    return {**{f"{stage}_seconds": Value(seconds) for stage, seconds in rec.seconds.items()},
            "generated_code_bytes": Value(float(rec.generated_code_bytes))}


def _trial_timers(row, profile):
    """Median seconds per trial of each kernel timer (GeNN) or phase (torch) over the timing trials."""
    from .workload import measure_trials

    rec = measure_trials(row.case, profile.superspike_timing_trials)
    medians = rec.median_kernel_seconds()
    names = TORCH_PHASES if row.family == "SuperSpikePhaseTimes" else TRIAL_TIMERS
    return {name: Value(medians[name], rec.kernel_seconds[name]) for name in names}


def _genn_in_child(measure):
    """``measure`` for a GeNN row in a process of its own (workloads.isolate): GeNN ends the process on
    a CUDA error, which must cost that row only. ``measure`` is module-level, so the child can import it."""
    def run(row, profile):
        if getattr(row.case, "backend", None) == "genn":
            from ..isolate import in_child

            return in_child(measure, row, profile)
        return measure(row, profile)
    run.__name__ = measure.__name__
    return run


# ---------------------------------------------------------------- families and their metrics

_MATCH = ("backend", "device", "size")
_KERNEL_TIME = "kernel time"
_PHASES = tuple(Metric(p, "seconds", _KERNEL_TIME, "lower", "timing") for p in TORCH_PHASES)
_TIMERS = tuple(Metric(k, "seconds", _KERNEL_TIME, "lower", "timing") for k in TRIAL_TIMERS)

TRIAL = Family(
    "SuperSpikeTrial", "superspike", ("backend", "device", "size", "compile", "cuda_graph"),
    (Metric("time_trial", "seconds", "time", "lower", "timing", timed=True,
            splits=(Split("SuperSpikeKernelTimes", _MATCH, (("backend", "genn"),)),
                    Split("SuperSpikePhaseTimes", _MATCH, (("backend", "torch"),)))),),
    "Wall time of one trial after a warm-up trial (ends with a device->host pull).",
    prepare=_prepare_trial, rounds=lambda profile: profile.superspike_timing_trials)

CONVERGENCE = Family(
    "SuperSpikeConvergence", "superspike", ("backend", "device", "size", "trials", "seed"),
    # seeded: another CPU's rounding moves the median of three seeds far less than the threshold
    (Metric("final_error", "van Rossum error", "convergence", "lower", "seeds", portable=True),
     Metric("final_running_error", "van Rossum error", "convergence", "lower", "seeds", portable=True),
     Metric("trials_to_target", "trials", "trials to target", "lower", "seeds", portable=True)),
    "Error after a seeded training run and trials until half of trial 0's error (NaN: never).",
    measure=_genn_in_child(_convergence), relative_cost=8.0)

PHASE_TIMES = Family(
    "SuperSpikePhaseTimes", "superspike", _MATCH, _PHASES,
    "The torch backend's phases, seconds per trial (median over the profile's timing trials): the "
    "simulation steps and the weight updates, each synchronised.", measure=_trial_timers)

OP_COUNT = Family(
    "SuperSpikeOpCount", "superspike", _MATCH,
    (Metric("operators_per_step", "operators", "operator count", "lower", "exact", portable=True),
     Metric("bytes_per_step", "bytes", "operator count", "lower", "exact", portable=True, positive=True),
     Metric("operators_per_update", "operators", "operator count", "lower", "exact", portable=True)),
    "aten operators of one torch simulation step (and the bytes they newly allocate) and of one weight "
    "update, counted on a CPU: deterministic, judged exactly on any runner.", measure=_op_count)

SETUP = Family(
    "SuperSpikeSetup", "superspike", _MATCH,
    tuple(Metric(f"{stage}_seconds", "seconds", "one-off cost", "lower", "median") for stage in SETUP_STAGES)
    + (Metric("generated_code_bytes", "bytes", "operator count", "lower", "exact", portable=True),),
    "GeNN's one-off costs: code generation + build into an empty cache, load, init, init_sparse and "
    "the initial transpose (per-trial timings never see them).", measure=_genn_in_child(_setup))

KERNEL_TIMES = Family(
    "SuperSpikeKernelTimes", "superspike", _MATCH, _TIMERS,
    "GeNN's kernel timers, seconds per trial (median over the profile's timing trials).",
    measure=_genn_in_child(_trial_timers))

COUNTED_STEPS = 10                       # steps a counted step's value is the mean of
COUNTED_GENN_STEPS = 100                 # GeNN's steps are cheap to count; a hundred average over spike patterns


def _instruction_specs(row) -> list[dict]:
    case = {"backend": row.case.backend, "device": "cpu", "size": row.case.size}
    counted = "workloads.superspike.counted"
    if row.case.backend == "genn":
        return [{"step": f"{counted}:genn_step", "steps": COUNTED_GENN_STEPS, "case": case},
                {"step": f"{counted}:genn_update", "steps": 1, "case": case}]
    return [{"step": f"{counted}:torch_step", "steps": COUNTED_STEPS, "case": case},
            {"step": f"{counted}:torch_update", "steps": 1, "case": case}]


def _instructions(row, profile):
    from ..counting import as_value, counts_of_row, python_value

    siblings = [r for r in rows() if r.family == row.family]
    step, update = counts_of_row(row, profile, _instruction_specs, siblings,
                                relative_cost=FAMILIES_BY_NAME[row.family].relative_cost)
    return {"instructions_per_step": as_value(step), "instructions_per_update": as_value(update),
            "python_lines_per_step": python_value(step), "python_lines_per_update": python_value(update)}


_COUNTED_METRICS = (Metric("instructions_per_step", "instructions", "instruction count", "lower", "counted"),
                    Metric("instructions_per_update", "instructions", "instruction count", "lower", "counted"),
                    python_lines_metric("python_lines_per_step"), python_lines_metric("python_lines_per_update"))
_COUNTS_CANNOT_SEE = ("Counts cannot see waits (sleeps, I/O, locks), memory stalls, other threads or GPU "
                      "kernels: the trial timings judge those.")

INSTRUCTIONS = Family(
    "SuperSpikeInstructions", "superspike", _MATCH, _COUNTED_METRICS,
    "Host instructions of one torch simulation step (mean of 10) and one weight update, under valgrind's "
    "callgrind (as GPTInstructions): within 0.3 % from process to process on one machine. "
    + _COUNTS_CANNOT_SEE,
    measure=_instructions, relative_cost=10.0)

GENN_INSTRUCTIONS = Family(
    "SuperSpikeGeNNInstructions", "superspike", _MATCH, _COUNTED_METRICS,
    "Host instructions of GeNN's CPU backend: one step_time from a trial's start (mean of 100: the generated "
    "updateNeurons and updateSynapses) and one GradientLearn update (updateGradientLearn, with the feedback "
    "transpose), under callgrind with code generation and compilation outside the counted span; the "
    "generated kernels are named where it grew. " + _COUNTS_CANNOT_SEE,
    measure=_instructions, relative_cost=10.0)

FAMILIES = (TRIAL, CONVERGENCE, PHASE_TIMES, OP_COUNT, SETUP, KERNEL_TIMES, INSTRUCTIONS, GENN_INSTRUCTIONS)
FAMILIES_BY_NAME = {family.name: family for family in FAMILIES}


# ---------------------------------------------------------------- rows

def _line_rows(line: SuperSpikeLine):
    from .case import SuperSpikeCase

    base = SuperSpikeCase(backend=line.backend, device=line.device, size=line.size, trials=line.trials,
                          compile=line.compile, cuda_graph=line.cuda_graph)
    timing = base.with_(trials=1)           # a timing runs its own trials: the run length is not its key
    yield TRIAL.row(timing, line.profiles)
    if line.convergence:
        for seed in line.seeds:
            yield CONVERGENCE.row(base.with_(seed=seed), line.profiles)
    if not line.details:
        return
    if line.backend == "torch":
        yield PHASE_TIMES.row(timing.with_(kernel_profiling=True), line.profiles)
        # the model's ops, counted on a CPU whatever the line's device
        yield OP_COUNT.row(timing.with_(device="cpu", compile=False), line.profiles)
    if line.backend == "genn":
        yield KERNEL_TIMES.row(timing.with_(kernel_profiling=True), line.profiles)
        yield SETUP.row(timing, line.profiles)


def rows():
    from .case import SuperSpikeCase

    for line in SUPERSPIKE_TABLE:
        yield from _line_rows(line)
    yield INSTRUCTIONS.row(SuperSpikeCase(backend="torch", device="cpu", size="ci", trials=1), ("counted",))
    yield GENN_INSTRUCTIONS.row(SuperSpikeCase(backend="genn", device="cpu", size="ci", trials=1), ("counted",))


def unavailable(row) -> str | None:
    if row.family in (INSTRUCTIONS.name, GENN_INSTRUCTIONS.name):
        from ..counting import unavailable as cannot_count

        if cannot_count():
            return cannot_count()
    if getattr(row.case, "backend", None) == "genn":
        from .genn_backend import pygenn_available

        if not pygenn_available():
            return "pygenn is not installed (build it from GeNN's source: docs/genn.md)"
    return None


WORKLOAD = Workload("superspike", FAMILIES, rows, unavailable)
