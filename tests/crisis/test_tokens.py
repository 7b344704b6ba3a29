"""API bearer tokens: hashed, expiring, capped at the owner's role, revocable, for /api/v1 only."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from crisis.auth import accounts
from crisis.extensions import db
from crisis.models import ApiToken, AuditEvent, Role, User
from crisis.models.types import utcnow
from tests.conftest import csrf_token, login


@pytest.fixture
def issue(app, make_user):
    """issue(role_of_owner, token_role=None, days=None) -> (raw token, token id, owner ref)."""

    def make(owner_role: str = "editor", role: str | None = None, days: int | None = None):
        owner = make_user(owner_role)
        with app.app_context():
            user = db.session.get(User, owner.id)
            token, raw = accounts.create_token(user, Role(role) if role else None, days)
            db.session.commit()
            return raw, token.id, owner

    return make


def bearer(raw: str) -> dict:
    return {"Authorization": f"Bearer {raw}"}


def test_token_works_on_the_api_and_carries_its_role(client, issue):
    raw, _id, owner = issue("approver", role="editor")
    response = client.get("/api/v1/me", headers=bearer(raw))
    assert response.status_code == 200
    assert response.json == {"id": owner.id, "email": owner.email, "role": "editor"}


def test_only_a_hash_is_stored(app, issue):
    raw, token_id, _owner = issue()
    with app.app_context():
        row = db.session.execute(sa.select(ApiToken.__table__).where(ApiToken.id == token_id)).one()
        stored = " ".join(str(value) for value in row)
        assert raw not in stored
        assert raw[len(accounts.TOKEN_PREFIX) + 6:] not in stored  # not even the secret part
        assert row.token_hash == ApiToken.hash(raw) and len(row.token_hash) == 64
        assert row.prefix == raw[:10]  # enough to tell tokens apart in a list


def test_token_expires(app, client, issue):
    raw, token_id, _owner = issue(days=1)
    with app.app_context():
        token = db.session.get(ApiToken, token_id)
        assert timedelta(hours=23) < token.expires_at - utcnow() <= timedelta(days=1)
        token.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    response = client.get("/api/v1/me", headers=bearer(raw))
    assert response.status_code == 401
    assert response.is_json


def test_default_lifetime_is_configured(app, issue):
    _raw, token_id, _owner = issue()
    with app.app_context():
        token = db.session.get(ApiToken, token_id)
        days = app.config["API_TOKEN_DAYS"]
        assert timedelta(days=days) - timedelta(minutes=5) < token.expires_at - utcnow()
        assert token.expires_at - utcnow() <= timedelta(days=days)


def test_revoked_token_is_refused(app, client, issue):
    raw, token_id, _owner = issue()
    assert client.get("/api/v1/me", headers=bearer(raw)).status_code == 200
    with app.app_context():
        accounts.revoke_token(db.session.get(ApiToken, token_id))
        db.session.commit()
        assert db.session.scalar(
            sa.select(AuditEvent.action).order_by(AuditEvent.seq.desc()).limit(1)
        ) == "token.revoked"
    assert client.get("/api/v1/me", headers=bearer(raw)).status_code == 401


def test_unknown_or_malformed_tokens_are_refused(client, issue):
    raw, _id, _owner = issue()
    for header in (f"Bearer {raw}x", f"Bearer {raw[len(accounts.TOKEN_PREFIX):]}",
                   "Bearer ", f"Token {raw}", raw):
        response = client.get("/api/v1/me", headers={"Authorization": header})
        assert response.status_code == 401, header


def test_a_token_cannot_outrank_its_owner(app, make_user):
    owner = make_user("editor")
    with app.app_context():
        user = db.session.get(User, owner.id)
        for role in (Role.approver, Role.admin):
            with pytest.raises(ValueError, match="higher role than its owner"):
                accounts.create_token(user, role)
        for days in (0, -1, 367):
            with pytest.raises(ValueError, match="between 1 and 366 days"):
                accounts.create_token(user, days=days)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 0


def test_demoting_the_owner_caps_the_token(app, client, issue):
    raw, _id, owner = issue("editor")
    created = client.post("/api/v1/incidents", json={"title": "Gaslek Lemelerveld", "mode": "drill"},
                          headers=bearer(raw))
    assert created.status_code == 201
    with app.app_context():
        accounts.change_role(db.session.get(User, owner.id), Role.viewer)
        db.session.commit()
    assert client.get("/api/v1/me", headers=bearer(raw)).json["role"] == "viewer"
    refused = client.post("/api/v1/incidents", json={"title": "Nog een", "mode": "drill"},
                          headers=bearer(raw))
    assert refused.status_code == 403


def test_deactivating_the_owner_stops_the_token(app, client, issue):
    raw, _id, owner = issue()
    with app.app_context():
        db.session.get(User, owner.id).active = False
        db.session.commit()
    assert client.get("/api/v1/me", headers=bearer(raw)).status_code == 401


@pytest.mark.parametrize("role,allowed", [("viewer", False), ("editor", True)])
def test_token_role_decides_what_it_may_do(client, issue, role, allowed):
    raw, _id, _owner = issue("admin", role=role)
    assert client.get("/api/v1/incidents", headers=bearer(raw)).status_code == 200
    response = client.post("/api/v1/incidents", json={"title": "Hoogwater Vecht", "mode": "live"},
                           headers=bearer(raw))
    assert response.status_code == (201 if allowed else 403)


def test_bearer_calls_need_no_csrf_token(client, issue):
    raw, _id, _owner = issue()
    response = client.post("/api/v1/incidents", json={"title": "Stroomstoring", "mode": "drill"},
                           headers=bearer(raw))
    assert response.status_code == 201
    assert response.json["mode"] == "drill"


def test_session_json_calls_need_the_csrf_header(client, make_user):
    login(client, make_user("editor"))
    body = {"title": "Brand Hoonhorst", "mode": "live"}
    response = client.post("/api/v1/incidents", json=body)
    assert response.status_code == 400
    assert "CSRF" in response.json["error"]
    response = client.post("/api/v1/incidents", json=body, headers={"X-CSRFToken": "forged"})
    assert response.status_code == 400
    token = csrf_token(client, "/console/")
    response = client.post("/api/v1/incidents", json=body, headers={"X-CSRFToken": token})
    assert response.status_code == 201


def test_a_bad_bearer_token_does_not_fall_back_to_the_session(client, make_user, issue):
    """A revoked token next to a session cookie is still refused, and does not skip CSRF."""
    raw, token_id, _owner = issue()
    login(client, make_user("editor"))
    with client.application.app_context():
        accounts.revoke_token(db.session.get(ApiToken, token_id))
        db.session.commit()
    response = client.post("/api/v1/incidents", json={"title": "Storm", "mode": "drill"},
                           headers=bearer(raw))
    assert response.status_code == 400  # no valid token: a cookie call, and it has no CSRF


def test_bearer_tokens_open_no_browser_session(client, issue):
    raw, _id, _owner = issue("admin")
    assert client.get("/api/v1/me", headers=bearer(raw)).status_code == 200
    for path in ("/console/", "/console/admin/users"):
        response = client.get(path, headers=bearer(raw))
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert client.get("/console/").headers["Location"].startswith("/login")


def test_token_use_is_recorded(app, client, issue):
    raw, token_id, _owner = issue()
    with app.app_context():
        assert db.session.get(ApiToken, token_id).last_used_at is None
    client.get("/api/v1/me", headers=bearer(raw))
    with app.app_context():
        assert db.session.get(ApiToken, token_id).last_used_at is not None
