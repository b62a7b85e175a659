"""The gate's rules: each metric's meaning from its declaration (``workloads.registry``), joined with
the threshold (and floor) that ``gate.toml`` gives its kind."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from importlib import resources

try:
    import tomllib
except ModuleNotFoundError:      # Python 3.10
    import tomli as tomllib

from workloads.errors import SpikeflopsError
from workloads.metrics import NOISE_MODELS  # noqa: F401 - re-exported: the gate command checks --noise

THRESHOLD_KEYS = ("threshold", "floor")


@dataclass(frozen=True)
class Rule:
    name: str                   # the metric's kind ("time", "FLOP count")
    match: tuple[str, ...]
    direction: str
    noise: str
    threshold: float
    floor: float = 0.0          # both values below it: too small to judge (an idle kernel's timer)
    portable: bool = False      # comparable between different machines (FLOP counts); else judged on one machine only


@dataclass(frozen=True)
class GateConfig:
    thresholds: dict            # kind -> (threshold, floor)
    alpha: float
    min_samples: int
    source: str
    contended_share: float = 0.8
    contended_floor: float = 0.5     # a CPU share below this on either side: contended, whatever the other got
    seed_change: float = 0.02        # a consistent per-seed change must exceed this to count
    _rules: dict = field(default_factory=dict, compare=False, repr=False)

    def rule_for(self, metric: str) -> Rule | None:
        """The rule of ``<Family>.<metric>``; None when no registered workload declares that metric."""
        if metric not in self._rules:
            from workloads.registry import metric as declared

            m = declared(metric)
            if m is None:
                self._rules[metric] = None
            else:
                threshold, floor = self.thresholds.get(m.kind, (0.0, 0.0))
                self._rules[metric] = Rule(m.kind, (metric,), m.direction, m.noise, threshold, floor, m.portable)
        return self._rules[metric]


def default_config_path() -> str:
    return str(resources.files(__package__) / "gate.toml")


def load_config(path: str | os.PathLike | None = None) -> GateConfig:
    path = str(path or default_config_path())
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise SpikeflopsError(f"{path}: no such gate configuration file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise SpikeflopsError(f"{path}: cannot read this gate configuration file ({type(exc).__name__})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpikeflopsError(f"{path}: not valid TOML ({exc})") from None
    except RecursionError:
        raise SpikeflopsError(f"{path}: nested too deeply to be a gate configuration") from None
    if "metric" in data:
        raise SpikeflopsError(f"{path}: [[metric]] tables are the old format: a metric's direction and noise model "
                              "are declared with the metric now; give thresholds per kind as [threshold.\"KIND\"]")
    unknown = set(data) - {"settings", "threshold"}
    if unknown:
        raise SpikeflopsError(f"{path}: unknown table [{sorted(unknown)[0]}] "
                              "(expected [settings] and [threshold.KIND])")
    settings = data.get("settings", {})
    entries = data.get("threshold")
    if not isinstance(entries, dict) or not entries:
        raise SpikeflopsError(f"{path}: needs at least one [threshold.\"KIND\"] table")
    thresholds = {kind: _threshold(path, kind, e) for kind, e in entries.items()}
    _require_every_kind(path, thresholds)
    alpha, min_samples = settings.get("alpha", 0.05), settings.get("min_samples", 3)
    if isinstance(alpha, bool) or not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise SpikeflopsError(f"{path}: settings.alpha must be between 0 and 1, not {alpha!r}")
    if isinstance(min_samples, bool) or not (isinstance(min_samples, int) and min_samples >= 2):
        raise SpikeflopsError(f"{path}: settings.min_samples must be an integer >= 2, not {min_samples!r}")
    contended = settings.get("contended_share", 0.8)
    if isinstance(contended, bool) or not (isinstance(contended, (int, float)) and 0 < contended <= 1):
        raise SpikeflopsError(f"{path}: settings.contended_share must be in (0, 1], not {contended!r}")
    floor = settings.get("contended_floor", 0.5)
    if isinstance(floor, bool) or not (isinstance(floor, (int, float)) and 0 <= floor <= 1):
        raise SpikeflopsError(f"{path}: settings.contended_floor must be in [0, 1], not {floor!r}")
    seed_change = settings.get("seed_change", 0.02)
    if isinstance(seed_change, bool) or not (isinstance(seed_change, (int, float)) and 0 <= seed_change < 1):
        raise SpikeflopsError(f"{path}: settings.seed_change must be in [0, 1), not {seed_change!r}")
    return GateConfig(thresholds, float(alpha), min_samples, path, float(contended), float(floor),
                      float(seed_change))


def _threshold(path: str, kind: str, entry) -> tuple[float, float]:
    where = f"{path}: [threshold.{kind!r}]"
    if not isinstance(entry, dict):
        raise SpikeflopsError(f"{where} is not a table")
    unknown = set(entry) - set(THRESHOLD_KEYS)
    if unknown:
        key = sorted(unknown)[0]
        why = (" (declared with each metric in its workload's table, not here)"
               if key in ("direction", "noise", "portable", "match") else "")
        raise SpikeflopsError(f"{where}: unknown key {key!r}{why}")
    out = []
    for key in THRESHOLD_KEYS:
        value = entry.get(key, 0.0)
        # nan compares false with everything and inf passes any growth: both would judge every change "ok"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise SpikeflopsError(f"{where}: {key} must be a finite number >= 0, not {value!r}")
        out.append(float(value))
    return out[0], out[1]


def _require_every_kind(path: str, thresholds: dict) -> None:
    """A judged metric whose kind has no threshold would be judged at 0 by accident: refuse instead."""
    from workloads.registry import all_metrics

    for name, m in all_metrics():
        if m.direction != "none" and m.kind not in thresholds:
            raise SpikeflopsError(f"{path}: no [threshold.{m.kind!r}] for metric {name} (kind {m.kind!r})")
