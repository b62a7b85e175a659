"""Judge a candidate's measurements against a baseline's, metric by metric, each by its own rule."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from workloads.errors import SpikeflopsError
from ..results.records import Measurement, ResultSet
from .rules import GateConfig, Rule
from .stats import benjamini_hochberg, mann_whitney_u

# the order a reader wants: what failed first
STATUSES = ("regressed", "failed", "missing", "undecided", "new", "improved", "unchanged", "not judged")
HARDWARE_KEYS = ("cpu", "num_cpu", "arch", "gpu")
# facts that results files of the suite's own formats (run, test costs) began to record later: absent on one
# side, such a fact is unknown there, not different (the CPU model, always recorded, already names the arch)
LATER_FACTS = ("arch",)
# noise models whose numbers do not depend on the harness that ran them (FLOP and operator counts, the
# seeded runs' errors): the one comparison allowed between an asv, a pytest-benchmark and a run file
ALIKE_IN_EVERY_HARNESS = ("exact", "seeds")
# what a busy co-tenant spoils in one run against another: wall-clock figures, and on-CPU time (its cache
# pressure and preemptions cost the step cycles: +17-35 % measured beside a busy test suite). Blocked time
# (waits only) is not spoiled; `compare` pairs on-CPU time within rounds, so it keeps those rounds
CONTENDABLE = ("timing", "median", "oncpu")
RANK_TESTED = ("timing", "oncpu", "blocked")     # raw samples per step: a change must also pass Mann-Whitney


@dataclass(frozen=True)
class Verdict:
    label: str
    metric: str
    rule: str
    direction: str
    unit: str
    status: str
    baseline: float | None
    candidate: float | None
    change: float | None          # relative change, candidate vs baseline (+0.10 = 10 % larger)
    threshold: float | None
    detail: str
    params: tuple[tuple[str, str], ...] = ()     # the case's parameters (what attribution matches on)
    p_value: float | None = None                 # a paired timing's one-sided p (False-discovery control reads it)


def _fact(value):
    """A machine fact as compared: asv's machine file says 'none' where the others record no GPU."""
    return None if value in (None, "", "none") else value


def hardware_difference(baseline: ResultSet, candidate: ResultSet) -> str | None:
    """A sentence naming the first hardware fact that differs, or None when the machines match."""
    keys = HARDWARE_KEYS + (("machine",) if baseline.harness == "asv" else ())
    for key in keys:
        b, c = _fact(baseline.machine.get(key)), _fact(candidate.machine.get(key))
        if key in LATER_FACTS and (b is None) != (c is None):
            continue
        if b != c:
            return f"{key} differs: baseline {b!r}, candidate {c!r}"
    return None


# what workloads.counting.counting_machine records; a record without all of it decides nothing
COUNTING_FACTS = ("valgrind", "cpu", "cpu_count", "python", "torch", "numpy")


def counting_difference(baseline: ResultSet, candidate: ResultSet) -> str | None:
    """Why instruction counts of these two results files do not compare, or None when they do: both were
    counted on a machine that valgrind showed as the same CPU, with the same valgrind, cores, Python, torch
    and numpy (workloads.counting.counting_machine), whatever their real CPUs."""
    b, c = baseline.machine.get("counting_machine"), candidate.machine.get("counting_machine")
    if not isinstance(b, dict) or not isinstance(c, dict):
        return "the machine valgrind counted on is not recorded on both sides"
    for side, facts in (("baseline", b), ("candidate", c)):      # an empty or partial record never matches
        missing = [key for key in COUNTING_FACTS if not facts.get(key)]
        if missing:
            return f"the {side}'s counting machine lacks {', '.join(missing)}"
    def shown(value):                    # the CPU by its brand string, the rest as recorded
        return value.get("brand", value) if isinstance(value, dict) else value

    for key in sorted(set(b) | set(c)):
        if b.get(key) != c.get(key):
            return f"counted on another setup ({key}: {shown(b.get(key))!r} against {shown(c.get(key))!r})"
    return None


