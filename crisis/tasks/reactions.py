"""Reactions: processing (classify, cluster, spikes, live events), the X poller, replies.

`process_reaction` is idempotent (a processed reaction is left alone) and drains: it processes the
incident's waiting reactions in batches, so at 100 reactions a second the clusterer state is
loaded and saved once per batch, not once per reaction. The incident's `Clusterer` lives in
`ClustererState`, saved with an optimistic version check: two workers that processed the same
incident at once conflict, the loser rolls back and tries again. With Redis, a lock per incident
keeps the other workers from doing that work in vain (they leave the draining to its holder, who
looks again after letting go), and a reaction whose incident already has a task in the queue
sends none (see _Enqueue).
"""

from __future__ import annotations

import logging
import random
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from celery import shared_task
from flask import current_app
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.exc import StaleDataError

from channels.base import ChannelError, Outbound, Receipt, TransientChannelError
from crisis import audit, live
from crisis.channel_runtime import channel_set, channels_for
from crisis.coordination import shared_redis
from crisis.extensions import db
from crisis.messages import texts
from crisis.models import (
    Cluster,
    ClustererState,
    Delivery,
    Handling,
    Incident,
    IncidentMode,
    IncidentStatus,
    PollState,
    Reaction,
    ReactionChannel,
)
from crisis.models.types import utcnow
from crisis.reactions import ingest
from crisis.reactions.cluster import BUCKET_SECONDS, Clusterer
from crisis.reactions.spikes import detect_spike
from crisis.tasks.enqueue import send
from crisis.tasks.nudges import Nudges

log = logging.getLogger(__name__)

BATCH = 200  # reactions processed per transaction at most
STALE = timedelta(seconds=60)  # unprocessed this long: the sweep sends its task again
CONFLICT_ATTEMPTS = 12  # in-task retries on a clusterer version conflict before a Celery retry
SERIES_BUCKETS = 36  # a cluster card's sparkline: the last three hours
POLL_LEASE = timedelta(seconds=60)
POLL_ERROR_WAIT = timedelta(seconds=60)
REPLY_MAX_ATTEMPTS = 6
REPLY_MAX_WAIT = 30.0  # longer waits: the reply fails visibly and the team sends it again
REPLY_STALE = timedelta(minutes=5)  # a claim this old belonged to a worker that died in flight
PENDING_KEY = "crisis:reactions:pending:{}"  # Redis: a processing task is in the queue
PENDING_SECONDS = 10  # a queue backlog longer than this only costs extra (harmless) tasks
LOCK_KEY = "crisis:reactions:lock:{}"  # Redis: a worker is draining the incident
LOCK_SECONDS = 60  # renewed after every batch; a crashed holder's lock frees itself
CLUSTER_EVENT_SECONDS = 0.5  # `cluster.updated` at most this often per cluster while draining
# After a batch that was not full, the drainer waits this long before it reads again. A batch
# costs ~5 ms of fixed work (clusterer state, clusters, commit): read back to back at a few
# hundred reactions a second, batches of 3 took a core; after 50 ms they hold ~20 reactions.
COALESCE_SECONDS = 0.05
NUDGE_SECONDS = 0.02  # a stored reaction's incident is asked for within this (crisis.tasks.nudges)


# --------------------------------------------------------------------------- processing


class _Enqueue:
    """`process_reaction` for a stored reaction, asked for after commit (crisis.tasks.enqueue).

    With Redis, a reaction whose incident already has a processing task on its way, or a worker
    draining it, sends none: the drainer clears the mark before it reads each batch, so nothing
    stored before the mark was seen is left behind. At a hundred reactions a second this keeps
    the tasks to about one per batch (each costs a Celery send in the webhook and a dispatch in
    the worker, more than the database insert), and the marks to one per incident per NUDGE_SECONDS
    (crisis.tasks.nudges).
    """

    def apply_async(self, args, **_options) -> None:  # as after_commit calls it, with no options
        reaction_id, incident_id = args
        if incident_id is None or shared_redis() is None:
            send(process_reaction, reaction_id)
        else:
            NUDGES.add(current_app._get_current_object(), incident_id, reaction_id)


def _ask_for_processing(incident_id: int, reaction_id: int) -> None:
    if _mark_pending(incident_id):
        send(process_reaction, reaction_id)


