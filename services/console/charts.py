"""Charts of the statistics page, drawn on the server: plain functions turning insights'
answers (`GET /v1/statistics`) into bar geometry for inline SVG (attributes only: the console's
CSP allows no inline style or script). A withheld cell has no bar and reads "suppressed", never
0; every chart is followed by its table."""

from dataclasses import dataclass, field
from typing import Any

PLOT = 360.0
"""Width of the plotting area in SVG units (the label column and the value text beside it)."""
ROW = 28
PALETTE = (
    "#0b4f8a",
    "#b35900",
    "#1b7a3a",
    "#8a1b6e",
    "#5a4a00",
    "#006d77",
    "#7a0015",
    "#3d3d99",
    "#4d4d4d",
    "#6b3e00",
    "#005f2f",
)
"""Dark enough for 3:1 against white (WCAG 1.4.11: graphical objects)."""


@dataclass
class Bar:
    label: str
    value: float | int | None
    suppressed: bool
    width: float = 0.0
    y: int = 0
    p90: float | None = None
    p90_x: float | None = None
    n: int | None = None


@dataclass
class BarChart:
    bars: list[Bar]
    height: int
    total: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def bar_chart(answer: dict[str, Any], dimension: str) -> BarChart:
    """One bar per cell of a one-way answer; times (with `p90`) get a tick at the 90th
    percentile, and the scale covers it."""
    bars = [
        Bar(
            label=str(cell[dimension]),
            value=cell["value"],
            suppressed=bool(cell["suppressed"]),
            p90=cell.get("p90"),
            n=cell.get("n"),
        )
        for cell in answer["cells"]
    ]
    top = max(
        [b.value for b in bars if b.value is not None]
        + [b.p90 for b in bars if b.p90 is not None]
        + [0],
    )
    for i, b in enumerate(bars):
        b.y = i * ROW
        if top and b.value is not None:
            b.width = round(PLOT * b.value / top, 1)
        if top and b.p90 is not None:
            b.p90_x = round(PLOT * b.p90 / top, 1)
    return BarChart(bars, len(bars) * ROW, answer.get("total"), answer.get("notes", []))


@dataclass
class Segment:
    category: str
    value: int
    x: float
    width: float
    colour: str


@dataclass
class StackedRow:
    label: str
    y: int
    segments: list[Segment]
    cells: dict[str, dict[str, Any]]
    withheld: int


@dataclass
class StackedChart:
    rows: list[StackedRow]
    categories: list[str]
    colours: dict[str, str]
    height: int


def stacked_chart(answer: dict[str, Any], rows: str, columns: str) -> StackedChart:
    """A two-way answer as one stacked bar per `rows` category, a segment per published
    `columns` cell (withheld cells are counted in `withheld`, not drawn)."""
    order: list[str] = []
    categories: list[str] = []
    by_row: dict[str, dict[str, dict[str, Any]]] = {}
    for cell in answer["cells"]:
        r, c = str(cell[rows]), str(cell[columns])
        if r not in by_row:
            order.append(r)
            by_row[r] = {}
        if c not in categories:
            categories.append(c)
        by_row[r][c] = cell
    colours = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(categories)}
    sums = [sum(cell["value"] or 0 for cell in by_row[r].values()) for r in order]
    top = max([*sums, 0])
    out = []
    for i, r in enumerate(order):
        x = 0.0
        segments = []
        for c in categories:
            cell = by_row[r].get(c)
            if cell is None or cell["value"] is None or not top:
                continue
            width = round(PLOT * cell["value"] / top, 1)
            segments.append(Segment(c, int(cell["value"]), x, width, colours[c]))
            x = round(x + width, 1)
        withheld = sum(1 for cell in by_row[r].values() if cell["suppressed"])
        out.append(StackedRow(r, i * ROW, segments, by_row[r], withheld))
    return StackedChart(out, categories, colours, len(out) * ROW)
