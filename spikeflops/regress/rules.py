"""The gate's configuration: for each metric, its direction, noise model and threshold (gate.toml)."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from importlib import resources

try:
    import tomllib
except ModuleNotFoundError:      # Python 3.10
    import tomli as tomllib

from workloads.errors import SpikeflopsError

DIRECTIONS = ("lower", "higher", "equal", "none")
NOISE_MODELS = ("timing", "exact", "seeds", "median")


@dataclass(frozen=True)
class Rule:
    name: str
    match: tuple[str, ...]
    direction: str
    noise: str
    threshold: float
    floor: float = 0.0          # both values below it: too small to judge (an idle kernel's timer)
    portable: bool = False      # comparable between different machines (FLOP counts); else judged on one machine only


@dataclass(frozen=True)
class GateConfig:
    rules: tuple[Rule, ...]
    alpha: float
    min_samples: int
    source: str
    contended_share: float = 0.8

    def rule_for(self, metric: str) -> Rule | None:
        for rule in self.rules:
            if any(fnmatch.fnmatchcase(metric, pattern) for pattern in rule.match):
                return rule
        return None


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
    settings = data.get("settings", {})
    entries = data.get("metric")
    if not isinstance(entries, list) or not entries:
        raise SpikeflopsError(f"{path}: needs at least one [[metric]] table")
    rules = tuple(_rule(path, i, e) for i, e in enumerate(entries))
    alpha, min_samples = settings.get("alpha", 0.05), settings.get("min_samples", 3)
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise SpikeflopsError(f"{path}: settings.alpha must be between 0 and 1, not {alpha!r}")
    if not (isinstance(min_samples, int) and min_samples >= 2):
        raise SpikeflopsError(f"{path}: settings.min_samples must be an integer >= 2, not {min_samples!r}")
    contended = settings.get("contended_share", 0.8)
    if isinstance(contended, bool) or not (isinstance(contended, (int, float)) and 0 < contended <= 1):
        raise SpikeflopsError(f"{path}: settings.contended_share must be in (0, 1], not {contended!r}")
    return GateConfig(rules, float(alpha), min_samples, path, float(contended))


def _rule(path: str, index: int, entry) -> Rule:
    where = f"{path}: [[metric]] #{index + 1}"
    if not isinstance(entry, dict):
        raise SpikeflopsError(f"{where} is not a table")
    unknown = set(entry) - {"name", "match", "direction", "noise", "threshold", "floor", "portable"}
    if unknown:
        raise SpikeflopsError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    match = entry.get("match")
    if isinstance(match, str):
        match = [match]
    if not (isinstance(match, list) and match and all(isinstance(m, str) for m in match)):
        raise SpikeflopsError(f"{where}: 'match' must be a pattern or a list of patterns")
    direction, noise = entry.get("direction"), entry.get("noise", "exact")
    if direction not in DIRECTIONS:
        raise SpikeflopsError(f"{where}: direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    if noise not in NOISE_MODELS:
        raise SpikeflopsError(f"{where}: noise must be one of {', '.join(NOISE_MODELS)}, not {noise!r}")
    threshold = entry.get("threshold", 0.0)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold < 0:
        raise SpikeflopsError(f"{where}: threshold must be a number >= 0, not {threshold!r}")
    floor = entry.get("floor", 0.0)
    if isinstance(floor, bool) or not isinstance(floor, (int, float)) or floor < 0:
        raise SpikeflopsError(f"{where}: floor must be a number >= 0, not {floor!r}")
    portable = entry.get("portable", False)
    if not isinstance(portable, bool):
        raise SpikeflopsError(f"{where}: portable must be true or false, not {portable!r}")
    return Rule(str(entry.get("name", match[0])), tuple(match), direction, noise, float(threshold), float(floor),
                portable)
