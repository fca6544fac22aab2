"""The ``agent-bus`` command line for people: a thin typer front door over the bus service.

Each command group is a module of this package with a ``register(app)``
function; `COMMAND_MODULES` lists them, so adding a group is one line. A
module may also define ``register_reference(app)``, used instead for the
hidden ``cli`` group that keeps the reference CLI's spellings working
(``agent-bus cli topics list``, ``agent-bus cli export …``, ``agent-bus cli
--db-path X db wipe --yes``).

Errors are translated once, here: a `BusError` becomes ``error: CODE: message``
on stderr and exit status 1; usage mistakes the same with INVALID_ARGUMENT;
never a traceback.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click import exceptions as click_exc
from typer._click.utils import echo
from typer.core import TyperGroup

from agent_bus import SPEC_VERSION, __version__
from agent_bus.errors import BusError
from agent_bus.settings import SettingsError

# typer 0.29 vendors click (typer._click): its exceptions are not the `click` package's.
# Modules of agent_bus.cli that add commands, in help order. A listed module
# that does not exist (yet) is skipped, so groups can land independently.
COMMAND_MODULES = (
    "topics",
    "messages",
    "transfer",
    "search",
    "db",
    "config",
    "skills",
    "hooks",
    "web",
    "server",
    "embeddings",
    "tokens",
    "doctor",
)

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}
EXIT_USER_ERROR = 1


def _fail(code: str, message: str) -> int:
    echo(f"error: {code}: {message}", err=True)
    return EXIT_USER_ERROR


class BusGroup(TyperGroup):
    """The root group: runs the command and turns every failure into one line on stderr."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        code = self._run(args, prog_name, complete_var, **extra)
        if standalone_mode:
            sys.exit(code)
        return code

    def _run(self, args: Any, prog_name: Any, complete_var: Any, **extra: Any) -> int:
        try:
            rv = super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except click_exc.NoArgsIsHelpError as exc:
            echo(exc.format_message())
            return 0
        except click_exc.UsageError as exc:
            hint = ""
            if exc.ctx is not None:
                hint = f" (see `{exc.ctx.command_path} --help`)"
            return _fail("INVALID_ARGUMENT", exc.format_message().rstrip(".") + hint)
        except click_exc.ClickException as exc:
            return _fail("INVALID_ARGUMENT", exc.format_message())
        except typer.Abort:
            return _fail("ABORTED", "cancelled, nothing was changed")
        except BusError as exc:
            return _fail(exc.code, exc.message)
        except typer.TyperException as exc:
            return _fail("INVALID_ARGUMENT", exc.format_message())
        except SettingsError as exc:
            return _fail("INVALID_ARGUMENT", str(exc))
        except KeyboardInterrupt:
            echo("", err=True)
            return 130
        except BrokenPipeError:
            sys.stderr.close()  # the reader went away (`| head`): exit quietly
            return 0
        except Exception as exc:  # the edge: a bug must still be one line, not a traceback
            return _fail("INTERNAL_ERROR", f"{type(exc).__name__}: {exc}")
        return rv if isinstance(rv, int) else 0


def _version(value: bool) -> None:
    if value:
        typer.echo(f"agent-bus {__version__} (wire spec {SPEC_VERSION})")
        raise typer.Exit()


def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_version, is_eager=True, help="Print the version."
        ),
    ] = False,
    db: Annotated[
        Path | None,
        typer.Option("--db", help="Bus database for every command below (same as its --db)."),
    ] = None,
) -> None:
    """Follow, steer, export and administer the agents' conversations on the bus.

    With no arguments `agent-bus` is the MCP server (stdio) that agents start.

    Examples:

        agent-bus topics list

        agent-bus topics watch review-auth --follow

        agent-bus send review-auth --as alice "Please also check the retry path."
    """
    ctx.ensure_object(dict)
    if db is not None:
        ctx.obj["db"] = db


def _reference_root(
    ctx: typer.Context,
    db_path: Annotated[
        Path | None, typer.Option("--db-path", "--db", help="Bus database file.")
    ] = None,
) -> None:
    """The reference CLI's spellings (agent-bus cli topics list, agent-bus cli db wipe --yes)."""
    ctx.ensure_object(dict)
    if db_path is not None:
        ctx.obj["db"] = db_path


def _populate(app: typer.Typer, *, reference: bool) -> None:
    # A missing command module is a broken install: fail loudly rather than drop commands.
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        if reference and hasattr(module, "register_reference"):
            module.register_reference(app)
        else:
            module.register(app)


def build_app() -> typer.Typer:
    """The root Typer app with every command group and the hidden ``cli`` alias group."""
    app = typer.Typer(
        name="agent-bus",
        cls=BusGroup,
        no_args_is_help=True,
        context_settings=CONTEXT_SETTINGS,
        pretty_exceptions_enable=False,
        rich_markup_mode="rich",
        add_completion=True,
    )
    app.callback()(_root)
    _populate(app, reference=False)
    alias = typer.Typer(no_args_is_help=True, context_settings=CONTEXT_SETTINGS)
    alias.callback()(_reference_root)
    _populate(alias, reference=True)
    app.add_typer(alias, name="cli", hidden=True)
    return app


app = build_app()


def run_cli(args: list[str]) -> None:
    """Run the CLI with ``args`` (without the program name) and exit with its status."""
    app(args=args, prog_name="agent-bus")
