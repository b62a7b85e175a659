"""`spikeflops report`: history plots and the cross-machine table, from the committed results."""

from __future__ import annotations

import pytest

from gate_fixtures import RESULTS, cli, committed_asv_runs, copy_json


def report(*args):
    return cli("report", *args)


def test_report_draws_history_and_compares_machines(tmp_path):
    runs = committed_asv_runs()
    assert runs, "no committed asv CPU baseline"
    src = tmp_path / "results"
    (src / "asv").mkdir(parents=True)
    (src / "asv" / "benchmarks.json").write_text((RESULTS / "asv" / "benchmarks.json").read_text())
    for run in runs:
        copy_json(run, src / "asv" / run.parent.name / run.name)

    def later_commit(data):                       # a second point of history, one commit on
        data["commit_hash"] = "f" * 40
        data["date"] += 3_600_000
    copy_json(runs[-1], src / "asv" / runs[-1].parent.name / ("f" * 8 + "-later.json"), later_commit)

    def elsewhere(data):
        data["params"]["machine"] = "other-machine"
    copy_json(runs[-1], src / "asv" / "other-machine" / runs[-1].name, elsewhere)
    (src / "asv" / "other-machine" / "broken.json").write_text("{not json")

    out = tmp_path / "report"
    proc = report(src, "--out-dir", out, "--match", "GPT")
    assert proc.returncode == 0, proc.stderr
    assert "skipped" in proc.stderr and "broken.json" in proc.stderr      # named, not fatal
    md = (out / "report.md").read_text()
    assert "GPTThroughput.mfu(gpt-nano, fast, float32, cpu, train, 4, False)" in md
    assert "other-machine" in md and runs[0].parent.name in md
    pngs = sorted((out / "plots").glob("*.png"))
    assert pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert any("GPTThroughput.mfu" in p.name for p in pngs)


def test_report_without_results_is_one_line_exit_2(tmp_path):
    proc = report(tmp_path / "nothing-here")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "no such file or folder" in proc.stderr


def test_runs_of_one_commit_get_their_own_ticks_and_one_machine_counts_once():
    from spikeflops.results.history import Point
    from spikeflops.regress.report import markdown, run_ticks

    pts = [Point("vm", "aaaa", 1.0, 5.0, "pytest-benchmark", "s", run_date=10.0),
           Point("vm", "aaaa", 1.0, 6.0, "pytest-benchmark", "s", run_date=20.0),
           Point("vm", "bbbb", 2.0, 7.0, "pytest-benchmark", "s", run_date=30.0)]
    order, labels = run_ticks(pts)
    assert labels == ["aaaa run 1", "aaaa run 2", "bbbb"]
    assert sorted(order.values()) == [0, 1, 2]
    tracked = {"GPTStep.time_step(x)": ("lower", {"vm": pts, "vm (pytest-benchmark)": pts})}
    md = markdown(tracked, {"GPTStep.time_step": ["GPTStep.time_step(x)"]})
    assert "on 1 machine(s), 2 machine-harness series" in md
    header = next(line for line in md.splitlines() if line.startswith("|") and "metric" in line)
    cells = [c.strip() for c in header.strip("|").split("|")]
    row = next(line for line in md.splitlines() if line.startswith("| GPTStep"))
    assert "unit" in cells and [c.strip() for c in row.strip("|").split("|")][cells.index("unit")] == "s"


def test_step_detection_finds_a_lasting_move_and_ignores_one_wild_run():
    from spikeflops.regress.steps import steps_beyond, is_worse

    calm = [1.00, 1.02, 0.99, 1.01, 1.00, 1.02]
    assert steps_beyond(calm, 0.05) == []
    assert steps_beyond([1.0, 1.01, 0.99, 3.0, 1.0, 1.01], 0.05) == []             # one wild night
    assert steps_beyond([1.0, 1.01, 0.99, 1.0, 1.3], 0.05) == []                   # one run after: not yet a step
    (step,) = steps_beyond([1.0, 1.01, 0.99, 1.0, 1.25, 1.24, 1.26], 0.05)
    assert step.index == 4 and step.change == pytest.approx(0.25, abs=0.01)
    assert is_worse(step, "lower") and not is_worse(step, "higher")
    assert steps_beyond([1.0, 1.3, 0.8, 1.2, 1.1, 1.4, 0.9], 0.05) == []           # noisier than the move


