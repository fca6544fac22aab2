"""Administrative operations on a bus database: delete, rename, stats, check, backup, vacuum, wipe.

Service functions shared by the CLI and the web UI; the SQL is in
``agent_bus.store.admin``. Every write is one short ``BEGIN IMMEDIATE``
transaction through `Bus.write`, so agents working on the same file are
held up for a moment at most (they wait on the busy timeout, never fail).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent_bus.bus import Bus
from agent_bus.errors import InvalidArgument, TopicNotFound
from agent_bus.models import Topic
from agent_bus.service.checks import MAX_TOPIC_NAME, check_name
from agent_bus.store import admin as sql
from agent_bus.store import queries
from agent_bus.store.connection import retry
from agent_bus.store.schema import SCHEMA_VERSION, read_version


@dataclass
class DeleteReport:
    topic_id: str
    name: str
    messages: int
    cursors: int
    reservations: int
    embeddings: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def delete_topic(bus: Bus, topic_id: str) -> DeleteReport:
    """Delete a topic with its messages, cursors, reservations, FTS rows and embeddings.

    One transaction: a crash or error leaves the topic whole.

    Raises:
        TopicNotFound: no topic with that id.
    """

    def tx(conn: sqlite3.Connection) -> DeleteReport:
        topic = queries.get_topic(conn, topic_id)
        if topic is None:
            raise TopicNotFound(f"No topic with topic_id {topic_id!r}.")
        counts = sql.count_topic_rows(conn, topic_id)
        embeddings = sql.delete_embeddings_of_topic(conn, topic_id)
        sql.delete_topic_rows(conn, topic_id)
        return DeleteReport(
            topic_id=topic_id,
            name=topic.name,
            messages=counts["messages"],
            cursors=counts["cursors"],
            reservations=counts["agent_name_reservations"],
            embeddings=embeddings,
        )

    return bus.write(tx)


@dataclass
class RenameReport:
    topic: Topic
    old_name: str
    changed: bool
    messages_rewritten: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic.model_dump(mode="json"),
            "old_name": self.old_name,
            "changed": self.changed,
            "messages_rewritten": self.messages_rewritten,
        }


def rename_topic(
    bus: Bus, topic_id: str, new_name: str, *, rewrite_messages: bool = True
) -> RenameReport:
    """Rename a topic; by default also replace the old name in its message bodies.

    Only whole-name occurrences are replaced (see `agent_bus.store.admin.topic_name_pattern`);
    changed messages are re-indexed for full-text search and queued for embedding.

    Raises:
        TopicNotFound, InvalidArgument: unknown topic or an unusable name.
    """
    clean = check_name(new_name, "new_name", MAX_TOPIC_NAME)

    def tx(conn: sqlite3.Connection) -> RenameReport:
        topic = queries.get_topic(conn, topic_id)
        if topic is None:
            raise TopicNotFound(f"No topic with topic_id {topic_id!r}.")
        if topic.name == clean:
            return RenameReport(topic, topic.name, False, 0)
        queries.rename_topic(conn, topic_id, clean)
        rewritten = 0
        if rewrite_messages:
            rewritten = sql.rewrite_topic_name_in_messages(
                conn, topic_id, topic.name, clean, time.time()
            )
        return RenameReport(topic.model_copy(update={"name": clean}), topic.name, True, rewritten)

    return bus.write(tx)


def db_files(path: Path) -> list[Path]:
    """The database file and its WAL/SHM sidecars (whether or not they exist)."""
    return [path, Path(f"{path}-wal"), Path(f"{path}-shm")]


def require_db(path: Path) -> None:
    """Raise `InvalidArgument` when there is no database file at ``path``."""
    if not path.is_file():
        raise InvalidArgument(
            f"no bus database at {path}; pass --db PATH or set AGENT_BUS_DB", field="db"
        )


def stats(bus: Bus) -> dict[str, Any]:
    """Counts, sizes and the schema version of the bus."""
    data = bus.read(sql.stats)
    data["path"] = str(bus.path)
    data["schema_version"] = bus.read(read_version)
    sizes = {p.name: p.stat().st_size for p in db_files(bus.path) if p.exists()}
    data["file_bytes"] = sizes.get(bus.path.name, 0)
    data["wal_bytes"] = sizes.get(f"{bus.path.name}-wal", 0)
    return data


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None


@dataclass
class CheckReport:
    path: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "ok": self.ok, "checks": [asdict(c) for c in self.checks]}


def check(path: Path) -> CheckReport:
    """Integrity, schema version, FTS consistency, orphans and sequence counters.

    Opens its own read-only connection, so it also works on a database whose
    schema this version cannot use, and never takes the write lock.
    """
    require_db(path)
    report = CheckReport(str(path))
    add = report.checks.append
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=15)
    try:
        try:
            lines = sql.integrity_check(conn)
        except sqlite3.DatabaseError as exc:
            add(Check("integrity", False, str(exc), "restore a backup"))
            return report
        healthy = lines == ["ok"]
        add(
            Check(
                "integrity",
                healthy,
                "ok" if healthy else "; ".join(lines[:5]),
                None
                if healthy
                else "the file is damaged: restore a backup, or export what "
                "still reads with `agent-bus export` and start a new bus",
            )
        )
        version = read_version(conn)
        if version == SCHEMA_VERSION:
            add(Check("schema_version", True, f"{version}"))
        else:
            add(
                Check(
                    "schema_version",
                    False,
                    f"found {version!r}, this agent-bus uses {SCHEMA_VERSION}",
                    "start `agent-bus` once to migrate an older bus; upgrade agent-bus for a "
                    "newer one; a file that is not a bus needs another --db",
                )
            )
            return report
        fts_ok, fts_detail = _fts_integrity(path)
        messages, fts_rows = sql.fts_counts(conn)
        if fts_ok and messages != fts_rows:
            fts_ok, fts_detail = False, f"{messages} messages but {fts_rows} index rows"
        add(
            Check(
                "fts",
                fts_ok,
                fts_detail if not fts_ok else f"ok ({fts_rows} rows)",
                None if fts_ok else "rebuild the index: `agent-bus db check --repair`",
            )
        )
        orphans = {k: v for k, v in sql.orphan_counts(conn).items() if v}
        fks = sql.foreign_key_problems(conn)
        add(
            Check(
                "orphans",
                not orphans and not fks,
                "none"
                if not orphans and not fks
                else ", ".join(f"{k}: {v}" for k, v in orphans.items())
                + (f"; {len(fks)} foreign key violations" if fks else ""),
                None
                if not orphans and not fks
                else "delete the leftovers of removed topics: `agent-bus db check --repair`",
            )
        )
        bad = sql.seq_problems(conn)
        add(
            Check(
                "sequences",
                not bad,
                "ok"
                if not bad
                else ", ".join(f"{t}: max seq {top}, next_seq {nxt}" for t, top, nxt in bad[:5]),
                None if not bad else "`agent-bus db check --repair` resets the counters",
            )
        )
    finally:
        conn.close()
    return report


def _fts_integrity(path: Path) -> tuple[bool, str]:
    # FTS5's integrity-check is spelled as an INSERT, so it needs a writable connection and
    # holds the write lock while it runs (milliseconds for thousands of messages).
    conn = sqlite3.connect(str(path), timeout=15, isolation_level=None)
    try:
        sql.fts_integrity(conn)
        return True, "ok"
    except sqlite3.DatabaseError as exc:
        return False, str(exc)
    finally:
        conn.close()


def repair(bus: Bus) -> list[str]:
    """Fix what `check` can fix: rebuild FTS, drop orphan rows, raise seq counters."""
    done: list[str] = []

    def tx(conn: sqlite3.Connection) -> None:
        orphans = sql.orphan_counts(conn)
        for table in sql.TOPIC_TABLES:
            if orphans.get(table):
                conn.execute(
                    f"DELETE FROM {table} WHERE topic_id NOT IN (SELECT topic_id FROM topics)"
                )
                done.append(f"deleted {orphans[table]} orphan rows from {table}")
        for topic_id, top, _ in sql.seq_problems(conn):
            queries.set_next_seq(conn, topic_id, top + 1, time.time())
            done.append(f"set next seq of {topic_id} to {top + 1}")
        sql.fts_rebuild(conn)
        done.append("rebuilt the full-text index")

    bus.write(tx)
    return done


def backup(bus: Bus, dest: Path, *, overwrite: bool = False) -> dict[str, Any]:
    """Copy the live database to ``dest`` with SQLite's online backup API.

    Safe while agents write: the copy is a consistent snapshot (WAL readers
    do not block writers). The copy is written next to ``dest`` and renamed
    into place, so ``dest`` is never a half-written file.

    Raises:
        InvalidArgument: ``dest`` exists (without ``overwrite``) or cannot be written.
    """
    dest = dest.expanduser()
    if dest.resolve() == bus.path.resolve():
        raise InvalidArgument("the backup file must not be the bus database itself", field="file")
    if dest.exists() and not overwrite:
        raise InvalidArgument(f"{dest} exists; pass --force to replace it", field="file")
    if not dest.parent.is_dir():
        raise InvalidArgument(f"directory {dest.parent} does not exist", field="file")
    tmp = dest.with_name(f".{dest.name}.partial")
    src = bus.conn()
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
        os.close(fd)
        dst = sqlite3.connect(str(tmp))
    except OSError as exc:
        raise InvalidArgument(f"cannot write {dest}: {exc.strerror}", field="file") from None
    started = time.monotonic()
    try:
        with dst:
            # pages=-1: one step, one consistent read snapshot; WAL writers carry on meanwhile.
            src.backup(dst, pages=-1)
        dst.execute("PRAGMA journal_mode = DELETE")
    except sqlite3.Error as exc:
        dst.close()
        tmp.unlink(missing_ok=True)
        raise InvalidArgument(f"backup to {dest} failed: {exc}", field="file") from None
    dst.close()
    os.replace(tmp, dest)
    return {
        "path": str(dest),
        "bytes": dest.stat().st_size,
        "seconds": round(time.monotonic() - started, 3),
    }


def vacuum(bus: Bus) -> dict[str, Any]:
    """Optimise the FTS index, VACUUM and truncate the WAL; returns sizes before and after.

    VACUUM holds the write lock while it copies the file (about a second per
    100 MB); agents' writes wait on their busy timeout meanwhile.

    Raises:
        DbBusy: another writer held the lock for the whole busy timeout.
    """

    def size() -> int:
        return sum(p.stat().st_size for p in db_files(bus.path) if p.exists())

    before = size()
    bus.write(sql.fts_optimize)
    conn = bus.conn()
    # VACUUM needs the write lock like any write: wait for it, then DB_BUSY.
    retry(lambda: conn.execute("VACUUM"), bus.settings.busy_timeout_ms)
    with contextlib.suppress(sqlite3.OperationalError):
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return {"path": str(bus.path), "bytes_before": before, "bytes_after": size()}


def wipe(path: Path) -> list[Path]:
    """Delete the database file and its sidecars; returns the files removed.

    Does not open the database, so it also clears a file of another schema.
    """
    removed = []
    for p in db_files(path):
        try:
            p.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise InvalidArgument(f"cannot delete {p}: {exc.strerror}", field="db") from None
        removed.append(p)
    return removed


def peer_counts(bus: Bus) -> dict[str, int]:
    """Agents per topic id (joined or holding a cursor)."""
    return bus.read(sql.peer_counts)


def message_id_at_seq(bus: Bus, topic_id: str, seq: int) -> str:
    """The id of the message at ``seq`` in a topic.

    Raises:
        InvalidArgument: no message has that seq.
    """
    found = bus.read(lambda c: sql.message_id_at_seq(c, topic_id, seq))
    if found is None:
        raise InvalidArgument(f"the topic has no message #{seq}", field="reply_to")
    return found


def reply_ref(bus: Bus, topic_id: str, ref: str) -> str:
    """A reply target as people write it (``#12``, ``12`` or a message id) as a message id.

    Raises:
        InvalidArgument: a seq no message of the topic has.
    """
    clean = ref.strip().lstrip("#")
    if clean.isdigit() and len(clean) < 12:
        return message_id_at_seq(bus, topic_id, int(clean))
    return clean
