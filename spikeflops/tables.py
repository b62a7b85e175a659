"""Plain-text tables for terminals and markdown tables for pull-request comments."""

from __future__ import annotations

import re


def format_table(headers: list[str], rows: list[list[object]], markdown: bool = False) -> str:
    width = len(headers)                    # a short row (a failed case's) is padded, never an IndexError
    cells = [[str(h) for h in headers]] + [(["" if c is None else str(c) for c in row] + [""] * width)[:width]
                                           for row in rows]
    if markdown:                            # a name read from a results file must not add headings or HTML
        cells = [[markdown_cell(c) for c in row] for row in cells]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row):
        parts = [c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(row, widths)]
        return ("| " + " | ".join(parts) + " |") if markdown else "  ".join(parts).rstrip()

    sep = ("|" + "|".join("-" * (w + 2) for w in widths) + "|") if markdown else "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), sep] + [line(r) for r in cells[1:]])


_MARKUP = re.compile(r"([\\`*_\[\]()!~|])")
_LINKABLE = re.compile(r"(?i)(https?|ftp|javascript|data|mailto|file|www)(?=[:.])")


def markdown_cell(text: str) -> str:
    """``text`` (from a results file: anyone's words) as inert markdown: no HTML, no link or image, no
    mention, no code span or emphasis, no column or line break, no heading or list start. Marks are escaped;
    a mention or an address is broken by a zero-width space, which a reader does not see."""
    import html

    from .textsafe import printable

    text = " ".join(printable(str(text)).split())
    text = _LINKABLE.sub(lambda m: m[0][0] + "\u200b" + m[0][1:], text)
    text = html.escape(text, quote=False).replace("@", "@\u200b")
    text = _MARKUP.sub(r"\\\1", text)
    return "\\" + text if text[:1] in "#>-+=" and text else text


def _numeric(text: str) -> bool:
    try:
        float(text.rstrip("%x").replace(",", ""))
        return True
    except ValueError:
        return False


def si(value: float | None, unit: str = "", digits: int = 3) -> str:
    """1.23e12 -> '1.23 T' (+ unit)."""
    if value is None:
        return "-"
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.{digits}g} {prefix}{unit}".rstrip()
    return f"{value:.{digits}g} {unit}".rstrip()


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
