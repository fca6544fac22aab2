"""What every command module shares: options, opening the bus, output helpers.

Output rules: ``--json`` prints JSON built from the pydantic models and
nothing else on stdout; rich (colours, tables, rendered markdown) only when
stdout is a terminal; errors go to stderr as one line (see ``cli.__init__``).
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click.globals import get_current_context

from agent_bus.bus import Bus
from agent_bus.errors import BusError, InvalidArgument
from agent_bus.models import Topic
from agent_bus.settings import BusSettings, load_settings
from agent_bus.timefmt import ago as ago

DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="Bus database file (default: $AGENT_BUS_DB, else ~/.agent_bus/agent_bus.sqlite).",
        show_default=False,
        rich_help_panel="Database",
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (from the wire models) instead of text.")
]


def db_override(db: Path | None) -> Path | None:
    """The --db of the command, else a --db/--db-path given before the command group."""
    if db is not None:
        return db
    ctx = get_current_context(silent=True)
    while ctx is not None:
        if isinstance(ctx.obj, dict) and ctx.obj.get("db") is not None:
            return Path(ctx.obj["db"])
        ctx = ctx.parent
    return None


def settings_for(db: Path | None) -> BusSettings:
    return load_settings(db=db_override(db))


@contextlib.contextmanager
def open_bus(db: Path | None) -> Iterator[Bus]:
    """A `Bus` on the chosen database, schema checked, closed on exit."""
    bus = Bus(settings_for(db))
    try:
        bus.ensure_ready()
        yield bus
    finally:
        bus.close()


def is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def console():  # noqa: ANN201 - rich.console.Console, imported lazily
    from rich.console import Console

    return Console(highlight=False)


# C0 and C1 control characters except newline and tab: ESC and CSI start escape sequences
# (colours, cursor moves, window titles, OSC 52 clipboard writes), BEL rings, CR overwrites.
_CONTROL_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_controls(text: str) -> str:
    """``text`` without C0/C1 control characters, keeping ``\\n`` and ``\\t``."""
    return _CONTROL_CHARS.sub("", text)


def for_terminal(text: str) -> str:
    """Text from the database made safe to print: control characters dropped on a terminal.

    Pipes and files get the text unchanged (the data stays intact); ``--json`` never
    comes through here.
    """
    return strip_controls(text) if is_tty() else text


def echo(text: str = "") -> None:
    typer.echo(for_terminal(text))


def note(text: str) -> None:
    """A remark for the person at the terminal (stderr, so pipes stay clean)."""
    typer.echo(text, err=True)


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def dump(model: Any) -> Any:
    """JSON-ready data of a model or a list of models."""
    if isinstance(model, list):
        return [dump(m) for m in model]
    if hasattr(model, "model_dump"):
        return model.model_dump(mode="json")
    return model


def clock(ts: float) -> str:
    """Local time of a message: HH:MM:SS today, else date and time."""
    dt = datetime.fromtimestamp(ts)
    if dt.date() == datetime.now().date():
        return dt.strftime("%H:%M:%S")
    return dt.strftime("%Y-%m-%d %H:%M")


def plain_table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    """Aligned columns without colour, for pipes and files."""
    right = right or set()
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

    def line(cells: list[str]) -> str:
        out = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def topic_label(topic: Topic) -> str:
    return f"{topic.name} ({topic.topic_id}, {topic.status})"


def confirm(question: str) -> bool:
    """Ask on the terminal; without one, refuse (the caller tells the user about --yes).

    Raises:
        typer.Abort: the person answered no (the CLI reports ABORTED).
    """
    if not sys.stdin.isatty():
        return False
    return typer.confirm(question, default=False, abort=True)


class Unavailable(BusError):
    """A feature whose module or dependency is not installed."""

    code = "UNAVAILABLE"


TopicArg = Annotated[
    str,
    typer.Argument(
        help="Topic id, id prefix, or name (the newest open topic of that name).",
        show_default=False,
    ),
]


def json_object(text: str, field: str) -> dict:
    """Parse a --metadata style option: a JSON object, or a coded error."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(f"--{field} is not valid JSON: {exc.msg}", field=field) from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"--{field} must be a JSON object", field=field)
    return value
