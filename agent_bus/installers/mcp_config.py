"""Register the agent-bus MCP server in a client's config file (print it, or merge it in).

The entry runs a command that exists for the client: the bare ``agent-bus`` when PATH finds
this very install, else this install's absolute path. ``AGENT_BUS_DB`` is pinned only when the
user chose a database; otherwise the server finds its default itself, and a project file that a
team commits carries nobody's home path. JSON files are merged as data; Codex's TOML is edited
with tomlkit, so comments and layout elsewhere in the file survive.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agent_bus.errors import CommandNotFound, ConfigMergeRefused, InstallFailed, InvalidArgument
from agent_bus.installers.clients import ClientSpec, get_client
from agent_bus.installers.files import atomic_write, place
from agent_bus.settings import DEFAULT_DB_PATH

SERVER_NAME = "agent-bus"
SERVER_COMMAND = "agent-bus"
DB_ENV = "AGENT_BUS_DB"


@dataclass(frozen=True)
class ServerCommand:
    """The argv a client runs to start the server, and why it is not the bare name, if so."""

    argv: tuple[str, ...]
    note: str | None = None


@dataclass(frozen=True)
class ConfigWriteResult:
    """Where the entry went, whether the file was ``created``, ``updated``, ``unchanged`` or
    had the entry ``removed``, and what the user must still do in the client, if anything."""

    path: Path
    status: Literal["created", "updated", "unchanged", "removed"]
    next_step: str | None = None


def this_install() -> Path | None:
    """The ``agent-bus`` script of the running install, when there is one beside Python."""
    script = Path(sys.executable).parent / SERVER_COMMAND
    return script if script.is_file() and os.access(script, os.X_OK) else None


def resolve_command(command: str | None = None) -> ServerCommand:
    """The command a client should run: ``command`` checked, or this install found on PATH.

    Raises:
        CommandNotFound: ``command`` is neither an executable file nor a name on PATH.
    """
    if command is not None:
        if os.sep in command or command.startswith("~"):
            path = Path(command).expanduser().absolute()
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise CommandNotFound(
                    f"--command {command}: no executable file there", field="command"
                )
            return ServerCommand((str(path),))
        if shutil.which(command) is None:
            raise CommandNotFound(
                f"--command {command}: not found on PATH; pass an absolute path", field="command"
            )
        return ServerCommand((command,))
    mine = this_install()
    found = shutil.which(SERVER_COMMAND)
    if found is not None and (mine is None or _same_file(found, mine)):
        return ServerCommand((SERVER_COMMAND,))
    why = (
        "`agent-bus` is not on PATH"
        if found is None
        else f"PATH finds another agent-bus first ({found})"
    )
    if mine is not None:
        return ServerCommand((str(mine),), f"{why}: the config runs this install, {mine}")
    return ServerCommand(
        (sys.executable, "-m", "agent_bus"), f"{why}: the config runs {sys.executable} -m agent_bus"
    )


def _same_file(a: str | Path, b: str | Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def config_path(client: str, *, project_dir: Path | None = None, user: bool = False) -> Path:
    """The MCP config file of ``client``: per user, or in ``project_dir`` (default cwd).

    Raises:
        InvalidArgument: unknown client, or both scopes given.
    """
    spec = get_client(client)
    if user and spec.user_config_home_env and os.environ.get(spec.user_config_home_env):
        if project_dir is not None:
            raise InvalidArgument(
                "choose either a project directory or the user scope, not both", field="user"
            )
        return Path(os.environ[spec.user_config_home_env]) / Path(spec.user_config).name
    return place(spec.user_config if user else spec.project_config, project_dir, user)


def _argv(command: str | ServerCommand | None) -> tuple[str, ...]:
    if isinstance(command, ServerCommand):
        return command.argv
    return (command or SERVER_COMMAND,)


def server_entry(
    client: str,
    db_path: str | os.PathLike[str] | None = None,
    *,
    command: str | ServerCommand | None = SERVER_COMMAND,
) -> dict[str, Any]:
    """The agent-bus server entry in ``client``'s own schema (without the surrounding keys).

    ``db_path`` None leaves ``AGENT_BUS_DB`` out: the server then uses its default database.
    """
    spec = get_client(client)
    argv = _argv(command)
    env = {DB_ENV: str(Path(db_path).expanduser())} if db_path is not None else None
    if spec.config_format == "opencode-json":
        entry: dict[str, Any] = {"type": "local", "command": list(argv), "enabled": True}
        if env:
            entry["environment"] = env
        return entry
    entry = {"command": argv[0], "args": list(argv[1:])}
    if env:
        entry["env"] = env
    return entry


def _servers_key(spec: ClientSpec) -> str:
    return "mcp" if spec.config_format == "opencode-json" else "mcpServers"


def _env_key(spec: ClientSpec) -> str:
    return "environment" if spec.config_format == "opencode-json" else "env"


def mcp_config(
    client: str,
    db_path: str | os.PathLike[str] | None = None,
    *,
    command: str | ServerCommand | None = SERVER_COMMAND,
) -> str:
    """A ready-to-paste config snippet that registers agent-bus with ``client``.

    Raises:
        InvalidArgument: unknown client.
    """
    spec = get_client(client)
    entry = server_entry(client, db_path, command=command)
    if spec.config_format == "codex-toml":
        import tomlkit

        doc = tomlkit.document()
        servers = tomlkit.table(is_super_table=True)
        servers[SERVER_NAME] = _toml_table(entry)
        doc["mcp_servers"] = servers
        return tomlkit.dumps(doc)
    return json.dumps({_servers_key(spec): {SERVER_NAME: entry}}, indent=2) + "\n"


def write_mcp_config(
    client: str,
    db_path: str | os.PathLike[str] | None = None,
    *,
    path: Path | None = None,
    project_dir: Path | None = None,
    user: bool = False,
    command: str | ServerCommand | None = SERVER_COMMAND,
) -> ConfigWriteResult:
    """Add or update the agent-bus entry in ``client``'s config file, keeping everything else.

    ``path`` overrides the file; otherwise :func:`config_path` picks it from the scope. Keys a
    user added to our entry (timeouts, ``trust`` …) and other env variables are kept; only the
    command and, when ``db_path`` is given, ``AGENT_BUS_DB`` are set. Without ``db_path`` an
    ``AGENT_BUS_DB`` pinning the default database (what older releases wrote) is dropped and
    any other value kept. The file is only rewritten when the entry changes, atomically,
    keeping its permissions.

    Raises:
        InvalidArgument: unknown client, or both scopes given.
        ConfigMergeRefused: the existing file is not plain JSON/TOML we can merge into safely
            (e.g. JSON with comments); ``details["snippet"]`` is the entry to add by hand.
        InstallFailed: the file cannot be read or written.
    """
    spec = get_client(client)
    target = path if path is not None else config_path(client, project_dir=project_dir, user=user)
    entry = server_entry(client, db_path, command=command)
    snippet = mcp_config(client, db_path, command=command)
    try:
        original = target.read_text(encoding="utf-8") if target.exists() else None
        if spec.config_format == "codex-toml":
            merged = _merge_toml(original or "", entry, db_path is None, target, snippet)
        else:
            merged = _merge_json(original, spec, entry, db_path is None, target, snippet)
        if merged is not None:
            atomic_write(target, merged.encode("utf-8"))
    except OSError as exc:
        raise InstallFailed(f"cannot write {target}: {exc.strerror or exc}") from None
    step = spec.project_next_step if not user and path is None else None
    if merged is None:
        return ConfigWriteResult(target, "unchanged", step)
    return ConfigWriteResult(target, "created" if original is None else "updated", step)


def _refuse(path: Path, problem: str, snippet: str) -> ConfigMergeRefused:
    return ConfigMergeRefused(
        f"{path}: {problem}; nothing was written. Add this by hand:\n{snippet}", snippet=snippet
    )


def _default_db_pin(value: object) -> bool:
    """True for an ``AGENT_BUS_DB`` naming the default database (older releases always wrote it)."""
    if not isinstance(value, str):
        return False
    return Path(value).expanduser() == DEFAULT_DB_PATH.expanduser()


def _merged_entry(
    existing: Any, entry: dict[str, Any], env_key: str, unpin: bool
) -> dict[str, Any]:
    """Our keys first (env merged into the user's env), then whatever else the user had."""
    old = existing if isinstance(existing, dict) else {}
    merged: dict[str, Any] = {}
    for key, value in entry.items():
        if isinstance(value, dict) and isinstance(old.get(key), dict):
            merged[key] = {**old[key], **value}
        else:
            merged[key] = value
    merged.update({k: v for k, v in old.items() if k not in entry})
    env = merged.get(env_key)
    if unpin and isinstance(env, dict) and _default_db_pin(env.get(DB_ENV)):
        env = {k: v for k, v in env.items() if k != DB_ENV}
        if env:
            merged[env_key] = env
        else:
            merged.pop(env_key)
    return merged


def _merge_json(
    original: str | None,
    spec: ClientSpec,
    entry: dict[str, Any],
    unpin: bool,
    path: Path,
    snippet: str,
) -> str | None:
    """Return the new file text, or None when the entry is already as wanted."""
    key = _servers_key(spec)
    data: Any = {}
    if original is not None and original.strip():
        try:
            data = json.loads(original)
        except json.JSONDecodeError as exc:
            raise _refuse(path, f"not plain JSON ({exc})", snippet) from None
    if not isinstance(data, dict) or not isinstance(data.get(key, {}), dict):
        raise _refuse(path, f"expected an object with an object {key!r}", snippet)
    before = copy.deepcopy(data)
    servers = data.setdefault(key, {})
    servers[SERVER_NAME] = _merged_entry(servers.get(SERVER_NAME), entry, _env_key(spec), unpin)
    if data == before and original is not None:
        return None
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _merge_toml(
    original: str, entry: dict[str, Any], unpin: bool, path: Path, snippet: str
) -> str | None:
    """Set our ``[mcp_servers.agent-bus]`` keys with tomlkit, leaving all other text as is.

    Only values that differ are assigned, so an unchanged key keeps its comment. The result is
    read back with tomllib: if anything but our entry changed, nothing is written.
    """
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        before = tomllib.loads(original)
        doc = tomlkit.parse(original)
    except (tomllib.TOMLDecodeError, TOMLKitError) as exc:
        raise _refuse(path, f"not valid TOML ({exc})", snippet) from None
    servers = before.get("mcp_servers", {})
    if not isinstance(servers, dict) or not isinstance(servers.get(SERVER_NAME, {}), dict):
        raise _refuse(path, "mcp_servers.agent-bus is not a table", snippet)
    desired = _merged_entry(servers.get(SERVER_NAME), entry, "env", unpin)
    if servers.get(SERVER_NAME) == desired:
        return None
    try:
        if "mcp_servers" not in doc:
            if original.strip():
                doc.add(tomlkit.nl())
            doc["mcp_servers"] = tomlkit.table(is_super_table=True)
        table = doc["mcp_servers"]
        if SERVER_NAME not in table:
            table[SERVER_NAME] = _toml_table(desired)
        else:
            _update_toml(table[SERVER_NAME], desired)
        result = tomlkit.dumps(doc)
        after = tomllib.loads(result)
    except (TOMLKitError, tomllib.TOMLDecodeError, TypeError, ValueError) as exc:
        raise _refuse(path, f"cannot merge safely ({exc})", snippet) from None
    if after.get("mcp_servers", {}).get(SERVER_NAME) != desired:
        raise _refuse(path, "the merged entry did not read back as written", snippet)
    if _without_ours(after) != _without_ours(before):
        raise _refuse(path, "merging would have changed other settings", snippet)
    return result


def _update_toml(table: Any, desired: dict[str, Any]) -> None:
    """Bring ``table`` (a tomlkit table or inline table) to ``desired``, touching only changes."""
    for key in [k for k in table if k not in desired]:
        del table[key]
    for key, value in desired.items():
        current = table.get(key)
        plain = current.unwrap() if hasattr(current, "unwrap") else current
        if plain == value:
            continue
        if isinstance(value, dict) and current is not None and hasattr(current, "items"):
            _update_toml(current, value)
        else:
            table[key] = value


def _toml_table(values: dict[str, Any]) -> Any:
    import tomlkit

    table = tomlkit.table()
    for key, value in values.items():
        if isinstance(value, dict):
            inline = tomlkit.inline_table()
            inline.update(value)
            table[key] = inline
        else:
            table[key] = value
    return table


def _without_ours(data: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    servers = data.get("mcp_servers")
    if isinstance(servers, dict):
        servers.pop(SERVER_NAME, None)
        if not servers:
            data.pop("mcp_servers")
    return data


def remove_mcp_config(
    client: str, *, path: Path | None = None, project_dir: Path | None = None, user: bool = False
) -> ConfigWriteResult:
    """Take the agent-bus entry out of ``client``'s config file, keeping everything else.

    An empty server list left behind is dropped too, and a file left with nothing in it is
    deleted, so an install followed by a removal gives back what was there before.

    Raises:
        InvalidArgument: unknown client, or both scopes given.
        ConfigMergeRefused: the file is not plain JSON/TOML we can edit safely.
        InstallFailed: the file cannot be read or written.
    """
    spec = get_client(client)
    target = path if path is not None else config_path(client, project_dir=project_dir, user=user)
    try:
        if not target.exists():
            return ConfigWriteResult(target, "unchanged")
        original = target.read_text(encoding="utf-8")
        if spec.config_format == "codex-toml":
            left = _without_toml_entry(original, target)
        else:
            left = _without_json_entry(original, _servers_key(spec), target)
        if left is None:
            return ConfigWriteResult(target, "unchanged")
        if left.strip() in ("", "{}"):
            target.unlink()
        else:
            atomic_write(target, left.encode("utf-8"))
    except OSError as exc:
        raise InstallFailed(f"cannot write {target}: {exc.strerror or exc}") from None
    return ConfigWriteResult(target, "removed")


def _without_json_entry(original: str, key: str, path: Path) -> str | None:
    try:
        data = json.loads(original) if original.strip() else {}
    except json.JSONDecodeError as exc:
        raise ConfigMergeRefused(f"{path}: not plain JSON ({exc}); nothing was changed") from None
    servers = data.get(key) if isinstance(data, dict) else None
    if not isinstance(servers, dict) or SERVER_NAME not in servers:
        return None
    del servers[SERVER_NAME]
    if not servers:
        del data[key]
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _without_toml_entry(original: str, path: Path) -> str | None:
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        doc = tomlkit.parse(original)
    except TOMLKitError as exc:
        raise ConfigMergeRefused(f"{path}: not valid TOML ({exc}); nothing was changed") from None
    servers = doc.get("mcp_servers")
    if servers is None or SERVER_NAME not in servers:
        return None
    del servers[SERVER_NAME]
    if not servers:
        del doc["mcp_servers"]
    # Our table came with a blank line before it; do not leave that at the end of the file.
    return tomlkit.dumps(doc).rstrip("\n") + "\n"
