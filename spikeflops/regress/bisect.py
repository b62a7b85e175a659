"""`spikeflops bisect GOOD BAD --metric NAME`: the first commit where a metric regressed.

A deterministic metric (an operator count, FLOPs): asv measures each probed commit (``asv run
--python=same --set-commit-hash <sha>`` from a git worktree of that commit, into a scratch results
folder), and the gate's rule decides whether it is worse than GOOD. A timing: one asv sample per
probe decides nothing on a shared machine (two identical ends read 0.915 s and 0.458 s), so each
probe is a paired comparison with GOOD, `spikeflops compare`'s ABBA rounds and interval, rounds
added while it is undecided; a probe still undecided stops the search and says so. Both ends are
judged first: BAD must really be worse, or there is nothing to look for. Then a binary search over
the commits between them (``git rev-list --ancestry-path``), printing each verdict on the way.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from workloads.errors import SpikeflopsError
from workloads.isolate import private_temp_env, run_group

from ..gitrepo import git, resolve, worktree
from .judge import Verdict, judge_pair
from ..results.records import ResultSet, load
from .rules import GateConfig


@dataclass
class Probe:
    commit: str
    subject: str
    verdicts: list[Verdict]
    results: ResultSet | None = None

    @property
    def bad(self) -> bool:
        return any(v.status in ("regressed", "failed", "missing") for v in self.verdicts)

    def describe(self) -> str:
        values = ", ".join(f"{'-' if v.candidate is None else f'{v.candidate:.6g}'}" for v in self.verdicts)
        worst = next((v for v in self.verdicts if v.status in ("regressed", "failed", "missing")), None)
        status = (f"BAD ({worst.status}: {worst.label} {_pct(worst.change)})" if worst else "good")
        return f"{self.commit[:10]} {self.subject[:50]:50s} {values:>16s}  {status}"


def _pct(change) -> str:
    return "" if change is None else f"{100 * change:+.1f}%"


def commits_between(repo: Path, good: str, bad: str) -> list[str]:
    """Full hashes from GOOD (first) to BAD (last) along the ancestry path."""
    good_sha, bad_sha = resolve(repo, good), resolve(repo, bad)
    if subprocess.run(["git", "-C", str(repo), "merge-base", "--is-ancestor", good_sha, bad_sha]).returncode != 0:
        raise SpikeflopsError(f"{good} is not an ancestor of {bad}: nothing to bisect between them")
    path = git(repo, "rev-list", "--reverse", "--ancestry-path", f"{good_sha}..{bad_sha}").split()
    if not path:
        raise SpikeflopsError(f"{good} and {bad} are the same commit")
    return [good_sha, *path]


def _matched_rows(metric: str, match: str | None) -> tuple[str, str, list]:
    """(family, metric name, the case table's rows of that family whose label contains ``match``)."""
    from workloads.registry import FAMILIES, all_rows

    family, _, name = metric.partition(".")
    if family not in FAMILIES or name not in {m.name for m in FAMILIES[family].metrics}:
        raise SpikeflopsError(f"unknown metric {metric!r}: use <Family>.<metric>, e.g. GPTStep.time_step, "
                              "GPTOpCount.operators")
    rows = [row for row in all_rows(family)
            if match is None or match in ", ".join(str(v) for v in row.param_values())]
    if not rows:
        raise SpikeflopsError(f"no case of {family} matches {match!r}")
    return family, name, rows


def _selection(family: str, name: str, rows: list) -> tuple[str, str]:
    """(asv's ``-b`` pattern, the ``SPIKEFLOPS_CASES`` pattern) of ``rows``, from rows matched once."""
    from workloads.registry import FAMILIES, case_id

    method = name if FAMILIES[family].metric(name).timed else f"track_{name}"
    # a commit's grid is one case axis (its row's id), or one axis per parameter before it: either is matched
    combos = [re.escape(repr(case_id(row))) for row in rows]
    combos += [re.escape(", ".join(repr(v) for v in row.param_values())) for row in rows]
    regex = rf"\.{re.escape(family)}\.{re.escape(method)}\(({'|'.join(combos)})\)$"
    cases = rf"^{re.escape(family)} ({'|'.join(re.escape(case_id(row)) for row in rows)})$"
    return regex, cases


@dataclass(frozen=True)
class BisectPlan:
    """What a search needs, checked once: the metric's rule, the rows its benchmark runs (asv's ``-b``
    pattern and the ``SPIKEFLOPS_CASES`` selection), and the commits from GOOD to BAD. Everything after
    it reads these fields and checks nothing again."""

    repo: Path
    metric: str
    match: str | None
    rule: object                    # the gate's Rule of ``metric``
    paired: bool                    # a timing: every probe is a paired comparison with GOOD
    regex: str
    cases: str
    commits: tuple[str, ...]        # GOOD first, BAD last, along the ancestry path
    good: str                       # as the user named them, for messages
    bad: str
    rounds: int = 5
    max_rounds: int = 10
    quick: bool = False


def plan_bisect(repo: Path, metric: str, good: str, bad: str, config: GateConfig, match: str | None = None,
                rounds: int = 5, max_rounds: int = 10, quick: bool = False) -> BisectPlan:
    """The search's plan, or a one-line refusal before anything runs: an unknown metric or case, a metric
    with no 'worse', a range that is not an ancestry path."""
    from .interleave import PAIRED_NOISE

    regex, cases = _selection(*_matched_rows(metric, match))       # the rows matched and checked once
    rule = config.rule_for(metric)
    if rule is None or rule.direction == "none":
        raise SpikeflopsError(f"{metric} has no gate rule with a direction: there is no 'worse' to find")
    return BisectPlan(repo, metric, match, rule, rule.noise in PAIRED_NOISE, regex, cases,
                      tuple(commits_between(repo, good, bad)), good, bad, rounds, max(rounds, max_rounds), quick)


class Bisector:
    def __init__(self, plan: BisectPlan, config: GateConfig, work: Path, machine: str, say=print,
                 asv_config: Path | None = None):
        self.plan, self.config, self.work, self.machine, self.say = plan, config, Path(work).resolve(), machine, say
        self.good: str | None = None
        self.asv_config = self._read_asv_config(asv_config or plan.repo / "asv.conf.json")
        self.work.mkdir(parents=True, exist_ok=True)
        self.reference: ResultSet | None = None

    @staticmethod
    def _read_asv_config(src: Path) -> dict:
        import json

        try:
            return json.loads(src.read_text())
        except (OSError, ValueError) as exc:
            raise SpikeflopsError(f"{src}: cannot read asv's configuration ({exc})") from None

    def measure(self, commit: str) -> ResultSet:
        """asv runs the metric's benchmark at ``commit``: that commit's benchmarks and code, from a worktree.

        ``--python=same`` with the worktree on asv's ``ASV_PYTHONPATH``: the commit's own packages are
        imported in this environment (its torch, its pygenn), with no wheel to build per commit.
        """
        import json
        import os
        import shutil

        from workloads.registry import CASES_ENV_VAR

        asv = shutil.which("asv")
        if asv is None:
            raise SpikeflopsError("bisect runs asv, which is not installed (pip install -e '.[test]')")
        with worktree(self.plan.repo, commit, self.work / "trees" / commit[:12]) as tree:
            conf = dict(self.asv_config, repo=str(self.plan.repo), benchmark_dir=str(tree / "benchmarks"),
                        env_dir=str(self.work / "env"), results_dir=str(self.work / "results"),
                        html_dir=str(self.work / "html"))
            conf_path = self.work / f"asv-{commit[:12]}.json"
            conf_path.write_text(json.dumps(conf))
            cmd = [asv, "run", "--config", str(conf_path), "--python=same", "--set-commit-hash", commit,
                   "--machine", self.machine, "-b", self.plan.regex, "--record-samples"]
            cmd += ["--quick"] if self.plan.quick else []
            with tempfile.TemporaryDirectory(prefix="spikeflops-bisect-asv-") as tmp:
                # asv's own temporary files go in a folder that is removed however asv ends
                env = private_temp_env(tmp, {**os.environ, "ASV_PYTHONPATH": str(tree), CASES_ENV_VAR: self.plan.cases})
                proc = run_group(cmd, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        files = [p for p in (self.work / "results" / self.machine).glob(f"{commit[:8]}-*.json")]
        if proc.returncode != 0 or not files:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
            raise SpikeflopsError(f"asv could not measure {commit[:10]}: {' / '.join(tail) or 'no output'}")
        return load(max(files, key=lambda p: p.stat().st_mtime))

    def judge_paired(self, commit: str) -> Probe:
        """``commit`` against GOOD in ABBA rounds of `spikeflops run` (the metric's family only)."""
        from .interleave import compare_interleaved

        plan = self.plan
        subject = git(plan.repo, "log", "-1", "--format=%s", commit)
        family = plan.metric.split(".", 1)[0]
        verdicts = [v for v in compare_interleaved(plan.repo, self.good, commit, plan.rounds, self.config,
                                                   self.work / "rounds" / commit[:12], [family],
                                                   say=lambda t: None, max_rounds=plan.max_rounds)
                    if self._wanted(v)]
        if not verdicts:
            raise SpikeflopsError(f"{commit[:10]} recorded no {plan.metric}"
                                  + (f" matching {plan.match!r}" if plan.match else ""))
        probe = Probe(commit, subject, verdicts)
        self.say(probe.describe())
        undecided = [v for v in verdicts if v.status in ("undecided", "not judged")]
        if undecided and not probe.bad:
            v = undecided[0]
            raise SpikeflopsError(f"{commit[:10]}: {v.label} is {v.status} after {plan.max_rounds} paired rounds "
                                  f"({v.detail}); rerun on a quieter machine or with --max-rounds above "
                                  f"{plan.max_rounds}")
        return probe

    def judge(self, commit: str) -> Probe:
        if self.plan.paired and self.good is not None:
            return self.judge_paired(commit)
        subject = git(self.plan.repo, "log", "-1", "--format=%s", commit)
        results = self.measure(commit)
        if self.reference is None:
            verdicts = [v for v in judge_pair(results, results, self.config) if self._wanted(v)]
        else:
            verdicts = [v for v in judge_pair(self.reference, results, self.config) if self._wanted(v)]
        if not verdicts:
            raise SpikeflopsError(f"{commit[:10]} recorded no {self.plan.metric}"
                                  + (f" matching {self.plan.match!r}" if self.plan.match else ""))
        probe = Probe(commit, subject, verdicts, results)
        self.say(probe.describe())
        return probe

    def _wanted(self, v: Verdict) -> bool:
        return v.metric == self.plan.metric and (self.plan.match is None or self.plan.match in v.label)

    def run(self) -> Probe:
        plan, commits = self.plan, self.plan.commits
        self.say(f"bisecting {len(commits) - 1} commits after {commits[0][:10]} on {plan.metric} "
                 f"(the gate's rule: {plan.rule.name})")
        if plan.paired:                       # every probe is a paired comparison with GOOD
            self.good = commits[0]
            self.say(f"{commits[0][:10]} GOOD: the reference of every paired probe "
                     f"({plan.rounds}-{plan.max_rounds} ABBA rounds each)")
        else:
            first = self.judge(commits[0])
            self.reference = first.results
        last = self.judge(commits[-1])
        if not last.bad:
            raise SpikeflopsError(f"{plan.bad} is not worse than {plan.good} on {plan.metric}: nothing to bisect")
        lo, hi = 0, len(commits) - 1
        found = last
        while hi - lo > 1:
            mid = (lo + hi) // 2
            probe = self.judge(commits[mid])
            if probe.bad:
                hi, found = mid, probe
            else:
                lo = mid
        return found
