"""HTTP plumbing shared by the adapters: default timeouts and redirection to the sandbox.

The SDKs build their URLs from hard-coded provider origins. A requests transport adapter mounted
on the SDK's session rewrites those URLs to the sandbox (`<sandbox>/<provider path>`) after the
SDK signed the request, so signatures still cover the provider's real URL.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from channels.base import DEFAULT_TIMEOUT


class ProviderAdapter(HTTPAdapter):
    """Apply a default timeout and, when `target` is set, send the request there instead."""

    def __init__(self, target: str | None = None, timeout: float = DEFAULT_TIMEOUT, **kwargs):
        """`target` is a base URL such as `http://127.0.0.1:5055/x`; None keeps the real host."""
        super().__init__(**kwargs)
        self.target = urlsplit(target) if target else None
        self.timeout = timeout

    def send(self, request, **kwargs):
        """Rewrite the URL onto the target (keeping path and query) and enforce the timeout."""
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        if self.target is not None:
            url = urlsplit(request.url)
            path = self.target.path.rstrip("/") + url.path
            request.url = urlunsplit(
                (self.target.scheme, self.target.netloc, path, url.query, url.fragment)
            )
        return super().send(request, **kwargs)


def provider_session(
    origins: list[str],
    sandbox_url: str | None,
    sandbox_path: str,
    timeout: float = DEFAULT_TIMEOUT,
    session: requests.Session | None = None,
) -> requests.Session:
    """Mount a ProviderAdapter for each provider origin on `session` (a new one if None).

    With `sandbox_url`, every origin is sent to `<sandbox_url><sandbox_path>`; without it the
    requests go to the provider itself, still with the timeout.
    """
    session = session or requests.Session()
    target = sandbox_url.rstrip("/") + sandbox_path if sandbox_url else None
    if target:
        # The sandbox is reached directly: no proxy (one chosen for the provider's URL would
        # carry the sandbox's traffic), .netrc or CA bundle from the environment, which requests
        # would otherwise look up on every request (7% of a bulk SMS sender).
        session.trust_env = False
    for origin in origins:
        session.mount(origin, ProviderAdapter(target, timeout=timeout))
    return session


def outcome_uncertain(exc: BaseException) -> bool:
    """Tell whether a failed request may have reached the provider.

    Only a refused or timed-out connect is sure not to have.
    """
    if isinstance(exc, requests.ConnectTimeout):
        return False
    if isinstance(exc, requests.Timeout):
        return True  # a read timeout: the provider may have acted on it
    if isinstance(exc, requests.ConnectionError):
        text = repr(exc)
        return not ("NewConnectionError" in text or "Connection refused" in text)
    return False
