from flask import Blueprint

bp = Blueprint("console", __name__, url_prefix="/console")

from crisis.console import views  # noqa: E402,F401
