"""Which device runs the work, how fast it can possibly go, and the machine's facts.

Peak FLOP/s come from vendor datasheets (dense tensor-core rates, no sparsity).
A GPU is matched by its exact reported name, never by substring: "NVIDIA L4"
must not pick up the "NVIDIA L40S" entry. An unknown GPU, and every CPU, gets
no datasheet peak: MFU is then quoted against a measured matmul peak only.
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass

import torch

from .errors import SpikeflopsError

TERA = 1e12


@dataclass(frozen=True)
class PeakSpec:
    """Dense peak FLOP/s of one GPU model, per dtype, and where the numbers come from."""

    key: str
    names: tuple[str, ...]           # exact names torch.cuda.get_device_name() reports
    bf16: float | None               # FLOP/s; None where the chip has no such unit
    fp16: float | None
    tf32: float | None
    fp32: float                      # non-tensor-core FP32
    source: str


def _spec(key, names, bf16, fp16, tf32, fp32, source):
    scale = lambda v: None if v is None else v * TERA  # noqa: E731 - table readability
    return PeakSpec(key, tuple(names), scale(bf16), scale(fp16), scale(tf32), fp32 * TERA, source)


# Datasheet figures halve the "with sparsity" tensor rates where only those are printed.
PEAK_TABLE: tuple[PeakSpec, ...] = (
    _spec("H100-SXM", ["NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM5 80GB"],
          989.4, 989.4, 494.7, 66.9, "NVIDIA H100 Tensor Core GPU datasheet (SXM5 column, dense)"),
    _spec("H100-PCIe", ["NVIDIA H100 PCIe"], 756, 756, 378, 51.2,
          "NVIDIA H100 Tensor Core GPU datasheet (PCIe column, dense)"),
    _spec("H100-NVL", ["NVIDIA H100 NVL"], 835, 835, 418, 60,
          "NVIDIA H100 Tensor Core GPU datasheet (NVL column, dense)"),
    _spec("H200", ["NVIDIA H200", "NVIDIA H200 141GB HBM3e"], 989, 989, 494.7, 67,
          "NVIDIA H200 Tensor Core GPU datasheet (SXM column, dense)"),
    # the PCIe card: up to 600 W against the SXM's 700 W, and lower clocks (1,671 TFLOP/s bf16 with sparsity)
    _spec("H200-NVL", ["NVIDIA H200 NVL"], 835.5, 835.5, 417.5, 60,
          "NVIDIA H200 Tensor Core GPU datasheet (NVL column, dense)"),
    _spec("A100", ["NVIDIA A100-SXM4-40GB", "NVIDIA A100-SXM4-80GB", "NVIDIA A100-PCIE-40GB",
                   "NVIDIA A100 80GB PCIe", "NVIDIA A100-SXM-80GB"],
          312, 312, 156, 19.5, "NVIDIA A100 Tensor Core GPU datasheet (dense)"),
    _spec("L40S", ["NVIDIA L40S"], 362, 362, 183, 91.6, "NVIDIA L40S GPU datasheet (dense)"),
    _spec("L4", ["NVIDIA L4"], 121, 121, 60, 30.3, "NVIDIA L4 Tensor Core GPU datasheet (dense)"),
    _spec("A10", ["NVIDIA A10"], 125, 125, 62.5, 31.2, "NVIDIA A10 Tensor Core GPU datasheet (dense)"),
    _spec("T4", ["Tesla T4", "NVIDIA T4"], None, 65, None, 8.1,
          "NVIDIA T4 Tensor Core GPU datasheet (fp16 only: no bf16, no tf32)"),
    _spec("RTX-4090", ["NVIDIA GeForce RTX 4090"], 165.2, 165.2, 82.6, 82.6,
          "NVIDIA Ada GPU architecture whitepaper (RTX 4090, dense, fp32 accumulate)"),
    _spec("RTX-3090", ["NVIDIA GeForce RTX 3090"], 71, 71, 35.6, 35.6,
          "NVIDIA Ampere GA102 GPU architecture whitepaper (RTX 3090, dense)"),
    _spec("RTX-3080", ["NVIDIA GeForce RTX 3080"], 59.5, 59.5, 29.8, 29.8,
          "NVIDIA Ampere GA102 GPU architecture whitepaper (RTX 3080, dense)"),
    _spec("B200", ["NVIDIA B200"], 2250, 2250, 1100, 75, "NVIDIA DGX B200 / HGX B200 datasheet (per GPU, dense)"),
    _spec("MI300X", ["AMD Instinct MI300X"], 1307, 1307, 654, 163, "AMD Instinct MI300X datasheet (dense)"),
)

_DTYPE_FIELD = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}


def _normalise(name: str) -> str:
    return " ".join(name.split()).casefold()


_BY_NAME = {_normalise(n): spec for spec in PEAK_TABLE for n in (*spec.names, spec.key)}


def lookup_gpu(name: str) -> PeakSpec | None:
    """The table entry whose reported name (or key) equals ``name``, else None."""
    return _BY_NAME.get(_normalise(name))


def require_gpu(name: str) -> PeakSpec:
    """Like :func:`lookup_gpu`, but an unknown name is the user's error."""
    spec = lookup_gpu(name)
    if spec is None:
        known = ", ".join(s.key for s in PEAK_TABLE)
        raise SpikeflopsError(f"unknown GPU {name!r}: known models are {known}")
    return spec


