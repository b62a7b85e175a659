"""The distributed GPT case: a training step on ``world_size`` ranks under DDP or FSDP2, and its record.

Weak scaling: every rank runs ``local_batch`` sequences, so the global batch grows
with the world. The record's arithmetic (global batch, tokens/s per rank, MFU per
device, efficiency against one rank) lives here, importable without torch; the
per-rank program is :mod:`workloads.gpt.scale_rank`, the launcher :mod:`workloads.gpt.launch`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from ..errors import SpikeflopsError
from .case import DTYPE_NAMES, VARIANTS
from .config import get_config

STRATEGIES = ("ddp", "fsdp")


@dataclass(frozen=True)
class ScaleCase:
    """One distributed training setting. ``device``: "cpu" (gloo) or "cuda" (nccl, one GPU per rank)."""

    size: str
    strategy: str = "ddp"
    world_size: int = 2
    local_batch: int = 4                  # sequences per rank per step
    variant: str = "fast"
    dtype: str = "float32"
    device: str = "cpu"
    seed: int = 0
    context_length: int | None = None

    def __post_init__(self):
        get_config(self.size, self.context_length)
        if self.strategy not in STRATEGIES:
            raise SpikeflopsError(f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        if self.variant not in VARIANTS:
            raise SpikeflopsError(f"unknown variant {self.variant!r}; choose one of {', '.join(VARIANTS)}")
        if self.dtype not in DTYPE_NAMES:
            raise SpikeflopsError(f"unknown dtype {self.dtype!r}; choose one of {', '.join(DTYPE_NAMES)}")
        if self.device not in ("cpu", "cuda"):
            raise SpikeflopsError(f"unknown device {self.device!r} for a distributed case: use cpu or cuda "
                                  "(each rank takes the GPU of its local rank)")
        for name in ("world_size", "local_batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpikeflopsError(f"{name} must be a whole number >= 1, got {value!r}")

    @property
    def backend(self) -> str:
        return "nccl" if self.device == "cuda" else "gloo"

    @property
    def global_batch(self) -> int:
        return self.local_batch * self.world_size

    @property
    def config(self):
        return get_config(self.size, self.context_length)

    @property
    def seq_len(self) -> int:
        return self.config.context_length

    def with_(self, **changes) -> "ScaleCase":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    def label(self) -> str:
        return (f"{self.size} {self.strategy} x{self.world_size} local b{self.local_batch} "
                f"{self.variant} {self.dtype} {self.device}")


@dataclass(frozen=True)
class ScaleRecord:
    """One distributed training measurement, gathered from every rank onto rank 0."""

    case: ScaleCase
    step_seconds: tuple[float, ...]           # per timed step: the slowest rank's time (a step ends on all)
    rank_step_seconds: tuple[tuple[float, ...], ...]
    flops_per_step_per_rank: float            # analytic (PaLM) training FLOPs of the local batch
    peak_flops_per_s: float | None            # per device (datasheet, else measured matmul peak)
    peak_source: str | None
    collective_seconds: tuple[float, ...]     # per rank: time with a collective in flight, per profiled step
    profiled_step_seconds: tuple[float, ...]  # per rank: wall time per profiled step
    loss_first: float                         # mean over ranks: the global batch's loss before any update
    loss_second: float                        # after one update
    loss_last: float
    grad_digests: tuple[str, ...]             # per rank, of the full gradients after the first backward
    threads_per_rank: int | None
    topology: dict = field(default_factory=dict)
    baseline_tokens_per_s_per_rank: float | None = None   # the same case on rank 0 alone, this launch

    @property
    def seconds_per_step(self) -> float:
        return _median(self.step_seconds)

    @property
    def tokens_per_s(self) -> float:
        return self.case.global_batch * self.case.seq_len / self.seconds_per_step

    @property
    def tokens_per_s_per_rank(self) -> float:
        return self.tokens_per_s / self.case.world_size

    @property
    def mfu(self) -> float | None:
        """Per device: each rank's model FLOPs over its own peak (the same on every rank of a weak-scaling step)."""
        from .utilisation import utilisation

        return utilisation(self.flops_per_step_per_rank / self.seconds_per_step, self.peak_flops_per_s)

    @property
    def scaling_efficiency(self) -> float | None:
        """Weak scaling: tokens/s per rank here over tokens/s of the same local batch on one rank."""
        if not self.baseline_tokens_per_s_per_rank:
            return None
        return self.tokens_per_s_per_rank / self.baseline_tokens_per_s_per_rank

    @property
    def collective_share(self) -> float:
        """Share of step time with a collective in flight (mean over ranks); 0 on one rank."""
        shares = [c / s for c, s in zip(self.collective_seconds, self.profiled_step_seconds) if s > 0]
        return sum(shares) / len(shares) if shares else 0.0

    def with_baseline(self, tokens_per_s_per_rank: float) -> "ScaleRecord":
        return replace(self, baseline_tokens_per_s_per_rank=tokens_per_s_per_rank)

    def to_dict(self) -> dict:
        return {"case": self.case.to_dict(), "world_size": self.case.world_size, "strategy": self.case.strategy,
                "backend": self.case.backend, "local_batch": self.case.local_batch,
                "global_batch": self.case.global_batch, "seconds_per_step": self.seconds_per_step,
                "step_seconds": list(self.step_seconds),
                "rank_step_seconds": [list(s) for s in self.rank_step_seconds],
                "tokens_per_s": self.tokens_per_s, "tokens_per_s_per_rank": self.tokens_per_s_per_rank,
                "flops_per_step_per_rank": self.flops_per_step_per_rank,
                "peak_flops_per_s": self.peak_flops_per_s, "peak_source": self.peak_source, "mfu": self.mfu,
                "baseline_tokens_per_s_per_rank": self.baseline_tokens_per_s_per_rank,
                "scaling_efficiency": self.scaling_efficiency, "collective_share": self.collective_share,
                "collective_seconds": list(self.collective_seconds),
                "profiled_step_seconds": list(self.profiled_step_seconds),
                "loss_first": self.loss_first, "loss_second": self.loss_second, "loss_last": self.loss_last,
                "grad_digests": list(self.grad_digests), "threads_per_rank": self.threads_per_rank,
                "topology": dict(self.topology)}

    @classmethod
    def from_dict(cls, d: dict) -> "ScaleRecord":
        try:
            return cls(case=ScaleCase(**d["case"]), step_seconds=tuple(d["step_seconds"]),
                       rank_step_seconds=tuple(tuple(s) for s in d["rank_step_seconds"]),
                       flops_per_step_per_rank=float(d["flops_per_step_per_rank"]),
                       peak_flops_per_s=d["peak_flops_per_s"], peak_source=d["peak_source"],
                       collective_seconds=tuple(d["collective_seconds"]),
                       profiled_step_seconds=tuple(d["profiled_step_seconds"]),
                       loss_first=float(d["loss_first"]), loss_second=float(d["loss_second"]),
                       loss_last=float(d["loss_last"]), grad_digests=tuple(d["grad_digests"]),
                       threads_per_rank=d["threads_per_rank"], topology=dict(d["topology"]),
                       baseline_tokens_per_s_per_rank=d.get("baseline_tokens_per_s_per_rank"))
        except (KeyError, TypeError, ValueError) as exc:
            raise SpikeflopsError(f"not a distributed GPT record: {type(exc).__name__}: {exc}") from None


def _median(values) -> float:
    import statistics

    if not values:
        raise SpikeflopsError("no timed steps")
    return statistics.median(values)


def world_sizes(nproc: int) -> list[int]:
    """The world sizes a scaling table measures up to ``nproc``: 1, powers of two, and ``nproc``."""
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise SpikeflopsError(f"--nproc must be a whole number >= 1, got {nproc!r}")
    sizes, n = [], 1
    while n < nproc:
        sizes.append(n)
        n *= 2
    return sizes + [nproc]
