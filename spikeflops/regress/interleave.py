"""`spikeflops compare BASE CAND`: two commits measured alternately in one session, judged on paired runs.

A shared runner drifts between runs (a co-tenant arrives, the CPU clocks down): a baseline
from another day or machine then differs from the candidate by more than any code change.
Here each round runs both commits back to back (ABBA order, so a drift within a round hits
both sides alike), each from its own git worktree through `spikeflops run`, and a timing is
judged on the rounds' candidate/baseline ratios: the median ratio must pass the rule's threshold
*and* a one-sided sign test over the rounds must agree (asv's ``continuous`` is the model).
Deterministic metrics are judged as the gate judges them.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import subprocess
import sys
from pathlib import Path

from workloads.errors import SpikeflopsError
from .gitrepo import git, resolve, worktree
from .judge import Verdict
from .records import ResultSet, load
from .rules import GateConfig, Rule

PAIRED_NOISE = ("timing", "median")


def sign_test(worse: int, rounds: int) -> float:
    """One-sided p-value: the chance of ``worse`` or more of ``rounds`` pairs going one way by luck."""
    return sum(math.comb(rounds, k) for k in range(worse, rounds + 1)) / 2 ** rounds


def rounds_needed(alpha: float) -> int:
    n = 1
    while sign_test(n, n) > alpha:
        n += 1
    return n


def judge_pairs(label: str, metric: str, unit: str, params, pairs: list[tuple[float, float]], rule: Rule,
                alpha: float) -> Verdict:
    """One verdict from (baseline, candidate) values of the same rounds."""
    pairs = [(b, c) for b, c in pairs if math.isfinite(b) and math.isfinite(c)]
    base = statistics.median(b for b, _ in pairs) if pairs else None
    cand = statistics.median(c for _, c in pairs) if pairs else None

    def verdict(status, change, detail):
        return Verdict(label, metric, rule.name, rule.direction, unit, status, base, cand, change, rule.threshold,
                       detail, params)

    if not pairs:
        return verdict("missing", None, "no round measured it on both sides")
    if rule.noise not in PAIRED_NOISE:                # deterministic: any change beyond the threshold
        change = cand / base - 1 if base else (0.0 if cand == base else math.inf)
        worse = change > rule.threshold if rule.direction == "lower" else (
            change < -rule.threshold if rule.direction == "higher" else abs(change) > rule.threshold)
        better = change < -rule.threshold if rule.direction == "lower" else (
            change > rule.threshold if rule.direction == "higher" else False)
        return verdict("regressed" if worse else "improved" if better else "unchanged", change,
                       f"medians over {len(pairs)} rounds")
    ratios = [c / b for b, c in pairs if b]
    change = statistics.median(ratios) - 1
    sign = 1 if rule.direction == "lower" else -1
    worse_rounds = sum(sign * (r - 1) > 0 for r in ratios)
    better_rounds = sum(sign * (r - 1) < 0 for r in ratios)
    n = len(ratios)
    if n < rounds_needed(alpha):
        return verdict("not judged", change, f"{n} rounds cannot reach p < {alpha} in a sign test "
                                             f"(need {rounds_needed(alpha)})")
    p_worse, p_better = sign_test(worse_rounds, n), sign_test(better_rounds, n)
    detail = f"paired over {n} rounds: {worse_rounds} worse, {better_rounds} better"
    if sign * change > rule.threshold and p_worse <= alpha:
        return verdict("regressed", change, f"{detail}; sign test p={p_worse:.3g}")
    if sign * change < -rule.threshold and p_better <= alpha:
        return verdict("improved", change, f"{detail}; sign test p={p_better:.3g}")
    return verdict("unchanged", change, detail)


class Side:
    """One commit checked out in its own worktree, run through its own `spikeflops run`."""

    def __init__(self, commit: str, tree: Path):
        self.commit, self.tree = commit, tree

    def run(self, out: Path, families: list[str] | None, profile: str | None) -> ResultSet:
        import os

        cmd = [sys.executable, "-m", "spikeflops.cli", "run", "--out", str(out)]
        cmd += ["--families", *families] if families else []
        cmd += ["--profile", profile] if profile else []
        # `python -m` from the worktree imports that commit's spikeflops and workloads, not the installed ones
        env = {**os.environ, "PYTHONPATH": str(self.tree)}
        proc = subprocess.run(cmd, cwd=self.tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
        if not out.exists():
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise SpikeflopsError(f"{self.commit[:10]}: spikeflops run failed: {last}")
        return load(out)


def compare_interleaved(repo: Path, base: str, cand: str, rounds: int, config: GateConfig, work: Path,
                        families: list[str] | None = None, profile: str | None = None, say=print) -> list[Verdict]:
    if rounds < 1:
        raise SpikeflopsError("--rounds must be at least 1")
    work.mkdir(parents=True, exist_ok=True)
    commits = resolve(repo, base), resolve(repo, cand)
    with contextlib.ExitStack() as trees:
        sides = [Side(c, trees.enter_context(worktree(repo, c, work / name)))
                 for c, name in zip(commits, ("base", "cand"))]
        values: dict = {}
        for i in range(rounds):
            order = (0, 1) if i % 2 == 0 else (1, 0)         # ABBA: a drift within a round hits both sides
            for which in order:
                side = sides[which]
                say(f"round {i + 1}/{rounds}: {'baseline' if which == 0 else 'candidate'} {side.commit[:10]} ...")
                rs = side.run(work / f"round{i}-{'base' if which == 0 else 'cand'}.json", families, profile)
                for m in rs.measurements:
                    entry = values.setdefault(m.key, {"m": m, "rounds": {}})
                    entry["rounds"].setdefault(i, [math.nan, math.nan])[which] = m.value
    verdicts = []
    for key, entry in sorted(values.items()):
        m = entry["m"]
        rule = config.rule_for(m.metric)
        if rule is None or rule.direction == "none":
            continue
        pairs = [tuple(v) for v in entry["rounds"].values()]
        verdicts.append(judge_pairs(m.label, m.metric, m.unit, m.params, pairs, rule, config.alpha))
    if not verdicts:
        raise SpikeflopsError("nothing was compared: the runs share no tracked metric")
    return verdicts


def cmd_compare(args) -> int:
    import tempfile

    from .judge import exit_code
    from .render import markdown_report, terminal_report
    from .rules import load_config
    from ..resultsio import write_text

    config = load_config(args.config)
    repo = Path(git(Path(args.repo), "rev-parse", "--show-toplevel"))
    work = Path(tempfile.mkdtemp(prefix="spikeflops-compare-"))
    verdicts = compare_interleaved(repo, args.base, args.cand, args.rounds, config, work, args.families,
                                   args.profile, say=lambda t: print(t, file=sys.stderr, flush=True))
    header = (f"interleaved: {args.rounds} rounds of {args.base} and {args.cand} on this machine, "
              f"timings judged on paired rounds (sign test at alpha {config.alpha})")
    print(terminal_report(verdicts, show_all=args.all, header=header))
    if args.markdown:
        write_text(args.markdown, markdown_report(verdicts, header=header))
    print(f"(each round's results: {work})", file=sys.stderr)
    return exit_code(verdicts)
