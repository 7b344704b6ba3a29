"""The SMS fan-out on the `bulk` queue: recipient rows from the approval's snapshot, then batches.

Each recipient row is claimed (queued → sending) and committed before its SMS is sent, so after a
crash a row is either still queued (safe to send), or `sending` (the sweep asks Twilio whether it
went), never sent twice. Every send waits for its slot in the global rate limit.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import sqlalchemy as sa
from celery import shared_task
from flask import current_app

from channels.base import ChannelError, Outbound, PermanentChannelError, TransientChannelError
from channels.text import sms_info
from crisis import live
from crisis.channel_runtime import channels_for
from crisis.coordination import shared_redis
from crisis.extensions import db
from crisis.messages import texts
from crisis.messages.service import sms_counts
from crisis.models import (
    Delivery,
    DeliveryState,
    Message,
    MessageState,
    RecipientState,
    SmsRecipient,
    Subscriber,
    SubscriberStatus,
)
from crisis.models.types import utcnow
from crisis.ratelimit import sms_limiter
from crisis.tasks.enqueue import send
from crisis.tasks.publish import _transition, lock_message, refresh_message

log = logging.getLogger(__name__)
CHUNK = 1000
STOPPED_CODE = "21610"  # the recipient replied STOP to this sender


@shared_task(name="crisis.tasks.sms.sms_fanout", ignore_result=True)
def sms_fanout(message_id: int) -> None:
    """Create the recipient rows (once) and enqueue the batches that send them."""
    message = db.session.get(Message, message_id)
    delivery = message.delivery("sms") if message else None
    if delivery is None or message.state is not MessageState.sending:
        return
    if delivery.state in (DeliveryState.queued, DeliveryState.retrying):
        delivery.attempts += 1
        delivery.attempted_at = utcnow()
        _transition(delivery, DeliveryState.sending, recipients=message.recipient_count)
        db.session.commit()
    elif delivery.state is not DeliveryState.sending:
        return
    create_recipients(message)
    first = enqueue_batches(message.id, keep_first=True)
    if first:
        # The first batch goes out from here: the first SMS leaves one broker hop after approval.
        sms_send_batch(message.id, first)
    finish_if_done(message.id)


def create_recipients(message: Message) -> None:
    existing = set(db.session.scalars(
        sa.select(SmsRecipient.subscriber_id).where(SmsRecipient.message_id == message.id)))
    todo = [sid for sid in message.recipient_snapshot if sid not in existing]
    segments = {lang: sms_info(_text(message, lang)).segments for lang in texts.languages(message)}
    for start in range(0, len(todo), CHUNK):
        chunk = todo[start:start + CHUNK]
        subscribers = db.session.execute(
            sa.select(Subscriber.id, Subscriber.phone, Subscriber.language, Subscriber.status)
            .where(Subscriber.id.in_(chunk))
        ).all()
        rows = [_recipient_row(message, segments, *sub) for sub in subscribers]
        if rows:
            db.session.execute(sa.insert(SmsRecipient), rows)
        db.session.commit()
    emit_progress(message.id, force=True)


def _recipient_row(message, segments, subscriber_id, phone, language, status) -> dict:
    language = language if language in segments else message.language
    stopped = status is not SubscriberStatus.active
    return {
        "message_id": message.id,
        "subscriber_id": subscriber_id,
        "phone": phone,
        "language": language,
        "segments": segments[language],
        "state": RecipientState.skipped if stopped else RecipientState.queued,
        "updated_at": utcnow(),
    }


def _text(message: Message, language: str) -> str:
    return texts.RENDERERS["sms"].render(texts.draft_for(message, language)).text


def enqueue_batches(message_id: int, only_due: bool = False, keep_first: bool = False):
    """Send every queued row's id to a batch task; duplicates are harmless (rows are claimed).

    With `keep_first` the first batch is returned for the caller to send itself; otherwise the
    number of rows enqueued.
    """
    query = sa.select(SmsRecipient.id).where(
        SmsRecipient.message_id == message_id, SmsRecipient.state == RecipientState.queued
    )
    if only_due:
        query = query.where(sa.or_(SmsRecipient.next_attempt_at.is_(None),
                                   SmsRecipient.next_attempt_at <= utcnow()))
    ids = list(db.session.scalars(query.order_by(SmsRecipient.id)))
    size = int(current_app.config["SMS_BATCH_SIZE"])
    batches = [ids[start:start + size] for start in range(0, len(ids), size)]
    first = batches.pop(0) if keep_first and batches else None
    for batch in batches:
        send(sms_send_batch, message_id, batch)
    return first if keep_first else len(ids)


@shared_task(name="crisis.tasks.sms.sms_send_batch", ignore_result=True)
def sms_send_batch(message_id: int, recipient_ids: list[int]) -> None:
    message = db.session.get(Message, message_id)
    if message is None or message.state is not MessageState.sending:
        return
    channel = channels_for(message.incident).get("sms")
    if channel is None:
        return _fail_all(message, "not_configured")
    bodies = {lang: _text(message, lang) for lang in texts.languages(message)}
    bodies.setdefault(None, bodies[message.language])
    callback = current_app.config["PUBLIC_URL"].rstrip("/") + "/webhooks/twilio/status"
    limiter = sms_limiter(current_app)
    segments = dict(db.session.execute(sa.select(SmsRecipient.id, SmsRecipient.segments).where(
        SmsRecipient.id.in_(recipient_ids), SmsRecipient.state == RecipientState.queued)).all())
    todo = [rid for rid in recipient_ids if rid in segments]  # others: claimed elsewhere
    db.session.rollback()  # hold no snapshot (or lock) while the threads send
    app = current_app._get_current_object()
    halted = threading.Event()  # the message left `sending` (stopped): the others skip the rest

    def send_lane(lane: list[int]) -> None:
        # One app context and one connection per thread for its whole lane: a checkout per SMS
        # cost more than the statements themselves. Each statement on it commits on its own
        # (the claim before the SMS, the record after): a transaction around one statement
        # only adds BEGIN and COMMIT, two more round trips per statement.
        with app.app_context(), db.engine.connect().execution_options(
                isolation_level="AUTOCOMMIT") as conn:
            for recipient_id in lane:
                if halted.is_set():
                    return
                # The slot first, then the claim: if Redis fails here, no row is left `sending`.
                limiter.acquire(segments[recipient_id])
                claimed = claim_recipient(conn, message_id, recipient_id)
                if claimed is None:
                    if _stopped(conn, message_id):
                        halted.set()
                    continue
                outbound = Outbound(key=f"sms-{recipient_id}", to=claimed.phone,
                                    text=bodies.get(claimed.language) or bodies[None],
                                    status_callback=callback, attempted_at=claimed.attempted_at)
                send_one(conn, channel, claimed, outbound, limiter)
                emit_progress(message_id)

    # A provider call is mostly waiting: a few threads per batch keep the rate up without more
    # processes. Each row is still claimed, sent and recorded on its own, in its own transaction.
    threads = int(app.config["SMS_SEND_THREADS"])
    lanes = [todo[start::threads] for start in range(min(threads, len(todo)))]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for future in [pool.submit(send_lane, lane) for lane in lanes]:
            future.result()
    finish_if_done(message_id)


# Built once: on the send path, constructing a statement costs more than running it.
_RECIPIENTS = SmsRecipient.__table__
_CLAIM = (
    sa.update(_RECIPIENTS)
    .where(SmsRecipient.id == sa.bindparam("b_recipient"),
           SmsRecipient.state == RecipientState.queued,
           sa.or_(SmsRecipient.next_attempt_at.is_(None),
                  SmsRecipient.next_attempt_at <= sa.bindparam("b_now")),
           sa.select(Message.id).where(Message.id == sa.bindparam("b_message"),
                                       Message.state == MessageState.sending).exists())
    .values(state=RecipientState.sending, attempts=SmsRecipient.attempts + 1,
            attempted_at=sa.bindparam("b_now"), updated_at=sa.bindparam("b_now"))
    .returning(SmsRecipient.id, SmsRecipient.subscriber_id, SmsRecipient.phone,
               SmsRecipient.language, SmsRecipient.segments, SmsRecipient.attempted_at)
)
_MESSAGE_STATE = sa.select(Message.state).where(Message.id == sa.bindparam("b_message"))


def claim_recipient(conn: sa.Connection, message_id: int, recipient_id: int):
    """Take a queued row for sending, in one statement, only while its message is still sending.

    Commits on `conn` (a no-op where it autocommits). Returns the row's (id, subscriber_id,
    phone, language, segments, attempted_at), or None.
    """
    claimed = conn.execute(_CLAIM, {"b_recipient": recipient_id, "b_message": message_id,
                                    "b_now": utcnow()}).first()
    conn.commit()
    return claimed


def send_one(conn: sa.Connection, channel, recipient, outbound: Outbound, limiter) -> None:
    """Send one claimed row and record what the provider said, in one statement on `conn`."""
    values: dict = {"updated_at": utcnow()}
    try:
        receipt = channel.publish(outbound)
    except TransientChannelError as exc:
        if exc.uncertain:
            return  # left `sending`: the sweep asks Twilio whether it went, never resends blindly
        wait = exc.retry_after or 1.0
        if exc.retry_after:
            limiter.pause(exc.retry_after)  # Twilio said how long: every worker waits that long
        values.update(state=RecipientState.queued,
                      next_attempt_at=utcnow() + timedelta(seconds=wait))
    except PermanentChannelError as exc:
        stopped = exc.code == STOPPED_CODE
        values.update(error_code=exc.code,
                      state=RecipientState.skipped if stopped else RecipientState.failed)
        if stopped and recipient.subscriber_id:
            _mark_stopped(recipient.subscriber_id)
    except ChannelError as exc:
        log.warning("SMS to recipient %s failed: %s", recipient.id, exc)
        values.update(state=RecipientState.failed, error_code=type(exc).__name__)
    else:
        values.update(state=RecipientState.accepted, provider_sid=receipt.provider_id,
                      segments=int(receipt.raw.get("num_segments") or recipient.segments))
    _record(conn, recipient.id, values)


_RECORDS: dict[tuple[str, ...], sa.Update] = {}


def _record(conn: sa.Connection, recipient_id: int, values: dict) -> None:
    """UPDATE the row with `values` and commit; one statement per set of columns, built once."""
    columns = tuple(sorted(values))
    statement = _RECORDS.get(columns)
    if statement is None:
        statement = _RECORDS[columns] = (
            sa.update(_RECIPIENTS).where(_RECIPIENTS.c.id == sa.bindparam("b_recipient"))
            .values({name: sa.bindparam(f"v_{name}") for name in columns}))
    conn.execute(statement, {"b_recipient": recipient_id,
                             **{f"v_{name}": value for name, value in values.items()}})
    conn.commit()


def _mark_stopped(subscriber_id: int) -> None:
    subscriber = db.session.get(Subscriber, subscriber_id)
    if subscriber and subscriber.status is not SubscriberStatus.stopped:
        subscriber.status, subscriber.stopped_at = SubscriberStatus.stopped, utcnow()
        db.session.commit()


def _stopped(conn: sa.Connection, message_id: int) -> bool:
    state = conn.execute(_MESSAGE_STATE, {"b_message": message_id}).scalar()
    conn.rollback()
    return state is not MessageState.sending


def _fail_all(message: Message, code: str) -> None:
    db.session.execute(
        sa.update(SmsRecipient)
        .where(SmsRecipient.message_id == message.id, SmsRecipient.state == RecipientState.queued)
        .values(state=RecipientState.failed, error_code=code, updated_at=utcnow())
    )
    db.session.commit()
    finish_if_done(message.id)


IN_FLIGHT = (RecipientState.queued, RecipientState.sending)


def finish_if_done(message_id: int) -> None:
    """The SMS delivery is accepted once no recipient is queued or sending."""
    busy = db.session.scalar(sa.select(sa.func.count()).select_from(SmsRecipient).where(
        SmsRecipient.message_id == message_id, SmsRecipient.state.in_(IN_FLIGHT)))
    if not busy:
        settle_if_done(message_id)


def settle_if_done(message_id: int) -> None:
    """Under the message's lock: accept (or fail) the SMS delivery if no recipient is left."""
    lock_message(message_id)  # first, as every settling task takes it
    delivery = db.session.scalars(
        sa.select(Delivery).where(Delivery.message_id == message_id, Delivery.channel == "sms")
        .with_for_update()
    ).first()
    if delivery is None or delivery.state is not DeliveryState.sending:
        db.session.rollback()
        return
    # Counted under the lock, in one statement: rows the fan-out committed after a caller's
    # check (or was still inserting then) are either all seen here or the total is short.
    counts = sms_counts(message_id)
    busy = sum(counts[state.value] for state in IN_FLIGHT)
    if busy or counts["total"] < delivery.message.recipient_count:
        db.session.rollback()  # still sending, or the fan-out has not created every row yet
        return
    none_to_send = counts["total"] == counts["skipped"]
    if counts["accepted_total"] or none_to_send:
        delivery.accepted_at = utcnow()
        _transition(delivery, DeliveryState.accepted, **_summary(counts))
    else:
        log.warning("SMS delivery of message %s failed: %s", message_id, _summary(counts))
        _transition(delivery, DeliveryState.failed, **_summary(counts))
    refresh_message(delivery.message)
    db.session.commit()
    emit_progress(message_id, force=True)
    from crisis.tasks.publish import _emit

    _emit(delivery)


