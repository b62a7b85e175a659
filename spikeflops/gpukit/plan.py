"""What the kit runs: its stages in order, each with a time budget and the table rows it measures.

Two plans share one list of stages. ``gpu`` is the 8-minute plan for a bare GPU machine (the four
book sizes, full-size SuperSpike); ``rehearsal`` runs the same stages at CI sizes on a CPU, so a
stage that rots fails a test here before it wastes a GPU's minutes. The stages are ordered by what
a lost minute would cost: the headline figures (tokens/s and MFU, SuperSpike trial times on both
backends) come first, the records that only repeat them last. No torch here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from workloads.errors import SpikeflopsError
from workloads.metrics import Row
from workloads.profiles import Profile, get_profile
from workloads.registry import select

PLANS = ("gpu", "rehearsal")
GPU_BUDGET_S = 480.0                 # 8 minutes: a 10-minute command with room for the start and the install


@dataclass(frozen=True)
class Stage:
    name: str
    what: str
    kind: str                        # "facts", "rows", "tests" or "harnesses"
    budget_s: dict[str, float]       # per plan: seconds this stage may take at most
    needs: str = ""                  # a package without which the stage is skipped, with the reason
    what_on_cpu: str = ""            # what the rehearsal does instead, in a CPU's words (else ``what``)

    def budget(self, plan: str) -> float:
        return self.budget_s[plan]

    def describe(self, plan: str) -> str:
        return self.what_on_cpu if plan == "rehearsal" and self.what_on_cpu else self.what


STAGES = (
    Stage("facts", "the machine's facts and its measured matmul peak", "facts", {"gpu": 15, "rehearsal": 20}),
    Stage("gpt-flops", "exact FLOPs of the four book sizes (meta tensors: no GPU time)", "rows",
          {"gpu": 15, "rehearsal": 20}, needs="thop", what_on_cpu="exact FLOPs of gpt-nano (meta tensors)"),
    Stage("gpt-throughput", "tokens/s and MFU, book and fast, every book size", "rows", {"gpu": 70, "rehearsal": 30},
          what_on_cpu="tokens/s and MFU (against the measured matmul peak: a CPU has no datasheet peak), "
                      "book and fast, gpt-nano"),
    Stage("superspike-torch", "SuperSpike on torch: eager, CUDA graphs, compiled + graphs", "rows",
          {"gpu": 60, "rehearsal": 30}, what_on_cpu="SuperSpike on torch, ci network: eager, and the graphed "
                                                     "path's chunks run eagerly (no CUDA graphs on a CPU)"),
    Stage("genn", "SuperSpike on GeNN: timed trials (timers off), kernel timers, setup", "rows",
          {"gpu": 75, "rehearsal": 60}, needs="pygenn"),
    Stage("gpt-max-batch", "max batch, forward and train, every book size (fast variant)", "rows",
          {"gpu": 55, "rehearsal": 45}, what_on_cpu="max batch of gpt-nano, forward and train, in a 128 MiB budget"),
    Stage("gpt-mfu-target", "gpt-small fast, compiled, at its best batch: the MFU target row", "rows",
          {"gpu": 60, "rehearsal": 30}, what_on_cpu="gpt-nano fast, eager, at its best batch: the MFU target "
                                                     "row's CPU stand-in"),
    Stage("convergence", "a short seeded training run on each backend", "rows", {"gpu": 35, "rehearsal": 40}),
    Stage("gpu-tests", "the gpu tests (tests/test_gpu.py)", "tests", {"gpu": 40, "rehearsal": 40},
          what_on_cpu="the gpu tests (tests/test_gpu.py): on a CPU each skips with its reason"),
    Stage("harnesses", "asv and pytest-benchmark records of two of the same cases", "harnesses",
          {"gpu": 55, "rehearsal": 60}),
)
STAGE_NAMES = tuple(s.name for s in STAGES)

# How hard each measurement works inside a stage: the kit's budget, not a nightly run's
EFFORT = {
    "gpu": dict(gpt_repeats=10, superspike_timing_trials=2, timing_budget_s=1.0),
    "rehearsal": dict(gpt_repeats=3, superspike_timing_trials=2, timing_budget_s=0.2,
                      cpu_memory_limit_bytes=128 * 2**20),
}
CONVERGENCE_TRIALS = {"gpu": 10, "rehearsal": 3}
# batches the MFU row may use: the largest that fits (a power of two, for the kernels' tiles), up to this
MFU_BATCH_CAP = {"gpu": 64, "rehearsal": 16}

# the cases the harness stage records in both asv and pytest-benchmark (a regex over "<Family> <case id>")
HARNESS_CASES = {
    "gpu": r"^(GPTStep gpt-small-fast-bfloat16-cuda-train-8-False|SuperSpikeTrial torch-cuda-full-False-True)$",
    "rehearsal": r"^(GPTStep gpt-nano-fast-float32-cpu-train-4-False)$",
}
HARNESS_PROFILE = {"gpu": "regular", "rehearsal": "ci"}


def default_budget(plan: str) -> float:
    """The whole run's seconds: 8 minutes on a GPU; a rehearsal, its stages' sum (a slow CPU, not a lease)."""
    return GPU_BUDGET_S if plan == "gpu" else float(sum(s.budget(plan) for s in STAGES))


def stage_named(name: str) -> Stage:
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise SpikeflopsError(f"unknown kit stage {name!r}; choose from {', '.join(STAGE_NAMES)}")


def effort(plan: str, profile_name: str) -> Profile:
    """The profile a stage's rows are measured under: the table's profile, at the kit's effort."""
    return dataclasses.replace(get_profile(profile_name), **EFFORT[plan])


