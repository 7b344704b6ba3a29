"""Export and erasure of one phone number (AVG art. 15 and 17), retention, and the console's
subscriber pages: after erasure the number is nowhere, in any table or in the sandbox."""

from __future__ import annotations

import json
from datetime import timedelta

import sqlalchemy as sa

from crisis.cli import main
from crisis.extensions import db
from crisis.models import (
    AuditEvent,
    Reaction,
    ReactionChannel,
    RecipientState,
    SmsRecipient,
    Subscriber,
    SubscriberStatus,
    VerificationCode,
)
from crisis.models.types import utcnow
from tests.conftest import login
from tests.crisis import test_subscriptions as subscriptions
from tests.crisis.test_subscriptions import (
    OTHER,
    PHONE,
    broadcast,
    subscribe_by_web,
    text_us,
    wait_texts,
)

# The same fixtures as the subscription tests: kernen, a sandbox and fresh limits.
kernen = subscriptions.kernen
kernen_db = subscriptions.kernen_db


def forms_of(phone: str) -> set[str]:
    """The ways a Dutch number can be written down: +31612345678, 31612345678, 0612345678."""
    return {phone, phone[1:], "0" + phone[3:]}


def walk(app, phone: str) -> list[str]:
    """Every table (reflected from the database, not the models), every row, every column."""
    needles = forms_of(phone)
    hits = []
    with app.app_context():
        metadata = sa.MetaData()
        metadata.reflect(db.engine)
        assert len(metadata.tables) >= 15  # the whole schema, not a subset
        with db.engine.connect() as conn:
            for table in metadata.sorted_tables:
                for row in conn.execute(table.select()).mappings():
                    for column, value in row.items():
                        if value is None:
                            continue
                        text = json.dumps(value) if isinstance(value, dict | list) else str(value)
                        if any(needle in text for needle in needles):
                            hits.append(f"{table.name}.{column}")
    return sorted(set(hits))


def in_sandbox(running, phone: str) -> list[str]:
    found = []
    for path in ("/twilio/messages", "/twilio/callbacks"):
        dump = json.dumps(running.sandbox.control("GET", path))
        if any(needle in dump for needle in forms_of(phone)):
            found.append(path)
    return found


