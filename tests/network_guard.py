"""A process-wide guard on outgoing network traffic, for tests that must reach only known hosts.

`NetworkGuard(allow=[("127.0.0.1", port)])` patches the socket module for every thread of the
process: `socket.socket.connect` and `connect_ex` (every TCP/UDP/Unix connection, whoever opens
it: requests, urllib3, the SDKs, a database driver), `socket.create_connection`, and the name
look-ups `getaddrinfo`, `gethostbyname` and `gethostbyname_ex`. Every attempt is recorded; one to
a destination outside the allow-list raises `NetworkGuardViolation` before any packet leaves.

The violation is an AssertionError, not an OSError: HTTP libraries turn an OSError into their own
"connection failed" errors and the SDKs into retries or transient channel errors, which would
hide it. Where a library swallows every exception anyway, `violations` still has the record.
A C extension that opens its own sockets (libpq, hiredis) is not seen; the HTTP stacks the
channels use (requests/urllib3 under tweepy, facebook-sdk and twilio) all are.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from typing import Any

# What the guard patches: (owner, attribute).
_PATCHED = (
    (socket.socket, "connect"),
    (socket.socket, "connect_ex"),
    (socket, "create_connection"),
    (socket, "getaddrinfo"),
    (socket, "gethostbyname"),
    (socket, "gethostbyname_ex"),
)


class NetworkGuardViolation(AssertionError):
    """A connection or name look-up to a destination the test did not allow."""


@dataclass(frozen=True)
class Attempt:
    """One connection or look-up: what was called, and with which host and port."""

    call: str  # connect, connect_ex, create_connection, getaddrinfo, gethostbyname, ...
    host: str
    port: int | None
    allowed: bool
    thread: str


class NetworkGuard:
    """Context manager: allow only `allow` ((host, port) pairs; port None: any port).

    Hosts compare as given, case-insensitively: allow `127.0.0.1` for a sandbox on loopback, and
    a database's or Redis's host and port when the test needs them. Unix sockets are refused
    unless their path is in `allow` (as `(path, None)`).
    """

    def __init__(self, allow: list[tuple[str, int | None]] | None = None) -> None:
        self.allow = [(str(host).lower(), port) for host, port in (allow or [])]
        self.attempts: list[Attempt] = []
        self._lock = threading.Lock()
        self._saved: list[tuple[Any, str, Any]] = []

    # What was recorded

    @property
    def violations(self) -> list[Attempt]:
        """Every attempt that was refused."""
        with self._lock:
            return [attempt for attempt in self.attempts if not attempt.allowed]

    @property
    def destinations(self) -> set[tuple[str, int | None]]:
        """Every (host, port) something tried to reach or resolve."""
        with self._lock:
            return {(attempt.host, attempt.port) for attempt in self.attempts}

    def hosts(self) -> set[str]:
        """Every host something tried to reach or resolve."""
        return {host for host, _port in self.destinations}

    # The guard

    def allowed(self, host: str, port: int | None) -> bool:
        """Whether (host, port) is on the allow-list; a look-up without a port needs the host only."""
        host = host.lower()
        return any(
            host == allowed_host and (allowed_port is None or port is None or port == allowed_port)
            for allowed_host, allowed_port in self.allow
        )

    def _check(self, call: str, host: Any, port: Any) -> None:
        host_text = host.decode() if isinstance(host, bytes) else str(host)
        port_number = _port(port)
        ok = self.allowed(host_text, port_number)
        with self._lock:
            self.attempts.append(Attempt(call, host_text, port_number, ok,
                                         threading.current_thread().name))
        if not ok:
            where = f"{host_text}:{port_number}" if port_number is not None else host_text
            raise NetworkGuardViolation(f"network guard: {call} to {where} is not allowed "
                                        f"(allowed: {self.allow})")

    def __enter__(self) -> NetworkGuard:
        if self._saved:
            raise RuntimeError("a NetworkGuard cannot be entered twice")
        originals = {name: getattr(owner, name) for owner, name in _PATCHED}
        guard = self

        def connect(sock, address):
            guard._check("connect", *_split(sock, address))
            return originals["connect"](sock, address)

        def connect_ex(sock, address):
            guard._check("connect_ex", *_split(sock, address))
            return originals["connect_ex"](sock, address)

        def create_connection(address, *args, **kwargs):
            guard._check("create_connection", address[0], address[1])
            return originals["create_connection"](address, *args, **kwargs)

        def getaddrinfo(host, port, *args, **kwargs):
            guard._check("getaddrinfo", host, port)
            return originals["getaddrinfo"](host, port, *args, **kwargs)

        def gethostbyname(host):
            guard._check("gethostbyname", host, None)
            return originals["gethostbyname"](host)

        def gethostbyname_ex(host):
            guard._check("gethostbyname_ex", host, None)
            return originals["gethostbyname_ex"](host)

        replacements = {
            "connect": connect,
            "connect_ex": connect_ex,
            "create_connection": create_connection,
            "getaddrinfo": getaddrinfo,
            "gethostbyname": gethostbyname,
            "gethostbyname_ex": gethostbyname_ex,
        }
        for owner, name in _PATCHED:
            self._saved.append((owner, name, owner.__dict__.get(name, _MISSING)))
            setattr(owner, name, replacements[name])
        return self

    def __exit__(self, *exc: Any) -> None:
        for owner, name, original in reversed(self._saved):
            if original is _MISSING:
                delattr(owner, name)  # it was inherited (from _socket.socket): inherit it again
            else:
                setattr(owner, name, original)
        self._saved = []


_MISSING = object()


def _port(port: Any) -> int | None:
    if port is None:
        return None
    if isinstance(port, bytes):
        port = port.decode()
    try:
        return int(port)
    except (TypeError, ValueError):
        try:
            return socket.getservbyname(str(port))  # "https" -> 443 (a local file, no network)
        except OSError:
            return None


def _split(sock: socket.socket, address: Any) -> tuple[str, int | None]:
    """(host, port) of a connect() address; a Unix socket's path with no port."""
    if getattr(socket, "AF_UNIX", None) is not None and sock.family == socket.AF_UNIX:
        return (address.decode() if isinstance(address, bytes) else str(address)), None
    return str(address[0]), int(address[1])
