"""All models, imported here so Alembic and the app see the whole schema."""

from crisis.models.area import Area
from crisis.models.audit import AuditEvent, AuditHead
from crisis.models.heartbeat import Heartbeat
from crisis.models.incident import Incident, IncidentMode, IncidentStatus, Severity
from crisis.models.user import ApiToken, Role, User

__all__ = [
    "ApiToken",
    "Area",
    "AuditEvent",
    "AuditHead",
    "Heartbeat",
    "Incident",
    "IncidentMode",
    "IncidentStatus",
    "Role",
    "Severity",
    "User",
]
