"""The console shell: incident list, approvals waiting, team administration."""

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from crisis.auth import accounts
from crisis.auth.permissions import requires
from crisis.console import bp
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

