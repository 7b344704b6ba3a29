"""The role matrix: every route × every role, allowed exactly when ACTIONS says so.

Routes come from app.url_map, so a new view without `@requires(...)` fails here, and a new route
argument needs a real id below before the matrix can reach it.
"""

from __future__ import annotations

import pytest

from crisis.auth.permissions import ACTIONS, NEEDS_TOTP
from crisis.models import Role
from tests.conftest import csrf_token, login

# Reachable without a login role: assets, the residents' pages, health, and the way in.
OPEN_ENDPOINTS = {
    "static", "healthz", "auth.login", "auth.language",
    # Residents sign up, confirm, stop and read the privacy statement without an account.
    "subscriptions.subscribe", "subscriptions.confirm", "subscriptions.stop",
    "subscriptions.privacy_statement",
}
# The residents' pages and their question form; webhooks are authenticated by the provider's
# signature, not by a login (tested with them).
OPEN_BLUEPRINTS = {"public", "questions", "webhooks"}
ROLES = [None, Role.viewer, Role.editor, Role.approver, Role.admin]
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def guarded_routes(app):
    """(endpoint, rule, method, action) for every route that needs a login role."""
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in OPEN_ENDPOINTS or rule.endpoint.split(".")[0] in OPEN_BLUEPRINTS:
            continue
        action = getattr(app.view_functions[rule.endpoint], "required_action", None)
        for method in sorted(rule.methods & set(METHODS)):
            routes.append((rule.endpoint, rule, method, action))
    # Logging out ends the session the rest of the matrix runs on: do it last.
    return sorted(routes, key=lambda r: (r[0] == "auth.logout", r[0], r[2]))


def test_every_guarded_route_declares_an_action(app):
    missing = sorted({ep for ep, _rule, _m, action in guarded_routes(app) if action is None})
    assert not missing, f"views without @requires(...): {missing}"
    unknown = sorted({a for _ep, _r, _m, a in guarded_routes(app) if a not in ACTIONS})
    assert not unknown


def test_the_matrix_covers_the_known_routes(app):
    endpoints = {ep for ep, *_ in guarded_routes(app)}
    assert {
        "auth.logout", "auth.totp", "console.index", "console.users", "console.change_role",
        "incidents.create", "incidents.show", "api.me", "api.list_incidents",
        "api.get_incident", "api.create_incident",
    } <= endpoints
    assert {"message.approve", "users.manage"} <= {a for *_, a in guarded_routes(app)}


@pytest.fixture
def real_ids(app, make_user):
    """Real rows for every id a route takes, so each request reaches its view.

    The message is an empty draft of someone else's (in a drill): whatever a permitted role
    sends it, it cannot be submitted, approved or sent. Rows are made only for the ids that some
    route takes.
    """
    from crisis import models
    from crisis.extensions import db
    from crisis.incidents import service

    needed = {arg for rule in app.url_map.iter_rules() for arg in rule.arguments}
    target = make_user("viewer")
    ids = {"user_id": target.id}
    with app.app_context():
        incident = service.create_incident(title="Brand Nieuwleusen", mode="drill", actor_id=None)
        message = models.Message(incident=incident, author_id=target.id, channels=["website"])
        db.session.add(message)
        db.session.flush()
        delivery = models.Delivery(message_id=message.id, channel="website")
        db.session.add(delivery)
        ids.update(incident_id=incident.id, message_id=message.id)
        rows = {
            "delivery_id": lambda: delivery,
            "area_id": lambda: models.Area(code="ankum", name="Ankum", postcodes=["7722"]),
            "cluster_id": lambda: models.Cluster(incident_id=incident.id, key=1, label="Rook"),
            "reaction_id": lambda: models.Reaction(
                channel=list(models.ReactionChannel)[0], provider_id="r-1",
                incident_id=incident.id, text="Is het water veilig?"),
            "item_id": lambda: models.ChecklistItem(incident_id=incident.id, step_id="s1",
                                                    title="Informeer de burgemeester"),
        }
        made = {}
        for name, make in rows.items():
            if name in needed:
                made[name] = make()
                db.session.add(made[name])
        if "phone" in needed:
            ids["phone"] = "+31612345678"
            db.session.add(models.Subscriber(phone=ids["phone"]))
        if "runbook_id" in needed:
            ids["runbook_id"] = next(iter(app.extensions["runbooks"]))
        db.session.commit()
        ids.update({name: row.id for name, row in made.items()})
    return ids


