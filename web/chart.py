"""A bar chart of jobs per minute as inline SVG, drawn on the server (no script, no inline style)."""

from __future__ import annotations

import time
from html import escape

WIDTH, HEIGHT, AXIS = 600, 120, 14
"""Drawing size in SVG units; AXIS is the strip under the bars for the time labels."""


def _clock(minute: int) -> str:
    return time.strftime("%H:%M", time.gmtime(minute * 60))


def jobs_chart(rows: list[tuple[int, int, int]]) -> str:
    """One stacked bar (failed on top of done) per (minute, done, failed) row, oldest on the left.

    Colours are SVG presentation attributes, and classes let web/static/admin.css restyle them:
    the page's CSP (style-src 'self') forbids style attributes, not these."""
    top = max((done + failed for _, done, failed in rows), default=0) or 1
    slot = WIDTH / max(len(rows), 1)
    plot = HEIGHT - AXIS
    parts = [f'<svg class="jobs-chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
             f'role="img" aria-label="jobs finished per minute, last {len(rows)} minutes" '
             'xmlns="http://www.w3.org/2000/svg">',
             f'<line class="axis" x1="0" y1="{plot}" x2="{WIDTH}" y2="{plot}" stroke="#888" stroke-width="1"/>']
    for index, (minute, done, failed) in enumerate(rows):
        x = index * slot + 1
        done_h, failed_h = plot * done / top, plot * failed / top
        label = escape(f"{_clock(minute)} UTC: {done} done, {failed} failed")
        parts.append(f"<g><title>{label}</title>")
        if done:
            parts.append(f'<rect class="bar-done" x="{x:.1f}" y="{plot - done_h:.1f}" width="{slot - 2:.1f}" '
                         f'height="{done_h:.1f}" fill="#1e7d4a"/>')
        if failed:
            parts.append(f'<rect class="bar-failed" x="{x:.1f}" y="{plot - done_h - failed_h:.1f}" '
                         f'width="{slot - 2:.1f}" height="{failed_h:.1f}" fill="#b3261e"/>')
        parts.append("</g>")
    for index in range(0, len(rows), 15):  # a time label every quarter hour of bars
        parts.append(f'<text class="tick" x="{index * slot + 1:.1f}" y="{HEIGHT - 2}" font-size="10" '
                     f'fill="#888">{_clock(rows[index][0])}</text>')
    parts.append(f'<text class="peak" x="2" y="10" font-size="10" fill="#888">max {top}/min</text>')
    parts.append("</svg>")
    return "\n".join(parts)
