"""The `crisis` command. Flask-Migrate adds `crisis db ...`."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import click
import sqlalchemy as sa
from flask.cli import FlaskGroup, with_appcontext

from crisis import create_app


@click.group(cls=FlaskGroup, create_app=create_app, add_default_commands=True)
def main() -> None:
    """Crisis communication console."""


@main.command()
@click.option("--port", default=5000, show_default=True, help="Port of the console.")
@click.option("--sandbox-port", default=5055, show_default=True, help="Port of the channel sandbox.")
@click.option("--instance", type=click.Path(file_okay=False), help="Folder for the database and keys.")
@click.option("--host", default="127.0.0.1", show_default=True)
def demo(port: int, sandbox_port: int, instance: str | None, host: str) -> None:
    """Run everything in one process: console, worker, beat and sandbox, on SQLite."""
    from crisis import database, seed
    from crisis.embedded import Embedded

    if instance:
        os.environ["CRISIS_INSTANCE_PATH"] = os.path.abspath(instance)
    public = os.environ.get("CRISIS_PUBLIC_URL", f"http://127.0.0.1:{port}")
    app = create_app(
        {
            "PUBLIC_URL": public,
            "SANDBOX_URL": os.environ.get("CRISIS_SANDBOX_URL", f"http://127.0.0.1:{sandbox_port}"),
        }
    )
    if app.config.get("REDIS_URL"):
        raise click.UsageError("crisis demo is the embedded mode: unset CRISIS_REDIS_URL")
    database.upgrade(app)
    with app.app_context():
        team = seed.seed_demo(app.instance_path)
    Embedded(app).start(sandbox_port=sandbox_port)
    click.echo(f"\ncrisis console: {public}/console/   (sandbox: http://127.0.0.1:{sandbox_port})")
    click.echo("Demo accounts (also in the instance folder, demo-accounts.txt):")
    for email, password in team.items():
        click.echo(f"  {email:28} {password}")
    # FlaskGroup marks the process as "run from the CLI", which makes app.run() a no-op.
    os.environ.pop("FLASK_RUN_FROM_CLI", None)
    app.extensions["socketio"].run(
        app, host=host, port=port, allow_unsafe_werkzeug=True, use_reloader=False
    )


@main.command()
@click.option("--port", default=5055, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--console-url", default=None, help="Where inbound events go (default: CRISIS_PUBLIC_URL).")
def sandbox(port: int, host: str, console_url: str | None) -> None:
    """Serve the channel sandbox (X, Graph and Twilio emulators) on its own."""
    from channels.sandbox import create_sandbox_app
    from channels.sandbox.serve import SandboxServer

    config = {
        **_sandbox_env(),
        "CONSOLE_URL": console_url or os.environ.get("CRISIS_PUBLIC_URL", "http://127.0.0.1:5000"),
        "SANDBOX_TOKEN": os.environ.get("CRISIS_SANDBOX_TOKEN"),
    }
    if not config["SANDBOX_TOKEN"]:
        click.echo("warning: no CRISIS_SANDBOX_TOKEN set, the control API is open", err=True)
    SandboxServer(lambda: create_sandbox_app(config), f"{host}:{port}").run()


def _sandbox_env() -> dict:
    """Sandbox settings from SANDBOX_<SETTING> variables (JSON), e.g. SANDBOX_TWILIO_SANDBOX_RATE=50."""
    import json

    from channels.sandbox import DEFAULTS, PROVIDERS

    known = set(DEFAULTS) | {key for module in PROVIDERS.values() for key in module.DEFAULTS}
    config = {}
    for name, value in os.environ.items():
        key = name.removeprefix("SANDBOX_")
        if name.startswith("SANDBOX_") and key in known:
            try:
                config[key] = json.loads(value)
            except json.JSONDecodeError:
                config[key] = value
    return config


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--queues", default="publish,bulk,default", show_default=True)
@click.option("--concurrency", default=4, show_default=True)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@with_appcontext
def worker(queues: str, concurrency: int, celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker (production: needs CRISIS_REDIS_URL)."""
    celery = _production_celery()
    # Startup's objects live as long as the worker: frozen before the pool forks, full
    # collections in the children skip them (see crisis/wsgi.py).
    gc.freeze()
    celery.worker_main(
        ["worker", "-Q", queues, "-c", str(concurrency), "--loglevel", "INFO", *celery_args]
    )


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@with_appcontext
def beat(celery_args: tuple[str, ...]) -> None:
    """Run Celery beat (production: needs CRISIS_REDIS_URL)."""
    from flask import current_app

    schedule = os.path.join(current_app.instance_path, "beat-schedule")
    _production_celery().start(["beat", "-s", schedule, "--loglevel", "INFO", *celery_args])


def _production_celery():
    from flask import current_app

    if not current_app.config.get("REDIS_URL"):
        raise click.UsageError("set CRISIS_REDIS_URL: without it the broker is in-memory (demo only)")
    return current_app.extensions["celery"]


@main.group()
def users() -> None:
    """Manage the team."""


@users.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(["viewer", "editor", "approver", "admin"]), required=True)
@click.option("--name", default="")
@with_appcontext
def users_create(email: str, role: str, name: str) -> None:
    """Create a user; the password is read from stdin or prompted for."""
    from crisis.auth import accounts
    from crisis.extensions import db
    from crisis.models import Role

    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\n")
    try:
        user = accounts.create_user(email, password, Role(role), name=name)
        db.session.commit()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    except sa.exc.IntegrityError:
        raise click.UsageError(f"a user with e-mail {email} exists already") from None
    click.echo(f"created user {user.id} ({role})")