def judge_pair(baseline: ResultSet, candidate: ResultSet, config: GateConfig,
               noise_models: tuple[str, ...] | None = None, cross_hardware: bool = False,
               spreads: dict | None = None) -> list[Verdict]:
    """One verdict per metric key found on either side (``noise_models``: judge only these;
    ``cross_hardware``: the sides ran on different machines, so only portable metrics are judged).
    Different harnesses are compared on the noise models of ALIKE_IN_EVERY_HARNESS only."""
    if baseline.harness != candidate.harness and not (
            noise_models and set(noise_models) <= set(ALIKE_IN_EVERY_HARNESS)):
        raise SpikeflopsError(f"cannot compare {baseline.harness} results with {candidate.harness} results "
                              "(except their exact and seeded metrics)")
    base, cand = baseline.by_key(), candidate.by_key()
    failed = set(candidate.failed)
    q_values = _timing_q_values(base, cand, config, noise_models)
    shares = _shares(base), _shares(cand)
    # counts move with the CPU valgrind presents and the software, not with the host's CPU: across hardware
    # they are judged where those agree
    counting_apart = counting_difference(baseline, candidate) if cross_hardware else None
    verdicts = []
    for key in sorted(set(base) | set(cand)):
        b, c = base.get(key), cand.get(key)
        m = b or c
        rule = config.rule_for(m.metric)
        if rule is not None and rule.noise == "counted":
            _refuse_broken_counts(baseline, b)
            _refuse_broken_counts(candidate, c)
        spread = (spreads or {}).get(key)
        if rule is not None and spread is not None and rule.noise != "exact" and spread > rule.threshold:
            rule = replace(rule, threshold=spread)      # the history moves this much by itself
        if rule is None or rule.direction == "none" or (noise_models and rule.noise not in noise_models):
            why = "no rule matches" if rule is None else ("not tracked" if rule.direction == "none"
                                                          else f"{rule.noise} metrics not selected")
            verdicts.append(_verdict(m, rule, "not judged", b, c, None, why))
        elif cross_hardware and not rule.portable and b is not None and c is not None and (
                rule.noise != "counted" or counting_apart):
            verdicts.append(_verdict(m, rule, "not judged", b, c, _relative(b.value, c.value),
                                     f"{counting_apart}: not judged across hardware" if rule.noise == "counted"
                                     else "depends on the machine: not judged across hardware"))
        elif c is None:
            status = "failed" if m.label in failed or m.metric in failed else "missing"
            verdicts.append(_verdict(m, rule, status, b, None, None,
                                     "benchmark failed in the candidate" if status == "failed"
                                     else "in the baseline only"))
        elif b is None:
            verdicts.append(_verdict(m, rule, "new", None, c, None, "in the candidate only"))
        else:
            # the same samples on both sides (a run gated against itself): no difference for a busy machine to
            # have made, so contention cannot hide anything and the verdict is "unchanged"
            identical = b.value == c.value and b.samples == c.samples
            contended = None if identical else _contention(base, cand, b, rule, config, shares,
                                                           (baseline.cpu_share, candidate.cpu_share))
            verdicts.append(_verdict(m, rule, "not judged", b, c, _relative(b.value, c.value), contended)
                            if contended else _judge(b, c, rule, config, q_values))
    return judged_by_companions(verdicts)


# instructions: a step executes far more; a count below it (or zero, negative, infinite) is a broken dump (NaN is
# a case that did not run, as asv records a skip)
SMALLEST_COUNT = 1000


def _refuse_broken_counts(results: ResultSet, m: Measurement | None) -> None:
    """An instruction count that no step can have is a broken file, never a change to judge."""
    from workloads.errors import SpikeflopsError

    if m is not None and not math.isnan(m.value) and not (math.isfinite(m.value) and m.value >= SMALLEST_COUNT):
        raise SpikeflopsError(f"{results.path}: {m.label} = {m.value!r} instructions is no count (a broken or "
                              f"edited dump): refused")


