"""``agent-bus topics …``: list, show, watch, presence, create, close, reopen, rename, delete."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from agent_bus import admin
from agent_bus.bus import Bus
from agent_bus.cli._common import (
    DbOption,
    JsonOption,
    TopicArg,
    ago,
    confirm,
    console,
    dump,
    echo,
    emit_json,
    for_terminal,
    is_tty,
    json_object,
    note,
    open_bus,
    plain_table,
    topic_label,
)
from agent_bus.cli._render import MessagePrinter
from agent_bus.errors import InvalidArgument
from agent_bus.models import Message

WATCH_WAIT_SECONDS = 30.0  # one long wait; Ctrl-C interrupts it at once


def list_topics(
    status: Annotated[
        str, typer.Option(help="Which topics: open, closed or all.", case_sensitive=False)
    ] = "open",
    name: Annotated[
        str | None, typer.Option("--name", help="Only names matching this glob (e.g. 'rev*').")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many topics.")] = 200,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """List topics with message counts, peers and last activity, newest first.

    Examples:

        agent-bus topics list

        agent-bus topics list --status all --name 'review-*' --json
    """
    with open_bus(db) as bus:
        topics = bus.topic_list(status.lower(), name_glob=name, limit=limit)
        peers = admin.peer_counts(bus)
    if as_json:
        rows = [{**dump(t), "peers": peers.get(t.topic_id, 0)} for t in topics]
        emit_json({"topics": rows})
        return
    if not topics:
        note(f"no {status.lower() if status.lower() != 'all' else ''} topics".replace("  ", " "))
        return
    headers = ["NAME", "ID", "STATUS", "MESSAGES", "PEERS", "LAST ACTIVITY"]
    rows_txt = [
        [
            t.name,
            t.topic_id,
            t.status,
            str(t.message_count),
            str(peers.get(t.topic_id, 0)),
            ago(t.last_message_at or t.created_at),
        ]
        for t in topics
    ]
    if is_tty():
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, header_style="bold")
        for i, h in enumerate(headers):
            table.add_column(h, justify="right" if i in (3, 4) else "left")
        for t, row in zip(topics, rows_txt, strict=True):
            style = "dim" if t.status == "closed" else None
            table.add_row(*(Text(for_terminal(c)) for c in row), style=style)
        console().print(table)
    else:
        echo(plain_table(headers, rows_txt, right={3, 4}))


def _select(bus: Bus, topic_id: str, since: int | None, last: int | None) -> list[Message]:
    if last is not None:
        newest = bus.messages(topic_id, after_seq=since or 0, limit=last, newest_first=True)
        return list(reversed(newest))
    return bus.messages(topic_id, after_seq=since or 0)


def show(
    topic: TopicArg,
    since: Annotated[
        int | None, typer.Option(min=0, help="Only messages after this seq.", show_default=False)
    ] = None,
    last: Annotated[
        int | None,
        typer.Option("--last", "-n", min=1, help="Only the last N messages.", show_default=False),
    ] = None,
    raw: Annotated[bool, typer.Option("--raw", help="Plain text, no markdown rendering.")] = False,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Print a topic's thread; rendered markdown on a terminal, plain text with --raw.

    Examples:

        agent-bus topics show review-auth

        agent-bus topics show review-auth --last 5 --raw

        agent-bus topics show 3f2a9c --since 40 --json
    """
    with open_bus(db) as bus:
        t = bus.resolve_ref(topic)
        messages = _select(bus, t.topic_id, since, last)
    if as_json:
        emit_json({"topic": dump(t), "messages": dump(messages)})
        return
    printer = MessagePrinter(raw=raw)
    if printer.rich:
        from rich.markup import escape

        console().rule(f"[bold]{escape(for_terminal(t.name))}[/] · {t.topic_id} · {t.status}")
    else:
        echo(f"# {topic_label(t)}")
        echo("")
    if not messages:
        note("no messages")
    printer.print_all(messages)


async def _follow(bus: Bus, topic_id: str, after: int, printer: MessagePrinter) -> None:
    while True:
        batch = await bus.run(bus.messages, topic_id, after_seq=after, limit=500)
        for m in batch:
            printer.print(m)
            after = m.seq
        if batch:
            typer.get_text_stream("stdout").flush()
            continue
        await bus.wait_for_messages(topic_id, after, WATCH_WAIT_SECONDS)


