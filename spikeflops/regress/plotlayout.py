"""Margins for a one-axes figure worked out from the widths of its texts.

`Figure.tight_layout` finds the same margins by laying out every text of the figure once more before the
real draw; over a report's 53 plots that layout pass was a fifth of the report's CPU. Here the widths come
from the font's advance widths (read once per process), so placing the axes costs no text layout at all.
`tests/test_report.py` holds the result against what tight_layout finds.
"""

from __future__ import annotations

import math

PAD_PT = 10.8                 # tight_layout's default padding: 1.08 font sizes of 10 pt
LINE = 1.2                    # a line of text is about 1.2 of its font size tall, descenders included
MIN_AXES_WIDTH_IN = 4.5       # a wider legend widens the figure instead of squeezing the data


class TextWidths:
    """Width in points of a text at a font size, from the default font's advance widths (kerning
    ignored: it narrows a line by about 1 %, and the padding covers it)."""

    def __init__(self):
        from matplotlib import font_manager
        from matplotlib.ft2font import FT2Font

        self._font = FT2Font(font_manager.findfont(font_manager.FontProperties()))
        self._font.set_size(100, 72)          # one pixel per point at 100 pt: advance / 100 = width per pt
        self._advance: dict[str, float] = {}

    def points(self, text: str, size: float) -> float:
        return max((self._line(line) for line in text.split("\n")), default=0.0) * size / 100.0

    def _line(self, line: str) -> float:
        total = 0.0
        for ch in line.replace("$", ""):      # mathtext markers, if a formatter adds them, take no room
            width = self._advance.get(ch)
            if width is None:
                width = self._advance[ch] = self._glyph_width(ch)
            total += width
        return total


    def _glyph_width(self, ch: str) -> float:
        """The advance of ``ch``; a character the font lacks (a machine named 東京, an emoji) is drawn as a
        box about as wide as an M, never an error."""
        import warnings

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return self._font.load_char(ord(ch)).linearHoriAdvance / 65536.0
        except RuntimeError:
            return self._glyph_width("M") if ch != "M" else 60.0


_WIDTHS: TextWidths | None = None


def text_widths() -> TextWidths:
    global _WIDTHS
    if _WIDTHS is None:
        _WIDTHS = TextWidths()
    return _WIDTHS


def place_axes(fig, ax) -> None:
    """Set the axes' margins so that its tick labels, axis labels, title and a legend anchored beside the
    axes (loc "upper left" at x just past 1) fit in the figure; widen the figure when the legend would
    leave the data less than MIN_AXES_WIDTH_IN."""
    import matplotlib
    from matplotlib import font_manager

    rc = matplotlib.rcParams
    widths = text_widths()
    width_in, height_in = fig.get_size_inches()

    def height(text_artist) -> float:
        text = text_artist.get_text()
        return LINE * text_artist.get_fontsize() * (text.count("\n") + 1) if text else 0.0

    # left: y tick labels, the tick and its pad, then the y label
    ticks = [t for t in ax.get_yticks() if min(ax.get_ylim()) <= t <= max(ax.get_ylim())]
    formatter = ax.yaxis.get_major_formatter()
    ytick_size = font_manager.FontProperties(size=rc["ytick.labelsize"]).get_size_in_points()
    ytick_w = max((widths.points(s, ytick_size) for s in formatter.format_ticks(ticks)), default=0.0)
    ylabel = ax.yaxis.label
    left = (PAD_PT + height(ylabel) + (rc["axes.labelpad"] if ylabel.get_text() else 0.0) + ytick_w
            + rc["ytick.major.pad"] + rc["ytick.major.size"])

    # bottom: rotated x tick labels stand as tall as (width sin a + height cos a), then the x label
    xtick_h = 0.0
    for label in ax.get_xticklabels():
        angle = math.radians(label.get_rotation())
        size = label.get_fontsize()
        xtick_h = max(xtick_h, widths.points(label.get_text(), size) * abs(math.sin(angle))
                      + LINE * size * abs(math.cos(angle)))
    xlabel = ax.xaxis.label
    bottom = (PAD_PT + height(xlabel) + (rc["axes.labelpad"] if xlabel.get_text() else 0.0) + xtick_h
              + rc["xtick.major.pad"] + rc["xtick.major.size"])

    # top: the title over its pad, or the y axis' offset text ("1e9") if that is taller
    offset = formatter.get_offset()
    top = PAD_PT + max(height(ax.title) + rc["axes.titlepad"], LINE * ytick_size + 4.0 if offset else 0.0)

    # right: a legend beside the axes (its frame, handle, gap, widest label), or just the padding
    right = PAD_PT
    legend = ax.get_legend()
    if legend is not None:
        size = legend.prop.get_size_in_points()
        label_w = max((widths.points(t.get_text(), size) for t in legend.get_texts()), default=0.0)
        right += (2 * legend.borderpad + legend.handlelength + legend.handletextpad) * size + label_w + 2.0
        anchor_x = legend.get_bbox_to_anchor().transformed(ax.transAxes.inverted()).x0
        gap = max(anchor_x - 1.0, 0.0)        # the anchor's distance past the axes, a fraction of its width
        right += gap * (width_in * 72.0 - left - right)

    data_w = width_in - (left + right) / 72.0
    if data_w < MIN_AXES_WIDTH_IN:
        width_in += MIN_AXES_WIDTH_IN - data_w
        fig.set_size_inches(width_in, height_in)
    fig.subplots_adjust(left=left / 72.0 / width_in, right=1.0 - right / 72.0 / width_in,
                        bottom=bottom / 72.0 / height_in, top=1.0 - top / 72.0 / height_in)
