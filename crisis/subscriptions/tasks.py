"""Tasks of the subscriptions feature: one SMS (code or confirmation), and the retention purge."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from celery import shared_task
from flask import current_app

from channels.base import Outbound, PermanentChannelError, TransientChannelError
from channels.text import sms_info
from crisis.extensions import db
from crisis.models import Subscriber, SubscriberStatus

log = logging.getLogger(__name__)
STOPPED_CODE = "21610"  # the number sent STOP to our sender: Twilio refuses to send to it


@shared_task(name="crisis.subscriptions.tasks.send_text", bind=True, ignore_result=True,
             max_retries=6)
def send_text(self, to: str, text: str, kind: str) -> None:
    """Send `text` to `to`. Numbers never appear in the log lines, only `kind` and codes.

    Transient failures retry with backoff; an uncertain one (the request may have landed) is not
    repeated, since a second code or confirmation is worse than a missing one the person can ask
    for again. A number that sent STOP to Twilio is marked stopped here as in the broadcast.
    """
    from crisis.channel_runtime import live_channels
    from crisis.ratelimit import sms_limiter

    channel = live_channels().get("sms")
    if channel is None:
        log.warning("no SMS channel configured: a %s text was not sent", kind)
        return
    sms_limiter(current_app).acquire(max(1, sms_info(text).segments))
    try:
        channel.publish(Outbound(key=f"subscription-{self.request.id}", text=text, to=to))
    except TransientChannelError as exc:
        if exc.uncertain:
            log.warning("a %s text may or may not have been sent (%s); not repeated", kind, exc)
            return
        countdown = exc.retry_after or min(300, 2 ** (self.request.retries + 1))
        raise self.retry(countdown=countdown, exc=None) from None
    except PermanentChannelError as exc:
        log.warning("a %s text was refused: code %s", kind, exc.code)
        if exc.code == STOPPED_CODE:
            _mirror_carrier_stop(to)


def _mirror_carrier_stop(phone: str) -> None:
    from crisis.subscriptions import service

    subscriber = db.session.scalar(sa.select(Subscriber).where(Subscriber.phone == phone))
    if subscriber is not None and subscriber.status is SubscriberStatus.active:
        service.stop(subscriber, how="carrier")
        db.session.commit()


@shared_task(name="crisis.subscriptions.tasks.purge", ignore_result=True)
def purge() -> None:
    """Erase unconfirmed sign-ups and old stops; blank numbers on old recipient rows."""
    from crisis.subscriptions import privacy

    result = privacy.purge()
    if any(result.values()):
        log.info("subscriptions purge: %s", result)
