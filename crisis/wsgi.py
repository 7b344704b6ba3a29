"""WSGI entry point for gunicorn: `gunicorn -w 1 --threads 32 crisis.wsgi:app`."""

import gc

from crisis import create_app

app = create_app()
# What startup built (modules, models, translations: ~200,000 objects) lives as long as the
# process. Frozen, a full collection no longer walks it: without this, each one holds every
# thread of the web process for ~100 ms (webhooks and live events alike).
gc.freeze()
