"""``agent-bus search``: find messages across topics (full-text, semantic or hybrid)."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from agent_bus.cli._common import (
    DbOption,
    JsonOption,
    ago,
    console,
    dump,
    echo,
    emit_json,
    for_terminal,
    is_tty,
    note,
    open_bus,
)
from agent_bus.errors import InvalidArgument

_HIGHLIGHT = re.compile(r"\*\*(.+?)\*\*", re.S)


def search(
    query: Annotated[
        str | None,
        typer.Argument(help="Words, identifiers or a phrase to look for.", show_default=False),
    ] = None,
    mode: Annotated[
        str, typer.Option(help="hybrid (both), fts (words) or semantic (meaning).")
    ] = "hybrid",
    topic: Annotated[
        str | None,
        typer.Option(
            "--topic", "-t", help="Only this topic (id, prefix or name).", show_default=False
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most N results.")] = 20,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="llm embedding model for semantic/hybrid.", show_default=False
        ),
    ] = None,
    content: Annotated[
        bool, typer.Option("--content", help="Print whole message bodies, not snippets.")
    ] = False,
    like: Annotated[
        str | None,
        typer.Option(
            "--like",
            metavar="MESSAGE_ID",
            help="Instead of a query: the messages nearest in meaning to this one.",
            show_default=False,
        ),
    ] = None,
    sender: Annotated[
        str | None,
        typer.Option("--sender", "-s", help="Only messages from this sender.", show_default=False),
    ] = None,
    message_type: Annotated[
        str | None,
        typer.Option(
            "--type", help="Only messages of this type (decision, question, …).", show_default=False
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="WHEN",
            help="Only messages created after WHEN: 2d, 90m, 2026-12-01, ISO time, unix seconds.",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            metavar="WHEN",
            help="Only messages created before WHEN (same forms as --since).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Search messages; results show topic, seq, sender and a highlighted snippet.

    Examples:

        agent-bus search "retry backoff"

        agent-bus search ERR_TIMEOUT --mode fts --topic review-auth

        agent-bus search "why did the migration fail" --limit 5 --json

        agent-bus search "flaky test" --mode semantic --model agent-bus-minilm

        agent-bus search "rollback plan" --sender reviewer --type decision --since 7d

        agent-bus search --like 3f9c2a1b7e04   # "was this discussed before, elsewhere?"
    """
    with open_bus(db) as bus:
        if (query is None) == (like is None):
            raise InvalidArgument("give a query or --like MESSAGE_ID (one of them)", field="query")
        topic_id = bus.resolve_ref(topic).topic_id if topic is not None else None
        filtered = any(v is not None for v in (sender, message_type, since, until))
        if like is not None:
            if filtered:
                raise InvalidArgument(
                    "--sender, --type, --since and --until filter a query, not --like",
                    field="like",
                )
            results, warnings = bus.related(
                message_id=like, in_topic=topic_id, limit=limit, include_content=content
            )
        else:
            results, warnings = bus.search(
                query,
                topic_id=topic_id,
                mode=mode,
                limit=limit,
                model=model,
                include_content=content,
                sender=sender,
                message_type=message_type,
                created_after=since,
                created_before=until,
            )
    if as_json:
        emit_json(
            {
                "query": query,
                "like": like,
                "mode": "semantic" if like is not None else mode,
                "topic_id": topic_id,
                "results": dump(results),
                "count": len(results),
                "warnings": dump(warnings),
            }
        )
        return
    for w in warnings:
        note(f"note: {w.message or w.code}")
    if not results:
        note("no matches")
        return
    rich = is_tty()
    out = console() if rich else None
    for r in results:
        head = f"{r.topic_name} #{r.seq} · {r.sender} · {ago(r.created_at)}  ({r.message_id})"
        body = (r.content_markdown if content and r.content_markdown else r.snippet).strip()
        head, body = for_terminal(head), for_terminal(body)
        if out is not None:
            from rich.markup import escape

            out.print(f"[bold]{escape(head)}[/]")
            highlighted = _HIGHLIGHT.sub(lambda m: f"[reverse]{m.group(1)}[/]", escape(body))
            out.print(f"  {highlighted}\n")
        else:
            echo(head)
            echo("  " + body.replace("\n", "\n  "))
            echo("")


def register(app: typer.Typer) -> None:
    app.command("search")(search)
