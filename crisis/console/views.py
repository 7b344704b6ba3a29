"""The console shell: incident list, approvals waiting, team administration."""

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from crisis.auth import accounts
from crisis.auth.permissions import requires
from crisis.console import bp
from crisis.console import channels as channel_status
from crisis.extensions import db
from crisis.incidents.service import incidents_for_console
from crisis.models import Role, User


@bp.get("/")
@requires("incident.view")
def index():
    return render_template("console/index.html", incidents=incidents_for_console())


@bp.get("/admin/users")
@requires("users.manage")
def users():
    team = db.session.scalars(db.select(User).order_by(User.email))
    return render_template("console/users.html", users=team, roles=list(Role))


@bp.post("/admin/users/<int:user_id>/role")
@requires("users.manage")
def change_role(user_id: int):
    user = db.session.get(User, user_id) or abort(404)
    try:
        role = Role(request.form.get("role", ""))
    except ValueError:
        abort(400)
    if user.id == current_user.id:
        flash(_("You cannot change your own role."), "error")
    elif role is not user.role:
        accounts.change_role(user, role)
        db.session.commit()
        flash(_("Role changed; that person's sessions were ended."), "info")
    return redirect(url_for("console.users"))



@bp.get("/channels")
@requires("channels.view")
def channels():
    """Each channel's connection, credential check, rate-limit budget and last outcomes.

    Checks run on load only when none ran recently for this configuration (they cost provider calls).
    """
    report = channel_status.channel_report(
        current_app.config, board=channel_status.board_for(current_app)
    )
    return render_template("console/channels.html", report=report)


@bp.post("/channels/check")
@requires("channels.view")
def check_channels():
    """Run every credential check now and record the results; then show the page."""
    report = channel_status.channel_report(
        current_app.config, board=channel_status.board_for(current_app), refresh=True, history=False
    )
    failed = [row.name for row in report.live + report.drill if row.check and not row.check.ok]
    if failed:
        flash(_("Credential check failed for: %(channels)s", channels=", ".join(sorted(set(failed)))),
              "error")
    else:
        flash(_("Credentials checked."), "info")
    return redirect(url_for("console.channels"))
