"""PNG figures: rasters of recorded trials and the convergence curve; CSVs as GeNN's demo writes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from workloads.superspike.training import TrainingResult


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")   # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def plot_rasters(result: TrainingResult, path: str | Path, target=None) -> Path:
    """Input, hidden and output spikes of each recorded trial; ``target`` (SpikeTrains) is drawn under the
    output spikes, so how close the output came to it can be seen."""
    plt = _pyplot()
    trials = sorted(result.recorded_spikes)
    fig, axes = plt.subplots(3, max(len(trials), 1), sharex="col", sharey="row", squeeze=False,
                             figsize=(4 * max(len(trials), 1), 7))
    for col, trial in enumerate(trials):
        for row, pop in enumerate(("input", "hidden", "output")):
            t_ms, ids = result.recorded_spikes[trial][pop]
            if pop == "output" and target is not None:
                axes[row, col].scatter(target.times_ms / 1000.0, target.neuron_ids(), s=6, color="0.8",
                                       edgecolors="none", label="target")
            axes[row, col].scatter(np.asarray(t_ms) / 1000.0, ids, s=1, edgecolors="none",
                                   label="output" if pop == "output" else None)
            if pop == "output" and target is not None and col == 0:
                axes[row, col].legend(fontsize=7, loc="upper right", markerscale=3)
            axes[row, col].set_title(f"trial {trial}: {pop}" if row == 0 else pop, fontsize=9)
        axes[2, col].set_xlabel("time in trial [s]")
    for row in range(3):
        axes[row, 0].set_ylabel("neuron")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_convergence(result: TrainingResult, path: str | Path, target_file: str | None = None) -> Path:
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    trials = [r.trial for r in result.records]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(trials, [r.trial_error for r in result.records], label="per-trial error", lw=1)
    ax.plot(trials, [r.running_error for r in result.records], label="running error (GeNN demo's metric)", lw=1.5)
    # an error level, not the target raster: named as such
    ax.axhline(result.target_error, color="gray", ls="--", lw=0.8, label="error goal: half of trial 0's")
    ax.set_xlabel("trial")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))      # trials are whole: no tick at 2.5
    ax.set_ylabel("van Rossum error")
    ax.set_yscale("log")
    size = result.size.get("name", "?") if isinstance(result.size, dict) else result.size
    ax.set_title(f"SuperSpike {size}, {result.backend} on {result.device}, seed {result.seed}\n"
                 f"target: {target_file or 'built-in raster'}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def write_spike_csvs(result: TrainingResult, directory: str | Path) -> list[Path]:
    """``<pop>_spikes_<trial>.csv``: time [ms], neuron id, with the demo's header."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for trial, pops in sorted(result.recorded_spikes.items()):
        for pop, (t_ms, ids) in pops.items():
            path = directory / f"{pop}_spikes_{trial}.csv"
            np.savetxt(path, np.column_stack([t_ms, ids]), fmt=["%f", "%d"], delimiter=",",
                       header="Time [ms], Neuron ID")
            written.append(path)
    return written
