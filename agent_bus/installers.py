"""Install skill packs and MCP server config where each known coding agent looks for them.

Everything client-specific is data in :data:`CLIENTS`; the functions below never branch on a
client's name. Paths were checked against each client's own documentation (Nov 2026):

- Claude Code: skills ``.claude/skills/`` and ``~/.claude/skills/``; MCP ``.mcp.json``
  (project scope) and ``~/.claude.json`` (user scope), key ``mcpServers``.
  https://code.claude.com/docs/en/skills · https://code.claude.com/docs/en/mcp
- Codex: skills ``.agents/skills/`` and ``~/.agents/skills/``; MCP ``[mcp_servers.<name>]`` in
  ``~/.codex/config.toml`` (``$CODEX_HOME``) or ``.codex/config.toml`` in a trusted project.
  https://developers.openai.com/codex/skills · https://developers.openai.com/codex/mcp
- Gemini CLI: skills ``.gemini/skills/`` and ``~/.gemini/skills/``; MCP ``mcpServers`` in
  ``.gemini/settings.json`` and ``~/.gemini/settings.json``.
  https://geminicli.com/docs/cli/using-agent-skills/ · https://geminicli.com/docs/tools/mcp-server/
- Cursor: skills ``.cursor/skills/`` and ``~/.cursor/skills/``; MCP ``mcpServers`` in
  ``.cursor/mcp.json`` and ``~/.cursor/mcp.json``.
  https://cursor.com/docs/context/skills · https://cursor.com/docs/mcp
- OpenCode: skills ``.opencode/skills/`` and ``~/.config/opencode/skills/``; MCP ``mcp`` key
  (``type: local``, ``command`` as an array, ``environment``) in ``opencode.json`` and
  ``~/.config/opencode/opencode.json``.
  https://opencode.ai/docs/skills/ · https://opencode.ai/docs/mcp-servers/

Public API (the CLI's ``agent-bus skills …`` and ``agent-bus mcp-config …`` call these):
    CLIENTS: dict[str, ClientSpec]
    list_skills() -> list[Skill]
    get_skill(name: str) -> Skill
    skills_dir(client: str, *, project_dir: Path | None = None, user: bool = False) -> Path
    install_skills(names, client, project_dir=None, user=False, force=False) -> InstallReport
    config_path(client: str, *, project_dir: Path | None = None, user: bool = False) -> Path
    mcp_config(client: str, db_path, *, command="agent-bus") -> str
    write_mcp_config(client, db_path, *, path=None, project_dir=None, user=False,
                     command="agent-bus") -> ConfigWriteResult
Errors: UnknownClientError / UnknownSkillError (ValueError), ConfigMergeError (an existing
config file we cannot merge into safely; its message carries the snippet to add by hand).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import tempfile
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from agent_bus import __version__, frontmatter
from agent_bus.resources import data_dir

SERVER_NAME = "agent-bus"
SERVER_COMMAND = "agent-bus"
DB_ENV = "AGENT_BUS_DB"
MANIFEST = ".agent-bus-manifest.json"

ConfigFormat = Literal["mcpServers-json", "opencode-json", "codex-toml"]


@dataclass(frozen=True)
class ClientSpec:
    """Where one client reads skills and MCP servers. Paths starting with ``~/`` are per user."""

    name: str
    label: str
    project_skills: str
    user_skills: str
    project_config: str
    user_config: str
    config_format: ConfigFormat
    # An environment variable that, when set, replaces the directory of ``user_config``.
    user_config_home_env: str | None = None


CLIENTS: dict[str, ClientSpec] = {
    spec.name: spec
    for spec in (
        ClientSpec(
            "claude-code",
            "Claude Code",
            project_skills=".claude/skills",
            user_skills="~/.claude/skills",
            project_config=".mcp.json",
            user_config="~/.claude.json",
            config_format="mcpServers-json",
        ),
        ClientSpec(
            "codex",
            "Codex",
            project_skills=".agents/skills",
            user_skills="~/.agents/skills",
            project_config=".codex/config.toml",
            user_config="~/.codex/config.toml",
            config_format="codex-toml",
            user_config_home_env="CODEX_HOME",
        ),
        ClientSpec(
            "gemini",
            "Gemini CLI",
            project_skills=".gemini/skills",
            user_skills="~/.gemini/skills",
            project_config=".gemini/settings.json",
            user_config="~/.gemini/settings.json",
            config_format="mcpServers-json",
        ),
        ClientSpec(
            "cursor",
            "Cursor",
            project_skills=".cursor/skills",
            user_skills="~/.cursor/skills",
            project_config=".cursor/mcp.json",
            user_config="~/.cursor/mcp.json",
            config_format="mcpServers-json",
        ),
        ClientSpec(
            "opencode",
            "OpenCode",
            project_skills=".opencode/skills",
            user_skills="~/.config/opencode/skills",
            project_config="opencode.json",
            user_config="~/.config/opencode/opencode.json",
            config_format="opencode-json",
        ),
    )
}


class UnknownClientError(ValueError):
    """The client name is not in :data:`CLIENTS`."""


class UnknownSkillError(ValueError):
    """No shipped skill pack has that name."""


class ConfigMergeError(Exception):
    """An existing config file cannot be merged safely; nothing was written."""


# --------------------------------------------------------------------------- skills


@dataclass(frozen=True)
class Skill:
    """A shipped skill pack: a folder with ``SKILL.md`` and its reference files."""

    name: str
    description: str
    path: Path

    def files(self) -> list[Path]:
        """Relative paths of every file in the pack, sorted (dotfiles and caches skipped)."""
        found = []
        for file in self.path.rglob("*"):
            rel = file.relative_to(self.path)
            if file.is_file() and not any(
                p.startswith(".") or p == "__pycache__" for p in rel.parts
            ):
                found.append(rel)
        return sorted(found)

    def text(self) -> str:
        """The ``SKILL.md`` text."""
        return (self.path / "SKILL.md").read_text(encoding="utf-8")


def list_skills() -> list[Skill]:
    """Every shipped skill pack, sorted by name.

    Raises:
        frontmatter.FrontMatterError: a shipped ``SKILL.md`` is malformed (a packaging bug).
    """
    skills = []
    for skill_md in sorted(data_dir("skills").glob("*/SKILL.md")):
        meta, _ = frontmatter.parse(skill_md.read_text(encoding="utf-8"))
        skills.append(Skill(str(meta["name"]), str(meta["description"]), skill_md.parent))
    return skills


def get_skill(name: str) -> Skill:
    """The shipped skill pack called ``name``.

    Raises:
        UnknownSkillError: no such pack (the message lists the known ones).
    """
    for skill in list_skills():
        if skill.name == name:
            return skill
    known = ", ".join(s.name for s in list_skills())
    raise UnknownSkillError(f"unknown skill {name!r}; shipped skills: {known}")


def get_client(client: str) -> ClientSpec:
    """The :class:`ClientSpec` for ``client``.

    Raises:
        UnknownClientError: the name is not a known client (the message lists them).
    """
    try:
        return CLIENTS[client]
    except KeyError:
        raise UnknownClientError(
            f"unknown client {client!r}; known clients: {', '.join(CLIENTS)}"
        ) from None


def _place(relative: str, project_dir: Path | None, user: bool) -> Path:
    if user and project_dir is not None:
        raise ValueError("choose either a project directory or the user scope, not both")
    if user:
        if not relative.startswith("~/"):
            raise ValueError(f"{relative!r} is not a per-user path")
        return Path.home() / relative[2:]
    return Path(project_dir if project_dir is not None else Path.cwd()) / relative


def skills_dir(client: str, *, project_dir: Path | None = None, user: bool = False) -> Path:
    """The folder ``client`` reads skill packs from: per user, or in ``project_dir`` (default cwd).

    Raises:
        UnknownClientError, ValueError: unknown client, or both scopes given.
    """
    spec = get_client(client)
    return _place(spec.user_skills if user else spec.project_skills, project_dir, user)


SkillStatus = Literal["installed", "updated", "unchanged", "modified", "overwritten"]


@dataclass
class SkillInstall:
    """What happened to one pack.

    ``installed``: new; ``updated``: an older copy we installed was replaced; ``unchanged``:
    already identical; ``modified``: the copy there was edited by someone, so it was left alone
    (``files`` lists the edited files; pass ``force`` to replace it); ``overwritten``: an
    edited copy was replaced because ``force`` was given.
    """

    name: str
    path: Path
    status: SkillStatus
    files: list[str] = field(default_factory=list)


@dataclass
class InstallReport:
    """The outcome of :func:`install_skills`, one entry per requested pack."""

    client: str
    target: Path
    skills: list[SkillInstall]

    @property
    def written(self) -> list[SkillInstall]:
        return [s for s in self.skills if s.status in ("installed", "updated", "overwritten")]

    @property
    def skipped(self) -> list[SkillInstall]:
        return [s for s in self.skills if s.status in ("unchanged", "modified")]

    @property
    def conflicts(self) -> list[SkillInstall]:
        return [s for s in self.skills if s.status == "modified"]


def install_skills(
    names: Iterable[str] | None,
    client: str,
    project_dir: Path | None = None,
    user: bool = False,
    force: bool = False,
) -> InstallReport:
    """Copy skill packs (all when ``names`` is empty or None) to where ``client`` reads them.

    Each installed pack gets a manifest of the hashes it was installed with, so a later run
    can tell an untouched older copy (safe to update) from a copy someone edited (left alone
    unless ``force``). Identical files are not rewritten: a second run writes nothing. Files a
    user added to an installed pack are never touched.

    Raises:
        UnknownClientError, UnknownSkillError, ValueError: bad client, pack name or scope.
        OSError: the target cannot be written.
    """
    target = skills_dir(client, project_dir=project_dir, user=user)
    wanted = list(names or [])
    skills = [get_skill(n) for n in wanted] if wanted else list_skills()
    return InstallReport(client, target, [_install_one(s, target / s.name, force) for s in skills])


def _install_one(skill: Skill, dest: Path, force: bool) -> SkillInstall:
    shipped = {rel.as_posix(): (skill.path / rel).read_bytes() for rel in skill.files()}
    previous = _read_manifest(dest)
    changed, edited = [], []
    for rel, content in shipped.items():
        current = _read_bytes(dest / rel)
        if current == content:
            continue
        changed.append(rel)
        if current is not None and previous.get(rel) != _sha256(current):
            edited.append(rel)
    # Files we installed before, no longer shipped, and untouched since: remove them.
    stale = [
        rel
        for rel, digest in previous.items()
        if rel not in shipped and _sha256(_read_bytes(dest / rel) or b"") == digest
    ]
    existed = dest.exists()
    if edited and not force:
        return SkillInstall(skill.name, dest, "modified", edited)
    for rel in changed:
        _atomic_write(dest / rel, shipped[rel])
    for rel in stale:
        (dest / rel).unlink(missing_ok=True)
    manifest = {rel: _sha256(content) for rel, content in shipped.items()}
    if manifest != previous or changed:
        payload = {"package_version": __version__, "files": manifest}
        _atomic_write(dest / MANIFEST, (json.dumps(payload, indent=2) + "\n").encode())
    if not changed and not stale:
        status: SkillStatus = "unchanged"
    elif edited:
        status = "overwritten"
    elif not existed or len(changed) == len(shipped) and not previous:
        status = "installed"
    else:
        status = "updated"
    return SkillInstall(skill.name, dest, status, changed + stale)


def _read_manifest(dest: Path) -> dict[str, str]:
    try:
        data = json.loads((dest / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return {}
    # The manifest lives in the user's (possibly cloned) project: only keys naming a plain
    # file inside the pack count, so it can never point us at anything else to delete.
    return {str(k): str(v) for k, v in files.items() if _inside(dest, str(k))}


def _inside(dest: Path, rel: str) -> bool:
    path = PurePosixPath(rel)
    if path.is_absolute() or not path.parts or any(p in ("..", "") for p in path.parts):
        return False
    current = dest
    for part in path.parts:  # no symlink below the pack folder may redirect us
        current = current / part
        if current.is_symlink():
            return False
    return current.resolve().is_relative_to(dest.resolve())


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via a temp file + rename, so a crash never leaves a half-written config or skill."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- MCP config


@dataclass(frozen=True)
class ConfigWriteResult:
    """Where the entry went and whether the file was ``created``, ``updated`` or ``unchanged``."""

    path: Path
    status: Literal["created", "updated", "unchanged"]


def config_path(client: str, *, project_dir: Path | None = None, user: bool = False) -> Path:
    """The MCP config file of ``client``: per user, or in ``project_dir`` (default cwd).

    Raises:
        UnknownClientError, ValueError: unknown client, or both scopes given.
    """
    spec = get_client(client)
    if user and spec.user_config_home_env and os.environ.get(spec.user_config_home_env):
        if project_dir is not None:
            raise ValueError("choose either a project directory or the user scope, not both")
        return Path(os.environ[spec.user_config_home_env]) / Path(spec.user_config).name
    return _place(spec.user_config if user else spec.project_config, project_dir, user)


def server_entry(
    client: str, db_path: str | os.PathLike[str], *, command: str = SERVER_COMMAND
) -> dict[str, Any]:
    """The agent-bus server entry in ``client``'s own schema (without the surrounding keys)."""
    spec = get_client(client)
    db = str(Path(db_path).expanduser())
    if spec.config_format == "opencode-json":
        return {"type": "local", "command": [command], "enabled": True, "environment": {DB_ENV: db}}
    return {"command": command, "args": [], "env": {DB_ENV: db}}


