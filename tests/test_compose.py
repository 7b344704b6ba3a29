"""No Docker engine runs here: parse the compose file and check what it runs exists."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import click
import yaml

from crisis.cli import main

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _resolve(args: list[str]) -> click.Context:
    """Parse `crisis ARGS` down to the leaf command without running it."""
    ctx = main.make_context("crisis", list(args), resilient_parsing=False)
    command: click.Command = main
    while isinstance(command, click.Group):
        with warnings.catch_warnings():
            # Click 8 keeps a group's command name apart in protected_args (deprecated for 9,
            # where `args` will hold it); the pin is <9.
            warnings.simplefilter("ignore", DeprecationWarning)
            words = ctx.protected_args + ctx.args
        name, sub, rest = command.resolve_command(ctx, words)
        ctx = sub.make_context(name, rest, parent=ctx)
        command = sub
    return ctx


def test_services_of_the_production_topology():
    services = COMPOSE["services"]
    assert {"web", "worker", "worker-bulk", "beat", "redis", "postgres"} <= set(services)
    for name in ("web", "redis", "postgres"):
        assert "healthcheck" in services[name], name


def test_every_crisis_command_in_compose_exists():
    commands = [
        service["command"]
        for service in COMPOSE["services"].values()
        if service.get("command") and service["command"][0] == "crisis"
    ]
    assert len(commands) >= 4
    for command in commands:
        ctx = _resolve(command[1:])
        assert ctx.command is not None, command


def test_worker_queues_cover_publish_and_bulk():
    queues = set()
    for service in COMPOSE["services"].values():
        command = service.get("command") or []
        if command[:2] == ["crisis", "worker"]:
            queues |= set(command[command.index("--queues") + 1].split(","))
    assert {"publish", "bulk"} <= queues


def test_web_runs_gunicorn_with_one_process_and_threads():
    command = COMPOSE["services"]["web"]["command"]
    assert command[0] == "gunicorn" and command[command.index("-w") + 1] == "1"
    assert "--threads" in command
    assert shutil.which("gunicorn", path=str(ROOT / ".venv" / "bin")) or shutil.which("gunicorn")
    module, _, attr = command[-1].partition(":")
    assert attr == "app" and (ROOT / (module.replace(".", "/") + ".py")).exists()


def test_the_database_covers_every_connection_the_processes_keep():
    """The web keeps a connection per gunicorn thread (fewer: each burst opens and closes new
    backends), and PostgreSQL takes what every process may hold at its busiest."""
    from crisis.config import Defaults

    services = COMPOSE["services"]
    web = services["web"]["command"]
    threads = int(web[web.index("--threads") + 1])
    options = Defaults.SQLALCHEMY_ENGINE_OPTIONS
    assert options["pool_size"] >= threads
    per_process = options["pool_size"] + options["max_overflow"]
    busiest = per_process + 1  # + beat
    for service in services.values():
        command = service.get("command") or []
        if command[:2] == ["crisis", "worker"]:
            processes = int(command[command.index("--concurrency") + 1])
            threads = int(service["environment"].get("CRISIS_SMS_SEND_THREADS",
                                                     Defaults.SMS_SEND_THREADS))
            busiest += processes * (threads + 1)
    postgres = services["postgres"]["command"]
    max_connections = int(postgres[postgres.index("-c") + 1].removeprefix("max_connections="))
    assert busiest <= max_connections


def test_the_bulk_worker_keeps_its_environment_and_sends_on_64_threads():
    bulk = COMPOSE["services"]["worker-bulk"]
    environment = bulk["environment"]
    assert environment["CRISIS_DATABASE_URL"] == COMPOSE["services"]["worker"]["environment"][
        "CRISIS_DATABASE_URL"]
    processes = int(bulk["command"][bulk["command"].index("--concurrency") + 1])
    assert processes * int(environment["CRISIS_SMS_SEND_THREADS"]) == 64
