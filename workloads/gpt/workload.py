"""The GPT-2 workload contract: a case, one way to prepare it, and measurements that return typed records.

Everything that runs a GPT step (both harnesses, `spikeflops run`, the CLI, the
max-batch probes, the kernel breakdown) goes through :func:`prepare`, so a case
gives the same program everywhere. MFU is defined here once (:func:`utilisation`).
"""

from __future__ import annotations

import gc
import math
import time
from dataclasses import asdict, dataclass

import torch

from ..errors import SpikeflopsError
from ..hardware import Peak, as_dict, device_name
from ..memory import is_oom_error, release_memory
from ..timing import TimingStats, measure, synchronize
from .case import MODES, GPTCase  # noqa: F401 - re-exported: the contract names its case
from .fast import build_model
from .flops import analytic_flops, exact_flops, non_embedding_parameter_count, parameter_count, thop_flops
from .steps import check_initial_loss, make_forward, make_optimizer, make_train_step, random_tokens
from .utilisation import measured_peak, reference_peak, utilisation

class DoesNotFit(SpikeflopsError):
    """The case ran out of device memory (a max-batch probe's "no", a table case's failure)."""


class PreparedStep:
    """A ready-to-run step of a case. Calling it queues one step (not synchronised); the timer syncs.

    A context manager: leaving it frees the model, optimizer state and inputs before the next case.
    """

    def __init__(self, case: GPTCase, model, optimizer, inputs, targets, fn, first_loss: float | None,
                 first_step_seconds: float | None = None):
        self.case = case
        self.model, self.optimizer, self.inputs, self.targets = model, optimizer, inputs, targets
        self._fn = fn
        self.first_loss = first_loss
        self.first_step_seconds = first_step_seconds     # compilation, lazy allocation: a one-off cost

    def __call__(self):
        return self._fn()

    def run_synced(self):
        out = self._fn()
        synchronize(self.case.torch_device)
        return out

    def loss(self) -> float:
        """Run one more training step and return its loss (synchronises)."""
        if self.case.mode != "train":
            raise SpikeflopsError("a forward-only case has no loss")
        return float(self._fn().item())

    def close(self) -> None:
        self.model = self.optimizer = self.inputs = self.targets = self._fn = None
        release_memory(self.case.torch_device)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def prepare(case: GPTCase, warmup: int = 1) -> PreparedStep:
    """Build the model, tokens and optimizer of ``case``, run and check its first step, then warm up.

    The first step is also a correctness check: a training step's loss must be near ln(vocab),
    a forward pass's logits finite. Raises :class:`DoesNotFit` when the device runs out of memory.
    """
    cfg, device = case.config, case.torch_device
    vocab = cfg.vocab_size if case.pad_vocab else None          # a padded model's logits are cut back to it
    model = optimizer = inputs = targets = None
    try:
        model = build_model(case.model_config, case.variant, device=device, dtype=case.param_dtype,
                            compile=case.compile, seed=case.seed)
        inputs, targets = random_tokens(cfg.vocab_size, case.batch, cfg.context_length, device, seed=case.seed)
        first_start = time.perf_counter()
        if case.mode == "train":
            optimizer = make_optimizer(model)
            # the book's loss reads an fp32 copy of the logits; the fast variant lets cross_entropy read them
            fn = make_train_step(model, optimizer, inputs, targets, upcast_logits=case.variant == "book",
                                 vocab=vocab, autocast_dtype=case.autocast_dtype)
            first_loss = float(fn().item())          # compiles, allocates optimizer state
            check_initial_loss(first_loss, cfg.vocab_size)
        else:
            fn = make_forward(model, inputs, vocab=vocab, autocast_dtype=case.autocast_dtype)
            # a sum, not isfinite(logits).all(): the check must not double the memory a max-batch probe sees
            if not math.isfinite(float(fn().sum(dtype=torch.float32))):
                raise SpikeflopsError(f"{case.label()}: the forward pass produced non-finite logits")
            first_loss = None
        first_step_seconds = time.perf_counter() - first_start      # .item()/float() waited for the device
        for _ in range(warmup):
            fn()
        synchronize(device)
    except Exception as exc:  # noqa: BLE001 - an OOM becomes DoesNotFit; everything else propagates
        model = optimizer = inputs = targets = None
        if is_oom_error(exc):
            release_memory(device)
            raise DoesNotFit(f"{case.label()} does not fit in memory on {device_name(device)}") from None
        raise
    return PreparedStep(case, model, optimizer, inputs, targets, fn, first_loss, first_step_seconds)


# ---------------------------------------------------------------- records

