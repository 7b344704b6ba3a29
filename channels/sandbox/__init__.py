"""A local emulator of the X, Graph and Twilio APIs on their real wire formats.

One origin, a path per provider (`/x`, `/graph`, `/twilio`); the real SDKs are redirected here by
a requests transport adapter. `/_sandbox` is the control API (what was received, reset, faults,
injected public reactions); it needs a token unless the sandbox runs inside the demo.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from channels.sandbox import control, facebook, faults, twilio, view, x

PROVIDERS = {"x": x, "facebook": facebook, "twilio": twilio}

DEFAULTS: dict[str, Any] = {
    # None: the control API is open (demo). Anything else: `Authorization: Bearer <token>`.
    "SANDBOX_TOKEN": None,
    # Where the sandbox delivers inbound events (X webhooks, Facebook comments, inbound SMS).
    "CONSOLE_URL": "http://127.0.0.1:5000",
}


def create_sandbox_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the sandbox WSGI app; `config` overrides DEFAULTS and each provider's defaults."""
    app = Flask("crisis-sandbox")
    app.config.update(DEFAULTS)
    for module in PROVIDERS.values():
        app.config.update(module.DEFAULTS)
    app.config.update(config or {})
    app.extensions["sandbox_faults"] = faults.FaultBoard()
    for name, module in PROVIDERS.items():
        app.extensions[f"sandbox_{name}"] = module.Store(app.config)
        app.register_blueprint(module.api)
        app.register_blueprint(module.control)
    app.register_blueprint(control.bp)
    app.register_blueprint(view.bp)
    return app