def mcp_config(
    client: str, db_path: str | os.PathLike[str], *, command: str = SERVER_COMMAND
) -> str:
    """A ready-to-paste config snippet that registers agent-bus with ``client``.

    Raises:
        UnknownClientError: unknown client.
    """
    spec = get_client(client)
    entry = server_entry(client, db_path, command=command)
    if spec.config_format == "codex-toml":
        return _toml_table(("mcp_servers", SERVER_NAME), entry)
    key = "mcp" if spec.config_format == "opencode-json" else "mcpServers"
    return json.dumps({key: {SERVER_NAME: entry}}, indent=2) + "\n"


def write_mcp_config(
    client: str,
    db_path: str | os.PathLike[str],
    *,
    path: Path | None = None,
    project_dir: Path | None = None,
    user: bool = False,
    command: str = SERVER_COMMAND,
) -> ConfigWriteResult:
    """Add or update the agent-bus entry in ``client``'s config file, keeping everything else.

    ``path`` overrides the file; otherwise :func:`config_path` picks it from the scope. Keys a
    user added to our entry (timeouts, ``trust`` …) and other env variables are kept; only
    ``command``/``args`` and ``AGENT_BUS_DB`` are set. The file is only rewritten when the
    entry changes, atomically, keeping its permissions.

    Raises:
        UnknownClientError, ValueError: unknown client, or both scopes given.
        ConfigMergeError: the existing file is not plain JSON/TOML we can merge into safely
            (e.g. JSON with comments); the message includes the snippet to add by hand.
    """
    spec = get_client(client)
    target = path if path is not None else config_path(client, project_dir=project_dir, user=user)
    original = target.read_text(encoding="utf-8") if target.exists() else None
    entry = server_entry(client, db_path, command=command)
    if spec.config_format == "codex-toml":
        merged = _merge_toml(
            original or "", entry, target, mcp_config(client, db_path, command=command)
        )
    else:
        key = "mcp" if spec.config_format == "opencode-json" else "mcpServers"
        merged = _merge_json(
            original, key, entry, target, mcp_config(client, db_path, command=command)
        )
    if merged is None:
        return ConfigWriteResult(target, "unchanged")
    _atomic_write(target, merged.encode("utf-8"))
    return ConfigWriteResult(target, "created" if original is None else "updated")