def judged_by_companions(verdicts: list[Verdict]) -> list[Verdict]:
    """A wall timing the machine's contention left unjudged, whose on-CPU and blocked time (which take the
    co-tenants' run-queue wait out) were both judged: said so, and no longer counted as undecided."""
    from dataclasses import replace

    by_key = {(v.metric, v.params): v for v in verdicts}
    out = []
    for v in verdicts:
        on_cpu, blocked = by_key.get((f"{v.metric}_on_cpu", v.params)), by_key.get((f"{v.metric}_blocked", v.params))
        judged = [c for c in (on_cpu, blocked) if c is not None and c.status in ("unchanged", "regressed", "improved")]
        if v.status == "not judged" and v.detail.startswith(CONTENDED) and on_cpu is not None and len(judged) == 2:
            v = replace(v, detail=f"{JUDGED_BY_CPU_TIME} (on-CPU {on_cpu.status}, blocked {blocked.status}); wall time "
                                  f"{v.detail}")
        out.append(v)
    return out


def _timing_q_values(base: dict, cand: dict, config: GateConfig, noise_models) -> dict:
    """key -> (p, q, tests): Mann-Whitney p of every timing metric whose samples can reach alpha, and its
    Benjamini-Hochberg q over all of them, so that judging dozens of timings at once does not multiply
    false alarms."""
    tested = {}
    for key in set(base) & set(cand):
        b, c = base[key], cand[key]
        rule = config.rule_for(b.metric)
        if rule is None or rule.noise not in RANK_TESTED or rule.direction in ("none", "equal"):
            continue
        if noise_models and rule.noise not in noise_models:
            continue
        n_b, n_c = len(b.samples), len(c.samples)
        if min(n_b, n_c) >= config.min_samples and smallest_p_value(n_b, n_c) < config.alpha:
            tested[key] = mann_whitney_u(list(b.samples), list(c.samples))[1]
    keys = sorted(tested)
    qs = benjamini_hochberg([tested[k] for k in keys])
    return {k: (tested[k], q, len(keys)) for k, q in zip(keys, qs)}


def _shares(measurements: dict) -> list[Measurement]:
    return [m for (metric, _), m in measurements.items() if metric.endswith(".cpu_share")]


# on-CPU time of two separate runs: judged only where both ran nearly alone (measured: 17-35 % apart beside a
# busy test suite, 1-3 % beside spinning processes)
ONCPU_QUIET_SHARE = 0.9


def _contention(base: dict, cand: dict, m: Measurement, rule: Rule, config: GateConfig,
                shares: tuple[list, list] = ([], []), run_shares: tuple = (None, None)) -> str | None:
    """Why a noisy figure cannot be judged: per the family's ``cpu_share`` record, either side's process got
    less than the absolute floor of CPU (both may starve alike: a ratio then hides it), or the candidate got
    far less than the baseline while measuring it (a co-tenant was busy). None: judge it."""
    if rule.noise not in CONTENDABLE:
        return None
    b, c = _cpu_share(base, m, shares[0]), _cpu_share(cand, m, shares[1])
    b = run_shares[0] if b is None else b          # no family recorded one for this case: the run's own
    c = run_shares[1] if c is None else c
    if b is None or c is None or not (math.isfinite(b) and math.isfinite(c)):
        return None
    state = f"CPU share {b:.2f} baseline, {c:.2f} candidate"
    if rule.noise == "oncpu" and min(b, c) < ONCPU_QUIET_SHARE:
        return (f"machine contended: not judged ({state}; on-CPU time of two runs is judged only where both got "
                f"{ONCPU_QUIET_SHARE:g} of their CPU: a co-tenant's cache pressure moves it; compare pairs it)")
    if min(b, c) < config.contended_floor:
        return (f"machine contended: not judged ({state}; below the floor {config.contended_floor:g}); "
                "rerun on a quiet machine")
    if b > 0 and c < config.contended_share * b:
        return (f"machine contended: not judged ({state}: below {config.contended_share:g}x the baseline's); "
                "rerun on a quiet machine")
    return None


