"""The benchmark's results as rows (measurement, etcd, etcdlite, ratio, target) and their rendering
as a plain-text table and as JSON. Pure: callers print and write the files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.stats import ratio


@dataclass
class Row:
    """One measurement for both stores. A value of None means not measured; the note says why."""

    measurement: str
    unit: str
    etcd: float | None
    etcdlite: float | None
    etcd_note: str = ""  # e.g. PASS/FAIL, or why there is no value
    etcdlite_note: str = ""
    target: str = ""
    target_met: bool | None = None
    ratio: float | None = field(init=False)

    def __post_init__(self) -> None:
        self.ratio = ratio(self.etcdlite, self.etcd)


def format_value(value: float | None, note: str = "") -> str:
    if value is None:
        return note or "-"
    if float(value).is_integer() and abs(value) >= 10:
        text = f"{int(value):,}"
    elif abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {note}".strip() if note else text


def format_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_target(row: Row) -> str:
    if not row.target:
        return ""
    verdict = {True: "met", False: "NOT met", None: "not judged"}[row.target_met]
    return f"{row.target}: {verdict}"


def format_table(rows: Sequence[Row]) -> str:
    header = ("measurement", "etcd", "etcdlite", "etcdlite/etcd", "target")
    body = [
        (
            f"{r.measurement} ({r.unit})" if r.unit else r.measurement,
            format_value(r.etcd, r.etcd_note),
            format_value(r.etcdlite, r.etcdlite_note),
            format_ratio(r.ratio),
            format_target(r),
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        pairs = zip(cells[1:], widths[1:], strict=True)
        rest = [c.rjust(w) if i < 3 else c.ljust(w) for i, (c, w) in enumerate(pairs)]
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(cells) for cells in body)])


def to_json(rows: Sequence[Row], context: dict[str, Any], details: dict[str, Any]) -> str:
    return json.dumps({**context, "rows": [asdict(r) for r in rows], "details": details}, indent=2)
