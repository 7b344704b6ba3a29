"""The console's inbox: reactions that could not be attached to an incident by themselves.

An SMS from a number that never got one of our messages, a comment on a post that is not ours,
a mention that answers nothing we sent. The team reads them here and attaches each to the
incident it belongs to; it is then classified, clustered and shown in that incident's feed.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from crisis.auth.permissions import can, requires
from crisis.extensions import db
from crisis.models import Incident, IncidentStatus, Reaction
from crisis.reactions import ingest, service

bp = Blueprint("reactions", __name__, url_prefix="/console/reactions")
PAGE_SIZE = 100


@bp.get("/inbox")
@requires("incident.view")
def inbox():
    before = request.args.get("before", type=int)
    query = service.reactions_query(None, {"before_id": before})
    reactions = list(db.session.scalars(query.limit(PAGE_SIZE + 1)))
    more = len(reactions) > PAGE_SIZE
    reactions = reactions[:PAGE_SIZE]
    incidents = list(db.session.scalars(
        sa.select(Incident).where(Incident.status != IncidentStatus.closed)
        .order_by(Incident.created_at.desc())))
    choices = {r.id: [i for i in incidents if ingest.may_attach_to(i, drill=r.drill)] for r in reactions}
    return render_template("reactions/inbox.html", reactions=reactions, choices=choices,
                           next_before=reactions[-1].id if more else None,
                           may_attach=can("incident.update"))


@bp.post("/<int:reaction_id>/attach")
@requires("incident.update")
def attach(reaction_id: int):
    reaction = db.session.get(Reaction, reaction_id) or abort(404)
    incident = db.session.get(Incident, request.form.get("incident_id", type=int) or 0)
    if incident is None:
        flash(_("Choose an incident."), "error")
        return redirect(url_for("reactions.inbox"))
    try:
        service.attach(reaction, incident, current_user)
    except service.ReactionError:
        db.session.rollback()
        flash(_("This reaction cannot be attached to that incident."), "error")
        return redirect(url_for("reactions.inbox"))
    db.session.commit()
    flash(_("Attached to %(title)s.", title=incident.title), "info")
    return redirect(url_for("reactions.inbox"))
