"""Emulator of the X API v2 endpoints the console uses, on X's real wire format (under `/x`).

What tweepy sends is checked the way X checks it: OAuth 1.0a (consumer key, token and the
HMAC-SHA1 signature over the ORIGINAL `https://api.twitter.com` URL, since the redirect happens
after signing) for user context, the bearer token for reads. Every answer carries the
`x-rate-limit-*` headers. Posts come back the way X shows them: links t.co-wrapped, `&<>`
HTML-escaped. Injected mentions can also be delivered as signed Account Activity webhooks.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import math
import queue
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import requests
from flask import Blueprint, current_app, g, jsonify, request
from oauthlib.oauth1.rfc5849 import signature, utils

from channels.text import x_length

DEFAULTS: dict[str, Any] = {
    "X_API_KEY": "sandbox-x-api-key",
    "X_API_SECRET": "sandbox-x-api-secret",
    "X_ACCESS_TOKEN": "1500000000000000001-sandbox-x-access-token",
    "X_ACCESS_SECRET": "sandbox-x-access-secret",
    "X_BEARER_TOKEN": "sandbox-x-bearer-token",
    "X_USERNAME": "crisis_nl",
    "X_DISPLAY_NAME": "Crisis team (sandbox)",
    "X_RATE_LIMIT": 300,  # calls per endpoint per 15-minute window, then 429 as X does
    "X_WEBHOOK_ENABLED": False,  # also deliver injected mentions to CONSOLE_URL/webhooks/x
}

api = Blueprint("sandbox_x", __name__, url_prefix="/x")
control = Blueprint("sandbox_x_control", __name__, url_prefix="/_sandbox/x")

ORIGIN = "https://api.twitter.com"  # what tweepy signs, whatever host it is redirected to
WINDOW_SECONDS = 900
TWITTER_EPOCH_MS = 1288834974657
OAUTH_CLOCK_SKEW = 900  # seconds; X refuses stale oauth_timestamp values
USER_CONTEXT_ONLY = {"sandbox_x.create_tweet", "sandbox_x.delete_tweet", "sandbox_x.me"}
URL_RE = re.compile(r"https?://\S+?(?=[.,!?;:)\]]*(?:\s|$))")
MENTION_RE = re.compile(r"(?<!\w)@(\w{1,15})")


class ApiError(Exception):
    """An answer in X's problem format, raised anywhere below a view."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        """Keep the HTTP status, JSON body and extra headers of X's error answer."""
        super().__init__(body.get("detail") or body.get("title"))
        self.status, self.body, self.headers = status, body, headers or {}


def problem(status: int, title: str, detail: str, kind: str = "about:blank") -> ApiError:
    """Build X's v2 problem answer (`title`, `detail`, `type`, `status`)."""
    return ApiError(status, {"title": title, "detail": detail, "type": kind, "status": status})


