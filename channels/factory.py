"""Build the channels for one incident from configuration.

A drill always gets sandbox-bound channels with the sandbox's own credentials, whatever live
credentials are configured: the decision is made here, where channels are built, not in the UI.
With `SANDBOX_URL` configured, live channels talk to the sandbox too (demo, training).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from channels.base import DEFAULT_TIMEOUT, Channel
from channels.facebook import FacebookChannel
from channels.sms import SmsChannel
from channels.website import PostStore, WebsiteChannel
from channels.x import XChannel

SOCIAL = {"x": XChannel, "facebook": FacebookChannel, "sms": SmsChannel}
REQUIRED = {
    "x": ("X_API_KEY", "X_API_SECRET", "X_ACCESS_TOKEN", "X_ACCESS_SECRET", "X_BEARER_TOKEN",
          "X_USERNAME"),
    "facebook": ("FACEBOOK_PAGE_ID", "FACEBOOK_PAGE_TOKEN"),
    "sms": ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"),
}


class DrillWithoutSandbox(RuntimeError):
    """A drill was about to build channels with no sandbox to send them to."""


@dataclass
class ChannelSet:
    """The channels one incident may use, and why the others are missing."""

    channels: dict[str, Channel] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    sandbox_url: str | None = None

    def get(self, name: str) -> Channel | None:
        """The channel called `name`, or None when it is not configured."""
        return self.channels.get(name)


@functools.cache
def sandbox_settings() -> Mapping[str, Any]:
    """The credentials the sandbox accepts, for every provider.

    Read-only and built once: every webhook asks, since a sandbox signature is one it accepts.
    """
    from channels.sandbox import PROVIDERS

    merged: dict[str, Any] = {}
    for module in PROVIDERS.values():
        merged.update(module.DEFAULTS)
    return MappingProxyType(merged)


def build_channels(
    settings: Mapping[str, Any],
    *,
    drill: bool,
    website_store: PostStore,
    timeout: float = DEFAULT_TIMEOUT,
) -> ChannelSet:
    """Build every channel for an incident; drills and a configured sandbox use the sandbox.

    Drills use `DRILL_SANDBOX_URL` (or `SANDBOX_URL`); live channels use `SANDBOX_URL` when set.
    """
    sandbox_url = settings.get("SANDBOX_URL") or None
    if drill:
        sandbox_url = settings.get("DRILL_SANDBOX_URL") or sandbox_url
        if not sandbox_url:
            raise DrillWithoutSandbox("a drill needs the sandbox: set CRISIS_DRILL_SANDBOX_URL")
    source = sandbox_settings() if sandbox_url else settings
    result = ChannelSet(sandbox_url=sandbox_url)
    for name, cls in SOCIAL.items():
        missing = [key for key in REQUIRED[name] if not source.get(key)]
        if missing:
            result.missing[name] = "not configured: " + ", ".join(missing)
            continue
        result.channels[name] = cls.from_settings(source, sandbox_url, timeout=timeout)
    result.channels["website"] = WebsiteChannel(website_store, settings["PUBLIC_URL"])
    return result