def _cpu_share(measurements: dict, m: Measurement, shares: list[Measurement]) -> float | None:
    """The CPU share recorded with ``m``: its family's own ``cpu_share`` for the same case, else the share
    another family of the same run recorded for the same case (GPTThroughput's for a GPTStep: the same size,
    variant, dtype, device and batch; the mode may differ)."""
    family = m.metric.split(".", 1)[0]
    own = measurements.get((f"{family}.cpu_share", m.params))
    if own is not None:
        return own.value
    mine = {k: v for k, v in m.params if k != "mode"}
    for other in shares:
        theirs = {k: v for k, v in other.params if k != "mode"}
        if theirs and all(mine.get(k) == v for k, v in theirs.items()):
            return other.value
    return None


def _judge(b: Measurement, c: Measurement, rule: Rule, config: GateConfig, q_values: dict | None = None) -> Verdict:
    bv, cv = b.value, c.value
    if math.isnan(bv) and math.isnan(cv):
        return _verdict(b, rule, "unchanged", b, c, 0.0, "not reached on either side")
    if rule.direction == "equal":
        change = _relative(bv, cv)
        same = bv == cv if rule.threshold == 0 else abs(change) <= rule.threshold
        return _verdict(b, rule, "unchanged" if same else "regressed", b, c, change,
                        "identical" if bv == cv else "deterministic value changed")
    worse_sign = 1.0 if rule.direction == "lower" else -1.0
    if math.isnan(bv) or math.isnan(cv):          # NaN: never reached (trials to target): the worst value
        status = "regressed" if math.isnan(cv) else "improved"
        return _verdict(b, rule, status, b, c, None, "not reached in the " + ("candidate" if math.isnan(cv)
                                                                                  else "baseline"))
    change = _relative(bv, cv)
    if abs(bv) < rule.floor and abs(cv) < rule.floor:
        return _verdict(b, rule, "unchanged", b, c, change, f"both below the floor {rule.floor:g}")
    worse = worse_sign * change > rule.threshold
    better = -worse_sign * change > rule.threshold
    detail = ""
    if rule.noise in RANK_TESTED and (worse or better):
        n_b, n_c = len(b.samples), len(c.samples)
        if min(n_b, n_c) >= config.min_samples and smallest_p_value(n_b, n_c) < config.alpha:
            tested = (q_values or {}).get(b.key)
            if tested is None:                  # judged alone: q is p
                p = mann_whitney_u(list(b.samples), list(c.samples))[1]
                tested = (p, p, 1)
            p, q, tests = tested
            detail = (f"Mann-Whitney p={p:.3g} ({n_b} vs {n_c} samples), "
                      f"Benjamini-Hochberg q={q:.3g} over {tests} timing test{'s' if tests != 1 else ''}")
            if q >= config.alpha:
                return _verdict(b, rule, "unchanged", b, c, change, detail + ": not significant")
        else:
            detail = ("threshold only (no raw samples)" if not (n_b or n_c)
                      else f"threshold only ({n_b} vs {n_c} raw samples: too few for p < {config.alpha})")
    elif rule.noise == "seeds" and _paired_seeds(b, c):
        return _judge_seeds(b, c, rule, config, change, worse, better)
    elif rule.noise == "counted":
        detail = "instructions counted under valgrind on one runner"
    elif rule.noise in ("seeds", "median"):
        what = "seeds" if rule.noise == "seeds" else "samples"
        detail = (f"median of {len(b.samples)} vs {len(c.samples)} {what}" if b.samples and c.samples
                  else "threshold on the value")
    status = "regressed" if worse else "improved" if better else "unchanged"
    return _verdict(b, rule, status, b, c, change, detail)


def _paired_seeds(b: Measurement, c: Measurement) -> bool:
    """Both sides ran the same seeds (one sample each, in seed order) and every value is a positive number."""
    return (len(b.samples) == len(c.samples) >= 2
            and all(math.isfinite(x) and x > 0 for x in b.samples + c.samples))