def invalid_request(message: str, parameter: str) -> ApiError:
    """Build X's 400 answer for a bad parameter."""
    return ApiError(
        400,
        {
            "errors": [{"parameters": {parameter: []}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request",
        },
    )


# Webhook deliveries (shared with the Facebook emulator)


@dataclass
class Step:
    """One HTTP call of a delivery; `check` decides success, `on_done(ok)` records the result."""

    kind: str
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None = None
    params: dict[str, str] | None = None
    check: Callable[[requests.Response], bool] | None = None
    on_done: Callable[[bool], None] | None = None


class Deliveries:
    """Webhook calls the sandbox makes, one at a time in one background thread, kept for tests.

    One worker keeps them in the order they were asked for (a handshake before the first event,
    a reply after its comment) and bounds the threads a burst of injects can start.
    """

    def __init__(self) -> None:
        """Start with no deliveries; the worker thread starts with the first one."""
        self._lock = threading.Lock()
        self._items: list[dict[str, Any]] = []
        self._count = 0
        self._generation = 0
        self._queue: queue.Queue[tuple[int, list[Step], list[dict[str, Any]], float]] = queue.Queue()
        self._worker: threading.Thread | None = None

    def clear(self) -> None:
        """Forget every delivery; queued ones are dropped, the one in flight still finishes."""
        with self._lock:
            self._items = []
            self._generation += 1

    def list(self) -> list[dict[str, Any]]:
        """Return copies of every delivery record, oldest first."""
        with self._lock:
            return [dict(item) for item in self._items]

    def start(self, steps: list[Step], timeout: float) -> list[str]:
        """Record `steps` as pending and queue them; they run in order after earlier ones."""
        with self._lock:
            records = [self._record(step) for step in steps]
            self._items.extend(records)
            self._queue.put((self._generation, steps, records, timeout))
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, daemon=True)
                self._worker.start()
        return [record["id"] for record in records]

    def _record(self, step: Step) -> dict[str, Any]:
        self._count += 1
        return {
            "id": f"d{self._count}-{secrets.token_hex(3)}",
            "kind": step.kind,
            "url": step.url,
            "status": None,
            "ok": None,
            "error": None,
            "done": False,
        }

    def _work(self) -> None:
        session = requests.Session()
        session.trust_env = False  # deliveries go straight to the console, never via a proxy
        while True:
            generation, steps, records, timeout = self._queue.get()
            for step, record in zip(steps, records, strict=True):
                if generation != self._generation:
                    break  # the sandbox was reset after this was queued
                update = self._attempt(session, step, timeout)
                with self._lock:
                    record.update(update, done=True)

    @staticmethod
    def _attempt(session: requests.Session, step: Step, timeout: float) -> dict[str, Any]:
        # Runs in the worker thread: every failure is recorded for the control API, none escapes.
        try:
            response = session.request(
                step.method,
                step.url,
                params=step.params,
                data=step.body,
                headers=step.headers,
                timeout=timeout,
            )
            ok = step.check(response) if step.check else 200 <= response.status_code < 300
            result = {"status": response.status_code, "ok": ok}
        except Exception as exc:  # noqa: BLE001 - recorded, visible via /_sandbox/<p>/deliveries
            ok, result = False, {"ok": False, "error": type(exc).__name__}
        if step.on_done:
            step.on_done(ok)
        return result


# The store


class Store:
    """Thread-safe in-memory X: posts, injected mentions, rate windows and webhook deliveries."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        """Ids continue across resets, so a poller's old since_id stays meaningful."""
        self._lock = threading.Lock()
        self._last_id = (int(time.time() * 1000) - TWITTER_EPOCH_MS) << 22
        self.deliveries = Deliveries()
        self._epoch = 0  # bumped by reset(), so a handshake begun before it cannot count after
        self.reset()

    def reset(self) -> None:
        """Forget posts, users, rate windows and deliveries."""
        with self._lock:
            self.tweets: dict[str, dict[str, Any]] = {}
            self.users: dict[str, dict[str, str]] = {}
            self.windows: dict[str, tuple[float, int]] = {}
            self.crc_state = "none"  # none | queued | verified: one CRC check in flight at most
            self._epoch = self._epoch + 1
        self.deliveries.clear()

    def _next_id(self) -> str:
        # Snowflake-like: time-ordered and strictly increasing, like X's ids.
        now = (int(time.time() * 1000) - TWITTER_EPOCH_MS) << 22
        self._last_id = max(self._last_id + 1, now)
        return str(self._last_id)

    # Rate windows

    def count_call(self, key: str, limit: int, now: float) -> tuple[int, int, int]:
        """Count one call in `key`'s 15-minute window; return (limit, remaining, reset epoch)."""
        with self._lock:
            reset, used = self.windows.get(key, (0.0, 0))
            if now >= reset:
                reset, used = now + WINDOW_SECONDS, 0
            self.windows[key] = (reset, used + 1)
        return limit, limit - used - 1, math.ceil(reset)

    # Users

    def account(self, config: Mapping[str, Any]) -> dict[str, str]:
        """Return the authenticated account, from the configured access token and username."""
        user_id = str(config["X_ACCESS_TOKEN"]).partition("-")[0]
        return {
            "id": user_id,
            "username": config["X_USERNAME"],
            "name": config.get("X_DISPLAY_NAME") or config["X_USERNAME"],
        }

    def user(self, author: Any) -> dict[str, str]:
        """Return (creating) a member of the public; `author` is a username or a dict."""
        spec = author if isinstance(author, dict) else {"username": str(author or "inwoner")}
        username = str(spec.get("username") or "inwoner").lstrip("@")
        with self._lock:
            known = next((u for u in self.users.values() if u["username"] == username), None)
            if known:
                return known
            user_id = str(spec.get("id") or 4_200_000 + len(self.users) + 1)
            user = {"id": user_id, "username": username, "name": spec.get("name") or username}
            self.users[user_id] = user
            return user

    def user_by_id(self, user_id: str, config: Mapping[str, Any]) -> dict[str, str] | None:
        """Look a user up by id (the account included)."""
        account = self.account(config)
        if user_id == account["id"]:
            return account
        with self._lock:
            return self.users.get(user_id)

    # Posts

    def create(
        self, author: dict[str, str], text: str, reply_to: str | None, source: str = "api"
    ) -> dict[str, Any]:
        """Store a post by `author`, refusing duplicates and replies to missing posts."""
        with self._lock:
            if source == "api" and any(
                t["author_id"] == author["id"] and not t["deleted"] and t["text"] == text
                for t in self.tweets.values()
            ):
                raise problem(
                    403,
                    "Forbidden",
                    "You are not allowed to create a Tweet with duplicate content.",
                )
            parent = self.tweets.get(reply_to) if reply_to else None
            if reply_to and (parent is None or parent["deleted"]):
                raise problem(
                    403,
                    "Forbidden",
                    "You attempted to reply to a Tweet that is deleted or not visible to you.",
                )
            record = _new_post(self._next_id(), author, text, parent, source)
            self.tweets[record["id"]] = record
            return dict(record)

    def delete(self, tweet_id: str, user_id: str) -> None:
        """Mark a post deleted; only its author may, and only once."""
        with self._lock:
            record = self.tweets.get(tweet_id)
            if record is None or record["deleted"]:
                raise problem(
                    404,
                    "Not Found Error",
                    f"Could not find tweet with id: [{tweet_id}].",
                    "https://api.twitter.com/2/problems/resource-not-found",
                )
            if record["author_id"] != user_id:
                raise problem(403, "Forbidden", "You are not allowed to delete a Tweet you did not create.")
            record.update(deleted=True, deleted_at=_iso_now())

    def visible(self, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """Non-deleted posts matching `predicate`, newest first."""
        with self._lock:
            found = [dict(t) for t in self.tweets.values() if not t["deleted"] and predicate(t)]
        return sorted(found, key=lambda t: int(t["id"]), reverse=True)

    def all_posts(self, source: str) -> list[dict[str, Any]]:
        """Every post from `source` ("api" or "inject"), deleted ones included, oldest first."""
        with self._lock:
            found = [dict(t) for t in self.tweets.values() if t["source"] == source]
        return sorted(found, key=lambda t: int(t["id"]))

    # Injected public reactions

    def inject(self, spec: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        """Create a mention of the account (a reply when `in_reply_to` is given)."""
        text = str(spec.get("text") or "").strip()
        if not text:
            raise ValueError("text is required")
        account = self.account(config)
        handle = f"@{account['username']}"
        if handle.lower() not in text.lower():
            text = f"{handle} {text}"  # X puts the handle in front of replies and mentions
        reply_to = str(spec["in_reply_to"]) if spec.get("in_reply_to") else None
        try:
            record = self.create(self.user(spec.get("author")), text, reply_to, "inject")
        except ApiError as exc:
            raise ValueError(str(exc)) from None
        result = {
            "id": record["id"],
            "author_id": record["author_id"],
            "conversation_id": record["conversation_id"],
            "delivery_ids": [],
        }
        if config.get("X_WEBHOOK_ENABLED"):
            result["delivery_ids"] = self._deliver(record, account, config)
        return result

    def _deliver(
        self, record: dict[str, Any], account: dict[str, str], config: Mapping[str, Any]
    ) -> list[str]:
        url = str(config["CONSOLE_URL"]).rstrip("/") + "/webhooks/x"
        secret = str(config["X_API_SECRET"])
        done = functools.partial(self._crc_done, self._epoch)
        steps = [_crc_step(url, secret, done)] if self._crc_needed() else []
        payload = {
            "for_user_id": account["id"],
            "user_has_blocked": False,
            "tweet_create_events": [self._v1_object(record, config)],
        }
        body = json.dumps(payload).encode()
        steps.append(
            Step(
                "event",
                "POST",
                url,
                {
                    "Content-Type": "application/json",
                    "x-twitter-webhooks-signature": _b64_hmac(secret, body),
                },
                body,
            )
        )
        return self.deliveries.start(steps, float(config.get("SANDBOX_WEBHOOK_TIMEOUT", 5.0)))

    def _crc_needed(self) -> bool:
        with self._lock:
            needed = self.crc_state == "none"
            if needed:
                self.crc_state = "queued"
            return needed

    def _crc_done(self, epoch: int, ok: bool) -> None:
        with self._lock:  # a failed check is repeated before the next event, as X re-checks
            if epoch == self._epoch:  # not for a check that started before a reset
                self.crc_state = "verified" if ok else "none"

    def _v1_object(self, record: dict[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        """Build the v1.1 Tweet object that Account Activity webhooks carry."""
        user = self.user_by_id(record["author_id"], config) or {"id": record["author_id"]}
        parent = record["in_reply_to"]
        parent_user = self.user_by_id(record["in_reply_to_user_id"] or "", config) or {}
        text, entities = display(record["text"], record["id"])
        created = datetime.fromisoformat(record["created_at"].replace("Z", "+00:00"))
        return {
            "created_at": created.strftime("%a %b %d %H:%M:%S +0000 %Y"),
            "id": int(record["id"]),
            "id_str": record["id"],
            "text": text,
            "truncated": False,
            "user": {
                "id": int(user["id"]),
                "id_str": user["id"],
                "name": user.get("name"),
                "screen_name": user.get("username"),
            },
            "in_reply_to_status_id": int(parent) if parent else None,
            "in_reply_to_status_id_str": parent,
            "in_reply_to_user_id_str": record["in_reply_to_user_id"],
            "in_reply_to_screen_name": parent_user.get("username"),
            "entities": {
                "urls": entities.get("urls", []),
                "user_mentions": [{"screen_name": m["username"]} for m in entities.get("mentions", [])],
            },
        }


def _new_post(
    post_id: str, author: dict[str, str], text: str, parent: dict[str, Any] | None, source: str
) -> dict[str, Any]:
    return {
        "id": post_id,
        "text": text,
        "author_id": author["id"],
        "created_at": _iso_now(),
        "in_reply_to": parent["id"] if parent else None,
        "in_reply_to_user_id": parent["author_id"] if parent else None,
        "conversation_id": parent["conversation_id"] if parent else post_id,
        "referenced": [{"type": "replied_to", "id": parent["id"]}] if parent else [],
        "source": source,
        "deleted": False,
        "deleted_at": None,
    }


def _iso_now() -> str:
    """X's timestamp format: milliseconds and `Z`."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _b64_hmac(secret: str, message: bytes) -> str:
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def _crc_step(url: str, secret: str, on_done: Callable[[bool], None]) -> Step:
    """X's challenge-response check, done once before the first event as at registration."""
    token = secrets.token_urlsafe(24)
    expected = _b64_hmac(secret, token.encode())

    def check(response: requests.Response) -> bool:
        try:
            answer = response.json().get("response_token", "")
        except ValueError:
            return False
        return response.status_code == 200 and hmac.compare_digest(str(answer), expected)

    return Step("crc", "GET", url, {}, params={"crc_token": token}, check=check, on_done=on_done)


# How X shows a post


def display(text: str, post_id: str) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """Return the text as X returns it (t.co links, `&<>` escaped) and its entities."""
    parts: list[str] = []
    urls: list[dict[str, Any]] = []
    position = 0
    for match in URL_RE.finditer(text):
        parts.append(_escape(text[position : match.start()]))
        digest = hashlib.sha1(f"{post_id}{match.group()}".encode()).hexdigest()
        short = "https://t.co/" + digest[:10]
        start = len("".join(parts))
        parts.append(short)
        urls.append(
            {
                "start": start,
                "end": start + len(short),
                "url": short,
                "expanded_url": match.group(),
                "display_url": match.group().split("://", 1)[1][:26],
            }
        )
        position = match.end()
    parts.append(_escape(text[position:]))
    shown = "".join(parts)
    mentions = [
        {"start": m.start(), "end": m.end(), "username": m.group(1)} for m in MENTION_RE.finditer(shown)
    ]
    entities = {key: value for key, value in (("urls", urls), ("mentions", mentions)) if value}
    return shown, entities


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def tweet_json(record: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    """Build a v2 Tweet object: the default fields plus the requested `tweet.fields`."""
    text, entities = display(record["text"], record["id"])
    out: dict[str, Any] = {
        "id": record["id"],
        "text": text,
        "edit_history_tweet_ids": [record["id"]],
    }
    optional = {
        "created_at": record["created_at"],
        "author_id": record["author_id"],
        "conversation_id": record["conversation_id"],
        "in_reply_to_user_id": record["in_reply_to_user_id"],
        "referenced_tweets": record["referenced"] or None,
        "entities": entities or None,
    }
    out.update({k: v for k, v in optional.items() if k in fields and v is not None})
    return out


# Request plumbing


def store() -> Store:
    """Return the app's X store."""
    return current_app.extensions["sandbox_x"]


@api.errorhandler(ApiError)
def _api_error(exc: ApiError):
    response = jsonify(exc.body)
    response.status_code = exc.status
    response.headers.update(exc.headers)
    return response


@api.before_request
def gate():
    """Faults, the rate window and authentication, in that order, before any endpoint runs."""
    kind, seconds_left = current_app.extensions["sandbox_faults"].decide("x")
    if kind == "outage":
        return _outage()
    now = time.time()
    limit = int(current_app.config.get("X_RATE_LIMIT", 300))
    rule = request.url_rule.rule if request.url_rule else request.path
    limit, remaining, reset = store().count_call(f"{request.method} {rule}", limit, now)
    if kind == "rate_limit":
        remaining, reset = 0, math.ceil(now + seconds_left)
    g.rate_headers = {
        "x-rate-limit-limit": str(limit),
        "x-rate-limit-remaining": str(max(remaining, 0)),
        "x-rate-limit-reset": str(reset),
    }
    if kind == "rate_limit" or remaining < 0:
        raise problem(429, "Too Many Requests", "Too Many Requests")
    if kind == "server_error":
        raise problem(503, "Service Unavailable", "Service Unavailable")
    # kind == "timeout": the board already slept past the client's timeout; the request still
    # lands, exactly the "outcome unknown" case the console reconciles with find().
    g.user_id = authenticate(current_app.config)
    return None


@api.after_request
def _rate_headers(response):
    response.headers.update(getattr(g, "rate_headers", {}))
    return response


def _outage():
    # What a failing edge in front of the API answers: 503 with an HTML page, not the API's JSON.
    return (
        "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
        503,
        {"Content-Type": "text/html"},
    )


def authenticate(config: Mapping[str, Any]) -> str | None:
    """Return the user id for OAuth 1.0a, None for the app bearer, or raise X's 401/403."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        if not _same(header[len("Bearer ") :], config["X_BEARER_TOKEN"]):
            raise _unauthorized()
        if request.endpoint in USER_CONTEXT_ONLY:
            raise problem(
                403,
                "Unsupported Authentication",
                "Authenticating with OAuth 2.0 Application-Only is forbidden for this "
                "endpoint.  Supported authentication types are [OAuth 1.0a User "
                "Context, OAuth 2.0 User Context].",
                "https://api.twitter.com/2/problems/unsupported-authentication",
            )
        return None
    if header.startswith("OAuth ") and _oauth1_valid(header, config):
        return str(config["X_ACCESS_TOKEN"]).partition("-")[0]
    raise _unauthorized()


def _unauthorized() -> ApiError:
    return ApiError(
        401,
        {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"},
    )


def _same(given: str, expected: Any) -> bool:
    return hmac.compare_digest(str(given).encode(), str(expected).encode())


def _oauth1_valid(header: str, config: Mapping[str, Any]) -> bool:
    """Check keys, timestamp and the HMAC-SHA1 signature over the original X URL."""
    oauth = {key: unquote(value) for key, value in utils.parse_authorization_header(header)}
    if not (
        _same(oauth.get("oauth_consumer_key", ""), config["X_API_KEY"])
        and _same(oauth.get("oauth_token", ""), config["X_ACCESS_TOKEN"])
        and oauth.get("oauth_signature_method") == "HMAC-SHA1"
        and abs(time.time() - int(oauth.get("oauth_timestamp") or 0)) <= OAUTH_CLOCK_SKEW
    ):
        return False
    form = list(request.form.items(multi=True)) if request.mimetype.endswith("urlencoded") else None
    params = signature.collect_parameters(
        uri_query=request.query_string.decode(), body=form, headers={"Authorization": header}
    )
    path = request.path[len(api.url_prefix) :]
    base = signature.signature_base_string(
        request.method.upper(),
        signature.base_string_uri(ORIGIN + path),
        signature.normalize_parameters(params),
    )
    key = f"{utils.escape(config['X_API_SECRET'])}&{utils.escape(config['X_ACCESS_SECRET'])}"
    digest = hmac.new(key.encode(), base.encode(), hashlib.sha1).digest()  # RFC 5849 §3.4.2
    return _same(oauth.get("oauth_signature", ""), base64.b64encode(digest).decode())


# Endpoints


@api.post("/2/tweets")
def create_tweet():
    """`POST /2/tweets`: 201 with the post as X shows it."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise invalid_request("Request body must be JSON", "body")
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise invalid_request("text must not be empty", "text")
    if _too_long(text):
        raise problem(
            403,
            "Forbidden",
            "Your Tweet text is too long. For more information on "
            "how Twitter determines text length see https://github.com/twitter/twitter-text.",
        )
    reply_to = (body.get("reply") or {}).get("in_reply_to_tweet_id")
    author = store().account(current_app.config)
    record = store().create(author, text, str(reply_to) if reply_to else None)
    return jsonify(data=tweet_json(record, set())), 201


def _too_long(text: str) -> bool:
    return x_length(text, "v3").weighted_length > 280


@api.delete("/2/tweets/<tweet_id>")
def delete_tweet(tweet_id: str):
    """`DELETE /2/tweets/:id`: `{"data": {"deleted": true}}`."""
    store().delete(tweet_id, g.user_id)
    return jsonify(data={"deleted": True})


@api.get("/2/users/me")
def me():
    """`GET /2/users/me`: the authenticated account."""
    return jsonify(data=store().account(current_app.config))


@api.get("/2/users/<user_id>/tweets")
def user_tweets(user_id: str):
    """`GET /2/users/:id/tweets`: that user's posts, newest first, paginated."""
    records = store().visible(lambda t: t["author_id"] == user_id)
    return listing(records, "pagination_token", 5, 100)


@api.get("/2/users/<user_id>/mentions")
def user_mentions(user_id: str):
    """`GET /2/users/:id/mentions`: others' posts that @mention the user, newest first."""
    user = store().user_by_id(user_id, current_app.config)
    handle = f"@{user['username']}".lower() if user else None
    records = store().visible(
        lambda t: bool(handle) and t["author_id"] != user_id and handle in t["text"].lower()
    )
    return listing(records, "pagination_token", 5, 100)


@api.get("/2/tweets/search/recent")
def search_recent():
    """`GET /2/tweets/search/recent`: a small subset of X's query language."""
    query = request.args.get("query", "").strip()
    if not query:
        raise invalid_request("The `query` query parameter can not be empty", "query")
    matches = _query_matcher(query)
    return listing(store().visible(matches), "next_token", 10, 100)


def _query_matcher(query: str) -> Callable[[dict[str, Any]], bool]:
    """Support `conversation_id:`, `to:`, `from:` (by user id), `@user` and plain words."""
    terms = []
    for token in query.split():
        if token.startswith(("-", "is:", "has:", "lang:")):
            continue  # filters the sandbox has nothing to apply to (no retweets, no media)
        operator, _, value = token.partition(":")
        if operator not in ("conversation_id", "to", "from"):
            operator, value = "word", token
        terms.append((operator, value.lower()))
    return lambda record: all(_term_matches(record, op, value) for op, value in terms)


def _term_matches(record: dict[str, Any], operator: str, value: str) -> bool:
    text = record["text"].lower()
    if operator == "conversation_id":
        return record["conversation_id"] == value
    if operator == "to":
        return text.startswith(f"@{value}")
    if operator == "from":
        return record["author_id"] == value
    return value in text


def listing(records: list[dict[str, Any]], token_name: str, low: int, high: int):
    """Filter, paginate and shape a newest-first list the way X's timelines and search do."""
    args = request.args
    size = _max_results(args.get("max_results"), low, high)
    records = [t for t in records if _in_range(t, args)]
    after = args.get(token_name)
    if after:
        records = [t for t in records if int(t["id"]) < _decode_token(after, token_name)]
    page, more = records[:size], len(records) > size
    fields = set(filter(None, args.get("tweet.fields", "").split(",")))
    body: dict[str, Any] = {"meta": {"result_count": len(page)}}
    if page:  # X leaves `data` out entirely when nothing matches
        body["data"] = [tweet_json(t, fields) for t in page]
        body["meta"].update(newest_id=page[0]["id"], oldest_id=page[-1]["id"])
        body["includes"] = _includes(page, args)
        if not body["includes"]:
            del body["includes"]
    if more:
        body["meta"]["next_token"] = _encode_token(page[-1]["id"])
    return jsonify(body)


def _max_results(value: str | None, low: int, high: int) -> int:
    if value is None:
        return 10
    if not value.isdigit() or not low <= int(value) <= high:
        raise invalid_request(
            f"The `max_results` query parameter value [{value}] is not between {low} and {high}",
            "max_results",
        )
    return int(value)


def _in_range(record: dict[str, Any], args: Mapping[str, str]) -> bool:
    post_id = int(record["id"])
    created = _parse_time(record["created_at"])
    checks = (
        ("since_id", lambda v: post_id > int(v)),
        ("until_id", lambda v: post_id < int(v)),
        ("start_time", lambda v: created >= _parse_time(v)),
        ("end_time", lambda v: created <= _parse_time(v)),
    )
    try:
        return all(test(args[name]) for name, test in checks if args.get(name))
    except ValueError:
        raise invalid_request("Invalid id or time parameter", "since_id") from None


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _encode_token(oldest_id: str) -> str:
    return base64.b32encode(f"before:{oldest_id}".encode()).decode().rstrip("=").lower()


def _decode_token(token: str, name: str) -> int:
    try:
        padded = token.upper() + "=" * (-len(token) % 8)
        return int(base64.b32decode(padded).decode().removeprefix("before:"))
    except (ValueError, UnicodeDecodeError):
        raise invalid_request(f"The `{name}` query parameter value is invalid", name) from None


def _includes(page: Iterable[dict[str, Any]], args: Mapping[str, str]) -> dict[str, Any]:
    if "author_id" not in args.get("expansions", "").split(","):
        return {}
    users = []
    for author_id in dict.fromkeys(t["author_id"] for t in page):
        user = store().user_by_id(author_id, current_app.config)
        if user:
            users.append(user)
    return {"users": users} if users else {}


# Control API


@control.get("/tweets")
def control_tweets():
    """Every post the console made through the API, deleted ones included, oldest first."""
    return jsonify([_control_view(t) for t in store().all_posts("api")])


@control.get("/mentions")
def control_mentions():
    """Every injected public post, oldest first."""
    return jsonify([_control_view(t) for t in store().all_posts("inject")])


@control.get("/deliveries")
def control_deliveries():
    """Webhook deliveries (CRC checks and events) and how the console answered."""
    return jsonify(store().deliveries.list())


def _control_view(record: dict[str, Any]) -> dict[str, Any]:
    return {
        key: record[key]
        for key in (
            "id",
            "text",
            "author_id",
            "created_at",
            "in_reply_to",
            "conversation_id",
            "deleted",
            "deleted_at",
        )
    }
