"""Errors with stable wire codes.

Each `BusError` subclass carries the code of the agent-bus-mcp contract; the
front doors (MCP, CLI, web) translate them once, at their edge.
"""

from __future__ import annotations

from typing import Any


class BusError(Exception):
    """Base of every error a user or agent can act on."""

    code = "INTERNAL_ERROR"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class TopicNotFound(BusError):
    code = "TOPIC_NOT_FOUND"


class TopicClosed(BusError):
    code = "TOPIC_CLOSED"


class AgentNameInUse(BusError):
    code = "AGENT_NAME_IN_USE"


class InvalidArgument(BusError):
    code = "INVALID_ARGUMENT"


class DbBusy(BusError):
    code = "DB_BUSY"


class SchemaMismatch(BusError):
    code = "DB_SCHEMA_MISMATCH"


class AgentNotJoined(BusError):
    code = "AGENT_NOT_JOINED"


class TopicAmbiguous(BusError):
    """A name matched several topics where the caller needed exactly one (CLI, web)."""

    code = "TOPIC_AMBIGUOUS"


class EmbeddingsUnavailable(BusError):
    """Semantic search was asked for but no embedding model can be used."""

    code = "EMBEDDINGS_UNAVAILABLE"


class Forbidden(BusError):
    """The caller may not do this: an access token that does not cover this agent name, topic
    or write; in the web UI also a read-only actor writing or a form without its CSRF token."""

    code = "FORBIDDEN"


class TokenRequired(BusError):
    """No usable access token: a remote web UI request without one (or with an unknown,
    revoked or expired one, HTTP 401), or a remote web UI started while no token exists."""

    code = "TOKEN_REQUIRED"


class RateLimited(BusError):
    """Too many requests or waiting syncs for one access token (HTTP 429 over HTTP)."""

    code = "RATE_LIMITED"


class ConfigMergeRefused(BusError):
    """A client's config file cannot be merged into safely; nothing was written.

    ``details["snippet"]`` holds the entry to add by hand.
    """

    code = "CONFIG_MERGE_REFUSED"


class CommandNotFound(BusError):
    """The command a client config would run to start the server does not exist."""

    code = "COMMAND_NOT_FOUND"


class InstallFailed(BusError):
    """An installer could not write a file (permissions, a full disk, a file where a folder
    must be); what was already in place is unchanged."""

    code = "INSTALL_FAILED"


class InternalError(BusError):
    """A bug or an unexpected storage failure; the message says what happened."""

    code = "INTERNAL_ERROR"


ERROR_CODES = (
    "TOPIC_NOT_FOUND",
    "TOPIC_CLOSED",
    "AGENT_NAME_IN_USE",
    "INVALID_ARGUMENT",
    "DB_BUSY",
    "DB_SCHEMA_MISMATCH",
    "AGENT_NOT_JOINED",
)
"""The contract's codes (spec v6.3 §4.1); the others above are additions."""
