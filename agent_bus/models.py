"""Pydantic models of the wire contract (agent-bus-mcp spec v6.3).

The same shapes serve MCP structured output, CLI ``--json`` and web JSON.
Output models allow an ``error`` (failed call) and ``warnings`` (non-fatal
notes) beside their own fields, as the reference's output schemas do, so an
error result validates against the tool's schema too.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TopicStatus = Literal["open", "closed"]
SyncStatus = Literal["ready", "timeout", "empty"]
SearchMode = Literal["hybrid", "fts", "semantic"]


class ErrorInfo(BaseModel):
    code: str
    message: str


class Warning(BaseModel):  # noqa: A001 - the contract's name for it
    code: str
    message: str | None = None
    context: dict[str, Any] | None = None


class Output(BaseModel):
    """Base of every tool result: its fields, or ``error`` when the call failed."""

    model_config = ConfigDict(extra="allow")

    error: ErrorInfo | None = None
    warnings: list[Warning] | None = None

    def wire(self) -> dict[str, Any]:
        """The JSON object sent as structuredContent (unset extras dropped)."""
        data = self.model_dump(mode="json")
        for key in ("error", "warnings"):
            if data.get(key) is None:
                data.pop(key, None)
        if "warnings" in data:
            data["warnings"] = [
                {k: v for k, v in w.items() if v is not None} for w in data["warnings"]
            ]
        return data


class Topic(BaseModel):
    topic_id: str
    name: str
    status: TopicStatus
    created_at: float
    closed_at: float | None = None
    close_reason: str | None = None
    metadata: dict[str, Any] | None = None


class TopicSummary(Topic):
    """A topic with activity figures (topic_list extras, CLI and web)."""

    message_count: int = 0
    last_seq: int = 0
    last_message_at: float | None = None


class Message(BaseModel):
    message_id: str
    topic_id: str
    seq: int
    sender: str
    message_type: str
    reply_to: str | None = None
    content_markdown: str
    metadata: dict[str, Any] | None = None
    client_message_id: str | None = None
    created_at: float


class Cursor(BaseModel):
    last_seq: int
    updated_at: float


class SentMessage(BaseModel):
    message: Message
    duplicate: bool


class PresencePeer(BaseModel):
    agent_name: str
    last_seq: int
    updated_at: float
    age_seconds: float


class SearchResult(BaseModel):
    topic_id: str
    topic_name: str
    message_id: str
    seq: int
    sender: str
    message_type: str
    created_at: float
    snippet: str
    rank: float | None = None
    fts_rank: float | None = None
    semantic_score: float | None = None
    content_markdown: str | None = None


class OutboxItem(BaseModel):
    """One outgoing message of ``sync(outbox=[…])``."""

    model_config = ConfigDict(extra="forbid")

    content_markdown: str
    message_type: str = "message"
    reply_to: str | None = None
    metadata: dict[str, Any] | None = None
    client_message_id: str | None = None


# --- tool outputs -----------------------------------------------------------


class PingOutput(Output):
    ok: bool | None = None
    spec_version: str | None = None
    package_version: str | None = None


class TopicRef(Output):
    """topic_create / topic_resolve result."""

    topic_id: str | None = None
    name: str | None = None
    status: TopicStatus | None = None


class TopicCreateOutput(TopicRef):
    created: bool | None = Field(default=None, description="False when mode='reuse' found one.")


class TopicResolveOutput(TopicRef):
    pass


class TopicListOutput(Output):
    topics: list[TopicSummary] | None = None


class TopicCloseOutput(Output):
    topic_id: str | None = None
    status: TopicStatus | None = None
    closed_at: float | None = None
    close_reason: str | None = None


class TopicJoinOutput(TopicRef):
    agent_name: str | None = None
    reclaim_token: str | None = None


class TopicPresenceOutput(Output):
    topic_id: str | None = None
    window_seconds: int | None = None
    limit: int | None = None
    now: float | None = None
    peers: list[PresencePeer] | None = None
    count: int | None = None


class CursorResetOutput(Output):
    topic_id: str | None = None
    agent_name: str | None = None
    cursor: Cursor | None = None


class MessagesSearchOutput(Output):
    query: str | None = None
    mode: SearchMode | None = None
    topic_id: str | None = None
    include_content: bool | None = None
    results: list[SearchResult] | None = None
    count: int | None = None


class SyncOutput(Output):
    topic_id: str | None = None
    agent_name: str | None = None
    status: SyncStatus | None = None
    cursor: Cursor | None = None
    sent: list[SentMessage] | None = None
    received: list[Message] | None = None
    received_count: int | None = None
    has_more: bool | None = None