enqueue_processing = _Enqueue()
NUDGES = Nudges(_ask_for_processing, NUDGE_SECONDS)


def _mark_pending(incident_id: int) -> bool:
    """Mark the incident as having a processing task on the way; False when one already is."""
    client = shared_redis()
    if client is None:
        return True
    try:
        return bool(client.set(PENDING_KEY.format(incident_id), 1, nx=True, ex=PENDING_SECONDS))
    except Exception:  # noqa: BLE001  (Redis down: send the task, as without Redis)
        log.warning("could not mark reactions of incident %s pending", incident_id, exc_info=True)
        return True


def _clear_pending(incident_id: int) -> None:
    client = shared_redis()
    if client is None:
        return
    try:
        client.delete(PENDING_KEY.format(incident_id))
    except Exception:  # noqa: BLE001  (the mark expires by itself)
        log.warning("could not clear the pending mark of incident %s", incident_id, exc_info=True)


@shared_task(name="crisis.tasks.reactions.process_reaction", bind=True, ignore_result=True,
             max_retries=10)
def process_reaction(self, reaction_id: int) -> None:
    """Classify, cluster, look for spikes and tell the consoles; safe to run twice."""
    reaction = db.session.get(Reaction, reaction_id)
    if reaction is None:
        db.session.rollback()
        return
    if reaction.incident_id is None:
        if reaction.processed_at is None:
            _process_inbox(reaction)
        return
    incident_id = reaction.incident_id
    db.session.rollback()  # end the read: each batch reads afresh, after clearing the mark
    while True:
        lock = _take_lock(incident_id)
        if lock is False:
            # Another worker drains this incident. The mark stays set: the holder clears it
            # before its next batch, which reads what this task was sent for, and it looks
            # again after letting go. (Cleared here, it would invite a new task per webhook.)
            return
        try:
            _drain(self, incident_id, lock)
        except Exception:
            # Tasks turned away by the lock left the mark to this drain: free it, so the next
            # reaction sends a task instead of waiting for the sweep.
            _clear_pending(incident_id)
            raise
        finally:
            _let_go(lock)
        if lock is None or not _waiting(incident_id):
            return
        # Stored between this worker's last batch and letting go: drain again.


class _ClusterNews:
    """`cluster.updated` at most every CLUSTER_EVENT_SECONDS per cluster while a drain runs.

    At a hundred reactions a second every batch touches the same few clusters; the consoles
    need their counts a few times a second, not with every reaction (each event also costs the
    web process that carries the sockets). What was held back is sent when the drain ends.
    """

    def __init__(self) -> None:
        self.sent: dict[int, float] = {}
        self.held: set[int] = set()

    def due(self, cluster_id: int) -> bool:
        now = time.monotonic()
        if now - self.sent.get(cluster_id, 0.0) >= CLUSTER_EVENT_SECONDS:
            self.sent[cluster_id] = now
            self.held.discard(cluster_id)
            return True
        self.held.add(cluster_id)
        return False

    def flush(self, incident_id: int) -> None:
        if not self.held:
            return
        try:
            for cluster in db.session.scalars(sa.select(Cluster).where(Cluster.id.in_(self.held))):
                live.emit("cluster.updated", ingest.cluster_json(cluster), incident_id=incident_id)
            db.session.rollback()
        except sa.exc.SQLAlchemyError:  # the consoles reload on reconnect; never mask the drain's error
            db.session.rollback()
            log.warning("could not send the held-back cluster updates of incident %s", incident_id,
                        exc_info=True)
        self.held.clear()


def _drain(task, incident_id: int, lock) -> None:
    """Process the incident's waiting reactions, batch after batch, until none is left."""
    news = _ClusterNews()
    try:
        _drain_batches(task, incident_id, lock, news)
    finally:
        news.flush(incident_id)


def _drain_batches(task, incident_id: int, lock, news: _ClusterNews) -> None:
    attempt = 0
    while True:
        # Before each read: a reaction stored after this point sends a task (see _Enqueue);
        # one stored before it is in the read.
        _clear_pending(incident_id)
        try:
            processed = _process_incident(incident_id, news)
            if not processed:
                return
            attempt = 0
            _renew(lock)
            if processed < BATCH:
                time.sleep(COALESCE_SECONDS)  # the news went out already; let the next batch fill
        except (StaleDataError, sa.exc.IntegrityError):
            # Another worker saved the clusterer first (no Redis lock, or one that expired).
            attempt += 1
            db.session.rollback()
            if attempt >= CONFLICT_ATTEMPTS:
                log.info("incident %s: clusterer still contended, retrying later", incident_id)
                raise task.retry(countdown=random.uniform(0.5, 2.0)) from None
            time.sleep(random.uniform(0.005, 0.02) * attempt)


