"""Account operations shared by the web views, the API and the CLI."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import pyotp
import sqlalchemy as sa
from flask import current_app, g, has_request_context

from crisis import audit, live
from crisis.extensions import db, login_manager
from crisis.models import ApiToken, Role, User
from crisis.models.types import utcnow

TOKEN_PREFIX = "crs_"


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    user_id, _, epoch = session_id.partition(":")
    if not user_id.isdigit() or not epoch.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    if user is None or user.session_epoch != int(epoch):
        return None  # logged out elsewhere or role changed: this session is over
    return user


@login_manager.request_loader
def load_user_from_token(req) -> User | None:
    """Bearer tokens authenticate API calls only; they never create a browser session."""
    header = req.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or not req.path.startswith("/api/"):
        return None
    token = find_token(header.removeprefix("Bearer ").strip())
    if token is None:
        return None
    g.api_token = token
    token.last_used_at = utcnow()
    db.session.commit()
    return token.user


def find_token(raw: str) -> ApiToken | None:
    if not raw.startswith(TOKEN_PREFIX):
        return None
    token = db.session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == ApiToken.hash(raw)))
    if token is None or not token.usable(utcnow()):
        return None
    return token


def create_user(email: str, password: str, role: Role, name: str = "") -> User:
    if len(password) < 12:
        raise ValueError("a password needs at least 12 characters")
    user = User(email=email.strip().lower(), name=name, role=role)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    audit.record("user.created", actor_id=_actor_id(), target=user, role=role.value)
    return user


def change_role(user: User, role: Role) -> None:
    old = user.role
    user.role = role
    user.session_epoch += 1
    audit.record("user.role_changed", actor_id=_actor_id(), target=user, old=old.value, new=role.value)
    live.drop_user(user.id)


def end_sessions(user: User) -> None:
    """Log the user out everywhere: sessions and sockets carrying the old epoch stop working."""
    user.session_epoch += 1
    live.drop_user(user.id)


def create_token(
    user: User, role: Role | None = None, days: int | None = None, name: str = ""
) -> tuple[ApiToken, str]:
    """Create a token; the raw value is returned once and only its hash is stored."""
    role = role or user.role
    if role > user.role:
        raise ValueError(f"a token cannot have a higher role than its owner ({user.role.value})")
    days = current_app.config["API_TOKEN_DAYS"] if days is None else days  # 0 is an error
    if not 1 <= days <= 366:
        raise ValueError("a token lives between 1 and 366 days")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user,
        name=name,
        prefix=raw[: len(TOKEN_PREFIX) + 6],
        token_hash=ApiToken.hash(raw),
        role=role,
        expires_at=utcnow() + timedelta(days=days),
    )
    db.session.add(token)
    db.session.flush()
    audit.record("token.created", actor_id=_actor_id(), target=token, owner=user.id, role=role.value)
    return token, raw


def revoke_token(token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record("token.revoked", actor_id=_actor_id(), target=token)


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_matches(secret: str, code: str, at: datetime | None = None) -> bool:
    # One step of drift either way: phones' clocks are rarely exact.
    return pyotp.TOTP(secret).verify(code.strip(), for_time=at, valid_window=1)


def _actor_id() -> int | None:
    from flask_login import current_user

    if has_request_context() and current_user.is_authenticated:
        return current_user.id
    return None
