"""Shared by the benchmarks: the production topology, API clients and summary statistics."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crisis.topology import BIN, Topology  # noqa: E402

PASSWORD = "benchmark password 2026"


def topology(**kwargs) -> Topology:
    """The production topology, on CRISIS_DATABASE_URL / CRISIS_REDIS_URL when they are set."""
    workdir = Path(tempfile.mkdtemp(prefix="crisis-bench-"))
    return Topology(workdir, database_url=os.environ.get("CRISIS_DATABASE_URL"),
                    redis_url=os.environ.get("CRISIS_REDIS_URL"), **kwargs)


def crisis_cli(top: Topology, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run([str(BIN / "crisis"), *args], env=top.env(), input=stdin, text=True,
                            capture_output=True, check=True)
    return result.stdout


class Api(requests.Session):
    """A bearer-token client for /api/v1."""

    def __init__(self, base: str, token: str):
        super().__init__()
        self.base = base
        self.headers["Authorization"] = f"Bearer {token}"

    def request(self, method, url, *args, **kwargs):
        response = super().request(method, self.base + url, *args, timeout=30, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {url}: {response.status_code} {response.text[:300]}")
        return response


def api_user(top: Topology, email: str, role: str) -> Api:
    crisis_cli(top, "users", "create", email, "--role", role, stdin=PASSWORD + "\n")
    token = crisis_cli(top, "tokens", "create", email, "--days", "1").strip().splitlines()[-1]
    return Api(top.web_url + "/api/v1", token)


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median": round(statistics.median(ordered), 3), "p95": round(p95, 3),
            "min": round(ordered[0], 3), "max": round(ordered[-1], 3)}


def emit(result: dict) -> None:
    """The benchmark's result: one JSON line, printed last."""
    print(json.dumps(result, sort_keys=True), flush=True)