def _judge_seeds(b: Measurement, c: Measurement, rule: Rule, config: GateConfig, change: float, worse: bool,
                 better: bool) -> Verdict:
    """Seeds paired: the same seed on both sides. The median's threshold still catches a large change; a
    consistent one below it (every seed a little worse) is caught by a Student-t interval on the per-seed
    log ratios, when it excludes no change and the estimate exceeds ``config.seed_change``. The verdict
    states the smallest consistent change these seeds could show."""
    from .stats import worse_ratio

    pairs = list(zip(b.samples, c.samples))
    ratio, low, high, p_worse = worse_ratio(pairs, 1 - 2 * config.alpha, rule.direction)
    n = len(pairs)
    half = (high / low) ** 0.5 - 1                      # the interval's half-width, as a relative change
    detail = (f"paired over {n} seeds: geometric mean {100 * (ratio - 1):+.1f}% "
              f"({100 * (low - 1):+.1f}% .. {100 * (high - 1):+.1f}%, worse direction); a consistent change "
              f"below about {100 * max(half, config.seed_change):.1f}% is not detectable with these seeds")
    if worse:
        return _verdict(b, rule, "regressed", b, c, change, f"median beyond the threshold; {detail}")
    if low > 1 and ratio - 1 > config.seed_change:
        return _verdict(b, rule, "regressed", b, c, change,
                        f"consistent across seeds (p={p_worse:.3g}) though the median is within the threshold; "
                        f"{detail}")
    if better:
        return _verdict(b, rule, "improved", b, c, change, detail)
    if high - 1 > rule.threshold:
        return _verdict(b, rule, "undecided", b, c, change,
                        f"{detail}; the interval reaches past the {100 * rule.threshold:g}% threshold: more seeds needed")
    return _verdict(b, rule, "unchanged", b, c, change, detail)


JUDGED = ("regressed", "improved", "unchanged", "undecided")


def pool_history(runs: list[ResultSet], threshold_of=lambda metric: 0.0) -> tuple[ResultSet, dict]:
    """One baseline from several runs of the same machine: per metric, the median of the runs' values since
    the last level change in them (``steps.last_level_start``, the report's detector: a long window must not
    pool the levels before and after a change; ``threshold_of(metric)`` is the change that counts), and the
    spread between those runs, |run / median - 1| (its largest but one with 3+ runs), which the gate takes as
    the smallest change it can call for that metric."""
    import statistics

    from .steps import last_level_start

    newest = runs[-1]
    per_key: dict = {}
    for rs in runs:
        for m in rs.measurements:
            per_key.setdefault(m.key, []).append(m)
    pooled, spreads = [], {}
    for key, ms in per_key.items():
        values = [m.value for m in ms]
        if len(values) >= 4 and all(math.isfinite(v) for v in values):
            ms = ms[last_level_start(values, threshold_of(ms[0].metric)):]
        finite = [m.value for m in ms if not math.isnan(m.value)]
        value = statistics.median(finite) if len(finite) * 2 > len(ms) else math.nan   # mostly never reached
        samples = tuple(s for m in ms for s in m.samples) if ms[0].samples else ()
        pooled.append(Measurement(ms[0].metric, ms[0].params, ms[0].unit, value, samples, ms[-1].parts))
        if len(finite) >= 2 and value:
            deviations = sorted(abs(v / value - 1.0) for v in finite)
            # the largest deviation but one where there are 3+ runs: one wild run must not widen the
            # threshold enough to hide a real regression
            spreads[key] = deviations[-2] if len(deviations) >= 3 else deviations[-1]
    label = f"median of {len(runs)} runs since their last change point ({', '.join((rs.commit or '?')[:8] for rs in runs)})"
    out = ResultSet(label, newest.harness, newest.machine, newest.commit, newest.date, pooled,
                    commit_date=newest.commit_date)
    return out, spreads


def staleness(baseline: ResultSet, candidate: ResultSet, verdicts: list[Verdict]) -> str | None:
    """What a baseline older than the candidate's code cannot judge: how much older its commit is and how
    many of the candidate's tracked metrics it lacks (each is "new", never judged). None when it lacks none."""
    tracked_new = [v for v in verdicts if v.status == "new"]
    if not tracked_new:
        return None
    base_t, cand_t = baseline.commit_date or baseline.date, candidate.commit_date or candidate.date
    age = (f"its commit is {(cand_t - base_t) / 86400:.0f} days older than the candidate's; "
           if base_t and cand_t and cand_t - base_t >= 86400 else "")
    names = sorted({v.metric for v in tracked_new})
    return (f"STALE BASELINE: {age}it lacks {len(tracked_new)} of the candidate's measurements "
            f"({len(names)} metrics, e.g. {', '.join(names[:3])}): they are new, not judged; measure the "
            "baseline's commit here (spikeflops compare, or a run of the base) or refresh the committed baseline")


