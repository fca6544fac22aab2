"""``agent-bus send``: a person posts into a topic as a named peer."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from agent_bus import admin
from agent_bus.cli._common import (
    DbOption,
    JsonOption,
    TopicArg,
    dump,
    echo,
    emit_json,
    json_object,
    open_bus,
)
from agent_bus.errors import InvalidArgument


def _read_text(text: str | None) -> str:
    if text is not None and text != "-":
        return text
    if text is None and sys.stdin.isatty():
        raise InvalidArgument("give the message text, or - to read it from stdin", field="text")
    try:
        return sys.stdin.read()
    except UnicodeDecodeError:
        raise InvalidArgument("stdin is not UTF-8 text", field="text") from None


def send(
    topic: TopicArg,
    text: Annotated[
        str | None,
        typer.Argument(
            help="Message body (markdown); '-' or nothing reads stdin.", show_default=False
        ),
    ] = None,
    sender: Annotated[
        str,
        typer.Option(
            "--as",
            help="Your name on the topic, e.g. alice or 'human reviewer'.",
            show_default=False,
        ),
    ] = ...,  # type: ignore[assignment]
    reply_to: Annotated[
        str | None,
        typer.Option(
            "--reply-to",
            help="Message id, or #SEQ / SEQ of the message you answer.",
            show_default=False,
        ),
    ] = None,
    message_type: Annotated[
        str, typer.Option("--type", help="message, question, answer, review, …")
    ] = "message",
    metadata: Annotated[
        str | None, typer.Option(help="JSON object stored with the message.", show_default=False)
    ] = None,
    client_message_id: Annotated[
        str | None,
        typer.Option(
            help="Idempotency key: sending again with it does not post twice.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Post a message into a topic as a named peer, so you can steer the agents.

    The agents receive it on their next sync like any peer's message.

    Examples:

        agent-bus send review-auth --as alice "Please also check the retry path."

        agent-bus send review-auth --as alice --type question --reply-to '#12' "Why?"

        git diff | agent-bus send review-auth --as alice -
    """
    body = _read_text(text)
    item: dict = {"content_markdown": body, "message_type": message_type}
    if metadata is not None:
        item["metadata"] = json_object(metadata, "metadata")
    if client_message_id is not None:
        item["client_message_id"] = client_message_id
    with open_bus(db) as bus:
        t = bus.resolve_ref(topic)
        if reply_to is not None:
            item["reply_to"] = admin.reply_ref(bus, t.topic_id, reply_to)
        items = bus.check_outbox([item])
        sent = bus.post(t.topic_id, sender, items)
    if as_json:
        emit_json({"topic_id": t.topic_id, "sent": dump(sent)})
        return
    for s in sent:
        m = s.message
        what = "already sent" if s.duplicate else "sent"
        echo(f"{what} #{m.seq} to {t.name} ({t.topic_id}) as {m.sender}: {m.message_id}")


def register(app: typer.Typer) -> None:
    app.command("send")(send)
