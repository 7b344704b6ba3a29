"""Reactions over the API: the feed's list and filters, handling, answers, clusters, follow-ups,
the inbox, and the processing task (classification, clusters, spikes) run in-process."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from channels.sms import InboundSms
from channels.x import Mention
from crisis import live
from crisis.extensions import db
from crisis.incidents import service as incidents
from crisis.messages import service as messages
from crisis.models import (
    AuditEvent,
    Cluster,
    Delivery,
    DeliveryState,
    Incident,
    IncidentStatus,
    Message,
    Reaction,
    ReactionChannel,
    RecipientState,
    SmsRecipient,
    User,
)
from crisis.reactions import ingest
from crisis.tasks.nudges import Nudges
from crisis.tasks.reactions import process_reaction
from tests.conftest import csrf_token, login, patch_task

QUESTIONS = [
    "Mag ik het kraanwater drinken?",
    "Kan ik het kraanwater nog drinken?",
    "Is het kraanwater veilig om te drinken?",
    "Moet ik kraanwater koken voor het drinken?",
]


@pytest.fixture(autouse=True)
def _no_worker(app, monkeypatch):
    """Tasks run only where a test runs them: a worker another test started must not race."""
    from crisis.tasks import reactions as tasks

    patch_task(monkeypatch, app, tasks.process_reaction, lambda *args, **kwargs: None)
    patch_task(monkeypatch, app, tasks.send_reply, lambda *args, **kwargs: None)


@pytest.fixture
def emitted(monkeypatch):
    """Every live event sent (after commit), as (event, payload, incident_id)."""
    events = []
    monkeypatch.setattr(live, "emit", lambda event, payload, incident_id=None:
                        events.append((event, payload, incident_id)))
    return events


@pytest.fixture
def world(app, make_user):
    editor, viewer = make_user("editor"), make_user("viewer")
    with app.app_context():
        from crisis.models import Area

        area = Area(code="dalfsen", name="Dalfsen", postcodes=["7721"])
        db.session.add(area)
        db.session.flush()
        incident = incidents.create_incident(title="Kookadvies Dalfsen", mode="live",
                                             actor_id=editor.id, area_ids=[area.id])
        drill = incidents.create_incident(title="Oefening kookadvies", mode="drill",
                                          actor_id=editor.id, area_ids=[area.id])
        message = messages.create_draft(incident, db.session.get(User, editor.id),
                                        {"body": "Kook uw kraanwater."})
        db.session.flush()
        for channel, provider_id in (("x", "1800000000000000001"), ("facebook", "1234567890_55"),
                                     ("sms", None)):
            db.session.add(Delivery(message_id=message.id, channel=channel, provider_id=provider_id,
                                    state=DeliveryState.accepted))
        db.session.add(SmsRecipient(message_id=message.id, phone="+31612345678",
                                    state=RecipientState.delivered, provider_sid="SMout1"))
        db.session.commit()
        return {"editor": editor, "viewer": viewer, "incident": incident.id, "drill": drill.id,
                "message": message.id, "area": area.id}


def _form(app, incident_id: int, text: str, key: str) -> int:
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        reaction_id = ingest.ingest_form(incident, text, "Anna", key)
        db.session.commit()
    process(app, reaction_id)
    return reaction_id


def process(app, reaction_id: int) -> None:
    with app.app_context():
        process_reaction(reaction_id)
        db.session.remove()


def _reaction(app, reaction_id: int) -> Reaction:
    with app.app_context():
        reaction = db.session.get(Reaction, reaction_id)
        db.session.expunge(reaction)
        return reaction


def _api(client, user):
    login(client, user)
    token = csrf_token(client, "/console/")
    return lambda method, url, **kw: client.open(url, method=method, headers={"X-CSRFToken": token}, **kw)


# --------------------------------------------------------------------------- storing and attaching


def test_each_channel_attaches_to_what_it_answers(app, world):
    with app.app_context():
        x = ingest.ingest_mention(Mention(id="1900000000000000001", text="@crisis_nl drinkwater?",
                                          author_id="42", author_username="anna",
                                          in_reply_to_id="1800000000000000001",
                                          referenced_ids=("1800000000000000001",)))
        from channels.facebook import Comment

        fb = ingest.ingest_comment(Comment(comment_id="55_1", post_id="1234567890_55", verb="add",
                                           parent_id="1234567890_55", author_id="7",
                                           author_name="Bert", message="Moet ik koken?"))
        sms = ingest.ingest_sms(InboundSms(message_sid="SMin1", account_sid="AC1",
                                           from_number="+31612345678", to="+3197010000000",
                                           body="Hoe lang nog koken?"))
        stray = ingest.ingest_sms(InboundSms(message_sid="SMin2", account_sid="AC1",
                                             from_number="+31699999999", to="+3197010000000",
                                             body="Wie ben jij?"))
        db.session.commit()
        rows = {r.id: r for r in db.session.scalars(sa.select(Reaction))}
        for reaction_id in (x, fb, sms):
            assert rows[reaction_id].incident_id == world["incident"]
            assert rows[reaction_id].message_id == world["message"]
            assert rows[reaction_id].drill is False
        assert rows[sms].author_ref == "+31612345678" and "5678" not in rows[sms].author_name
        assert rows[stray].incident_id is None  # the inbox
        # The same provider id again: stored once.
        again = ingest.ingest_sms(InboundSms(message_sid="SMin1", account_sid="AC1",
                                             from_number="+31612345678", to="+3197010000000",
                                             body="Hoe lang nog koken?"))
        db.session.commit()
        assert again is None
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Reaction)) == 4


@pytest.mark.parametrize("source, sandbox_url", [("provider", None), ("sandbox", "http://sandbox")])
def test_an_sms_is_stored_as_the_two_step_path_would_store_it(app, world, monkeypatch, source,
                                                              sandbox_url):
    """The SMS webhook looks up what an SMS answers inside its INSERT; every attachment rule
    (live, drill, closed, nothing answered, a redelivery) must come out as `store` decides it."""
    monkeypatch.setitem(app.config, "SANDBOX_URL", sandbox_url)
    with app.app_context():
        editor = db.session.get(User, world["editor"].id)
        closed = incidents.create_incident(title="Oud", mode="live", actor_id=editor.id,
                                           area_ids=[world["area"]])
        for incident_id, phone in ((world["drill"], "+31611111111"), (closed.id, "+31622222222")):
            message = messages.create_draft(db.session.get(Incident, incident_id), editor, {"body": "x"})
            db.session.flush()
            db.session.add(Delivery(message_id=message.id, channel="sms", state=DeliveryState.accepted))
            db.session.add(SmsRecipient(message_id=message.id, phone=phone, provider_sid=f"SM{phone}",
                                        state=RecipientState.sent))
        closed.status = IncidentStatus.closed
        db.session.commit()

        def columns(reaction_id):
            row = db.session.get(Reaction, reaction_id)
            return {name: getattr(row, name) for name in ingest._INSERT_COLUMNS
                    if name not in ("provider_id", "received_at")}

        phones = ("+31612345678", "+31611111111", "+31622222222", "+31699999999")
        for i, phone in enumerate(phones):
            inbound = InboundSms(message_sid=f"SMone{i}", account_sid="AC1", from_number=phone,
                                 to="+3197010000000", body="Hoe lang nog?")
            one_statement = ingest.ingest_sms(inbound, source=source)
            assert ingest.ingest_sms(inbound, source=source) is None  # a redelivery: stored once
            target = ingest._target(db.session.execute(ingest._SMS_ANSWERED, {"phone": phone}).first())
            incoming = ingest.Incoming(ReactionChannel.sms, f"SMtwo{i}", "Hoe lang nog?",
                                       ingest.mask_phone(phone), phone,
                                       target.in_reply_to if target else None)
            two_steps = ingest.store(incoming, target, source=source)
            db.session.commit()
            assert columns(one_statement) == columns(two_steps), phone
        attached = {phone: db.session.scalar(sa.select(Reaction.incident_id).where(
            Reaction.provider_id == f"SMone{i}")) for i, phone in enumerate(phones)}
        assert attached == {"+31612345678": world["incident"], "+31622222222": None,
                            "+31699999999": None,
                            "+31611111111": world["drill"] if sandbox_url else None}


def test_drill_and_live_never_mix(app, world):
    with app.app_context():
        drill_message = messages.create_draft(db.session.get(Incident, world["drill"]),
                                              db.session.get(User, world["editor"].id), {"body": "x"})
        db.session.flush()
        db.session.add(Delivery(message_id=drill_message.id, channel="x",
                                provider_id="1800000000000000009", state=DeliveryState.accepted))
        db.session.commit()

        def mention(i, reply_to):
            return Mention(id=f"19000000000000001{i}", text="vraag", in_reply_to_id=reply_to)

        # The real provider answering a drill's post: never into the exercise.
        real_to_drill = ingest.ingest_mention(mention(1, "1800000000000000009"), source="provider")
        # The sandbox's public credentials answering a live post: drill data only.
        drill_to_live = ingest.ingest_mention(mention(2, "1800000000000000001"), source="drill")
        drill_to_drill = ingest.ingest_mention(mention(3, "1800000000000000009"), source="drill")
        db.session.commit()
        rows = {r.id: r for r in db.session.scalars(sa.select(Reaction))}
        assert rows[real_to_drill].incident_id is None and rows[real_to_drill].drill is False
        assert rows[drill_to_live].incident_id == world["drill"]  # the one running drill
        assert rows[drill_to_drill].incident_id == world["drill"] and rows[drill_to_drill].drill


def test_processing_classifies_clusters_and_is_idempotent(app, world, emitted):
    ids = [_form(app, world["incident"], text, f"k{i}") for i, text in enumerate(QUESTIONS)]
    process(app, ids[0])  # again: nothing changes, nothing is sent twice
    with app.app_context():
        rows = [db.session.get(Reaction, i) for i in ids]
        assert all(r.category == "question" and r.processed_at for r in rows)
        assert len({r.cluster_id for r in rows}) == 1
        cluster = db.session.get(Cluster, rows[0].cluster_id)
        assert cluster.count == 4 and cluster.open_count == 4
        assert "kraanwater" in cluster.label and cluster.series[-1] == 4
        assert rows[0].triggers["category"]
    created = [r for e, p, _ in emitted if e == "reactions.created" for r in p["reactions"]]
    assert sorted(p["id"] for p in created) == sorted(ids)
    assert all(p["cluster_label"] == cluster.label and p["category"] == "question" for p in created)
    assert {i for e, _, i in emitted} == {world["incident"]}
    assert "author_ref" not in created[0]


def test_a_batch_is_announced_in_one_event(app, world, emitted):
    """Reactions processed together reach the consoles as one `reactions.created`, in order."""
    with app.app_context():
        incident = db.session.get(Incident, world["incident"])
        ids = [ingest.ingest_form(incident, text, "Anna", f"b{i}") for i, text in enumerate(QUESTIONS)]
        db.session.commit()
    process(app, ids[0])
    batches = [p for e, p, _ in emitted if e == "reactions.created"]
    assert len(batches) == 1
    assert [r["id"] for r in batches[0]["reactions"]] == ids
    assert batches[0]["incident_id"] == world["incident"]


def test_a_batch_writes_its_reactions_in_one_statement(app, world):
    """Classification, cluster and processed_at of a whole batch (new clusters included) go to
    the database as one UPDATE, run for every row, not one or two statements per reaction."""
    with app.app_context():
        incident = db.session.get(Incident, world["incident"])
        ids = [ingest.ingest_form(incident, text, "Anna", f"u{i}") for i, text in enumerate(QUESTIONS)]
        db.session.commit()
        engine = db.engine
    updates = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE REACTIONS"):
            updates.append(len(parameters) if executemany else 1)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        process(app, ids[0])
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert updates == [len(ids)]
    assert all(_reaction(app, i).cluster_id and _reaction(app, i).category == "question" for i in ids)


def test_the_drainer_lets_a_partial_batch_fill_before_reading_again(app, world, monkeypatch):
    """A full batch is followed at once; after a partial one the drainer waits, so under load
    the next read takes many reactions instead of the two or three that came meanwhile."""
    from crisis.tasks import reactions as tasks

    waits = []
    monkeypatch.setattr(tasks, "BATCH", 2)
    # The module's own `time` only: other threads of the session keep the real sleep.
    monkeypatch.setattr(tasks, "time", SimpleNamespace(sleep=waits.append, monotonic=time.monotonic))
    with app.app_context():
        incident = db.session.get(Incident, world["incident"])
        ids = [ingest.ingest_form(incident, text, "Anna", f"c{i}") for i, text in enumerate(QUESTIONS[:3])]
        db.session.commit()
    process(app, ids[0])
    assert waits == [tasks.COALESCE_SECONDS]  # after the batch of one, not after the full one
    assert all(_reaction(app, i).processed_at for i in ids)


def test_a_spike_is_announced_once(app, world, emitted):
    base = datetime.now(UTC) - timedelta(minutes=25)
    with app.app_context():
        incident = db.session.get(Incident, world["incident"])
        stamps = [base + timedelta(minutes=5 * b) for b in range(4)] + [base + timedelta(minutes=20)] * 11
        ids = []
        for i in range(len(stamps)):
            ids.append(ingest.ingest_form(incident, f"Stroom weg in straat {i}?", "", f"s{i}"))
        db.session.commit()
        for reaction_id, when in zip(ids, stamps, strict=True):
            db.session.execute(sa.update(Reaction).where(Reaction.id == reaction_id)
                               .values(received_at=when))
        db.session.commit()
    for reaction_id in ids:
        process(app, reaction_id)
    spikes = [(p, room) for e, p, room in emitted if e == "spike.detected"]
    incident_spikes = [p for p, room in spikes if p["scope"] == "incident" and room is not None]
    assert len(incident_spikes) == 1
    assert incident_spikes[0]["current"] >= 5 and incident_spikes[0]["incident_id"] == world["incident"]
    assert any(room is None for _, room in spikes)  # the team room hears it too


# --------------------------------------------------------------------------- the API


def test_list_filters_and_pages(app, client, world):
    ids = [_form(app, world["incident"], text, f"q{i}") for i, text in enumerate(QUESTIONS)]
    thanks = _form(app, world["incident"], "Dank jullie wel voor de snelle info!", "t1")
    call = _api(client, world["viewer"])
    url = f"/api/v1/incidents/{world['incident']}/reactions"
    everything = call("GET", url).get_json()
    assert [r["id"] for r in everything["reactions"]] == [thanks, *reversed(ids)]
    assert call("GET", url + "?category=thanks").get_json()["reactions"][0]["id"] == thanks
    cluster_id = everything["reactions"][-1]["cluster_id"]
    clustered = call("GET", f"{url}?cluster_id={cluster_id}").get_json()["reactions"]
    assert sorted(r["id"] for r in clustered) == sorted(ids)
    assert call("GET", url + "?channel=x,sms").get_json()["reactions"] == []
    first = call("GET", url + "?limit=2").get_json()
    assert len(first["reactions"]) == 2 and first["next_before_id"] == first["reactions"][-1]["id"]
    rest = call("GET", f"{url}?limit=10&before_id={first['next_before_id']}").get_json()
    assert len(rest["reactions"]) == 3 and rest["next_before_id"] is None
    future = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert call("GET", url, query_string={"since": future}).get_json()["reactions"] == []
    assert call("GET", url + "?category=nonsense").status_code == 422
    assert call("GET", url + "?handling=maybe").status_code == 422
    assert call("GET", "/api/v1/incidents/999999/reactions").status_code == 404


def test_reactions_need_a_login(client, world):
    assert client.get(f"/api/v1/incidents/{world['incident']}/reactions").status_code == 401


def test_handling_assigning_and_correcting_are_audited(app, client, world, emitted):
    reaction_id = _form(app, world["incident"], QUESTIONS[0], "h1")
    other = _form(app, world["incident"], QUESTIONS[1], "h2")
    call = _api(client, world["editor"])
    url = f"/api/v1/reactions/{reaction_id}"
    assigned = call("PATCH", url, json={"assignee_id": world["editor"].id}).get_json()
    assert assigned["handling"] == "assigned" and assigned["assignee_id"] == world["editor"].id
    handled = call("PATCH", url, json={"handling": "handled"}).get_json()
    assert handled["handling"] == "handled" and handled["handled_at"]
    corrected = call("PATCH", url, json={"category": "rumour"}).get_json()
    assert corrected["category"] == "rumour" and corrected["triggers"]["corrected_from"] == ["question"]
    assert call("PATCH", url, json={"handling": "maybe"}).status_code == 422
    assert call("PATCH", url, json={"assignee_id": world["viewer"].id}).status_code == 422
    assert call("PATCH", url, json={"text": "changed"}).status_code == 422
    with app.app_context():
        cluster = db.session.get(Cluster, _reaction(app, other).cluster_id)
        assert cluster.open_count == 1  # the handled one no longer counts as open
        entries = db.session.scalars(sa.select(AuditEvent).where(
            AuditEvent.action == "reaction.updated")).all()
        assert len(entries) == 3
        for entry in entries:
            assert entry.target_id == str(reaction_id)
            assert "kraanwater" not in str(entry.data)  # ids and codes, never the public's words
    updates = [p for e, p, _ in emitted if e == "reaction.updated"]
    assert updates[-1]["category"] == "rumour"
    assert any(e == "cluster.updated" and p["open_count"] == 1 for e, p, _ in emitted)


def test_viewers_cannot_change_or_answer(app, client, world):
    reaction_id = _form(app, world["incident"], QUESTIONS[0], "v1")
    call = _api(client, world["viewer"])
    assert call("PATCH", f"/api/v1/reactions/{reaction_id}", json={"handling": "handled"}).status_code == 403
    assert call("POST", f"/api/v1/reactions/{reaction_id}/reply", json={"text": "Ja"}).status_code == 403


def test_reply_is_queued_once_and_checked(app, client, world):
    form_reaction = _form(app, world["incident"], QUESTIONS[0], "r1")
    with app.app_context():
        sms = ingest.ingest_sms(InboundSms(message_sid="SMreply", account_sid="AC1",
                                           from_number="+31612345678", to="+3197010000000",
                                           body="Hoe lang nog koken?"))
        x = ingest.ingest_mention(Mention(id="1900000000000000077", text="@crisis_nl hoelang?",
                                          in_reply_to_id="1800000000000000001"))
        db.session.commit()
    process(app, sms)
    call = _api(client, world["editor"])
    assert call("POST", f"/api/v1/reactions/{form_reaction}/reply", json={"text": "Ja"}).status_code == 422
    assert call("POST", f"/api/v1/reactions/{sms}/reply", json={"text": "  "}).status_code == 422
    assert call("POST", f"/api/v1/reactions/{x}/reply", json={"text": "x" * 281}).status_code == 422
    queued = call("POST", f"/api/v1/reactions/{sms}/reply", json={"text": "Tot morgen 12 uur."})
    assert queued.status_code == 202 and queued.get_json()["reply_pending"]
    assert call("POST", f"/api/v1/reactions/{sms}/reply", json={"text": "Nog een"}).status_code == 409
    with app.app_context():
        entry = db.session.scalars(sa.select(AuditEvent).where(
            AuditEvent.action == "reaction.reply_requested")).one()
        assert entry.data == {"incident": world["incident"], "channel": "sms"}


def test_clusters_and_a_follow_up_draft(app, client, world):
    ids = [_form(app, world["incident"], text, f"c{i}") for i, text in enumerate(QUESTIONS)]
    call = _api(client, world["editor"])
    clusters = call("GET", f"/api/v1/incidents/{world['incident']}/clusters").get_json()["clusters"]
    assert clusters[0]["count"] == 4 and clusters[0]["open_count"] == 4
    assert clusters[0]["series"][-1] == 4 and clusters[0]["series_end"]
    call("PATCH", f"/api/v1/reactions/{ids[0]}", json={"handling": "handled"})
    draft = call("POST", f"/api/v1/clusters/{clusters[0]['id']}/follow-up")
    assert draft.status_code == 201, draft.get_data(as_text=True)
    body = draft.get_json()
    assert body["state"] == "draft" and body["incident_id"] == world["incident"]
    assert body["kind"] == "update" and "kraanwater" in body["body"]
    for text in QUESTIONS[1:]:
        assert f"- {text}" in body["body"]
    assert QUESTIONS[0] not in body["body"]  # handled: no longer an open question
    with app.app_context():
        assert db.session.get(Message, body["id"]).author_id == world["editor"].id
    assert call("POST", "/api/v1/clusters/999999/follow-up").status_code == 404


def test_stats_count_per_channel_and_category(app, client, world):
    for i, text in enumerate(QUESTIONS[:2]):
        _form(app, world["incident"], text, f"st{i}")
    with app.app_context():
        sms = ingest.ingest_sms(InboundSms(message_sid="SMstat", account_sid="AC1",
                                           from_number="+31612345678", to="+3197010000000",
                                           body="Bedankt voor het bericht!"))
        db.session.commit()
    process(app, sms)
    call = _api(client, world["viewer"])
    stats = call("GET", f"/api/v1/incidents/{world['incident']}/reactions/stats").get_json()
    assert stats["volume"]["form"][-1] == 2 and stats["volume"]["sms"][-1] == 1
    assert sum(stats["volume"]["x"]) == 0
    assert stats["categories"]["question"] == 2 and stats["categories"]["thanks"] == 1
    assert "kraanwater" in stats["top_clusters"]["question"]["label"]


def test_the_inbox_and_attaching(app, client, world):
    with app.app_context():
        stray = ingest.ingest_sms(InboundSms(message_sid="SMstray", account_sid="AC1",
                                             from_number="+31699999999", to="+3197010000000",
                                             body="<b>Waar</b> is de opvang?"))
        drill_stray = ingest.ingest_mention(Mention(id="1900000000000000555", text="oefenvraag"),
                                            source="provider")
        db.session.commit()
        db.session.execute(sa.update(Incident).where(Incident.id == world["drill"])
                           .values(status=IncidentStatus.closed))
        db.session.commit()
    process(app, stray)
    call = _api(client, world["editor"])
    inbox = call("GET", "/api/v1/reactions/inbox").get_json()["reactions"]
    assert {r["id"] for r in inbox} == {stray, drill_stray}
    page = client.get("/console/reactions/inbox").get_data(as_text=True)
    assert "&lt;b&gt;Waar&lt;/b&gt; is de opvang?" in page and "<b>Waar</b>" not in page
    token = csrf_token(client, "/console/reactions/inbox")
    response = client.post(f"/console/reactions/{stray}/attach",
                           data={"incident_id": world["incident"], "csrf_token": token})
    assert response.status_code == 302
    attached = _reaction(app, stray)
    assert attached.incident_id == world["incident"] and attached.processed_at is None
    process(app, stray)
    assert _reaction(app, stray).cluster_id is not None
    again = call("POST", f"/api/v1/reactions/{stray}/attach", json={"incident_id": world["incident"]})
    assert again.status_code == 409
    closed = call("POST", f"/api/v1/reactions/{drill_stray}/attach", json={"incident_id": world["drill"]})
    assert closed.status_code == 422


# --------------------------------------------------------------------------- queueing the processing


class FakeRedis:
    def __init__(self):
        self.keys = {}

    def set(self, key, value, nx=False, ex=None):
        if nx and key in self.keys:
            return None
        self.keys[key] = value
        return True

    def delete(self, key):
        self.keys.pop(key, None)

    def lock(self, name, timeout=None, blocking=True):
        redis = self

        class Lock:
            def acquire(self):
                return bool(redis.set(name, 1, nx=True))

            def extend(self, seconds, replace_ttl=False):
                return True

            def release(self):
                redis.delete(name)

        return Lock()


def held_nudges(tasks):
    """Nudges whose own thread never gets to ask: the test asks (flush) when it chooses."""
    return Nudges(tasks._ask_for_processing, seconds=3600)


def test_one_waiting_task_per_incident_drains_all(app, world, monkeypatch):
    """With Redis, reactions of an incident that already has a task waiting (or a drainer) send
    none; the drainer clears the mark before each read, so every reaction is processed."""
    from crisis.tasks import reactions as tasks

    fake, sent = FakeRedis(), []
    monkeypatch.setattr(tasks, "shared_redis", lambda: fake)
    monkeypatch.setattr(tasks, "NUDGES", held_nudges(tasks))
    patch_task(monkeypatch, app, tasks.process_reaction, lambda args, **kw: sent.append(args[0]))
    with app.app_context():
        incident = db.session.get(Incident, world["incident"])
        first = ingest.ingest_form(incident, QUESTIONS[0], "", "w1")
        db.session.commit()
        second = ingest.ingest_form(incident, QUESTIONS[1], "", "w2")
        db.session.commit()
        stray = ingest.ingest_sms(InboundSms(message_sid="SMw3", account_sid="AC1",
                                             from_number="+31699999999", to="+3197010000000",
                                             body="Wie?"))
        db.session.commit()
    assert sent == [stray]  # the inbox's at once; the incident's are asked for by the nudges
    tasks.NUDGES.flush()
    assert sent == [stray, first]  # the second rode along with the first's task
    process(app, first)
    with app.app_context():
        assert all(db.session.get(Reaction, i).processed_at for i in (first, second))
        third = ingest.ingest_form(db.session.get(Incident, world["incident"]), QUESTIONS[2], "", "w4")
        db.session.commit()
    tasks.NUDGES.flush()
    assert sent[-1] == third  # the mark was cleared: the next reaction sends its own task
    # Another worker holds the incident's processing lock: this task leaves the work to it, and
    # the mark to it as well, so the reactions that follow send no task of their own.
    fake.set(tasks.LOCK_KEY.format(world["incident"]), 1)
    process(app, third)
    assert _reaction(app, third).processed_at is None
    with app.app_context():
        fourth = ingest.ingest_form(db.session.get(Incident, world["incident"]), QUESTIONS[3], "", "w5")
        db.session.commit()
    tasks.NUDGES.flush()
    assert sent[-1] == third
    fake.delete(tasks.LOCK_KEY.format(world["incident"]))
    process(app, third)  # as the holder would: it clears the mark before each batch
    assert _reaction(app, third).processed_at and _reaction(app, fourth).processed_at
    assert tasks.PENDING_KEY.format(world["incident"]) not in fake.keys


def test_a_failed_drain_frees_the_pending_mark(app, world, monkeypatch):
    """Tasks turned away while a drain ran left the mark to it: if it fails, the next reaction
    must send a task of its own instead of waiting for the sweep."""
    from crisis.tasks import reactions as tasks

    fake, sent = FakeRedis(), []
    monkeypatch.setattr(tasks, "shared_redis", lambda: fake)
    monkeypatch.setattr(tasks, "NUDGES", held_nudges(tasks))
    patch_task(monkeypatch, app, tasks.process_reaction, lambda args, **kw: sent.append(args[0]))
    with app.app_context():
        first = ingest.ingest_form(db.session.get(Incident, world["incident"]), QUESTIONS[0], "", "f1")
        db.session.commit()
    tasks.NUDGES.flush()
    assert sent == [first]

    def broken(incident_id, news=None):
        fake.set(tasks.PENDING_KEY.format(incident_id), 1)  # a webhook came, its task turned away
        raise sa.exc.OperationalError("UPDATE", {}, Exception("database went away"))

    monkeypatch.setattr(tasks, "_process_incident", broken)
    with pytest.raises(sa.exc.OperationalError):
        process(app, first)
    assert tasks.PENDING_KEY.format(world["incident"]) not in fake.keys
    assert tasks.LOCK_KEY.format(world["incident"]) not in fake.keys


def test_the_sweep_redrives_what_was_left_waiting(app, world, monkeypatch):
    from crisis.tasks import reactions as tasks

    sent = []
    patch_task(monkeypatch, app, tasks.process_reaction, lambda args, **kw: sent.append(args[0]))
    with app.app_context():
        incident = db.session.get(Incident, world["incident"])
        old = [ingest.ingest_form(incident, text, "", f"o{i}") for i, text in enumerate(QUESTIONS[:2])]
        fresh = ingest.ingest_form(incident, QUESTIONS[2], "", "o9")
        db.session.commit()
        db.session.execute(sa.update(Reaction).where(Reaction.id.in_(old)).values(
            received_at=datetime.now(UTC) - timedelta(minutes=5)))
        db.session.commit()
        sent.clear()
        assert tasks.sweep_reactions() == 1
    assert sent == [old[0]] and fresh not in sent  # one task per incident: it drains the rest


@pytest.mark.redis
def test_the_pending_mark_and_the_drain_lock_live_in_redis(app, monkeypatch, redis_url):
    import os

    from crisis.tasks import reactions as tasks

    url = redis_url

    # Only these helpers read REDIS_URL at call time: the session's app (its broker, its worker)
    # stays as it is, which another app built here would not leave it.
    monkeypatch.setitem(app.config, "REDIS_URL", url)
    incident_id = 10**9 + os.getpid()  # keys of no real incident
    app.extensions.pop("crisis_reactions_redis", None)
    try:
        with app.app_context():
            tasks._clear_pending(incident_id)
            assert tasks._mark_pending(incident_id) is True
            assert tasks._mark_pending(incident_id) is False  # a task is already on its way
            tasks._clear_pending(incident_id)
            assert tasks._mark_pending(incident_id) is True
            tasks._clear_pending(incident_id)
            lock = tasks._take_lock(incident_id)
            assert lock and tasks._take_lock(incident_id) is False  # one drainer per incident
            tasks._renew(lock)
            tasks._let_go(lock)
            again = tasks._take_lock(incident_id)
            assert again
            tasks._let_go(again)
    finally:
        app.extensions.pop("crisis_reactions_redis", None)
