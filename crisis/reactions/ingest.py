"""Storing what the public sends: once per (channel, provider id), attached to what it answers.

Every inbound path (the Twilio, Facebook and X webhooks, the X poller, the public form) ends here.
A reaction is inserted with "insert, ignore the duplicate" on the (channel, provider_id) unique
constraint, so a webhook delivered twice or a mention polled twice is stored once. The reaction
is attached to the delivery it answers (and so to that delivery's incident); what cannot be
attached goes to the inbox (`incident_id` NULL). The slow part (classification, clustering,
spikes, live events) runs in `crisis.tasks.reactions.process_reaction`, enqueued after commit.

Who signed a reaction decides where it may go (`source`, as in `crisis.webhooks.twilio.signer`):

- ``"provider"``: the real provider's credentials. Attached to live incidents only: a drill's
  posts exist only in a sandbox, so a real person's reaction never disappears into an exercise.
- ``"sandbox"``: the sandbox, while live channels are pointed at it too (demo, training).
  Attached to whatever it answers.
- ``"drill"``: the sandbox's credentials without a configured sandbox. They ship with the code,
  so they may only touch drill data: attached to a drill (the one running drill when it answers
  nothing we know), else kept in the inbox marked as a drill reaction.

Nothing here commits: the caller's request commits, and the processing task is sent after that.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app

from channels.facebook import Comment
from channels.sms import InboundSms
from channels.x import Mention
from crisis.extensions import db
from crisis.models import (
    Cluster,
    Delivery,
    Handling,
    Incident,
    IncidentMode,
    IncidentStatus,
    Message,
    Reaction,
    ReactionChannel,
    RecipientState,
    SmsRecipient,
)
from crisis.models.types import utcnow
from crisis.reactions.cluster import BUCKET_SECONDS

MAX_TEXT = 4000  # longer than any SMS, post or comment a person writes; a bound on hostile input
MAX_NAME = 200
ANSWERED_STATES = (RecipientState.accepted, RecipientState.sent, RecipientState.delivered)


@dataclass(frozen=True)
class Incoming:
    """One reaction as a provider described it, before it is stored."""

    channel: ReactionChannel
    provider_id: str
    text: str
    author_name: str = ""
    author_ref: str | None = None  # how to answer: an X user id, a phone number
    in_reply_to: str | None = None  # the provider id it answers


# --------------------------------------------------------------------------- storing


def _str(value: Any) -> str:
    """Provider fields are JSON: anything that is not text is treated as absent."""
    return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class Target:
    """Where a reaction belongs: the incident, and the delivery and message it answers."""

    incident_id: int
    is_drill: bool
    closed: bool
    message_id: int | None = None
    delivery_id: int | None = None
    in_reply_to: str | None = None  # the provider id it answers (an SMS: the one it got)

    @classmethod
    def of(cls, incident: Incident) -> Target:
        return cls(incident.id, incident.is_drill, incident.status is IncidentStatus.closed)


def store(incoming: Incoming, target: Target | None, *, source: str = "provider") -> int | None:
    """Insert the reaction unless (channel, provider id) is already stored; its id, or None.

    The webhook's hot path: one INSERT ... ON CONFLICT DO NOTHING on the table, no ORM objects.
    A new reaction gets `process_reaction` after the caller's commit.
    """
    if not _str(incoming.provider_id):
        return None  # nothing to recognise a redelivery by: not storable
    if target is not None and not may_attach(target.is_drill, target.closed,
                                             drill=source == "drill", real=source == "provider"):
        target = None
    if target is None and source == "drill":
        target = _only_running_drill()
    values = _values(incoming, target, source)
    reaction_id = _insert_ignoring_duplicate(values)
    _process_after_commit(reaction_id, values["incident_id"])
    return reaction_id


def _values(incoming: Incoming, target: Target | None, source: str) -> dict[str, Any]:
    """The new reaction's row, attached to `target` (None: the inbox)."""
    return {
        "channel": incoming.channel,
        "provider_id": _str(incoming.provider_id)[:128],
        "incident_id": target.incident_id if target is not None else None,
        "delivery_id": target.delivery_id if target is not None else None,
        "message_id": target.message_id if target is not None else None,
        "in_reply_to": _str(incoming.in_reply_to)[:128] or None,
        "author_name": _str(incoming.author_name)[:MAX_NAME],
        "author_ref": _str(incoming.author_ref)[:MAX_NAME] or None,
        "text": _str(incoming.text)[:MAX_TEXT],
        "received_at": utcnow(),
        # In the inbox, `drill` says where it came from: a drill sandbox's reaction stays a drill's.
        "drill": target.is_drill if target is not None else source == "drill",
        "handling": Handling.new,
        "triggers": {},
    }