def test_a_regression_and_its_fix_are_two_steps_for_the_report_and_the_gate_alike():
    """The single best split found at most one step: a regression and its later fix read as one step or
    none. One detector now serves both readers, and they agree on every series."""
    import random

    from spikeflops.regress.steps import steps_beyond, last_level_start

    regression_and_fix = [1.0, 1.01, 0.99, 1.0, 1.3, 1.31, 1.29, 1.3, 1.0, 0.99, 1.01]
    up, down = steps_beyond(regression_and_fix, 0.05)
    assert (up.index, down.index) == (4, 8) and up.change > 0.25 and down.change < -0.2
    assert last_level_start(regression_and_fix, 0.05) == 8          # the gate pools the fixed level only
    rng = random.Random(3)
    for _ in range(200):        # levels of 4-8 runs, 1 % noise, moves of 30-40 %: every step found where it is
        a, b, c = (rng.randint(4, 8) for _ in range(3))
        levels = [1.0, rng.choice([0.7, 1.0, 1.4]), rng.choice([0.7, 1.0, 1.4])]
        values = [lv * (1 + rng.gauss(0, 0.01)) for lv, n in zip(levels, (a, b, c)) for _ in range(n)]
        steps = steps_beyond(values, 0.05)
        assert [s.index for s in steps] == [sum((a, b, c)[:k]) for k in (1, 2) if levels[k] != levels[k - 1]]
        assert last_level_start(values, 0.05) == (steps[-1].index if steps else 0)


def test_report_names_the_commit_where_a_metric_stepped(tmp_path):
    runs = committed_asv_runs()
    assert runs, "no committed asv CPU baseline"
    src = tmp_path / "results" / "asv"
    src.mkdir(parents=True)
    (src / "benchmarks.json").write_text((RESULTS / "asv" / "benchmarks.json").read_text())
    base = runs[-1]
    for night in range(6):                        # six nightly runs; from the fourth on, MFU is 30 % lower
        def nightly(data, night=night):
            data["commit_hash"] = f"{night:x}" * 40
            data["date"] += night * 86_400_000
            if night >= 3:
                cols = data["result_columns"]
                for name, row in data["results"].items():
                    if name.endswith("GPTThroughput.track_mfu"):
                        i = cols.index("result")
                        row[i] = [None if v is None else v * 0.7 for v in row[i]]
        copy_json(base, src / base.parent.name / f"{night:x}" / "run.json", nightly)
    out = tmp_path / "report"
    proc = report(tmp_path / "results", "--out-dir", out, "--match", "GPTThroughput.mfu")
    assert proc.returncode == 0, proc.stderr
    assert "step WORSE: GPTThroughput.mfu" in proc.stdout and "at commit 33333333" in proc.stdout, proc.stdout
    md = (out / "report.md").read_text()
    assert "## Steps in history" in md and "33333333" in md


def _asv_copy(src, dst, commit: str, date_ms: int):
    import json

    data = json.loads(src.read_text())
    data["commit_hash"], data["date"] = commit, date_ms
    dst.write_text(json.dumps(data))


def test_results_are_parsed_once_per_file_version(tmp_path):
    import os
    import shutil

    from spikeflops.results import records

    runs = committed_asv_runs()
    if not runs:
        pytest.skip("needs a committed asv results file")
    folder = tmp_path / "asv" / "m"
    folder.mkdir(parents=True)
    shutil.copy(RESULTS / "asv" / "benchmarks.json", tmp_path / "asv" / "benchmarks.json")
    path = folder / "run.json"
    _asv_copy(runs[0], path, "a" * 40, 1795465980000)
    first = records.load(path)
    assert records.load(path) is first                         # unchanged file: the parsed one
    _asv_copy(runs[0], path, "b" * 40, 1795465990000)          # rewritten: parsed again
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    second = records.load(path)
    assert second is not first and second.commit == "b" * 40
    assert [m.key for m in second.measurements] == [m.key for m in first.measurements]