def _url(rule, ids) -> str:
    missing = sorted(set(rule.arguments) - set(ids))
    if missing:
        pytest.fail(f"{rule.rule}: give the role matrix a real value for {missing}")
    return rule.build({name: ids[name] for name in rule.arguments})[1]


def _request(client, rule, method, ids, token):
    url = _url(rule, ids)
    if method == "GET":
        return client.get(url)
    if rule.endpoint.startswith("api."):
        return client.open(url, method=method, json={}, headers={"X-CSRFToken": token})
    return client.open(url, method=method, data={"csrf_token": token})


def _outcome(response) -> str:
    location = response.headers.get("Location", "")
    if response.status_code in (401, 403):
        return f"denied {response.status_code}"
    # `requires` sends the refused browser to log in (or to the second factor) and back: with
    # `next`. A plain redirect to /login (after logging out) is the view having run.
    if response.status_code in (301, 302, 303) and "next=" in location and (
        location.startswith("/login?") or location.startswith("/account/totp?")
    ):
        return f"denied (redirect to {location.split('?')[0]})"
    assert response.status_code < 500, response.get_data(as_text=True)
    return "allowed"


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.value if r else "anonymous")
def test_role_matrix(app, make_user, real_ids, role):
    client = app.test_client()
    if role is not None:
        login(client, make_user(role.value))
        token = csrf_token(client, "/console/")
    else:
        token = csrf_token(client, "/login")
    wrong = []
    for endpoint, rule, method, action in guarded_routes(app):
        response = _request(client, rule, method, real_ids, token)
        expected = role is not None and role >= ACTIONS[action]
        outcome = _outcome(response)
        if (outcome == "allowed") != expected:
            wrong.append(f"{method} {rule.rule} ({action}): {outcome}, expected "
                         f"{'allowed' if expected else 'denied'}")
        if not expected:
            if role is None and endpoint.startswith("api."):
                assert response.status_code == 401, (endpoint, response.status_code)
            elif role is None:
                assert response.headers["Location"].startswith("/login"), endpoint
            else:
                assert response.status_code == 403, (endpoint, response.status_code)
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("role", [Role.approver, Role.admin], ids=lambda r: r.value)
def test_without_second_factor_totp_actions_are_refused(app, make_user, real_ids, role):
    """Password only: everything the role may do except the actions that need TOTP."""
    client = app.test_client()
    user = make_user(role.value)
    login(client, user, totp=False)
    token = csrf_token(client, "/console/")
    wrong = []
    for endpoint, rule, method, action in guarded_routes(app):
        if endpoint == "auth.totp":
            continue  # the way to pass the second factor
        response = _request(client, rule, method, real_ids, token)
        expected = role >= ACTIONS[action] and action not in NEEDS_TOTP
        outcome = _outcome(response)
        if (outcome == "allowed") != expected:
            wrong.append(f"{method} {rule.rule} ({action}): {outcome}")
        if role < ACTIONS[action]:
            assert response.status_code == 403, endpoint
        elif action in NEEDS_TOTP:
            if endpoint.startswith("api."):
                assert response.status_code == 403, endpoint
            else:
                assert response.headers["Location"].startswith("/account/totp"), endpoint
    assert not wrong, "\n".join(wrong)


def test_the_policy_is_the_issues():
    """Pinned, so loosening a rule is a visible change here and not only in ACTIONS."""
    assert ACTIONS["incident.view"] is Role.viewer
    assert ACTIONS["incident.create"] is Role.editor
    assert ACTIONS["message.draft"] is Role.editor
    assert ACTIONS["message.approve"] is Role.approver
    for action in ("message.break_glass", "users.manage", "tokens.manage", "audit.view"):
        assert ACTIONS[action] is Role.admin, action
    assert {"message.approve", "message.break_glass", "users.manage", "tokens.manage",
            "audit.view"} <= NEEDS_TOTP


def test_roles_are_ordered():
    assert Role.viewer < Role.editor < Role.approver < Role.admin
    assert not Role.editor >= Role.approver
    assert [r.needs_totp for r in Role] == [False, False, True, True]