def _merge_entry(existing: Any, entry: dict[str, Any]) -> dict[str, Any]:
    """Our keys first (env merged into the user's env), then whatever else the user had."""
    old = existing if isinstance(existing, dict) else {}
    merged: dict[str, Any] = {}
    for key, value in entry.items():
        if isinstance(value, dict) and isinstance(old.get(key), dict):
            merged[key] = {**old[key], **value}
        else:
            merged[key] = value
    merged.update({k: v for k, v in old.items() if k not in entry})
    return merged


def _merge_json(
    original: str | None, key: str, entry: dict[str, Any], path: Path, snippet: str
) -> str | None:
    """Return the new file text, or None when the entry is already as wanted."""
    data: Any = {}
    if original is not None and original.strip():
        try:
            data = json.loads(original)
        except json.JSONDecodeError as exc:
            raise ConfigMergeError(
                f"{path} is not plain JSON ({exc}); nothing was written. "
                f"Add this by hand:\n{snippet}"
            ) from None
    if not isinstance(data, dict) or not isinstance(data.get(key, {}), dict):
        raise ConfigMergeError(
            f"{path}: expected an object with an object {key!r}; nothing was written. "
            f"Add this by hand:\n{snippet}"
        )
    before = copy.deepcopy(data)
    servers = data.setdefault(key, {})
    servers[SERVER_NAME] = _merge_entry(servers.get(SERVER_NAME), entry)
    if data == before and original is not None:
        return None
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# A table header line: [a.b."c d"] or [[array.of.tables]], with an optional comment.
_HEADER_RE = re.compile(r"^\s*(\[\[?)\s*(.+?)\s*(\]\]?)\s*(#.*)?$")
_KEY_PART_RE = re.compile(r'\s*("(?:[^"\\]|\\.)*"|\'[^\']*\'|[A-Za-z0-9_-]+)\s*(\.|$)')
_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+\Z")