def watch(
    topic: TopicArg,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", "-f", "--tail", help="Keep running and print messages as they arrive."
        ),
    ] = False,
    since: Annotated[
        int | None,
        typer.Option(min=0, help="Start after this seq (default: the last N).", show_default=False),
    ] = None,
    last: Annotated[
        int, typer.Option("--last", "-n", min=0, help="Show the last N messages first.")
    ] = 10,
    brief: Annotated[
        bool, typer.Option("--brief", help="One line per message (first line of the body).")
    ] = False,
    full: Annotated[bool, typer.Option("--full", hidden=True)] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON message object per line (JSONL).")
    ] = False,
    db: DbOption = None,
) -> None:
    """Print a topic's recent messages and, with --follow, new ones as they arrive.

    Following uses the same wake-up as agents' sync (no busy polling): a
    message shows up milliseconds after it is committed. Ctrl-C stops.

    Examples:

        agent-bus topics watch review-auth --follow

        agent-bus topics watch review-auth -f -n 0 --json | jq .content_markdown
    """
    del full  # the reference's flag; full bodies are the default here
    printer = MessagePrinter(as_json=as_json, brief=brief)
    with open_bus(db) as bus:
        t = bus.resolve_ref(topic)
        if since is not None:
            initial = bus.messages(t.topic_id, after_seq=since)
            after = initial[-1].seq if initial else since
        elif last > 0:
            initial = _select(bus, t.topic_id, None, last)
            after = initial[-1].seq if initial else 0
        else:
            initial = []
            top = bus.messages(t.topic_id, newest_first=True, limit=1)
            after = top[0].seq if top else 0
        if not as_json:
            note(f"watching {topic_label(t)}" + (" — Ctrl-C to stop" if follow else ""))
        printer.print_all(initial)
        typer.get_text_stream("stdout").flush()
        if not follow:
            return
        try:
            asyncio.run(_follow(bus, t.topic_id, after, printer))
        except KeyboardInterrupt:
            if not as_json:
                note("stopped")
            raise typer.Exit(0) from None


