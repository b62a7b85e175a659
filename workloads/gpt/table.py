"""The GPT-2 workload's declaration: its table lines, its metric families and how each measures a row.

One line per size and batch (and per distributed setup), each tagged with the profiles that run
it, expands into the cases of every family below. Imports no torch: asv's processes decide what
to skip before paying for it; each family's measurement imports the workload when it runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..metrics import Family, Metric, Split, Timed, Value, Workload, python_lines_metric
from .breakdown import KINDS as BREAKDOWN_KINDS


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

GPT_VARIANTS = ("book", "fast")


# ---------------------------------------------------------------- how each family measures a row

def _pinned(measure):
    """``measure`` on the CPU thread count of ``workloads.load`` (GPU rows: torch's default), as SuperSpike."""
    def run(row, profile):
        from ..load import cpu_threads, intra_op_threads

        with intra_op_threads(cpu_threads(row.case.device)):
            return measure(row, profile)
    run.__name__ = measure.__name__
    return run


def _nan_if_none(v) -> float:
    return math.nan if v is None else float(v)


def _percent(v) -> float:
    return _nan_if_none(v) * 100.0


def _throughput(row, profile):
    import torch

    from ..load import LoadProbe
    from .workload import measure_step

    with LoadProbe(threads=torch.get_num_threads()) as probe:
        rec = measure_step(row.case, warmup=2, repeats=profile.gpt_repeats)
    out = {"tokens_per_s": Value(rec.tokens_per_s, tuple(rec.per_step("tokens_per_s"))),
           "cpu_share": Value(probe.record.cpu_share), "threads": Value(float(probe.record.threads)),
           "first_step_overhead": Value(rec.first_step_overhead)}
    for name in ("mfu", "mfu_vs_measured_peak"):        # a fraction in records, a percent in harness results
        out[name] = Value(_percent(getattr(rec, name)), tuple(100.0 * s for s in rec.per_step(name)))
    return out


def _memory(row, profile):
    from .workload import measure_peak_memory

    return {"peak_memory": Value(float(measure_peak_memory(row.case).peak_memory))}


def _flops(row, profile):
    from .workload import measure_flops

    rec = measure_flops(row.case)
    return {m.name: Value(float(getattr(rec, m.name))) for m in FLOPS.metrics}


def _op_count(row, profile):
    from .workload import measure_op_count

    rec = measure_op_count(row.case)
    return {"operators": Value(float(rec.operators), parts=_largest(rec.by_source)),
            "distinct_operators": Value(float(rec.distinct_operators)),
            "bytes_allocated": Value(float(rec.bytes_allocated)),
            "peak_live_bytes": Value(float(rec.peak_live_bytes)),
            "retained_live_bytes": Value(float(rec.retained_live_bytes))}


def _largest(counts: dict) -> tuple:
    return tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _max_batch(row, profile):
    from .maxbatch import measure_max_batch

    limit = profile.cpu_memory_limit_bytes if row.case.device == "cpu" else None
    return {"max_batch": Value(float(measure_max_batch(row.case, limit).max_batch))}


def _breakdown(row, profile):
    from .workload import measure_breakdown

    return {kind: Value(seconds) for kind, seconds in measure_breakdown(row.case).seconds.items()}


def _scaling(row, profile):
    from .launch import measure_scaling

    case = row.case
    # the case's world alone: its one-rank baseline is timed inside the same launch
    rec, = measure_scaling(case, warmup=2, repeats=profile.gpt_repeats, worlds=[case.world_size])
    return {"tokens_per_s": Value(rec.tokens_per_s, tuple(case.global_batch * case.seq_len / s
                                                           for s in rec.step_seconds)),
            "tokens_per_s_per_rank": Value(rec.tokens_per_s_per_rank),
            "mfu": Value(_percent(rec.mfu)), "scaling_efficiency": Value(_percent(rec.scaling_efficiency)),
            "collective_share": Value(_percent(rec.collective_share))}


def _prepare_step(row):
    import contextlib

    from ..load import cpu_threads, intra_op_threads
    from .workload import prepare

    threads = contextlib.ExitStack()           # the timed calls run on the pinned count until close()
    threads.enter_context(intra_op_threads(cpu_threads(row.case.device)))
    try:
        step = prepare(row.case, warmup=1)
    except BaseException:
        threads.close()
        raise

    def close():
        step.close()
        threads.close()
    return Timed(step.run_synced, close)


# ---------------------------------------------------------------- families and their metrics

_STEP_PARAMS = ("size", "variant", "dtype", "device", "mode", "batch", "compile")
_BREAKDOWN_MATCH = ("size", "variant", "dtype", "device", "batch")
_BY_KIND = (Split("GPTKernelBreakdown", _BREAKDOWN_MATCH),)


def _throughput_metric(name, unit, splits=()):
    return Metric(name, unit, "MFU, tokens/s", "higher", "median", splits=splits)


STEP = Family(
    "GPTStep", "gpt", _STEP_PARAMS,
    (Metric("time_step", "seconds", "time", "lower", "timing", timed=True,
            splits=(Split("GPTKernelBreakdown", _BREAKDOWN_MATCH, (("mode", "train"),)),)),),
    "Wall time of one synchronised step: a no-grad forward, or forward + loss + backward + AdamW.",
    prepare=_prepare_step, rounds=lambda profile: profile.gpt_repeats)

THROUGHPUT = Family(
    "GPTThroughput", "gpt", _STEP_PARAMS,
    (_throughput_metric("tokens_per_s", "tokens/s", _BY_KIND), _throughput_metric("mfu", "percent", _BY_KIND),
     _throughput_metric("mfu_vs_measured_peak", "percent"),
     Metric("cpu_share", "CPU s per wall s per thread", "machine load", "none", "exact"),
     Metric("threads", "threads", "machine load", "none", "exact"),
     Metric("first_step_overhead", "seconds", "one-off cost", "lower", "median")),
    "Training tokens/s and MFU (against the datasheet peak, else the measured matmul peak), the CPU "
    "share the process got while measuring them (low: a busy machine; the gate then does not judge) and "
    "the intra-op threads it ran on (one on a CPU), "
    "and the one-off cost of the first step beyond a steady one (torch.compile's compile time).",
    measure=_pinned(_throughput))

MEMORY = Family(
    "GPTMemory", "gpt", _STEP_PARAMS, (Metric("peak_memory", "bytes", "peak memory", "lower", "exact", positive=True),),
    "Device memory one training step holds at most (CUDA allocator statistics).", measure=_pinned(_memory))

FLOPS = Family(
    "GPTFlops", "gpt", ("size", "batch"),
    tuple(Metric(n, "FLOP", "FLOP count", "equal", "exact", portable=True)
          for n in ("forward_thop", "forward_exact", "forward_analytic", "train_exact", "train_analytic"))
    + (Metric("parameters", "parameters", "FLOP count", "equal", "exact", portable=True),),
    "FLOPs per forward pass and training step, three ways, and the parameter count (deterministic).",
    measure=_pinned(_flops))

OP_COUNT = Family(
    "GPTOpCount", "gpt", ("size", "variant", "mode", "batch"),
    (Metric("operators", "operators", "operator count", "lower", "exact", portable=True),
     Metric("distinct_operators", "operators", "operator count", "lower", "exact", portable=True),
     Metric("bytes_allocated", "bytes", "operator count", "lower", "exact", portable=True, positive=True),
     Metric("peak_live_bytes", "bytes", "live tensor bytes", "lower", "exact", portable=True, positive=True),
     Metric("retained_live_bytes", "bytes", "live tensor bytes", "lower", "exact", portable=True)),
    "aten operators one step dispatches, the bytes their outputs newly allocate, the most tensor bytes "
    "alive at once during the step (parameters, optimizer state and anything kept from the step before "
    "included) and those still alive after it, counted on a CPU after a warm-up step: deterministic, "
    "judged exactly on any runner.",
    measure=_pinned(_op_count))

MAX_BATCH = Family(
    "GPTMaxBatch", "gpt", ("size", "variant", "dtype", "device", "mode"),
    # not portable: a CPU budget fits 24 sequences on one CPU model and 28 on another
    (Metric("max_batch", "sequences", "max batch", "higher", "exact"),),
    "Largest batch of a no-grad forward / a training step (CPU: under the profile's memory budget).",
    measure=_max_batch, relative_cost=5.0)

KERNEL_BREAKDOWN = Family(
    "GPTKernelBreakdown", "gpt", _BREAKDOWN_MATCH,
    tuple(Metric(k, "seconds", "kernel time", "lower", "timing") for k in BREAKDOWN_KINDS),
    "Seconds per training step by kind of op, from torch.profiler (device time on GPUs).", measure=_pinned(_breakdown))

SCALING = Family(
    "GPTScaling", "gpt", ("size", "strategy", "world_size", "local_batch", "device"),
    tuple(Metric(n, u, "distributed throughput", "higher", "median")
          for n, u in (("tokens_per_s", "tokens/s"), ("tokens_per_s_per_rank", "tokens/s"), ("mfu", "percent"),
                       ("scaling_efficiency", "percent")))
    # a diagnostic, not judged: it includes each rank's wait for the slowest one, so it rises when compute
    # gets faster or ranks drift apart (docs/measurements.md: it rose while tokens/s rose too);
    # tokens/s and scaling efficiency judge what it costs
    + (Metric("collective_share", "percent", "collective share", "none", "median"),),
    "Training under torchrun (DDP or FSDP2) on world_size ranks, weak scaling: tokens/s, MFU per device, "
    "efficiency against one rank measured in the same run, and the share of step time in collectives "
    "(shown, not judged: it includes waiting for the slowest rank).",
    measure=_scaling)

def _instruction_specs(row) -> list[dict]:
    c = row.case
    case = {"size": c.size, "variant": c.variant, "dtype": "float32", "device": "cpu", "mode": c.mode,
            "batch": c.batch, "context_length": c.context_length}
    return [{"step": "workloads.gpt.counted:step", "steps": 1, "case": case}]


def _instructions(row, profile):
    from ..counting import as_value, counts_of_row, python_value

    siblings = [r for r in rows() if r.family == INSTRUCTIONS.name]
    (result,) = counts_of_row(row, profile, _instruction_specs, siblings, relative_cost=INSTRUCTIONS.relative_cost)
    return {"instructions": as_value(result), "python_lines": python_value(result)}


INSTRUCTIONS = Family(
    "GPTInstructions", "gpt", ("size", "variant", "mode", "batch"),
    (Metric("instructions", "instructions", "instruction count", "lower", "counted"), python_lines_metric()),
    "Host instructions one step executes (valgrind's callgrind, collection toggled around the step, oneDNN "
    "off, one thread, a fixed hash seed): close to one count in every process on one machine and library "
    "build (the SuperSpike step's over 401 processes: within 0.28 %), so a change of half a percent is seen "
    "where timings on a shared runner cannot see 15 %. Counts of the functions that executed them travel "
    "with the value, and the step's Python line events per function beside it (where it grew, in the user's "
    "code). Blind to waits, memory stalls, threads and GPU kernels.",
    measure=_instructions, relative_cost=60.0)

FAMILIES = (STEP, THROUGHPUT, MEMORY, FLOPS, OP_COUNT, MAX_BATCH, KERNEL_BREAKDOWN, SCALING, INSTRUCTIONS)


# ---------------------------------------------------------------- rows

def _line_rows(line: GPTLine):
    from .case import GPTCase

    def case(**kw):
        return GPTCase(size=line.size, dtype=line.dtype, device=line.device, batch=line.batch,
                       compile=line.compile, **kw)

    profiles = line.profiles
    # a compiled line is another way to run the fast variant (compile exists for it only): its speed and
    # memory; the breakdown's key has no compile field, and the counts are the model's
    for variant in ("fast",) if line.compile else GPT_VARIANTS:
        for mode in ("forward", "train"):
            yield STEP.row(case(variant=variant, mode=mode), profiles)
        yield THROUGHPUT.row(case(variant=variant, mode="train"), profiles)
        if not line.compile:
            yield KERNEL_BREAKDOWN.row(case(variant=variant, mode="train"), profiles)
        if line.device.startswith("cuda"):
            yield MEMORY.row(case(variant=variant, mode="train"), profiles)
    if line.compile:
        return
    # counted on meta tensors: the same numbers on any machine, so every machine can gate them
    yield FLOPS.row(case(variant="book", mode="train").with_(device="cpu", dtype="float32", compile=False), profiles)
    for variant in GPT_VARIANTS:            # counted on a CPU in float32: the model's ops, not the device's
        for mode in ("forward", "train"):
            yield OP_COUNT.row(case(variant=variant, mode=mode).with_(device="cpu", dtype="float32",
                                                                     compile=False), profiles)
    for mode in ("forward", "train"):       # the batch field is what the search varies: 1 in the key
        yield MAX_BATCH.row(case(variant="fast", mode=mode).with_(batch=1, compile=False), profiles)


def _scale_rows(line: GPTScaleLine):
    from .scale import ScaleCase

    for strategy in line.strategies:
        yield SCALING.row(ScaleCase(line.size, strategy, line.world_size, line.local_batch, dtype=line.dtype,
                                    device=line.device), line.profiles)


# instruction counts: the smallest model's steps, each variant and mode, at batch 2 over 64 tokens (valgrind
# makes a step ~100x slower; a count is exact at any size, so a small one loses nothing)
COUNTED_CASES = tuple((variant, mode) for variant in GPT_VARIANTS for mode in ("forward", "train"))
COUNTED_BATCH, COUNTED_CONTEXT = 2, 64


def rows():
    from .case import GPTCase

    for line in GPT_TABLE:
        yield from _line_rows(line)
    for line in GPT_SCALE_TABLE:
        yield from _scale_rows(line)
    for variant, mode in COUNTED_CASES:
        yield INSTRUCTIONS.row(GPTCase("gpt-nano", variant, "float32", "cpu", mode, batch=COUNTED_BATCH,
                                       context_length=COUNTED_CONTEXT), ("counted",))


def unavailable(row) -> str | None:
    if row.family == INSTRUCTIONS.name:
        from ..counting import unavailable as cannot_count

        return cannot_count()
    world = getattr(row.case, "world_size", 1)
    if row.device == "cuda" and world > 1:
        import torch

        if torch.cuda.device_count() < world:
            return f"needs {world} GPUs, this machine has {torch.cuda.device_count()}"
    return None


WORKLOAD = Workload("gpt", FAMILIES, rows, unavailable)
