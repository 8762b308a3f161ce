"""Small charts for the review pages: inline SVG drawn on the server — no script, no external
asset, nothing the pages' Content-Security-Policy would block (presentation attributes,
not `style`). Each chart is an image with a title that says in words what it shows (what a
screen reader reads), beside a table of the same figures on the page.

    bars("Opt-outs by channel", [Bar("one-click", 12), Bar("mailto", 3)])
    rates("Bounce rate, last 24 h", [Rate("tenant acme", 0.012, 0.05)], unit="%")
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

WIDTH = 560
ROW = 26
LABEL = 190
INK = "#1a1a1a"
BAR = "#0b5cad"
WARN = "#8a4b00"
OPEN = "#a11d1d"
RULE = "#5c6670"
_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    colour: str = BAR
    shown: str = ""  # the value as written beside the bar (default: the number)


@dataclass(frozen=True, slots=True)
class Rate:
    label: str
    rate: float  # a fraction
    trip: float  # the threshold, a fraction
    warn: float | None = None
    volume: int = 0


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _frame(title: str, words: str, height: int, body: list[str]) -> Markup:
    ident = f"chart{next(_ids)}"
    return Markup(
        f'<svg class="chart" role="img" aria-labelledby="{ident}" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{ident}">{_e(title)}: {_e(words)}</title>' + "".join(body) + "</svg>")


def _label(y: float, text: str) -> str:
    short = text if len(text) <= 28 else text[:27] + "…"
    return (f'<text x="{LABEL - 8}" y="{y:.1f}" text-anchor="end" font-size="13" '
            f'fill="{INK}">{_e(short)}</text>')


def bars(title: str, items: Sequence[Bar], unit: str = "") -> Markup:
    """One horizontal bar per item, scaled to the largest; the value written beside it."""
    if not items:
        return _frame(title, "nothing to show", ROW, [
            f'<text x="0" y="17" font-size="13" fill="{INK}">nothing to show</text>'])
    top = max((i.value for i in items), default=0) or 1
    span = WIDTH - LABEL - 110
    body = []
    for n, item in enumerate(items):
        y = n * ROW
        width = max(span * item.value / top, 1 if item.value else 0)
        shown = item.shown or f"{_number(item.value)}{unit}"
        body += [_label(y + 17, item.label),
                 f'<rect x="{LABEL}" y="{y + 5}" width="{width:.1f}" height="{ROW - 10}" '
                 f'fill="{item.colour}"/>',
                 f'<text x="{LABEL + width + 6:.1f}" y="{y + 17}" font-size="13" '
                 f'fill="{INK}">{_e(shown)}</text>']
    words = "; ".join(f"{i.label} {i.shown or _number(i.value) + unit}" for i in items)
    return _frame(title, words, ROW * len(items), body)


def rates(title: str, items: Sequence[Rate]) -> Markup:
    """Each scope's rate as a bar against its trip threshold (the dark rule) and warn level
    (the dashed one); a bar past the threshold is drawn in the alarm colour."""
    if not items:
        return bars(title, [])
    top = max(max(i.rate for i in items), max(i.trip for i in items)) * 1.15 or 1
    span = WIDTH - LABEL - 110
    body = []
    for n, item in enumerate(items):
        y = n * ROW
        colour = OPEN if item.rate > item.trip else (
            WARN if item.warn is not None and item.rate > item.warn else BAR)
        width = max(span * item.rate / top, 1 if item.rate else 0)
        trip_x = LABEL + span * item.trip / top
        body += [_label(y + 17, item.label),
                 f'<rect x="{LABEL}" y="{y + 5}" width="{width:.1f}" height="{ROW - 10}" '
                 f'fill="{colour}"/>',
                 f'<line x1="{trip_x:.1f}" x2="{trip_x:.1f}" y1="{y + 2}" y2="{y + ROW - 2}" '
                 f'stroke="{INK}" stroke-width="2"/>']
        if item.warn is not None:
            warn_x = LABEL + span * item.warn / top
            body.append(f'<line x1="{warn_x:.1f}" x2="{warn_x:.1f}" y1="{y + 2}" '
                        f'y2="{y + ROW - 2}" stroke="{RULE}" stroke-dasharray="3 2"/>')
        body.append(f'<text x="{LABEL + span + 8:.1f}" y="{y + 17}" font-size="13" '
                    f'fill="{INK}">{item.rate * 100:.2f} %</text>')
    words = "; ".join(f"{i.label} {i.rate * 100:.2f} % (trips above {i.trip * 100:.2f} %"
                      f"{', over ' + str(i.volume) + ' copies' if i.volume else ''})"
                      for i in items)
    return _frame(title, words, ROW * len(items), body)
