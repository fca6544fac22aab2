"""Client config entries for a remote bus (``agent-bus mcp-config --url URL --token-env VAR``).

Each client gets its own HTTP form, and every form reads the bearer token from an
environment variable at run time, so the secret is never written to a file:

- Claude Code: ``type: http`` with ``headers``; ``${VAR}`` is expanded in ``.mcp.json``.
- Codex: ``url`` and ``bearer_token_env_var`` (the variable's name).
- Gemini CLI: ``httpUrl`` and ``headers``; settings strings expand ``$VAR`` / ``${VAR}``.
- Cursor: ``url`` and ``headers``; ``${env:VAR}`` is expanded.
- OpenCode: ``type: remote``, ``url`` and ``headers``; ``{env:VAR}`` is expanded.

Sources are listed in docs/how-to/serve-over-http.md.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from agent_bus.errors import ConfigMergeRefused, InstallFailed, InvalidArgument
from agent_bus.installers.clients import get_client
from agent_bus.installers.files import atomic_write
from agent_bus.installers.mcp_config import SERVER_NAME, ConfigWriteResult, config_path

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN_REF = {
    "claude-code": "${{{}}}",
    "gemini": "${{{}}}",
    "cursor": "${{env:{}}}",
    "opencode": "{{env:{}}}",
}


def _check(url: object, token_env: object) -> tuple[str, str]:
    if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url):
        raise InvalidArgument("--url must be an http:// or https:// URL", field="url")
    if not isinstance(token_env, str) or not _ENV_NAME.match(token_env):
        raise InvalidArgument(
            "--token-env must be an environment variable name such as AGENT_BUS_TOKEN",
            field="token_env",
        )
    if token_env.startswith("agb_"):
        raise InvalidArgument(
            "--token-env takes the variable's name, not the token itself", field="token_env"
        )
    return url, token_env


def remote_entry(client: str, url: str, token_env: str) -> dict[str, Any]:
    """The agent-bus entry of ``client`` for the HTTP server at ``url``.

    Raises:
        InvalidArgument: a bad URL or variable name, an unknown client, or a client with no
            documented way to read a header from the environment.
    """
    get_client(client)
    url, token_env = _check(url, token_env)
    if client == "codex":
        return {"url": url, "bearer_token_env_var": token_env}
    if client not in _TOKEN_REF:
        raise InvalidArgument(
            f"{client}: no documented way to read a bearer token from an environment "
            "variable; configure it by hand (see docs/how-to/serve-over-http.md)",
            field="client",
        )
    auth = {"Authorization": "Bearer " + _TOKEN_REF[client].format(token_env)}
    if client == "claude-code":
        return {"type": "http", "url": url, "headers": auth}
    if client == "gemini":
        return {"httpUrl": url, "headers": auth}
    if client == "opencode":
        return {"type": "remote", "url": url, "enabled": True, "headers": auth}
    return {"url": url, "headers": auth}


def _servers_key(client: str) -> str:
    return "mcp" if get_client(client).config_format == "opencode-json" else "mcpServers"


def remote_config(client: str, url: str, token_env: str) -> str:
    """A ready-to-paste snippet (TOML for Codex, JSON for the others)."""
    entry = remote_entry(client, url, token_env)
    if client == "codex":
        import tomlkit

        doc = tomlkit.document()
        servers = tomlkit.table(is_super_table=True)
        table = tomlkit.table()
        table.update(entry)
        servers[SERVER_NAME] = table
        doc["mcp_servers"] = servers
        return tomlkit.dumps(doc)
    return json.dumps({_servers_key(client): {SERVER_NAME: entry}}, indent=2) + "\n"


def write_remote_config(
    client: str,
    url: str,
    token_env: str,
    *,
    project_dir: Path | None = None,
    user: bool = False,
) -> ConfigWriteResult:
    """Set the agent-bus entry of ``client``'s config file to the remote form.

    The whole entry is replaced (a local ``command`` next to a ``url`` would confuse the
    client); everything else in the file is kept.

    Raises:
        ConfigMergeRefused: the file is not plain JSON/TOML; nothing was written.
        InstallFailed: the file cannot be read or written.
    """
    entry = remote_entry(client, url, token_env)
    snippet = remote_config(client, url, token_env)
    target = config_path(client, project_dir=project_dir, user=user)
    try:
        original = target.read_text(encoding="utf-8") if target.exists() else None
        if client == "codex":
            text = _set_toml(original or "", entry, target, snippet)
        else:
            text = _set_json(original, _servers_key(client), entry, target, snippet)
        if text is not None:
            atomic_write(target, text.encode("utf-8"))
    except OSError as exc:
        raise InstallFailed(f"cannot write {target}: {exc.strerror or exc}") from None
    if text is None:
        return ConfigWriteResult(target, "unchanged")
    return ConfigWriteResult(target, "created" if original is None else "updated")


def _refuse(path: Path, problem: str, snippet: str) -> ConfigMergeRefused:
    return ConfigMergeRefused(
        f"{path}: {problem}; nothing was written. Add this by hand:\n{snippet}", snippet=snippet
    )


def _set_json(
    original: str | None, key: str, entry: dict[str, Any], path: Path, snippet: str
) -> str | None:
    data: Any = {}
    if original is not None and original.strip():
        try:
            data = json.loads(original)
        except json.JSONDecodeError as exc:
            raise _refuse(path, f"not plain JSON ({exc})", snippet) from None
    if not isinstance(data, dict) or not isinstance(data.get(key, {}), dict):
        raise _refuse(path, f"expected an object with an object {key!r}", snippet)
    if data.get(key, {}).get(SERVER_NAME) == entry and original is not None:
        return None
    data.setdefault(key, {})[SERVER_NAME] = entry
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _set_toml(original: str, entry: dict[str, Any], path: Path, snippet: str) -> str | None:
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        before = tomllib.loads(original)
        doc = tomlkit.parse(original)
    except (tomllib.TOMLDecodeError, TOMLKitError) as exc:
        raise _refuse(path, f"not valid TOML ({exc})", snippet) from None
    servers = before.get("mcp_servers", {})
    if not isinstance(servers, dict):
        raise _refuse(path, "mcp_servers is not a table", snippet)
    if servers.get(SERVER_NAME) == entry:
        return None
    if "mcp_servers" not in doc:
        doc["mcp_servers"] = tomlkit.table(is_super_table=True)
    table = tomlkit.table()
    table.update(entry)
    doc["mcp_servers"][SERVER_NAME] = table  # type: ignore[index]
    return tomlkit.dumps(doc)
