"""`spikeflops kit`: the GPU kit's command line (plan, stages, budget, carried wheels and GeNN source)."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from workloads.errors import SpikeflopsError

from ..argtypes import positive_number
from ..gpukit import plan as kit_plan
from ..gpukit.stage import ROOT
from ..progress import say

DEFAULT_WHEELS = ROOT / ".whl"              # ignored by git: carried to the GPU, never committed
DEFAULT_GENN_SOURCE = ROOT / "genn-src"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "kit", help="every GPU number in one call of fixed length (8 minutes on a GPU; a CPU rehearses it)")
    p.add_argument("--plan", choices=kit_plan.PLANS, default=None,
                   help="gpu (the default where torch sees a GPU) or rehearsal (the same stages at CI sizes)")
    p.add_argument("--stages", default=None, metavar="A,B",
                   help=f"only these stages (and facts), in the kit's order ({', '.join(kit_plan.STAGE_NAMES)})")
    p.add_argument("--budget", type=positive_number, default=None, metavar="SECONDS",
                   help=f"the whole run's wall time (gpu: {kit_plan.GPU_BUDGET_S:.0f}; rehearsal: its stages' sum)")
    p.add_argument("--time-scale", type=positive_number, default=1.0, metavar="X",
                   help="stretch every budget by X (a slow or shared machine)")
    p.add_argument("--stage-budget", action="append", default=[], metavar="STAGE=SECONDS",
                   help="give one stage this budget instead of the plan's (before --time-scale); repeatable")
    p.add_argument("--out-dir", default=None,
                   help="a new or empty folder for kit.json, kit.md, kit.log and the harnesses' records "
                        "(default: spikeflops-out/kit-<machine>-<time>)")
    p.add_argument("--wheels", default=None, metavar="DIR",
                   help=f"wheels to install first, without an index (default: {DEFAULT_WHEELS.name}/ if present)")
    p.add_argument("--genn-source", default=None, metavar="DIR",
                   help=f"GeNN's source, built in the background if pygenn is missing (default: "
                        f"{DEFAULT_GENN_SOURCE.name}/ if present)")
    p.add_argument("--commit", default=None, help="the commit measured, where the copy is not a git checkout")
    p.add_argument("--prepare-wheels", nargs="?", const=str(DEFAULT_WHEELS), default=None, metavar="DIR",
                   help=f"download, here, the wheels a bare GPU machine lacks into DIR (default "
                        f"{DEFAULT_WHEELS.name}/) and stop")
    p.add_argument("--for-python", default="3.12", metavar="X.Y",
                   help="the GPU machine's Python, for --prepare-wheels (default 3.12)")
    p.set_defaults(func=cmd_kit)


def build_jobs() -> int:
    """Compiler processes for a background GeNN build: the cores less four, left to the stages measuring."""
    return max(1, (os.cpu_count() or 2) - 4)


def _stages(spec: str | None) -> list:
    if spec is None:
        return list(kit_plan.STAGES)
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise SpikeflopsError("--stages: name at least one stage")
    wanted = {kit_plan.stage_named(n).name for n in names}     # unknown names: one line
    wanted.add("facts")                     # always: a number without its machine is no record
    return [s for s in kit_plan.STAGES if s.name in wanted]


def _stage_budgets(specs: list[str], stages: list) -> dict[str, float]:
    budgets = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        try:
            seconds = positive_number(value) if sep else None
        except argparse.ArgumentTypeError:
            seconds = None
        if seconds is None:
            raise SpikeflopsError(f"--stage-budget {spec!r}: give STAGE=SECONDS, with SECONDS a positive number")
        stage = kit_plan.stage_named(name.strip())                 # unknown names: one line
        if stage not in stages:
            raise SpikeflopsError(f"--stage-budget {spec!r}: {stage.name} is not among the stages run")
        budgets[stage.name] = seconds
    return budgets


def _out_dir_usable(out: Path) -> Path:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SpikeflopsError(f"--out-dir {out}: exists and is not an empty folder (a kit never writes over "
                              "earlier results)")
    return out


def _out_dir(arg: str | None, plan: str) -> Path:
    if arg:
        out = _out_dir_usable(Path(arg))
    else:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        out = Path("spikeflops-out") / f"kit-{plan}-{stamp}"
        n = 2
        while out.exists():
            out = out.with_name(f"kit-{plan}-{stamp}-{n}")
            n += 1
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpikeflopsError(f"--out-dir {out}: cannot be created ({exc.strerror or exc})") from None
    if not os.access(out, os.W_OK):
        raise SpikeflopsError(f"--out-dir {out}: not writable")
    return out.resolve()        # the stages run from the checkout's root: a relative folder would be read there


def _commit(arg: str | None) -> tuple[str | None, bool]:
    from ..gitrepo import git_commit

    commit, dirty = git_commit()
    return (arg or commit), dirty


def cmd_kit(args) -> int:
    from ..gpukit import wheels as kit_wheels
    from ..gpukit.runner import importable, run_kit, start_genn_build

    if args.prepare_wheels:
        if not re.fullmatch(r"3\.\d{1,2}", args.for_python):
            raise SpikeflopsError(f"--for-python {args.for_python!r}: give a Python version like 3.12")
        got = kit_wheels.prepare(Path(args.prepare_wheels), args.for_python, say)
        print("\n".join(w.name for w in got))
        say(f"{len(got)} wheels, {sum(w.stat().st_size for w in got) / 2**20:.1f} MiB, in {args.prepare_wheels}")
        return 0
    stages = _stages(args.stages)
    stage_budgets = _stage_budgets(args.stage_budget, stages)
    wheels = Path(args.wheels) if args.wheels else (DEFAULT_WHEELS if DEFAULT_WHEELS.is_dir() else None)
    if args.wheels and not wheels.is_dir():
        raise SpikeflopsError(f"--wheels {wheels}: no such folder")
    if wheels and not any(wheels.glob("*.whl")):
        raise SpikeflopsError(f"--wheels {wheels}: holds no wheels (see docs/gpu-kit.md: preparing the wheels)")
    genn_source = Path(args.genn_source) if args.genn_source else (
        DEFAULT_GENN_SOURCE if DEFAULT_GENN_SOURCE.is_dir() else None)
    if args.genn_source and not (genn_source / "setup.py").is_file():
        raise SpikeflopsError(f"--genn-source {genn_source}: not GeNN's source (no setup.py)")
    if args.plan:
        plan = args.plan
    else:
        import torch

        plan = "gpu" if torch.cuda.is_available() else "rehearsal"
    budget = (args.budget or kit_plan.default_budget(plan)) * args.time_scale
    if args.out_dir:
        _out_dir_usable(Path(args.out_dir))
    commit, dirty = _commit(args.commit)

    site = Path(tempfile.mkdtemp(prefix="spikeflops-kit-site-"))
    genn_build = None
    try:
        # the wheels first: a set that does not install is refused before any folder is made
        installed = kit_wheels.install(wheels, site, say) if wheels else []
        out_dir = _out_dir(args.out_dir, plan)
        say(f"spikeflops kit: {plan} plan, {len(stages)} stages, {budget:.0f} s budget, results in {out_dir}")
        if genn_source and any(s.needs == "pygenn" for s in stages) and not importable("pygenn", site):
            say(f"building pygenn from {genn_source} in the background (log: {out_dir / 'genn-build.log'})")
            genn_build = start_genn_build(genn_source, site, out_dir / "genn-build.log", jobs=build_jobs())
        code = run_kit(plan, out_dir, stages, budget, site, commit, dirty, installed, genn_build=genn_build,
                       say=say, time_scale=args.time_scale, stage_budgets=stage_budgets)
    finally:
        if genn_build is not None and genn_build.poll() is None:
            from ..gpukit.runner import stop_group

            stop_group(genn_build)
        shutil.rmtree(site, ignore_errors=True)
    from ..results.fileio import read_json
    from ..gpukit.summary import summary_text

    print(summary_text(read_json(out_dir / "kit.json")))
    say(f"results: {out_dir}")
    return code