def presence(
    topic: TopicArg,
    window: Annotated[
        int, typer.Option(min=1, help="Peers seen within this many seconds count as active.")
    ] = 300,
    limit: Annotated[int, typer.Option(min=1, help="At most this many peers.")] = 200,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Show which agents were active on a topic recently (by their sync cursor).

    Examples:

        agent-bus topics presence review-auth

        agent-bus topics presence review-auth --window 60 --json
    """
    with open_bus(db) as bus:
        t = bus.resolve_ref(topic)
        now, peers = bus.topic_presence(t.topic_id, window, limit)
    if as_json:
        emit_json(
            {
                "topic_id": t.topic_id,
                "name": t.name,
                "status": t.status,
                "window_seconds": window,
                "now": now,
                "peers": dump(peers),
                "count": len(peers),
            }
        )
        return
    note(f"{topic_label(t)}: {len(peers)} active in the last {window}s")
    if peers:
        rows = [[p.agent_name, str(p.last_seq), ago(p.updated_at, now)] for p in peers]
        echo(plain_table(["AGENT", "LAST SEQ", "SEEN"], rows, right={1}))


def create(
    name: Annotated[str, typer.Argument(help="Topic name, e.g. review-auth.")],
    new: Annotated[
        bool,
        typer.Option("--new", help="Always create, even if an open topic has this name."),
    ] = False,
    metadata: Annotated[
        str | None,
        typer.Option(help="JSON object stored with the topic.", show_default=False),
    ] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Create a topic, or reuse the open topic of that name (as agents' topic_create does).

    Examples:

        agent-bus topics create review-auth

        agent-bus topics create review-auth --new --metadata '{"repo": "api"}'
    """
    meta = json_object(metadata, "metadata") if metadata is not None else None
    with open_bus(db) as bus:
        topic, created = bus.topic_create(name, meta, "new" if new else "reuse")
    if as_json:
        emit_json({**dump(topic), "created": created})
        return
    echo(f"{'created' if created else 'reusing open topic'} {topic.name} ({topic.topic_id})")


def close(
    topic: TopicArg,
    reason: Annotated[
        str | None, typer.Option(help="Why it was closed (shown to agents).", show_default=False)
    ] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Close a topic: agents can still read it but no longer post to it.

    Examples:

        agent-bus topics close review-auth --reason "merged in #412"
    """
    with open_bus(db) as bus:
        t = bus.resolve_ref(topic)
        closed, already = bus.topic_close(t.topic_id, reason)
    if as_json:
        emit_json({**dump(closed), "already_closed": already})
        return
    echo(f"{'already closed' if already else 'closed'}: {topic_label(closed)}")


def reopen(topic: TopicArg, as_json: JsonOption = False, db: DbOption = None) -> None:
    """Open a closed topic again, so agents can post to it (its close reason is cleared).

    Examples:

        agent-bus topics reopen review-auth
    """
    with open_bus(db) as bus:
        t = bus.resolve_ref(topic)
        opened, already = bus.topic_reopen(t.topic_id)
    if as_json:
        emit_json({**dump(opened), "already_open": already})
        return
    echo(f"{'already open' if already else 'reopened'}: {topic_label(opened)}")


def rename(
    topic: TopicArg,
    new_name: Annotated[str, typer.Argument(help="The new name.")],
    rewrite_messages: Annotated[
        bool,
        typer.Option(
            "--rewrite-messages/--no-rewrite-messages",
            help="Also replace the old name inside message bodies.",
        ),
    ] = True,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Rename a topic (by default also where message bodies mention the old name).

    Examples:

        agent-bus topics rename review-auth review-auth-v2

        agent-bus topics rename 3f2a9c release-notes --no-rewrite-messages
    """
    with open_bus(db) as bus:
        t = bus.resolve_ref(topic)
        report = admin.rename_topic(bus, t.topic_id, new_name, rewrite_messages=rewrite_messages)
    if as_json:
        emit_json(report.as_dict())
        return
    if not report.changed:
        echo(f"unchanged: {report.topic.topic_id} is already named {report.topic.name!r}")
        return
    echo(
        f"renamed {report.topic.topic_id}: {report.old_name!r} -> {report.topic.name!r}"
        f" ({report.messages_rewritten} messages rewritten)"
    )


def delete(
    topic: TopicArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Delete a topic with its messages, cursors, name reservations, index and embeddings.

    There is no undo: export it first if you may need it.

    Examples:

        agent-bus export review-auth --format jsonl -o review-auth.jsonl

        agent-bus topics delete review-auth --yes
    """
    with open_bus(db) as bus:
        t = bus.resolve_ref(topic)
        if not yes:
            count = len(bus.messages(t.topic_id))
            note(f"topic {topic_label(t)} with {count} messages will be deleted for good")
            if not confirm("Delete it?"):
                raise InvalidArgument(
                    "not deleted: confirm at the prompt or pass --yes", field="yes"
                )
        report = admin.delete_topic(bus, t.topic_id)
    if as_json:
        emit_json(report.as_dict())
        return
    echo(
        f"deleted {report.name} ({report.topic_id}): {report.messages} messages, "
        f"{report.cursors} cursors, {report.reservations} reservations, "
        f"{report.embeddings} embedding rows"
    )


def _group(reference: bool) -> typer.Typer:
    group = typer.Typer(
        no_args_is_help=True,
        context_settings={"help_option_names": ["-h", "--help"]},
        help="Browse and manage topics: list, show, watch, presence, create, close, "
        "reopen, rename, delete.",
    )
    group.command("list")(list_topics)
    group.command("show")(show)
    group.command("watch")(watch)
    group.command("presence")(presence)
    group.command("create")(create)
    group.command("close")(close)
    group.command("reopen")(reopen)
    group.command("rename")(rename)
    group.command("delete")(delete)
    if reference:
        from agent_bus.cli.transfer import export

        group.command("export", hidden=True)(export)
    return group


def register(app: typer.Typer) -> None:
    app.add_typer(_group(reference=False), name="topics")


def register_reference(app: typer.Typer) -> None:
    """The reference CLI also had ``topics export``."""
    app.add_typer(_group(reference=True), name="topics")
