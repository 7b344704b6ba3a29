"""The `crisis` command: users create, tokens create / revoke, and clear errors for bad input."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from crisis.cli import main
from crisis.extensions import db
from crisis.models import ApiToken, AuditEvent, Role, User
from tests.conftest import PASSWORD, csrf_token

TOKEN_LINE = re.compile(r"^token (\d+) \((\w+), expires (\d{4}-\d\d-\d\d)\):\n(crs_\S+)\n$")


@pytest.fixture
def crisis(app):
    """crisis(*args, input=None) -> click Result, run against the test app."""
    runner = app.test_cli_runner()

    def run(*args: str, input: str | None = None):
        return runner.invoke(main, list(args), input=input)

    return run


def test_users_create_reads_the_password_from_stdin(app, client, crisis):
    result = crisis("users", "create", "Woordvoerder@Dalfsen.nl", "--role", "editor",
                    "--name", "Woordvoerder", input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"created user \d+ \(editor\)\n", result.output)
    assert PASSWORD not in result.output
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == "woordvoerder@dalfsen.nl"))
        assert user.role is Role.editor and user.name == "Woordvoerder"
        assert user.check_password(PASSWORD)
        assert db.session.scalar(sa.select(AuditEvent.action)) == "user.created"
    token = csrf_token(client, "/login")
    response = client.post("/login", data={"email": "woordvoerder@dalfsen.nl",
                                           "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/console/"


def test_users_create_refuses_a_short_password(app, crisis):
    result = crisis("users", "create", "kort@dalfsen.nl", "--role", "viewer", input="kort\n")
    assert result.exit_code == 2
    assert "a password needs at least 12 characters" in result.output
    assert "Traceback" not in result.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


def test_users_create_refuses_a_duplicate(crisis, make_user):
    existing = make_user("viewer", email="dubbel@dalfsen.nl")
    result = crisis("users", "create", existing.email.upper(), "--role", "admin",
                    input=PASSWORD + "\n")
    assert result.exit_code == 2
    assert "a user with e-mail DUBBEL@DALFSEN.NL exists already" in result.output


def test_users_create_refuses_an_unknown_role(crisis):
    result = crisis("users", "create", "x@dalfsen.nl", "--role", "god", input=PASSWORD + "\n")
    assert result.exit_code == 2
    assert "'god' is not one of 'viewer', 'editor', 'approver', 'admin'" in result.output


def test_tokens_create_and_revoke(app, client, crisis, make_user):
    owner = make_user("approver", email="approver@dalfsen.nl")
    result = crisis("tokens", "create", "approver@dalfsen.nl", "--role", "editor", "--days", "7",
                    "--name", "koppeling")
    assert result.exit_code == 0, result.output
    token_id, role, _expires, raw = TOKEN_LINE.match(result.output).groups()
    assert role == "editor"
    with app.app_context():
        stored = db.session.get(ApiToken, int(token_id))
        assert stored.user_id == owner.id and stored.name == "koppeling"
        assert stored.token_hash == ApiToken.hash(raw)

    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"})
    assert me.status_code == 200
    assert me.json["email"] == "approver@dalfsen.nl" and me.json["role"] == "editor"

    result = crisis("tokens", "revoke", token_id)
    assert result.exit_code == 0, result.output
    assert result.output == f"revoked token {token_id}\n"
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 401
    with app.app_context():
        actions = list(db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.seq)))
    assert actions[-2:] == ["token.created", "token.revoked"]


def test_tokens_create_defaults_to_the_owners_role(crisis, make_user):
    make_user("viewer", email="kijker@dalfsen.nl")
    result = crisis("tokens", "create", "kijker@dalfsen.nl")
    assert result.exit_code == 0, result.output
    assert TOKEN_LINE.match(result.output).group(2) == "viewer"


@pytest.mark.parametrize(
    "args,message",
    [
        (["--role", "admin"], "a token cannot have a higher role than its owner (editor)"),
        (["--days", "0"], "a token lives between 1 and 366 days"),
        (["--days", "400"], "a token lives between 1 and 366 days"),
        (["--days", "soon"], "'soon' is not a valid integer"),
        (["--role", "root"], "'root' is not one of"),
    ],
)
def test_tokens_create_refuses_bad_input(app, crisis, make_user, args, message):
    make_user("editor", email="redacteur@dalfsen.nl")
    result = crisis("tokens", "create", "redacteur@dalfsen.nl", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert "crs_" not in result.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 0


def test_tokens_create_for_an_unknown_user(crisis):
    result = crisis("tokens", "create", "niemand@dalfsen.nl")
    assert result.exit_code == 2
    assert "no user with e-mail niemand@dalfsen.nl" in result.output


def test_tokens_revoke_an_unknown_token(crisis):
    result = crisis("tokens", "revoke", "424242")
    assert result.exit_code == 2
    assert "no token 424242" in result.output
    result = crisis("tokens", "revoke", "alle")
    assert result.exit_code == 2
    assert "'alle' is not a valid integer" in result.output


def test_the_command_lists_its_groups(crisis):
    result = crisis("--help")
    assert result.exit_code == 0
    for command in ("users", "tokens", "audit", "db", "demo", "worker", "beat"):
        assert re.search(rf"^\s+{command}\b", result.output, re.M), command
