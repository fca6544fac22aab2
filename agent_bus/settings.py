"""Runtime settings: one `BusSettings`, built at the entry point and passed down.

Every knob has an ``AGENT_BUS_*`` environment variable; where the reference
implementation (agent-bus-mcp) has a variable we keep its name and default so
existing client configurations keep working.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent_bus.hooks.contracts import HOOK_MAX_BLOCKS_DEFAULT, HOOK_WAIT_SECONDS_DEFAULT
from agent_bus.paths import DEFAULT_DB

DEFAULT_DB_PATH = Path(DEFAULT_DB)


class BusSettings(BaseSettings):
    """Effective configuration of one agent-bus process."""

    model_config = SettingsConfigDict(
        env_prefix="AGENT_BUS_", extra="ignore", validate_default=True
    )

    db: Path = Field(
        default=DEFAULT_DB_PATH, description="SQLite file shared by every agent-bus process."
    )
    max_outbox: int = Field(default=50, ge=0, description="Most messages one sync may send.")
    max_message_chars: int = Field(
        default=65536, ge=1, description="Longest accepted content_markdown, in characters."
    )
    max_sync_items: int = Field(
        default=20, ge=1, description="Upper bound for sync(max_items=…); also its default cap."
    )
    tool_text_include_bodies: bool = Field(
        default=True, description="Include message bodies in the text part of tool results."
    )
    tool_text_max_chars: int = Field(
        default=64000, ge=80, description="Per-message body truncation in tool text output."
    )
    busy_timeout_ms: int = Field(
        default=15000,
        ge=0,
        description="How long a write waits for a busy database before answering DB_BUSY.",
    )
    wake_fallback_poll_ms: int = Field(
        default=250,
        ge=1,
        description=(
            "Safety-net interval for noticing other processes' commits while a sync waits "
            "(file notifications do the fast path where the OS offers them)."
        ),
    )
    sync_default_wait_seconds: int = Field(
        default=45,
        ge=0,
        le=86400,
        description=(
            "How long sync long-polls when the call leaves wait_seconds out; below the 60 s "
            "request timeout of the TypeScript MCP SDK and of Codex's documented default."
        ),
    )
    sync_progress_seconds: float = Field(
        default=10,
        ge=0.05,
        description=(
            "While a sync waits, send a progress notification this often when the client "
            "sent a progressToken (clients that reset their timeout on progress keep the call)."
        ),
    )
    claude_channels: bool = Field(
        default=False,
        description=(
            "Experimental: declare Claude Code's claude/channel capability and push a channel "
            "notification for each message arriving on a topic a session of this server joined."
        ),
    )
    presence_touch_seconds: int = Field(
        default=30,
        ge=1,
        description="While a sync long-polls, refresh the peer's presence this often.",
    )
    max_query_chars: int = Field(
        default=16384, ge=1, description="Longest accepted messages_search query."
    )
    embedding_model: str | None = Field(
        default=None,
        description="llm embedding model id used for semantic search (default: the bundled one).",
    )
    embeddings_autoindex: bool = Field(
        default=True, description="Queue new messages for background embedding."
    )
    chunk_chars: int = Field(default=1200, ge=100, description="Embedding chunk size.")
    chunk_overlap_chars: int = Field(default=200, ge=0, description="Embedding chunk overlap.")
    embed_batch_size: int = Field(default=256, ge=1, description="Messages per indexing batch.")
    embed_max_attempts: int = Field(default=5, ge=1, description="Retries before a job fails.")
    index_lease_ttl_seconds: int = Field(
        default=30, ge=2, description="Indexing lease lifetime without a heartbeat."
    )
    embed_retry_base_seconds: float = Field(
        default=10.0, gt=0, description="First retry delay of a failed embedding job (doubles)."
    )
    embed_retry_max_seconds: float = Field(
        default=900.0, gt=0, description="Longest delay between retries of an embedding job."
    )
    embed_idle_poll_seconds: float = Field(
        default=2.0, gt=0, description="How often the indexing lease holder looks for new jobs."
    )
    index_start_delay_seconds: float = Field(
        default=5.0,
        ge=0,
        description="A server starts its background indexer this long after start (cold start).",
    )

    embed_service: bool = Field(
        default=True,
        description=(
            "Index and embed queries in one embedding service process per database, never in "
            "the stdio servers (false: each server indexes and embeds in-process)."
        ),
    )
    embed_service_idle_seconds: float = Field(
        default=300.0,
        gt=0,
        description="The embedding service exits after this long with no job and no query.",
    )
    embed_service_check_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often a server checks whether queued jobs need an embedding service.",
    )
    embed_service_wait_seconds: float = Field(
        default=10.0,
        ge=0,
        description=(
            "How long a semantic search waits for a starting embedding service before it "
            "embeds the query in its own process."
        ),
    )
    web_secret: SecretStr | None = Field(
        default=None,
        min_length=32,
        description=(
            "The key the web UI signs its session and CSRF cookies with; set it (32+ random "
            "characters) so people stay signed in across restarts of `agent-bus web`. "
            "Default: a new random key at each start."
        ),
    )
    web_name: str | None = Field(
        default=None,
        description=(
            "The name you post under from the web UI until you change it on the page "
            "(default: your operating-system user name)."
        ),
    )

    hook_max_blocks: int = Field(
        default=HOOK_MAX_BLOCKS_DEFAULT,
        ge=0,
        description=(
            "`agent-bus hook` stop/after-agent: most times in a row it asks the agent to continue "
            "without a new message arriving (loop guard; 0 never blocks). Read by the hook "
            "process from the environment."
        ),
    )
    hook_wait_seconds: int = Field(
        default=HOOK_WAIT_SECONDS_DEFAULT,
        ge=1,
        description=(
            "`agent-bus hook claude-code wait` (asyncRewake): how long the background hook "
            "long-polls the bus before exiting quietly."
        ),
    )

    http_rate_per_second: float = Field(
        default=20.0,
        ge=0,
        description="HTTP door: sustained requests per second per token (0: no limit).",
    )
    http_rate_burst: int = Field(
        default=100, ge=1, description="HTTP door: requests a token may send in a burst."
    )
    http_max_long_polls: int = Field(
        default=4, ge=1, description="HTTP door: waiting sync calls one token may hold at once."
    )
    http_max_body_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="HTTP door: largest accepted request body."
    )
    http_shutdown_grace_seconds: float = Field(
        default=3.0,
        ge=0,
        description="HTTP door: on shutdown, how long in-flight calls may take to answer.",
    )
    http_session_idle_seconds: float = Field(
        default=8 * 3600,
        gt=0,
        description=(
            "HTTP door: an MCP session with no request for this long is closed and its joined "
            "names forgotten (agents waiting hours for a peer keep theirs)."
        ),
    )
    http_allowed_hosts: list[str] = Field(
        default_factory=list,
        description=(
            "HTTP door: extra Host names clients use to reach the server (DNS-rebinding "
            "protection), e.g. bus.example.com or host.docker.internal."
        ),
    )

    @field_validator("db", mode="after")
    @classmethod
    def _expand_db(cls, value: Path) -> Path:
        if str(value) == ":memory:":
            raise ValueError("an in-memory database cannot be shared between processes")
        return value.expanduser()


class SettingsError(Exception):
    """Raised when the environment holds an invalid setting; names the variable."""


def load_settings(**overrides: object) -> BusSettings:
    """Build settings from the environment plus explicit overrides (CLI flags).

    Raises:
        SettingsError: with one line per invalid ``AGENT_BUS_*`` variable.
    """
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return BusSettings(**clean)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            lines.append(f"AGENT_BUS_{field.upper()}: {err['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(lines)) from None