def _take_lock(incident_id: int):
    """The incident's processing lock (Redis): the lock, False when another worker holds it,
    None without Redis (then the clusterer's version check alone keeps batches apart)."""
    client = shared_redis()
    if client is None:
        return None
    try:
        lock = client.lock(LOCK_KEY.format(incident_id), timeout=LOCK_SECONDS, blocking=False)
        return lock if lock.acquire() else False
    except Exception:  # noqa: BLE001  (Redis down: process anyway, the version check guards)
        log.warning("could not take the processing lock of incident %s", incident_id, exc_info=True)
        return None


def _renew(lock) -> None:
    if not lock:
        return
    try:
        lock.extend(LOCK_SECONDS, replace_ttl=True)
    except Exception:  # noqa: BLE001  (expired: another worker may drain too; the version check guards)
        log.info("the processing lock expired during a drain")


def _let_go(lock) -> None:
    if not lock:
        return
    try:
        lock.release()
    except Exception:  # noqa: BLE001  (expired meanwhile: nothing to release)
        log.info("the processing lock had expired before it was released")


def _waiting(incident_id: int) -> bool:
    found = db.session.scalar(sa.select(Reaction.id).where(
        Reaction.incident_id == incident_id, Reaction.processed_at.is_(None)).limit(1))
    db.session.rollback()
    return found is not None


def _process_inbox(reaction: Reaction) -> None:
    ingest.apply_classification(reaction)
    reaction.processed_at = utcnow()
    db.session.flush()
    # The inbox belongs to the whole team: every console hears of it.
    live.after_commit("reactions.created", {"incident_id": None,
                                            "reactions": [ingest.reaction_json(reaction)]})
    db.session.commit()


