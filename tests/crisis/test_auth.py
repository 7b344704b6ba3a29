"""Logging in and staying safe: CSRF, throttling, the second factor, sessions, headers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from itsdangerous import TimestampSigner

from crisis import ROOT
from crisis.extensions import db, limiter
from crisis.models import AuditEvent, Role, User
from tests.conftest import PASSWORD, csrf_token, login


def test_passwords_are_stored_with_argon2id(app, monkeypatch):
    from argon2 import PasswordHasher

    from crisis.models import user as user_module

    monkeypatch.setattr(user_module, "_hasher", PasswordHasher())
    user = User(email="x@test.nl", role=Role.viewer)
    user.set_password(PASSWORD)
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert user.check_password(PASSWORD) and not user.check_password(PASSWORD + "!")


def is_logged_in(client) -> bool:
    response = client.get("/console/")
    if response.status_code == 200:
        return True
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    return False


def audit_actions(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.seq)))


# --- CSRF --------------------------------------------------------------------------------------


def test_login_form_without_csrf_token_is_refused(client, make_user):
    user = make_user("editor")
    client.get("/login")
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400
    assert not is_logged_in(client)


def test_csrf_token_of_another_session_is_refused(app, client, make_user):
    user = make_user("editor")
    foreign = csrf_token(app.test_client(), "/login")
    client.get("/login")
    response = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": foreign}
    )
    assert response.status_code == 400
    assert not is_logged_in(client)


def test_session_form_posts_without_csrf_token_are_refused(app, client, make_user):
    admin, editor = make_user("admin"), make_user("editor")
    login(client, admin)
    response = client.post(f"/console/admin/users/{editor.id}/role", data={"role": "approver"})
    assert response.status_code == 400
    response = client.post("/language", data={"language": "en"})
    assert response.status_code == 400
    response = client.post("/logout")
    assert response.status_code == 400
    with app.app_context():
        assert db.session.get(User, editor.id).role is Role.editor
    assert is_logged_in(client)


# --- throttling --------------------------------------------------------------------------------


@pytest.fixture
def strict_limit(app, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT", "3 per minute")
    with app.app_context():
        limiter.reset()
    yield
    with app.app_context():
        limiter.reset()


def test_repeated_failed_logins_are_throttled(app, client, make_user, strict_limit):
    user = make_user("editor")
    token = csrf_token(client, "/login")
    wrong = {"email": user.email, "password": "not the password", "csrf_token": token}
    for _ in range(3):
        response = client.post("/login", data=wrong)
        assert response.status_code == 401
    response = client.post("/login", data=wrong)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    # Throttled means throttled: the right password does not get through either.
    right = {**wrong, "password": PASSWORD}
    assert client.post("/login", data=right).status_code == 429
    assert not is_logged_in(client)
    assert client.get("/login").status_code == 200  # only attempts are limited
    assert audit_actions(app).count("login.failed") == 3


def test_repeated_wrong_totp_codes_are_throttled(client, make_user, strict_limit):
    user = make_user("approver")
    login(client, user, totp=False)
    token = csrf_token(client, "/account/totp")
    wrong = str((int(user.code()) + 500_000) % 1_000_000).zfill(6)
    for _ in range(3):
        response = client.post("/account/totp", data={"code": wrong, "csrf_token": token})
        assert response.status_code == 200  # the form again, with an error
    response = client.post("/account/totp", data={"code": user.code(), "csrf_token": token})
    assert response.status_code == 429
    assert client.get("/console/approvals").headers["Location"].startswith("/account/totp")


def test_unknown_user_and_wrong_password_look_the_same(client, make_user):
    user = make_user("editor")
    token = csrf_token(client, "/login")
    unknown = client.post("/login", data={"email": "nobody@test.nl", "password": PASSWORD,
                                          "csrf_token": token})
    wrong = client.post("/login", data={"email": user.email, "password": "x" * 20,
                                        "csrf_token": token})
    assert unknown.status_code == wrong.status_code == 401
    flash = re.compile(r'<p class="flash error"[^>]*>(.*?)</p>')
    assert flash.findall(unknown.get_data(as_text=True)) == flash.findall(
        wrong.get_data(as_text=True)
    ) != []


def test_deactivated_user_cannot_log_in(app, client, make_user):
    user = make_user("editor")
    with app.app_context():
        db.session.get(User, user.id).active = False
        db.session.commit()
    token = csrf_token(client, "/login")
    response = client.post("/login", data={"email": user.email, "password": PASSWORD,
                                           "csrf_token": token})
    assert response.status_code == 401
    assert not is_logged_in(client)


# --- the second factor -------------------------------------------------------------------------


def test_approver_without_second_factor_cannot_reach_approvals(client, make_user):
    user = make_user("approver")
    login(client, user, totp=False)
    response = client.get("/console/approvals")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/account/totp?next=/console/approvals")
    token = csrf_token(client, "/account/totp")
    bad = str((int(user.code()) + 500_000) % 1_000_000).zfill(6)
    assert client.post("/account/totp", data={"code": bad, "csrf_token": token}).status_code == 200
    assert client.get("/console/approvals").status_code == 302
    response = client.post(
        "/account/totp?next=/console/approvals", data={"code": user.code(), "csrf_token": token}
    )
    assert response.headers["Location"] == "/console/approvals"
    assert client.get("/console/approvals").status_code == 200


def test_approver_must_enrol_a_second_factor_first(app, client, make_user):
    import pyotp

    user = make_user("approver", totp=False)
    token = csrf_token(client, "/login")
    response = client.post("/login", data={"email": user.email, "password": PASSWORD,
                                           "csrf_token": token})
    assert response.headers["Location"].startswith("/account/totp")
    assert client.get("/console/approvals").headers["Location"].startswith("/account/totp")
    page = client.get("/account/totp").get_data(as_text=True)
    assert 'src="data:image/svg+xml' in page  # the QR code
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page).group(1)
    token = csrf_token(client, "/account/totp")
    response = client.post("/account/totp", data={"code": pyotp.TOTP(secret).now(),
                                                  "csrf_token": token})
    assert response.status_code == 302
    assert client.get("/console/approvals").status_code == 200
    with app.app_context():
        stored = db.session.get(User, user.id)
        assert stored.totp_enabled and stored.totp_secret == secret
    assert "totp.enrolled" in audit_actions(app)


def test_viewer_and_editor_need_no_second_factor(client, make_user):
    for role in ("viewer", "editor"):
        fresh = client.application.test_client()
        token = csrf_token(fresh, "/login")
        user = make_user(role)
        response = fresh.post("/login", data={"email": user.email, "password": PASSWORD,
                                              "csrf_token": token})
        assert response.headers["Location"] == "/console/"


# --- sessions ----------------------------------------------------------------------------------


def test_logout_ends_the_session_even_for_a_copied_cookie(app, client, make_user):
    user = make_user("editor")
    login(client, user)
    stolen = client.get_cookie("session").value
    token = csrf_token(client, "/console/")
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert not is_logged_in(client)
    replay = app.test_client()
    replay.set_cookie("session", stolen)
    assert not is_logged_in(replay)
    assert audit_actions(app)[-1] == "logout"


def test_role_change_ends_that_users_sessions(app, make_user):
    admin, editor = make_user("admin"), make_user("editor")
    admin_client, editor_client = app.test_client(), app.test_client()
    login(admin_client, admin)
    login(editor_client, editor)
    assert is_logged_in(editor_client)
    token = csrf_token(admin_client, "/console/admin/users")
    response = admin_client.post(f"/console/admin/users/{editor.id}/role",
                                 data={"role": "viewer", "csrf_token": token})
    assert response.status_code == 302
    assert not is_logged_in(editor_client)
    login(editor_client, editor)
    assert "· viewer" in editor_client.get("/console/").get_data(as_text=True)
    assert "user.role_changed" in audit_actions(app)


def test_admin_cannot_change_own_role(app, client, make_user):
    admin = make_user("admin")
    login(client, admin)
    token = csrf_token(client, "/console/admin/users")
    client.post(f"/console/admin/users/{admin.id}/role", data={"role": "viewer",
                                                              "csrf_token": token})
    with app.app_context():
        assert db.session.get(User, admin.id).role is Role.admin
    assert client.get("/console/admin/users").status_code == 200


@pytest.fixture
def clock(monkeypatch):
    """Move the clock that signs and checks session cookies; real time stays put."""
    offset = {"seconds": 0}
    real = TimestampSigner.get_timestamp

    def shifted(self):
        return real(self) + offset["seconds"]

    monkeypatch.setattr(TimestampSigner, "get_timestamp", shifted)
    return offset


def test_idle_timeout_ends_the_session(app, client, make_user, clock):
    assert app.config["SESSION_IDLE_MINUTES"] == 30
    login(client, make_user("editor"))
    clock["seconds"] = 20 * 60
    assert is_logged_in(client)  # and the cookie is signed anew: idle, not absolute
    clock["seconds"] = 45 * 60
    assert is_logged_in(client)
    clock["seconds"] = 45 * 60 + 31 * 60
    assert not is_logged_in(client)


def test_login_redirects_only_to_local_paths(client, make_user):
    user = make_user("editor")
    for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        fresh = client.application.test_client()
        token = csrf_token(fresh, "/login")
        response = fresh.post(f"/login?next={target}", data={
            "email": user.email, "password": PASSWORD, "csrf_token": token})
        assert response.headers["Location"] == "/console/", target
    fresh = client.application.test_client()
    token = csrf_token(fresh, "/login")
    response = fresh.post("/login?next=/console/incidents/new", data={
        "email": user.email, "password": PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == "/console/incidents/new"


# --- headers and templates ---------------------------------------------------------------------


def test_csp_forbids_inline_scripts(client, make_user):
    pages = [client.get("/login"), client.get("/")]
    login(client, make_user("editor"))
    pages.append(client.get("/console/"))
    for response in pages:
        csp = response.headers["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"] == "'self'"
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert directives["object-src"] == "'none'"
        assert directives["frame-ancestors"] == "'none'"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"


INLINE_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.I | re.S)
EVENT_HANDLER = re.compile(r"<[a-z][^>]*?\son[a-z]+\s*=", re.I | re.S)
# The one kind of <script> with a body allowed: a JSON data block, which no browser executes
# (and CSP does not govern), filled by |tojson, which escapes <, > and & so it cannot end early.
DATA_BLOCK = re.compile(r'^\s+type="application/json"\s+id="[\w-]+"\s*$')
TOJSON_ONLY = re.compile(r"^\{\{\s*[\w.]+\s*\|\s*tojson\s*\}\}$")


def _inline_problems(name: str, html: str, rendered: bool = False) -> list[str]:
    import json

    problems = []
    for attrs, body in INLINE_SCRIPT.findall(html):
        if DATA_BLOCK.match(attrs):
            if rendered:
                try:
                    json.loads(body)
                except ValueError:
                    problems.append(f"{name}: <script{attrs}> does not hold JSON")
                if "<" in body:
                    problems.append(f"{name}: <script{attrs}> holds an unescaped '<'")
            elif not TOJSON_ONLY.match(body.strip()):
                problems.append(f"{name}: <script{attrs}> is not filled by a single |tojson")
        elif body.strip() or "src=" not in attrs:
            problems.append(f"{name}: inline <script{attrs}>")
    problems += [f"{name}: {m.group(0)!r}" for m in EVENT_HANDLER.finditer(html)]
    return problems


def test_no_template_has_inline_script_or_event_handler():
    templates = sorted(Path(ROOT, "templates").rglob("*.html"))
    assert len(templates) >= 8
    problems = []
    for path in templates:
        problems += _inline_problems(str(path.relative_to(ROOT)), path.read_text())
    assert not problems, problems


def test_the_checks_catch_what_they_look_for():
    """The scan above would see an inline script or a handler if one were there."""
    assert _inline_problems("t", "<script>alert(1)</script>")
    assert _inline_problems("t", '<script src="/x.js">var a</script>')
    assert _inline_problems("t", '<button type="submit"\n onclick="go()">')
    assert not _inline_problems("t", '<script src="/static/js/console.js"></script>')
    assert not _inline_problems("t", '<p>Online = ja</p><button class="x">')
    data = '<script type="application/json" id="d">{}</script>'
    assert not _inline_problems("t", data.format("{{ page|tojson }}"))
    assert _inline_problems("t", data.format("{{ page }}"))
    assert _inline_problems("t", data.format('{"a": 1}; alert(1)'), rendered=True)
    assert _inline_problems("t", data.format('{"a": "</b>"}'), rendered=True)
    assert not _inline_problems("t", data.format('{"a": "\\u003c/b>"}'), rendered=True)
    assert _inline_problems("t", '<script type="module" id="d">{"a": 1}</script>')


def test_rendered_pages_have_no_inline_script(client, make_user, app):
    from crisis.incidents import service

    admin = make_user("admin")
    with app.app_context():
        incident = service.create_incident(title="Storm Dalfsen", mode="drill", actor_id=None)
        db.session.commit()
        incident_id = incident.id
    pages = {"/login": client.get("/login")}
    login(client, admin)
    for path in ("/console/", "/console/approvals", "/console/admin/users",
                 "/console/incidents/new", f"/console/incidents/{incident_id}"):
        pages[path] = client.get(path)
    problems = []
    for path, response in pages.items():
        assert response.status_code == 200, path
        problems += _inline_problems(path, response.get_data(as_text=True), rendered=True)
    assert not problems, problems
