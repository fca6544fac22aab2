"""``agent-bus embeddings …``: status, index (foreground, with a progress bar), drop."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Annotated

import typer

from agent_bus.cli._common import DbOption, JsonOption, ago, echo, emit_json, note, open_bus

ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="llm embedding model id (default: $AGENT_BUS_EMBEDDING_MODEL, else agent-bus-minilm).",
        show_default=False,
    ),
]


def status(as_json: JsonOption = False, db: DbOption = None) -> None:
    """Show collections, the job queue, failed jobs, the lease holder and the embedding service.

    Examples:

        agent-bus embeddings status

        agent-bus embeddings status --json | jq .jobs
    """
    from agent_bus.embeddings import INSTALL_HINT, service

    with open_bus(db) as bus:
        data = service.status(bus)
    if as_json:
        emit_json(data)
        return
    echo(f"model        {data['model']} (collection {data['collection']})")
    if data["model"] == data["default_model"] and data["default_model_missing"]:
        missing = ", ".join(data["default_model_missing"])
        echo(f"             not installed (missing {missing}): {INSTALL_HINT}")
    echo(f"messages     {data['messages']}")
    for c in data["collections"]:
        echo(
            f"collection   {c['name']}: {c['messages']} messages, {c['rows']} vectors, "
            f"model {c['model']}, updated {ago(c['last_updated'])}"
        )
    if not data["collections"]:
        echo("collection   none yet")
    passages = data["passages"]
    if passages is not None and passages["pending"]:
        echo(
            f"passages     {passages['pending']} messages embedded before passages get them "
            "in the background, while the queue is empty"
        )
    jobs = data["jobs"]
    echo(
        f"queue        {jobs['queued']} queued, {jobs['retrying']} retrying, "
        f"{jobs['failed']} failed"
    )
    lease = data["lease"]
    if lease is None:
        echo("indexer      no server holds the indexing lease")
    else:
        state = "alive" if lease["alive"] else "expired"
        echo(
            f"indexer      pid {lease['pid']} on {lease['host']} ({state}, heartbeat "
            f"{ago(lease['heartbeat_at'])}, model {lease['model_id']})"
        )
    svc = data["service"]
    if not svc["enabled"]:
        echo("service      off: servers index and embed in-process (AGENT_BUS_EMBED_SERVICE)")
    elif svc["running"]:
        echo(
            f"service      pid {svc['pid']} on {svc['socket']} ({svc['state']}, "
            f"{svc['queries']} queries; log {svc['log']})"
        )
    else:
        echo(f"service      not running (starts on demand; socket {svc['socket']})")
    if not data["autoindex"]:
        echo("             background indexing is off (AGENT_BUS_EMBEDDINGS_AUTOINDEX=false)")
    for f in data["failures"]:
        when = "gave up" if f["failed_at"] else "will retry"
        echo(f"failure      {f['message_id']}: {f['attempts']} attempts, {when}: {f['last_error']}")


@contextlib.contextmanager
def _bar(label: str) -> Iterator[tuple]:
    """(start(total), advance(n)) callbacks: a rich bar on a terminal's stderr, else nothing."""
    if not sys.stderr.isatty():
        yield (lambda total: None, lambda n: None)
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield (
            lambda total: bar.update(task, total=total),
            lambda n: bar.advance(task, n),
        )


def index(
    model: ModelOption = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Drop the model's vectors and embed everything.")
    ] = False,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Embed, now and in the foreground, every message the model's collection lacks.

    Servers do the same in the background; this is for a first index of a big
    bus, another model, or after --rebuild.

    Examples:

        agent-bus embeddings index

        agent-bus embeddings index --model 3-small --rebuild
    """
    from agent_bus.embeddings import service

    with open_bus(db) as bus, _bar("embedding messages") as (start, advance):
        started = time.perf_counter()
        result = service.index(
            bus,
            model=model,
            rebuild=rebuild,
            on_start=start,
            progress=lambda done, failed: advance(done + failed),
        )
    if as_json:
        emit_json(result)
        return
    rate = result["embedded"] / max(time.perf_counter() - started, 1e-6)
    echo(
        f"{result['embedded']} messages embedded into {result['collection']} "
        f"in {result['seconds']:.1f} s ({rate:.0f}/s); {result['failed']} failed"
    )
    for error in result["errors"][:5]:
        note(f"error: {error}")


def drop(
    model: Annotated[
        str,
        typer.Option("--model", "-m", help="Model id (or collection name) whose vectors to drop."),
    ],
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Remove a model's collection of vectors from the bus (messages are untouched).

    Examples:

        agent-bus embeddings drop --model agent-bus-minilm
    """
    from agent_bus.embeddings import service

    with open_bus(db) as bus:
        result = service.drop(bus, model)
    if as_json:
        emit_json(result)
        return
    echo(f"dropped {result['collection']} ({result['rows']} vectors)")


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        no_args_is_help=True,
        context_settings={"help_option_names": ["-h", "--help"]},
        help="Semantic-search vectors: status, index, drop.",
    )
    group.command("status")(status)
    group.command("index")(index)
    group.command("drop")(drop)
    app.add_typer(group, name="embeddings")
