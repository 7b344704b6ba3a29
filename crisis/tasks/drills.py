"""Drill injects: rows with due times that the sweep plays through the sandbox into the real
webhook paths, so the reaction feed works exactly as in a real incident."""

from __future__ import annotations

import logging
from datetime import timedelta

import requests
import sqlalchemy as sa
from celery import shared_task
from flask import current_app

from crisis.channel_runtime import channels_for
from crisis.extensions import db
from crisis.models import (
    Delivery,
    DeliveryState,
    DrillInject,
    Incident,
    IncidentMode,
    InjectState,
    Message,
    Subscriber,
)
from crisis.models.types import utcnow

log = logging.getLogger(__name__)
# Far longer than a play takes (one sandbox call per reaction, 10 s timeout each).
PLAY_LEASE = timedelta(minutes=5)


def _claimable(now):
    """Pending, or left `playing` by a worker that died (its lease is over): played again."""
    return sa.or_(DrillInject.state == InjectState.pending,
                  sa.and_(DrillInject.state == InjectState.playing,
                          sa.or_(DrillInject.claimed_at.is_(None),
                                 DrillInject.claimed_at < now - PLAY_LEASE)))


@shared_task(name="crisis.tasks.drills.play_due_injects", ignore_result=True)
def play_due_injects(limit: int = 200) -> int:
    now = utcnow()
    due = db.session.execute(
        sa.select(DrillInject.id, DrillInject.state).join(Incident).where(
            _claimable(now), DrillInject.due_at <= now,
            Incident.mode == IncidentMode.drill, Incident.ended_at.is_(None),
            Incident.injects_paused.is_(False))
        .order_by(DrillInject.due_at).limit(limit)).all()
    played = 0
    for inject_id, state in due:
        # Claimed by a conditional update: two sweeps never play the same inject at once.
        claimed = db.session.execute(
            sa.update(DrillInject).where(DrillInject.id == inject_id, _claimable(utcnow()))
            .values(state=InjectState.playing, claimed_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
        if not claimed:
            continue
        if state is InjectState.playing:
            log.warning("drill inject %s was left playing by a worker that died: played again",
                        inject_id)
        played += play(db.session.get(DrillInject, inject_id, populate_existing=True))
    return played


def play(inject: DrillInject) -> int:
    incident = db.session.get(Incident, inject.incident_id)
    try:
        for reaction in inject.reactions:
            _send(incident, inject, reaction)
    except Exception as exc:  # noqa: BLE001  (whatever failed, the inject must not stay `playing`)
        # Back to pending: the next sweep tries again (an inject is played at least once and,
        # being a reaction with a fixed provider id where we make the id, stored once).
        db.session.rollback()
        expected = isinstance(exc, (requests.RequestException, ValueError))
        log.warning("drill inject %s not played yet: %s", inject.id, exc, exc_info=not expected)
        inject.state = InjectState.pending
        db.session.commit()
        return 0
    inject.state, inject.played_at = InjectState.played, utcnow()
    db.session.commit()
    return 1


def _send(incident: Incident, inject: DrillInject, reaction: dict) -> None:
    text, author = reaction["text"], reaction.get("author") or "Inwoner"
    if inject.channel == "form":
        from crisis.reactions.ingest import ingest_form

        ingest_form(incident, text, author, f"inject-{inject.id}")
        return
    spec: dict = {"channel": inject.channel, "text": text, "author": author}
    if inject.channel == "x":
        spec["in_reply_to"] = _latest_post(incident, "x")
    elif inject.channel == "facebook":
        spec["post_id"] = _latest_post(incident, "facebook")
    elif inject.channel == "sms":
        spec = {"channel": "sms", "from": _synthetic_number(inject.id), "body": text}
    sandbox = channels_for(incident).sandbox_url
    headers = {}
    if current_app.config.get("SANDBOX_TOKEN"):
        headers["Authorization"] = f"Bearer {current_app.config['SANDBOX_TOKEN']}"
    response = requests.post(f"{sandbox}/_sandbox/inject", json={k: v for k, v in spec.items()
                                                                  if v is not None},
                             headers=headers, timeout=10)
    if response.status_code >= 400:
        raise ValueError(f"sandbox refused the inject: {response.status_code} {response.text[:200]}")


def _latest_post(incident: Incident, channel: str) -> str | None:
    return db.session.scalar(
        sa.select(Delivery.provider_id).join(Message).where(
            Message.incident_id == incident.id, Delivery.channel == channel,
            Delivery.state.in_((DeliveryState.accepted, DeliveryState.delivered)))
        .order_by(Delivery.accepted_at.desc()).limit(1))


def _synthetic_number(seed: int) -> str:
    """A drill's SMS reactions come from its synthetic subscribers, never a resident's number."""
    numbers = list(db.session.scalars(sa.select(Subscriber.phone).where(
        Subscriber.synthetic.is_(True)).order_by(Subscriber.id).limit(50)))
    return numbers[seed % len(numbers)] if numbers else f"+3197099{seed % 1_000_000:06d}"
