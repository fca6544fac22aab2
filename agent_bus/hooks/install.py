"""`agent-bus hooks install|uninstall|status`: our hook entries in each client's settings.

Each client keeps hooks in a JSON file as ``hooks.<Event>`` lists of matcher groups
(``{"matcher": …, "hooks": [handler, …]}``) (docs/reference/hooks.md cites the
clients' docs). The installer owns only handlers whose command runs
``agent-bus hook CLIENT EVENT``: it adds one group per event holding just that
handler, replaces an earlier one of ours instead of adding a second, and leaves
every other key, group and handler as it found them.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_bus.errors import ConfigMergeRefused, InvalidArgument
from agent_bus.hooks.contracts import CLIENTS, DEFAULT_EVENTS, WAIT, Event, event_for
from agent_bus.installers.files import atomic_write, place, read_bytes
from agent_bus.installers.mcp_config import resolve_command

# (project file, user file, timeout unit) per client.
HOOK_FILES: dict[str, tuple[str, str, str]] = {
    "claude-code": (".claude/settings.json", "~/.claude/settings.json", "s"),
    "codex": (".codex/hooks.json", "~/.codex/hooks.json", "s"),
    "gemini": (".gemini/settings.json", "~/.gemini/settings.json", "ms"),
}
HOOK_TIMEOUT_SECONDS = 30  # the hook answers in milliseconds; this only bounds a stuck disk
WAIT_TIMEOUT_SECONDS = 3300  # above AGENT_BUS_HOOK_WAIT_SECONDS' default (3000)

TRUST_STEPS = {
    "claude-code": "next: Claude Code runs project hooks once the folder is trusted.",
    "codex": "next: in Codex, review and trust the new hooks in /hooks (again after changes).",
    "gemini": "next: Gemini CLI warns once about new project hooks, then runs them.",
}

_OURS = re.compile(
    r"(^|[\s/\\])agent[-_]bus(\.exe)?['\"]?\s+hook\s+(?P<client>\S+)\s+(?P<event>\S+)"
)


@dataclass
class HookFileResult:
    """What one run did to one file: ``created``, ``updated``, ``unchanged`` or ``removed``."""

    client: str
    path: Path
    status: str
    changes: list[str] = field(default_factory=list)
    note: str | None = None


def hook_file(client: str, *, project_dir: Path | None = None, user: bool = False) -> Path:
    files = HOOK_FILES.get(client)
    if files is None:
        raise InvalidArgument(
            f"unknown client {client!r} for hooks (known: {', '.join(HOOK_FILES)})", field="client"
        )
    return place(files[1] if user else files[0], project_dir, user)


def parse_events(client: str, events: str | None) -> list[Event]:
    """The events to install: a comma-separated list of ours, or the client's defaults."""
    names = [e.strip() for e in events.split(",") if e.strip()] if events else None
    try:
        return [event_for(client, name) for name in (names or DEFAULT_EVENTS[client])]
    except ValueError as exc:
        raise InvalidArgument(str(exc), field="events") from None


def is_ours(handler: Any, client: str | None = None) -> bool:
    if not isinstance(handler, dict) or not isinstance(handler.get("command"), str):
        return False
    match = _OURS.search(handler["command"])
    return match is not None and (client is None or match.group("client") == client)


def handler_for(
    client: str, event: Event, command: tuple[str, ...], db: Path | None = None
) -> dict[str, Any]:
    """One handler; with ``db`` the command sets AGENT_BUS_DB itself (clients run it in a shell)."""
    line = shlex.join([*command, "hook", client, event.name])
    if db is not None:
        line = f"AGENT_BUS_DB={shlex.quote(str(db))} {line}"
    seconds = WAIT_TIMEOUT_SECONDS if event.kind == WAIT else HOOK_TIMEOUT_SECONDS
    if HOOK_FILES[client][2] == "ms":
        return {"name": f"agent-bus-{event.name}", "type": "command", "command": line,
                "timeout": seconds * 1000}  # fmt: skip
    handler: dict[str, Any] = {"type": "command", "command": line, "timeout": seconds}
    if event.kind == WAIT:
        handler["asyncRewake"] = True
    return handler


def _group(event: Event, handler: dict[str, Any]) -> dict[str, Any]:
    group: dict[str, Any] = {"matcher": event.matcher} if event.matcher else {}
    group["hooks"] = [handler]
    return group


def _load(path: Path) -> tuple[dict[str, Any], bytes | None]:
    raw = read_bytes(path)
    if raw is None or not raw.strip():
        return {}, raw
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ConfigMergeRefused(
            f"{path} is not plain JSON ({exc.msg}, line {exc.lineno}); nothing was written. "
            "Fix it, or add the hooks by hand (see docs/reference/hooks.md).",
            path=str(path),
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("hooks", {}), dict):
        raise ConfigMergeRefused(
            f"{path}: expected a JSON object whose 'hooks' is an object; nothing was written.",
            path=str(path),
        )
    return data, raw


def _strip_ours(groups: list[Any], client: str, keep: dict[str, Any] | None = None) -> list[Any]:
    """Groups without our handlers (a group we emptied goes); ``keep`` stays untouched."""
    out = []
    for group in groups:
        if group is keep or not isinstance(group, dict) or not isinstance(group.get("hooks"), list):
            out.append(group)
            continue
        handlers = [h for h in group["hooks"] if not is_ours(h, client)]
        if len(handlers) == len(group["hooks"]):
            out.append(group)
        elif handlers:
            out.append({**group, "hooks": handlers})
    return out


