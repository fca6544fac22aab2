"""Where the bus lives, readable without pydantic.

The hook door resolves the database path in a few hundred microseconds, so
it cannot build `BusSettings`; this module holds the defaults both share.
"""

from __future__ import annotations

import os

DEFAULT_DB = "~/.agent_bus/agent_bus.sqlite"
DB_ENV = "AGENT_BUS_DB"
HOOK_LOG_NAME = "hooks.log"


def db_path_from_env(environ: dict[str, str] | None = None) -> str:
    """``AGENT_BUS_DB`` or the default, expanded (same rule as `BusSettings.db`).

    A string, not a ``Path``: the hook's start path does without ``pathlib``.
    """
    env = os.environ if environ is None else environ
    raw = env.get(DB_ENV, "").strip()
    return os.path.expanduser(raw or DEFAULT_DB)
