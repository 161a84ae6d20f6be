"""Small hand-made SVG charts for the HTML report: no plotting library, no script,
nothing fetched, so the report opens offline in any browser."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

W, H, PAD_L, PAD_B, PAD_T = 720, 240, 44, 36, 12


def stacked_bars(labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[float]]],
                 title: str) -> str:
    """Bars per label, each stacked from `series` (name, colour, values)."""
    totals = [sum(s[2][i] for s in series) for i in range(len(labels))]
    top = max([*totals, 1.0])
    n = max(len(labels), 1)
    plot_w, plot_h = W - PAD_L - 8, H - PAD_B - PAD_T
    bw = plot_w / n
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H + 24}" '
             f'viewBox="0 0 {W} {H + 24}" role="img" aria-label="{escape(title)}">',
             f'<rect x="0" y="0" width="{W}" height="{H + 24}" fill="#ffffff"/>',
             f'<line x1="{PAD_L}" y1="{PAD_T + plot_h}" x2="{W - 8}" y2="{PAD_T + plot_h}" '
             'stroke="#444"/>',
             f'<text x="4" y="{PAD_T + 8}" font-size="11">{top:g}</text>',
             f'<text x="4" y="{PAD_T + plot_h}" font-size="11">0</text>']
    for i, label in enumerate(labels):
        y = float(PAD_T + plot_h)
        for _name, colour, values in series:
            h = plot_h * values[i] / top
            y -= h
            parts.append(f'<rect x="{PAD_L + i * bw + 1:.1f}" y="{y:.1f}" '
                         f'width="{max(bw - 2, 1):.1f}" height="{h:.1f}" fill="{colour}"/>')
        if n <= 31 or i % max(1, n // 15) == 0:
            parts.append(f'<text x="{PAD_L + i * bw + bw / 2:.1f}" y="{PAD_T + plot_h + 14}" '
                         f'font-size="9" text-anchor="middle">{escape(label)}</text>')
    x = PAD_L
    for name, colour, _values in series:
        parts.append(f'<rect x="{x}" y="{H + 6}" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{x + 16}" y="{H + 16}" font-size="12">{escape(name)}</text>')
        x += 24 + 8 * len(name)
    parts.append("</svg>")
    return "".join(parts)