def _summary(counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if v}


_last_progress: dict[int, float] = {}
PROGRESS_SECONDS = 0.5
PROGRESS_KEY = "crisis:sms-progress:{}"


def emit_progress(message_id: int, force: bool = False) -> None:
    """`sms.progress` about twice a second per message, whichever process sends its SMS.

    Counting reads every recipient row of the message: with each of 8 bulk worker processes
    counting twice a second, the counts took 6% of the worker's time in a fan-out to 3,000, and
    more the more recipients.
    """
    now = time.monotonic()
    # This process's own clock first: it spares a Redis call after every SMS.
    if not force and now - _last_progress.get(message_id, 0.0) < PROGRESS_SECONDS:
        return
    _last_progress[message_id] = now
    if not force and not _progress_turn(message_id):
        return
    incident_id = db.session.scalar(sa.select(Message.incident_id).where(Message.id == message_id))
    live.emit("sms.progress", {"message_id": message_id, **sms_counts(message_id)},
              incident_id=incident_id)


def _progress_turn(message_id: int) -> bool:
    """True for the first process to ask in each half second (always, without Redis)."""
    client = shared_redis()
    if client is None:
        return True
    try:
        return bool(client.set(PROGRESS_KEY.format(message_id), 1, nx=True,
                               px=int(PROGRESS_SECONDS * 1000)))
    except Exception:  # noqa: BLE001  (Redis down: count here; progress is only a display)
        log.warning("could not take the SMS progress turn", exc_info=True)
        return True
