"""SMS subscriptions end to end: the web form with its code, SMS keywords through the sandbox's
signed webhooks, stopping and starting again, a broadcast that skips a stopped number, and the
form's defences (rate limits, the daily cap, no enumeration, CSRF)."""

from __future__ import annotations

import re
import time

import pytest
import sqlalchemy as sa

from crisis.extensions import db, limiter
from crisis.models import (
    Area,
    AuditEvent,
    Message,
    SmsRecipient,
    Subscriber,
    SubscriberStatus,
    VerificationCode,
)
from tests.conftest import csrf_token, login

PHONE = "+31612345678"
OTHER = "+31687654321"


@pytest.fixture
def kernen_db(app):
    """Dalfsen's six kernen: {code: id}."""
    from crisis.seed import seed_areas

    with app.app_context():
        seed_areas()
        db.session.commit()
        return {a.code: a.id for a in db.session.scalars(sa.select(Area))}


@pytest.fixture
def kernen(running, kernen_db):
    """The kernen, an empty sandbox, and fresh rate-limit counters."""
    # A test that built an app of its own may have left its Celery app as the default: tasks
    # sent after commit must go to the session app, whose worker runs (see the report).
    celery = running.app.extensions["celery"]
    celery.set_default()
    celery.set_current()
    running.sandbox.control("POST", "/reset")
    limiter.reset()
    yield kernen_db
    limiter.reset()


# --- helpers (also used by test_privacy) --------------------------------------------------------


def texts_to(running, phone: str) -> list[dict]:
    """What the sandbox holds that we sent to `phone`, oldest first."""
    messages = running.sandbox.control("GET", "/twilio/messages", params={"to": phone})
    return [m for m in messages if m["direction"].startswith("outbound")]


