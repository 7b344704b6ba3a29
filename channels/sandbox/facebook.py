"""Emulator of the Graph API calls a Page makes, on Graph's real wire format (under `/graph`).

Posts, edits, comments and deletes answer as Graph does; errors are `{"error": {message, type,
code, error_subcode, fbtrace_id}}` with usage headers on every answer. The access token is
accepted where Graph accepts it (query, form body, `Authorization` header). Injected public
comments are delivered to the console as page webhooks, signed with `X-Hub-Signature-256` over
the ASCII-escaped JSON body Meta sends, after Meta's `hub.challenge` subscription check.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, current_app, g, jsonify, request

from channels.sandbox.x import Deliveries, Step

DEFAULTS: dict[str, Any] = {
    "FACEBOOK_PAGE_ID": "1234567890",
    "FACEBOOK_PAGE_NAME": "Crisis team (sandbox)",
    "FACEBOOK_PAGE_TOKEN": "sandbox-facebook-page-token",
    "FACEBOOK_APP_SECRET": "sandbox-facebook-app-secret",
    "FACEBOOK_VERIFY_TOKEN": "sandbox-facebook-verify-token",
    "FACEBOOK_GRAPH_VERSION": "v21.0",
    "FACEBOOK_REQUIRE_APPSECRET_PROOF": False,
    "FACEBOOK_CALL_LIMIT": 4800,  # calls per hour before Business Use Case throttling (#80001)
    "FACEBOOK_RATE_LIMIT_CODE": 32,  # what the `rate_limit` fault answers: 4, 17, 32, 613, 80001
}

api = Blueprint("sandbox_graph", __name__, url_prefix="/graph")
control = Blueprint("sandbox_facebook_control", __name__, url_prefix="/_sandbox/facebook")

VERSION_RE = re.compile(r"v\d+\.\d+")
USAGE_WINDOW = 3600
RATE_LIMIT_MESSAGES = {
    4: "(#4) Application request limit reached",
    17: "(#17) User request limit reached",
    32: "(#32) Page request limit reached",
    613: "(#613) Calls to this api have exceeded the rate limit.",
    80001: "(#80001) There have been too many calls to this Page account. Wait a bit and try "
    "again. For more info, please refer to "
    "https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
}
NOT_FOUND = (
    "Unsupported {verb} request. Object with ID '{id}' does not exist, cannot be loaded "
    "due to missing permissions, or does not support this operation. Please read the "
    "Graph API documentation at https://developers.facebook.com/docs/graph-api"
)


class GraphError(Exception):
    """Graph's error answer, raised anywhere below a view."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        kind: str = "OAuthException",
        subcode: int | None = None,
        transient: bool | None = None,
    ) -> None:
        """Keep what the JSON error body needs."""
        super().__init__(message)
        self.status, self.code, self.message, self.kind = status, code, message, kind
        self.subcode, self.transient = subcode, transient

    def body(self) -> dict[str, Any]:
        """Return `{"error": {...}}` as Graph sends it (optional keys only when set)."""
        error: dict[str, Any] = {"message": self.message, "type": self.kind, "code": self.code}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.transient is not None:
            error["is_transient"] = self.transient
        error["fbtrace_id"] = "A" + secrets.token_urlsafe(16)
        return {"error": error}


def not_found(object_id: str, verb: str) -> GraphError:
    """Graph's answer for an id that does not exist (or was deleted)."""
    return GraphError(400, 100, NOT_FOUND.format(verb=verb, id=object_id), "GraphMethodException", subcode=33)


def bad_parameter(message: str) -> GraphError:
    """Graph's `(#100)` invalid parameter answer."""
    return GraphError(400, 100, f"(#100) {message}")


