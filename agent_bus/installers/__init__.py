"""Set coding clients up to use the bus: skill packs and MCP server entries where each reads them.

Modules: ``clients`` (the table of where each client reads what: data only), ``skills`` (copy
the shipped packs, each visible once per client), ``mcp_config`` (print or merge the server
entry), ``files`` (atomic writes and paths, shared with the hook installers).

Public API (the CLI's ``agent-bus skills …`` and ``agent-bus mcp-config …`` call these):
    CLIENTS: dict[str, ClientSpec]; get_client(name) -> ClientSpec
    list_skills() -> list[Skill]; get_skill(name) -> Skill
    skills_dir(client, *, project_dir=None, user=False) -> Path
    install_skills(names, client, project_dir=None, user=False, force=False) -> InstallReport
    uninstall_skills(names, client, project_dir=None, user=False, force=False) -> InstallReport
    config_path(client, *, project_dir=None, user=False) -> Path
    resolve_command(command=None) -> ServerCommand
    mcp_config(client, db_path=None, *, command=...) -> str
    write_mcp_config(client, db_path=None, *, path=None, project_dir=None, user=False,
                     command=...) -> ConfigWriteResult
    remove_mcp_config(client, *, path=None, project_dir=None, user=False) -> ConfigWriteResult
Errors are coded ``BusError``s: INVALID_ARGUMENT (unknown client or pack, both scopes),
CONFIG_MERGE_REFUSED, COMMAND_NOT_FOUND, INSTALL_FAILED.
"""

from __future__ import annotations

from agent_bus.errors import CommandNotFound, ConfigMergeRefused, InstallFailed
from agent_bus.installers.clients import CLIENTS, ClientSpec, get_client
from agent_bus.installers.files import atomic_write
from agent_bus.installers.mcp_config import (
    DB_ENV,
    SERVER_COMMAND,
    SERVER_NAME,
    ConfigWriteResult,
    ServerCommand,
    config_path,
    mcp_config,
    remove_mcp_config,
    resolve_command,
    server_entry,
    write_mcp_config,
)
from agent_bus.installers.skills import (
    MANIFEST,
    InstallReport,
    Skill,
    SkillInstall,
    UnknownSkillError,
    get_skill,
    install_skills,
    list_skills,
    skills_dir,
    uninstall_skills,
)

__all__ = [
    "CLIENTS",
    "DB_ENV",
    "MANIFEST",
    "SERVER_COMMAND",
    "SERVER_NAME",
    "ClientSpec",
    "CommandNotFound",
    "ConfigMergeRefused",
    "ConfigWriteResult",
    "InstallFailed",
    "InstallReport",
    "ServerCommand",
    "Skill",
    "SkillInstall",
    "UnknownSkillError",
    "atomic_write",
    "config_path",
    "get_client",
    "get_skill",
    "install_skills",
    "list_skills",
    "mcp_config",
    "remove_mcp_config",
    "resolve_command",
    "server_entry",
    "skills_dir",
    "uninstall_skills",
    "write_mcp_config",
]
