"""Humanised times shared by the CLI and the web UI, so both say the same thing.

The web UI's JavaScript (``agent-bus.js``, ``ago``) refreshes these labels in the
browser and follows the same rules; change both together.
"""

from __future__ import annotations

import time
from datetime import datetime

MISSING = "-"
DATE_AFTER_DAYS = 30
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
"""Seconds per unit of the durations people type (``--expires 30d``, ``--since 2h``)."""


def ago(ts: float | None, now: float | None = None) -> str:
    """How long before ``now`` (default: the current time) ``ts`` was.

    "just now" under 45 s, then "5m ago", "3h ago", "2d ago"; from 30 days on the
    local date ("2024-05-01"). ``None`` (no such time) gives "-"; a time in the
    future counts as "just now".
    """
    if ts is None:
        return MISSING
    delta = max(0.0, (time.time() if now is None else now) - ts)
    if delta < 45:
        return "just now"
    if delta < 3600:
        return f"{int(delta // 60) or 1}m ago"
    if delta < 86400:
        return f"{int(delta // 3600)}h ago"
    if delta < DATE_AFTER_DAYS * 86400:
        return f"{int(delta // 86400)}d ago"
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d")
