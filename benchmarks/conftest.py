"""The pytest-benchmark harness's own summary: the suite's metrics (FLOPs, operators, max batch, MFU,
errors), which pytest-benchmark's timing table does not show, one line per case and metric."""

from __future__ import annotations


def pytest_terminal_summary(terminalreporter, config):
    session = getattr(config, "_benchmarksession", None)
    rows = []
    for bench in getattr(session, "benchmarks", None) or []:
        info = getattr(bench, "extra_info", None) or {}
        units = info.get("units") or {}
        for name, value in (info.get("metrics") or {}).items():
            rows.append([f"{info.get('family', '')} {bench.param or ''}".strip(), name, *_fmt(value, units.get(name, ""))])
    if rows:
        from spikeflops.tables import format_table

        terminalreporter.section("spikeflops metrics (extra_info of each benchmark)")
        terminalreporter.write_line(format_table(["case", "metric", "value", "unit"], rows))
        shares = [value for _, name, value, _ in rows if name == "cpu_share" and _number(value) is not None]
        low = [float(v) for v in shares if float(v) < CONTENDED_SHARE]
        if low:
            terminalreporter.write_line(
                f"MACHINE CONTENDED: a benchmark's process got {min(low):.2f}-{max(low):.2f} of its CPU (a co-tenant "
                "was busy): these timings are not what this machine does, and the gate will not judge them")


CONTENDED_SHARE = 0.5       # gate.toml's contended_floor


def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _fmt(value, unit: str) -> tuple[str, str]:
    """(the value as `spikeflops run` prints it, the unit in its own column: once, in its own words)."""
    from spikeflops.run import format_value

    if not isinstance(value, (int, float)) or value != value:
        return ("never reached" if isinstance(value, float) else str(value)), unit
    shown = format_value(value, unit)
    return shown, "" if unit in ("seconds", "percent") else unit
