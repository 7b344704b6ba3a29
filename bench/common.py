"""Shared by the benchmarks: the production topology, a bare baseline server, statistics."""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# PASSWORD: for callers.
from crisis.topology import BIN, PASSWORD, Process, Topology, free_port, wait_until  # noqa: E402,F401


def topology(**kwargs) -> Topology:
    """The production topology, on CRISIS_DATABASE_URL / CRISIS_REDIS_URL when they are set."""
    workdir = Path(tempfile.mkdtemp(prefix="crisis-bench-"))
    return Topology(workdir, database_url=os.environ.get("CRISIS_DATABASE_URL"),
                    redis_url=os.environ.get("CRISIS_REDIS_URL"), **kwargs)


def bare_server(workdir: Path, source: str, threads: int = 32, processes: int = 1):
    """Serve a bare Flask app (`source` defines `app`) under gunicorn as the console is served.

    A benchmark's baseline. Returns (process, port); stop the process when done.
    """
    (workdir / "bare_app.py").write_text(source)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRISIS_")}
    process = Process("bare", [str(BIN / "gunicorn"), "-w", str(processes), "--threads", str(threads),
                               "-b", f"127.0.0.1:{port}", "--timeout", "120", "--chdir", str(workdir),
                               "bare_app:app"], env, workdir / "bare.log").start()
    wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 404, 60,
               "bare app")
    return process, port


def wait_until_quiet(busy_below: float = 0.2, timeout: float = 60.0) -> float:
    """Wait until the CPUs were busy less than `busy_below` of a second (Linux, at most `timeout`).

    So that a baseline is not read while processes still starting or stopping share the cores.
    Returns the busy share last seen.
    """
    deadline = time.monotonic() + timeout
    while True:
        before = _cpu_times()
        time.sleep(1.0)
        after = _cpu_times()
        total = sum(after) - sum(before)
        busy = 1 - (after[3] + after[4] - before[3] - before[4]) / total if total else 0.0
        if busy < busy_below or time.monotonic() > deadline:
            return busy


def _cpu_times() -> list[int]:
    with open("/proc/stat") as stat:
        return [int(value) for value in stat.readline().split()[1:]]


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median": round(statistics.median(ordered), 3), "p95": round(p95, 3),
            "min": round(ordered[0], 3), "max": round(ordered[-1], 3)}


def emit(result: dict) -> None:
    """The benchmark's result: one JSON line, printed last."""
    print(json.dumps(result, sort_keys=True), flush=True)
