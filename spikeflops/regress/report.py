"""`spikeflops report`: each metric's history over commits and its latest value on every machine,
as PNG plots and a markdown table."""

from __future__ import annotations

import math
import re
from pathlib import Path

from ..tables import format_table
from ..textsafe import middle_cut, printable
from ..results.history import Point
from .steps import steps_beyond, is_worse


def find_steps(tracked: dict, thresholds: dict) -> list[tuple]:
    """(label, machine, step, the step's first point, worse?) for every series whose level moved and stayed."""
    found = []
    for label in sorted(tracked):
        direction, per_machine = tracked[label]
        for machine, points in sorted(per_machine.items()):
            points = [p for p in points if not math.isnan(p.value)]
            for step in steps_beyond([p.value for p in points], thresholds.get(label) or 0.0):
                found.append((label, machine, step, points[step.index], is_worse(step, direction)))
    return found


def steps_lines(steps: list[tuple]) -> list[str]:
    return [f"step {'WORSE' if worse else 'better'}: {label} on {machine} at commit {point.commit}: "
            f"{_fmt(step.before, point.unit)} -> {_fmt(step.after, point.unit)} ({100 * step.change:+.1f}%, runs moved "
            f"{100 * step.spread:.1f}% within a level)" for label, machine, step, point, worse in steps]


def markdown(tracked: dict, by_metric: dict[str, list[str]], steps: list[tuple] = ()) -> str:
    machines = sorted({m for _, per_machine in tracked.values() for m in per_machine})
    hosts = {m.split(" (", 1)[0] for m in machines}      # one machine measured by two harnesses is one machine
    lines = ["# spikeflops report", "",
             f"{len(tracked)} tracked metrics on {len(hosts)} machine(s), {len(machines)} machine-harness "
             "series. Latest value per series; "
             "history columns: first and latest commit on that machine and the change between them.", ""]
    rows = []
    for label in sorted(tracked):
        direction, per_machine = tracked[label]
        for machine in machines:
            pts = per_machine.get(machine)
            if not pts:
                continue
            first, last = pts[0], pts[-1]
            change = ("-" if len(pts) < 2 or not first.value or math.isnan(first.value) or math.isnan(last.value)
                      else f"{100 * (last.value / first.value - 1):+.1f}%")
            rows.append([label, machine, _fmt(last.value), last.unit or "-", last.commit, str(len(pts)), first.commit,
                         change,
                         "lower" if direction == "lower" else "higher" if direction == "higher" else "equal"])
    lines.append(format_table(["metric", "machine", "latest", "unit", "commit", "runs", "first commit",
                               "change since first", "better"], rows, markdown=True))
    lines += ["", "## Steps in history", ""]
    if steps:
        lines.append(format_table(
            ["", "metric", "machine", "from commit", "before (median)", "after (median)", "change"],
            [["worse" if worse else "better", label, machine, point.commit, _fmt(step.before, point.unit),
              _fmt(step.after, point.unit),
              f"{100 * step.change:+.1f}%"] for label, machine, step, point, worse in steps], markdown=True))
    else:
        lines.append("No series moved to a new level and stayed there (a step needs two runs on each side).")
    lines += ["", "## Plots", ""]
    lines += [f"![{metric}](plots/{_slug(metric)}.png)" for metric in sorted(by_metric)]
    return "\n".join(lines) + "\n"


class MetricCanvas:
    """One figure that draws every plot of a report in turn. A fresh figure per plot built a new axes and
    its ~27 tick objects each time, a third of a report's CPU; between plots this clears exactly what a plot
    sets (`tests/test_report.py` holds each plot pixel-equal to one drawn on a fresh figure)."""

    SIZE_IN = (10, 4.8)

    def __init__(self):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        # matplotlib's constrained layout sets the margins (ticks, labels, title, the legend beside the axes)
        self.fig = Figure(figsize=self.SIZE_IN, layout="constrained")
        FigureCanvasAgg(self.fig)
        self.ax = self.fig.add_subplot()
        self._first_position = self.ax.get_position()     # the layout starts from here, as on a fresh figure
        self._used = False

    def draw(self, path: Path, metric: str, series: dict[str, dict[str, list[Point]]], direction: str) -> None:
        if self._used:
            self._clear()
        self._used = True
        _draw_metric(self.ax, metric, series, direction)
        self._save_png(path)

    def _save_png(self, path: Path) -> None:
        """RGB at zlib's fastest level: savefig writes RGBA at level 6, a quarter more bytes to filter and
        deflate for an alpha channel that is opaque everywhere (files come out ~10 % smaller, not larger)."""
        from PIL import Image

        self.fig.canvas.draw()
        rgba = Image.frombuffer("RGBA", self.fig.canvas.get_width_height(), self.fig.canvas.buffer_rgba())
        rgba.convert("RGB").save(path, format="png", compress_level=1)

    def _clear(self) -> None:
        from matplotlib.ticker import AutoLocator, ScalarFormatter

        ax = self.ax
        for line in list(ax.lines):
            line.remove()
        if ax.get_legend() is not None:
            ax.get_legend().remove()
        ax.set_prop_cycle(None)                   # colours start again from the first
        ax.yaxis.set_major_locator(AutoLocator())  # a count's integer locator stays with its plot
        ax.yaxis.set_major_formatter(ScalarFormatter())    # and so does an offset ("1e9")
        ax.set_ylabel("")
        ax.relim()                                # limits from no lines: the next plot's data alone
        ax.autoscale(True)
        ax.set_position(self._first_position)
        ax.set_in_layout(True)                    # set_position takes an axes out of the layout: back in