def _header_path(line: str) -> tuple[str, ...] | None:
    match = _HEADER_RE.match(line)
    if not match or len(match.group(1)) != len(match.group(3)):
        return None
    text, parts, pos = match.group(2), [], 0
    while pos < len(text):
        part = _KEY_PART_RE.match(text, pos)
        if not part:
            return None
        raw = part.group(1)
        parts.append(json.loads(raw) if raw.startswith('"') else raw.strip("'"))
        pos = part.end()
        if not part.group(2) and pos < len(text):
            return None
    return tuple(parts)


def _merge_toml(original: str, entry: dict[str, Any], path: Path, snippet: str) -> str | None:
    """Replace (or append) the ``[mcp_servers.agent-bus]`` table, leaving all other text as is.

    The result is parsed back with tomllib and compared with the original; if anything else
    changed, or the file defines our server some other way (inline tables, dotted keys), we
    refuse rather than guess.
    """
    try:
        before = tomllib.loads(original)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigMergeError(f"{path} is not valid TOML ({exc}); nothing was written.") from None
    servers = before.get("mcp_servers", {})
    existing = servers.get(SERVER_NAME) if isinstance(servers, dict) else None
    desired = _merge_entry(existing, entry)
    if existing == desired:
        return None

    lines = original.splitlines(keepends=True)
    ours = ("mcp_servers", SERVER_NAME)
    blocks: list[tuple[int, int, tuple[str, ...] | None]] = []  # [start, end) of each table
    starts = [(i, _header_path(line)) for i, line in enumerate(lines) if _HEADER_RE.match(line)]
    for n, (start, key) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(lines)
        # Trailing blank and comment lines belong to whatever comes next.
        while end > start + 1 and (
            not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")
        ):
            end -= 1
        blocks.append((start, end, key))

    main = next((b for b in blocks if b[2] == ours), None)
    # Sub-tables other than env ([mcp_servers.agent-bus.tools.x]) stay; their keys stay in ours.
    table_body = {k: v for k, v in desired.items() if k not in _subtable_keys(blocks, ours)}
    new_table = _toml_table(ours, table_body)
    drop = {(s, e) for s, e, k in blocks if k == ours + ("env",)}
    out: list[str] = []
    i = 0
    while i < len(lines):
        block = next((b for b in blocks if b[0] == i), None)
        if block is not None and main is not None and block[0] == main[0]:
            out.append(new_table)
            i = block[1]
        elif block is not None and (block[0], block[1]) in drop:
            i = block[1]
            while i < len(lines) and not lines[i].strip() and out and not out[-1].strip():
                i += 1  # do not leave a double blank line where the block was
        else:
            out.append(lines[i])
            i += 1
    if main is None:
        text = "".join(out)
        if text and not text.endswith("\n"):
            text += "\n"
        out = [text, "\n" if text.strip() else "", new_table]
    result = "".join(out)

    problem = None
    try:
        after = tomllib.loads(result)
    except tomllib.TOMLDecodeError as exc:
        problem = str(exc)
    else:
        if after.get("mcp_servers", {}).get(SERVER_NAME) != desired:
            problem = "the merged entry did not read back as written"
        elif _without_ours(after) != _without_ours(before):
            problem = "merging would have changed other settings"
    if problem:
        raise ConfigMergeError(
            f"cannot merge into {path} safely ({problem}); nothing was written. "
            f"Replace any existing agent-bus entry with:\n{snippet}"
        )
    return result


def _subtable_keys(
    blocks: list[tuple[int, int, tuple[str, ...] | None]], ours: tuple[str, ...]
) -> set[str]:
    return {
        k[len(ours)]
        for _, _, k in blocks
        if k and len(k) > len(ours) and k[: len(ours)] == ours and k[len(ours)] != "env"
    }


def _without_ours(data: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    servers = data.get("mcp_servers")
    if isinstance(servers, dict):
        servers.pop(SERVER_NAME, None)
        if not servers:
            data.pop("mcp_servers")
    return data


def _toml_table(path: tuple[str, ...], values: dict[str, Any]) -> str:
    """Emit one TOML table; nested dicts become inline tables (all we need for an MCP entry)."""
    lines = [f"[{'.'.join(_toml_key(p) for p in path)}]"]
    lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def _toml_key(key: str) -> str:
    return key if _BARE_KEY_RE.match(key) else _toml_string(key)


def _toml_string(value: str) -> str:
    # A JSON string is a valid TOML basic string, except that TOML also forbids a raw DEL.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return (
            "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
        )
    raise ConfigMergeError(f"cannot write a {type(value).__name__} value to TOML: {value!r}")
