"""crisis: one approved message to X, Facebook, SMS and the public website at once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then CRISIS_* environment variables, then `config`."""
    config = dict(config or {})
    instance = config.get("INSTANCE_PATH") or os.environ.get("CRISIS_INSTANCE_PATH") or (
        ROOT / "instance"
    )
    app = Flask(
        __name__,
        instance_path=str(Path(instance).resolve()),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    from crisis import config as settings

    app.config.from_object(settings.Defaults)
    app.config.from_prefixed_env("CRISIS")
    app.config.update(config)
    settings.finalize(app.config, app.instance_path)
    # Runbooks (issue "Runbooks", part A): refuse to start on a broken runbook (RunbookError names
    # file, line and field); loaded once per process and directory, see load_library.
    from crisis.runbooks import load_library

    app.extensions["runbooks"] = load_library(app.config["RUNBOOK_DIR"])

    _init_extensions(app)
    _register_blueprints(app)
    from crisis import web

    web.init_app(app)
    return app


def _init_extensions(app: Flask) -> None:
    from crisis import database
    from crisis.celery_app import celery_init_app
    from crisis.extensions import babel, csrf, db, limiter, login_manager, migrate
    from crisis.i18n import select_locale, select_timezone

    db.init_app(app)
    database.configure(app)
    migrate.init_app(app, db, directory=str(Path(__file__).parent / "migrations"),
                     render_as_batch=True)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"
    csrf.init_app(app)
    limiter.init_app(app)
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    celery_init_app(app)
    import crisis.auth.accounts  # noqa: F401  (user and token loaders)
    from crisis import live

    live.init_app(app)  # a SocketIO of this app's own, with the /console handlers


def _register_blueprints(app: Flask) -> None:
    from crisis.api import bp as api_bp
    from crisis.auth import bp as auth_bp
    from crisis.console import bp as console_bp
    from crisis.drills import bp as drills_bp
    from crisis.incidents import bp as incidents_bp
    from crisis.messages import bp as messages_bp
    from crisis.public import bp as public_bp
    from crisis.reactions.form import bp as questions_bp
    from crisis.reactions.inbox import bp as reactions_bp
    from crisis.webhooks import bp as webhooks_bp

    for blueprint in (auth_bp, console_bp, incidents_bp, messages_bp, api_bp, public_bp,
                      webhooks_bp, questions_bp, reactions_bp, drills_bp):
        app.register_blueprint(blueprint)
    from crisis.subscriptions import bp as subscriptions_bp  # SMS sign-up, privacy, areas

    app.register_blueprint(subscriptions_bp)