def wait_texts(running, phone: str, count: int, timeout: float = 20.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        found = texts_to(running, phone)
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {count} texts, the sandbox has {len(found)}: {found}")
        time.sleep(0.05)


def still_no_more(running, phone: str, count: int, settle: float = 0.6) -> None:
    """Nothing beyond `count` texts arrives (give the worker a moment to prove it)."""
    time.sleep(settle)
    assert len(texts_to(running, phone)) == count, texts_to(running, phone)


def text_us(running, phone: str, body: str) -> None:
    """A resident texts us: the sandbox posts the signed webhook to the live server; wait for it."""
    sid = running.sandbox.control("POST", "/inject", json={"channel": "sms", "from": phone,
                                                           "body": body})["sid"]
    deadline = time.monotonic() + 20
    while True:
        done = [c for c in running.sandbox.control("GET", "/twilio/callbacks")
                if c["message_sid"] == sid and c["kind"] == "inbound"]
        if done:
            assert done[0]["response_status"] == 200, done
            return
        assert time.monotonic() < deadline, "the webhook was never posted"
        time.sleep(0.05)


def code_from(text: dict) -> str:
    return re.search(r"\b(\d{6})\b", text["body"]).group(1)


def subscriber(app, phone: str = PHONE) -> Subscriber | None:
    with app.app_context():
        found = db.session.scalar(sa.select(Subscriber).where(Subscriber.phone == phone))
        if found is not None:
            db.session.expunge(found)
        return found


def ask_code(client, phone: str, area_ids: list[int], language: str = "nl", path="/subscribe",
             **extra):
    token = csrf_token(client, path)
    data = {"phone": phone, "areas": [str(i) for i in area_ids], "language": language,
            "age": "y", "csrf_token": token}
    if path.startswith("/subscribe/stop"):
        data = {"phone": phone, "csrf_token": token}
    return client.post(path, data=data, **extra)


def confirm(client, code: str):
    return client.post("/subscribe/confirm", data={"code": code,
                                                   "csrf_token": csrf_token(client,
                                                                            "/subscribe/confirm")})


def subscribe_by_web(client, running, phone: str, area_ids: list[int], language: str = "nl"):
    """The whole web sign-up: form, code by SMS (read from the sandbox), confirmation."""
    before = len(texts_to(running, phone))
    response = ask_code(client, phone, area_ids, language)
    assert response.status_code == 303, response.get_data(as_text=True)
    assert response.headers["Location"].startswith("/subscribe/confirm")
    code = code_from(wait_texts(running, phone, before + 1)[-1])
    done = confirm(client, code)
    assert done.status_code == 200, done.get_data(as_text=True)
    wait_texts(running, phone, before + 2)  # the welcome text, with how to stop
    return done


def broadcast(app, running, make_user, area_ids: list[int], body: str) -> int:
    """An editor writes an SMS-only alert for `area_ids`, an approver approves; wait until sent."""
    editor, approver = make_user("editor"), make_user("approver")
    ed, ap = app.test_client(), app.test_client()
    login(ed, editor)
    login(ap, approver)
    ed_headers = {"X-CSRFToken": csrf_token(ed, "/console/")}
    ap_headers = {"X-CSRFToken": csrf_token(ap, "/console/")}
    incident = ed.post("/api/v1/incidents", json={"title": "Brand Nieuwleusen", "mode": "live",
                                                  "area_ids": area_ids}, headers=ed_headers)
    assert incident.status_code == 201, incident.get_json()
    incident = incident.get_json()
    draft = ed.post(f"/api/v1/incidents/{incident['id']}/messages",
                    json={"body": body, "channels": ["sms"], "area_ids": area_ids},
                    headers=ed_headers)
    assert draft.status_code == 201, draft.get_json()
    submitted = ed.post(f"/api/v1/messages/{draft.get_json()['id']}/submit", headers=ed_headers)
    assert submitted.status_code == 200, submitted.get_json()
    submitted = submitted.get_json()
    approved = ap.post(f"/api/v1/messages/{submitted['id']}/approve", headers=ap_headers, json={
        "approval_hash": submitted["approval_hash"], "confirmation": incident["title"]})
    assert approved.status_code == 200, approved.get_json()
    running.wait_for(lambda: db.session.get(Message, submitted["id"]).state.value == "sent")
    return submitted["id"]


# --- the web form ----------------------------------------------------------------------------------


def test_web_sign_up_with_a_code_by_sms(app, client, running, kernen):
    page = client.get("/subscribe")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'lang="nl"' in html
    for kern in ("Dalfsen", "Nieuwleusen", "Lemelerveld", "Hoonhorst", "Oudleusen", "Ankum"):
        assert kern in html
    assert 'name="age"' in html and "16" in html  # the age check
    assert "/subscribe/stop" in html and "STOP" in html  # how to stop, before signing up
    assert 'name="csrf_token"' in html

    response = ask_code(client, "06 1234 5678", [kernen["dalfsen"], kernen["ankum"]], "en")
    assert response.status_code == 303
    pending = subscriber(app)
    assert pending.status is SubscriberStatus.pending and pending.consent == {}
    code_text = wait_texts(running, PHONE, 1)[0]
    assert "valid for 15 minutes" in code_text["body"]  # in the chosen language
    with app.app_context():
        row = db.session.scalar(sa.select(VerificationCode))
        assert code_from(code_text) not in row.code_hash  # stored hashed (keyed, salted)
        assert (row.expires_at - row.created_at).total_seconds() == 15 * 60
    confirm_page = client.get("/subscribe/confirm").get_data(as_text=True)
    assert PHONE not in confirm_page and "5678" in confirm_page  # masked

    done = confirm(client, code_from(code_text))
    assert done.status_code == 200
    active = subscriber(app)
    assert active.status is SubscriberStatus.active
    assert sorted(active.area_ids) == sorted([kernen["dalfsen"], kernen["ankum"]])
    assert active.language == "en" and active.confirmed_at is not None
    consent = active.consent
    assert consent["how"] == "web" and consent["age_16_plus"] is True
    assert consent["what"]["language"] == "en"
    assert sorted(consent["what"]["areas"]) == ["ankum", "dalfsen"]
    assert consent["when"] and consent["text_version"].startswith("1:")
    welcome = wait_texts(running, PHONE, 2)[-1]["body"]
    assert "Ankum, Dalfsen" in welcome and "STOP" in welcome
    with app.app_context():
        actions = list(db.session.scalars(sa.select(AuditEvent.action)))
        assert "subscriber.activated" in actions
        for event in db.session.scalars(sa.select(AuditEvent)):
            assert PHONE not in str(event.data)  # ids only
    # The code worked once: a second try with it does not.
    assert client.get("/subscribe/confirm").status_code == 302


def test_web_sign_up_in_english_and_the_number_rules(app, client, running, kernen):
    html = client.get("/subscribe?lang=en").get_data(as_text=True)
    assert 'lang="en"' in html and "Crisis alerts by text message" in html
    for number, expected in [("0529 123456", "not a mobile number"),
                             ("+49 151 12345678", "Only Dutch mobile numbers"),
                             ("12345", "not a valid mobile number")]:
        response = ask_code(client, number, [kernen["dalfsen"]], "en", path="/subscribe?lang=en")
        assert response.status_code == 422, number
        assert expected in response.get_data(as_text=True), number
    token = csrf_token(client, "/subscribe")
    without_age = client.post("/subscribe", data={"phone": PHONE, "areas": [kernen["dalfsen"]],
                                                  "language": "nl", "csrf_token": token})
    assert without_age.status_code == 422
    no_area = client.post("/subscribe", data={"phone": PHONE, "language": "nl", "age": "y",
                                              "csrf_token": token})
    assert no_area.status_code == 422
    forged = client.post("/subscribe", data={"phone": PHONE, "areas": [kernen["dalfsen"]],
                                             "language": "nl", "age": "y"})
    assert forged.status_code == 400  # no CSRF token
    still_no_more(running, PHONE, 0, settle=0.3)
    assert subscriber(app) is None


def test_wrong_codes_run_out(app, client, running, kernen):
    ask_code(client, PHONE, [kernen["dalfsen"]])
    real = code_from(wait_texts(running, PHONE, 1)[0])
    wrong = f"{(int(real) + 1) % 1_000_000:06d}"
    for _ in range(4):
        response = confirm(client, wrong)
        assert response.status_code == 422
        assert "Die code is niet goed" in response.get_data(as_text=True)
    fifth = confirm(client, wrong)
    assert fifth.status_code == 422
    assert "Te vaak een verkeerde code" in fifth.get_data(as_text=True)
    assert 'href="/subscribe">Vraag een nieuwe code aan' in fifth.get_data(as_text=True)
    # Even the right code no longer works: five attempts per code.
    assert client.get("/subscribe/confirm").status_code == 302
    with app.app_context():
        assert db.session.scalar(sa.select(VerificationCode.attempts)) == 5
    assert subscriber(app).status is SubscriberStatus.pending


def test_an_expired_code_is_refused(app, client, running, kernen):
    ask_code(client, PHONE, [kernen["dalfsen"]])
    code = code_from(wait_texts(running, PHONE, 1)[0])
    with app.app_context():
        row = db.session.scalar(sa.select(VerificationCode))
        row.expires_at = row.created_at  # fifteen minutes later
        db.session.commit()
    response = confirm(client, code)
    assert response.status_code == 422
    assert subscriber(app).status is SubscriberStatus.pending


def test_no_enumeration(app, running, kernen):
    """A number on the list and one that is not get the same answers, page for page."""
    with app.app_context():
        db.session.add(Subscriber(phone=PHONE, area_ids=[kernen["dalfsen"]],
                                  status=SubscriberStatus.active, consent={"how": "demo"}))
        db.session.commit()

    def journey(phone: str, path: str) -> list[tuple[int, str, str]]:
        client = app.test_client()
        response = ask_code(client, phone, [kernen["dalfsen"]], path=path)
        page = client.get(response.headers["Location"])
        html = page.get_data(as_text=True)
        html = re.sub(r'value="[^"]+"', 'value=""', html).replace(phone[-4:], "XXXX")
        return [(response.status_code, response.headers["Location"], ""),
                (page.status_code, "", html)]

    for path in ("/subscribe", "/subscribe/stop"):
        assert journey(PHONE, path) == journey(OTHER, path), path
    wait_texts(running, PHONE, 2)  # sign-up code and stop code to the subscriber
    wait_texts(running, OTHER, 1)  # a sign-up code to the other number; nothing to stop there
    still_no_more(running, OTHER, 1)
    assert subscriber(app).status is SubscriberStatus.active  # nothing changes without the code


def test_stop_on_the_web_with_a_code(app, client, running, kernen):
    subscribe_by_web(client, running, PHONE, [kernen["oudleusen"]])
    response = ask_code(client, "0612345678", [], path="/subscribe/stop")
    assert response.status_code == 303
    code = code_from(wait_texts(running, PHONE, 3)[-1])
    done = confirm(client, code)
    assert done.status_code == 200
    stopped = subscriber(app)
    assert stopped.status is SubscriberStatus.stopped and stopped.stopped_at is not None
    assert stopped.consent["withdrawn"]["how"] == "web"
    assert stopped.consent["how"] == "web"  # the proof of the original consent stays


# --- the form's defences -----------------------------------------------------------------------


def test_the_address_limit_refuses_with_429(app, running, kernen, monkeypatch):
    monkeypatch.setitem(app.config, "SUBSCRIBE_RATE_LIMIT", "2 per minute")
    client = app.test_client()
    assert ask_code(client, PHONE, [kernen["dalfsen"]]).status_code == 303
    assert ask_code(client, OTHER, [kernen["dalfsen"]]).status_code == 303
    third = ask_code(client, "+31611111111", [kernen["dalfsen"]])
    assert third.status_code == 429
    assert "Te veel pogingen vanaf uw adres" in third.get_data(as_text=True)
    wait_texts(running, PHONE, 1)
    wait_texts(running, OTHER, 1)
    still_no_more(running, "+31611111111", 0)
    # Another address is not affected.
    other_address = ask_code(app.test_client(), "+31611111111", [kernen["dalfsen"]],
                             environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other_address.status_code == 303
    wait_texts(running, "+31611111111", 1)


def test_codes_per_address_and_per_number_are_counted(app, running, kernen, monkeypatch):
    monkeypatch.setitem(app.config, "VERIFICATION_PER_ADDRESS_HOUR", 2)
    monkeypatch.setitem(app.config, "VERIFICATION_PER_NUMBER_HOUR", 2)
    one = {"REMOTE_ADDR": "192.0.2.1"}
    client = app.test_client()
    assert ask_code(client, PHONE, [kernen["dalfsen"]], environ_base=one).status_code == 303
    assert ask_code(client, OTHER, [kernen["dalfsen"]], environ_base=one).status_code == 303
    refused = ask_code(client, "+31611111111", [kernen["dalfsen"]], environ_base=one)
    assert refused.status_code == 429
    assert "Te veel codes aangevraagd" in refused.get_data(as_text=True)
    # The same number from ever new addresses: two codes an hour, then no more.
    for i in range(2, 4):
        response = ask_code(app.test_client(), PHONE, [kernen["dalfsen"]],
                            environ_base={"REMOTE_ADDR": f"192.0.2.{i}"})
        assert response.status_code == (303 if i == 2 else 429)
    wait_texts(running, PHONE, 2)
    wait_texts(running, OTHER, 1)
    still_no_more(running, PHONE, 2)
    still_no_more(running, "+31611111111", 0, settle=0)
    with app.app_context():
        requesters = set(db.session.scalars(sa.select(VerificationCode.requester)))
        assert "192.0.2.1" not in str(requesters) and all(len(r) == 64 for r in requesters)


def test_the_daily_cap_stops_all_codes(app, running, kernen, monkeypatch):
    monkeypatch.setitem(app.config, "VERIFICATION_DAILY_CAP", 2)
    for i, phone in enumerate((PHONE, OTHER)):
        response = ask_code(app.test_client(), phone, [kernen["dalfsen"]],
                            environ_base={"REMOTE_ADDR": f"198.51.100.{i}"})
        assert response.status_code == 303
    capped = ask_code(app.test_client(), "+31611111111", [kernen["dalfsen"]],
                      environ_base={"REMOTE_ADDR": "198.51.100.9"})
    assert capped.status_code == 429
    html = capped.get_data(as_text=True)
    assert "We kunnen vandaag geen codes meer sturen" in html
    assert "Stuur AANMELDEN met daarachter uw kern" in html  # the friendly way round: by SMS
    wait_texts(running, PHONE, 1)
    wait_texts(running, OTHER, 1)
    still_no_more(running, "+31611111111", 0)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(VerificationCode)) == 2
        assert "subscriber.code_refused" in set(db.session.scalars(sa.select(AuditEvent.action)))


# --- SMS keywords through the sandbox ----------------------------------------------------------


def test_sms_keywords_subscribe_stop_and_start(app, running, kernen, make_user):
    text_us(running, PHONE, "AANMELDEN Nieuwleusen")
    joined = subscriber(app)
    assert joined.status is SubscriberStatus.active and joined.area_ids == [kernen["nieuwleusen"]]
    assert joined.consent["how"] == "sms" and joined.consent["message_sid"].startswith("SM")
    assert joined.language == "nl"
    reply = wait_texts(running, PHONE, 1)[0]["body"]
    assert "u krijgt nu crisisberichten per sms voor Nieuwleusen" in reply
    assert "Afmelden: stuur STOP" in reply

    # An area with an accent, lower case, and a second area by its code: added to the first.
    text_us(running, PHONE, "aanmelden dálfsen")
    assert sorted(subscriber(app).area_ids) == sorted([kernen["nieuwleusen"], kernen["dalfsen"]])
    wait_texts(running, PHONE, 2)

    # STOP: Twilio (here the sandbox, with Advanced Opt-Out on the service) blocks and answers
    # itself; the inbound carries OptOutType, so we mirror it without a reply of our own.
    text_us(running, PHONE, "Stop")
    stopped = subscriber(app)
    assert stopped.status is SubscriberStatus.stopped and stopped.consent["withdrawn"]["how"] == "sms"
    still_no_more(running, PHONE, 2)

    # A stopped number receives nothing from the next broadcast; an active neighbour does.
    text_us(running, OTHER, "AANMELDEN nieuwleusen")
    wait_texts(running, OTHER, 1)
    message_id = broadcast(app, running, make_user, [kernen["nieuwleusen"]],
                           "Grote brand in Nieuwleusen. Houd ramen en deuren dicht.")
    assert any("Grote brand" in t["body"] for t in wait_texts(running, OTHER, 2))
    still_no_more(running, PHONE, 2)
    with app.app_context():
        reached = set(db.session.scalars(sa.select(SmsRecipient.phone).where(
            SmsRecipient.message_id == message_id)))
    assert reached == {OTHER}

    # START: active again with the areas they had (Twilio answered START itself).
    text_us(running, PHONE, "START")
    assert subscriber(app).status is SubscriberStatus.active
    assert sorted(subscriber(app).area_ids) == sorted([kernen["nieuwleusen"], kernen["dalfsen"]])
    assert subscriber(app).consent["how"] == "sms"

    # AFMELDEN is ours alone: we stop the number and confirm it ourselves, in Dutch.
    text_us(running, PHONE, "afmelden")
    assert subscriber(app).status is SubscriberStatus.stopped
    confirmation = wait_texts(running, PHONE, 3)[-1]["body"]
    assert "geen crisisberichten per sms meer" in confirmation and "START" in confirmation
    with app.app_context():
        actions = [a for a in db.session.scalars(sa.select(AuditEvent.action).order_by(
            AuditEvent.seq)) if a.startswith("subscriber.")]
        assert actions.count("subscriber.stopped") == 2 and "subscriber.activated" in actions
        for event in db.session.scalars(sa.select(AuditEvent)):
            assert PHONE not in str(event.data) and OTHER not in str(event.data)


def test_join_in_english_and_an_unknown_area(app, running, kernen):
    text_us(running, PHONE, "JOIN Atlantis")
    assert subscriber(app) is None
    reply = wait_texts(running, PHONE, 1)[0]["body"]
    assert "JOIN" in reply and "Lemelerveld" in reply and "Ankum" in reply  # the areas listed

    text_us(running, PHONE, "join LEMELERVELD")
    joined = subscriber(app)
    assert joined.language == "en" and joined.area_ids == [kernen["lemelerveld"]]
    assert "crisis alerts by SMS for Lemelerveld" in wait_texts(running, PHONE, 2)[-1]["body"]

    # A sentence that starts with "stop" is a reaction, not a command.
    text_us(running, PHONE, "stop met die sirene alsjeblieft")
    assert subscriber(app).status is SubscriberStatus.active
    still_no_more(running, PHONE, 2)


def test_start_from_a_stranger_says_how_to_sign_up(app, running, kernen):
    text_us(running, PHONE, "UNSTOP")
    assert subscriber(app) is None
    # UNSTOP is one of Twilio's words: with OptOutType set, Twilio replied; we add how to join.
    reply = wait_texts(running, PHONE, 1)[0]["body"]
    assert "AANMELDEN" in reply


def test_keyword_parsing_and_area_matching(app, kernen_db):
    from crisis.subscriptions import service
    from crisis.subscriptions.keywords import is_keyword, parse

    for body in ("STOP", " stop. ", "Stop!", "AFMELDEN", "stopall", "UNSUBSCRIBE", "cancel", "END",
                 "QUIT", "START", "unstop", "AANMELDEN", "aanmelden Dalfsen", "JOIN ankum",
                 "Aanmelden: Dalfsen, Ankum"):
        assert is_keyword(body), body
    for body in ("stop met die sirene", "HELP", "help", "yes", "Is de weg dicht?", "", None,
                 "starten we?"):
        assert not is_keyword(body), body
    assert parse("AANMELDEN: Dalfsen, Ankum").rest == "Dalfsen, Ankum"
    with app.app_context():
        def codes(text):
            found = service.match_areas(text)
            return [a.code for a in found] if found else None

        assert codes("OUDLEUSEN") == ["oudleusen"]
        assert codes("Óudléusen") == ["oudleusen"]
        assert codes("dalfsen en ankum") == ["dalfsen", "ankum"]
        assert codes("Dalfsen, Atlantis") is None
        db.session.add(Area(code="de-meele", name="De Meele"))
        db.session.commit()
        assert codes("de meele") == ["de-meele"]
        assert codes("DE-MEELE") == ["de-meele"]