def _process_incident(incident_id: int, news: _ClusterNews | None = None) -> int:
    """Process one batch of the incident's waiting reactions; how many it processed."""
    # Read. The state (and its version) first, the waiting reactions second: a batch another
    # worker commits in between then fails this one's version check, instead of being processed
    # twice.
    state = db.session.get(ClustererState, incident_id, populate_existing=True)
    waiting = list(db.session.scalars(
        sa.select(Reaction)
        .where(Reaction.incident_id == incident_id, Reaction.processed_at.is_(None))
        .order_by(Reaction.id).limit(BATCH)
    ))
    if not waiting:
        db.session.rollback()
        return 0  # another worker's batch took them
    incident = db.session.get(Incident, incident_id)

    # Compute, in memory (on SQLite the first write takes the database's write lock: hold it
    # only for the writes).
    with db.session.no_autoflush:
        if state is None or not state.state:
            clusterer = Clusterer(places=[area.name for area in incident.areas])
            if state is None:
                state = ClustererState(incident_id=incident_id, state={})
                db.session.add(state)
        else:
            clusterer = Clusterer.from_dict(state.state)
        now = utcnow()
        keys: dict[int, int] = {}  # reaction id -> clusterer key
        opened: dict[int, int] = {}  # clusterer key -> reactions added that are open
        # Each reaction's classification, kept aside and written below with its cluster, in one
        # UPDATE. (A `cluster` relationship would let one flush order new clusters and reactions
        # by itself, but cost ~15% more CPU per reaction: the ORM post-fetches every synced row.)
        readings: dict[int, dict] = {}
        spikes: list[dict] = []
        for reaction in waiting:
            if reaction.category is None or not reaction.triggers:
                readings[reaction.id] = ingest.classification(reaction)
            category = readings.get(reaction.id, {}).get("category", reaction.category)
            key, _created = clusterer.assign(reaction.text or "", category or "other",
                                             at=reaction.received_at)
            keys[reaction.id] = key
            is_open = reaction.removed_at is None and reaction.handling is not Handling.handled
            opened[key] = opened.get(key, 0) + int(is_open)
            spikes.extend(_spikes(clusterer, key, reaction.received_at))
        rows = {c.key: c for c in db.session.scalars(
            sa.select(Cluster).where(Cluster.incident_id == incident_id, Cluster.key.in_(opened)))}
        open_now, created = {}, False
        for key, added in opened.items():
            row = rows.get(key)
            if row is None:
                row = rows[key] = Cluster(incident_id=incident_id, key=key, created_at=now,
                                          open_count=added)
                db.session.add(row)
                created = True
            else:
                # An atomic increment: a team member handling one of its reactions meanwhile
                # recounts the same column.
                open_now[key] = row.open_count + added
                row.open_count = Cluster.open_count + added
            data = clusterer.get(key)
            row.label = data.label[:200]
            row.category = data.category
            row.count = data.count
            row.series = clusterer.series(key, end=now)[-SERIES_BUCKETS:]
            row.updated_at = now
            open_now.setdefault(key, added)
        state.state = clusterer.to_dict()
        flag_modified(state, "state")

    # Write: one UPDATE per reaction (its reading, cluster and processed_at together), and the
    # clusterer's version check (a concurrent batch makes it raise StaleDataError, and the whole
    # transaction rolls back). New clusters are inserted first: the reactions take their ids.
    if created:
        db.session.flush()
    for reaction in waiting:
        for name, value in readings.get(reaction.id, {}).items():
            setattr(reaction, name, value)
        reaction.cluster_id = rows[keys[reaction.id]].id
        reaction.processed_at = now
    db.session.flush()

    # One event for the whole batch: each event costs a Redis publish here and a relay to every
    # socket in the web process, which at a hundred reactions a second is most of its work.
    live.after_commit("reactions.created", {"incident_id": incident_id, "reactions": [
        ingest.reaction_json(reaction, rows[keys[reaction.id]].label) for reaction in waiting]},
        incident_id=incident_id)
    for key, row in rows.items():
        if news is None or news.due(row.id):
            payload = ingest.cluster_json(row, open_count=open_now[key])
            live.after_commit("cluster.updated", payload, incident_id=incident_id)
    for spike in spikes:
        if spike["scope"] == "cluster":
            spike["cluster_id"] = rows[spike.pop("key")].id
        payload = {"incident_id": incident_id, "incident_title": incident.title,
                   "drill": incident.is_drill, **spike}
        live.after_commit("spike.detected", payload, incident_id=incident_id)
        live.after_commit("spike.detected", payload)  # the team room: seen from every page
    db.session.commit()
    return len(waiting)


@shared_task(name="crisis.tasks.reactions.sweep_reactions", ignore_result=True)
def sweep_reactions() -> int:
    """Re-drive reactions left unprocessed (a task that failed for good, a lost send); the count.

    One task per incident (it drains the rest) and one per inbox reaction, for reactions that
    waited longer than STALE; the partial index on unprocessed reactions keeps this cheap.
    """
    cutoff = utcnow() - STALE
    rows = db.session.execute(
        sa.select(Reaction.incident_id, sa.func.min(Reaction.id))
        .where(Reaction.processed_at.is_(None), Reaction.received_at < cutoff)
        .group_by(Reaction.incident_id)).all()
    inbox = [] if not any(i is None for i, _ in rows) else list(db.session.scalars(
        sa.select(Reaction.id).where(Reaction.processed_at.is_(None), Reaction.incident_id.is_(None),
                                     Reaction.received_at < cutoff).limit(500)))
    db.session.rollback()
    ids = [first for incident_id, first in rows if incident_id is not None] + inbox
    for reaction_id in ids:
        send(process_reaction, reaction_id)
    if ids:
        log.warning("re-drove %d reaction processing task(s)", len(ids))
    return len(ids)


def _spikes(clusterer: Clusterer, key: int, at: datetime) -> list[dict]:
    """Spikes this one reaction set off: its 5-minute bucket just crossed the threshold.

    Reactions of an incident are added one at a time under the clusterer's version check, so
    exactly one reaction per bucket sees "not a spike before me, a spike with me": each spike
    is announced once, without any bookkeeping of what was announced.
    """
    found = []
    epoch = int(at.timestamp())
    bucket = epoch - epoch % BUCKET_SECONDS
    for scope, cluster_key in (("incident", None), ("cluster", key)):
        series = clusterer.series(cluster_key, end=at)
        if not series:
            continue
        history, current = series[:-1], series[-1]
        spike = detect_spike(history, current)
        if spike is None or detect_spike(history, current - 1) is not None:
            continue
        entry = {"scope": scope, "bucket_start": datetime.fromtimestamp(bucket, UTC).isoformat(),
                 **spike.as_dict()}
        if cluster_key is not None:
            data = clusterer.get(cluster_key)
            entry.update(key=cluster_key, label=data.label, category=data.category)
        found.append(entry)
    return found


