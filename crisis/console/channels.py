"""The channel status page: how each channel is connected, whether its credentials work, how it went.

One row per channel (x, facebook, sms, website) for live incidents, and the same for drills, which
always use the sandbox. A row says whether the channel is live, sandbox-bound or not configured
(the factory decides, as it does for sending), the result of the channel's cheap authenticated
`check()`, the remaining rate-limit budget where the provider reports one, and the newest success
and failure from the `deliveries` table.

Checks cost provider calls (X allows `GET /2/users/me` 75 times per 15 minutes), so their results
are recorded per process on a `CheckBoard` and re-run only when older than `CHECK_MAX_AGE`, when
the configuration changed, or when someone presses "Check now".
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from channels.base import Channel, ChannelStatus
from channels.factory import REQUIRED, ChannelSet, DrillWithoutSandbox, build_channels
from channels.website import PostStore
from crisis.extensions import db
from crisis.models import Delivery, DeliveryState, Incident, IncidentMode, Message

log = logging.getLogger(__name__)

ORDER = ("x", "facebook", "sms", "website")
CHECK_TIMEOUT = 3.0  # seconds per provider call: the page must not hang on a slow provider
CHECK_MAX_AGE = timedelta(minutes=5)
# Where each provider lives when it is not the sandbox (what the SDKs connect to).
PROVIDER_HOSTS = {
    "x": "https://api.twitter.com",
    "facebook": "https://graph.facebook.com",
    "sms": "https://api.twilio.com",
}
SANDBOX_PATHS = {"x": "/x", "facebook": "/graph", "sms": "/twilio"}
# Everything that changes which account a check talks to; hashed, never kept in clear.
FINGERPRINT_KEYS = tuple(sorted({key for keys in REQUIRED.values() for key in keys} | {
    "SANDBOX_URL", "PUBLIC_URL", "FACEBOOK_APP_SECRET", "FACEBOOK_GRAPH_VERSION", "TWILIO_FROM",
    "TWILIO_MESSAGING_SERVICE_SID",
}))
LIVE, DRILL = "live", "drill"


@dataclass(frozen=True)
class Budget:
    """What is left of one provider rate limit: calls (X) or a share of the quota (Facebook)."""

    scope: str  # "window" (X's 15-minute window), or Graph's usage header: "app", "pages", ...
    remaining: int | None = None  # calls left in the window
    remaining_percent: int | None = None  # share of the quota left (100 minus the highest usage)
    reset: datetime | None = None


@dataclass(frozen=True)
class CheckResult:
    """One run of a channel's `check()`, with when it ran and how long it took."""

    ok: bool
    detail: str
    checked_at: datetime
    seconds: float
    budget: tuple[Budget, ...] = ()

    @classmethod
    def from_status(cls, status: ChannelStatus, checked_at: datetime, seconds: float) -> CheckResult:
        """Keep the status, with Facebook's usage headers turned from the detail into a budget."""
        detail, budget = status.detail, []
        if status.rate_limit_remaining is not None or status.rate_limit_reset is not None:
            budget.append(Budget("window", remaining=status.rate_limit_remaining,
                                 reset=status.rate_limit_reset))
        text, marker, usage = detail.partition("; usage ")
        if marker:
            graph = _graph_budget(usage, status.rate_limit_reset)
            if graph is not None:
                detail, budget = text, [*graph]
        return cls(status.ok, detail, checked_at, seconds, tuple(budget))


@dataclass(frozen=True)
class LastError:
    """The newest failed delivery of a channel."""

    at: datetime | None
    error: str
    code: str | None


@dataclass
class ChannelRow:
    """One channel as the status page shows it."""

    name: str
    mode: str  # "live" | "sandbox" | "not_configured"
    target: str | None = None  # where it sends: the provider, the sandbox, the public pages
    missing: str | None = None  # the settings it lacks, when not configured
    check: CheckResult | None = None
    last_success: datetime | None = None
    last_error: LastError | None = None

    @property
    def configured(self) -> bool:
        """Whether the channel can send at all."""
        return self.mode != "not_configured"


@dataclass
class ChannelReport:
    """Everything the status page shows."""

    live: list[ChannelRow]
    drill: list[ChannelRow] = field(default_factory=list)
    sandbox_url: str | None = None
    drill_error: str | None = None  # why drills cannot run (no sandbox configured)


