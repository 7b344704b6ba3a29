"""Console pages for messages: the approval queue (the composer lives on the incident page)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, has_request_context, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from crisis.auth.permissions import can, requires
from crisis.extensions import db
from crisis.messages import bp, service, texts
from crisis.models import Message, MessageState


@bp.app_context_processor
def _approvals_waiting():
    """The top bar's count of messages waiting for a second person (approvers and admins only)."""
    if not has_request_context() or not current_user.is_authenticated:
        return {}
    if not can("message.approve", current_user.role):
        return {}
    try:
        count = db.session.scalar(sa.select(sa.func.count(Message.id))
                                  .where(Message.state == MessageState.pending_approval))
    except sa.exc.SQLAlchemyError:
        return {}  # an error page must still render when the database is the problem
    return {"approvals_waiting": count}


@bp.get("/approvals")
@requires("message.approve")
def approvals():
    waiting = list(db.session.scalars(
        sa.select(Message).where(Message.state == MessageState.pending_approval)
        .order_by(Message.submitted_at)))
    return render_template("messages/approvals.html", waiting=waiting, rendered=texts.rendered)


@bp.post("/messages/<int:message_id>/approve")
@requires("message.approve")
def approve(message_id: int):
    message = db.session.get(Message, message_id) or abort(404)
    try:
        service.approve(message, current_user, request.form.get("approval_hash", ""),
                        confirmation=None if message.incident.is_drill
                        else request.form.get("confirmation", ""))
    except service.WorkflowError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("messages.approvals"))
    db.session.commit()
    flash(_("Approved: the message is going out."), "info")
    return redirect(url_for("incidents.show", incident_id=message.incident_id))


@bp.post("/messages/<int:message_id>/reject")
@requires("message.approve")
def reject(message_id: int):
    message = db.session.get(Message, message_id) or abort(404)
    try:
        service.reject(message, current_user, request.form.get("reason", ""))
    except service.WorkflowError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("messages.approvals"))
    db.session.commit()
    flash(_("Rejected; the author has been told why."), "info")
    return redirect(url_for("messages.approvals"))
