"""A plain table every report can turn into: rendered by the CLI with rich or as CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def pct(share: float | None, digits: int = 0) -> str:
    if share is None:
        return "-"
    return f"{share * 100:.{digits}f}%"


def ratio(part: int | float, whole: int | float) -> float | None:
    return part / whole if whole else None


def to_csv(columns: list[str], rows: list[list[Any]] | list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        values = [row.get(c) for c in columns] if isinstance(row, dict) else list(row)
        writer.writerow(["" if v is None else v for v in values])
    return out.getvalue()
