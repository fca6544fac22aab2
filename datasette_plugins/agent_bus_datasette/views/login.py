"""/-/agent-bus/-/login and /-/logout: a person signs in with an access token, and out.

The pasted token is checked by ``agent_bus.service.access`` (through ``auth``); on
success the browser gets the signed session cookie and goes back to the page it asked
for. The form carries Datasette's CSRF token, so no other site can sign a visitor in
with a token of its choosing.
"""

from __future__ import annotations

from typing import Any

from datasette.utils.asgi import Response

from agent_bus.errors import TokenRequired

from .. import auth
from ..access import check_same_site
from .common import page, static

SIGNED_OUT = "Signed out."


async def _form(
    datasette: Any, request: Any, next_path: str, error: str | None = None, status: int = 200
) -> Response:
    ended = request.args.get("ended") == "1" and request.method == "GET"
    return await page(
        datasette,
        request,
        "agent_bus_login.html",
        {
            "css_url": static(datasette, "agent-bus.css"),
            "theme_js_url": static(datasette, "agent-bus-theme.js"),
            "action": datasette.urls.path(auth.LOGIN_PATH),
            "next": next_path,
            "error": error,
            "code": TokenRequired.code if error else None,
            "ended": auth.ENDED if ended else None,
            "required": auth.require_token(datasette),
        },
        status=status,
    )


async def login(datasette: Any, request: Any) -> Response:
    if request.method != "POST":
        return await _form(datasette, request, auth.safe_next(datasette, request.args.get("next")))
    form = await request.post_vars()
    check_same_site(request, form)
    next_path = auth.safe_next(datasette, str(form.get("next") or ""))
    found = await auth.verify_secret(datasette, str(form.get("token") or "").strip())
    if found is None:
        message = "That token is unknown, revoked or expired. Paste the whole agb_… token."
        return await _form(datasette, request, next_path, error=message, status=401)
    info, database = found
    value, lifetime = auth.session_value(datasette, info, database)
    response = Response.redirect(next_path, status=303)
    response.set_cookie(
        auth.SESSION_COOKIE,
        value,
        max_age=lifetime,
        path=datasette.urls.path("/"),
        secure=request.scheme == "https",
        httponly=True,
        samesite="lax",
    )
    return response


async def logout(datasette: Any, request: Any) -> Response:
    form = await request.post_vars()
    check_same_site(request, form)
    response = Response.redirect(auth.login_url(datasette), status=303)
    auth.clear_session(datasette, response)
    datasette.add_message(request, SIGNED_OUT, datasette.INFO)
    return response
