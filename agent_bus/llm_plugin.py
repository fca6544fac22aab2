"""agent-bus as an llm plugin: the bundled embedding model and ``llm agent-bus …``.

Registered through the ``llm`` entry point group, so ``llm embed-models`` lists
``agent-bus-minilm`` (when the `semantic` extra is installed) and any llm user
can embed with it: ``llm embed -m agent-bus-minilm -c "text"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import llm

from agent_bus.embeddings import INSTALL_HINT, missing_default_modules
from agent_bus.embeddings.llm_model import AgentBusMiniLM


@llm.hookimpl
def register_embedding_models(register: Any) -> None:
    if not missing_default_modules():
        register(AgentBusMiniLM(), aliases=("agent-bus",))


def _open_bus(db: Path | None) -> Any:
    from agent_bus.bus import Bus
    from agent_bus.settings import load_settings

    bus = Bus(load_settings(db=db))
    bus.ensure_ready()
    return bus


@llm.hookimpl
def register_commands(cli: Any) -> None:
    @cli.group(name="agent-bus")
    def agent_bus_group() -> None:
        """Search and index an agent-bus database (semantic search of agents' messages)."""

    db_option = click.option(
        "-d",
        "--db",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Bus database (default: $AGENT_BUS_DB, else ~/.agent_bus/agent_bus.sqlite).",
    )

    @agent_bus_group.command(name="index")
    @click.option("-m", "--model", default=None, help="Embedding model (default: the bus's).")
    @click.option("--rebuild", is_flag=True, help="Embed every message again.")
    @db_option
    def index_command(model: str | None, rebuild: bool, db: Path | None) -> None:
        """Embed the messages the model's collection lacks (foreground)."""
        from agent_bus.embeddings import service
        from agent_bus.errors import BusError

        bus = _open_bus(db)
        try:
            result = service.index(bus, model=model, rebuild=rebuild)
        except BusError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            bus.close()
        click.echo(
            f"{result['embedded']} messages embedded into {result['collection']} "
            f"({result['failed']} failed) in {result['seconds']:.1f} s"
        )

    @agent_bus_group.command(name="search")
    @click.argument("query")
    @click.option("--mode", type=click.Choice(["hybrid", "fts", "semantic"]), default="hybrid")
    @click.option("-m", "--model", default=None, help="Embedding model (default: the bus's).")
    @click.option("-n", "--limit", type=int, default=10, help="At most N results.")
    @db_option
    def search_command(
        query: str, mode: str, model: str | None, limit: int, db: Path | None
    ) -> None:
        """Search the bus's messages; one JSON object per line."""
        import json

        from agent_bus.errors import BusError

        bus = _open_bus(db)
        try:
            results, warnings = bus.search(query, mode=mode, model=model, limit=limit)
        except BusError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            bus.close()
        for w in warnings:
            click.echo(f"note: {w.message or w.code}", err=True)
        for r in results:
            click.echo(json.dumps(r.model_dump(mode="json", exclude_none=True)))


__all__ = ["AgentBusMiniLM", "INSTALL_HINT"]
