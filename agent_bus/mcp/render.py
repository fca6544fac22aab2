"""Concise human-readable text for tool results (some clients show only text).

Message bodies are included (truncated at ``tool_text_max_chars``) so that a
client without structuredContent still sees what was said.
"""

from __future__ import annotations

from agent_bus.models import Message, PresencePeer, SearchResult, Topic, TopicSummary
from agent_bus.service.sync import SyncResult

MAX_LISTED = 20


def truncate(body: str, max_chars: int) -> tuple[str, bool]:
    if len(body) <= max_chars:
        return body, False
    return body[:max_chars] + "\n… (truncated)", True


def topic_line(prefix: str, t: Topic) -> str:
    return f'{prefix}: name="{t.name}", topic_id="{t.topic_id}", status="{t.status}"'


def topic_list(status: str, topics: list[TopicSummary]) -> str:
    lines = [f"Topics ({status}): {len(topics)}"]
    for t in topics[:MAX_LISTED]:
        lines.append(f"- {t.name} ({t.topic_id}) status={t.status} messages={t.message_count}")
    if len(topics) > MAX_LISTED:
        lines.append(f"... ({len(topics) - MAX_LISTED} more)")
    return "\n".join(lines)


def message_header(m: Message) -> str:
    reply = f" reply_to={m.reply_to}" if m.reply_to else ""
    return f"[{m.seq}] {m.sender} ({m.message_type}) id={m.message_id}{reply}"


def sync(result: SyncResult, *, include_bodies: bool, max_chars: int) -> str:
    lines = [
        f"Sync: status={result.status} received={len(result.received)} "
        f"sent={len(result.sent)} cursor={result.cursor.last_seq} has_more={result.has_more}"
    ]
    for s in result.sent:
        dup = " (duplicate, already stored)" if s.duplicate else ""
        lines.append(f"sent [{s.message.seq}] id={s.message.message_id}{dup}")
    for m in result.received[:MAX_LISTED]:
        if include_bodies:
            body, truncated = truncate(m.content_markdown, max_chars)
            lines.append(message_header(m))
            lines.append(body)
            if truncated:
                lines.append(f"(truncated; {len(m.content_markdown)} chars total)")
            lines.append("")
        else:
            preview = (m.content_markdown.splitlines() or [""])[0][:80]
            lines.append(f"{message_header(m)}: {preview}")
    if len(result.received) > MAX_LISTED:
        lines.append(f"... ({len(result.received) - MAX_LISTED} more)")
    if result.has_more:
        lines.append("More messages are waiting: call sync again with wait_seconds=0.")
    return "\n".join(lines).rstrip()


def presence(window: int, peers: list[PresencePeer]) -> str:
    lines = [f"Presence: {len(peers)} active peer(s) in last {window}s"]
    for p in peers[:MAX_LISTED]:
        lines.append(f"- {p.agent_name} last_seq={p.last_seq} age={p.age_seconds:.1f}s")
    if len(peers) > MAX_LISTED:
        lines.append(f"... ({len(peers) - MAX_LISTED} more)")
    return "\n".join(lines)


def search(
    mode: str,
    results: list[SearchResult],
    *,
    include_bodies: bool,
    max_chars: int,
    notes: list[str],
) -> str:
    lines = [f"Search: mode={mode} results={len(results)}"]
    lines += [f"Note: {n}" for n in notes]
    for r in results[:MAX_LISTED]:
        scores = []
        if r.fts_rank is not None:
            scores.append(f"fts_rank={r.fts_rank:.3f}")
        if r.semantic_score is not None:
            scores.append(f"semantic_score={r.semantic_score:.3f}")
        score = f" ({', '.join(scores)})" if scores else ""
        lines.append(
            f"- {r.topic_name} [{r.seq}] {r.sender} ({r.message_type}) id={r.message_id}{score}"
        )
        if r.content_markdown is not None and include_bodies:
            body, truncated = truncate(r.content_markdown, max_chars)
            lines.append(body)
            if truncated:
                lines.append(f"(truncated; {len(r.content_markdown)} chars total)")
        else:
            lines.append("  " + " ".join(r.snippet.split())[:200])
    if len(results) > MAX_LISTED:
        lines.append(f"... ({len(results) - MAX_LISTED} more)")
    return "\n".join(lines)