def _process_after_commit(reaction_id: int | None, incident_id: int | None) -> None:
    """A newly stored reaction gets `process_reaction` once the caller commits."""
    if reaction_id is None:
        return
    from crisis.tasks.enqueue import after_commit
    from crisis.tasks.reactions import enqueue_processing

    after_commit(enqueue_processing, reaction_id, incident_id)


_INSERTS: dict[str, Any] = {}


def _execute(statement, params: dict[str, Any]) -> sa.CursorResult:
    """Run a hot-path statement on the session's connection, in its transaction.

    Core, not Session.execute: these statements return plain rows, and the ORM's execution and
    result machinery around them was a tenth of an inbound SMS webhook's CPU.
    """
    return db.session.connection().execute(statement, params)


def _insert_ignoring_duplicate(values: dict[str, Any]) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id: one statement, no exception, no race."""
    dialect = db.session.get_bind().dialect.name
    statement = _INSERTS.get(dialect)
    if statement is None:
        table = Reaction.__table__
        # Built once: constructing a statement costs more than running it on the hot path.
        statement = _INSERTS[dialect] = (
            _dialect_insert(dialect)(table).values({name: sa.bindparam(name) for name in _INSERT_COLUMNS})
            .on_conflict_do_nothing(index_elements=["channel", "provider_id"])
            .returning(table.c.id))
    return _execute(statement, values).scalar()


_INSERT_COLUMNS = ("channel", "provider_id", "incident_id", "delivery_id", "message_id",
                   "in_reply_to", "author_name", "author_ref", "text", "received_at", "drill",
                   "handling", "triggers")


def _dialect_insert(dialect: str):
    """The dialect's INSERT, the one with ON CONFLICT (the app runs on SQLite or PostgreSQL)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def may_attach(is_drill: bool, closed: bool, *, drill: bool, real: bool = False) -> bool:
    """May a reaction go to an incident (`is_drill`, `closed`)? `drill`: it came through a drill's
    sandbox; `real`: it was signed by the real provider. Never to a closed (archived) incident,
    where nobody looks.
    """
    if closed:
        return False
    if drill:
        return is_drill
    if is_drill:
        # A live reaction to a drill's post is impossible unless the sandbox serves live channels.
        return not real and bool(current_app.config.get("SANDBOX_URL"))
    return True


def may_attach_to(incident: Incident, *, drill: bool) -> bool:
    """`may_attach` for an incident the team picks (the inbox)."""
    target = Target.of(incident)
    return may_attach(target.is_drill, target.closed, drill=drill)


def _only_running_drill() -> Target | None:
    """The one running drill, for a drill reaction that answers nothing we know; else None."""
    ids = list(db.session.scalars(
        sa.select(Incident.id).where(Incident.mode == IncidentMode.drill,
                                     Incident.status == IncidentStatus.active).limit(2)))
    return Target(ids[0], True, False) if len(ids) == 1 else None


def source_of(*, sandbox_signed: bool) -> str:
    """The `source` of a request signed with the provider's (False) or the sandbox's (True) secret."""
    if not sandbox_signed:
        return "provider"
    return "sandbox" if current_app.config.get("SANDBOX_URL") else "drill"


_TARGET_COLUMNS = (Incident.id, Incident.mode, Incident.status, Message.id)


def _target(row) -> Target | None:
    if row is None:
        return None
    incident_id, mode, status, message_id, delivery_id, *rest = row
    return Target(incident_id, mode is IncidentMode.drill, status is IncidentStatus.closed,
                  message_id, delivery_id, rest[0] if rest else None)


