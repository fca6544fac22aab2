"""Which attached databases are agent-bus databases, and one `Bus` for each.

The plugin stays out of every other database: a database is ours when its
``meta`` table says ``app = 'agent-bus'``. The UI never migrates: a bus of
another schema version is listed with a note instead of being opened.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_bus.service.access import LastUse
from agent_bus.store import web as store_web
from agent_bus.store.schema import APP_ID, SCHEMA_VERSION


@dataclass
class BusDatabase:
    name: str
    route: str
    path: str
    version: int | None
    bus: Any = None  # agent_bus.bus.Bus, opened on first use

    @property
    def problem(self) -> str | None:
        if self.version == SCHEMA_VERSION:
            return None
        return (
            f"{self.path} has agent-bus schema version {self.version}; this agent-bus reads "
            f"version {SCHEMA_VERSION}. Upgrade agent-bus, or start an agent-bus server on it "
            "once to migrate it."
        )

    def open(self) -> Any:
        if self.bus is None:
            from agent_bus.bus import Bus
            from agent_bus.settings import BusSettings

            self.bus = Bus(BusSettings(db=Path(self.path)))
        return self.bus


@dataclass
class PluginState:
    checked: dict[str, tuple[str, Any]] = field(default_factory=dict)  # name -> (path, db|None)
    csp_script_hashes: list[str] = field(default_factory=list)
    last_use: LastUse = field(default_factory=LastUse)  # tokens' last use, once a minute each

    def close(self) -> None:
        for _, found in self.checked.values():
            if found is not None and found.bus is not None:
                found.bus.close()


_STATES: weakref.WeakKeyDictionary[Any, PluginState] = weakref.WeakKeyDictionary()


def state(datasette: Any) -> PluginState:
    found = _STATES.get(datasette)
    if found is None:
        found = _STATES[datasette] = PluginState()
    return found


async def bus_databases(datasette: Any) -> list[BusDatabase]:
    """The attached databases that are agent-bus databases, in Datasette's order."""
    st = state(datasette)
    out: list[BusDatabase] = []
    for name, db in list(datasette.databases.items()):
        if name == "_internal" or getattr(db, "is_memory", False) or not db.path:
            continue
        cached = st.checked.get(name)
        if cached is None or cached[0] != db.path:
            app, version = await db.execute_fn(store_web.bus_identity)
            found = (
                BusDatabase(name=name, route=db.route, path=db.path, version=version)
                if app == APP_ID
                else None
            )
            st.checked[name] = (db.path, found)
            cached = st.checked[name]
        if cached[1] is not None:
            out.append(cached[1])
    return out


def known_bus_names(datasette: Any) -> set[str]:
    """Names already detected as bus databases (sync; for hooks that cannot await)."""
    return {name for name, (_, found) in state(datasette).checked.items() if found is not None}


async def find(datasette: Any, route: str) -> BusDatabase | None:
    for found in await bus_databases(datasette):
        if found.route == route or found.name == route:
            return found
    return None


def close(datasette: Any) -> None:
    """Close the buses opened for ``datasette`` (tests, embedding applications)."""
    found = _STATES.pop(datasette, None)
    if found is not None:
        found.close()
