"""``agent-bus config show``: the effective settings and where each one came from."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer
from pydantic import SecretStr

from agent_bus.cli._common import DbOption, JsonOption, db_override, echo, emit_json
from agent_bus.settings import BusSettings, load_settings

ENV_PREFIX = "AGENT_BUS_"


def _shown(value: Any) -> Any:
    """Paths as text; secrets masked (``**********``), never printed."""
    return str(value) if isinstance(value, Path | SecretStr) else value


def effective_settings(db: Path | None = None) -> list[dict[str, Any]]:
    """Each setting with its value, environment variable and source (flag, env or default)."""
    flag_db = db_override(db)
    settings = load_settings(db=flag_db)
    env = {k.upper(): k for k in os.environ}
    rows = []
    for name, field in BusSettings.model_fields.items():
        var = f"{ENV_PREFIX}{name.upper()}"
        if name == "db" and flag_db is not None:
            source = "flag --db"
        elif var in env:
            source = f"env {env[var]}"
        else:
            source = "default"
        value = getattr(settings, name)
        rows.append(
            {
                "name": name,
                "value": _shown(value),
                "env": var,
                "source": source,
                "description": field.description,
            }
        )
    return rows


def show(as_json: JsonOption = False, db: DbOption = None) -> None:
    """Print every setting, its value and its source (flag, env var or default).

    Each setting is read from its AGENT_BUS_* environment variable.

    Examples:

        agent-bus config show

        AGENT_BUS_MAX_OUTBOX=10 agent-bus config show --json
    """
    rows = effective_settings(db)
    if as_json:
        emit_json({"settings": rows})
        return
    width = max(len(r["env"]) for r in rows)
    for r in rows:
        value = json.dumps(r["value"]) if not isinstance(r["value"], str) else r["value"]
        echo(f"{r['env'].ljust(width)}  {value}  ({r['source']})")


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        no_args_is_help=True,
        context_settings={"help_option_names": ["-h", "--help"]},
        help="Effective configuration.",
    )
    group.command("show")(show)
    app.add_typer(group, name="config")
