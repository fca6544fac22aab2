"""Each client's hook events and the JSON it reads back (facts with sources in
docs/reference/hooks.md).

* Claude Code and Codex: context through
  ``hookSpecificOutput.additionalContext`` on ``SessionStart`` /
  ``UserPromptSubmit``; ``Stop`` continues on ``{"decision": "block", "reason"}``.
* Gemini CLI: the same context field on ``SessionStart`` / ``BeforeAgent``;
  ``AfterAgent`` retries on ``{"decision": "deny", "reason"}``, ``reason``
  becoming the next prompt.
* Claude Code ``wait`` is our own event name for an ``asyncRewake`` handler on
  ``Stop``: it runs in the background, and exiting 2 wakes an idle Claude with
  stderr as a system reminder.
"""

from __future__ import annotations

import os
from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:  # the hook process skips importing typing helpers
    from typing import Any

CONTEXT = "context"
STOP = "stop"
WAIT = "wait"

HOOK_MAX_BLOCKS_DEFAULT = 3
HOOK_WAIT_SECONDS_DEFAULT = 3000
HOOK_MAX_BLOCKS_ENV = "AGENT_BUS_HOOK_MAX_BLOCKS"
HOOK_WAIT_SECONDS_ENV = "AGENT_BUS_HOOK_WAIT_SECONDS"


# name: ours, kebab case ("user-prompt-submit"); client_event: the client's
# ("UserPromptSubmit"); kind: CONTEXT, STOP or WAIT; matcher: written by the
# installer where the client matches on it.
Event = namedtuple("Event", "name client_event kind matcher", defaults=(None,))


# No matchers: every session source (startup, resume, clear, compact) should hear the bus,
# and Gemini CLI compares lifecycle matchers as exact strings, so "startup|resume|clear"
# never matched there (seen with Gemini CLI 0.61: the hook did not run).
_CLAUDE_LIKE = {
    "session-start": Event("session-start", "SessionStart", CONTEXT),
    "user-prompt-submit": Event("user-prompt-submit", "UserPromptSubmit", CONTEXT),
    "stop": Event("stop", "Stop", STOP),
}

CLIENTS: dict[str, dict[str, Event]] = {
    "claude-code": {**_CLAUDE_LIKE, "wait": Event("wait", "Stop", WAIT)},
    "codex": dict(_CLAUDE_LIKE),
    "gemini": {
        "session-start": Event("session-start", "SessionStart", CONTEXT),
        "before-agent": Event("before-agent", "BeforeAgent", CONTEXT),
        "after-agent": Event("after-agent", "AfterAgent", STOP),
    },
}

DEFAULT_EVENTS: dict[str, tuple[str, ...]] = {
    "claude-code": ("session-start", "user-prompt-submit", "stop"),
    "codex": ("session-start", "user-prompt-submit", "stop"),
    "gemini": ("session-start", "before-agent", "after-agent"),
}


class UnknownHook(ValueError):
    """The client or event is not one we answer."""


def event_for(client: str, event: str) -> Event:
    events = CLIENTS.get(client)
    if events is None:
        raise UnknownHook(f"unknown client {client!r} (known: {', '.join(CLIENTS)})")
    found = events.get(event)
    if found is None:
        raise UnknownHook(f"unknown event {event!r} for {client} (known: {', '.join(events)})")
    return found


def context_output(event: Event, text: str) -> dict[str, Any]:
    return {"hookSpecificOutput": {"hookEventName": event.client_event, "additionalContext": text}}


def continue_output(client: str, text: str) -> dict[str, Any]:
    decision = "deny" if client == "gemini" else "block"
    return {"decision": decision, "reason": text}


def env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    value = int(raw)  # a bad value is a hook failure: logged, the client carries on
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}")
    return value
