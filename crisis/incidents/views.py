from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user

from crisis.auth.permissions import requires
from crisis.extensions import db
from crisis.incidents import bp, service
from crisis.incidents.forms import IncidentForm
from crisis.models import Area, Incident


@bp.route("/new", methods=["GET", "POST"])
@requires("incident.create")
def create():
    form = IncidentForm()
    form.areas.choices = [(a.id, a.name) for a in db.session.scalars(db.select(Area).order_by(Area.name))]
    if form.validate_on_submit():
        try:
            incident = service.create_incident(
                title=form.title.data,
                mode=form.mode.data,
                severity=form.severity.data,
                language=form.language.data,
                area_ids=form.areas.data,
                actor_id=current_user.id,
            )
        except service.IncidentError as exc:
            flash(str(exc), "error")
        else:
            db.session.commit()
            return redirect(url_for("incidents.show", incident_id=incident.id))
    return render_template("incidents/new.html", form=form)


@bp.get("/<int:incident_id>")
@requires("incident.view")
def show(incident_id: int):
    incident = db.session.get(Incident, incident_id) or abort(404)
    return render_template("incidents/show.html", incident=incident)
