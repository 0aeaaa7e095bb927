"""Line plots as standalone SVG text: linear axes with ticks, one polyline per series, a legend.

    svg = line_plot("Transistors vs b", "accumulator bits b", "transistors",
                    [Series("wrap", [(6, 310), (8, 402)]), Series("exact (32-bit)", [(6, 900), (32, 900)], dashed=True)])
"""
import math
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
WIDTH, HEIGHT = 560, 360
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 40, 50


@dataclass
class Series:
    """One curve: a label, its (x, y) points in x order, and whether it is drawn dashed without markers."""
    label: str
    points: list = field(default_factory=list)
    dashed: bool = False


def nice_ticks(lo, hi, count=6):
    """About `count` round tick values covering [lo, hi] (steps of 1, 2 or 5 times a power of ten)."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < hi:
        ticks.append(round(value, 10))
    return ticks


def label(value):
    """Tick label: integers without a decimal point, thousands with a thin separator."""
    if abs(value - round(value)) < 1e-9:
        return f"{int(round(value)):,}".replace(",", "\u2009")
    return f"{value:g}"


def line_plot(title, x_label, y_label, series, x_ticks=None):
    """SVG text of a line plot of `series`; the y axis starts at 0, the x axis spans the data (or `x_ticks`)."""
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points]
    x_ticks = x_ticks or nice_ticks(min(xs), max(xs))
    y_ticks = nice_ticks(0, max(ys) * 1.05)
    x0, x1 = x_ticks[0], x_ticks[-1]
    y0, y1 = y_ticks[0], y_ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x):
        return LEFT + (x - x0) / (x1 - x0) * plot_w

    def py(y):
        return TOP + plot_h - (y - y0) / (y1 - y0) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
           f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
           f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="14">{escape(title)}</text>']
    for y in y_ticks:
        out.append(f'<line x1="{LEFT}" y1="{py(y):.1f}" x2="{LEFT + plot_w}" y2="{py(y):.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{LEFT - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{label(y)}</text>')
    for x in x_ticks:
        out.append(f'<line x1="{px(x):.1f}" y1="{TOP + plot_h}" x2="{px(x):.1f}" y2="{TOP + plot_h + 5}" '
                   f'stroke="black"/>')
        out.append(f'<text x="{px(x):.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">{label(x)}</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>')
    out.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 10}" text-anchor="middle">{escape(x_label)}</text>')
    out.append(f'<text x="16" y="{TOP + plot_h / 2}" text-anchor="middle" '
               f'transform="rotate(-90 16 {TOP + plot_h / 2})">{escape(y_label)}</text>')
    for i, s in enumerate(series):
        color = COLORS[i % len(COLORS)]
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in s.points)
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        out.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        if not s.dashed:
            out += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}"/>' for x, y in s.points]
    # Legend in the lower right corner, where curves that grow with x leave room.
    legend_w, legend_h = 150, 18 * len(series) + 8
    lx, top = LEFT + plot_w - legend_w - 8, TOP + plot_h - legend_h - 8
    out.append(f'<rect x="{lx}" y="{top}" width="{legend_w}" height="{legend_h}" fill="white" stroke="#999"/>')
    for i, s in enumerate(series):
        color = COLORS[i % len(COLORS)]
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        ly = top + 14 + 18 * i
        out.append(f'<line x1="{lx + 8}" y1="{ly}" x2="{lx + 32}" y2="{ly}" stroke="{color}" '
                   f'stroke-width="2"{dash}/>')
        out.append(f'<text x="{lx + 38}" y="{ly + 4}">{escape(s.label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