class Store:
    """Thread-safe in-memory Page: posts, comments, usage counters and webhook deliveries."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        """Ids keep growing across resets, as Graph's do."""
        self._lock = threading.Lock()
        self._last_id = int(time.time() * 1000) * 1000
        self.deliveries = Deliveries()
        self._epoch = 0  # bumped by reset(), so a handshake begun before it cannot count after
        self.reset()

    def reset(self) -> None:
        """Forget every object, the usage window and the webhook state."""
        with self._lock:
            self.objects: dict[str, dict[str, Any]] = {}
            self.users: dict[str, dict[str, str]] = {}
            self.window: tuple[float, int] = (0.0, 0)
            self.subscription = "none"  # none | queued | verified: one check in flight at most
            self._epoch = self._epoch + 1
        self.deliveries.clear()

    def _next_local(self) -> str:
        self._last_id += 1
        return str(self._last_id)

    def count_call(self, now: float, limit: int) -> tuple[int, int]:
        """Count one call; return (usage percent, minutes until the hourly window ends)."""
        with self._lock:
            start, calls = self.window
            if now >= start + USAGE_WINDOW:
                start, calls = now, 0
            self.window = (start, calls + 1)
        percent = min(100, math.ceil((calls + 1) * 100 / max(limit, 1)))
        return percent, math.ceil((start + USAGE_WINDOW - now) / 60)

    # Objects

    def post(self, page: dict[str, str], message: str, link: str | None, version: str) -> dict[str, Any]:
        """Create a page post; Graph refuses the same message twice (#506)."""
        with self._lock:
            if message and any(
                o["kind"] == "post" and not o["deleted"] and o["message"] == message
                for o in self.objects.values()
            ):
                raise GraphError(400, 506, "(#506) Duplicate status message")
            local = self._next_local()
            record = _record(f"{page['id']}_{local}", "post", page, message, "api", version)
            record.update(link=link, page_id=page["id"], post_id=record["id"], parent_id=None)
            self.objects[record["id"]] = record
            return dict(record)

    def comment(
        self,
        parent_id: str,
        author: dict[str, str],
        message: str,
        source: str,
        version: str | None = None,
    ) -> dict[str, Any]:
        """Comment on a post, or reply to a comment, by the page or a member of the public."""
        with self._lock:
            parent = self.objects.get(parent_id)
            if parent is None or parent["deleted"]:
                raise not_found(parent_id, "post")
            post_local = parent["post_id"].partition("_")[2]
            record = _record(
                f"{post_local}_{self._next_local()}", "comment", author, message, source, version
            )
            record.update(
                post_id=parent["post_id"], parent_id=parent_id, page_id=parent["page_id"], link=None
            )
            self.objects[record["id"]] = record
            return dict(record)

    def edit(self, object_id: str, message: str) -> dict[str, Any]:
        """Replace an object's message, keeping the history for the control API."""
        with self._lock:
            record = self._live(object_id, "post")
            record["edits"].append({"message": record["message"], "replaced_at": _iso(time.time())})
            record.update(message=message, updated_time=time.time())
            return dict(record)

    def delete(self, object_id: str) -> dict[str, Any]:
        """Mark an object deleted."""
        with self._lock:
            record = self._live(object_id, "delete")
            record.update(deleted=True, deleted_at=_iso(time.time()))
            return dict(record)

    def get(self, object_id: str) -> dict[str, Any]:
        """Return a live object or raise Graph's not-found error."""
        with self._lock:
            return dict(self._live(object_id, "get"))

    def _live(self, object_id: str, verb: str) -> dict[str, Any]:
        record = self.objects.get(object_id)
        if record is None or record["deleted"]:
            raise not_found(object_id, verb)
        return record

    def select(self, **match: Any) -> list[dict[str, Any]]:
        """Live objects whose fields equal `match`, oldest first."""
        with self._lock:
            found = [
                dict(o)
                for o in self.objects.values()
                if not o["deleted"] and all(o.get(k) == v for k, v in match.items())
            ]
        return sorted(found, key=lambda o: o["seq"])

    def everything(self, source: str) -> list[dict[str, Any]]:
        """Every object from `source` ("api" or "inject"), deleted ones included, oldest first."""
        with self._lock:
            found = [dict(o) for o in self.objects.values() if o["source"] == source]
        return sorted(found, key=lambda o: o["seq"])

    def user(self, author: Any) -> dict[str, str]:
        """Return (creating) a member of the public; `author` is a name or {id?, name}."""
        spec = author if isinstance(author, dict) else {"name": str(author or "Inwoner")}
        name = str(spec.get("name") or "Inwoner")
        with self._lock:
            known = next((u for u in self.users.values() if u["name"] == name), None)
            if known:
                return known
            user = {"id": str(spec.get("id") or 24_000 + len(self.users) + 1), "name": name}
            self.users[user["id"]] = user
            return user

    # Injected public reactions

    def inject(self, spec: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        """Add, edit or remove a public comment, then deliver the page webhook for it."""
        verb = spec.get("verb") or "add"
        if verb == "add":
            record = self._inject_add(spec, config)
        elif verb in ("edited", "remove"):
            record = self._inject_change(spec, verb)
        else:
            raise ValueError("verb must be add, edited or remove")
        payload = webhook_payload(record, verb, config)
        return {
            "comment_id": record["id"],
            "post_id": record["post_id"],
            "delivery_ids": self._deliver(payload, config),
        }

    def _inject_add(self, spec: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        text = str(spec.get("text") or "").strip()
        if not text:
            raise ValueError("text is required")
        post_id = spec.get("post_id") or self._latest_post(config)
        parent_id = str(spec.get("parent_id") or post_id)
        try:
            parent = self.get(parent_id)
            if parent["post_id"] != str(post_id):
                raise ValueError(f"{parent_id} is not on post {post_id}")
            return self.comment(parent_id, self.user(spec.get("author")), text, "inject")
        except GraphError as exc:
            raise ValueError(f"unknown or deleted object: {parent_id}") from exc

    def _latest_post(self, config: Mapping[str, Any]) -> str:
        posts = self.select(kind="post", page_id=str(config["FACEBOOK_PAGE_ID"]))
        if not posts:
            raise ValueError("post_id is required (the page has no posts yet)")
        return posts[-1]["id"]

    def _inject_change(self, spec: Mapping[str, Any], verb: str) -> dict[str, Any]:
        comment_id = str(spec.get("comment_id") or "")
        try:
            if verb == "remove":
                return self.delete(comment_id)
            return self.edit(comment_id, str(spec.get("text") or ""))
        except GraphError as exc:
            raise ValueError(f"unknown or deleted comment: {comment_id!r}") from exc

    def _deliver(self, payload: dict[str, Any], config: Mapping[str, Any]) -> list[str]:
        url = str(config["CONSOLE_URL"]).rstrip("/") + "/webhooks/facebook"
        steps = []
        if self._subscription_needed():
            done = functools.partial(self._subscription_done, self._epoch)
            steps.append(_verify_step(url, str(config["FACEBOOK_VERIFY_TOKEN"]), done))
        steps.append(_event_step(url, payload, str(config["FACEBOOK_APP_SECRET"])))
        return self.deliveries.start(steps, float(config.get("SANDBOX_WEBHOOK_TIMEOUT", 5.0)))

    def _subscription_needed(self) -> bool:
        with self._lock:
            needed = self.subscription == "none"
            if needed:
                self.subscription = "queued"
            return needed

    def _subscription_done(self, epoch: int, ok: bool) -> None:
        with self._lock:  # a failed check is tried again before the next event
            if epoch == self._epoch:  # not for a check that started before a reset
                self.subscription = "verified" if ok else "none"


def _record(
    object_id: str,
    kind: str,
    author: dict[str, str],
    message: str,
    source: str,
    version: str | None,
) -> dict[str, Any]:
    now = time.time()
    seq = int(object_id.rpartition("_")[2])  # local ids only grow: they order objects
    return {
        "id": object_id,
        "kind": kind,
        "from": dict(author),
        "message": message,
        "created_time": now,
        "updated_time": now,
        "edits": [],
        "deleted": False,
        "deleted_at": None,
        "source": source,
        "version": version,
        "seq": seq,
    }


def _iso(epoch: float) -> str:
    """Graph's timestamp format (`2025-05-01T12:00:00+0000`)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


# Webhooks


def webhook_payload(record: dict[str, Any], verb: str, config: Mapping[str, Any]) -> dict:
    """Build the page webhook Meta sends for a comment event (docs/channels.md §2.4)."""
    page_id = str(config["FACEBOOK_PAGE_ID"])
    post_local = record["post_id"].partition("_")[2]
    value: dict[str, Any] = {
        "from": record["from"],
        "post": {
            "status_type": "mobile_status_update",
            "is_published": True,
            "updated_time": _iso(record["updated_time"]),
            "permalink_url": f"https://www.facebook.com/{page_id}/posts/{post_local}",
            "promotion_status": "inactive",
            "id": record["post_id"],
        },
        "post_id": record["post_id"],
        "comment_id": record["id"],
        "created_time": int(record["created_time"]),
        "item": "comment",
        "parent_id": record["parent_id"],
        "verb": verb,
    }
    if verb != "remove":  # remove events carry no message
        value["message"] = record["message"]
    return {
        "object": "page",
        "entry": [
            {
                "id": page_id,
                "time": int(time.time()),
                "changes": [{"field": "feed", "value": value}],
            }
        ],
    }


def _verify_step(url: str, verify_token: str, on_done: Callable[[bool], None]) -> Step:
    """Meta's subscription check: echo `hub.challenge` when the verify token matches."""
    challenge = str(secrets.randbelow(10**9))
    return Step(
        "verify",
        "GET",
        url,
        {},
        params={
            "hub.mode": "subscribe",
            "hub.challenge": challenge,
            "hub.verify_token": verify_token,
        },
        check=lambda r: r.status_code == 200 and r.text.strip() == challenge,
        on_done=on_done,
    )


def _event_step(url: str, payload: dict[str, Any], app_secret: str) -> Step:
    # Meta signs the ASCII-escaped JSON (\u00eb); json.dumps' default ensure_ascii does the same.
    body = json.dumps(payload).encode()
    sha256 = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    sha1 = hmac.new(app_secret.encode(), body, hashlib.sha1).hexdigest()
    return Step(
        "event",
        "POST",
        url,
        {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": f"sha256={sha256}",
            "X-Hub-Signature": f"sha1={sha1}",  # the legacy header Meta still sends alongside
        },
        body,
    )


# Request plumbing


def store() -> Store:
    """Return the app's Facebook store."""
    return current_app.extensions["sandbox_facebook"]


def page(config: Mapping[str, Any]) -> dict[str, str]:
    """Return the configured page as an author (`from`)."""
    return {
        "id": str(config["FACEBOOK_PAGE_ID"]),
        "name": str(config.get("FACEBOOK_PAGE_NAME") or "Page"),
    }


@api.errorhandler(GraphError)
def _graph_error(exc: GraphError):
    response = jsonify(exc.body())
    response.status_code = exc.status
    response.headers["WWW-Authenticate"] = f'OAuth "Facebook Platform" "{exc.kind}"'
    return response


@api.before_request
def gate():
    """Faults, version, usage and the access token, before any endpoint runs."""
    kind, seconds_left = current_app.extensions["sandbox_faults"].decide("facebook")
    if kind == "outage":
        return (
            "<html><body><h1>503 Service Unavailable</h1></body></html>",
            503,
            {"Content-Type": "text/html"},
        )
    config = current_app.config
    version = (request.view_args or {}).get("version", "")
    if not VERSION_RE.fullmatch(version):
        raise GraphError(400, 2500, f"Unknown path components: /{version}")
    g.version = version
    percent, eta = store().count_call(time.time(), int(config.get("FACEBOOK_CALL_LIMIT", 4800)))
    if kind == "rate_limit":
        percent, eta = 100, max(1, math.ceil(seconds_left / 60))
    g.usage = _usage_headers(str(config["FACEBOOK_PAGE_ID"]), percent, eta if percent >= 100 else 0)
    if kind == "rate_limit":
        code = int(config.get("FACEBOOK_RATE_LIMIT_CODE", 32))
        raise GraphError(
            403 if code == 4 else 400, code, RATE_LIMIT_MESSAGES.get(code, RATE_LIMIT_MESSAGES[32])
        )
    if percent >= 100:
        raise GraphError(400, 80001, RATE_LIMIT_MESSAGES[80001])
    if kind == "server_error":
        raise GraphError(503, 2, "(#2) Service temporarily unavailable", transient=True)
    # kind == "timeout": the board already slept past the client's timeout; the call still lands.
    _authenticate(config)
    return None


@api.after_request
def _headers(response):
    response.headers.update(getattr(g, "usage", {}))
    if getattr(g, "version", None):
        response.headers["facebook-api-version"] = g.version
    return response


def _usage_headers(page_id: str, percent: int, eta_minutes: int) -> dict[str, str]:
    usage = {
        "call_count": percent,
        "total_time": max(1, percent // 2),
        "total_cputime": max(1, percent // 2),
    }
    buc = {page_id: [{"type": "pages", **usage, "estimated_time_to_regain_access": eta_minutes}]}
    return {"X-App-Usage": json.dumps(usage), "X-Business-Use-Case-Usage": json.dumps(buc)}


def _authenticate(config: Mapping[str, Any]) -> None:
    """Accept the page token from the query, the form body or `Authorization`, like Graph."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    token = (
        request.args.get("access_token")
        or request.form.get("access_token")
        or (value.strip() if scheme in ("OAuth", "Bearer") else "")
    )
    if not token:
        raise GraphError(400, 104, "An access token is required to request this resource.")
    if not _same(token, config["FACEBOOK_PAGE_TOKEN"]):
        raise GraphError(400, 190, "Invalid OAuth access token - Cannot parse access token")
    proof = request.args.get("appsecret_proof") or request.form.get("appsecret_proof")
    if proof is None and config.get("FACEBOOK_REQUIRE_APPSECRET_PROOF"):
        raise GraphError(
            400,
            100,
            "API calls from the server require an appsecret_proof argument",
            "GraphMethodException",
        )
    if proof is not None:
        expected = hmac.new(
            str(config["FACEBOOK_APP_SECRET"]).encode(), token.encode(), hashlib.sha256
        ).hexdigest()
        if not _same(proof, expected):
            raise GraphError(
                400,
                100,
                "Invalid appsecret_proof provided in the API argument",
                "GraphMethodException",
            )


def _same(given: str, expected: Any) -> bool:
    return hmac.compare_digest(str(given).encode(), str(expected).encode())


def _params() -> Mapping[str, str]:
    """Graph reads parameters from the query and the form body alike."""
    return {**request.args.to_dict(), **request.form.to_dict()}


# Endpoints


@api.route("/<version>/<object_id>", methods=["GET", "POST", "DELETE"])
def node(version: str, object_id: str):
    """`GET` reads a node, `POST` edits a post or comment, `DELETE` removes it."""
    config = current_app.config
    if request.method == "DELETE":
        store().delete(object_id)
        return jsonify(success=True)
    if request.method == "POST":
        message = _params().get("message")
        if not message:
            raise bad_parameter("The parameter message is required")
        record = store().get(object_id)
        if record["source"] != "api":
            raise GraphError(403, 200, "(#200) Permissions error")
        store().edit(object_id, message)
        return jsonify(success=True)
    fields = _fields("id,name" if object_id == str(config["FACEBOOK_PAGE_ID"]) else None)
    if object_id == str(config["FACEBOOK_PAGE_ID"]):
        data = page(config)
        return jsonify({k: v for k, v in data.items() if k in fields})
    return jsonify(_view(store().get(object_id), fields))


@api.route("/<version>/<object_id>/<edge>", methods=["GET", "POST"])
def edge(version: str, object_id: str, edge: str):
    """`/{page}/feed` and `/{object}/comments`, read and write."""
    if edge == "feed":
        return _feed_post(object_id) if request.method == "POST" else _feed(object_id)
    if edge == "comments":
        return _comment_post(object_id) if request.method == "POST" else _comments(object_id)
    raise GraphError(400, 2500, f"Unknown path components: /{edge}")


def _feed_post(page_id: str):
    config = current_app.config
    if page_id != str(config["FACEBOOK_PAGE_ID"]):
        raise GraphError(
            403,
            200,
            "(#200) If posting to a page, requires both "
            "pages_read_engagement and pages_manage_posts permission",
        )
    params = _params()
    message, link = params.get("message") or "", params.get("link") or None
    if not message and not link:
        raise bad_parameter("Missing message or attachment")
    record = store().post(page(config), message, link, g.version)
    return jsonify(id=record["id"])


def _comment_post(object_id: str):
    message = _params().get("message")
    if not message:
        raise bad_parameter("Missing message or attachment")
    record = store().comment(object_id, page(current_app.config), message, "api", g.version)
    return jsonify(id=record["id"])


def _feed(page_id: str):
    if page_id != str(current_app.config["FACEBOOK_PAGE_ID"]):
        raise not_found(page_id, "get")
    posts = list(reversed(store().select(kind="post", page_id=page_id)))  # newest first
    since, until = _time_param("since"), _time_param("until")
    posts = [
        p
        for p in posts
        if (since is None or p["created_time"] >= since) and (until is None or p["created_time"] <= until)
    ]
    return _paged(posts, _fields("id,message,created_time"), f"{page_id}/feed")


def _comments(object_id: str):
    store().get(object_id)  # 100/33 for an unknown or deleted object
    args = request.args
    if args.get("filter") == "stream":
        post_id = store().get(object_id)["post_id"]
        found = store().select(kind="comment", post_id=post_id)
    else:
        found = store().select(kind="comment", parent_id=object_id)
    if args.get("order") == "reverse_chronological":
        found.reverse()
    return _paged(found, _fields("id,message,from,created_time"), f"{object_id}/comments")


def _fields(default: str | None) -> set[str]:
    given = request.args.get("fields") or default or "id,message,created_time"
    return {name.strip() for name in given.split(",") if name.strip()}


def _time_param(name: str) -> float | None:
    value = request.args.get(name)
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise bad_parameter(f"The parameter {name} is not a valid time") from None


def _paged(items: list[dict[str, Any]], fields: set[str], path: str):
    """One page of `items` with Graph's cursor paging (`after` / `before`, `next`)."""
    args = request.args
    try:
        limit = min(max(int(args.get("limit", 25)), 1), 100)
    except ValueError:
        raise bad_parameter("The parameter limit must be an integer") from None
    ids = [item["id"] for item in items]
    start = 0
    if args.get("after"):
        cursor = _uncursor(args["after"])
        start = ids.index(cursor) + 1 if cursor in ids else len(ids)
    chunk = items[start : start + limit]
    body: dict[str, Any] = {"data": [_view(item, fields) for item in chunk]}
    if chunk:
        body["paging"] = {"cursors": {"before": _cursor(chunk[0]["id"]), "after": _cursor(chunk[-1]["id"])}}
        if start + limit < len(items):
            query = {**args.to_dict(), "after": _cursor(chunk[-1]["id"])}
            body["paging"]["next"] = f"https://graph.facebook.com/{g.version}/{path}?" + urlencode(query)
    return jsonify(body)


def _cursor(object_id: str) -> str:
    return base64.urlsafe_b64encode(object_id.encode()).decode().rstrip("=")


def _uncursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise bad_parameter("The parameter after is not a valid cursor") from None


def _view(record: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    """Show a node as Graph returns it, limited to the requested fields."""
    post_local = record["post_id"].partition("_")[2]
    page_id = record["page_id"]
    available = {
        "id": record["id"],
        "message": record["message"] or None,
        "created_time": _iso(record["created_time"]),
        "updated_time": _iso(record["updated_time"]),
        "from": record["from"],
        "link": record.get("link"),
        "permalink_url": f"https://www.facebook.com/{page_id}/posts/{post_local}",
        "parent": (
            {"id": record["parent_id"]}
            if record["kind"] == "comment" and record["parent_id"] != record["post_id"]
            else None
        ),
    }
    return {k: v for k, v in available.items() if k in fields and v is not None}


# Control API


@control.get("/posts")
def control_posts():
    """Everything the console published (posts and the page's comments), with edits."""
    return jsonify([_control_view(o) for o in store().everything("api")])


@control.get("/comments")
def control_comments():
    """Every injected public comment."""
    return jsonify([_control_view(o) for o in store().everything("inject")])


@control.get("/deliveries")
def control_deliveries():
    """Webhook deliveries (subscription checks and events) and how the console answered."""
    return jsonify(store().deliveries.list())


def _control_view(record: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "id",
        "kind",
        "post_id",
        "parent_id",
        "message",
        "link",
        "from",
        "edits",
        "deleted",
        "deleted_at",
        "version",
    )
    return {**{key: record.get(key) for key in keys}, "created_time": _iso(record["created_time"])}
