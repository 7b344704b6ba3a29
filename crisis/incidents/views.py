import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from crisis.auth.permissions import can, requires
from crisis.extensions import db
from crisis.incidents import bp, service
from crisis.incidents.forms import IncidentForm
from crisis.messages import texts
from crisis.models import Area, Incident


@bp.route("/new", methods=["GET", "POST"])
@requires("incident.create")
def create():
    form = IncidentForm()
    areas = db.session.scalars(db.select(Area).order_by(Area.name))
    form.areas.choices = [SelectChoice(area.id, area.name) for area in areas]
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
    from crisis.api.incidents import messages_payload  # the API module imports this package

    incident = db.session.get(Incident, incident_id) or abort(404)
    areas = list(db.session.scalars(sa.select(Area).order_by(Area.name)))
    other_language = "en" if incident.language == "nl" else "nl"
    # Everything the incident page's script starts from; it reloads the messages on every
    # (re)connect, so this is only the first picture, never a second source of truth.
    page = {
        "incident": {
            "id": incident.id,
            "title": incident.title,
            "language": incident.language,
            "other_language": other_language,
            "is_drill": incident.is_drill,
            "area_ids": [a.id for a in incident.areas],
            "closed": incident.status.value == "closed",
        },
        "markers": {lang: texts.marker(incident, lang) for lang in (incident.language, other_language)},
        # The update's public link goes into every text; the preview counts it the same way.
        "update_link": texts.updates_url(incident),
        "me": {
            "id": current_user.id,
            "can_draft": can("message.draft"),
            "can_approve": can("message.approve"),
        },
        "urls": {
            "approvals": url_for("messages.approvals"),
            "api": url_for("api.me").removesuffix("/me"),
        },
        **messages_payload(incident),
    }
    from crisis.drills.service import checklist_json

    return render_template("incidents/show.html", incident=incident, areas=areas, page=page,
                           other_language=other_language,
                           checklist=checklist_json(incident)["items"])