# Built once (with bound parameters): the webhooks run them for every reaction.
_DELIVERY_ANSWERED = (
    sa.select(*_TARGET_COLUMNS, Delivery.id)
    .join(Message, Message.id == Delivery.message_id).join(Incident, Incident.id == Message.incident_id)
    .where(Delivery.channel == sa.bindparam("channel"),
           Delivery.provider_id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(Delivery.id.desc()).limit(1)
)
_SMS_DELIVERY = sa.orm.aliased(Delivery)
_SMS_ANSWERED = (  # labelled: the SMS insert below reads it as a subquery
    sa.select(Incident.id.label("incident_id"), Incident.mode, Incident.status,
              Message.id.label("message_id"), _SMS_DELIVERY.id.label("delivery_id"),
              SmsRecipient.provider_sid.label("in_reply_to"))
    .select_from(SmsRecipient)
    .join(Message, Message.id == SmsRecipient.message_id)
    .join(Incident, Incident.id == Message.incident_id)
    .outerjoin(_SMS_DELIVERY, sa.and_(_SMS_DELIVERY.message_id == Message.id,
                                      _SMS_DELIVERY.channel == "sms"))
    .where(SmsRecipient.phone == sa.bindparam("phone"), SmsRecipient.state.in_(ANSWERED_STATES))
    .order_by(SmsRecipient.id.desc()).limit(1)
)


def _delivery_answered(channel: str, provider_ids: Iterable[str | None]) -> Target | None:
    """The delivery (ours) whose provider id is one of `provider_ids`, newest first."""
    ids = [i for i in dict.fromkeys(provider_ids) if i and isinstance(i, str)]
    if not ids:
        return None
    return _target(_execute(_DELIVERY_ANSWERED, {"channel": channel, "ids": ids}).first())


# --------------------------------------------------------------------------- per channel


def ingest_sms(inbound: InboundSms, *, source: str = "provider") -> int | None:
    """An SMS that is not a subscription keyword: an answer to the latest SMS its sender got.

    `source` says who signed it, as for every webhook (see `source_of`).
    """
    incoming = Incoming(
        channel=ReactionChannel.sms,
        provider_id=inbound.message_sid,
        text=inbound.body,
        author_name=mask_phone(inbound.from_number),
        author_ref=inbound.from_number,
    )
    if source != "drill":
        return _store_sms_answer(incoming, inbound.from_number, source)
    # A drill's reaction that answers nothing attachable goes to the running drill: `store` finds it.
    target = _target(_execute(_SMS_ANSWERED, {"phone": inbound.from_number}).first())
    in_reply_to = target.in_reply_to if target is not None else None
    return store(replace(incoming, in_reply_to=in_reply_to), target, source=source)


def _store_sms_answer(incoming: Incoming, phone: str, source: str) -> int | None:
    """`store` for an SMS, with the lookup of the SMS it answers in the same statement.

    The busiest webhook: one round trip instead of two took a sixth off its CPU (0.58-0.62 ->
    0.48-0.52 ms in the process). Where it may attach is still `may_attach`'s answer, asked
    here for each incident mode and applied in SQL.
    """
    if not _str(incoming.provider_id):
        return None
    modes = tuple(mode for mode in IncidentMode if may_attach(
        mode is IncidentMode.drill, False, drill=False, real=source == "provider"))
    values = _values(incoming, None, source)
    params = {name: values[name] for name in _SMS_INSERT_PARAMS} | {"phone": phone}
    row = _execute(_sms_answer_insert(modes), params).first()
    reaction_id, incident_id = row if row is not None else (None, None)
    _process_after_commit(reaction_id, incident_id)
    return reaction_id


_SMS_INSERT_PARAMS = ("channel", "provider_id", "author_name", "author_ref", "text", "received_at",
                      "handling", "triggers")


def _sms_answer_insert(modes: tuple[IncidentMode, ...]):
    """INSERT ... SELECT <the row, attached to the SMS answered if its incident's mode is one of
    `modes` and it is not closed> ON CONFLICT DO NOTHING RETURNING id, incident_id."""
    dialect = db.session.get_bind().dialect.name
    statement = _INSERTS.get((dialect, modes))
    if statement is not None:
        return statement
    table = Reaction.__table__
    answered = _SMS_ANSWERED.subquery("answered")
    attach = sa.and_(answered.c.mode.in_(modes), answered.c.status != IncidentStatus.closed)
    given = {name: sa.bindparam(name, type_=table.c[name].type) for name in _SMS_INSERT_PARAMS}
    row = {
        **given,
        "incident_id": sa.case((attach, answered.c.incident_id)),
        "delivery_id": sa.case((attach, answered.c.delivery_id)),
        "message_id": sa.case((attach, answered.c.message_id)),
        "in_reply_to": answered.c.in_reply_to,
        "drill": sa.case((attach, answered.c.mode == IncidentMode.drill), else_=sa.false()),
    }
    one = sa.select(sa.literal(1).label("one")).subquery("one")
    # One row whether or not an SMS was answered; SQLite needs the WHERE to tell the join's ON
    # from the upsert's.
    select = (sa.select(*(row[name] for name in _INSERT_COLUMNS))
              .select_from(one.outerjoin(answered, sa.true())).where(sa.true()))
    statement = _INSERTS[(dialect, modes)] = (
        _dialect_insert(dialect)(table).from_select(_INSERT_COLUMNS, select)
        .on_conflict_do_nothing(index_elements=["channel", "provider_id"])
        .returning(table.c.id, table.c.incident_id))
    return statement


def ingest_mention(mention: Mention, *, source: str = "provider") -> int | None:
    """An X post that mentions or answers the account (from the poller or the webhook)."""
    target = _delivery_answered(
        "x", [mention.in_reply_to_id, *mention.referenced_ids, mention.conversation_id])
    author = f"@{mention.author_username}" if mention.author_username else ""
    incoming = Incoming(
        channel=ReactionChannel.x,
        provider_id=mention.id,
        text=mention.text,
        author_name=author,
        author_ref=mention.author_id,
        in_reply_to=mention.in_reply_to_id,
    )
    return store(incoming, target, source=source)


def ingest_comment(comment: Comment, *, source: str = "provider") -> Reaction | int | None:
    """A Facebook comment event: a new comment, an edit (new text) or a removal.

    Returns the new reaction's id for an add, the changed Reaction for an edit or removal of one
    already stored, None when nothing was stored (a duplicate, the page's own comment).
    """
    if comment.by_page or not comment.comment_id:
        return None  # our own replies come back through the webhook too
    if comment.verb in ("edited", "remove"):
        existing = db.session.scalars(sa.select(Reaction).where(
            Reaction.channel == ReactionChannel.facebook,
            Reaction.provider_id == comment.comment_id)).first()
        if existing is not None:
            if source == "drill" and not existing.drill:
                return None  # the sandbox's public credentials never touch live data
            return _change(existing, comment)
        if comment.verb == "remove":
            return None  # a comment we never saw, gone again: nothing to show
    target = _delivery_answered("facebook", [comment.post_id])
    incoming = Incoming(
        channel=ReactionChannel.facebook,
        provider_id=comment.comment_id,
        text=comment.message or "",
        author_name=comment.author_name or "",
        author_ref=comment.author_id,
        in_reply_to=comment.parent_id,
    )
    return store(incoming, target, source=source)


def _change(reaction: Reaction, comment: Comment) -> Reaction:
    from crisis import live

    now = utcnow()
    if comment.verb == "remove":
        if reaction.removed_at is None:
            reaction.removed_at = now
    else:
        text = _str(comment.message)[:MAX_TEXT]
        if text != reaction.text:
            reaction.text = text
            reaction.edited_at = now
            if reaction.processed_at is not None:
                # Already clustered: the theme stays, the category follows the new words.
                apply_classification(reaction)
    db.session.flush()
    if reaction.processed_at is not None:
        live.after_commit("reaction.updated", reaction_json(reaction), incident_id=reaction.incident_id)
        if reaction.cluster_id is not None:
            refresh_open_counts([reaction.cluster_id], emit=True)
    return reaction


def ingest_form(incident: Incident, text: str, name: str, provider_id: str) -> int | None:
    """A question or report from the public page's form (or a drill's form inject)."""
    incoming = Incoming(channel=ReactionChannel.form, provider_id=provider_id, text=text,
                        author_name=name)
    return store(incoming, Target.of(incident), source="drill" if incident.is_drill else "provider")


def mask_phone(number: str) -> str:
    """Enough of a number to tell two senders apart in the feed, not enough to call them."""
    digits = re.sub(r"\D", "", number or "")
    if len(digits) < 6:
        return "SMS"
    return f"+{digits[:2]} ••• {digits[-3:]}"


# --------------------------------------------------------------------------- shared with the task


def apply_classification(reaction: Reaction) -> None:
    """Classify the reaction's text and keep the outcome with the cues that decided it."""
    for name, value in classification(reaction).items():
        setattr(reaction, name, value)


def classification(reaction: Reaction) -> dict[str, Any]:
    """The columns a reading of the reaction's text sets, with the cues that decided them."""
    from crisis.reactions.classify import classify

    outcome = classify(reaction.text or "")
    corrected = (reaction.triggers or {}).get("corrected_from")
    values: dict[str, Any] = {"urgency": outcome.urgency, "sentiment": outcome.sentiment,
                              "language": outcome.language}
    triggers = {field: list(words) for field, words in outcome.triggers.items()}
    if corrected:
        triggers["corrected_from"] = corrected  # a person's correction outlives a re-read
    else:
        values["category"] = outcome.category
    values["triggers"] = triggers
    return values


def refresh_open_counts(cluster_ids: Iterable[int], *, emit: bool = False) -> list[Cluster]:
    """Recount each cluster's open (not handled, not removed) reactions."""
    from crisis import live

    ids = sorted({i for i in cluster_ids if i is not None})
    if not ids:
        return []
    counts = dict(db.session.execute(
        sa.select(Reaction.cluster_id, sa.func.count())
        .where(Reaction.cluster_id.in_(ids), Reaction.handling != Handling.handled,
               Reaction.removed_at.is_(None))
        .group_by(Reaction.cluster_id)
    ).all())
    for cluster_id in ids:
        # `updated_at` kept as it is: it dates the sparkline, which only a new reaction moves.
        db.session.execute(sa.update(Cluster).where(Cluster.id == cluster_id).values(
            open_count=int(counts.get(cluster_id, 0)), updated_at=Cluster.updated_at))
    clusters = list(db.session.scalars(sa.select(Cluster).where(Cluster.id.in_(ids))
                                       .execution_options(populate_existing=True)))
    if emit:
        for cluster in clusters:
            live.after_commit("cluster.updated", cluster_json(cluster), incident_id=cluster.incident_id)
    return clusters


# --------------------------------------------------------------------------- JSON


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def provider_url(reaction: Reaction) -> str | None:
    """A link to the reaction on its provider, built only from an id of the expected shape."""
    if reaction.channel is ReactionChannel.x and reaction.provider_id.isdigit():
        return f"https://x.com/i/web/status/{reaction.provider_id}"
    return None


def can_reply(reaction: Reaction) -> bool:
    """An answer goes out on the reaction's own channel: not for the form, nor from the inbox."""
    if reaction.channel is ReactionChannel.form or reaction.incident_id is None:
        return False
    if reaction.removed_at is not None:
        return False
    return reaction.channel is not ReactionChannel.sms or bool(reaction.author_ref)


def reaction_json(reaction: Reaction, cluster_label: str | None = None) -> dict[str, Any]:
    """What the console shows of one reaction (never the sender's number or account id)."""
    if cluster_label is None and reaction.cluster_id is not None:
        cluster = db.session.get(Cluster, reaction.cluster_id)
        cluster_label = cluster.label if cluster is not None else None
    return {
        "id": reaction.id,
        "incident_id": reaction.incident_id,
        "channel": reaction.channel.value,
        "author_name": reaction.author_name,
        "text": reaction.text,
        "received_at": _iso(reaction.received_at),
        "edited_at": _iso(reaction.edited_at),
        "removed_at": _iso(reaction.removed_at),
        "drill": reaction.drill,
        "category": reaction.category,
        "urgency": reaction.urgency,
        "sentiment": reaction.sentiment,
        "language": reaction.language,
        "triggers": reaction.triggers or {},
        "cluster_id": reaction.cluster_id,
        "cluster_label": cluster_label,
        "handling": reaction.handling.value,
        "assignee_id": reaction.assignee_id,
        "handled_at": _iso(reaction.handled_at),
        "message_id": reaction.message_id,
        "delivery_id": reaction.delivery_id,
        "reply_text": reaction.reply_text,
        "replied_at": _iso(reaction.replied_at) if reaction.reply_provider_id else None,
        "reply_pending": bool(reaction.reply_text and not reaction.reply_provider_id
                              and not reaction.reply_error),
        "reply_error": reaction.reply_error,
        "can_reply": can_reply(reaction),
        "url": provider_url(reaction),
        "processed": reaction.processed_at is not None,
    }


def cluster_json(cluster: Cluster, *, open_count: int | None = None) -> dict[str, Any]:
    """A cluster card: label, counts and the sparkline (buckets of 5 minutes ending at `series_end`).

    `open_count`: the count when the row's own is an SQL increment not read back yet.
    """
    updated = cluster.updated_at or cluster.created_at
    end = None
    if updated is not None:
        epoch = int(updated.timestamp())
        end = datetime.fromtimestamp(epoch - epoch % BUCKET_SECONDS, updated.tzinfo).isoformat()
    return {
        "id": cluster.id,
        "incident_id": cluster.incident_id,
        "label": cluster.label,
        "category": cluster.category,
        "count": cluster.count,
        "open_count": cluster.open_count if open_count is None else open_count,
        "series": list(cluster.series or []),
        "series_end": end,
        "bucket_seconds": BUCKET_SECONDS,
        "updated_at": _iso(cluster.updated_at),
    }