def test_an_astronomical_parameter_grid_is_refused_without_building_it(tmp_path):
    """A 58 kB asv file whose grid had 6.5e12 combinations used 3.5 GB before a MemoryError: asv writes a value
    for every case, so a grid longer than its values is a one-line error, found without building the grid."""
    import json

    from spikeflops.results.records import load
    from workloads.errors import SpikeflopsError

    axis = [repr(f"v{i}") for i in range(60)]
    data = {"version": 2, "commit_hash": "c" * 40, "date": 1795465980000, "params": {"machine": "m"},
            "requirements": {}, "python": "3.11", "env_name": "e", "result_columns": ["result", "params"],
            "results": {"bench_gpt.GPTStep.time_step": [[0.5, 0.25], [axis] * 7]}}
    path = tmp_path / "big.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SpikeflopsError, match=r"a grid of 2.8e\+12 cases for 2 values"):
        load(path)                                             # 60^7 = 2.8e12 combinations, two values
    data["results"]["bench_gpt.GPTStep.time_step"][1] = [axis[:1]] * 6 + [axis[:2]]      # two cases: read
    path.write_text(json.dumps(data))
    rs = load(path)
    assert [m.value for m in rs.measurements] == [0.5, 0.25]
    assert rs.measurements[1].params[-1] == ("compile", "v1")       # the names: the case table's


def test_a_series_that_stays_at_zero_has_no_step_and_long_histories_label_few_ticks():
    from spikeflops.regress.report import tick_positions
    from spikeflops.regress.steps import Step, steps_beyond

    assert Step(3, 0.0, 0.0, 0.0).change == 0.0
    assert steps_beyond([0.0] * 6 + [0.0] * 6, 0.3) == []        # the committed "0 -> 0 (+inf%)"
    shown = tick_positions(300)
    assert len(shown) <= 16 and shown[0] == 0 and shown[-1] == 299
    assert tick_positions(5) == [0, 1, 2, 3, 4]


def test_legends_name_only_what_tells_the_series_apart():
    from spikeflops.regress.report import legend_labels

    labels = ["GPTStep.time_step(gpt-nano, book, float32, cpu, forward, 4, False)",
              "GPTStep.time_step(gpt-nano, fast, float32, cpu, forward, 4, False)"]
    shared, varying = legend_labels("GPTStep.time_step", labels, ["vm"])
    assert shared == {"size": "gpt-nano", "dtype": "float32", "device": "cpu", "mode": "forward", "batch": "4",
                      "compile": "False", "machine": "vm"}
    assert varying == {labels[0]: "variant=book", labels[1]: "variant=fast"}


def _series(labels, runs, scale=1.0, unit="seconds", never_every=0, machines=("vm",)):
    """Histories of ``runs`` commits for each label and machine; every ``never_every``-th is NaN."""
    import random

    from spikeflops.results.history import Point

    rng = random.Random(0)
    out = {}
    for label in labels:
        out[label] = {}
        for machine in machines:
            pts = []
            for i in range(runs):
                value = scale * (1 + 0.01 * rng.random() + 0.001 * i)
                if never_every and i % never_every == 0:
                    value = float("nan")
                pts.append(Point(machine, f"{i:08x}", float(i), value, "asv", unit, run_date=float(i)))
            out[label][machine] = pts
    return out


_STEP = "GPTStep.time_step"
# what a report meets: a 16-series legend, a lone series of 1e9 FLOP (an offset text), integer counts with
# "never reached", a legend too wide for the figure, tiny negative values on two machines, no legend at all
PLOTS = [
    (_STEP, _series([f"{_STEP}(gpt-nano, {v}, {d}, {dev}, {m}, 4, False)" for v in ("book", "fast")
                     for d in ("bfloat16", "float32") for dev in ("cpu", "cuda") for m in ("forward", "train")], 300),
     "lower"),
    ("GPTFlops.forward_analytic", _series(["GPTFlops.forward_analytic(gpt-nano, 4)"], 300, 1.3e9, "FLOP"), "equal"),
    ("SuperSpikeConvergence.trials_to_target",
     _series(["SuperSpikeConvergence.trials_to_target(torch, cpu, ci, 6)"], 5, 40, "trials", never_every=2), "lower"),
    ("X.wide", _series(["X.wide(" + "a-very-long-parameter-value-" * 4 + f"{i})" for i in range(3)], 4), "lower"),
    ("X.tiny", _series(["X.tiny(a)", "X.tiny(b)"], 3, -1e-5, machines=("vm-one", "vm-two")), "higher"),
    ("X.crowded", _series([f"X.crowded({i})" for i in range(25)], 6), "lower"),
]