@dataclass(frozen=True)
class Peak:
    flops_per_s: float
    source: str
    kind: str = "datasheet"          # "datasheet" (vendor's dense rate) or "measured" (a matmul on this device)


def datasheet_peak(spec: PeakSpec, dtype: torch.dtype, allow_tf32: bool = False) -> Peak | None:
    """Dense peak for ``dtype``; fp32 uses the TF32 tensor rate only when TF32 is enabled."""
    field = _DTYPE_FIELD.get(dtype)
    if field is None:
        return None
    if field == "fp32" and allow_tf32 and spec.tf32 is not None:
        return Peak(spec.tf32, spec.source + " [tf32]")
    value = getattr(spec, field)
    if value is None:
        return None
    return Peak(value, f"{spec.source} [{field}]")


def resolve_device(requested: str | None = None) -> torch.device:
    """``cuda`` when asked for or available, else ``cpu``; asking for a missing GPU is an error."""
    if requested in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise SpikeflopsError(f"device {requested!r} requested but torch sees no CUDA device")
    if requested.split(":")[0] not in ("cpu", "cuda"):
        raise SpikeflopsError(f"unknown device {requested!r}: use cpu, cuda or auto")
    return torch.device(requested)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model()


def peak_for(device: torch.device, dtype: torch.dtype, gpu_override: str | None = None) -> Peak | None:
    """Datasheet peak of the device in use (or of ``gpu_override``); None on a CPU or unknown GPU."""
    if gpu_override:
        return datasheet_peak(require_gpu(gpu_override), dtype, torch.backends.cuda.matmul.allow_tf32)
    if device.type != "cuda":
        return None
    spec = lookup_gpu(device_name(device))
    if spec is not None:
        doubt = power_doubt(spec, gpu_power_limit_watts(device))
        if doubt:
            print(f"spikeflops: {doubt}; MFU is quoted against the measured matmul peak only", file=sys.stderr)
            return None
    return None if spec is None else datasheet_peak(spec, dtype, torch.backends.cuda.matmul.allow_tf32)


# The board power an SXM part ships with: a card of the same name with a lower limit is another variant
# (a PCIe/NVL board, or one capped by its host), whose datasheet column is not the SXM's.
SXM_POWER_WATTS = {"H100-SXM": 700.0, "H200": 700.0}


def power_doubt(spec: PeakSpec, limit_watts: float | None) -> str | None:
    """Why the SXM datasheet row may not be this card's (None: it is, or nothing says otherwise)."""
    expected = SXM_POWER_WATTS.get(spec.key)
    if expected is None or limit_watts is None or limit_watts >= 0.95 * expected:
        return None
    return (f"{spec.names[0]} reports a {limit_watts:.0f} W power limit, below the SXM part's {expected:.0f} W: "
            f"another variant (PCIe/NVL, or a capped board), not the {spec.key} datasheet row")


