"""`spikeflops report`: each metric's history over commits and machines, as PNG plots and a markdown table."""

from __future__ import annotations

import sys

from workloads.errors import SpikeflopsError


def add_parser(subparsers) -> None:
    r = subparsers.add_parser("report", help="history of every metric over commits and machines: PNG + markdown",
                              description="Read every asv and pytest-benchmark results file under the given "
                                          "paths and write one PNG per metric and a markdown summary.")
    r.add_argument("paths", nargs="*", default=["results"], help="results files or folders (default: results)")
    r.add_argument("--out-dir", default="spikeflops-out/report", help="folder for report.md and the PNGs")
    r.add_argument("--match", default=None, help="only metrics whose name contains this text")
    r.add_argument("--config", default=None, help="gate thresholds file (to leave out untracked metrics)")
    r.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from ..results.history import collect
    from ..regress.report import MetricCanvas, _slug, find_steps, markdown, steps_lines
    from ..regress.rules import load_config
    from ..results.fileio import OUTPUT_MARKER, claim_output_folder, mark_output_folder, staged_folder, swap_in, write_text

    config = load_config(args.config)
    out = claim_output_folder(args.out_dir, "--out-dir")  # before any reading
    history = collect(args.paths, warn=lambda msg: print(f"spikeflops report: {msg}", file=sys.stderr))
    tracked = {}
    for label, per_machine in history.items():
        metric = label.split("(", 1)[0]
        rule = config.rule_for(metric)
        if rule is None or rule.direction == "none":
            continue
        if args.match and args.match not in label:
            continue
        tracked[label] = (rule.direction, per_machine)
    if not tracked:
        raise SpikeflopsError("no tracked metrics in these results" + (f" match {args.match!r}" if args.match else ""))
    by_metric: dict[str, list[str]] = {}
    for label in tracked:
        by_metric.setdefault(label.split("(", 1)[0], []).append(label)
    steps = find_steps(tracked, {label: config.rule_for(label.split("(", 1)[0]).threshold for label in tracked})
    # drawn into a hidden folder beside the report and swapped in at the end: a report stopped midway
    # leaves the earlier one whole (never an old report.md beside new plots)
    with staged_folder(out) as stage:
        try:
            (stage / "plots").mkdir()
            canvas = MetricCanvas()
            for i, (metric, labels) in enumerate(sorted(by_metric.items()), 1):
                print(f"spikeflops report: plot {i}/{len(by_metric)} {metric}", file=sys.stderr)
                canvas.draw(stage / "plots" / f"{_slug(metric)}.png", metric,
                            {lb: tracked[lb][1] for lb in labels}, tracked[labels[0]][0])
        except OSError as exc:          # a full disk: the earlier report stays whole
            raise SpikeflopsError(f"{out}: cannot write the plots ({exc.strerror or exc}); "
                                  "the previous report is unchanged") from None
        write_text(stage / "report.md", markdown(tracked, by_metric, steps))
        mark_output_folder(stage)
        swap_in(stage, out, ("plots", "report.md", OUTPUT_MARKER))
    for line in steps_lines(steps):
        print(line)
    print(f"wrote {out / 'report.md'} and {len(by_metric)} plots in {out / 'plots'}")
    return 0