@pytest.mark.parametrize("metric, series, direction", PLOTS, ids=[p[0] for p in PLOTS])
def test_every_text_and_the_legend_fit_the_figure_and_the_data_keeps_most_of_its_width(metric, series, direction):
    """matplotlib's constrained layout places the axes: no text or legend outside the figure, the legend beside
    the data (never over it), and a legend of long names cut so the data keeps over half the width."""
    from spikeflops.regress.report import LEGEND_CHARS, MetricCanvas, _draw_metric

    canvas = MetricCanvas()
    fig, ax = canvas.fig, canvas.ax
    _draw_metric(ax, metric, series, direction)
    fig.canvas.draw()
    renderer, box = fig.canvas.get_renderer(), fig.bbox
    drawn = ax.get_tightbbox(renderer)                # every tick label, label, title and legend drawn
    assert box.x0 - 1 <= drawn.x0 and drawn.x1 <= box.x1 + 1 and box.y0 - 1 <= drawn.y0 and drawn.y1 <= box.y1 + 1, \
        (drawn, box)
    legend = ax.get_legend()
    assert (legend is None) == (metric == "X.crowded")
    data = ax.get_window_extent(renderer)
    assert data.width > 0.5 * box.width, (data.width, box.width)
    if legend is not None:
        assert legend.get_window_extent(renderer).x0 >= data.x1
        assert all(len(t.get_text()) <= LEGEND_CHARS for t in legend.get_texts())


def test_one_canvas_draws_each_plot_pixel_equal_to_a_fresh_figure(tmp_path):
    """A report draws every plot on one figure; clearing between plots must leave nothing of the last one
    (an integer locator, an offset, a widened figure, the colour cycle's place, the limits, the legend)."""
    import numpy as np
    from matplotlib.image import imread

    from spikeflops.regress.report import MetricCanvas

    shared = MetricCanvas()
    order = PLOTS[::-1] + PLOTS                  # each kind of plot after each other kind, the wide one twice
    for i, (metric, series, direction) in enumerate(order):
        reused, fresh = tmp_path / f"{i}-reused.png", tmp_path / f"{i}-fresh.png"
        shared.draw(reused, metric, series, direction)
        MetricCanvas().draw(fresh, metric, series, direction)
        a, b = imread(reused), imread(fresh)
        assert a.shape == b.shape and np.array_equal(a, b), f"plot {i} ({metric}) differs from a fresh figure's"


def _drawn(metric, series, direction="lower"):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from spikeflops.regress.report import MetricCanvas, _draw_metric

    fig = Figure(figsize=MetricCanvas.SIZE_IN)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    _draw_metric(ax, metric, series, direction)
    fig.canvas.draw()
    return ax


def test_plots_tell_the_truth_at_a_glance():
    """Every series its own colour past ten; a contended run ringed and named in the legend; no offset text;
    a 0.2 % change drawn on an axis that spans 5 % of the values, not as a cliff; series whose parameters
    changed shape are told apart in the legend."""
    import dataclasses

    from matplotlib.colors import to_hex

    many = _drawn("X.crowded", _series([f"X.crowded({i})" for i in range(14)], 3))
    colours = [to_hex(line.get_color()) for line in many.lines]
    assert len(colours) == 14 and len(set(colours)) == 14, colours

    flat = _series(["GPTFlops.forward_exact(gpt-nano, 4)"], 4, 3.96e6, "FLOP")
    for pts in flat["GPTFlops.forward_exact(gpt-nano, 4)"].values():
        pts[-1] = dataclasses.replace(pts[-1], value=pts[0].value * 1.002, contended=True)
    ax = _drawn("GPTFlops.forward_exact", flat)
    low, high = ax.get_ylim()
    assert (high - low) >= 0.045 * high, (low, high)            # 5 % of the values, not 0.2 %
    ticks = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert len(ticks) >= 3 and len(set(ticks)) == len(ticks), ticks          # readable: no two ticks alike
    assert "+" not in ax.yaxis.get_offset_text().get_text()                   # a scale, never an offset
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "contended run (CPU share < 0.5)" in labels

    changed = {**_series(["SuperSpikeTrial.time_trial(torch, cpu, ci, False)"], 3),
               **_series(["SuperSpikeTrial.time_trial(torch, cpu, ci, False, False)"], 3)}
    names = [t.get_text() for t in _drawn("SuperSpikeTrial.time_trial", changed).get_legend().get_texts()]
    assert len(names) == len(set(names)) == 2, names


def test_step_lines_carry_their_unit():
    from spikeflops.results.history import Point
    from spikeflops.regress.report import steps_lines
    from spikeflops.regress.steps import Step

    step = Step(index=3, before=0.0301, after=0.0452, spread=0.01)
    (line,) = steps_lines([("GPTStep.time_step(gpt-nano)", "vm", step, Point("vm", "abc", 0.0, 0.0452, "asv",
                                                                             "seconds"), True)])
    assert "30.1 ms -> 45.2 ms" in line, line
