"""The one message validator and the one insert path.

`sync`, `agent-bus send`, the web UI's forms and `agent-bus import` all check a
message with `check_item` and store it with `insert_messages`, so the rules for
a message (sizes, names, idempotent client ids, seq allocation) live once.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent_bus.errors import InvalidArgument
from agent_bus.models import Message, OutboxItem, SentMessage
from agent_bus.service.checks import (
    MAX_AGENT_NAME,
    MAX_CLIENT_MESSAGE_ID,
    MAX_MESSAGE_ID,
    MAX_MESSAGE_TYPE,
    check_metadata,
    check_name,
    check_text,
    new_id,
)
from agent_bus.store import queries


def check_item(raw: Mapping[str, Any], where: str, max_chars: int) -> OutboxItem:
    """Validate one message's fields (an outbox item, a web form, an imported record).

    ``where`` prefixes field names in errors (``outbox[2]`` gives
    ``outbox[2].content_markdown``); names are trimmed, the type defaults to ``message``.
    """

    def at(name: str) -> str:
        return f"{where}.{name}" if where else name

    if "content_markdown" not in raw:
        raise InvalidArgument(
            f"{at('content_markdown')} is missing: the message body goes in "
            "content_markdown (not content, body or text)",
            field=at("content_markdown"),
        )
    content = check_text(raw.get("content_markdown"), at("content_markdown"))
    if len(content) > max_chars:
        raise InvalidArgument(
            f"{at('content_markdown')} exceeds max length ({max_chars} characters, got "
            f"{len(content)}); split it into several messages",
            field=at("content_markdown"),
        )
    mtype = raw.get("message_type")
    mtype = "message" if mtype is None else check_name(mtype, at("message_type"), MAX_MESSAGE_TYPE)
    reply_to = raw.get("reply_to")
    if reply_to is not None:
        reply_to = check_text(reply_to, at("reply_to")).strip()
    metadata = check_metadata(raw.get("metadata"), at("metadata"), max_chars)
    cmid = raw.get("client_message_id")
    if cmid is not None:
        cmid = check_name(cmid, at("client_message_id"), MAX_CLIENT_MESSAGE_ID)
    return OutboxItem(
        content_markdown=content,
        message_type=mtype,
        reply_to=reply_to,
        metadata=metadata,
        client_message_id=cmid,
    )


def check_outbox(outbox: object, *, max_items: int, max_chars: int) -> list[OutboxItem]:
    """Validate a whole outbox before anything is written (a dict is an outbox of one)."""
    if outbox is None:
        return []
    if isinstance(outbox, dict):
        outbox = [outbox]
    if not isinstance(outbox, list):
        raise InvalidArgument("outbox must be a list of message objects", field="outbox")
    if len(outbox) > max_items:
        raise InvalidArgument(
            f"outbox must have at most {max_items} items (got {len(outbox)}); "
            "send the rest in another sync",
            field="outbox",
        )
    items = []
    for i, raw in enumerate(outbox):
        if not isinstance(raw, dict):
            raise InvalidArgument(f"outbox[{i}] must be an object", field=f"outbox[{i}]")
        items.append(check_item(raw, f"outbox[{i}]", max_chars))
    return items


def unknown_outbox_fields(outbox: object) -> list[str]:
    """Outbox keys the contract does not know; they are ignored (as the reference does)."""
    items = [outbox] if isinstance(outbox, dict) else outbox
    if not isinstance(items, list):
        return []
    return [
        f"outbox[{i}].{key}"
        for i, raw in enumerate(items)
        if isinstance(raw, dict)
        for key in sorted(set(raw) - set(OutboxItem.model_fields))
    ]


def check_record(message: Message, where: str, max_chars: int) -> Message:
    """Validate an imported message: the item's rules plus its id, sender and time.

    Raises:
        InvalidArgument: naming ``where`` (file and line) and the field.
    """
    m = message
    try:
        message_id = check_name(m.message_id, "message_id", MAX_MESSAGE_ID)
        sender = check_name(m.sender, "sender", MAX_AGENT_NAME)
        item = check_item(m.model_dump(), "", max_chars)
        if not math.isfinite(m.created_at):
            raise InvalidArgument("created_at must be a finite number", field="created_at")
    except InvalidArgument as exc:
        raise InvalidArgument(f"{where}: bad message record: {exc.message}", field="file") from None
    return m.model_copy(update={"message_id": message_id, "sender": sender, **item.model_dump()})


def new_messages(
    topic_id: str, sender: str, items: Sequence[OutboxItem], now: float
) -> list[Message]:
    """Messages for a send; their seq is given by `insert_messages`."""
    return [
        Message(
            message_id=new_id(),
            topic_id=topic_id,
            seq=0,
            sender=sender,
            message_type=item.message_type,
            reply_to=item.reply_to,
            content_markdown=item.content_markdown,
            metadata=item.metadata,
            client_message_id=item.client_message_id,
            created_at=now,
        )
        for item in items
    ]


@dataclass
class Inserted:
    """What `insert_messages` did: one `SentMessage` per input, in order."""

    sent: list[SentMessage]
    last_seq: int
    renumbered: int = 0

    @property
    def stored(self) -> int:
        return sum(not s.duplicate for s in self.sent)


def insert_messages(
    conn: sqlite3.Connection,
    topic_id: str,
    messages: Sequence[Message],
    *,
    now: float,
    keep_seq: bool = False,
) -> Inserted:
    """Store messages in a topic inside the caller's write transaction.

    A ``(sender, client_message_id)`` already used in the topic makes the message a
    duplicate: the stored one is returned and nothing is written (idempotent retries).

    ``keep_seq=False`` (a send): seqs follow the topic's last seq in order, and a
    ``reply_to`` must name a message of this topic. ``keep_seq=True`` (an import): a
    message whose id is already stored is a duplicate too; a message keeps its seq
    where that seq is free in this topic and is appended after the highest otherwise.
    """
    top = queries.last_seq(conn, topic_id)
    known: set[str] = set()
    taken: set[int] = set()
    if keep_seq:
        known = queries.existing_message_ids(conn, [m.message_id for m in messages])
        own = [m.seq for m in messages if m.topic_id == topic_id]
        taken = queries.used_seqs(conn, topic_id, own)
        top = max(top, queries.max_seq(conn, topic_id))
    by_key: dict[tuple[str, str], Message] = {}
    results: list[SentMessage | None] = []
    deferred: list[tuple[int, Message]] = []
    next_seq = top + 1
    for i, m in enumerate(messages):
        if m.message_id in known:
            results.append(SentMessage(message=m, duplicate=True))
            continue
        if m.client_message_id is not None:
            key = (m.sender, m.client_message_id)
            prior = by_key.get(key) or queries.message_by_client_id(conn, topic_id, *key)
            if prior is not None:
                results.append(SentMessage(message=prior, duplicate=True))
                continue
        if not keep_seq and m.reply_to is not None:
            if not queries.message_in_topic(conn, topic_id, m.reply_to):
                raise InvalidArgument(
                    f"outbox[{i}].reply_to {m.reply_to!r} is not a message of this topic",
                    field=f"outbox[{i}].reply_to",
                )
        known.add(m.message_id)  # a repeated id later in the batch is a duplicate too
        if keep_seq and m.topic_id == topic_id and m.seq not in taken:
            stored = m
            taken.add(m.seq)
        elif keep_seq:
            deferred.append((len(results), m))
            results.append(None)
            if m.client_message_id is not None:
                by_key[(m.sender, m.client_message_id)] = m
            continue
        else:
            stored = m.model_copy(update={"topic_id": topic_id, "seq": next_seq})
            next_seq += 1
        queries.insert_message(conn, stored)
        if stored.client_message_id is not None:
            by_key[(stored.sender, stored.client_message_id)] = stored
        results.append(SentMessage(message=stored, duplicate=False))
    # Messages of another topic, or whose seq is taken, go after everything kept.
    after = max([top, *taken]) if keep_seq else next_seq - 1
    for index, m in deferred:
        after += 1
        stored = m.model_copy(update={"topic_id": topic_id, "seq": after})
        queries.insert_message(conn, stored)
        results[index] = SentMessage(message=stored, duplicate=False)
    last = max(after, next_seq - 1)
    if last > top or keep_seq:
        queries.set_next_seq(conn, topic_id, last + 1, now)
    sent = [r for r in results if r is not None]
    return Inserted(sent=sent, last_seq=last, renumbered=len(deferred))
