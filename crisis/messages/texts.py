"""What exactly goes out: per-channel texts, the recipient snapshot and the approval hash.

The approver approves a hash of exactly these (texts per channel and language, channels, areas,
recipient count); anything that changes one of them changes the hash and voids the approval.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import sqlalchemy as sa
from flask import current_app

from channels.base import Draft
from channels.factory import SOCIAL
from channels.website import WebsiteChannel
from crisis.extensions import db
from crisis.models import Incident, Message, Subscriber, SubscriberStatus
from crisis.runbooks.schema import placeholders_in

RENDERERS = {**SOCIAL, "website": WebsiteChannel}


def updates_url(incident: Incident) -> str:
    """Where an incident's update pages live; an update's page is this plus its message id."""
    base = current_app.config["PUBLIC_URL"].rstrip("/")
    return f"{base}/incidents/{incident.slug}/updates/"


def update_url(incident: Incident, message_id: int) -> str:
    """The public page of one update; known before sending, so it is part of what is approved."""
    return f"{updates_url(incident)}{message_id}"


def marker(incident: Incident, language: str) -> str:
    """The exercise marker a drill puts first on every text ('' for live incidents)."""
    if not incident.is_drill:
        return ""
    markers = current_app.config["DRILL_MARKERS"]
    return markers.get(language) or markers["nl"]


def draft_for(message: Message, language: str | None = None) -> Draft:
    """The Draft one language's recipients get (translations fall back to the main body)."""
    language = language or message.language
    body = message.body if language == message.language else (
        message.translations.get(language) or message.body
    )
    overrides = message.overrides if language == message.language else {}
    return Draft(
        body=body,
        link=update_url(message.incident, message.id),
        language=language,
        marker=marker(message.incident, language),
        overrides=dict(overrides or {}),
    )


def languages(message: Message) -> list[str]:
    return [message.language, *sorted(k for k, v in message.translations.items() if v)]


def rendered(message: Message) -> dict[str, dict[str, Any]]:
    """Every channel's exact text per language, with its counters."""
    result: dict[str, dict[str, Any]] = {}
    for channel in message.channels:
        renderer = RENDERERS[channel]
        per_language = {}
        for language in languages(message) if channel == "sms" else [message.language]:
            rendering = renderer.render(draft_for(message, language))
            per_language[language] = {
                "text": rendering.text,
                "length": rendering.length,
                "limit": rendering.limit,
                "valid": rendering.valid,
                **rendering.details,
            }
        result[channel] = per_language
    return result


def recipient_ids(message: Message) -> list[int]:
    """Active subscribers in the message's areas; drills use synthetic ones only."""
    if "sms" not in message.channels or not message.area_ids:
        return []
    query = sa.select(Subscriber.id, Subscriber.area_ids).where(
        Subscriber.status == SubscriberStatus.active,
        Subscriber.synthetic.is_(message.incident.is_drill),
    )
    wanted = set(message.area_ids)
    return sorted(sid for sid, areas in db.session.execute(query) if wanted & set(areas or []))


def approval_hash(message: Message) -> str:
    payload = {
        "kind": message.kind.value,
        "texts": {c: {lang: r["text"] for lang, r in v.items()} for c, v in rendered(message).items()},
        "channels": sorted(message.channels),
        "areas": sorted(message.area_ids),
        "recipients": message.recipient_count,
        "scheduled_for": message.scheduled_for.isoformat() if message.scheduled_for else None,
        "supersedes": message.supersedes_id,
        "delete_original": message.delete_original,
    }
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def problems(message: Message) -> list[str]:
    """Why this message cannot be submitted as it is (empty when it can)."""
    found = []
    if not message.body.strip():
        found.append("body: empty")
    if not message.channels:
        found.append("channels: choose at least one")
    if "sms" in message.channels and not message.area_ids:
        found.append("areas: SMS needs at least one area")
    for name, text in [("body", message.body), *[(f"translations.{k}", v) for k, v in
                                                  message.translations.items()],
                       *[(f"overrides.{k}", v) for k, v in message.overrides.items()]]:
        unfilled = sorted(placeholders_in(text or ""))  # a runbook template's `{kern}`, `{tijd}`
        if unfilled:
            found.append(f"{name}: fill in " + ", ".join("{" + p + "}" for p in unfilled))
    for channel, per_language in rendered(message).items():
        for language, info in per_language.items():
            if not info["valid"]:
                found.append(f"{channel} ({language}): too long ({info['length']} of {info['limit']})")
    return found
