"""Two fixes to asv's graph page (``graphdisplay.js``) in a published dashboard, made on the copy only.

- A parameter grid holds combinations no machine runs; asv still gives each its legend entry, so 24 entries
  (most of them empty) covered the SuperSpikeConvergence plot. A series with no value is left out.
- asv prints every y tick with three significant digits, so five ticks of a count near 3.96e6 all read
  ``3.96e+6``. Ticks get as many digits as their spacing needs (at least three).

asv's own file is never edited; a pattern this asv version lacks is reported, and the page stays as asv made it.
"""

from __future__ import annotations

from pathlib import Path

PAGE = "graphdisplay.js"

# asv 0.6's code -> the same code with the fix (each a whole statement, found exactly once)
FIXES = {
    "a legend entry for a series with no value":
        ("orig_graphs.push({",
         "if (!series.some(function (p) { return p[1] !== null && p[1] !== undefined && !isNaN(p[1]); })) {\n"
         "                        return;   /* spikeflops: no value, no legend entry */\n"
         "                    }\n"
         "                    orig_graphs.push({"),
    "y ticks that all read alike":
        ("return (v / multiplier).toPrecision(3);",
         "var x = v / multiplier, step = Math.abs((axis.tickSize || 0) / multiplier);   /* spikeflops */\n"
         "                    var digits = (step > 0 && x !== 0) ? Math.ceil(Math.log10(Math.abs(x) / step)) + 1 : 3;\n"
         "                    return x.toPrecision(Math.min(15, Math.max(3, digits)));"),
}


def fix_graph_page(html_dir: Path) -> list[str]:
    """Apply FIXES to ``html_dir``'s graph page; returns what could not be fixed (and why), else nothing."""
    page = Path(html_dir) / PAGE
    if not page.is_file():
        return [f"{PAGE}: not in {html_dir}; graphs left as asv made them"]
    text = page.read_text()
    missed = []
    for what, (old, new) in FIXES.items():
        if new in text:                      # fixed already (a second `dashboard` over the same folder)
            continue
        if text.count(old) != 1:
            missed.append(f"{what}: not fixed (this asv's {PAGE} differs)")
            continue
        text = text.replace(old, new)
    page.write_text(text)
    return missed
