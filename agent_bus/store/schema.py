"""Schema and migrations of the bus database.

The version lives in ``meta.schema_version``. Each migration is a function
that takes the database from version N to N+1; they run in one ``BEGIN
IMMEDIATE`` transaction together with the version bump, so concurrent first
starts of several servers serialise and a crash leaves the old version intact.
Released migrations are never edited.

Version numbering continues the reference implementation's (its databases
are at "6"), so a reference server refuses ours instead of misreading it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from agent_bus.errors import SchemaMismatch
from agent_bus.store.connection import write_transaction
from agent_bus.store.legacy import REFERENCE_VERSION, is_reference_database, upgrade_reference

SCHEMA_VERSION = 11
APP_ID = "agent-bus"

# unicode61 splits snake_case, dotted and slashed identifiers into parts that
# phrase queries match in order, so `backoff` finds `retry_backoff_ms` too.
# No porter stemming: measured on benchmarks/search_eval it adds false hits
# (`locked` -> every "lock") without improving recall.
FTS_TOKENIZER = "unicode61 remove_diacritics 2"


def _m7_initial(db: sqlite3.Connection) -> None:
    from sqlite_utils import Database  # only needed when a database is created

    sdb = Database(db)
    sdb.executescript(
        """
        CREATE TABLE IF NOT EXISTS meta (
          key TEXT PRIMARY KEY,
          value TEXT NOT NULL
        );
        CREATE TABLE topics (
          topic_id TEXT PRIMARY KEY,
          name TEXT NOT NULL,
          created_at REAL NOT NULL,
          status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
          closed_at REAL,
          close_reason TEXT,
          metadata_json TEXT
        );
        CREATE INDEX idx_topics_name_status_created_at ON topics(name, status, created_at);

        CREATE TABLE topic_seq (
          topic_id TEXT PRIMARY KEY REFERENCES topics(topic_id),
          next_seq INTEGER NOT NULL,
          updated_at REAL NOT NULL
        );

        CREATE TABLE messages (
          message_id TEXT PRIMARY KEY,
          topic_id TEXT NOT NULL REFERENCES topics(topic_id),
          seq INTEGER NOT NULL,
          sender TEXT NOT NULL,
          message_type TEXT NOT NULL,
          reply_to TEXT,
          content_markdown TEXT NOT NULL,
          metadata_json TEXT,
          client_message_id TEXT,
          created_at REAL NOT NULL
        );
        CREATE UNIQUE INDEX idx_messages_topic_seq ON messages(topic_id, seq);
        CREATE UNIQUE INDEX idx_messages_topic_sender_client_id
          ON messages(topic_id, sender, client_message_id)
          WHERE client_message_id IS NOT NULL;
        CREATE INDEX idx_messages_topic_reply_to ON messages(topic_id, reply_to);

        CREATE TABLE cursors (
          topic_id TEXT NOT NULL REFERENCES topics(topic_id),
          agent_name TEXT NOT NULL,
          last_seq INTEGER NOT NULL DEFAULT 0,
          updated_at REAL NOT NULL,
          PRIMARY KEY (topic_id, agent_name)
        );
        CREATE INDEX idx_cursors_topic_updated ON cursors(topic_id, updated_at);

        CREATE TABLE agent_name_reservations (
          topic_id TEXT NOT NULL REFERENCES topics(topic_id),
          agent_name TEXT NOT NULL,
          reclaim_token_hash TEXT NOT NULL,
          created_at REAL NOT NULL,
          last_claimed_at REAL NOT NULL,
          PRIMARY KEY (topic_id, agent_name)
        );
        """
    )
    _create_fts(db)


def _create_fts(db: sqlite3.Connection) -> None:
    """messages_fts: external-content FTS5 over messages, kept current by triggers."""
    from sqlite_utils import Database

    Database(db)["messages"].enable_fts(
        ["content_markdown"], fts_version="FTS5", create_triggers=True, tokenize=FTS_TOKENIZER
    )


def _m8_embedding_jobs(db: sqlite3.Connection) -> None:
    """The embedding job queue, the indexing lease, and the trigger that fills the queue.

    The trigger enqueues every new message in the transaction that inserts it (sync, post,
    import), so indexing costs ``sync`` one small insert and nothing else. llm's own tables
    (``collections``, ``embeddings``) are created by ``llm.Collection``, not here.
    """
    # One statement at a time: executescript() would commit the migration's transaction.
    for statement in _M8_STATEMENTS:
        db.execute(statement)


_M8_STATEMENTS = (
    """CREATE TABLE embedding_jobs (
      message_id TEXT PRIMARY KEY,
      enqueued_at REAL NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0,
      next_attempt_at REAL NOT NULL,
      last_error TEXT,
      failed_at REAL
    )""",
    "CREATE INDEX idx_embedding_jobs_due ON embedding_jobs(failed_at, next_attempt_at)",
    """CREATE TABLE embedding_leases (
      name TEXT PRIMARY KEY,
      holder TEXT NOT NULL,
      pid INTEGER,
      host TEXT,
      model_id TEXT,
      acquired_at REAL NOT NULL,
      heartbeat_at REAL NOT NULL,
      expires_at REAL NOT NULL
    )""",
    """CREATE TRIGGER messages_enqueue_embedding AFTER INSERT ON messages BEGIN
      INSERT OR IGNORE INTO embedding_jobs(message_id, enqueued_at, next_attempt_at)
      VALUES (new.message_id, new.created_at, new.created_at);
    END""",
    """INSERT OR IGNORE INTO embedding_jobs(message_id, enqueued_at, next_attempt_at)
      SELECT message_id, created_at, created_at FROM messages""",
)


def _m9_access_tokens(db: sqlite3.Connection) -> None:
    """Bearer tokens of the HTTP door: a hash of each secret, a public id and a scope."""
    for statement in _M9_STATEMENTS:
        db.execute(statement)


# agents_json / topics_json: a JSON list, NULL for "any". The secret itself is never stored.
_M9_STATEMENTS = (
    """CREATE TABLE IF NOT EXISTS access_tokens (
      token_id TEXT PRIMARY KEY,
      label TEXT NOT NULL,
      secret_hash TEXT NOT NULL UNIQUE,
      agents_json TEXT,
      topics_json TEXT,
      read_only INTEGER NOT NULL DEFAULT 0,
      created_at REAL NOT NULL,
      expires_at REAL,
      revoked_at REAL,
      last_used_at REAL
    )""",
)


def _m10_session_bindings(db: sqlite3.Connection) -> None:
    """Which client session each identity is served to, and the hooks' loop-guard state.

    A server writes a binding the first time it serves ``topic_join``/``sync`` for an
    identity; ``agent-bus hook`` reads them to learn which identities belong to the
    client that ran it (docs/reference/hooks.md). Both tables stay tiny:
    bindings of dead clients are swept, hook state is one row per client session.
    """
    for statement in _M10_STATEMENTS:
        db.execute(statement)


_M10_STATEMENTS = (
    """CREATE TABLE session_bindings (
      topic_id TEXT NOT NULL,
      agent_name TEXT NOT NULL,
      server_pid INTEGER NOT NULL,
      server_start TEXT NOT NULL,
      client_pid INTEGER,
      client_start TEXT,
      ancestry_json TEXT NOT NULL,
      session_id TEXT,
      cwd TEXT,
      client_name TEXT,
      client_version TEXT,
      created_at REAL NOT NULL,
      updated_at REAL NOT NULL,
      PRIMARY KEY (server_pid, server_start, topic_id, agent_name)
    )""",
    "CREATE INDEX idx_session_bindings_client ON session_bindings(client_pid, client_start)",
    "CREATE INDEX idx_session_bindings_session ON session_bindings(session_id)",
    """CREATE TABLE hook_state (
      session_key TEXT PRIMARY KEY,
      blocks INTEGER NOT NULL DEFAULT 0,
      signature TEXT,
      updated_at REAL NOT NULL
    )""",
)


def _m11_stale_default_vectors(db: sqlite3.Connection) -> None:
    """Drop the bundled model's vectors made before its own export and the context line.

    From this version the bundled model (``agent-bus-minilm``) is our own export of
    all-MiniLM-L6-v2 and embeds each message with a context line, so its older vectors
    no longer share a space with new query vectors. Without them the messages count as
    missing, and the indexing service embeds them again in the background (it enqueues
    what its collection lacks); meanwhile hybrid search ranks them by full text.
    Collections of other models are left alone.
    """
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"collections", "embeddings"} <= tables:
        return
    db.execute(
        "DELETE FROM embeddings WHERE collection_id IN "
        "(SELECT id FROM collections WHERE name = 'agent-bus-messages-agent-bus-minilm')"
    )


# version reached -> function taking the previous version there
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    7: _m7_initial,
    8: _m8_embedding_jobs,
    9: _m9_access_tokens,
    10: _m10_session_bindings,
    11: _m11_stale_default_vectors,
}


def read_version(conn: sqlite3.Connection) -> int | None:
    """The schema version, 0 for an empty file, None for a file that is not ours."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "meta" not in tables:
        return 0 if not tables else None
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        return None
    try:
        return int(row[0])
    except (TypeError, ValueError):
        return None


