"""JSON envelopes of the web pages, built on the MCP tools' own models.

Each page's ``.json`` twin is one of these models dumped with ``Output.wire()``,
so topics, messages, presence and errors have exactly the shapes agents see
over MCP (``Topic``, ``Message``, ``PresencePeer``, ``ErrorInfo``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from agent_bus.models import (
    Message,
    Output,
    PresencePeer,
    SearchResult,
    SentMessage,
    Topic,
    TopicSummary,
)
from agent_bus.models import Warning as BusWarning


class DatabaseEntry(BaseModel):
    name: str
    path: str
    schema_version: int | None
    url: str
    problem: str | None


class HomeOutput(Output):
    databases: list[DatabaseEntry]


class OverviewTopic(TopicSummary):
    last_activity_at: float
    present: list[str]
    url: str


class OverviewOutput(Output):
    database: str
    status: str
    topics: list[OverviewTopic]


class ThreadStats(BaseModel):
    message_count: int
    first_seq: int
    last_seq: int
    last_message_at: float | None


class ThreadWindow(BaseModel):
    first_seq: int
    last_seq: int
    has_earlier: bool
    has_later: bool
    limit: int


class SenderStat(BaseModel):
    sender: str
    messages: int
    last_at: float | None


class ThreadOutput(Output):
    database: str
    topic: Topic
    stats: ThreadStats
    window: ThreadWindow
    messages: list[Message]
    presence: list[PresencePeer]
    senders: list[SenderStat]


class PollOutput(Output):
    topic_id: str
    status: str
    last_seq: int
    has_more: bool
    message_count: int
    messages: list[Message]
    presence: list[PresencePeer]
    html: str
    presence_html: str


class SearchOutput(Output):
    query: str
    mode: str
    topic_id: str | None
    results: list[SearchResult]
    warnings: list[BusWarning] | None = None
    count: int


class PostOutput(Output):
    """A web post's result: the same ``sent`` entries as ``sync`` and ``agent-bus send``."""

    topic_id: str
    sent: list[SentMessage]
    url: str


class TopicActionOutput(Output):
    """The topic after a create, close, reopen or rename from the web."""

    action: str
    topic: Topic | None = None
    url: str
    details: dict[str, Any] | None = None


class PreviewOutput(Output):
    """A body rendered by the thread's own markdown sanitiser."""

    html: str
