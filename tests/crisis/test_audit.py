"""The audit chain: `crisis audit verify` finds edited, deleted and cut-off rows; appends serialise."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from crisis import audit
from crisis.cli import main
from crisis.extensions import db
from crisis.models import AuditEvent, AuditHead


def verify(app):
    result = app.test_cli_runner().invoke(main, ["audit", "verify"])
    return result.exit_code, result.output


def append(app, count: int) -> None:
    with app.app_context():
        for n in range(count):
            audit.record("test.event", actor_id=n, target=("incidents", n), n=n)
            db.session.commit()


def run_sql(app, statement: str, **params) -> None:
    """Tamper as someone with database access would: plain SQL, no ORM, no key."""
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def test_an_empty_chain_verifies(app):
    code, output = verify(app)
    assert code == 0, output
    assert "ok: 0 entries" in output


def test_an_intact_chain_verifies(app):
    append(app, 5)
    code, output = verify(app)
    assert code == 0, output
    assert output.strip() == "ok: 5 entries, chain intact"


def test_entries_link_to_their_predecessor(app):
    append(app, 3)
    with app.app_context():
        events = list(db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq)))
        head = db.session.get(AuditHead, audit.HEAD_ID)
        assert [e.seq for e in events] == [1, 2, 3]
        assert events[0].prev_mac == ""
        assert events[1].prev_mac == events[0].mac and events[2].prev_mac == events[1].mac
        assert (head.seq, head.mac) == (3, events[2].mac)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET action = 'login' WHERE seq = 3",
        "UPDATE audit_events SET actor_id = 99 WHERE seq = 3",
        "UPDATE audit_events SET target_id = '7' WHERE seq = 3",
        "UPDATE audit_events SET data = '{\"n\": 7}' WHERE seq = 3",
    ],
    ids=["action", "actor", "target", "data"],
)
def test_a_hand_edited_row_is_reported(app, statement):
    append(app, 5)
    run_sql(app, statement)
    code, output = verify(app)
    assert code == 1
    assert "BROKEN: entry 3 was altered" in output
    assert "entry 2 " not in output and "entry 4 " not in output  # the break is pinpointed


def test_an_edited_row_with_a_recomputed_plain_hash_is_still_reported(app):
    """Without the key nobody can forge a MAC; a SHA-256 of the payload is not one."""
    import hashlib

    append(app, 3)
    with app.app_context():
        event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.seq == 2))
        event.action = "nothing.happened"
        event.mac = hashlib.sha256(audit._entry_payload(event).encode()).hexdigest()
        db.session.commit()
    code, output = verify(app)
    assert code == 1
    assert "BROKEN: entry 2 was altered" in output


def test_a_deleted_middle_row_is_reported(app):
    append(app, 5)
    run_sql(app, "DELETE FROM audit_events WHERE seq = 3")
    code, output = verify(app)
    assert code == 1
    assert "BROKEN: entries 3..3 are missing" in output
    assert "cut off" not in output


def test_a_deleted_row_with_renumbered_successors_is_reported(app):
    """Closing the gap by renumbering breaks the links instead."""
    append(app, 5)
    run_sql(app, "DELETE FROM audit_events WHERE seq = 3")
    run_sql(app, "UPDATE audit_events SET seq = seq - 1 WHERE seq > 3")
    code, output = verify(app)
    assert code == 1
    assert "BROKEN: entry 3 does not follow entry 2" in output


def test_truncated_rows_are_reported(app):
    append(app, 5)
    run_sql(app, "DELETE FROM audit_events WHERE seq > 3")
    code, output = verify(app)
    assert code == 1
    assert "BROKEN: the chain ends at entry 3 but its head records entry 5" in output
    assert "entries were cut off" in output


def test_truncation_with_a_rewound_head_is_reported(app):
    """Rewinding the head to the new last entry needs the key to re-sign it."""
    append(app, 5)
    run_sql(app, "DELETE FROM audit_events WHERE seq > 3")
    run_sql(app, "UPDATE audit_head SET seq = 3, mac = (SELECT mac FROM audit_events "
                 "WHERE seq = 3) WHERE id = 1")
    code, output = verify(app)
    assert code == 1
    assert "BROKEN: the chain's head record was altered" in output


def test_a_wiped_chain_is_reported(app):
    append(app, 4)
    run_sql(app, "DELETE FROM audit_events")
    code, output = verify(app)
    assert code == 1
    assert "head records entry 4" in output


def test_verify_needs_the_right_key(app, monkeypatch):
    append(app, 2)
    monkeypatch.setitem(app.config, "AUDIT_KEY", "another-key")
    code, output = verify(app)
    assert code == 1
    assert "BROKEN: entry 1 was altered" in output and "BROKEN: entry 2 was altered" in output


def test_an_append_rolls_back_with_its_transaction(app):
    append(app, 2)
    with app.app_context():
        audit.record("test.rolled_back")
        db.session.rollback()
    append(app, 1)
    code, output = verify(app)
    assert code == 0, output
    assert "ok: 3 entries" in output


def test_fifty_concurrent_appends_leave_one_unbroken_chain(app):
    threads_count = 50
    start = threading.Barrier(threads_count, timeout=30)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            with app.app_context():
                start.wait()
                audit.record("test.concurrent", actor_id=n, n=n)
                db.session.commit()
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert not errors, errors

    with app.app_context():
        rows = db.session.execute(
            sa.select(AuditEvent.seq, AuditEvent.actor_id).order_by(AuditEvent.seq)
        ).all()
    assert [seq for seq, _actor in rows] == list(range(1, threads_count + 1))
    assert sorted(actor for _seq, actor in rows) == list(range(threads_count))
    code, output = verify(app)
    assert code == 0, output
    assert "ok: 50 entries, chain intact" in output
