"""One order's journey as an SVG sequence diagram, drawn from ``orderflow.ops.sequence``'s
rows (the same rows as ``orderflow journey --format mermaid``).

Hand-drawn: lanes, arrows and notes are a few dozen lines of SVG, which a diagram
library would not make shorter, and the console must work offline. Colours come from
classes (console.css), not inline styles, so the page's Content-Security-Policy can
refuse inline styles.
"""

from __future__ import annotations

from html import escape
from typing import Any

from orderflow.ops.sequence import LANES, Row, clock, rows

GUTTER = 100  # the times, left of the first lane
LANE_W = 150
HEAD_Y, HEAD_H = 8, 30
TOP = HEAD_Y + HEAD_H + 34
ROW_H = 38
CHAR_W = 6.8  # about one character at the diagram's 11 px font (bold: the status notes)
WIDTH = GUTTER + LANE_W * len(LANES) + 10


def _x(lane: str) -> float:
    index = LANES.index(lane) if lane in LANES else len(LANES) - 1
    return GUTTER + LANE_W * index + LANE_W / 2


def svg(steps: list[dict[str, Any]]) -> str:
    drawn = rows(steps)
    width = WIDTH
    height = TOP + ROW_H * max(len(drawn), 1) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="journey" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" role="img" aria-label="the order\'s journey across the services">',
        "<defs>"
        '<marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8"'
        ' orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="head"/></marker>'
        '<marker id="head-failed" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8"'
        ' orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="head failed"/></marker>'
        "</defs>",
    ]
    for lane in LANES:
        x = _x(lane)
        slug = lane.replace(" ", "-")
        parts.append(
            f'<g class="lane lane-{slug}"><rect x="{x - LANE_W / 2 + 8}" y="{HEAD_Y}" width="{LANE_W - 16}"'
            f' height="{HEAD_H}" rx="6"/><text x="{x}" y="{HEAD_Y + 19}" text-anchor="middle">'
            f"{escape(lane)}</text>"
            f'<line x1="{x}" y1="{HEAD_Y + HEAD_H}" x2="{x}" y2="{height - 6}" class="lifeline"/></g>'
        )
    if not drawn:
        parts.append(f'<text x="{GUTTER}" y="{TOP}" class="remark">nothing recorded yet</text>')
    for i, row in enumerate(drawn):
        parts.append(_row(row, TOP + ROW_H * i))
    parts.append("</svg>")
    return "".join(parts)


def _row(row: Row, y: float) -> str:
    cls = f"row {row.tone}" + (" failed" if row.failed else "")
    title = f"{clock(row.at)} {row.label}" + (f" ({row.remark})" if row.remark else "")
    out = [f'<g class="{cls}"><title>{escape(title)}</title>']
    out.append(f'<text x="8" y="{y + 4}" class="time">{clock(row.at)}</text>')
    if row.target is None:
        text = row.label + (f" · {row.remark}" if row.remark else "")
        w = min(max(len(text) * CHAR_W + 16, 80), LANE_W * 3)
        # Centred on its lane, but kept clear of the times and inside the picture.
        x = min(max(_x(row.source), GUTTER + w / 2), WIDTH - 4 - w / 2)
        out.append(
            f'<rect x="{x - w / 2:.1f}" y="{y - 13}" width="{w:.1f}" height="24" rx="4" class="note"/>'
        )
        out.append(f'<text x="{x}" y="{y + 3}" text-anchor="middle" class="label">{escape(text)}</text>')
    else:
        x1, x2 = _x(row.source), _x(row.target)
        mid = (x1 + x2) / 2
        if row.failed and row.source == "bus":  # a dead letter: the delivery ends in a cross
            out.append(f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" class="arrow"/>')
            out.append(
                f'<path d="M{x2 - 6},{y - 6} L{x2 + 6},{y + 6} M{x2 - 6},{y + 6} L{x2 + 6},{y - 6}"'
                ' class="cross"/>'
            )
        else:
            head = "head-failed" if row.failed else "head"
            out.append(
                f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" class="arrow" marker-end="url(#{head})"/>'
            )
        out.append(
            f'<text x="{mid}" y="{y - 5}" text-anchor="middle" class="label">{escape(row.label)}</text>'
        )
        if row.remark:
            # A long error stays on one line; the row's title holds all of it.
            remark = escape(row.remark if len(row.remark) <= 110 else row.remark[:109] + "…")
            out.append(f'<text x="{mid}" y="{y + 13}" text-anchor="middle" class="remark">{remark}</text>')
    out.append("</g>")
    return "".join(out)