@dataclass(frozen=True)
class StepRecord:
    """A timed step of a case: throughput and utilisation, with everything needed to reproduce them."""

    case: GPTCase
    seconds_per_step: TimingStats
    flops_per_step: float                    # analytic (PaLM), what MFU is computed on
    flops_per_step_exact: float              # FlopCounterMode's count of the same step
    peak: Peak | None                        # the reference peak (datasheet, else measured)
    measured_peak: Peak | None
    loss_first: float | None
    loss_last: float | None
    device_name: str = ""
    first_step_seconds: float | None = None  # the first step, checked, before any warm-up

    @property
    def first_step_overhead(self) -> float | None:
        """What the first step costs beyond a steady one: torch.compile's compilation, lazy allocations."""
        if self.first_step_seconds is None:
            return None
        return max(0.0, self.first_step_seconds - self.seconds_per_step.median)

    @property
    def tokens_per_s(self) -> float:
        return self.case.tokens_per_step / self.seconds_per_step.median

    @property
    def achieved_flops_per_s(self) -> float:
        return self.flops_per_step / self.seconds_per_step.median

    @property
    def mfu(self) -> float | None:
        return utilisation(self.achieved_flops_per_s, self.peak)

    @property
    def mfu_vs_measured_peak(self) -> float | None:
        return utilisation(self.achieved_flops_per_s, self.measured_peak)

    def per_step(self, metric: str) -> list[float]:
        """``metric`` computed from each timed step alone (the samples behind the median)."""
        value = getattr(self, metric)
        if value is None:
            return []
        median = self.seconds_per_step.median
        return [value * median / s for s in self.seconds_per_step.samples]

    def to_dict(self) -> dict:
        return {"case": self.case.to_dict(), "device_name": self.device_name,
                "seconds_per_step": self.seconds_per_step.to_dict(), "tokens_per_s": self.tokens_per_s,
                "flops_per_step_analytic": self.flops_per_step, "flops_per_step_exact": self.flops_per_step_exact,
                "achieved_flops_per_s": self.achieved_flops_per_s, "peak": as_dict(self.peak),
                "mfu": self.mfu, "measured_peak": as_dict(self.measured_peak),
                "mfu_vs_measured_peak": self.mfu_vs_measured_peak,
                "loss_first": self.loss_first, "loss_last": self.loss_last,
                "first_step_seconds": self.first_step_seconds, "first_step_overhead": self.first_step_overhead}


@dataclass(frozen=True)
class FlopRecord:
    """FLOPs of one forward pass and one training step of a size at a batch, three ways (deterministic)."""

    size: str
    batch: int
    seq_len: int
    parameters: int
    non_embedding_parameters: int
    forward_thop: float                      # the notebook's count: nn.Linear only
    forward_exact: float                     # FlopCounterMode: every matmul torch dispatches
    forward_analytic: float                  # PaLM: 2N + 4LHQT per token
    train_exact: float
    train_analytic: float                    # PaLM: 6N + 12LHQT per token

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class MemoryRecord:
    case: GPTCase
    peak_memory: int                         # bytes the caching allocator held at most during one step
    before_step: int                         # bytes allocated before it (weights, optimizer state, inputs)

    def to_dict(self) -> dict:
        return {"case": self.case.to_dict(), "peak_memory": self.peak_memory, "before_step": self.before_step}


@dataclass(frozen=True)
class BreakdownRecord:
    case: GPTCase
    seconds: dict[str, float]                # kind -> seconds per step
    steps: int

    def to_dict(self) -> dict:
        return {"case": self.case.to_dict(), "seconds_per_step": self.seconds,
                "steps": self.steps}


# ---------------------------------------------------------------- measurements

def measure_step(case: GPTCase, warmup: int = 2, repeats: int = 10, with_measured_peak: bool = True,
                 gpu_override: str | None = None) -> StepRecord:
    """Time ``repeats`` steps of ``case`` after warm-up; check that training lowers the loss."""
    if repeats < 1 or warmup < 0:
        raise SpikeflopsError("repeats must be >= 1 and warmup >= 0")
    # the peak first: it must not run while the model's memory is held
    measured = measured_peak(case.device, case.dtype) if with_measured_peak else None
    with prepare(case, warmup=warmup) as step:
        try:
            stats = measure(step, device=case.torch_device, warmup=0, repeats=repeats)
            loss_last = step.loss() if case.mode == "train" else None
        except Exception as exc:  # noqa: BLE001 - an OOM in the timed loop is a DoesNotFit too
            if is_oom_error(exc):
                raise DoesNotFit(f"{case.label()} does not fit in memory on {device_name(case.torch_device)}") \
                    from None
            raise
        first, first_seconds = step.first_loss, step.first_step_seconds
    if case.mode == "train" and not (math.isfinite(loss_last) and loss_last < first):
        raise SpikeflopsError(f"{case.label()}: loss did not fall over {warmup + repeats + 2} steps "
                              f"({first:.3f} -> {loss_last:.3f})")
    backward = case.mode == "train"
    cfg = case.model_config                  # the FLOPs of the model that ran (a padded head is wider)
    record = StepRecord(case=case, seconds_per_step=stats,
                        flops_per_step=analytic_flops(cfg, case.batch, cfg.context_length, backward=backward),
                        flops_per_step_exact=exact_flops(cfg, case.batch, cfg.context_length, backward=backward),
                        peak=reference_peak(case.torch_device, case.dtype, measured, gpu_override), measured_peak=measured,
                        loss_first=first, loss_last=loss_last, device_name=device_name(case.torch_device),
                        first_step_seconds=first_seconds)
    _check_utilisation(record)
    return record