def _dump(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _write(path: Path, data: dict[str, Any], before: bytes | None) -> str:
    """Write unless nothing changed; an unchanged file is never rewritten (or reformatted)."""
    text = _dump(data)
    if before is not None and text == before:
        return "unchanged"
    atomic_write(path, text)
    return "created" if before is None else "updated"


def install(
    client: str,
    *,
    project_dir: Path | None = None,
    user: bool = False,
    events: str | None = None,
    dry_run: bool = False,
    command: str | None = None,
    db: Path | None = None,
) -> HookFileResult:
    """Add (or refresh) our hook entries for ``events`` in the client's settings file.

    ``db`` pins the bus file in the command (when the servers use a chosen one, as
    ``mcp-config --db`` pins it in their entry); otherwise the hook uses the client's
    environment or the default, like the server.

    Raises:
        InvalidArgument: unknown client or event, or both scopes given.
        ConfigMergeRefused: the file is not a JSON object we can merge into.
    """
    path = hook_file(client, project_dir=project_dir, user=user)
    wanted = parse_events(client, events)
    resolved = resolve_command(command)
    data, before = _load(path)
    hooks = data.setdefault("hooks", {})
    changes = []
    for event in wanted:
        desired = _group(event, handler_for(client, event, resolved.argv, db))
        groups = hooks.get(event.client_event)
        groups = list(groups) if isinstance(groups, list) else []
        mine = [g for g in groups if g == desired]
        kept = mine[0] if mine else None
        # `wait` and `stop` share Claude Code's Stop: only this event's old entry goes.
        stripped = _strip_ours_of_event(groups, client, event.name, kept)
        if kept is None:
            stripped.append(desired)
            changes.append(f"+ {event.client_event}: {desired['hooks'][0]['command']}")
        elif stripped != groups:
            changes.append(f"- {event.client_event}: a second agent-bus {event.name} entry")
        hooks[event.client_event] = stripped
    if not changes:  # never rewrite (or reformat) a file that already has our entries
        return HookFileResult(client, path, "unchanged", note=resolved.note)
    if dry_run:
        return HookFileResult(client, path, "would change", changes, note=resolved.note)
    status = _write(path, data, before)
    return HookFileResult(client, path, status, changes, note=resolved.note)


def _strip_ours_of_event(
    groups: list[Any], client: str, event_name: str, keep: dict[str, Any] | None
) -> list[Any]:
    out = []
    for group in groups:
        if group is keep or not isinstance(group, dict) or not isinstance(group.get("hooks"), list):
            out.append(group)
            continue
        handlers = [h for h in group["hooks"] if not _ours_event(h, client, event_name)]
        if len(handlers) == len(group["hooks"]):
            out.append(group)
        elif handlers:
            out.append({**group, "hooks": handlers})
    return out


def _ours_event(handler: Any, client: str, event_name: str) -> bool:
    if not is_ours(handler, client):
        return False
    match = _OURS.search(handler["command"])
    return match is not None and match.group("event") == event_name


def uninstall(
    client: str,
    *,
    project_dir: Path | None = None,
    user: bool = False,
    dry_run: bool = False,
) -> HookFileResult:
    """Remove every hook entry of ours for ``client``; empty event lists and ``hooks`` go too."""
    path = hook_file(client, project_dir=project_dir, user=user)
    data, before = _load(path)
    if before is None:
        return HookFileResult(client, path, "unchanged")
    hooks = data.get("hooks")
    changes = []
    if isinstance(hooks, dict):
        for name in list(hooks):
            groups = hooks[name]
            if not isinstance(groups, list):
                continue
            for group in groups:
                if isinstance(group, dict) and isinstance(group.get("hooks"), list):
                    changes += [f"- {name}: {h['command']}" for h in group["hooks"]
                                if is_ours(h, client)]  # fmt: skip
            remaining = _strip_ours(groups, client)
            if remaining:
                hooks[name] = remaining
            else:
                del hooks[name]
        if not hooks:
            del data["hooks"]
    if not changes:
        return HookFileResult(client, path, "unchanged")
    if dry_run:
        return HookFileResult(client, path, "would change", changes)
    atomic_write(path, _dump(data))
    return HookFileResult(client, path, "removed", changes)


@dataclass
class InstalledHook:
    client: str
    scope: str
    path: Path
    client_event: str
    command: str


def status(project_dir: Path | None = None) -> list[InstalledHook]:
    """Our hook entries in every known client's project and user settings files."""
    found = []
    for client in HOOK_FILES:
        for scope, user in (("project", False), ("user", True)):
            path = hook_file(client, project_dir=None if user else project_dir, user=user)
            try:
                data, _ = _load(path)
            except ConfigMergeRefused:
                continue
            for name, groups in (data.get("hooks") or {}).items():
                for group in groups if isinstance(groups, list) else []:
                    handlers = group.get("hooks") if isinstance(group, dict) else None
                    for h in handlers if isinstance(handlers, list) else []:
                        if is_ours(h, client):
                            found.append(InstalledHook(client, scope, path, name, h["command"]))
    return found


def live_bindings(db: Path) -> list[dict[str, Any]]:
    """Session bindings whose client still runs (empty when there is no bus yet)."""
    if not db.is_file():
        return []
    import sqlite3

    from agent_bus.service.bindings import live_bindings as live

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [
            {"topic_id": b.topic_id, "agent_name": b.agent_name, "client_pid": b.client[0],
             "client_name": b.client_name, "client_version": b.client_version, "cwd": b.cwd,
             "session_id": b.session_id}
            for b in live(conn)
        ]  # fmt: skip
    except sqlite3.Error:
        return []
    finally:
        conn.close()


__all__ = ["CLIENTS", "HOOK_FILES", "install", "live_bindings", "status", "uninstall"]
