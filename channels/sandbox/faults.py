"""Faults the sandbox can be told to inject, per provider: latency, errors, 429 windows, outages.

Each provider blueprint calls `apply(provider)` before handling a request; when a fault applies it
gets back what the provider would answer (the provider module shapes the error body).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

KINDS = ("rate_limit", "server_error", "timeout", "outage")


@dataclass
class Fault:
    """One provider's fault plan. Times are epoch seconds; 0 means not active."""

    latency_ms: int = 0
    error_rate: float = 0.0  # share of calls answered with a 5xx
    rate_limit_until: float = 0.0  # 429 with reset headers until then
    server_error_until: float = 0.0  # 503 until then
    timeout_until: float = 0.0  # hang longer than any client timeout until then
    outage_until: float = 0.0  # connection-level failure (answered 503 with no body) until then
    timeout_seconds: float = 30.0
    extra: dict[str, Any] = field(default_factory=dict)


class FaultBoard:
    """Thread-safe fault plans for every provider."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plans: dict[str, Fault] = {}
        self._counts: dict[str, dict[str, int]] = {}

    def set(self, provider: str, spec: dict[str, Any], now: float | None = None) -> Fault:
        """Replace a provider's plan. Durations in `spec` (`*_for` seconds) become deadlines."""
        now = time.time() if now is None else now
        fault = Fault(
            latency_ms=int(spec.get("latency_ms", 0)),
            error_rate=float(spec.get("error_rate", 0.0)),
            timeout_seconds=float(spec.get("timeout_seconds", 30.0)),
        )
        for kind in KINDS:
            seconds = float(spec.get(f"{kind}_for", 0))
            if seconds > 0:
                setattr(fault, f"{kind}_until", now + seconds)
        with self._lock:
            self._plans[provider] = fault
        return fault

    def get(self, provider: str) -> Fault:
        with self._lock:
            return self._plans.get(provider) or Fault()

    def clear(self) -> None:
        with self._lock:
            self._plans.clear()
            self._counts.clear()

    def counts(self) -> dict[str, dict[str, int]]:
        """How often each fault was served, per provider (benchmarks report the 429s)."""
        with self._lock:
            return {provider: dict(kinds) for provider, kinds in self._counts.items()}

    def _count(self, provider: str, kind: str) -> None:
        with self._lock:
            kinds = self._counts.setdefault(provider, {})
            kinds[kind] = kinds.get(kind, 0) + 1

    def decide(self, provider: str, now: float | None = None) -> tuple[str | None, float]:
        """Return (fault kind or None, seconds until it ends), sleeping the plan's latency first."""
        fault = self.get(provider)
        if fault.latency_ms:
            time.sleep(fault.latency_ms / 1000)
        now = time.time() if now is None else now
        for kind in ("outage", "timeout", "rate_limit", "server_error"):
            until = getattr(fault, f"{kind}_until")
            if until > now:
                self._count(provider, kind)
                if kind == "timeout":
                    time.sleep(fault.timeout_seconds)
                return kind, until - now
        if fault.error_rate and random.random() < fault.error_rate:
            self._count(provider, "server_error")
            return "server_error", 0.0
        return None, 0.0