def _draw_metric(ax, metric: str, series: dict[str, dict[str, list[Point]]], direction: str) -> None:
    order, labels = run_ticks([p for per_m in series.values() for pts in per_m.values() for p in pts])
    never: list[int] = []                     # NaN: never reached (trials to target): the worst value, not a gap
    shared, varying = legend_labels(metric, sorted(series), sorted({m for pm in series.values() for m in pm}))
    n_series = sum(1 for per_m in series.values() for pts in per_m.values() if any(not math.isnan(p.value) for p in pts))
    ax.set_prop_cycle(color=distinct_colours(n_series))
    contended_x, contended_y, names = [], [], set()
    for label, per_machine in sorted(series.items()):
        params = varying[label]
        for machine, pts in sorted(per_machine.items()):
            xs = [order[p.commit, p.run_date] for p in pts if not math.isnan(p.value)]
            ys = [p.value for p in pts if not math.isnan(p.value)]
            never += [order[p.commit, p.run_date] for p in pts if math.isnan(p.value)]
            contended_x += [order[p.commit, p.run_date] for p in pts if p.contended and not math.isnan(p.value)]
            contended_y += [p.value for p in pts if p.contended and not math.isnan(p.value)]
            if ys:                            # dots, not discs, where hundreds of runs share the axis
                name = ", ".join(x for x in (params, machine if len(per_machine) > 1 or not shared.get("machine")
                                              else "") if x) or metric
                if name in names:             # a series whose parameters changed shape: told apart in full
                    name = f"{name} {label[len(metric):]}"
                names.add(name)
                ax.plot(xs, ys, marker="o" if len(ys) <= 60 else ".", markersize=5 if len(ys) <= 60 else 3,
                        label=middle_cut(printable(name), LEGEND_CHARS))   # an ESC drawn as \x1b, not a box
    if contended_x:                           # a busy machine's run: ringed, so it is not read as the code's doing
        ax.plot(contended_x, contended_y, linestyle="none", marker="o", markersize=11, markerfacecolor="none",
                markeredgecolor="black", label="contended run (CPU share < 0.5)")
    if not never:                             # "never reached" sits at the edge of the data's own range
        _honest_y_range(ax)
    if never:
        low, high = ax.get_ylim() if ax.lines else (0.0, 1.0)
        worst = high if direction != "higher" else low
        ax.plot(sorted(set(never)), [worst] * len(set(never)), linestyle="none", marker="X", color="red",
                markersize=9, label="never reached")
    shown = tick_positions(len(labels))
    ax.set_xticks(shown, [labels[i] for i in shown], rotation=45, ha="right", fontsize=7)
    ax.set_xlabel("commit (by date), one point per run" + ("" if len(shown) == len(labels)
                                                           else f"; {len(shown)} of {len(labels)} runs labelled"))
    from ..results.records import declared_metric

    declared = declared_metric(metric)
    # the declaration's unit first: harnesses record a unit differently (or not at all) for the same metric
    units = {declared.unit} if declared is not None else \
        {p.unit for per_m in series.values() for pts in per_m.values() for p in pts if p.unit}
    if len(units) == 1:
        unit = units.pop()
        ax.set_ylabel(unit)
        if unit in INTEGER_UNITS:              # a count has no tick at 4.8
            from matplotlib.ticker import MaxNLocator

            ax.yaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))   # a constant 5: one tick
    common = printable(", ".join(f"{k} {v}" for k, v in shared.items()))
    better = f" ({direction} is better)" if direction in ("lower", "higher") else ""
    ax.set_title(f"{metric}{better}\n{common}", fontsize=9)
    if len(ax.lines) <= 24:                   # beside the plot, never over the data
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def distinct_colours(n: int) -> list:
    """``n`` colours no two alike: matplotlib's tab10, then tab20, then as many hues as asked for."""
    from matplotlib import colormaps

    if n <= 10:
        return list(colormaps["tab10"].colors)
    if n <= 20:
        return list(colormaps["tab20"].colors)
    return [colormaps["hsv"](i / n) for i in range(n)]