def _where(family: str, profile: str, **params) -> list[Row]:
    """Rows of ``family`` in ``profile`` whose case has these field values."""
    return [r for r in select(family, profile, runnable_only=False)
            if all(getattr(r.case, k) == v for k, v in params.items())]


def stage_rows(name: str, plan: str, earlier: list[dict] | None = None) -> tuple[str, list[Row]]:
    """(the profile the rows belong to, the rows) of a "rows" stage. ``earlier``: the entries measured
    so far (the MFU row takes its batch from the max-batch stage)."""
    gpu = plan == "gpu"
    profile, device = ("full", "cuda") if gpu else ("ci", "cpu")
    if name == "gpt-flops":
        return profile, select("GPTFlops", profile, runnable_only=False)
    if name == "gpt-throughput":
        return profile, _where("GPTThroughput", profile, device=device, compile=False)
    if name == "gpt-max-batch":
        return profile, _where("GPTMaxBatch", profile, device=device)
    if name == "gpt-mfu-target":
        size = "gpt-small" if gpu else "gpt-nano"
        base = _where("GPTThroughput", profile, device=device, size=size, variant="fast",
                      compile=gpu)[:1]   # a CPU compile costs half a minute of a rehearsal: it rehearses eager
        return profile, [mfu_row(r, earlier or [], MFU_BATCH_CAP[plan]) for r in base]
    if name == "superspike-torch":
        rows = _where("SuperSpikeTrial", profile, backend="torch", device=device)
        if not gpu:                      # eager only: a CPU compile would take the rehearsal's whole budget
            rows = [r for r in rows if not r.case.compile]
        return profile, rows
    if name == "genn":
        return profile, [r for fam in ("SuperSpikeTrial", "SuperSpikeKernelTimes", "SuperSpikeSetup")
                         for r in _where(fam, profile, backend="genn", device=device)]
    if name == "convergence":
        trials = CONVERGENCE_TRIALS[plan]
        line = "regular" if gpu else "ci"     # the nightly lines train torch through CUDA graphs
        rows = []
        for backend in ("genn", "torch"):
            first = [r for r in _where("SuperSpikeConvergence", line, backend=backend, device=device, seed=0)][:1]
            rows += [dataclasses.replace(r, case=r.case.with_(trials=trials)) for r in first]
        return line, rows
    raise SpikeflopsError(f"kit stage {name!r} measures no table rows")


def mfu_row(row: Row, earlier: list[dict], cap: int) -> Row:
    """``row`` at its best batch: the largest power of two up to ``cap`` that the max-batch stage found to
    fit a training step, or, where an earlier stage measured that very case (a rehearsal's eager row at the
    table's batch), the largest batch that fits; the table's batch if the max-batch stage gave nothing."""
    case = row.case
    fits = _max_train_batch(earlier, case.size, case.device)
    if fits is None:
        return row
    batch = 1
    while batch * 2 <= min(fits, cap):
        batch *= 2
    measured = [e.get("case") for e in earlier if e.get("family") == row.family]
    if dataclasses.replace(case, batch=batch).to_dict() in measured:
        batch = min(fits, cap)
    return dataclasses.replace(row, case=dataclasses.replace(case, batch=batch))


def _max_train_batch(entries: list[dict], size: str, device: str) -> int | None:
    for e in entries:
        p = e.get("params", {})
        if (e.get("family") == "GPTMaxBatch" and "error" not in e and p.get("size") == size
                and p.get("device", "").startswith(device) and p.get("mode") == "train"):
            fits = e.get("metrics", {}).get("max_batch")
            if fits and fits >= 1:
                return int(fits)
    return None

