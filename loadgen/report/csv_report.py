"""CSV of a result's per-second time series (one row per second since t0, warm-up and drain included)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

COLUMNS = ["t_s", "phase", "offered", "completed", "errors", "in_flight", "p50_ms", "p99_ms"]


def write_csv(result: dict[str, Any], path: str | Path) -> None:
    p = Path(path)
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for row in result.get("timeseries", []):
            w.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in COLUMNS})
