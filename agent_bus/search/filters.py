"""Optional filters of a search: sender, message type and a creation-time range.

They narrow both sides alike: the full-text side in SQL (joined before ranking, like a
topic filter), the semantic side by masking the vector rows of other messages.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agent_bus.errors import InvalidArgument
from agent_bus.timefmt import UNIT_SECONDS

_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")


@dataclass(frozen=True)
class SearchFilters:
    sender: str | None = None
    message_type: str | None = None
    created_after: float | None = None  # unix seconds, exclusive
    created_before: float | None = None  # unix seconds, exclusive

    @property
    def empty(self) -> bool:
        return self == SearchFilters()

    def sql(self, alias: str = "m") -> tuple[str, list[Any]]:
        """`` AND …`` conditions on the messages table (alias ``alias``) and their params."""
        parts: list[str] = []
        params: list[Any] = []
        for column, op, value in (
            ("sender", "=", self.sender),
            ("message_type", "=", self.message_type),
            ("created_at", ">", self.created_after),
            ("created_at", "<", self.created_before),
        ):
            if value is not None:
                parts.append(f" AND {alias}.{column} {op} ?")
                params.append(value)
        return "".join(parts), params


def parse_time(value: object, field: str) -> float | None:
    """Unix seconds from a number, an ISO 8601 date/time (UTC unless it says otherwise), or
    a duration before now (``90m``, ``2d``, ``1w``: what a person typing a filter means)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidArgument(f"{field} must be an ISO 8601 time or unix seconds", field=field)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        ago = _AGO.match(text)
        if ago is not None:
            return time.time() - float(ago.group(1)) * UNIT_SECONDS[ago.group(2)]
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidArgument(
                f"{field} must be an ISO 8601 time (2026-12-01 or 2026-12-01T09:30:00Z), "
                f"unix seconds or a duration ago (2d, 90m), not {text[:40]!r}",
                field=field,
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    raise InvalidArgument(f"{field} must be an ISO 8601 time or unix seconds", field=field)
