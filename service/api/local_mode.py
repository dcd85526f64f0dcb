"""Local mode (no API keys) closed to the browser: a web page the developer visits cannot use the service.

Local mode binds loopback only and asks for no key, so two browser tricks would otherwise reach it:

* **DNS rebinding**: a page on ``attacker.example`` re-resolves its name to 127.0.0.1 and reads the answers, since
  the browser deems them same-origin. Its requests still name ``attacker.example`` in ``Host``: every request's
  one Host header must name a loopback name (``127.0.0.1``, ``localhost``, ``::1``, with any port), else ``400``
  ``host-not-allowed``.
* **Cross-site POSTs**: a form or ``fetch(..., {mode: "no-cors"})`` may POST ``text/plain``, a form encoding or no
  body at all without asking the server first; a POST declared as ``application/json`` needs a CORS preflight,
  which this service never grants (it sends no CORS headers). So every POST, the bodiless reload and replay
  included, must be declared ``application/json``: else ``415``. The HTML pages' own forms (``opt`` holding
  :data:`FORM_WITH_CSRF_TOKEN`) are the exception: each carries Litestar's CSRF token, which a page on another
  site can neither read (the Host check above) nor guess, and its cookie is ``SameSite=Strict``.

With API keys configured neither applies: a cross-site page cannot send the key header without a preflight either,
and a deployment's Host names are its own.
"""

from __future__ import annotations

from litestar.types import Scope

from service.api.problems import Problem

__all__ = ["FORM_WITH_CSRF_TOKEN", "LOOPBACK_HOSTS", "check_local_request"]

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
FORM_WITH_CSRF_TOKEN = "form_with_csrf_token"
"""The key, in a route handler's ``opt``, of a form POST that Litestar's CSRF middleware checks."""


def _host_name(host: str) -> str:
    """``Host`` without its port: ``[::1]:8000`` -> ``::1``, ``localhost:8000`` -> ``localhost``; anything else
    after a bracketed address or a port that is not digits leaves it unmatched."""
    if host.startswith("["):
        end = host.find("]")
        rest = host[end + 1 :] if end > 0 else "x"
        return host[1:end] if rest == "" or (rest[:1] == ":" and rest[1:].isdigit()) else host
    name, colon, port = host.partition(":")
    return name if not colon or port.isdigit() else host


def _is_json(media: str) -> bool:
    return media == "application/json"  # exactly: the browser's Reporting API posts application/reports+json


def check_local_request(scope: Scope) -> None:
    """Refuse a request a browser could have been tricked into sending (see the module's docstring).

    Called by the authentication middleware for every request in local mode (one middleware layer, not two).
    """
    hosts: list[bytes] = []
    media = b""
    for name, value in scope["headers"]:
        if name == b"host":
            hosts.append(value)
        elif name == b"content-type":
            media = value
    if len(hosts) != 1 or _host_name(hosts[0].decode("latin-1").lower()) not in LOOPBACK_HOSTS:
        raise Problem(
            400,
            "host-not-allowed",
            "Host not allowed",
            "in local mode (no API keys) the service answers requests with one Host header naming a loopback name "
            "only: 127.0.0.1, localhost or [::1].",
        )
    if (
        scope.get("method") == "POST"
        and not _is_json(media.split(b";", 1)[0].strip().decode("latin-1").lower())
        and not scope["route_handler"].opt.get(FORM_WITH_CSRF_TOKEN)
    ):
        raise Problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "in local mode (no API keys) every POST must be sent with Content-Type: application/json, a bodiless "
            "one too, so that a web page cannot send it across sites.",
        )