# --------------------------------------------------------------------------- the X poller


def x_accounts() -> list[tuple[object, str]]:
    """The X accounts to read, each with the `source` its mentions get (crisis.reactions.ingest).

    The live channels' account (the sandbox's when one is configured for them), and, while a
    drill runs on a sandbox of its own, that sandbox's account.
    """
    accounts = []
    live = channel_set(drill=False)
    if live.get("x") is not None:
        accounts.append((live.get("x"), "sandbox" if live.sandbox_url else "provider"))
    drilling = db.session.scalar(sa.select(sa.func.count()).select_from(Incident).where(
        Incident.mode == IncidentMode.drill, Incident.status == IncidentStatus.active))
    if drilling:
        drill = channel_set(drill=True)
        if drill.get("x") is not None and drill.sandbox_url != live.sandbox_url:
            accounts.append((drill.get("x"), "drill"))
    return accounts


@shared_task(name="crisis.tasks.reactions.poll_x", ignore_result=True)
def poll_x() -> int:
    """Read new mentions and replies of the X account(s); the number of new reactions stored.

    The cursor (`since_id`) and X's "wait until" live in a PollState row per account, so any
    worker continues where the last poll stopped, and nobody asks X again before it said to.
    Replies to our posts mention the account, so the mentions timeline carries them too.
    """
    stored = 0
    for channel, source in x_accounts():
        stored += _poll_account(channel, source)
    return stored


def _poll_account(channel, source: str) -> int:
    where = "sandbox" if channel.sandbox else "x"
    key = f"x.mentions:{channel.user_id}@{where}:{source}"[:80]
    state = _claim_poll(key)
    if state is None:
        return 0
    since_id = state.since_id
    stored = 0
    try:
        mentions, newest, wait = channel.poll_mentions(since_id)
    except TransientChannelError as exc:
        _release_poll(key, since_id, wait=exc.retry_after or POLL_ERROR_WAIT.total_seconds(),
                      error=str(exc))
        log.warning("X mentions poll failed, trying again later: %s", exc)
        return 0
    except ChannelError as exc:
        _release_poll(key, since_id, wait=POLL_ERROR_WAIT.total_seconds(), error=str(exc))
        log.error("X mentions poll refused: %s", exc)
        return 0
    for mention in mentions:
        if mention.author_id and mention.author_id == channel.user_id:
            continue  # the account's own posts are not reactions
        if ingest.ingest_mention(mention, source=source) is not None:
            stored += 1
    _release_poll(key, newest or since_id, wait=wait, error=None)
    if wait:
        log.info("X asked to wait %.0f s before the next mentions poll", wait)
    return stored


