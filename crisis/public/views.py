"""What residents see. Drills never appear here."""

import sqlalchemy as sa
from flask import render_template

from crisis.extensions import db
from crisis.models import Incident, IncidentMode, IncidentStatus
from crisis.public import bp


@bp.get("/")
def index():
    query = (
        sa.select(Incident)
        .where(Incident.mode == IncidentMode.live, Incident.status != IncidentStatus.closed)
        .order_by(Incident.created_at.desc())
    )
    return render_template("public/index.html", incidents=list(db.session.scalars(query)))
