"""Export a topic for the web's download buttons through ``agent_bus.export``,
the code the CLI's ``agent-bus export`` uses, so both give the same files."""

from __future__ import annotations

import re
from typing import Any

from agent_bus.models import Topic


def safe_filename(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    return cleaned[:80] or "topic"


def export_topic(
    bus: Any, topic: Topic, fmt: str, first: int | None = None, last: int | None = None
) -> str:
    """The topic, or messages ``first``..``last`` (inclusive) of it, as a file's text."""
    from agent_bus import export

    after = max(0, (first or 1) - 1)
    return export.export_text(bus, topic, fmt, after_seq=after, until_seq=last)
