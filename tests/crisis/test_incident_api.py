"""The incident page's endpoints: its messages, the SMS recipients of a draft, approvals waiting."""

from __future__ import annotations

import json
import re

import pytest

from crisis.extensions import db
from crisis.incidents import service as incidents
from crisis.messages import service
from crisis.models import Area, Incident, Subscriber, SubscriberStatus, User
from tests.conftest import login


@pytest.fixture
def world(app, make_user):
    """Two areas with subscribers (real and synthetic), a live and a drill incident, two people."""
    editor, approver = make_user("editor"), make_user("approver")
    with app.app_context():
        north = Area(code="noord", name="Noord", postcodes=["7711"])
        south = Area(code="zuid", name="Zuid", postcodes=["8151"])
        db.session.add_all([north, south])
        db.session.flush()
        people = [
            ("+31611000001", [north.id], "nl", SubscriberStatus.active, False),
            ("+31611000002", [north.id], "en", SubscriberStatus.active, False),
            ("+31611000003", [north.id, south.id], "nl", SubscriberStatus.active, False),
            ("+31611000004", [south.id], "nl", SubscriberStatus.active, False),
            ("+31611000005", [north.id], "nl", SubscriberStatus.stopped, False),
            ("+31611000006", [north.id], "nl", SubscriberStatus.pending, False),
            ("+31611000007", [north.id], "nl", SubscriberStatus.active, True),  # drill only
        ]
        for phone, areas, language, status, synthetic in people:
            db.session.add(Subscriber(phone=phone, area_ids=areas, language=language, status=status,
                                      synthetic=synthetic))
        live = incidents.create_incident(title="Brand Industrieweg", mode="live", actor_id=editor.id,
                                         area_ids=[north.id])
        drill = incidents.create_incident(title="Oefening dijk", mode="drill", actor_id=editor.id,
                                          area_ids=[north.id])
        db.session.commit()
        return {"editor": editor, "approver": approver, "north": north.id, "south": south.id,
                "live": live.id, "drill": drill.id}


def _draft(app, incident_id, author_id, **fields):
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        message = service.create_draft(incident, db.session.get(User, author_id),
                                       {"body": "Houd ramen en deuren dicht.", **fields})
        db.session.commit()
        return message.id


def test_messages_newest_first_with_names(client, app, world):
    first = _draft(app, world["live"], world["editor"].id, body="Eerste bericht")
    second = _draft(app, world["live"], world["editor"].id, body="Tweede bericht")
    _draft(app, world["drill"], world["editor"].id, body="Niet van dit incident")
    login(client, world["editor"])
    response = client.get(f"/api/v1/incidents/{world['live']}/messages")
    assert response.status_code == 200
    data = response.get_json()
    assert [m["id"] for m in data["messages"]] == [second, first]
    assert data["messages"][0]["body"] == "Tweede bericht"
    assert data["messages"][0]["state"] == "draft"
    assert "texts" not in data["messages"][0]  # the list stays light: no rendering per message
    assert data["users"] == {str(world["editor"].id): world["editor"].email}


def test_messages_need_a_login_and_an_incident(client, world, make_user):
    assert client.get(f"/api/v1/incidents/{world['live']}/messages").status_code == 401
    login(client, make_user("viewer"))
    assert client.get(f"/api/v1/incidents/{world['live']}/messages").status_code == 200
    assert client.get("/api/v1/incidents/999999/messages").status_code == 404


def test_recipients_live_counts_active_real_subscribers_per_language(client, world):
    login(client, world["editor"])
    url = f"/api/v1/incidents/{world['live']}/recipients"
    north = client.get(f"{url}?area_ids={world['north']}").get_json()
    assert north == {"count": 3, "by_language": {"nl": 2, "en": 1}}
    both = client.get(f"{url}?area_ids={world['north']},{world['south']}").get_json()
    assert both["count"] == 4  # the subscriber in both areas counts once
    assert client.get(f"{url}?area_ids=").get_json() == {"count": 0, "by_language": {}}
    assert client.get(f"{url}?area_ids=noord").status_code == 422