def _claim_poll(key: str) -> PollState | None:
    """Take the poller's lease, unless a poll is running or X said to wait; committed."""
    now = utcnow()
    if db.session.get(PollState, key) is None:
        db.session.add(PollState(key=key))
        try:
            db.session.commit()
        except sa.exc.IntegrityError:
            db.session.rollback()  # created by a concurrent poll: fine
    claimed = db.session.execute(
        sa.update(PollState)
        .where(PollState.key == key,
               sa.or_(PollState.lease_until.is_(None), PollState.lease_until < now),
               sa.or_(PollState.wait_until.is_(None), PollState.wait_until <= now))
        .values(lease_until=now + POLL_LEASE, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if not claimed:
        return None
    return db.session.get(PollState, key, populate_existing=True)


def _release_poll(key: str, since_id: str | None, *, wait: float | None, error: str | None) -> None:
    now = utcnow()
    state = db.session.get(PollState, key, populate_existing=True)
    state.since_id = since_id
    state.wait_until = now + timedelta(seconds=wait) if wait else None
    state.lease_until = None
    state.last_polled_at = now
    state.last_error = error[:200] if error else None
    db.session.commit()  # also sends the processing tasks of what was stored


# --------------------------------------------------------------------------- replies


@shared_task(name="crisis.tasks.reactions.send_reply", bind=True, ignore_result=True,
             max_retries=REPLY_MAX_ATTEMPTS)
def send_reply(self, reaction_id: int) -> None:
    """Answer one reaction on its own channel (X reply, Facebook comment reply, SMS).

    The row is claimed first (`replied_at` set while in flight), so a task delivered twice sends
    once. An attempt that may have landed (a timeout, or a worker that died in flight and left
    its claim to go stale) is looked for at the provider before anything is sent again.
    """
    now = utcnow()
    earlier = db.session.scalar(sa.select(Reaction.replied_at).where(Reaction.id == reaction_id))
    claimed = db.session.execute(
        sa.update(Reaction)
        .where(Reaction.id == reaction_id, Reaction.reply_text.is_not(None),
               Reaction.reply_provider_id.is_(None), Reaction.reply_error.is_(None),
               sa.or_(Reaction.replied_at.is_(None), Reaction.replied_at < now - REPLY_STALE))
        .values(replied_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if not claimed:
        return
    reaction = db.session.get(Reaction, reaction_id, populate_existing=True)
    incident = db.session.get(Incident, reaction.incident_id)
    channel = channels_for(incident).get(reaction.channel.value) if incident else None
    if channel is None:
        return _reply_failed(reaction, "channel not configured")
    outbound = reply_outbound(reaction, incident, attempted_at=earlier or reaction.replied_at)
    try:
        uncertain = self.request.retries or earlier is not None
        receipt = channel.find(outbound) if uncertain else None
        if receipt is None:
            receipt = channel.publish(outbound)
    except TransientChannelError as exc:
        if self.request.retries >= REPLY_MAX_ATTEMPTS or (exc.retry_after or 0) > REPLY_MAX_WAIT:
            return _reply_failed(reaction, f"transient: {exc}")
        reaction.replied_at = None  # free for the retry to claim
        db.session.commit()
        wait = max(exc.retry_after or 0.0, min(REPLY_MAX_WAIT, 2.0 ** self.request.retries))
        raise self.retry(countdown=wait) from None
    except ChannelError as exc:
        return _reply_failed(reaction, f"{getattr(exc, 'code', 'error')}: {exc}")
    reaction.reply_provider_id = receipt.provider_id[:128]
    reaction.replied_at = utcnow()
    reaction.reply_error = None
    if reaction.handling is not Handling.handled:
        reaction.handling, reaction.handled_at = Handling.handled, utcnow()
    audit.record("reaction.replied", actor_id=reaction.replied_by_id, target=reaction,
                 incident=reaction.incident_id, channel=reaction.channel.value)
    _reply_settled(reaction)


def reply_outbound(reaction: Reaction, incident: Incident, *, attempted_at=None) -> Outbound:
    """The answer as the channel sends it; a drill's starts with the exercise marker."""
    marker = texts.marker(incident, reaction.language or incident.language)
    text = reaction.reply_text or ""
    if marker and not text.startswith(marker):
        text = f"{marker} {text}"
    if reaction.channel is ReactionChannel.sms:
        return Outbound(key=f"reaction-reply-{reaction.id}", text=text, to=reaction.author_ref,
                        attempted_at=attempted_at)
    target = reaction.provider_id
    if reaction.channel is ReactionChannel.facebook and reaction.in_reply_to:
        delivery = db.session.get(Delivery, reaction.delivery_id) if reaction.delivery_id else None
        delivery_post = delivery.provider_id if delivery is not None else None
        # Facebook threads one level deep: a reply to a reply goes under the top comment.
        if delivery_post and reaction.in_reply_to != delivery_post:
            target = reaction.in_reply_to
    return Outbound(key=f"reaction-reply-{reaction.id}", text=text,
                    reply_to=Receipt(target), attempted_at=attempted_at)


def _reply_failed(reaction: Reaction, reason: str) -> None:
    reaction.replied_at = None
    reaction.reply_error = reason[:200]
    audit.record("reaction.reply_failed", actor_id=reaction.replied_by_id, target=reaction,
                 incident=reaction.incident_id, channel=reaction.channel.value)
    _reply_settled(reaction)


def _reply_settled(reaction: Reaction) -> None:
    db.session.flush()
    live.after_commit("reaction.updated", ingest.reaction_json(reaction), incident_id=reaction.incident_id)
    if reaction.cluster_id is not None:
        ingest.refresh_open_counts([reaction.cluster_id], emit=True)
    db.session.commit()