# A step can beat a peak measured seconds earlier by timing noise, not by this much.
UTILISATION_CEILING = 1.10


def _check_utilisation(record: StepRecord) -> None:
    """A utilisation above 100 % is never a result: the peak it divides by was not this device's ceiling
    (a slow matmul path for the dtype, a wrong datasheet). Refuse it loudly rather than table it."""
    for name, peak in (("MFU", record.peak), ("MFU vs measured peak", record.measured_peak)):
        value = utilisation(record.achieved_flops_per_s, peak)
        if value is not None and value > UTILISATION_CEILING:
            raise SpikeflopsError(
                f"{record.case.label()}: {name} {100 * value:.1f}% is impossible: the step achieved "
                f"{record.achieved_flops_per_s / 1e9:.3g} GFLOP/s but the {peak.kind} {record.case.dtype} peak is "
                f"{peak.flops_per_s / 1e9:.3g} GFLOP/s ({peak.source}), so that peak is not this device's ceiling "
                f"for {record.case.dtype}")


@dataclass(frozen=True)
class OpCountRecord:
    """Operators one step dispatches and the tensor bytes it holds at most: costs a shared CPU runner can
    judge without timing noise."""

    case: GPTCase
    operators: int                           # aten operator calls in one step (forward, loss, backward, optimizer)
    distinct_operators: int
    bytes_allocated: int                     # bytes of the outputs those calls newly allocated
    peak_live_bytes: int                     # most tensor bytes alive at once during that steady step
    retained_live_bytes: int                 # tensor bytes still alive after it: what the next step inherits
    by_operator: dict[str, int]
    by_source: dict[str, int]                 # "op from path:function: line" -> calls (opcount.OpCounter)

    def to_dict(self) -> dict:
        return {"case": self.case.to_dict(), "operators": self.operators,
                "distinct_operators": self.distinct_operators, "bytes_allocated": self.bytes_allocated,
                "peak_live_bytes": self.peak_live_bytes, "retained_live_bytes": self.retained_live_bytes,
                "by_operator": dict(self.by_operator)}


def measure_op_count(case: GPTCase) -> OpCountRecord:
    """Count the aten operators one step of ``case`` dispatches, after warm-up (optimizer state exists),
    and the peak of live tensor bytes during that step.

    A fused kernel that replaces five ops, or a change that adds a copy per layer, moves this count
    exactly; run on a CPU, where autograd runs the backward on the calling thread, so the dispatch
    mode sees every op of the step. Live bytes are tracked from before the model is built, so what
    the steady step finds alive (parameters, optimizer state, anything an earlier step left behind)
    is in its peak.
    """
    from ..opcount import LiveTensorBytes, OpCounter

    if case.torch_device.type != "cpu":
        raise SpikeflopsError("operator counts are taken on a CPU (the count is the model's, not the device's)")
    with LiveTensorBytes() as live:
        with prepare(case, warmup=1) as step:
            live.reset_peak()
            with OpCounter() as counter:
                step()
            peak = live.peak
            gc.collect()                         # a reference cycle is not a retained tensor
            retained = live.live
    return OpCountRecord(case=case, operators=counter.operators, distinct_operators=len(counter.calls),
                         bytes_allocated=counter.bytes_allocated, peak_live_bytes=peak,
                         retained_live_bytes=retained,
                         by_operator=dict(sorted(counter.calls.items())), by_source=dict(counter.by_source))


def measure_flops(case: GPTCase) -> FlopRecord:
    """FLOPs of ``case``'s size at its batch and context (on meta tensors: nothing is allocated)."""
    cfg = case.config
    b, t = case.batch, cfg.context_length
    return FlopRecord(size=case.size, batch=b, seq_len=t, parameters=parameter_count(cfg),
                      non_embedding_parameters=non_embedding_parameter_count(cfg),
                      forward_thop=thop_flops(cfg, b, t), forward_exact=exact_flops(cfg, b, t),
                      forward_analytic=analytic_flops(cfg, b, t),
                      train_exact=exact_flops(cfg, b, t, backward=True),
                      train_analytic=analytic_flops(cfg, b, t, backward=True))


def measure_peak_memory(case: GPTCase) -> MemoryRecord:
    """Device memory one step of ``case`` needs at most (CUDA only: the CPU has no allocator statistics)."""
    if case.torch_device.type != "cuda":
        raise SpikeflopsError("peak memory is measured on CUDA devices only")
    device = case.torch_device
    with prepare(case, warmup=1) as step:
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        step.run_synced()
        peak = torch.cuda.max_memory_allocated(device)
    return MemoryRecord(case=case, peak_memory=int(peak), before_step=int(before))


def measure_breakdown(case: GPTCase, steps: int = 3) -> BreakdownRecord:
    """Seconds per step by kind of op (see breakdown.KINDS), from torch.profiler after a warm-up schedule."""
    from .breakdown import profile_kinds

    with prepare(case, warmup=1) as step:
        seconds = profile_kinds(step, case.torch_device, steps)
    return BreakdownRecord(case=case, seconds=seconds, steps=steps)
