"""When the SMS delivery of a message settles: only once no recipient is queued or sending.

The sweep and every batch task ask; a fan-out may be committing the recipient rows at that very
moment, so the decision is taken again under the message's lock from one count.
"""

from __future__ import annotations

import pytest

from crisis.extensions import db
from crisis.incidents import service as incidents
from crisis.models import Delivery, DeliveryState, Message, MessageState, RecipientState, SmsRecipient
from crisis.tasks import sms


@pytest.fixture
def sending(app, make_user):
    """A message sending by SMS to three recipients; returns a maker of its recipient rows."""
    author = make_user("editor")
    with app.app_context():
        incident = incidents.create_incident(title="Brand Kerkstraat", mode="live", actor_id=None)
        message = Message(incident=incident, author_id=author.id, channels=["sms"],
                          state=MessageState.sending, recipient_count=3)
        db.session.add(message)
        db.session.flush()
        db.session.add(Delivery(message_id=message.id, channel="sms", state=DeliveryState.sending))
        db.session.commit()
        message_id = message.id

    def rows(*states: RecipientState) -> int:
        with app.app_context():
            db.session.add_all(SmsRecipient(message_id=message_id, phone=f"+3161000000{i}",
                                            state=state) for i, state in enumerate(states))
            db.session.commit()
        return message_id

    return rows


def delivery_state(app, message_id: int) -> DeliveryState:
    with app.app_context():
        return db.session.scalar(db.select(Delivery.state).where(Delivery.message_id == message_id))


def test_rows_still_queued_under_the_lock_keep_it_sending(app, sending):
    # As when a caller's quick check ran before the fan-out committed the rows.
    message_id = sending(RecipientState.queued, RecipientState.queued, RecipientState.accepted)
    with app.app_context():
        sms.settle_if_done(message_id)
    assert delivery_state(app, message_id) is DeliveryState.sending


def test_rows_not_all_created_keep_it_sending(app, sending):
    message_id = sending(RecipientState.accepted)
    with app.app_context():
        sms.finish_if_done(message_id)
    assert delivery_state(app, message_id) is DeliveryState.sending


def test_settled_rows_accept_it(app, sending, monkeypatch):
    monkeypatch.setattr(sms, "emit_progress", lambda *args, **kwargs: None)
    message_id = sending(RecipientState.accepted, RecipientState.delivered, RecipientState.failed)
    with app.app_context():
        sms.finish_if_done(message_id)
    assert delivery_state(app, message_id) is DeliveryState.accepted
