"""`spikeflops superspike`: the demo's flags plus --backend, --seed, --size and --device."""

from __future__ import annotations

import csv
import io
import json
import statistics
import sys
import time
from pathlib import Path

from workloads.errors import SpikeflopsError
from workloads.superspike.params import SIZES, describe_sizes, get_size, size_for_target
from workloads.superspike.targets import ras_extent
from ..argtypes import non_negative_int, positive_int, positive_number
from ..results.fileio import check_writable, claim_new, save_json, write_text
from ..tables import format_table
from workloads.superspike.case import BACKENDS, SuperSpikeCase


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("superspike", help="train SuperSpike (GeNN or PyTorch) and record convergence")
    p.add_argument("--backend", choices=BACKENDS, default="torch")
    p.add_argument("--size", choices=tuple(SIZES), default=None,
                   help="network size: full = the demo's 200-256-200 over 1.89 s; ci = minutes on a CPU "
                        "(default: the smallest that holds --target-file, else ci)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the input, the initial weights and nothing else")
    p.add_argument("--num-trials", type=positive_int, default=600)
    p.add_argument("--record-trial", type=non_negative_int, nargs="*", default=[], help="trial indices to record and plot")
    p.add_argument("--target-file", default=None, help="a .ras target (default: the built-in picture)")
    p.add_argument("--target-error", type=positive_number, default=None,
                   help="time-to-target threshold on the per-trial error (default: half of trial 0's)")
    p.add_argument("--kernel-profiling", action="store_true",
                   help="time each kernel (GeNN) or phase (torch) and print them; off by default: on CUDA GeNN's "
                        "timers add an event synchronisation to every step, so a profiled trial is not a timed one")
    p.add_argument("--compile", action="store_true", help="torch.compile the PyTorch step")
    p.add_argument("--cuda-graph", action="store_true",
                   help="torch: run the steps between weight updates as CUDA graph replays of fixed-length "
                        "chunks (on a CPU the same chunks run eagerly; the results are identical)")
    p.add_argument("--save-data", action="store_true", help="write recorded spikes as CSV (as GeNN's demo)")
    p.add_argument("--out-dir", default="spikeflops-out/superspike", help="where records and plots go")
    p.add_argument("--json", action="store_true", help="print the result record as JSON")
    p.set_defaults(func=cmd_superspike)


class TrainingProgress:
    """Prints the first trials, every tenth, the last, and at least one line every ``every_s`` seconds of
    wall time, with an estimate of the time left (a full CPU trial takes many seconds)."""

    def __init__(self, num_trials: int, every_s: float = 5.0, clock=time.monotonic):
        self.num_trials, self.every_s, self.clock = num_trials, every_s, clock
        self.spent = 0.0
        self.last_print = clock()

    def __call__(self, rec) -> None:
        self.spent += rec.wall_s
        done = rec.trial + 1
        now = self.clock()
        if not (rec.trial < 3 or rec.trial % 10 == 0 or done == self.num_trials
                or now - self.last_print >= self.every_s):
            return
        self.last_print = now
        left = self.spent / done * (self.num_trials - done)
        print(f"Trial {rec.trial} ({done}/{self.num_trials}; r0 = {rec.r0:f}, error = {rec.running_error:f}, "
              f"trial error = {rec.trial_error:f}, output spikes {rec.spikes_output}/{rec.spikes_target}, "
              f"{rec.wall_s:.2f} s; about {left:.0f} s left)", file=sys.stderr, flush=True)


def choose_size(size: str | None, target_file: str | None) -> str:
    """The network for this target: the one asked for, checked against the file, or the smallest that
    holds it (the demo's file needs the demo's network, which is not the CPU-sized default)."""
    if not target_file:
        return size or "ci"
    top, last = ras_extent(target_file)
    fits = size_for_target(top, last)
    extent = f"{target_file}: output neuron ids up to {top}, spikes up to {last:g} s"
    if size is None:
        if fits is None:
            raise SpikeflopsError(f"{extent} fit no network size ({describe_sizes()})")
        print(f"spikeflops superspike: {extent}: using --size {fits.name}", file=sys.stderr)
        return fits.name
    chosen = get_size(size)
    if top > chosen.num_output or last * 1000.0 >= chosen.trial_ms:
        hint = f"; use --size {fits.name}" if fits else f"; no size fits ({describe_sizes()})"
        raise SpikeflopsError(f"{extent} do not fit --size {size} ({chosen.num_output} outputs over "
                              f"{chosen.trial_ms / 1000:g} s){hint}")
    return size


