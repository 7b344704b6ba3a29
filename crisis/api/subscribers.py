"""Subscribers over the API (admin, with the second factor): counts, export, erasure.

The number is part of the URL (`/api/v1/subscribers/+31612345678/export`); national notation
(`0612345678`) is read in the first of SUBSCRIBE_REGIONS.
"""

from __future__ import annotations

from flask import jsonify
from flask_login import current_user

from crisis import audit
from crisis.api import bp
from crisis.auth.permissions import requires
from crisis.extensions import db
from crisis.subscriptions import phones, privacy, service, setting


def _phone(raw: str) -> str | None:
    regions = setting("SUBSCRIBE_REGIONS")
    regions = [regions] if isinstance(regions, str) else list(regions)
    try:
        return phones.normalise_any(raw, regions)
    except phones.InvalidPhone:
        return None


@bp.get("/subscribers/counts")
@requires("subscribers.manage")
def subscriber_counts():
    from crisis.subscriptions.views import area_status_counts

    areas, totals = area_status_counts()
    return jsonify(areas=areas, totals=dict(totals))


@bp.get("/subscribers/<phone>/export")
@requires("subscribers.manage")
def export_subscriber(phone: str):
    """Everything held about the number (AVG art. 15); audited with ids only."""
    e164 = _phone(phone)
    if e164 is None:
        return jsonify(error="not a phone number"), 400
    data = privacy.export(e164)
    subscriber = service.find(e164)
    audit.record("subscriber.exported", actor_id=current_user.id, target=subscriber, via="api")
    db.session.commit()
    return jsonify(data)


@bp.delete("/subscribers/<phone>")
@requires("subscribers.manage")
def erase_subscriber(phone: str):
    """Erase everything held about the number (AVG art. 17); idempotent, answers with counts."""
    e164 = _phone(phone)
    if e164 is None:
        return jsonify(error="not a phone number"), 400
    result = privacy.erase(e164, actor_id=current_user.id, via="api")
    status = 200 if result["sandbox"] is None or result["sandbox"].get("ok") else 502
    return jsonify(erased=result), status
