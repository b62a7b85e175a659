"""Target spike rasters: the `.ras` file format, a built-in target drawn in code,
and the spike-source-array rule that turns spike times into per-step spikes.

`.ras`: one spike per line, ``<time in seconds> <neuron id, 1-based>``,
whitespace separated, no header, any order.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from ..errors import SpikeflopsError
from .params import TIMESTEP_MS

PIXEL_MS = 10.0            # one picture column per 10 ms, as in the paper
JITTER_SD_MS = 2.0         # spike-time jitter inside a column


@dataclass(frozen=True)
class SpikeTrains:
    """Spikes grouped by neuron: ``times_ms[starts[n]:ends[n]]`` are neuron n's, sorted."""

    times_ms: np.ndarray   # float64, sorted by (neuron, time)
    starts: np.ndarray     # int64 (num_neurons,)
    ends: np.ndarray       # int64 (num_neurons,)

    @property
    def num_neurons(self) -> int:
        return len(self.starts)

    @property
    def num_spikes(self) -> int:
        return int(self.ends[-1]) if len(self.ends) else 0

    @classmethod
    def from_spikes(cls, times_ms, neuron_ids, num_neurons: int) -> "SpikeTrains":
        times_ms, neuron_ids = np.asarray(times_ms, float), np.asarray(neuron_ids, np.int64)
        order = np.lexsort((times_ms, neuron_ids))
        ends = np.cumsum(np.bincount(neuron_ids, minlength=num_neurons))
        starts = np.concatenate(([0], ends[:-1]))
        return cls(times_ms[order], starts.astype(np.int64), ends.astype(np.int64))

    def neuron_ids(self) -> np.ndarray:
        return np.repeat(np.arange(self.num_neurons), self.ends - self.starts)


def read_ras(path: str | os.PathLike, num_neurons: int, trial_ms: float) -> SpikeTrains:
    """Read and validate a `.ras` file; any problem is one line naming the file and line."""
    times, ids = [], []
    for where, t_s, neuron, text in _ras_lines(path):
        if t_s * 1000.0 >= trial_ms:
            raise SpikeflopsError(f"{where}: spike time {text[0]} s is past the trial ({trial_ms / 1000:g} s)")
        if not 1 <= neuron <= num_neurons:
            raise SpikeflopsError(f"{where}: neuron id {neuron} outside 1..{num_neurons}")
        times.append(t_s * 1000.0)
        ids.append(neuron - 1)
    return SpikeTrains.from_spikes(times, ids, num_neurons)


def ras_extent(path: str | os.PathLike) -> tuple[int, float]:
    """(highest neuron id, latest spike time in seconds) of a `.ras` file: which network it was made for."""
    top, last = 0, 0.0
    for where, t_s, neuron, _ in _ras_lines(path):
        if neuron < 1:
            raise SpikeflopsError(f"{where}: neuron id {neuron} is not 1 or more")
        top, last = max(top, neuron), max(last, t_s)
    return top, last


def _ras_lines(path: str | os.PathLike):
    """(where, time in s, neuron id, the two fields) per spike; format errors are one line naming the line."""
    count = 0
    try:
        with open(path) as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{lineno}"
                text = line.split()
                if len(text) != 2:
                    raise SpikeflopsError(f"{where}: expected '<time in s> <neuron id>', got {line.strip()!r}")
                try:
                    t_s, neuron = float(text[0]), int(text[1])
                except ValueError:
                    raise SpikeflopsError(f"{where}: not a number pair: {line.strip()!r}") from None
                if not math.isfinite(t_s) or t_s < 0:
                    raise SpikeflopsError(f"{where}: spike time {text[0]} s is negative or not finite")
                count += 1
                yield where, t_s, neuron, text
    except FileNotFoundError:
        raise SpikeflopsError(f"{path}: no such target file") from None
    except (UnicodeDecodeError, IsADirectoryError, PermissionError) as exc:
        raise SpikeflopsError(f"{path}: cannot read target file ({exc.__class__.__name__})") from None
    if not count:
        raise SpikeflopsError(f"{path}: target file holds no spikes")


def write_ras(path: str | os.PathLike, trains: SpikeTrains) -> None:
    with open(path, "w") as f:
        for t_ms, n in zip(trains.times_ms, trains.neuron_ids()):
            f.write(f"{t_ms / 1000.0:.6f} {n + 1}\n")


def default_picture(num_rows: int, num_columns: int) -> np.ndarray:
    """A domed building drawn in code (a nod to the paper's Radcliffe Camera): intensities in [0, 1].

    Row 0 is the bottom (neuron 0), column 0 the start of the trial.
    """
    y = (np.arange(num_rows)[:, None] + 0.5) / num_rows
    x = (np.arange(num_columns)[None, :] + 0.5) / num_columns
    img = np.zeros((num_rows, num_columns))
    img[np.broadcast_to(y < 0.08, img.shape)] = 0.6                                     # ground
    drum = (abs(x - 0.5) < 0.25) & (y >= 0.08) & (y < 0.5)
    columns = (np.floor((x - 0.25) / 0.0625) % 2 == 0)                                  # pillars
    img[drum] = np.broadcast_to(np.where(columns, 0.9, 0.3), img.shape)[drum]
    dome = (((x - 0.5) / 0.22) ** 2 + ((y - 0.5) / 0.3) ** 2 <= 1.0) & (y >= 0.5)
    img[dome] = 0.8
    lantern = (abs(x - 0.5) < 0.03) & (y >= 0.78) & (y < 0.92)
    img[lantern] = 1.0
    return img


def picture_to_spikes(picture: np.ndarray, rng: np.random.Generator) -> SpikeTrains:
    """One spike per pixel with probability equal to its intensity, near the column's centre."""
    rows, cols = picture.shape
    fire = rng.random(picture.shape) < picture
    neuron, column = np.nonzero(fire)
    times = (column + 0.5) * PIXEL_MS + rng.normal(0.0, JITTER_SD_MS, size=len(column))
    times = np.clip(times, column * PIXEL_MS, (column + 1) * PIXEL_MS - 1e-3)
    return SpikeTrains.from_spikes(times, neuron, rows)


def default_target(num_output: int, trial_ms: float, seed: int = 0) -> SpikeTrains:
    columns = int(trial_ms // PIXEL_MS)
    return picture_to_spikes(default_picture(num_output, columns), np.random.default_rng([seed, 7]))


def spike_source_raster(trains: SpikeTrains, num_steps: int, dt_ms: float = TIMESTEP_MS) -> np.ndarray:
    """Per-step spikes (num_steps, num_neurons) as GeNN's spike source array emits them.

    At step i (t = i * dt in float32) a neuron fires if its next pending spike time
    is <= t, and then moves on to the next one: at most one spike per step, and a
    spike due while the previous is being emitted is delayed by a step.
    """
    step_times = np.arange(num_steps, dtype=np.float32) * np.float32(dt_ms)
    raster = np.zeros((num_steps, trains.num_neurons), dtype=bool)
    due = np.searchsorted(step_times, trains.times_ms.astype(np.float32), side="left")
    for n in range(trains.num_neurons):
        last = -1
        for step in due[trains.starts[n]:trains.ends[n]]:
            step = max(int(step), last + 1)
            if step >= num_steps:
                break
            raster[step, n] = True
            last = step
    return raster
