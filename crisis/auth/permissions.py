"""The one place that decides who may do what.

Every view declares an action with `@requires(...)`; the action's minimum role lives in ACTIONS.
Roles are ordered (viewer < editor < approver < admin), so a higher role may do all a lower one may.
Actions marked in NEEDS_TOTP also need a second factor passed in this session.
"""

from __future__ import annotations

from functools import wraps

from flask import abort, g, redirect, request, session, url_for
from flask_login import current_user

from crisis.models import Role

ACTIONS: dict[str, Role] = {
    "incident.view": Role.viewer,
    "incident.create": Role.editor,
    "incident.update": Role.editor,
    "message.draft": Role.editor,
    "message.approve": Role.approver,
    "message.break_glass": Role.admin,
    "channels.view": Role.viewer,
    "users.manage": Role.admin,
    "tokens.manage": Role.admin,
    "audit.view": Role.admin,
    "account.self": Role.viewer,
    "subscribers.manage": Role.admin,
    "areas.manage": Role.admin,
}

# Approving and administering are where one stolen password must not be enough.
NEEDS_TOTP = {"message.approve", "message.break_glass", "users.manage", "tokens.manage", "audit.view",
              "subscribers.manage"}


def role_of_request() -> Role | None:
    """The role in force: an API token's (never above its owner's) or the logged-in user's."""
    token = g.get("api_token")
    if token is not None:
        return token.effective_role
    if current_user.is_authenticated:
        return current_user.role
    return None


def second_factor_passed() -> bool:
    if g.get("api_token") is not None:
        return True  # a token is issued by an admin who passed TOTP; it is its own factor
    return bool(session.get("totp_ok"))


def can(action: str, role: Role | None = None) -> bool:
    """May the current requester (or `role`) perform `action`?"""
    role = role if role is not None else role_of_request()
    return role is not None and role >= ACTIONS[action]


def requires(action: str):
    """Decorate a view: 401/redirect to login when anonymous, 403 when the role is too low."""
    if action not in ACTIONS:
        raise KeyError(f"unknown action {action!r}")

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            role = role_of_request()
            if role is None:
                if request.blueprint == "api" or request.is_json:
                    abort(401)
                return redirect(url_for("auth.login", next=request.full_path))
            if not can(action, role):
                abort(403)
            if action in NEEDS_TOTP and not second_factor_passed():
                if request.blueprint == "api":
                    abort(403)
                return redirect(url_for("auth.totp", next=request.full_path))
            return view(*args, **kwargs)

        wrapped.required_action = action
        return wrapped

    return decorator
