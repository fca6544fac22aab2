"""``agent-bus db …``: path, stats, check, backup, vacuum, wipe."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agent_bus import admin
from agent_bus.cli._common import (
    DbOption,
    JsonOption,
    ago,
    confirm,
    echo,
    emit_json,
    note,
    open_bus,
    settings_for,
)
from agent_bus.errors import InvalidArgument


def path(as_json: JsonOption = False, db: DbOption = None) -> None:
    """Print the path of the bus database in use (from --db, AGENT_BUS_DB or the default).

    Examples:

        agent-bus db path

        sqlite3 "$(agent-bus db path)" 'select count(*) from messages'
    """
    p = settings_for(db).db
    if as_json:
        emit_json({"path": str(p), "exists": p.exists()})
        return
    echo(str(p))
    if not p.exists():
        note("(the file does not exist yet; the first agent or command creates it)")


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def stats(as_json: JsonOption = False, db: DbOption = None) -> None:
    """Show counts (topics, messages, peers), sizes and the schema version.

    Examples:

        agent-bus db stats

        agent-bus db stats --json | jq .messages
    """
    admin.require_db(settings_for(db).db)
    with open_bus(db) as bus:
        data = admin.stats(bus)
    if as_json:
        emit_json(data)
        return
    rows = [
        ("path", data["path"]),
        ("schema version", str(data["schema_version"])),
        ("topics", f"{data['topics_open']} open, {data['topics_closed']} closed"),
        ("messages", f"{data['messages']} from {data['senders']} senders"),
        ("last message", ago(data["last_message_at"])),
        ("cursors", str(data["cursors"])),
        ("reservations", str(data["reservations"])),
        ("embeddings", "-" if data["embeddings"] is None else str(data["embeddings"])),
        ("file", f"{_size(data['file_bytes'])} (+ {_size(data['wal_bytes'])} WAL)"),
        ("free pages", f"{data['freelist_count']} of {data['page_count']}"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        echo(f"{k.ljust(width)}  {v}")


def check(
    repair: Annotated[
        bool,
        typer.Option(
            "--repair", help="Fix what can be fixed: rebuild the index, drop orphan rows."
        ),
    ] = False,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Check integrity, schema version and full-text index consistency; explain failures.

    Read-only (unless --repair), so it is safe while agents are working.
    Exit status 1 when a check fails.

    Examples:

        agent-bus db check

        agent-bus db check --repair
    """
    p = settings_for(db).db
    report = admin.check(p)
    if repair and not report.ok:
        with open_bus(db) as bus:
            for line in admin.repair(bus):
                note(f"repair: {line}")
        report = admin.check(p)
    if as_json:
        emit_json(report.as_dict())
    else:
        for c in report.checks:
            echo(f"{'ok  ' if c.ok else 'FAIL'}  {c.name}: {c.detail}")
            if not c.ok and c.fix:
                echo(f"      fix: {c.fix}")
    if not report.ok:
        failed = ", ".join(c.name for c in report.checks if not c.ok)
        raise InvalidArgument(f"{p} failed: {failed}", field="db")


def backup(
    file: Annotated[Path, typer.Argument(help="Where to write the copy (a new file).")],
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Copy the bus to FILE with SQLite's online backup: safe while agents write.

    The copy is one consistent snapshot in a single file (no WAL needed).

    Examples:

        agent-bus db backup ~/bus-$(date +%F).sqlite

        agent-bus db backup /tmp/bus.sqlite --force
    """
    admin.require_db(settings_for(db).db)
    with open_bus(db) as bus:
        result = admin.backup(bus, file, overwrite=force)
    if as_json:
        emit_json(result)
        return
    echo(f"backed up to {result['path']} ({_size(result['bytes'])}, {result['seconds']} s)")


def vacuum(as_json: JsonOption = False, db: DbOption = None) -> None:
    """Compact the database file and the full-text index.

    Writers wait while VACUUM runs (about a second per 100 MB); agents keep
    working afterwards, nothing is lost.

    Examples:

        agent-bus db vacuum
    """
    admin.require_db(settings_for(db).db)
    with open_bus(db) as bus:
        result = admin.vacuum(bus)
    if as_json:
        emit_json(result)
        return
    echo(f"vacuumed: {_size(result['bytes_before'])} -> {_size(result['bytes_after'])}")


def wipe(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Delete the bus database file and its -wal/-shm files: every topic and message.

    Stop the agents first; there is no undo (take `agent-bus db backup` first).

    Examples:

        agent-bus db wipe --yes

        agent-bus db wipe --db /tmp/scratch-bus.sqlite --yes
    """
    p = settings_for(db).db
    existing = [f for f in admin.db_files(p) if f.exists()]
    if not existing:
        if as_json:
            emit_json({"path": str(p), "removed": []})
        else:
            echo(f"nothing to delete: no database at {p}")
        return
    if not yes:
        note("will delete: " + ", ".join(str(f) for f in existing))
        if not confirm("Delete the whole bus?"):
            raise InvalidArgument("not deleted: confirm at the prompt or pass --yes", field="yes")
    removed = admin.wipe(p)
    if as_json:
        emit_json({"path": str(p), "removed": [str(f) for f in removed]})
        return
    echo(f"deleted {len(removed)} file(s): " + ", ".join(str(f) for f in removed))


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        no_args_is_help=True,
        context_settings={"help_option_names": ["-h", "--help"]},
        help="The database file: path, stats, check, backup, vacuum, wipe.",
    )
    group.command("path")(path)
    group.command("stats")(stats)
    group.command("check")(check)
    group.command("backup")(backup)
    group.command("vacuum")(vacuum)
    group.command("wipe")(wipe)
    app.add_typer(group, name="db")
