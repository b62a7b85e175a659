"""Each metric family's numbers, from the workload contracts: what both harnesses record for a row.

asv's benchmark classes and pytest-benchmark's tests call only these two functions,
so a metric has one definition: :func:`track` for the numbers a contract returns,
:func:`timed` for the callable a harness's own timer measures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .cases import FAMILIES, Profile, Row


@dataclass(frozen=True)
class Value:
    value: float                             # the summary a harness stores (NaN: ran, never reached)
    samples: tuple[float, ...] = ()          # what it summarises: per step, per trial


def _nan_if_none(v) -> float:
    return math.nan if v is None else float(v)


def track(row: Row, profile: Profile) -> dict[str, Value]:
    """Every metric of ``row``'s (untimed) family, measured through the contract."""
    case, family = row.case, row.family
    if family == "GPTThroughput":
        from .gpt.workload import measure_step

        import torch

        from .load import LoadProbe

        with LoadProbe(threads=torch.get_num_threads()) as probe:
            rec = measure_step(case, warmup=2, repeats=profile.gpt_repeats)
        out = {"tokens_per_s": Value(rec.tokens_per_s, tuple(rec.per_step("tokens_per_s"))),
               "cpu_share": Value(probe.record.cpu_share),
               "first_step_overhead": Value(rec.first_step_overhead)}
        for name in ("mfu", "mfu_vs_measured_peak"):
            v = getattr(rec, name)
            out[name] = Value(_nan_if_none(v) * 100.0, tuple(100.0 * s for s in rec.per_step(name)))
        return out
    if family == "GPTMemory":
        from .gpt.workload import measure_peak_memory

        return {"peak_memory": Value(float(measure_peak_memory(case).peak_memory))}
    if family == "GPTFlops":
        from .gpt.workload import measure_flops

        rec = measure_flops(case)
        return {m.name: Value(float(getattr(rec, m.name))) for m in FAMILIES[family].metrics}
    if family == "GPTOpCount":
        from .gpt.workload import measure_op_count

        rec = measure_op_count(case)
        return {"operators": Value(float(rec.operators)), "distinct_operators": Value(float(rec.distinct_operators)),
                "bytes_allocated": Value(float(rec.bytes_allocated))}
    if family == "GPTMaxBatch":
        from .gpt.workload import measure_max_batch

        limit = profile.cpu_memory_limit_bytes if case.device == "cpu" else None
        return {"max_batch": Value(float(measure_max_batch(case, limit).max_batch))}
    if family == "GPTKernelBreakdown":
        from .gpt.workload import measure_breakdown

        rec = measure_breakdown(case)
        return {kind: Value(seconds) for kind, seconds in rec.seconds.items()}
    if family == "GPTScaling":
        from .gpt.launch import measure_scaling

        rec = measure_scaling(case, warmup=2, repeats=profile.gpt_repeats)[-1]     # the case's world
        percent = lambda v: _nan_if_none(v) * 100.0                                 # noqa: E731
        return {"tokens_per_s": Value(rec.tokens_per_s, tuple(case.global_batch * case.seq_len / s
                                                               for s in rec.step_seconds)),
                "tokens_per_s_per_rank": Value(rec.tokens_per_s_per_rank),
                "mfu": Value(percent(rec.mfu)), "scaling_efficiency": Value(percent(rec.scaling_efficiency)),
                "collective_share": Value(percent(rec.collective_share))}
    if family == "SuperSpikeConvergence":
        from .superspike.workload import measure_convergence

        rec = measure_convergence(case)
        return {"final_error": Value(rec.final_error), "final_running_error": Value(rec.final_running_error),
                "trials_to_target": Value(_nan_if_none(rec.trials_to_target))}
    if family == "SuperSpikeOpCount":
        from .superspike.workload import measure_op_count

        rec = measure_op_count(case)
        return {"operators_per_step": Value(float(rec.operators_per_step)),
                "bytes_per_step": Value(float(rec.bytes_per_step)),
                "operators_per_update": Value(float(rec.operators_per_update))}
    if family == "SuperSpikeSetup":
        from .superspike.workload import measure_setup

        rec = measure_setup(case)
        return {**{f"{stage}_seconds": Value(seconds) for stage, seconds in rec.seconds.items()},
                "generated_code_bytes": Value(float(rec.generated_code_bytes))}
    if family in ("SuperSpikeKernelTimes", "SuperSpikePhaseTimes"):
        from .superspike.workload import measure_trials

        rec = measure_trials(case, profile.superspike_timing_trials)
        medians = rec.median_kernel_seconds()
        return {m.name: Value(medians[m.name], rec.kernel_seconds[m.name]) for m in FAMILIES[family].metrics}
    raise ValueError(f"{family} is a timed family: use timed()")


class Timed:
    """A prepared callable whose calls a harness times; ``close()`` frees what it holds."""

    def __init__(self, fn, close=lambda: None):
        self._fn, self._close = fn, close

    def __call__(self):
        return self._fn()

    def close(self) -> None:
        self._close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def timed(row: Row) -> Timed:
    """The step of a timed family's row, prepared, checked and warmed up."""
    if row.family == "GPTStep":
        from .gpt.workload import prepare

        step = prepare(row.case, warmup=1)
        return Timed(step.run_synced, step.close)
    if row.family == "SuperSpikeTrial":
        from .superspike.workload import PreparedTrial

        return Timed(PreparedTrial(row.case))
    raise ValueError(f"{row.family} is not a timed family: use track()")


def timed_rounds(row: Row, profile: Profile) -> int:
    return profile.gpt_repeats if row.family == "GPTStep" else profile.superspike_timing_trials
