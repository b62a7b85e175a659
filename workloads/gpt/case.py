"""The GPT case: one measurement setting, validated, importable without torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from ..errors import SpikeflopsError
from .config import GPTConfig, get_config

VARIANTS = ("book", "fast")
DTYPE_NAMES = ("float32", "bfloat16", "float16")
MODES = ("train", "forward")
PRECISIONS = ("pure", "autocast")
VOCAB_MULTIPLE = 64


@dataclass(frozen=True)
class GPTCase:
    """One GPT measurement setting. Frozen: a case is a key of results in every harness."""

    size: str                           # a preset of config.SIZES
    variant: str = "fast"               # "book" (the book's modules) or "fast" (fused qkv, SDPA, native norms)
    dtype: str = "float32"              # parameters and activations (pure, as the notebook's model.bfloat16())
    device: str = "cpu"                 # "cpu", "cuda" or "cuda:N"
    mode: str = "train"                 # "train": forward + loss + backward + AdamW; "forward": no-grad forward
    batch: int = 4                      # sequences per step
    compile: bool = False               # torch.compile the fast variant
    seed: int = 0                       # weights and tokens
    context_length: int | None = None   # None: the preset's
    precision: str = "pure"             # "pure": the model in dtype (the notebook's);
                                        # "autocast": fp32 weights, dtype compute
    pad_vocab: bool = False             # vocabulary padded to a multiple of 64 (another model: labelled)

    def __post_init__(self):
        get_config(self.size, self.context_length)            # unknown size / bad context: one line
        if self.variant not in VARIANTS:
            raise SpikeflopsError(f"unknown variant {self.variant!r}; choose one of {', '.join(VARIANTS)}")
        if self.dtype not in DTYPE_NAMES:
            raise SpikeflopsError(f"unknown dtype {self.dtype!r}; choose one of {', '.join(DTYPE_NAMES)}")
        if self.mode not in MODES:
            raise SpikeflopsError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.device.split(":")[0] not in ("cpu", "cuda"):
            raise SpikeflopsError(f"unknown device {self.device!r}: use cpu, cuda or cuda:N")
        if isinstance(self.batch, bool) or not isinstance(self.batch, int) or self.batch < 1:
            raise SpikeflopsError(f"batch must be a whole number >= 1, got {self.batch!r}")
        if self.compile and self.variant != "fast":
            raise SpikeflopsError("torch.compile is offered for the fast variant only")
        if self.precision not in PRECISIONS:
            raise SpikeflopsError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if self.precision == "autocast" and self.dtype == "float32":
            raise SpikeflopsError("autocast needs a lower-precision dtype (bfloat16 or float16) to compute in")

    @property
    def config(self) -> GPTConfig:
        return get_config(self.size, self.context_length)

    @property
    def model_config(self) -> GPTConfig:
        """The model that runs: the book's, or with its vocabulary padded up to a multiple of 64."""
        cfg = self.config
        if not self.pad_vocab:
            return cfg
        return replace(cfg, vocab_size=-(-cfg.vocab_size // VOCAB_MULTIPLE) * VOCAB_MULTIPLE)

    @property
    def param_dtype(self):
        """What the weights are stored in: fp32 master weights under autocast, else the case's dtype."""
        import torch

        return torch.float32 if self.precision == "autocast" else self.torch_dtype

    @property
    def autocast_dtype(self):
        return self.torch_dtype if self.precision == "autocast" else None

    @property
    def seq_len(self) -> int:
        return self.config.context_length

    @property
    def tokens_per_step(self) -> int:
        return self.batch * self.seq_len

    @property
    def torch_device(self):
        import torch

        return torch.device(self.device)

    @property
    def torch_dtype(self):
        from .steps import DTYPES

        return DTYPES[self.dtype]

    def with_(self, **changes) -> "GPTCase":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    def label(self) -> str:
        extra = (" compiled" if self.compile else "") + (" autocast" if self.precision == "autocast" else "") + (
            f" padded-vocab {self.model_config.vocab_size}" if self.pad_vocab else "")
        return f"{self.size} {self.variant} {self.mode} {self.dtype} b{self.batch} {self.device}{extra}"
