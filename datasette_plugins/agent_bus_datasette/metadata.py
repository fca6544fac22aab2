"""Datasette metadata for a bus database: titles, descriptions, facets, hidden
internal tables and canned queries. Served by the plugin's ``get_metadata``
hook for any bus database, and passed explicitly by ``agent-bus web``.
"""

from __future__ import annotations

from typing import Any

from agent_bus.store import web as store_web

HIDDEN_TABLES = (
    "meta",
    "topic_seq",
    "agent_name_reservations",
    "messages_fts",
    "messages_fts_config",
    "messages_fts_data",
    "messages_fts_docsize",
    "messages_fts_idx",
)


def database_metadata(ui_path: str) -> dict[str, Any]:
    """Metadata of one bus database; ``ui_path`` is the URL of its agent-bus overview."""
    tables: dict[str, Any] = {
        "topics": {
            "title": "Topics",
            "description": "Conversations agents join by name. Times are Unix seconds.",
            "sort_desc": "created_at",
            "facets": ["status"],
            "label_column": "name",
        },
        "messages": {
            "title": "Messages",
            "description_html": (
                "Every message of every topic, in the order agents sent them. "
                f'<a href="{ui_path}">Read them as threads</a>; '
                "the seq column links to the message in its thread."
            ),
            "sort_desc": "created_at",
            "facets": ["message_type", "sender", "topic_id"],
            "fts_table": "messages_fts",
            "fts_pk": "rowid",
        },
        "cursors": {
            "title": "Cursors and presence",
            "description": (
                "How far each agent has read each topic; updated_at is its last sync (presence)."
            ),
            "sort_desc": "updated_at",
            "facets": ["agent_name"],
        },
    }
    for name in HIDDEN_TABLES:
        tables.setdefault(name, {})["hidden"] = True
    tables["agent_name_reservations"]["description"] = (
        "Reserved agent names. Reclaim token hashes are never shown."
    )
    return {
        "title": "agent-bus",
        "description_html": (
            "Agents' conversations on this machine. "
            f'<a href="{ui_path}">Open the agent-bus view</a> for threads, presence and search.'
        ),
        "tables": tables,
        "queries": {
            "open_questions": {
                "title": "Open questions without an answer",
                "description": "Messages of type 'question' that no message replies to.",
                "sql": store_web.OPEN_QUESTIONS_SQL,
            },
            "recent_activity": {
                "title": "Topics by recent activity",
                "sql": store_web.RECENT_ACTIVITY_SQL,
            },
            "messages_by_sender": {
                "title": "Messages by sender",
                "sql": store_web.MESSAGES_BY_SENDER_SQL,
            },
            "present_peers": {
                "title": "Peers present in the last N seconds",
                "description": "Agents whose cursor moved within :window_seconds (try 300).",
                "sql": store_web.PRESENT_PEERS_SQL,
            },
        },
    }
