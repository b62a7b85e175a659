"""The kit's results as a person reads them: the stages (what each did or could not do), the peaks, and
the reference documents' tables (GPT-2 per size and variant, SuperSpike per backend, the targets)."""

from __future__ import annotations

from ..run import reference_tables
from ..tables import format_table, markdown_cell, si


def stage_rows(results: dict) -> list[list[str]]:
    return [[s["name"], s["status"], f"{s.get('wall_s', 0):.0f} s", f"{s['budget_s']:.0f} s",
             s.get("reason") or s.get("what", "")] for s in results["kit"]["stages"]]


def peak_lines(results: dict) -> list[str]:
    peaks = results["kit"].get("peaks") or {}
    lines = []
    for kind in ("datasheet", "measured"):
        p = peaks.get(kind)
        lines.append(f"{kind} {peaks.get('dtype', '')} peak: "
                     + (f"{si(p['flops_per_s'], 'FLOP/s')} ({p['source']})" if p else "none"))
    if peaks:
        lines.append("MFU is against the " + ("datasheet peak" if peaks.get("datasheet") else
                                             "measured matmul peak (no datasheet peak for this device)"))
    if peaks.get("power_limit_watts"):
        lines.append(f"power limit: {peaks['power_limit_watts']:.0f} W")
    return lines


def headline(results: dict) -> str:
    m = results.get("machine") or {}
    done = sum(s["status"] == "ok" for s in results["kit"]["stages"])
    return (f"spikeflops kit ({results['kit']['plan']} plan) on {results.get('machine_name') or '?'}"
            f" ({m.get('gpu') or m.get('cpu') or 'machine facts not reached'}), commit "
            f"{(results.get('commit') or 'unknown')[:12]}{' (dirty)' if results.get('dirty') else ''}: "
            f"{done}/{len(results['kit']['stages'])} stages ok in {results.get('wall_s', 0):.0f} s "
            f"of a {results['kit']['budget_s']:.0f} s budget")


def summary_markdown(results: dict) -> str:
    parts = [f"# {markdown_cell(headline(results))}", ""]
    parts += [f"- {markdown_cell(line)}" for line in peak_lines(results)] + [""]
    parts += ["## Stages", "", format_table(["stage", "status", "took", "budget", "what / why"],
                                            stage_rows(results), markdown=True), ""]
    for title, headers, rows in reference_tables(results["results"]):
        parts += [f"## {markdown_cell(title)}", "", format_table(headers, rows, markdown=True), ""]
    return "\n".join(parts)


def summary_text(results: dict) -> str:
    parts = [headline(results), *peak_lines(results), "",
             format_table(["stage", "status", "took", "budget", "what / why"], stage_rows(results))]
    for title, headers, rows in reference_tables(results["results"]):
        parts += ["", title, format_table(headers, rows)]
    return "\n".join(parts)
