"""Console pages: runbooks, the checklist, the exercise leader's controls and the report."""

from __future__ import annotations

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from crisis.auth.permissions import requires
from crisis.drills import bp, report, service
from crisis.extensions import db
from crisis.messages.service import WorkflowError
from crisis.models import ChecklistItem, Incident
from crisis.models.types import utcnow


def _incident(incident_id: int) -> Incident:
    return db.session.get(Incident, incident_id) or abort(404)


@bp.get("/runbooks")
@requires("incident.view")
def runbooks():
    return render_template("drills/runbooks.html", runbooks=service.runbook_library().values())


@bp.post("/runbooks/<runbook_id>/start")
@requires("incident.create")
def start(runbook_id: str):
    runbook = service.runbook_library().get(runbook_id) or abort(404)
    mode = request.form.get("mode", "")
    if mode not in ("live", "drill"):
        abort(400)
    incident = service.start_from_runbook(runbook, mode=mode, actor=current_user,
                                          title=request.form.get("title") or None)
    db.session.commit()
    return redirect(url_for("incidents.show", incident_id=incident.id))


@bp.get("/incidents/<int:incident_id>/checklist.json")
@requires("incident.view")
def checklist(incident_id: int):
    return jsonify(service.checklist_json(_incident(incident_id)))


@bp.post("/checklist/<int:item_id>")
@requires("incident.update")
def complete(item_id: int):
    item = db.session.get(ChecklistItem, item_id) or abort(404)
    service.complete_step(item, current_user, done=request.form.get("done", "1") == "1")
    db.session.commit()
    if request.accept_mimetypes.best == "application/json":
        return jsonify(service.checklist_json(_incident(item.incident_id)))
    return redirect(url_for("incidents.show", incident_id=item.incident_id))


@bp.get("/incidents/<int:incident_id>/templates.json")
@requires("incident.view")
def templates(incident_id: int):
    incident = _incident(incident_id)
    runbook = service.runbook_library().get(incident.runbook_id or "")
    if runbook is None:
        return jsonify(templates=[], follow_ups=[])
    return jsonify(
        templates=[{"id": t.id, "phase": t.phase, "kind": t.kind.value
                    if hasattr(t.kind, "value") else t.kind, "title": t.title or t.id,
                    "body": t.body, "en": t.en,
                    "variants": t.variants.model_dump(exclude_none=True)}
                   for t in runbook.templates],
        follow_ups=[{"id": f.id, "theme": f.theme, "body": f.body, "en": f.en}
                    for f in runbook.follow_ups],
    )


def _leader_action(incident_id: int, action) -> object:
    incident = _incident(incident_id)
    try:
        result = action(incident)
    except WorkflowError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("incidents.show", incident_id=incident_id))
    db.session.commit()
    if request.accept_mimetypes.best == "application/json":
        return jsonify(result if isinstance(result, dict) else service.drill_json(incident))
    return redirect(url_for("incidents.show", incident_id=incident_id))


@bp.post("/incidents/<int:incident_id>/drill/pause")
@requires("incident.update")
def pause(incident_id: int):
    paused = request.form.get("paused", "1") == "1"
    return _leader_action(incident_id, lambda i: service.pause_injects(i, current_user, paused))


@bp.post("/incidents/<int:incident_id>/drill/inject")
@requires("incident.update")
def inject(incident_id: int):
    form = request.form
    try:
        count, minutes = int(form.get("count", 1)), float(form.get("minutes", 0))
    except ValueError:
        abort(400)
    return _leader_action(incident_id, lambda i: service.add_inject(
        i, current_user, channel=form.get("channel", ""), text=form.get("text", ""),
        minutes_from_now=minutes, count=min(count, 500)))


@bp.post("/incidents/<int:incident_id>/drill/stop")
@requires("incident.update")
def stop(incident_id: int):
    def action(incident):
        result = service.stop_drill(incident, current_user,
                                    request.form.get("reason") or "real incident")
        flash(_("The drill has been stopped. Its sends and injects are halted."), "info")
        return result

    return _leader_action(incident_id, action)


@bp.get("/incidents/<int:incident_id>/report")
@requires("incident.view")
def report_page(incident_id: int):
    built = report.build(_incident(incident_id), now=utcnow())
    return render_template("drills/report.html", report=built, incident=built.incident,
                           pdf=False)


@bp.get("/incidents/<int:incident_id>/report.pdf")
@requires("incident.view")
def report_pdf(incident_id: int):
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    built = report.build(_incident(incident_id), now=utcnow())
    html = render_template("drills/report.html", report=built, incident=built.incident, pdf=True)
    # Static files are read from disk, never fetched over the network.
    pdf = HTML(string=html, base_url=current_app.static_folder.rstrip("/") + "/",
               url_fetcher=URLFetcher(allowed_protocols={"file", "data"})).write_pdf()
    name = f"report-{built.incident.slug}.pdf"
    return pdf, 200, {"Content-Type": "application/pdf",
                      "Content-Disposition": f'attachment; filename="{name}"'}

