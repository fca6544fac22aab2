"""Export a topic as markdown, JSON or JSONL, and import a JSON/JSONL export back.

Shared by the CLI (``agent-bus export`` / ``import``) and the web UI. The
JSON shapes come from the pydantic models, so every field round-trips:

- JSONL: one object per line; the first is the topic (``"kind": "topic"`` plus
  the `Topic` fields and ``format``/``version``/``exported_at``), then one
  ``"kind": "message"`` line per `Message`, in seq order.
- JSON: ``{"format", "version", "exported_at", "topic": {…}, "messages": […]}``.
- Markdown: a readable transcript, one section per message (seq, sender,
  type, time, reply link, body).

Import is idempotent by message id: messages already in the database are
skipped, so an interrupted import can simply be run again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from agent_bus.bus import Bus
from agent_bus.errors import InvalidArgument
from agent_bus.models import Message, Topic
from agent_bus.service.checks import MAX_MESSAGE_ID, MAX_TOPIC_NAME, check_name
from agent_bus.service.messages import check_record, insert_messages
from agent_bus.store import queries

EXPORT_FORMAT = "agent-bus-export"
EXPORT_VERSION = 1
FORMATS = ("md", "json", "jsonl")
FORMAT_ALIASES = {"markdown": "md", "ndjson": "jsonl"}
PAGE = 1000  # messages per read transaction
IMPORT_BATCH = 500  # messages per write transaction: keeps the write lock short

Progress = Callable[[int], None]


def normalize_format(fmt: str) -> str:
    """``md``/``markdown``, ``json`` or ``jsonl``/``ndjson``.

    Raises:
        InvalidArgument: any other format.
    """
    value = FORMAT_ALIASES.get(fmt.lower(), fmt.lower())
    if value not in FORMATS:
        raise InvalidArgument(
            f"unknown export format {fmt!r}; use one of: md, json, jsonl", field="format"
        )
    return value


def iter_messages(
    bus: Bus, topic_id: str, *, after_seq: int = 0, until_seq: int | None = None
) -> Iterator[Message]:
    """A topic's messages in seq order (after ``after_seq``, up to ``until_seq`` inclusive),
    read in pages (short read transactions)."""
    after = after_seq
    while True:
        page = bus.messages(topic_id, after_seq=after, limit=PAGE)
        for m in page:
            if until_seq is not None and m.seq > until_seq:
                return
            yield m
        if len(page) < PAGE:
            return
        after = page[-1].seq


def _utc(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def render_markdown(
    topic: Topic, messages: Iterable[Message], *, include_metadata: bool = False
) -> str:
    """A readable markdown transcript of ``messages`` (no database access)."""
    msgs = list(messages)
    by_id = {m.message_id: m for m in msgs}
    senders = sorted({m.sender for m in msgs})
    status = topic.status
    if topic.status == "closed":
        status += f" ({_utc(topic.closed_at)}" + (
            f": {topic.close_reason})" if topic.close_reason else ")"
        )
    span = f" (seq {msgs[0].seq}–{msgs[-1].seq})" if msgs else ""
    lines = [
        f"# {topic.name}",
        "",
        f"- **Topic ID:** `{topic.topic_id}`",
        f"- **Status:** {status}",
        f"- **Created:** {_utc(topic.created_at)}",
        f"- **Messages:** {len(msgs)}{span}",
        f"- **Participants:** {', '.join(senders) if senders else '-'}",
        f"- **Exported:** {_utc(time.time())}",
        "",
    ]
    for m in msgs:
        meta = [_utc(m.created_at), f"id `{m.message_id}`"]
        if m.reply_to:
            parent = by_id.get(m.reply_to)
            if parent is not None:
                meta.append(f"reply to [#{parent.seq} {parent.sender}](#msg-{parent.seq})")
            else:
                meta.append(f"reply to `{m.reply_to}`")
        lines += [
            "---",
            "",
            f'<a id="msg-{m.seq}"></a>',
            f"### #{m.seq} · {m.sender} · {m.message_type}",
            "",
            "*" + " · ".join(meta) + "*",
            "",
            m.content_markdown.rstrip("\n"),
            "",
        ]
        if include_metadata and m.metadata:
            lines += [
                "```json",
                json.dumps(m.metadata, indent=2, ensure_ascii=False),
                "```",
                "",
            ]
    return "\n".join(lines)


def export_markdown(
    bus: Bus,
    topic: Topic,
    *,
    after_seq: int = 0,
    until_seq: int | None = None,
    include_metadata: bool = False,
) -> str:
    """The topic as a markdown transcript."""
    msgs = iter_messages(bus, topic.topic_id, after_seq=after_seq, until_seq=until_seq)
    return render_markdown(topic, msgs, include_metadata=include_metadata)


def topic_record(topic: Topic) -> dict[str, Any]:
    """The JSONL header line of an export."""
    return {
        "kind": "topic",
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": time.time(),
        **topic.model_dump(mode="json"),
    }


def message_record(message: Message) -> dict[str, Any]:
    return {"kind": "message", **message.model_dump(mode="json")}


def iter_records(
    bus: Bus, topic: Topic, *, after_seq: int = 0, until_seq: int | None = None
) -> Iterator[dict[str, Any]]:
    """The JSONL records of an export, streamed (topic first, then messages)."""
    yield topic_record(topic)
    for m in iter_messages(bus, topic.topic_id, after_seq=after_seq, until_seq=until_seq):
        yield message_record(m)


def export_records(bus: Bus, topic: Topic, *, after_seq: int = 0) -> list[dict[str, Any]]:
    """The JSONL records of an export (topic first, then messages in seq order)."""
    return list(iter_records(bus, topic, after_seq=after_seq))


def export_json(
    bus: Bus, topic: Topic, *, after_seq: int = 0, until_seq: int | None = None
) -> dict[str, Any]:
    """The JSON export document."""
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": time.time(),
        "topic": topic.model_dump(mode="json"),
        "messages": [
            m.model_dump(mode="json")
            for m in iter_messages(bus, topic.topic_id, after_seq=after_seq, until_seq=until_seq)
        ],
    }


def write_jsonl(records: Iterable[dict[str, Any]], out: IO[str]) -> int:
    """Write one JSON object per line; returns the number of lines."""
    n = 0
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
        n += 1
    return n


def export_text(
    bus: Bus,
    topic: Topic,
    fmt: str,
    *,
    after_seq: int = 0,
    until_seq: int | None = None,
    include_metadata: bool = False,
) -> str:
    """The export in ``fmt`` (md, json or jsonl) as one string; ``after_seq``/``until_seq``
    select a range of messages (the web's "export selection")."""
    fmt = normalize_format(fmt)
    span = {"after_seq": after_seq, "until_seq": until_seq}
    if fmt == "md":
        return export_markdown(bus, topic, **span, include_metadata=include_metadata)
    if fmt == "json":
        return json.dumps(export_json(bus, topic, **span), indent=2) + "\n"
    return "".join(
        json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n"
        for r in iter_records(bus, topic, **span)
    )


# --- import ---------------------------------------------------------------------------


@dataclass
class ImportReport:
    topic_id: str
    topic_name: str
    created_topic: bool
    total: int
    imported: int
    skipped: int
    renumbered: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_export(path: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Parse a JSON or JSONL export file into (topic fields or None, message dicts).

    Raises:
        InvalidArgument: unreadable file, bad JSON (with the line number), or not an export.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidArgument(f"cannot read {path}: no such file", field="file") from None
    except IsADirectoryError:
        raise InvalidArgument(f"cannot read {path}: it is a directory", field="file") from None
    except UnicodeDecodeError:
        raise InvalidArgument(f"cannot read {path}: not UTF-8 text", field="file") from None
    except OSError as exc:
        raise InvalidArgument(f"cannot read {path}: {exc.strerror}", field="file") from None
    stripped = text.lstrip()
    if stripped.startswith("{") and "\n{" not in stripped.rstrip():
        # a single JSON document (the json export, possibly pretty-printed)
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("messages"), list):
            topic = doc.get("topic")
            return (topic if isinstance(topic, dict) else None), doc["messages"]
    topic: dict[str, Any] | None = None
    messages: list[dict[str, Any]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise InvalidArgument(
                f"{path}:{lineno}: not a JSON line ({exc.msg}); expected an agent-bus "
                "JSON or JSONL export",
                field="file",
            ) from None
        if not isinstance(record, dict):
            raise InvalidArgument(f"{path}:{lineno}: expected a JSON object", field="file")
        kind = record.get("kind", "message" if "message_id" in record else None)
        if kind == "topic":
            topic = record
        elif kind == "message":
            record = dict(record)
            record["_line"] = lineno
            messages.append(record)
        else:
            raise InvalidArgument(
                f"{path}:{lineno}: neither a topic nor a message record", field="file"
            )
    if topic is None and not messages:
        raise InvalidArgument(f"{path} holds no topic or messages", field="file")
    return topic, messages


def _parse_messages(raw: list[dict[str, Any]], source: str) -> list[tuple[str, Message]]:
    """(where, message) pairs in seq order; ``where`` names the file and line of the record."""
    out = []
    for i, record in enumerate(raw):
        where = f"{source}:{record.get('_line', i + 1)}"
        fields = {k: v for k, v in record.items() if k not in ("kind", "_line")}
        seq = fields.get("seq")
        # Checked on the raw value: the model would accept "3", 3.0 or true.
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
            raise InvalidArgument(
                f"{where}: bad message record: seq: must be an integer >= 1 (got {seq!r})",
                field="file",
            )
        try:
            out.append((where, Message.model_validate(fields)))
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"]) or "message"
            raise InvalidArgument(
                f"{where}: bad message record: {loc}: {err['msg']}", field="file"
            ) from None
    return sorted(out, key=lambda pair: pair[1].seq)


@dataclass
class ExportFile:
    """A parsed export: its topic (None for a bare list of messages) and messages by seq.

    ``sources`` names each message's file and line (same order), for error messages.
    """

    topic: Topic | None
    messages: list[Message]
    sources: list[str] = field(default_factory=list)


def load_export(path: Path) -> ExportFile:
    """Read and validate a JSON or JSONL export file.

    Raises:
        InvalidArgument: unreadable or malformed file (the message names the line).
    """
    topic_fields, raw = read_export(path)
    pairs = _parse_messages(raw, str(path))
    topic = None
    if topic_fields is not None:
        try:
            topic = Topic.model_validate(
                {k: v for k, v in topic_fields.items() if k in Topic.model_fields}
            )
        except ValidationError as exc:
            err = exc.errors()[0]
            raise InvalidArgument(
                f"{path}: bad topic record: {'.'.join(map(str, err['loc']))}: {err['msg']}",
                field="file",
            ) from None
        try:
            topic = topic.model_copy(
                update={
                    "topic_id": check_name(topic.topic_id, "topic_id", MAX_MESSAGE_ID),
                    "name": check_name(topic.name, "name", MAX_TOPIC_NAME),
                }
            )
        except InvalidArgument as exc:
            raise InvalidArgument(
                f"{path}: bad topic record: {exc.message}", field="file"
            ) from None
    return ExportFile(topic, [m for _, m in pairs], [w for w, _ in pairs])


def import_jsonl(
    bus: Bus,
    path: Path | ExportFile,
    *,
    into: Topic | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Restore a JSONL (or JSON) export into its topic, or into ``into``.

    Without ``into`` the export's topic is used, created with its original
    id, name and status if this database does not have it. Messages keep
    their id and, where free, their seq; a seq already taken by another
    message is moved to the end of the topic (counted in ``renumbered``).

    Every message is checked (`check_record`, the rules of a sent message) before anything is
    written: one bad record imports nothing from the file.

    Raises:
        InvalidArgument: unreadable or malformed file, an invalid message record
            (the message names its line and field), or no topic to import into.
    """
    loaded = path if isinstance(path, ExportFile) else load_export(path)
    topic = into or loaded.topic
    if topic is None:
        raise InvalidArgument(
            "the export has no topic record; pass --into TOPIC to choose one", field="file"
        )
    return import_messages(
        bus,
        topic,
        loaded.messages,
        create=into is None,
        progress=progress,
        sources=loaded.sources or None,
    )


def import_messages(
    bus: Bus,
    topic: Topic,
    messages: list[Message],
    *,
    create: bool = True,
    progress: Progress | None = None,
    sources: list[str] | None = None,
) -> ImportReport:
    """Insert ``messages`` into ``topic`` in short batches.

    All messages are validated first (``sources`` names each one's line for
    errors), so an invalid one imports nothing. Idempotent: a message whose id
    is already in the database, or whose ``(sender, client_message_id)`` is
    already used in the topic (an idempotent send recorded under another id),
    counts as already present (``skipped``).

    Raises:
        InvalidArgument: an invalid message, or no such topic and ``create`` is false.
    """
    target = topic.topic_id
    max_chars = bus.settings.max_message_chars
    messages = [
        check_record(m, sources[i] if sources is not None else f"messages[{i}]", max_chars)
        for i, m in enumerate(messages)
    ]

    def ensure_topic(conn: Any) -> tuple[Topic, bool]:
        existing = queries.get_topic(conn, target)
        if existing is not None:
            return existing, False
        if not create:
            raise InvalidArgument(f"No topic with topic_id {target!r}.", field="into")
        queries.insert_topic(conn, topic)
        return topic, True

    final, created = bus.write(ensure_topic)

    def batch_tx(batch: list[Message]) -> Callable[[Any], tuple[int, int, int]]:
        def tx(conn: Any) -> tuple[int, int, int]:
            done = insert_messages(conn, target, batch, now=time.time(), keep_seq=True)
            return done.stored, len(batch) - done.stored, done.renumbered

        return tx

    imported = skipped = renumbered = 0
    for start in range(0, len(messages), IMPORT_BATCH):
        batch = messages[start : start + IMPORT_BATCH]
        done, dup, moved = bus.write(batch_tx(batch))
        imported, skipped, renumbered = imported + done, skipped + dup, renumbered + moved
        if progress is not None:
            progress(len(batch))
    return ImportReport(
        topic_id=target,
        topic_name=final.name,
        created_topic=created,
        total=len(messages),
        imported=imported,
        skipped=skipped,
        renumbered=renumbered,
    )
