"""Shared by the benchmarks: the production topology, and summary statistics."""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crisis.topology import PASSWORD, Topology  # noqa: E402,F401  (PASSWORD: for callers)


def topology(**kwargs) -> Topology:
    """The production topology, on CRISIS_DATABASE_URL / CRISIS_REDIS_URL when they are set."""
    workdir = Path(tempfile.mkdtemp(prefix="crisis-bench-"))
    return Topology(workdir, database_url=os.environ.get("CRISIS_DATABASE_URL"),
                    redis_url=os.environ.get("CRISIS_REDIS_URL"), **kwargs)


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median": round(statistics.median(ordered), 3), "p95": round(p95, 3),
            "min": round(ordered[0], 3), "max": round(ordered[-1], 3)}


def emit(result: dict) -> None:
    """The benchmark's result: one JSON line, printed last."""
    print(json.dumps(result, sort_keys=True), flush=True)