def gpu_power_limit_watts(device: torch.device) -> float | None:
    """The board's default power limit from nvidia-smi, or None where it cannot be read."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    index = device.index if device.index is not None else torch.cuda.current_device()
    try:
        out = subprocess.run([smi, f"--id={index}", "--query-gpu=power.default_limit", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=20, check=True).stdout.strip()
        return float(out.splitlines()[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


MATMUL_PEAK_SIZES = {"cuda": (4096, 8192), "cpu": (256, 512, 1024)}


def measure_matmul_peak(device: torch.device, dtype: torch.dtype, sizes: tuple[int, ...] | None = None,
                        repeats: int = 10) -> Peak:
    """Best achieved FLOP/s over square n^3 matmuls of a few sizes and both operand layouts, in this
    process's threading.

    The only honest peak on CPUs and unknown GPUs. One size or layout can sit in a slow spot
    of the library: on a CPU without native bf16, ``a @ b`` in bf16 ran at 1.0-1.4 GFLOP/s
    while ``a @ b.T`` (the layout ``nn.Linear`` and autocast's linear use) ran at 17-21. So
    the ceiling is the best over sizes and over both layouts, each the fastest of its repeats.
    """
    from .timing import measure  # local: timing imports nothing from here, keep it that way

    device = torch.device(device)
    sizes = sizes or MATMUL_PEAK_SIZES["cuda" if device.type == "cuda" else "cpu"]
    best, best_n, best_layout = 0.0, sizes[0], "a @ b"
    gen = torch.Generator(device=device).manual_seed(0)
    for n in sizes:
        a = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
        b = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
        for layout, right in (("a @ b", b), ("a @ b.T", b.t())):
            stats = measure(lambda: torch.mm(a, right), device=device, warmup=2, repeats=repeats)
            rate = 2.0 * n**3 / stats.minimum
            if rate > best:
                best, best_n, best_layout = rate, n, layout
    return Peak(best, f"measured: best {str(dtype).replace('torch.', '')} square matmul over n in "
                      f"{', '.join(map(str, sizes))} and layouts a @ b, a @ b.T (n = {best_n}, {best_layout}, "
                      f"fastest of {repeats}), {torch.get_num_threads()} threads", kind="measured")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _nvidia_driver() -> str | None:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip().splitlines()[0] if out.strip() else None


def _package_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def machine_facts() -> dict:
    """Everything needed to say which machine and software produced a number."""
    facts = {
        "hostname": platform.node(),
        "os": platform.platform(),
        "arch": platform.machine(),          # what asv and pytest-benchmark record as the machine's arch
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_bytes": _total_memory_bytes(),
        "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
        "thop": _package_version("thop"),
        "numpy": _package_version("numpy"),
        "pygenn": _package_version("pygenn"),
        "gpu": None,
        "gpu_memory_bytes": None,
        "gpu_count": 0,
        "driver": None,
    }
    if torch.cuda.is_available():
        index = _facts_device_index()
        props = torch.cuda.get_device_properties(index)
        facts.update(gpu=props.name, gpu_memory_bytes=props.total_memory,
                     gpu_count=torch.cuda.device_count(), driver=_nvidia_driver(),
                     gpu_capability=f"{props.major}.{props.minor}", gpu_index=index)
    return facts


def _facts_device_index() -> int:
    """The GPU the run uses: SPIKEFLOPS_DEVICE (cuda:N) if set, else torch's current device."""
    requested = os.environ.get("SPIKEFLOPS_DEVICE", "")
    if requested.startswith("cuda:") and requested[5:].isdigit():
        return int(requested[5:])
    return torch.cuda.current_device()


def _total_memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def machine_name() -> str:
    """A short, file-name-safe machine label that tells hardware apart (asv records no GPU).

    Host name plus the GPU model, or the CPU model and core count on a CPU-only machine: two
    2-core runners of different CPU models must never share a results folder.
    """
    facts = machine_facts()
    base = os.environ.get("SPIKEFLOPS_MACHINE") or platform.node() or "machine"
    if facts["gpu"]:
        accel = facts["gpu"]
    else:
        accel = f"{_short_cpu_name(facts['cpu'])}-x{facts['cpu_count']}"
    raw = f"{base}-{accel}"
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in raw).strip("-").lower()


def _short_cpu_name(model: str) -> str:
    """'Intel(R) Xeon(R) CPU @ 2.80GHz' -> 'intel-xeon-2.80ghz'; 'AMD EPYC 7B13 64-Core Processor' -> 'amd-epyc-7b13'."""
    words = []
    for word in model.replace("(R)", " ").replace("(TM)", " ").replace("@", " ").split():
        if word.lower() in ("cpu", "processor") or word.lower().endswith("-core"):
            continue
        words.append(word)
    return "-".join(words)[:40] or "cpu"


def as_dict(peak: Peak | None) -> dict | None:
    return None if peak is None else asdict(peak)


if __name__ == "__main__":  # pragma: no cover - debugging aid
    import json

    json.dump(machine_facts(), sys.stdout, indent=2)
