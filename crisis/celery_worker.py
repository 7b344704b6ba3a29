"""The Celery app for the `celery` command itself (`celery -A crisis.celery_worker inspect ping`)."""

from crisis import create_app

celery_app = create_app().extensions["celery"]
