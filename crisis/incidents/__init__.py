from flask import Blueprint

bp = Blueprint("incidents", __name__, url_prefix="/console/incidents")

from crisis.incidents import views  # noqa: E402,F401
