"""Where each coding client reads skill packs and MCP servers: a table of data, no logic.

Paths were checked against each client's own documentation (Dec 2026); the sources are listed
in docs/how-to/install-skills-and-config.md. A path starting with ``~/`` is per user, any
other is relative to the project.

``project_skills`` / ``user_skills`` list every folder the client reads packs from, the folder we
install into first. Clients that read a shared folder (``.agents/skills``) get their packs there,
so when several clients are set up in one project each still sees each pack once (Gemini CLI
reads both ``.gemini/skills`` and ``.agents/skills`` and warns about a pack found in both).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agent_bus.errors import InvalidArgument

ConfigFormat = Literal["mcpServers-json", "opencode-json", "codex-toml"]


@dataclass(frozen=True)
class ClientSpec:
    """Where one client reads skills and MCP servers, and what it asks of a project config."""

    name: str
    label: str
    project_skills: tuple[str, ...]
    user_skills: tuple[str, ...]
    project_config: str
    user_config: str
    config_format: ConfigFormat
    # An environment variable that, when set, replaces the directory of ``user_config``.
    user_config_home_env: str | None = None
    # What the user must do before the client uses a server from a project-scope file.
    project_next_step: str | None = None

    def skill_dirs(self, user: bool) -> tuple[str, ...]:
        """Every folder this client reads packs from at that scope, ours to install first."""
        return self.user_skills if user else self.project_skills


CLIENTS: dict[str, ClientSpec] = {
    spec.name: spec
    for spec in (
        ClientSpec(
            "claude-code",
            "Claude Code",
            project_skills=(".claude/skills",),
            user_skills=("~/.claude/skills",),
            project_config=".mcp.json",
            user_config="~/.claude.json",
            config_format="mcpServers-json",
            project_next_step=(
                "Claude Code asks you to approve servers from a project's .mcp.json the next "
                "time it starts in this folder: answer yes (check with `claude mcp list`)."
            ),
        ),
        ClientSpec(
            "codex",
            "Codex",
            project_skills=(".agents/skills",),
            user_skills=("~/.agents/skills",),
            project_config=".codex/config.toml",
            user_config="~/.codex/config.toml",
            config_format="codex-toml",
            user_config_home_env="CODEX_HOME",
            project_next_step=(
                "Codex reads a project's .codex/config.toml only once the project is trusted: "
                "accept Codex's trust prompt in this folder (or mark it trusted under "
                "[projects] in ~/.codex/config.toml)."
            ),
        ),
        ClientSpec(
            "gemini",
            "Gemini CLI",
            project_skills=(".agents/skills", ".gemini/skills"),
            user_skills=("~/.agents/skills", "~/.gemini/skills"),
            project_config=".gemini/settings.json",
            user_config="~/.gemini/settings.json",
            config_format="mcpServers-json",
            project_next_step=(
                "With folder trust on, Gemini CLI ignores the servers of an untrusted folder: "
                "trust this folder (Gemini asks on start, or run /permissions)."
            ),
        ),
        ClientSpec(
            "antigravity",
            "Antigravity CLI",
            project_skills=(".agents/skills",),
            user_skills=("~/.gemini/antigravity-cli/skills",),
            project_config=".agents/mcp_config.json",
            user_config="~/.gemini/config/mcp_config.json",
            config_format="mcpServers-json",
            project_next_step=(
                "Restart agy in this folder; /mcp shows the server and /skills the packs."
            ),
        ),
        ClientSpec(
            "cursor",
            "Cursor",
            project_skills=(".agents/skills", ".cursor/skills", ".claude/skills"),
            user_skills=("~/.agents/skills", "~/.cursor/skills", "~/.claude/skills"),
            project_config=".cursor/mcp.json",
            user_config="~/.cursor/mcp.json",
            config_format="mcpServers-json",
            project_next_step="Enable the server in Cursor's MCP settings if it shows as off.",
        ),
        ClientSpec(
            "opencode",
            "OpenCode",
            project_skills=(".agents/skills", ".opencode/skills", ".claude/skills"),
            user_skills=("~/.agents/skills", "~/.config/opencode/skills", "~/.claude/skills"),
            project_config="opencode.json",
            user_config="~/.config/opencode/opencode.json",
            config_format="opencode-json",
            project_next_step=(
                "OpenCode runs a project's servers once approved: `opencode mcp approve "
                "agent-bus` (again after the entry changes)."
            ),
        ),
    )
}


def get_client(client: str) -> ClientSpec:
    """The :class:`ClientSpec` for ``client``.

    Raises:
        InvalidArgument: the name is not a known client (the message lists them).
    """
    try:
        return CLIENTS[client]
    except KeyError:
        raise InvalidArgument(
            f"unknown client {client!r}; known clients: {', '.join(CLIENTS)}", field="client"
        ) from None