class CheckBoard:
    """The latest check per (live|drill, channel), per process, tied to the configuration."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._results: dict[tuple[str, str], tuple[str, CheckResult]] = {}

    def get(self, kind: str, name: str, fingerprint: str) -> CheckResult | None:
        with self._lock:
            entry = self._results.get((kind, name))
        return entry[1] if entry and entry[0] == fingerprint else None

    def put(self, kind: str, name: str, fingerprint: str, result: CheckResult) -> None:
        with self._lock:
            self._results[(kind, name)] = (fingerprint, result)


def board_for(app) -> CheckBoard:
    """The app's check board (one per process)."""
    return app.extensions.setdefault("crisis_channel_checks", CheckBoard())


def fingerprint(settings: Mapping[str, Any]) -> str:
    """A hash of the settings that decide which account a check reaches."""
    values = [[key, str(settings.get(key) or "")] for key in FINGERPRINT_KEYS]
    return hashlib.sha256(json.dumps(values).encode()).hexdigest()


# Checks


def check_channels(
    channels: Mapping[str, Channel], timeout: float = CHECK_TIMEOUT
) -> dict[str, CheckResult]:
    """Run every channel's `check()` at once; a check that does not answer in time fails.

    Each channel carries its own per-request timeout; `timeout` bounds the whole wait, so a
    provider that hangs cannot hold the page longer than that (plus a little).
    """
    if not channels:
        return {}
    started = time.monotonic()
    now = datetime.now(UTC)
    pool = ThreadPoolExecutor(max_workers=len(channels), thread_name_prefix="channel-check")
    futures = {name: pool.submit(_timed_check, channel) for name, channel in channels.items()}
    results: dict[str, CheckResult] = {}
    try:
        for name, future in futures.items():
            remaining = max(0.0, timeout * 2 - (time.monotonic() - started))
            try:
                status, seconds = future.result(timeout=remaining)
            except FutureTimeout:
                status = ChannelStatus(ok=False, detail=f"no answer within {timeout:g} s")
                seconds = time.monotonic() - started
            results[name] = CheckResult.from_status(status, now, seconds)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return results


def _timed_check(channel: Channel) -> tuple[ChannelStatus, float]:
    started = time.monotonic()
    try:
        status = channel.check()
    except Exception as exc:  # noqa: BLE001 - shown on the page instead of breaking it
        # Adapters turn provider errors into a failed status; anything else is a bug, logged.
        log.warning("%s check raised %s", channel.name, type(exc).__name__, exc_info=True)
        status = ChannelStatus(ok=False, detail=f"check failed: {type(exc).__name__}")
    return status, time.monotonic() - started


def _graph_budget(usage: str, reset: datetime | None) -> list[Budget] | None:
    """Turn Graph's usage headers (percentages used) into what is left, per scope."""
    try:
        headers = json.loads(usage)
    except ValueError:
        return None
    if not isinstance(headers, dict):
        return None
    budget = []
    app = headers.get("x-app-usage")
    if isinstance(app, dict):
        budget.append(Budget("app", remaining_percent=_left(app), reset=reset))
    for name in ("x-page-usage", "x-business-use-case-usage"):
        value = headers.get(name)
        if name == "x-page-usage" and isinstance(value, dict):
            budget.append(Budget("page", remaining_percent=_left(value), reset=reset))
        elif isinstance(value, dict):  # {page_id: [{"type": "pages", "call_count": ...}]}
            for entries in value.values():
                for entry in entries if isinstance(entries, list) else []:
                    if isinstance(entry, dict):
                        budget.append(Budget(str(entry.get("type") or "business"),
                                             remaining_percent=_left(entry), reset=reset))
    return budget


def _left(usage: Mapping[str, Any]) -> int:
    """Graph throttles when any of the three reaches 100%: what is left is 100 minus the highest."""
    used = []
    for key in ("call_count", "total_time", "total_cputime"):
        try:
            used.append(int(usage.get(key) or 0))
        except (TypeError, ValueError):
            continue
    return max(0, 100 - max(used, default=0))


# History from the deliveries table


def last_outcomes(mode: IncidentMode) -> dict[str, tuple[datetime | None, LastError | None]]:
    """The newest accepted delivery and the newest failed one per channel, for one incident mode."""
    of_mode = (
        sa.select(Delivery)
        .join(Message, Delivery.message_id == Message.id)
        .join(Incident, Message.incident_id == Incident.id)
        .where(Incident.mode == mode)
    )
    successes = dict(db.session.execute(
        sa.select(Delivery.channel, sa.func.max(Delivery.accepted_at))
        .join(Message, Delivery.message_id == Message.id)
        .join(Incident, Message.incident_id == Incident.id)
        .where(Incident.mode == mode, Delivery.accepted_at.is_not(None))
        .group_by(Delivery.channel)
    ).all())
    outcomes: dict[str, tuple[datetime | None, LastError | None]] = {}
    for name in ORDER:
        failed = db.session.scalars(
            of_mode.where(
                Delivery.channel == name,
                Delivery.state == DeliveryState.failed,
                Delivery.last_error.is_not(None),
            )
            .order_by(Delivery.updated_at.desc(), Delivery.id.desc())
            .limit(1)
        ).first()
        error = (
            LastError(failed.updated_at or failed.attempted_at, failed.last_error or "", failed.error_code)
            if failed
            else None
        )
        outcomes[name] = (successes.get(name), error)
    return outcomes