@main.group()
def tokens() -> None:
    """API bearer tokens."""


@tokens.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(["viewer", "editor", "approver", "admin"]))
@click.option("--days", type=int, default=None, help="Lifetime in days (default 90).")
@click.option("--name", default="")
@with_appcontext
def tokens_create(email: str, role: str | None, days: int | None, name: str) -> None:
    """Create a token for a user and print it once."""
    from crisis.auth import accounts
    from crisis.extensions import db
    from crisis.models import Role, User

    user = db.session.scalar(sa.select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise click.UsageError(f"no user with e-mail {email}")
    try:
        token, raw = accounts.create_token(user, Role(role) if role else None, days, name)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    db.session.commit()
    click.echo(f"token {token.id} ({token.role.value}, expires {token.expires_at:%Y-%m-%d}):")
    click.echo(raw)


@tokens.command("revoke")
@click.argument("token_id", type=int)
@with_appcontext
def tokens_revoke(token_id: int) -> None:
    """Revoke a token by its id."""
    from crisis.auth import accounts
    from crisis.extensions import db
    from crisis.models import ApiToken

    token = db.session.get(ApiToken, token_id)
    if token is None:
        raise click.UsageError(f"no token {token_id}")
    accounts.revoke_token(token)
    db.session.commit()
    click.echo(f"revoked token {token_id}")


# --- runbooks (issue "Runbooks", part A) ---------------------------------------------------------


@main.group()
def runbooks() -> None:
    """The runbook library: checklists, message templates and drill injects."""


@runbooks.command("validate", with_appcontext=False)  # must work when the app cannot start
@click.argument("path", required=False, type=click.Path(path_type=Path))
def runbooks_validate(path: Path | None) -> None:
    """Check a runbook file or folder (default: the configured library); exit 1 on errors.

    Works without building the app, so it also checks a library the app refuses to start with.
    """
    from crisis import config as settings
    from crisis.runbooks import validate_path

    target = path or Path(os.environ.get("CRISIS_RUNBOOK_DIR") or settings.Defaults.RUNBOOK_DIR)
    errors, warnings = validate_path(target)
    for issue in sorted(errors + warnings, key=lambda i: (str(i.path), i.line or 0, i.level)):
        click.echo(issue.format(with_level=True))
    files = 1 if target.is_file() else len(_runbook_files(target))
    verdict = "FAILED" if errors else "ok"
    click.echo(f"{verdict}: {files} runbook file{'s' if files != 1 else ''} in {target}, "
               f"{len(errors)} error{'s' if len(errors) != 1 else ''}, "
               f"{len(warnings)} warning{'s' if len(warnings) != 1 else ''}")
    if errors:
        sys.exit(1)


def _runbook_files(target: Path) -> list[Path]:
    from crisis.runbooks.loader import runbook_files

    return runbook_files(target) if target.is_dir() else []


# --- end runbooks ----------------------------------------------------------------------------------


@main.group()
def audit() -> None:
    """The audit trail."""


@audit.command("verify")
@with_appcontext
def audit_verify() -> None:
    """Check the whole chain; exit 1 and list every break when it was tampered with."""
    from crisis import audit as audit_trail

    result = audit_trail.verify()
    for problem in result.problems:
        click.echo(f"BROKEN: {problem}")
    if not result.ok:
        sys.exit(1)
    click.echo(f"ok: {result.checked} entries, chain intact")


# --- subscribers (issue "Residents", part B) -------------------------------------------------------


@main.group()
def subscribers() -> None:
    """SMS subscribers: export or erase what is held about one number (AVG art. 15, 17)."""


def _subscriber_phone(raw: str) -> str:
    from crisis.subscriptions import phones, setting

    regions = setting("SUBSCRIBE_REGIONS")
    try:
        return phones.normalise_any(raw, [regions] if isinstance(regions, str) else list(regions))
    except phones.InvalidPhone:
        raise click.UsageError(f"not a phone number: {raw!r}") from None


@subscribers.command("export")
@click.argument("phone")
@with_appcontext
def subscribers_export(phone: str) -> None:
    """Print everything held about PHONE as JSON."""
    import json

    from crisis import audit as audit_trail
    from crisis.extensions import db
    from crisis.subscriptions import privacy, service

    e164 = _subscriber_phone(phone)
    data = privacy.export(e164)
    audit_trail.record("subscriber.exported", target=service.find(e164), via="cli")
    db.session.commit()
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@subscribers.command("erase")
@click.argument("phone")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def subscribers_erase(phone: str, yes: bool) -> None:
    """Erase everything held about PHONE (subscription, codes, numbers on messages, reactions)."""
    from crisis.subscriptions import privacy

    e164 = _subscriber_phone(phone)
    if not yes:
        click.confirm(f"Erase everything held about {e164}? This cannot be undone", abort=True)
    result = privacy.erase(e164, via="cli")
    sandbox = result.pop("sandbox")
    click.echo("erased: " + ", ".join(f"{k} {v}" for k, v in result.items()))
    if sandbox is not None:
        if not sandbox.get("ok"):
            click.echo(f"the sandbox could not be reached ({sandbox.get('error')}): run again",
                       err=True)
            sys.exit(1)
        click.echo(f"sandbox: {sandbox.get('erased', 0)} messages erased")


# --- end subscribers -------------------------------------------------------------------------------
