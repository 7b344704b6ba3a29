"""SMS subscriptions: residents sign up for alerts for their area, and stop, lawfully and easily.

- Web: `/subscribe` (double opt-in: a 6-digit code by SMS, then `/subscribe/confirm`), and
  `/subscribe/stop` (the same code step, so nobody can stop someone else's alerts).
- SMS: `AANMELDEN <kern>` / `JOIN <area>`, `AFMELDEN` and Twilio's opt-out words, `START`
  (crisis.subscriptions.keywords, called from the inbound SMS webhook).
- Privacy: export and erasure of everything held about one number (crisis.subscriptions.privacy),
  from the CLI, the API and the console; stale sign-ups and old stops are purged on a schedule.
- Console: counts per area and status, one subscriber by number, CSV, and the areas themselves.

Settings (all overridable as CRISIS_<NAME>); defaults below, read with `setting()`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app

from crisis.celery_app import schedule

DEFAULTS: dict[str, Any] = {
    # Which numbers the web form accepts: regions (ISO 3166) and mobile numbers only.
    "SUBSCRIBE_REGIONS": ["NL"],
    # Flask-Limiter limits per address on the form posts (sign-up/stop, and code confirmation).
    "SUBSCRIBE_RATE_LIMIT": "10 per hour;40 per day",
    "SUBSCRIBE_CONFIRM_RATE_LIMIT": "30 per hour",
    # Verification texts, counted in the database (VerificationCode rows).
    "VERIFICATION_PER_NUMBER_HOUR": 3,
    "VERIFICATION_PER_NUMBER_DAY": 5,
    "VERIFICATION_PER_ADDRESS_HOUR": 5,
    "VERIFICATION_PER_ADDRESS_DAY": 20,
    "VERIFICATION_DAILY_CAP": 500,  # all verification texts together in 24 hours
    "VERIFICATION_TTL_MINUTES": 15,
    "VERIFICATION_MAX_ATTEMPTS": 5,
    # Retention (stated in the privacy text; enforced by crisis.subscriptions.privacy.purge).
    "SUBSCRIBE_PENDING_HOURS": 24,  # an unconfirmed sign-up is erased after this
    "SUBSCRIBE_STOPPED_RETENTION_DAYS": 30,  # a stopped number is erased after this
    "SMS_RECIPIENT_RETENTION_DAYS": 180,  # numbers on sent messages are blanked after this
    "SUBSCRIBE_PURGE_MINUTES": 60,  # how often beat runs the purge
    # Bump when the privacy statement's meaning changes; consent records name the version.
    "SUBSCRIBE_TEXT_VERSION": "1",
    # The number residents text (AANMELDEN, STOP); None: TWILIO_FROM (or the sandbox's).
    "SUBSCRIBE_SMS_NUMBER": None,
}


def setting(name: str) -> Any:
    """A subscription setting: the app's configuration, or the default above."""
    value = current_app.config.get(name)
    return DEFAULTS[name] if value is None else value


bp = Blueprint("subscriptions", __name__)


@bp.record_once
def _schedule_purge(state) -> None:
    """Beat runs the retention purge; the schedule lives with the feature, not in celery_app."""
    minutes = float(state.app.config.get("SUBSCRIBE_PURGE_MINUTES")
                    or DEFAULTS["SUBSCRIBE_PURGE_MINUTES"])
    schedule(state.app, "subscriptions-purge", "crisis.subscriptions.tasks.purge", minutes * 60)


from crisis.subscriptions import tasks, views  # noqa: E402,F401
