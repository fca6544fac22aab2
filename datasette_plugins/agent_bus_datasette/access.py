"""Who may write from the web UI, what a token lets it see, and the checks every write
form passes first.

``can_write`` is the one hook point for writing. An anonymous visitor may write when the
UI serves loopback only and the request comes from this machine: the person at it (so a
plain ``datasette -h 0.0.0.0 bus.sqlite`` offers no writes to the network). An actor that
carries an ``agent_bus`` scope (token actors from ``auth``) decides for itself with
``{"agent_bus": {"write": true|false}}`` (or ``{"read_only": …}``, the token scope's own
spelling). Pages hide write controls when it says no, and every write endpoint answers
403 (``FORBIDDEN``). ``scope_of`` gives the request's `Scope` (agent names and topics a
token covers; unrestricted without a token).
"""

from __future__ import annotations

import getpass
import hmac
import ipaddress
from typing import Any
from urllib.parse import urlsplit

from agent_bus.errors import Forbidden
from agent_bus.service.access import UNRESTRICTED, Scope

PLUGIN = "agent-bus"
NAME_COOKIE = "ab_name"
CSRF_COOKIE = "ds_csrftoken"


def anonymous_writes(datasette: Any) -> bool:
    """False when the UI is served beyond loopback (``agent-bus web --allow-remote``)."""
    config = datasette.plugin_config(PLUGIN) or {}
    return bool(config.get("anonymous_writes", True))


def from_this_machine(request: Any) -> bool:
    client = request.scope.get("client")
    if not client:
        return False
    try:
        return ipaddress.ip_address(str(client[0])).is_loopback
    except ValueError:
        return False


def claims_of(actor: Any) -> dict[str, Any] | None:
    """The ``agent_bus`` claims of a Datasette actor (token actors carry them), or None."""
    claims = actor.get("agent_bus") if isinstance(actor, dict) else None
    return claims if isinstance(claims, dict) else None


def actor_may_write(datasette: Any, actor: dict[str, Any] | None, *, local: bool = True) -> bool:
    """Whether ``actor`` (Datasette's actor dict, or None) may change the bus; ``local``:
    the request comes from a loopback address."""
    scope = claims_of(actor)
    if scope is not None:
        if "read_only" in scope:  # a token's scope, as ``service.access.Scope`` spells it
            return scope["read_only"] is False
        return scope.get("write") is True
    return local and anonymous_writes(datasette)


def can_write(datasette: Any, request: Any) -> bool:
    return actor_may_write(datasette, request.actor, local=from_this_machine(request))


def scope_of(request: Any) -> Scope:
    """The `Scope` of the request's actor: a token's agents and topics, else unrestricted."""
    claims = claims_of(request.actor)
    if claims is None:
        return UNRESTRICTED
    return Scope.from_claims(claims.get("token_id"), claims)


def check_write(datasette: Any, request: Any, form: dict[str, Any]) -> None:
    """Refuse a write from an actor that may only read, or without a same-site CSRF token.

    Raises:
        Forbidden: read-only actor, missing or wrong token, or a foreign Origin.
    """
    if not can_write(datasette, request):
        raise Forbidden("this actor may read this bus but not write to it; nothing was changed")
    check_same_site(request, form)


def check_same_site(request: Any, form: dict[str, Any]) -> None:
    """Refuse a form posted from another site or without its CSRF token.

    Datasette's CSRF middleware checks the token only when the request carries cookies;
    a cross-site form from a browser with no cookie for us would pass it, so the token
    field must also match the token cookie here. Bearer-token requests carry no ambient
    credentials and skip the token (as Datasette does).

    Raises:
        Forbidden: missing or wrong token, or a foreign Origin.
    """
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        raise Forbidden("the form was posted from another site; nothing was changed")
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return
    token = str(form.get("csrftoken") or "")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not token or not cookie or not hmac.compare_digest(token, cookie):
        raise Forbidden(
            "the form has no valid CSRF token (reload the page and try again); nothing was changed"
        )


def default_name(request: Any, settings: Any) -> str:
    """The remembered name (cookie), else the ``web_name`` setting, else the OS user; for a
    token limited to some agent names, the first of them unless one of those was chosen."""
    allowed = scope_of(request).agents
    name = _preferred_name(request, settings)
    if allowed is not None and name not in allowed:
        return sorted(allowed)[0] if allowed else name
    return name


def _preferred_name(request: Any, settings: Any) -> str:
    remembered = (request.cookies.get(NAME_COOKIE) or "").strip()
    if remembered:
        return remembered[:64]
    if settings.web_name:
        return settings.web_name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "human"
