"""The MCP door's one call into session bindings: who is this server serving.

Called after a successful ``topic_join`` or ``sync``; writes only the first time
this process serves an identity, so a long-polling ``sync`` costs a set lookup.
A failure to record never fails the tool: hooks then fall back to their
overrides or the working directory.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from agent_bus.errors import BusError
from agent_bus.service.bindings import BindingRecorder

logger = logging.getLogger(__name__)


def _client_info(ctx: Any) -> tuple[str | None, str | None]:
    try:
        params = ctx.session.client_params
    except (LookupError, ValueError, AttributeError):
        return None, None
    info = getattr(params, "client_info", None)
    if info is None:
        return None, None
    return getattr(info, "name", None), getattr(info, "version", None)


async def record(bus: Any, recorder: BindingRecorder, ctx: Any, topic_id: str, agent: str) -> None:
    if not recorder.needs(topic_id, agent):
        return
    name, version = _client_info(ctx)
    try:
        await bus.run(recorder.record, bus.write, topic_id, agent, name, version)
    except (BusError, sqlite3.Error, OSError) as exc:
        logger.warning("could not record the session binding of %s on %s: %s", agent, topic_id, exc)