def test_recipients_drill_counts_synthetic_subscribers_only(client, world):
    login(client, world["editor"])
    drill = client.get(f"/api/v1/incidents/{world['drill']}/recipients?area_ids={world['north']}")
    assert drill.get_json() == {"count": 1, "by_language": {"nl": 1}}


def test_recipients_match_what_submit_snapshots(client, app, world):
    """The composer's count is the approver's count: the same rule as texts.recipient_ids."""
    for incident in ("live", "drill"):
        message_id = _draft(app, world[incident], world["editor"].id,
                            area_ids=[world["north"], world["south"]])
        with app.app_context():
            submitted = service.submit(db.session.get(service.Message, message_id),
                                       db.session.get(User, world["editor"].id))
            db.session.commit()
            snapshot = submitted.recipient_count
        login(client, world["editor"])
        counted = client.get(f"/api/v1/incidents/{world[incident]}/recipients"
                             f"?area_ids={world['north']},{world['south']}").get_json()
        assert counted["count"] == snapshot


def test_recipients_of_a_follow_up_are_the_originals(client, app, world):
    from crisis.models import RecipientState, SmsRecipient

    original = _draft(app, world["live"], world["editor"].id)
    with app.app_context():
        reached = db.session.scalars(db.select(Subscriber).where(
            Subscriber.phone.in_(["+31611000001", "+31611000002"]))).all()
        for subscriber in reached:
            db.session.add(SmsRecipient(message_id=original, subscriber_id=subscriber.id,
                                        phone=subscriber.phone, state=RecipientState.delivered))
        db.session.commit()
    login(client, world["editor"])
    url = f"/api/v1/incidents/{world['live']}/recipients?supersedes={original}"
    assert client.get(url).get_json() == {"count": 2, "by_language": {"nl": 1, "en": 1}}
    other = f"/api/v1/incidents/{world['drill']}/recipients?supersedes={original}"
    assert client.get(other).status_code == 404


def test_approvals_waiting_for_approvers(client, app, world, make_user):
    message_id = _draft(app, world["live"], world["editor"].id)
    with app.app_context():
        service.submit(db.session.get(service.Message, message_id),
                       db.session.get(User, world["editor"].id))
        db.session.commit()
    login(client, world["approver"])
    assert client.get("/api/v1/approvals").get_json() == {"count": 1, "message_ids": [message_id]}
    page = client.get(f"/console/incidents/{world['live']}").get_data(as_text=True)
    assert re.search(r'id="approvals-count"[^>]*data-count="1"', page)
    assert 'src="/static/js/approvals.js"' in page and 'data-role="approver"' in page


def test_approvals_waiting_is_not_for_editors(client, world):
    login(client, world["editor"])
    assert client.get("/api/v1/approvals").status_code == 403
    page = client.get(f"/console/incidents/{world['live']}").get_data(as_text=True)
    assert "approvals-count" not in page and "approvals.js" not in page


def test_incident_page_carries_its_data_and_no_inline_script(client, app, world, make_user):
    message_id = _draft(app, world["live"], world["editor"].id, body="<script>alert(1)</script>")
    login(client, world["editor"])
    response = client.get(f"/console/incidents/{world['live']}")
    html = response.get_data(as_text=True)
    assert 'id="composer"' in html
    data = json.loads(re.search(r'<script type="application/json" id="incident-data">(.*?)</script>',
                                html, re.S).group(1))
    assert data["messages"][0]["id"] == message_id
    assert data["incident"]["area_ids"] == [world["north"]]
    assert data["me"]["can_draft"] is True and data["me"]["can_approve"] is False
    assert "<script>alert" not in html  # the body is JSON-escaped inside the data block
    strings = json.loads(re.search(r'<script type="application/json" id="i18n">(.*?)</script>',
                                   html, re.S).group(1))
    assert strings["states"]["sent"]
    # Every script is a file or JSON data: nothing the CSP would have to allow inline.
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag
    assert not re.search(r"\son[a-z]+=", html)

    viewer_client = app.test_client()
    login(viewer_client, make_user("viewer"))
    viewer_page = viewer_client.get(f"/console/incidents/{world['live']}").get_data(as_text=True)
    assert 'id="composer"' not in viewer_page and 'id="message-list"' in viewer_page
