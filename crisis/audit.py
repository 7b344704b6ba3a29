"""Append to and verify the audit chain.

Each entry's MAC covers its fields and the previous entry's MAC, with a key kept outside the
database: an edited, deleted or re-ordered row breaks the chain. A signed head row records the
last entry, so cutting entries off the end is detected too; updating that row first takes a row
lock, which serialises concurrent appends on PostgreSQL and SQLite alike.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import current_app

from crisis.extensions import db
from crisis.models import AuditEvent, AuditHead
from crisis.models.types import utcnow

HEAD_ID = 1


def _mac(key: str, payload: str) -> str:
    return hmac.new(key.encode(), payload.encode(), hashlib.sha256).hexdigest()


def _entry_payload(event: AuditEvent) -> str:
    return json.dumps(
        [
            event.seq,
            event.at.isoformat(),
            event.actor_id,
            event.action,
            event.target_type,
            event.target_id,
            event.data,
            event.prev_mac,
        ],
        sort_keys=True,
        separators=(",", ":"),
    )


def _head_signature(key: str, seq: int, mac: str) -> str:
    return _mac(key, f"head|{seq}|{mac}")


def record(
    action: str,
    *,
    actor_id: int | None = None,
    target: Any = None,
    **data: Any,
) -> AuditEvent:
    """Append an entry in the caller's transaction (it commits or rolls back with the action).

    `target` is a model instance or a (type, id) pair; `data` must hold ids and codes only.
    """
    key = current_app.config["AUDIT_KEY"]
    session = db.session
    # The UPDATE takes the head's row lock (PostgreSQL) or the write lock (SQLite) before we read.
    locked = session.execute(
        sa.update(AuditHead.__table__).where(AuditHead.id == HEAD_ID).values(seq=AuditHead.seq)
    ).rowcount
    if not locked:
        session.execute(sa.insert(AuditHead.__table__).values(id=HEAD_ID, seq=0, mac=""))
    seq, prev_mac = session.execute(
        sa.select(AuditHead.seq, AuditHead.mac).where(AuditHead.id == HEAD_ID)
    ).one()
    target_type, target_id = _target(target)
    event = AuditEvent(
        seq=seq + 1,
        at=utcnow(),
        actor_id=actor_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        data=data,
        prev_mac=prev_mac,
    )
    event.mac = _mac(key, _entry_payload(event))
    session.add(event)
    session.execute(
        sa.update(AuditHead.__table__)
        .where(AuditHead.id == HEAD_ID)
        .values(seq=event.seq, mac=event.mac, signature=_head_signature(key, event.seq, event.mac))
    )
    return event


def _target(target: Any) -> tuple[str | None, str | None]:
    if target is None:
        return None, None
    if isinstance(target, tuple):
        return str(target[0]), str(target[1])
    return type(target).__tablename__, str(target.id)


@dataclass
class Verification:
    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(key: str | None = None) -> Verification:
    """Walk the whole chain and the head; report every break found."""
    key = key or current_app.config["AUDIT_KEY"]
    result = Verification()
    expected_seq, prev_mac = 1, ""
    query = sa.select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=1000)
    for event in db.session.scalars(query):
        result.checked += 1
        if event.seq != expected_seq:
            result.problems.append(f"entries {expected_seq}..{event.seq - 1} are missing")
        elif event.prev_mac != prev_mac:
            result.problems.append(f"entry {event.seq} does not follow entry {event.seq - 1}")
        if not hmac.compare_digest(event.mac, _mac(key, _entry_payload(event))):
            result.problems.append(f"entry {event.seq} was altered")
        expected_seq, prev_mac = event.seq + 1, event.mac
    _verify_head(key, expected_seq - 1, prev_mac, result)
    return result


def _verify_head(key: str, last_seq: int, last_mac: str, result: Verification) -> None:
    head = db.session.get(AuditHead, HEAD_ID)
    if head is None:
        if last_seq:
            result.problems.append("the chain's head record is missing")
        return
    if (head.seq, head.mac, head.signature, last_seq) == (0, "", "", 0):
        return  # the unsigned row the migration writes (it has no key): nothing appended yet
    if not hmac.compare_digest(head.signature, _head_signature(key, head.seq, head.mac)):
        result.problems.append("the chain's head record was altered")
    elif head.seq != last_seq or head.mac != last_mac:
        result.problems.append(
            f"the chain ends at entry {last_seq} but its head records entry {head.seq}: "
            "entries were cut off"
        )
