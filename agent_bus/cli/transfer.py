"""``agent-bus export`` and ``agent-bus import``: take a thread elsewhere and bring it back."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from agent_bus import export as exporter
from agent_bus.cli._common import (
    DbOption,
    JsonOption,
    TopicArg,
    echo,
    emit_json,
    note,
    open_bus,
)
from agent_bus.errors import InvalidArgument
from agent_bus.models import Topic


@contextlib.contextmanager
def _progress(total: int, label: str) -> Iterator:
    """A progress callback (advance by n); a bar on a terminal's stderr for big jobs."""
    if total < 2000 or not sys.stderr.isatty():
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _write_atomic(path: Path, text: str) -> None:
    path = path.expanduser()
    if not path.parent.is_dir():
        raise InvalidArgument(f"directory {path.parent} does not exist", field="output")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise InvalidArgument(f"cannot write {path}: {exc.strerror}", field="output") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export(
    topic: TopicArg,
    fmt: Annotated[
        str,
        typer.Option("--format", "-f", help="md (transcript), json or jsonl (both round-trip)."),
    ] = "md",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write to this file instead of stdout.", show_default=False
        ),
    ] = None,
    since: Annotated[
        int,
        typer.Option("--since", "--after-seq", min=0, help="Only messages after this seq."),
    ] = 0,
    include_metadata: Annotated[
        bool, typer.Option(help="md: also print each message's metadata JSON.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Export a topic as a markdown transcript, a JSON document or JSONL.

    json and jsonl keep every field, so `agent-bus import` can restore them.

    Examples:

        agent-bus export review-auth > review-auth.md

        agent-bus export review-auth --format jsonl -o review-auth.jsonl

        agent-bus export review-auth -f json --since 120 | jq '.messages | length'
    """
    fmt = exporter.normalize_format(fmt)
    with open_bus(db) as bus:
        t: Topic = bus.resolve_ref(topic)
        text = exporter.export_text(bus, t, fmt, after_seq=since, include_metadata=include_metadata)
    if output is None:
        typer.echo(text, nl=False)
        return
    _write_atomic(output, text)
    note(f"exported {t.name} ({t.topic_id}) as {fmt} to {output}")


def import_(
    file: Annotated[Path, typer.Argument(help="A JSONL (or JSON) file from `agent-bus export`.")],
    into: Annotated[
        str | None,
        typer.Option(
            "--into",
            help="Import into this existing topic instead of the export's own.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Restore a JSONL/JSON export; messages already present (by id) are skipped.

    Without --into, the export's topic is recreated with its id, name and
    status if this bus does not have it. Running it twice changes nothing.

    Examples:

        agent-bus import review-auth.jsonl

        agent-bus import review-auth.jsonl --into review-auth-v2 --db ~/other-bus.sqlite
    """
    loaded = exporter.load_export(file)
    with open_bus(db) as bus:
        target = bus.resolve_ref(into) if into is not None else None
        with _progress(len(loaded.messages), f"importing {file.name}") as advance:
            report = exporter.import_jsonl(bus, loaded, into=target, progress=advance)
    if as_json:
        emit_json(report.as_dict())
        return
    created = " (created)" if report.created_topic else ""
    echo(
        f"imported {report.imported} of {report.total} messages into {report.topic_name} "
        f"({report.topic_id}){created}; {report.skipped} already present"
        + (f", {report.renumbered} moved to new seqs" if report.renumbered else "")
    )


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("import")(import_)