def coverage_problem(baseline: ResultSet, candidate: ResultSet, verdicts: list[Verdict]) -> str | None:
    """Why this comparison proves nothing, or None. A gate that compared nothing must never pass:
    two files sharing no metric (a copied asv file read without its index, another profile), or
    sharing far fewer than they hold, or a selection that judged none of what they share."""
    base, cand = set(baseline.by_key()), set(candidate.by_key())
    shared = base & cand
    if not base or not cand:
        empty = "baseline" if not base else "candidate"
        return f"the {empty} holds no measurements: nothing to compare"
    if not shared:
        return (f"baseline and candidate share no metric ({len(base)} vs {len(cand)} measurements): "
                "they measured different things, or their parameter names differ")
    if len(shared) < 0.5 * min(len(base), len(cand)):
        return (f"baseline and candidate share only {len(shared)} of {len(base)} and {len(cand)} measurements: "
                "they measured different things (another profile or case table?)")
    if not any(v.status in JUDGED for v in verdicts):
        return f"none of the {len(shared)} shared metrics was judged (all filtered out or not comparable)"
    return None


def smallest_p_value(n1: int, n2: int) -> float:
    """The smallest two-sided p a rank test can give with these sample sizes (complete separation)."""
    if n1 + n2 <= 1000:                 # C(1000, 500) ~ 3e299 still fits a float: exact
        return 2.0 / math.comb(n1 + n2, n1)
    # in logs: C(1000 + 1000, 1000) has ~600 digits, past what a float holds (an OverflowError, not a p)
    log_comb = math.lgamma(n1 + n2 + 1) - math.lgamma(n1 + 1) - math.lgamma(n2 + 1)
    return min(1.0, math.exp(math.log(2.0) - log_comb))


def _relative(bv: float, cv: float) -> float:
    if bv == cv:
        return 0.0
    if bv == 0:
        return math.copysign(math.inf, cv)
    return (cv - bv) / abs(bv)


def _verdict(m: Measurement, rule: Rule | None, status: str, b: Measurement | None, c: Measurement | None,
             change: float | None, detail: str) -> Verdict:
    return Verdict(m.label, m.metric, rule.name if rule else "-", rule.direction if rule else "none", m.unit,
                   status, b.value if b else None, c.value if c else None, change,
                   rule.threshold if rule else None, detail, m.params)


# exit codes of a verdict: 0 every judged metric held; 1 a regression or a failed case; 2 unusable input
# (the CLI's own); 3 no regression found, but something that should have been judged was not
EXIT_OK, EXIT_REGRESSION, EXIT_UNDECIDED = 0, 1, 3
CONTENDED = "machine contended"
# a wall timing left unjudged by contention, whose on-CPU and blocked time judged the step instead (compare)
JUDGED_BY_CPU_TIME = "judged by its on-CPU and blocked time"
TOO_NOISY = "too noisy here"


def unjudged(verdicts: list[Verdict]) -> list[Verdict]:
    """Verdicts that could not decide what they were asked: undecided after every round, or not judged
    because the machine was contended or is too noisy for the threshold. Never a silent pass."""
    return [v for v in verdicts if v.status == "undecided"
            or (v.status == "not judged" and v.detail.startswith((CONTENDED, TOO_NOISY)))]


def exit_code(verdicts: list[Verdict], fail_on_missing: bool = False) -> int:
    bad = {"regressed", "failed"} | ({"missing"} if fail_on_missing else set())
    if any(v.status in bad for v in verdicts):
        return EXIT_REGRESSION
    return EXIT_UNDECIDED if unjudged(verdicts) else EXIT_OK
