"""The SuperSpike case: one measurement setting, validated, importable without torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from ..errors import SpikeflopsError
from .params import NetworkSize, get_size

BACKENDS = ("torch", "genn")


@dataclass(frozen=True)
class SuperSpikeCase:
    """One SuperSpike measurement setting. Frozen: a case is a key of results in every harness."""

    backend: str = "torch"              # "torch" (the PyTorch reference) or "genn" (PyGeNN)
    device: str = "cpu"                 # "cpu" or "cuda" (GeNN: single_threaded_cpu or cuda)
    size: str = "ci"                    # a preset of params.SIZES
    seed: int = 0                       # input spikes and initial weights
    trials: int = 6                     # trials of a training run (convergence); timing ignores it
    compile: bool = False               # torch.compile the PyTorch step
    cuda_graph: bool = False            # torch: steps in chunks, each one CUDA graph replay (CPU: chunks run eagerly)
    kernel_profiling: bool = False      # GeNN kernel timers / PyTorch phase timers (they cost time)
    target_file: str | None = None      # a .ras target; None: the built-in picture

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise SpikeflopsError(f"unknown backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if self.device.split(":")[0] not in ("cpu", "cuda", "auto"):
            raise SpikeflopsError(f"unknown device {self.device!r}: use cpu, cuda or auto")
        get_size(self.size)
        if isinstance(self.trials, bool) or not isinstance(self.trials, int) or self.trials < 1:
            raise SpikeflopsError(f"number of trials must be a whole number >= 1, got {self.trials!r}")
        if self.compile and self.backend != "torch":
            raise SpikeflopsError("--compile applies to the torch backend only")
        if self.cuda_graph and self.backend != "torch":
            raise SpikeflopsError("--cuda-graph applies to the torch backend only (GeNN launches its own kernels)")

    @property
    def network(self) -> NetworkSize:
        return get_size(self.size)

    def with_(self, **changes) -> "SuperSpikeCase":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    def label(self) -> str:
        extra = ((" compiled" if self.compile else "") + (" cuda-graph" if self.cuda_graph else "")
                 + (" profiled" if self.kernel_profiling else ""))
        return f"{self.backend} {self.size} {self.device} seed {self.seed}{extra}"