def cmd_superspike(args) -> int:
    from workloads.hardware import machine_facts
    from workloads.superspike.workload import load_target, run_training

    from ..superspike_plots import plot_convergence, plot_rasters, write_spike_csvs

    if args.save_data and not args.record_trial:
        raise SpikeflopsError("--save-data writes the spikes of recorded trials: add --record-trial N [N ...]")
    args.size = choose_size(args.size, args.target_file)
    case = SuperSpikeCase(backend=args.backend, device=args.device, size=args.size, seed=args.seed,
                          trials=args.num_trials, compile=args.compile, cuda_graph=args.cuda_graph,
                          kernel_profiling=args.kernel_profiling, target_file=args.target_file)
    out = Path(args.out_dir)
    check_writable(out / "results.json")       # a read-only folder is refused now, not after the training
    started = time.time()
    target = load_target(get_size(args.size), args.target_file)      # read once: training and plots share it
    result = run_training(case, sorted(args.record_trial), args.target_error,
                          progress=TrainingProgress(case.trials), target=target)
    # one run, one set of files: the trial count, the start time and a free name keep earlier runs' outputs
    claimed = claim_new(out / (f"{args.backend}-{result.device.replace(':', '')}-{args.size}-seed{args.seed}-"
                               f"{result.num_trials}trials-{time.strftime('%Y%m%d-%H%M%S', time.localtime(started))}"
                               ".json"))
    stem = claimed.stem
    summary = _summary(args, result, out, stem)
    try:
        save_json(claimed, {"machine": machine_facts(), "target_file": args.target_file or "built-in",
                            **result.to_dict()}, claimed=True)
        table = io.StringIO()
        w = csv.writer(table)
        w.writerow(["trial", "r0", "running_error", "trial_error", "spikes_hidden", "spikes_output",
                    "spikes_target", "wall_s"])
        for r in result.records:
            w.writerow([r.trial, r.r0, r.running_error, r.trial_error, r.spikes_hidden, r.spikes_output,
                        r.spikes_target, r.wall_s])
        write_text(out / f"{stem}-convergence.csv", table.getvalue())
        try:
            plot_convergence(result, out / f"{stem}-convergence.png", target_file=args.target_file)
            if result.recorded_spikes:
                plot_rasters(result, out / f"{stem}-rasters.png", target=target)
                if args.save_data:
                    write_spike_csvs(result, out / f"{stem}-spikes")
        except OSError as exc:
            raise SpikeflopsError(f"{out}: cannot write the plots ({exc.strerror or exc}); the results file "
                                  "and the convergence table are written") from None
    except SpikeflopsError:
        if not args.json:
            print(summary)          # a full disk costs the files, never what the training showed
        raise

    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2)
        print()
        return 0
    print(summary)
    return 0


def _summary(args, result, out: Path, stem: str) -> str:
    first, last = result.records[0], result.records[-1]
    median_wall = statistics.median(r.wall_s for r in result.records)
    rows = [["trials", result.num_trials], ["error, trial 0 -> last", f"{first.trial_error:.4g} -> {last.trial_error:.4g}"],
            ["running error (GeNN demo's), last", f"{last.running_error:.4g}"],
            ["output spikes, last / target", f"{last.spikes_output} / {last.spikes_target}"],
            ["trials to target error", result.trials_to_target or "not reached"],
            ["seconds per trial (median)", f"{median_wall:.3f}"],
            ["results", str(out / stem) + ".json"]]
    if args.kernel_profiling:
        totals = {}
        for r in result.records:
            for k, v in r.kernel_s.items():
                totals[k] = totals.get(k, 0.0) + v
        rows += [[f"kernel {k} (s, all trials)", f"{v:.3f}"] for k, v in sorted(totals.items()) if v]
    return (f"SuperSpike {args.size}, backend {result.backend} ({result.device}), seed {args.seed}\n"
            + format_table(["", "value"], rows))