def test_export_holds_everything_and_erasure_leaves_only_counts(app, running, kernen,
                                                                  make_user, admin):
    client = app.test_client()
    subscribe_by_web(client, running, PHONE, [kernen["dalfsen"]])
    text_us(running, OTHER, "AANMELDEN Dalfsen")
    message_id = broadcast(app, running, make_user, [kernen["dalfsen"]],
                           "Stroomstoring in Dalfsen. Er wordt aan gewerkt.")
    wait_texts(running, PHONE, 3)
    running.wait_for(lambda: db.session.scalar(sa.select(sa.func.count()).select_from(
        SmsRecipient).where(SmsRecipient.state.in_([RecipientState.sent,
                                                    RecipientState.delivered]))) == 2)
    text_us(running, PHONE, "Hoe lang duurt het nog?")  # a reaction, stored with the number
    running.wait_for(lambda: db.session.scalar(sa.select(Reaction).where(
        Reaction.author_ref == PHONE)))

    api, headers = admin
    export = api.get("/api/v1/subscribers/0612345678/export")
    assert export.status_code == 200, export.get_json()
    data = export.get_json()
    assert data["phone"] == PHONE and data["held"] is True
    assert data["subscriber"]["status"] == "active"
    assert data["subscriber"]["consent"]["how"] == "web"
    assert data["subscriber"]["areas"] == [{"id": kernen["dalfsen"], "code": "dalfsen",
                                            "name": "Dalfsen"}]
    assert len(data["verification_codes"]) == 1 and data["verification_codes"][0]["used_at"]
    assert "code_hash" not in json.dumps(data)
    assert [m["message_id"] for m in data["sms_messages"]] == [message_id]
    assert data["sms_messages"][0]["state"] in ("sent", "delivered")
    assert [r["text"] for r in data["reactions"]] == ["Hoe lang duurt het nog?"]

    # Before: the walk finds the number where we expect it (so it can find it at all).
    assert {"subscribers.phone", "sms_recipients.phone", "reactions.author_ref"} <= set(
        walk(app, PHONE))
    assert in_sandbox(running, PHONE)
    with app.app_context():
        from crisis.messages.service import sms_counts

        counts_before = sms_counts(message_id)

    erased = api.delete(f"/api/v1/subscribers/{PHONE}", headers=headers)
    assert erased.status_code == 200, erased.get_json()
    result = erased.get_json()["erased"]
    assert result["subscribers"] == 1 and result["verification_codes"] == 1
    assert result["sms_recipients"] == 1 and result["reactions"] == 1
    assert result["sandbox"]["ok"] is True and result["sandbox"]["erased"] >= 4

    assert walk(app, PHONE) == []
    assert in_sandbox(running, PHONE) == []
    with app.app_context():
        from crisis import audit
        from crisis.messages.service import sms_counts

        # Only anonymous delivery counts remain: the row, its state, no number, no subscriber.
        rows = db.session.execute(sa.select(SmsRecipient.phone, SmsRecipient.subscriber_id,
                                            SmsRecipient.provider_sid, SmsRecipient.state)
                                  .where(SmsRecipient.message_id == message_id)).all()
        assert len(rows) == 2
        anonymous = [r for r in rows if r.phone is None]
        assert len(anonymous) == 1 and anonymous[0].subscriber_id is None
        assert anonymous[0].provider_sid is None and anonymous[0].state.value in ("sent",
                                                                                  "delivered")
        assert sms_counts(message_id)["total"] == counts_before["total"]
        assert sms_counts(message_id)["accepted_total"] == counts_before["accepted_total"]
        reaction = db.session.scalar(sa.select(Reaction).where(Reaction.text == ""))
        assert reaction.author_ref is None and reaction.author_name == ""
        # The other subscriber is untouched.
        assert db.session.scalar(sa.select(Subscriber.status).where(
            Subscriber.phone == OTHER)) is SubscriberStatus.active
        # The audit chain held ids only: nothing to erase there, and it still verifies.
        assert audit.verify().ok
        event = db.session.scalar(sa.select(AuditEvent).where(
            AuditEvent.action == "subscriber.erased"))
        assert event.target_type == "subscribers" and event.data["via"] == "api"
    assert OTHER in json.dumps(running.sandbox.control("GET", "/twilio/messages"))

    # Erasing again is harmless, and the export now says we hold nothing.
    again = api.delete(f"/api/v1/subscribers/{PHONE}", headers=headers).get_json()["erased"]
    assert again["subscribers"] == 0 and again["sms_recipients"] == 0
    assert api.get(f"/api/v1/subscribers/{PHONE}/export").get_json()["held"] is False


def test_the_api_is_for_admins_with_a_second_factor(app, make_user):
    editor = app.test_client()
    login(editor, make_user("editor"))
    assert editor.get(f"/api/v1/subscribers/{PHONE}/export").status_code == 403
    no_totp = app.test_client()
    login(no_totp, make_user("admin"), totp=False)
    assert no_totp.get(f"/api/v1/subscribers/{PHONE}/export").status_code == 403
    assert app.test_client().get(f"/api/v1/subscribers/{PHONE}/export").status_code == 401


def _holding(app, phone: str = PHONE) -> int:
    with app.app_context():
        sub = Subscriber(phone=phone, area_ids=[], status=SubscriberStatus.active,
                         consent={"how": "sms", "when": utcnow().isoformat()})
        db.session.add(sub)
        db.session.flush()
        db.session.add(VerificationCode(subscriber_id=sub.id, code_hash="x$y", requester="r" * 64,
                                        expires_at=utcnow()))
        db.session.add(Reaction(channel=ReactionChannel.sms, provider_id="SM" + "1" * 32,
                                author_ref=phone, author_name="+31 ••• 678",
                                text="Is het water veilig?"))
        db.session.commit()
        return sub.id


def test_cli_export_and_erase(app):
    _holding(app)
    runner = app.test_cli_runner()
    exported = runner.invoke(main, ["subscribers", "export", "06-12345678"])
    assert exported.exit_code == 0, exported.output
    data = json.loads(exported.output)
    assert data["subscriber"]["phone"] == PHONE
    assert data["reactions"][0]["text"] == "Is het water veilig?"
    assert len(data["verification_codes"]) == 1

    refused = runner.invoke(main, ["subscribers", "erase", PHONE], input="n\n")
    assert refused.exit_code == 1 and "Aborted" in refused.output
    assert walk(app, PHONE)
    erased = runner.invoke(main, ["subscribers", "erase", PHONE], input="y\n")
    assert erased.exit_code == 0, erased.output
    assert "subscribers 1" in erased.output and "reactions 1" in erased.output
    assert walk(app, PHONE) == []
    assert runner.invoke(main, ["subscribers", "erase", PHONE, "--yes"]).exit_code == 0
    bad = runner.invoke(main, ["subscribers", "export", "not a number"])
    assert bad.exit_code == 2 and "not a phone number" in bad.output
    with app.app_context():
        actions = list(db.session.scalars(sa.select(AuditEvent.action)))
        assert "subscriber.exported" in actions and actions.count("subscriber.erased") == 2


