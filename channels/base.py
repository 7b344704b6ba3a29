"""The contract every channel adapter follows.

An adapter turns one approved text into one provider call and reports what happened. It never
touches the database or Socket.IO, always sets timeouts, and raises typed errors instead of logging
and carrying on: the caller (a Celery task) decides whether to retry, fail or reconcile.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

DEFAULT_TIMEOUT = 10.0  # seconds; every provider call has one


@dataclass(frozen=True)
class Draft:
    """What the team wrote: one body, an optional link to the public page, per-channel overrides."""

    body: str
    link: str | None = None
    language: str = "nl"
    marker: str = ""  # the exercise marker ("OEFENING:") a drill puts in front of every text
    overrides: dict[str, str] = field(default_factory=dict)

    def text_for(self, channel: str) -> str:
        """The text for one channel: its override if any, else the body, with the marker first."""
        text = self.overrides.get(channel) or self.body
        if self.marker and not text.startswith(self.marker):
            text = f"{self.marker} {text}"
        return text


@dataclass(frozen=True)
class Rendering:
    """A channel's exact outgoing text and whether it fits the channel's limits."""

    channel: str
    text: str
    length: int  # in the channel's own unit (X weighted length, SMS units, characters)
    limit: int
    valid: bool
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Receipt:
    """The provider's acknowledgement: its id for what we sent and, where it has one, a URL."""

    provider_id: str
    url: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outbound:
    """One provider call's worth of work.

    `key` identifies the attempt on our side (used to reconcile); `to` is the recipient for SMS;
    `reply_to` is the receipt this post answers (X thread, Facebook comment); `attempted_at` bounds
    the search when `find` asks the provider whether an uncertain attempt landed.
    """

    key: str
    text: str
    to: str | None = None
    link: str | None = None
    title: str | None = None
    reply_to: Receipt | None = None
    attempted_at: datetime | None = None
    status_callback: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class ChannelError(Exception):
    """Base of every error an adapter raises."""


class TransientChannelError(ChannelError):
    """Try again later; `retry_after` is the provider's own wait in seconds when it gave one.

    `uncertain` is True when the request may have reached the provider (a read timeout): the
    caller must ask the provider (`find`) before sending again, never resend blindly.
    """

    def __init__(self, message: str, retry_after: float | None = None, uncertain: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.uncertain = uncertain


class PermanentChannelError(ChannelError):
    """Retrying will not help; `code` is the provider's reason (an error code or a short name)."""

    def __init__(self, message: str, code: str = "permanent"):
        super().__init__(message)
        self.code = str(code)


@dataclass(frozen=True)
class ChannelStatus:
    """The result of a cheap authenticated call, for the console's channel status page."""

    ok: bool
    detail: str = ""
    rate_limit_remaining: int | None = None
    rate_limit_reset: datetime | None = None


class Channel(abc.ABC):
    """One provider. Limits are class attributes so previews need no instance."""

    name: ClassVar[str]
    max_length: ClassVar[int]
    can_edit: ClassVar[bool] = False

    sandbox: bool = False  # True when this instance talks to the sandbox

    @classmethod
    @abc.abstractmethod
    def render(cls, draft: Draft) -> Rendering:
        """Build the exact text this channel sends for `draft`; pure, no I/O."""

    @abc.abstractmethod
    def publish(self, outbound: Outbound) -> Receipt:
        """Send `outbound`; return the provider's receipt or raise a ChannelError."""

    def edit(self, receipt: Receipt, outbound: Outbound) -> Receipt:
        """Change what was published, where the provider allows it."""
        raise PermanentChannelError(f"{self.name} cannot edit a published text", "edit_unsupported")

    @abc.abstractmethod
    def retract(self, receipt: Receipt) -> None:
        """Take a published text back (delete or mark withdrawn)."""

    @abc.abstractmethod
    def find(self, outbound: Outbound) -> Receipt | None:
        """Ask the provider whether `outbound` already landed (after a crash or timeout)."""

    def check(self) -> ChannelStatus:
        """A cheap authenticated call that proves the credentials work."""
        return ChannelStatus(ok=True, detail="no check for this channel")