def ensure_schema(conn: sqlite3.Connection, path: str) -> None:
    """Create or migrate the schema, or raise `SchemaMismatch` saying what to do."""
    version = read_version(conn)
    if version == SCHEMA_VERSION:
        return
    _check_supported(conn, version, path)
    with write_transaction(conn):
        version = read_version(conn)  # another process may have migrated meanwhile
        if version == SCHEMA_VERSION:
            return
        _check_supported(conn, version, path)
        if version == 0:
            for target in sorted(MIGRATIONS):
                MIGRATIONS[target](conn)
        else:
            if version == REFERENCE_VERSION:  # agent-bus-mcp's layout: carry it over
                upgrade_reference(conn, _create_fts)
                version = min(MIGRATIONS)
            for target in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[target](conn)
        conn.execute(
            "INSERT INTO meta(key, value) VALUES ('schema_version', ?), ('app', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (str(SCHEMA_VERSION), APP_ID),
        )


def _check_supported(conn: sqlite3.Connection, version: int | None, path: str) -> None:
    if version is None:
        raise SchemaMismatch(
            f"{path} is not an agent-bus database (no schema version). Point AGENT_BUS_DB at "
            "another file, or move this one aside and restart to create a fresh bus.",
            path=path,
        )
    if version > SCHEMA_VERSION:
        raise SchemaMismatch(
            f"{path} has schema version {version}, newer than this agent-bus understands "
            f"({SCHEMA_VERSION}). Upgrade agent-bus (pip install -U agent-bus) in every client.",
            path=path,
            found=version,
            expected=SCHEMA_VERSION,
        )
    if version == REFERENCE_VERSION and is_reference_database(conn):
        return
    if version != 0 and version < min(MIGRATIONS):
        raise SchemaMismatch(
            f"{path} has schema version {version} (agent-bus-mcp); it cannot be upgraded in "
            "place. Export what you need with the old tool, then wipe it with "
            "`agent-bus db wipe --yes` or point AGENT_BUS_DB at a new file.",
            path=path,
            found=version,
            expected=SCHEMA_VERSION,
        )