def test_retention_purge(app, make_user):
    from crisis.incidents import service as incidents
    from crisis.models import Message
    from crisis.subscriptions import privacy

    author = make_user("editor")
    now = utcnow()
    with app.app_context():
        incident = incidents.create_incident(title="Oefening", mode="drill", actor_id=None)
        message = Message(incident=incident, author_id=author.id, channels=["sms"])
        db.session.add(message)
        people = {
            "pending_old": Subscriber(phone="+31611111111", status=SubscriberStatus.pending,
                                      created_at=now - timedelta(hours=25)),
            "pending_new": Subscriber(phone="+31622222222", status=SubscriberStatus.pending,
                                      created_at=now - timedelta(hours=2)),
            "stopped_old": Subscriber(phone="+31633333333", status=SubscriberStatus.stopped,
                                      stopped_at=now - timedelta(days=31)),
            "stopped_new": Subscriber(phone="+31644444444", status=SubscriberStatus.stopped,
                                      stopped_at=now - timedelta(days=3)),
            "active": Subscriber(phone="+31655555555", status=SubscriberStatus.active,
                                 created_at=now - timedelta(days=400)),
        }
        db.session.add_all(people.values())
        db.session.flush()
        db.session.add_all([
            SmsRecipient(message_id=message.id, subscriber_id=people["active"].id,
                         phone="+31655555555", state=RecipientState.delivered,
                         updated_at=now - timedelta(days=200)),
        ])
        db.session.commit()
        result = privacy.purge()
        assert result["erased"] == 2 and result["recipients_blanked"] == 1
        left = set(db.session.scalars(sa.select(Subscriber.phone)))
        assert left == {"+31622222222", "+31644444444", "+31655555555"}
        row = db.session.scalar(sa.select(SmsRecipient))
        assert row.phone is None and row.state.value == "delivered"
        assert row.subscriber_id == people["active"].id  # still counted for them while active
    assert app.extensions["celery"].conf.beat_schedule["subscriptions-purge"]["task"] == \
        "crisis.subscriptions.tasks.purge"


def test_console_shows_counts_not_numbers(app, kernen_db, admin, make_user):
    with app.app_context():
        for i, status in enumerate(["active", "active", "stopped", "pending"]):
            db.session.add(Subscriber(phone=f"+3161234{i:04d}", area_ids=[kernen_db["ankum"]],
                                      status=SubscriberStatus(status)))
        db.session.add(Subscriber(phone="+31699990000", area_ids=[kernen_db["ankum"]],
                                  status=SubscriberStatus.active, synthetic=True))
        db.session.commit()
    client, headers = admin
    page = client.get("/console/subscribers").get_data(as_text=True)
    assert "Ankum" in page and "+316" not in page
    one = client.get("/console/subscribers?phone=06 1234 0001").get_data(as_text=True)
    assert "+31612340001" in one and "+31612340002" not in one
    with app.app_context():
        looked = db.session.scalar(sa.select(AuditEvent).where(
            AuditEvent.action == "subscriber.looked_up"))
        assert looked.target_type == "subscribers" and "+316" not in json.dumps(looked.data)

    # Erasure from the console needs the box ticked.
    token = headers["X-CSRFToken"]
    unticked = client.post("/console/subscribers/erase",
                           data={"phone": "+31612340001", "csrf_token": token})
    assert unticked.status_code == 303
    with app.app_context():
        assert db.session.scalar(sa.select(Subscriber).where(Subscriber.phone == "+31612340001"))
    ticked = client.post("/console/subscribers/erase", data={"phone": "+31612340001",
                                                             "confirm": "yes", "csrf_token": token})
    assert ticked.status_code == 303
    assert walk(app, "+31612340001") == []

    viewer = app.test_client()
    login(viewer, make_user("approver"))
    assert viewer.get("/console/subscribers").status_code == 403
    assert viewer.get("/console/subscribers.csv").status_code == 403
