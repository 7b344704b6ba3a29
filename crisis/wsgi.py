"""WSGI entry point for gunicorn: `gunicorn -w 1 --threads 32 crisis.wsgi:app`."""

from crisis import create_app

app = create_app()
