"""A static copy of the public pages that any web server can serve when the app is down.

`write(app)` renders the index, every live incident and update, status.json, the feeds and the CAP
documents through the app itself (so the copy is byte for byte what the app serves), into a new
directory beside PUBLIC_SNAPSHOT_DIR, then points PUBLIC_SNAPSHOT_DIR (a symlink) at it with one
atomic rename. A web server never sees a half-written snapshot. Drills are never in it.

Layout: index.html, status.json, feed.atom, cap.atom, cap/<id>.xml,
incidents/<slug>/index.html, incidents/<slug>/updates/<id>/index.html and the static files the
pages use, under static/ (plus embed.js). Serve the folder as the site's root.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path

from flask import Flask

from crisis.public import data
from crisis.public.cache import public_cache

STATIC_FILES = ("css/public.css", "js/public.js")
MARKER_FILE = ".version"


def snapshot_dir(app: Flask) -> Path:
    configured = app.config.get("PUBLIC_SNAPSHOT_DIR")
    return Path(configured) if configured else Path(app.instance_path) / "public-snapshot"


@contextmanager
def _locked(target: Path):
    """One writer at a time per snapshot (workers may run two snapshot tasks at once)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def current_version(target: Path) -> str | None:
    try:
        return (target / MARKER_FILE).read_text().strip()
    except OSError:
        return None


def write(app: Flask, *, force: bool = False) -> Path | None:
    """Write the snapshot if the public content changed since the last one; return its folder."""
    target = snapshot_dir(app)
    with app.app_context(), _locked(target):
        # The database as it is now, not the marker of up to PUBLIC_CHECK_SECONDS ago; pages
        # cached under that same marker are still right, so they are kept (in the embedded
        # process they are the web's).
        marker = public_cache().marker(fresh=True)
        version = data.version_of(marker)
        if not force and current_version(target) == version:
            return None
        build = Path(target.parent / f".{target.name}-{secrets.token_hex(6)}")
        build.mkdir()
        try:
            _render_into(app, build)
            (build / MARKER_FILE).write_text(version)
            _swap(build, target)
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)
            raise
        return target


def _paths() -> list[str]:
    paths = ["/", "/status.json", "/feed.atom", "/cap.atom"]
    for incident in data.load_incidents(include_closed=False, require_visible=False):
        paths.append(f"/incidents/{incident.slug}")
        for post in incident.posts:
            paths.append(f"/incidents/{incident.slug}/updates/{post.id}")
            if not post.withdrawn:
                paths.append(f"/cap/{post.id}.xml")
    return paths


def _file_for(path: str) -> str:
    if path == "/":
        return "index.html"
    if path.startswith("/incidents/"):
        return path.lstrip("/") + "/index.html"
    return path.lstrip("/")


def _render_into(app: Flask, build: Path) -> None:
    client = app.test_client()
    for path in _paths():
        response = client.get(path)
        if response.status_code == 404:
            continue  # withdrawn or gone since the list was made: the next snapshot follows
        if response.status_code not in (200, 410):
            raise RuntimeError(f"snapshot: {path} answered {response.status_code}")
        out = build / _file_for(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(response.get_data())
    static = Path(app.static_folder)
    for name in STATIC_FILES:
        out = build / "static" / name
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(static / name, out)
    shutil.copyfile(static / "embed.js", build / "embed.js")


def _swap(build: Path, target: Path) -> None:
    """Point `target` at `build` with one rename; keep the previous copy for readers in flight."""
    previous = target.resolve() if target.is_symlink() else None
    if target.exists() and not target.is_symlink():
        # A real directory from elsewhere (e.g. copied by hand): move it aside once.
        target.rename(target.parent / f".{target.name}-{secrets.token_hex(6)}")
    link = target.parent / f".{target.name}.link-{secrets.token_hex(6)}"
    os.symlink(build.name, link)
    os.replace(link, target)
    for old in target.parent.glob(f".{target.name}-*"):
        if old.is_dir() and old.resolve() not in (build.resolve(), previous):
            shutil.rmtree(old, ignore_errors=True)