MIN_RELATIVE_SPAN = 0.05      # a y axis spans at least 5 % of its values: a 0.2 % change is not drawn as a cliff


def _honest_y_range(ax) -> None:
    """No offset ("1e6" above the axis, ticks that all read alike) and a y range of at least
    MIN_RELATIVE_SPAN of the values, so the eye reads a change at its relative size."""
    import numpy as np

    ys = np.concatenate([np.asarray(line.get_ydata(), float) for line in ax.lines]) if ax.lines else np.array([])
    ys = ys[np.isfinite(ys)]
    from matplotlib.ticker import ScalarFormatter

    if isinstance(ax.yaxis.get_major_formatter(), ScalarFormatter):
        ax.yaxis.get_major_formatter().set_useOffset(False)
    if ys.size:
        low, high = float(ys.min()), float(ys.max())
        middle, least = (low + high) / 2, MIN_RELATIVE_SPAN * max(abs(low), abs(high))
        if high - low < least:
            ax.set_ylim(middle - least / 2, middle + least / 2)


def legend_labels(metric: str, labels: list[str], machines: list[str]) -> tuple[dict, dict]:
    """What all plotted series share (for the title: {"size": "gpt-nano", ...}) and, per series label, only the
    parameters that tell it from the others ("variant=book, mode=train"), named, not a raw tuple."""
    from workloads.registry import FAMILIES

    family = FAMILIES.get(metric.split(".", 1)[0])
    names = [p for p in (family.params if family else ()) if p != "seed"]
    values = {label: label[len(metric):].strip("()").split(", ") if "(" in label else [] for label in labels}
    width = max((len(v) for v in values.values()), default=0)
    names = names if len(names) == width else [f"param{i + 1}" for i in range(width)]
    shared = {}
    for i, name in enumerate(names):
        column = {v[i] for v in values.values() if len(v) > i}
        if len(column) == 1:
            shared[name] = column.pop()
    if len(machines) == 1:
        shared["machine"] = machines[0]
    varying = {label: ", ".join(f"{n}={v[i]}" for i, n in enumerate(names) if n not in shared and len(v) > i)
               for label, v in values.items()}
    return shared, varying


MAX_TICK_LABELS = 16
LEGEND_CHARS = 72           # a legend label's most characters: the data keeps over half the figure's width
INTEGER_UNITS = {"operators", "sequences", "trials", "parameters", "threads"}


def tick_positions(n: int, most: int = MAX_TICK_LABELS) -> list[int]:
    """At most ``most`` evenly spread positions of ``n`` runs, the first and the last among them: 300
    labelled ticks were a solid black band, and drawing them cost most of a report's time."""
    if n <= most:
        return list(range(n))
    step = (n - 1) / (most - 1)
    return sorted({round(i * step) for i in range(most)})


def run_ticks(points: list[Point]) -> tuple[dict, list[str]]:
    """x position per (commit, run) and tick labels: one tick per run, in commit order, so several runs of
    one commit (A/A runs) stand side by side instead of stacking on one tick."""
    runs = sorted({(p.date, p.commit, p.run_date) for p in points})
    total = {}
    for _, commit, _ in runs:
        total[commit] = total.get(commit, 0) + 1
    seen: dict[str, int] = {}
    labels = []
    for _, commit, _ in runs:
        seen[commit] = seen.get(commit, 0) + 1
        labels.append(commit if total[commit] == 1 else f"{commit} run {seen[commit]}")
    return {(c, r): i for i, (_, c, r) in enumerate(runs)}, labels


def _fmt(value: float, unit: str = "") -> str:
    if math.isnan(value):
        return "never"
    if unit == "seconds":
        return f"{value * 1e3:.4g} ms" if abs(value) < 1 else f"{value:.4g} s"
    return f"{value:.4g}" + (f" {unit}" if unit else "")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)
