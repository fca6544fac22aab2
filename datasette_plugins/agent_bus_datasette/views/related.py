"""The thread page's "Related elsewhere" panel: messages of other topics nearest in meaning.

"This was decided before in topic X": the topic's recent messages, as one vector, against
every other topic's messages (`Bus.related`). Without the semantic extra or an index the
panel is simply absent: it is a hint, never an error on the page.
"""

from __future__ import annotations

from typing import Any

from agent_bus.errors import BusError
from agent_bus.service.access import Scope

PANEL_SIZE = 5
SCOPED_FETCH = 100  # over-fetch for a token limited to some topics; others are dropped


def related_context(bus: Any, root: str, topic_id: str, scope: Scope) -> dict[str, Any]:
    """``related``: up to PANEL_SIZE {topic_name, seq, sender, snippet, url} (may be empty),
    from the topics ``scope`` covers only."""
    wanted = PANEL_SIZE if scope.topics is None else SCOPED_FETCH
    try:
        results, _ = bus.related(topic_id=topic_id, limit=wanted)
    except BusError:
        return {"related": []}
    results = scope.visible(results, id_of=lambda r: r.topic_id, name_of=lambda r: r.topic_name)
    results = results[:PANEL_SIZE]
    return {
        "related": [
            {
                "topic_name": r.topic_name,
                "seq": r.seq,
                "sender": r.sender,
                "snippet": r.snippet,
                "url": f"{root}/messages/{r.message_id}",
            }
            for r in results
        ]
    }
