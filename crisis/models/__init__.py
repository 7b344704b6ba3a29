"""All models, imported here so Alembic and the app see the whole schema."""

from crisis.models.area import Area
from crisis.models.audit import AuditEvent, AuditHead
from crisis.models.drill import ChecklistItem, DrillInject, InjectState
from crisis.models.heartbeat import Heartbeat
from crisis.models.incident import Incident, IncidentMode, IncidentStatus, Severity
from crisis.models.message import (
    CHANNELS,
    Delivery,
    DeliveryEvent,
    DeliveryState,
    Message,
    MessageKind,
    MessageState,
)
from crisis.models.poll_state import PollState
from crisis.models.public_post import PublicPost
from crisis.models.reaction import Cluster, ClustererState, Handling, Reaction, ReactionChannel
from crisis.models.subscriber import RecipientState, SmsRecipient, Subscriber, SubscriberStatus
from crisis.models.subscription import VerificationCode
from crisis.models.user import ApiToken, Role, User

__all__ = [
    "ChecklistItem",
    "Cluster",
    "ClustererState",
    "DrillInject",
    "Handling",
    "InjectState",
    "Reaction",
    "ReactionChannel",
    "VerificationCode",
    "CHANNELS",
    "Delivery",
    "DeliveryEvent",
    "DeliveryState",
    "Message",
    "MessageKind",
    "MessageState",
    "PollState",
    "PublicPost",
    "RecipientState",
    "SmsRecipient",
    "Subscriber",
    "SubscriberStatus",
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
