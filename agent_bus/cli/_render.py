"""Printing messages for people: rich markdown on a terminal, plain text elsewhere."""

from __future__ import annotations

import json
from collections.abc import Iterable

import typer

from agent_bus.cli._common import clock, console, is_tty, strip_controls
from agent_bus.models import Message

SENDER_STYLES = ("cyan", "magenta", "green", "yellow", "blue", "red")


class MessagePrinter:
    """Prints messages one by one (``show`` and ``watch`` share it)."""

    def __init__(self, *, raw: bool = False, as_json: bool = False, brief: bool = False) -> None:
        self.as_json = as_json
        tty = is_tty()
        self.rich = tty and not raw and not as_json
        # Bodies and names may hold escape sequences: never let them reach a terminal.
        self.sanitize = tty and not as_json
        self.brief = brief
        self._styles: dict[str, str] = {}
        self._seq_of: dict[str, int] = {}
        self._console = console() if self.rich else None

    def _style(self, sender: str) -> str:
        if sender not in self._styles:
            self._styles[sender] = SENDER_STYLES[len(self._styles) % len(SENDER_STYLES)]
        return self._styles[sender]

    def header(self, m: Message) -> str:
        parts = [f"#{m.seq}", m.sender]
        if m.message_type != "message":
            parts.append(m.message_type)
        parts.append(clock(m.created_at))
        if m.reply_to:
            parent = self._seq_of.get(m.reply_to)
            parts.append(f"reply to #{parent}" if parent else f"reply to {m.reply_to}")
        return " · ".join(parts)

    def print(self, m: Message) -> None:
        self._seq_of[m.message_id] = m.seq
        if self.as_json:
            typer.echo(json.dumps(m.model_dump(mode="json"), ensure_ascii=False))
            return
        if self.sanitize:
            m = _safe(m)
        if self._console is not None:
            self._print_rich(m)
            return
        if self.brief:
            first = m.content_markdown.strip().splitlines()[0] if m.content_markdown.strip() else ""
            typer.echo(f"{self.header(m)}: {first[:100]}")
            return
        typer.echo(f"── {self.header(m)}")
        typer.echo(m.content_markdown.rstrip("\n"))
        typer.echo("")

    def _print_rich(self, m: Message) -> None:
        from rich.markdown import Markdown
        from rich.text import Text

        assert self._console is not None
        head = Text()
        head.append(f"#{m.seq} ", style="dim")
        head.append(m.sender, style=f"bold {self._style(m.sender)}")
        if m.message_type != "message":
            head.append(f" [{m.message_type}]", style="bold")
        head.append(f"  {clock(m.created_at)}", style="dim")
        if m.reply_to:
            parent = self._seq_of.get(m.reply_to)
            head.append(f"  ↩ #{parent}" if parent else f"  ↩ {m.reply_to}", style="dim")
        self._console.print(head)
        if self.brief:
            first = m.content_markdown.strip().splitlines()[0] if m.content_markdown.strip() else ""
            self._console.print(Text(first[:100]), soft_wrap=True)
        else:
            self._console.print(Markdown(m.content_markdown))
        self._console.print()

    def print_all(self, messages: Iterable[Message]) -> None:
        for m in messages:
            self.print(m)


def _safe(m: Message) -> Message:
    """The message with control characters removed from every printed text field."""
    return m.model_copy(
        update={
            "sender": strip_controls(m.sender),
            "message_type": strip_controls(m.message_type),
            "content_markdown": strip_controls(m.content_markdown),
            "reply_to": None if m.reply_to is None else strip_controls(m.reply_to),
        }
    )
