from flask import Blueprint

bp = Blueprint("messages", __name__, url_prefix="/console")

from crisis.messages import views  # noqa: E402,F401
