"""The public side: pages, status.json, feeds, CAP and the embeddable banner. Drills never appear here."""

from flask import Blueprint, request

from crisis.extensions import limiter

bp = Blueprint("public", __name__)

# Residents share addresses (mobile carriers' NAT) and must never be turned away; the pages are
# cached and cheap. A request filter skips the limiter's per-request bookkeeping altogether.
limiter.exempt(bp)


@limiter.request_filter
def _is_public() -> bool:
    return request.blueprint == "public"


@bp.record_once
def _install_fast_path(state) -> None:
    from crisis.public import fastpath

    if state.app.config.get("PUBLIC_FAST_PATH", True):
        fastpath.install(state.app)


from crisis.public import cap, feeds, views  # noqa: E402,F401