# The report


def _rows(channel_set: ChannelSet, settings: Mapping[str, Any]) -> list[ChannelRow]:
    rows = []
    for name in ORDER:
        channel = channel_set.get(name)
        if channel is None:
            reason = channel_set.missing.get(name) or ""
            rows.append(ChannelRow(name, "not_configured", missing=reason.removeprefix("not configured: ")))
        elif name == "website":
            rows.append(ChannelRow(name, "live", target=str(settings.get("PUBLIC_URL") or "")))
        elif channel.sandbox and channel_set.sandbox_url:
            rows.append(ChannelRow(name, "sandbox",
                                   target=channel_set.sandbox_url.rstrip("/") + SANDBOX_PATHS[name]))
        else:
            rows.append(ChannelRow(name, "live", target=PROVIDER_HOSTS.get(name)))
    return rows


def build_sets(
    settings: Mapping[str, Any], website_store: PostStore, timeout: float = CHECK_TIMEOUT
) -> tuple[ChannelSet, ChannelSet | None, str | None]:
    """The live channels and the drill channels, built by the factory exactly as for sending."""
    live = build_channels(settings, drill=False, website_store=website_store, timeout=timeout)
    try:
        drill = build_channels(settings, drill=True, website_store=website_store, timeout=timeout)
    except DrillWithoutSandbox as exc:
        return live, None, str(exc)
    return live, drill, None


def channel_report(
    settings: Mapping[str, Any],
    *,
    website_store: PostStore | None = None,
    board: CheckBoard | None = None,
    refresh: bool | None = None,
    history: bool = True,
    timeout: float = CHECK_TIMEOUT,
) -> ChannelReport:
    """Build the status page's report from `settings` (the app's config, or any mapping).

    `refresh`: True runs every check now, False shows only what `board` recorded, None (the page
    load) runs the checks that have no recent result for this configuration. Without a board
    nothing is recorded and None means: check now. `history` reads the deliveries table (needs
    an app context).
    """
    if website_store is None:
        from crisis.public.store import DatabasePostStore

        website_store = DatabasePostStore()
    live_set, drill_set, drill_error = build_sets(settings, website_store, timeout)
    report = ChannelReport(
        live=_rows(live_set, settings),
        drill=_rows(drill_set, settings) if drill_set else [],
        sandbox_url=drill_set.sandbox_url if drill_set else None,
        drill_error=drill_error,
    )
    sets = {LIVE: (live_set, report.live)}
    if drill_set is not None:
        sets[DRILL] = (drill_set, report.drill)
    _attach_checks(sets, settings, board, refresh, timeout)
    if history:
        for kind, rows in ((LIVE, report.live), (DRILL, report.drill)):
            outcomes = last_outcomes(IncidentMode.live if kind == LIVE else IncidentMode.drill)
            for row in rows:
                row.last_success, row.last_error = outcomes.get(row.name, (None, None))
    return report


def _attach_checks(
    sets: Mapping[str, tuple[ChannelSet, list[ChannelRow]]],
    settings: Mapping[str, Any],
    board: CheckBoard | None,
    refresh: bool | None,
    timeout: float,
) -> None:
    key = fingerprint(settings)
    now = datetime.now(UTC)
    due: dict[tuple[str, str], Channel] = {}
    for kind, (channel_set, rows) in sets.items():
        for row in rows:
            channel = channel_set.get(row.name)
            if channel is None or row.name == "website":
                continue  # nothing to check: not configured, or our own pages (no credentials)
            recorded = board.get(kind, row.name, key) if board else None
            fresh = recorded is not None and now - recorded.checked_at < CHECK_MAX_AGE
            if refresh is True or (refresh is None and not fresh):
                due[(kind, row.name)] = channel
            else:
                row.check = recorded
    # One pool for live and drill alike: the page waits for the slowest check, not their sum.
    results = check_channels({f"{kind}:{name}": ch for (kind, name), ch in due.items()}, timeout)
    for (kind, name) in due:
        result = results[f"{kind}:{name}"]
        if board is not None:
            board.put(kind, name, key, result)
        for row in sets[kind][1]:
            if row.name == name:
                row.check = result
