"""The composer's per-channel preview: the exact texts that would go out, and how each one counts.

Pure (no Flask, no database), so the API can serve it on every keystroke and the channel adapters
can build their texts with the same `compose`.

How a text is put together, for every channel: the drill marker first, then the body (or the
channel's override), then the link to the update's public page (after a space on X, where every
character counts, on its own line elsewhere). The link is left out where the body already contains
it, and for SMS also where it would cost an extra segment: an SMS is paid per segment and sent to
every subscriber, and the X and Facebook texts already carry the link. The website text is the
update's own page, so it has none.

Readability is scored on what the team wrote (the body), not on the marker or the link, so its
positions index the body; the SMS positions index the SMS text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from channels.base import Draft
from channels.text import gsm_replacements, readability, sms_info, x_length

CHANNELS = ("x", "facebook", "sms", "website")
FACEBOOK_LIMIT = 63206  # characters in a Page post
LINK_SEPARATORS = {"x": " ", "facebook": "\n\n", "sms": "\n"}


def compose(draft: Draft, channel: str) -> str:
    """Return the exact text `channel` sends for `draft`: marker, body, link where it fits."""
    text = draft.text_for(channel)
    # The website text is the update's own page: it needs no link to itself.
    if channel not in LINK_SEPARATORS or not draft.link or draft.link in text:
        return text
    with_link = f"{text}{LINK_SEPARATORS[channel]}{draft.link}"
    if channel == "sms" and sms_info(with_link).segments > sms_info(text).segments:
        return text
    return with_link


def preview(
    body: str,
    channels: Iterable[str],
    link: str | None = None,
    marker: str = "",
    overrides: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Preview `body` on each requested channel, plus its readability.

    Returns {channel: {...}} for the requested channels among x, facebook, sms and website, and
    always "readability". Raises ValueError for an unknown channel name.
    """
    requested = list(dict.fromkeys(channels))
    unknown = [name for name in requested if name not in CHANNELS]
    if unknown:
        raise ValueError(f"unknown channel(s) {unknown}; known: {list(CHANNELS)}")
    draft = Draft(body=body, link=link, marker=marker, overrides=dict(overrides or {}))
    result = {name: _PREVIEWS[name](compose(draft, name)) for name in requested}
    result["readability"] = _readability(body)
    return result


def _x(text: str) -> dict[str, Any]:
    counted = x_length(text)
    return {
        "weighted_length": counted.weighted_length,
        "valid": counted.valid,
        "limit": counted.limit,
        "text": text,
    }


def _sms(text: str) -> dict[str, Any]:
    info = sms_info(text)
    return {
        "encoding": info.encoding,
        "segments": info.segments,
        "units": info.units,
        "ucs2_chars": info.ucs2_chars,
        "replacements": gsm_replacements(text),
        "text": text,
    }


def _facebook(text: str) -> dict[str, Any]:
    return {
        "length": len(text),
        "valid": 0 < len(text) <= FACEBOOK_LIMIT,
        "limit": FACEBOOK_LIMIT,
        "text": text,
    }


def _website(text: str) -> dict[str, Any]:
    return {"length": len(text), "text": text}


def _readability(body: str) -> dict[str, Any]:
    scored = readability(body)
    return {
        "flesch_douma": scored.flesch_douma,
        "level": scored.level,
        "long_sentences": scored.long_sentences,
        "long_words": scored.long_words,
    }


_PREVIEWS: dict[str, Callable[[str], dict[str, Any]]] = {
    "x": _x,
    "facebook": _facebook,
    "sms": _sms,
    "website": _website,
}
