"""Installers write skills and MCP config where each client reads them, without clobbering."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path

import pytest

from agent_bus import installers
from agent_bus.errors import InvalidArgument
from agent_bus.installers import (
    CLIENTS,
    ConfigMergeRefused,
    install_skills,
    list_skills,
    mcp_config,
    write_mcp_config,
)
from agent_bus.installers.files import sha256

ALL_CLIENTS = sorted(CLIENTS)
DB = "/srv/shared/agent_bus.sqlite"


@pytest.fixture(autouse=True)
def _no_codex_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CODEX_HOME", raising=False)


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.mark.parametrize("client", ALL_CLIENTS)
def test_project_install_copies_every_pack_where_the_client_reads_skills(
    client: str, tmp_path: Path
) -> None:
    report = install_skills(None, client, project_dir=tmp_path)
    expected_root = tmp_path / CLIENTS[client].project_skills[0]
    assert report.target == expected_root
    assert {s.status for s in report.skills} == {"installed"}
    for skill in list_skills():
        for rel in skill.files():
            assert (expected_root / skill.name / rel).read_bytes() == (
                skill.path / rel
            ).read_bytes()


@pytest.mark.parametrize("client", ALL_CLIENTS)
def test_user_install_goes_under_home_and_a_second_run_writes_nothing(client: str) -> None:
    first = install_skills(["agent-bus-protocol", "agent-bus-reviewer"], client, user=True)
    home = Path.home()
    assert first.target == home / CLIENTS[client].user_skills[0].removeprefix("~/")
    assert [s.name for s in first.written] == ["agent-bus-protocol", "agent-bus-reviewer"]
    before = snapshot(first.target)

    second = install_skills(["agent-bus-protocol", "agent-bus-reviewer"], client, user=True)
    assert {s.status for s in second.skills} == {"unchanged"}
    assert second.written == []
    assert snapshot(first.target) == before


def test_user_modified_copy_is_left_alone_unless_forced(tmp_path: Path) -> None:
    install_skills(["agent-bus-reviewer"], "claude-code", project_dir=tmp_path)
    skill_md = tmp_path / ".claude/skills/agent-bus-reviewer/SKILL.md"
    skill_md.write_text(
        skill_md.read_text(encoding="utf-8") + "\nOur team's extra rule.\n", encoding="utf-8"
    )
    edited = skill_md.read_text(encoding="utf-8")

    report = install_skills(["agent-bus-reviewer"], "claude-code", project_dir=tmp_path)
    assert [(s.status, s.files) for s in report.skills] == [("modified", ["SKILL.md"])]
    assert report.conflicts == report.skills
    assert skill_md.read_text(encoding="utf-8") == edited

    forced = install_skills(["agent-bus-reviewer"], "claude-code", project_dir=tmp_path, force=True)
    assert [s.status for s in forced.skills] == ["overwritten"]
    assert skill_md.read_text(encoding="utf-8") == installers.get_skill("agent-bus-reviewer").text()


def test_existing_copy_without_a_manifest_counts_as_user_modified(tmp_path: Path) -> None:
    skill_md = tmp_path / ".cursor/skills/agent-bus-handoff/SKILL.md"
    skill_md.parent.mkdir(parents=True)
    skill_md.write_text(
        "---\nname: agent-bus-handoff\ndescription: mine\n---\nmine\n", encoding="utf-8"
    )
    report = install_skills(["agent-bus-handoff"], "cursor", project_dir=tmp_path)
    assert report.skills[0].status == "modified"
    assert "mine" in skill_md.read_text(encoding="utf-8")


def test_untouched_older_install_is_updated_in_place(tmp_path: Path) -> None:
    install_skills(["agent-bus-handoff"], "gemini", project_dir=tmp_path)
    dest = tmp_path / ".agents/skills/agent-bus-handoff"
    # Pretend an older release installed a different SKILL.md and recorded it in the manifest.
    old = b"---\nname: agent-bus-handoff\ndescription: old\n---\nold\n"
    (dest / "SKILL.md").write_bytes(old)
    manifest = json.loads((dest / installers.MANIFEST).read_text(encoding="utf-8"))
    manifest["files"]["SKILL.md"] = sha256(old)
    manifest["files"]["references/removed.md"] = sha256(b"gone\n")
    (dest / "references/removed.md").write_bytes(b"gone\n")
    (dest / installers.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    (dest / "NOTES.md").write_text("user's own file\n", encoding="utf-8")

    report = install_skills(["agent-bus-handoff"], "gemini", project_dir=tmp_path)
    assert report.skills[0].status == "updated"
    assert sorted(report.skills[0].files) == ["SKILL.md", "references/removed.md"]
    assert (dest / "SKILL.md").read_text(encoding="utf-8") == installers.get_skill(
        "agent-bus-handoff"
    ).text()
    assert not (dest / "references/removed.md").exists()
    assert (dest / "NOTES.md").read_text(encoding="utf-8") == "user's own file\n"


def test_unknown_client_skill_or_double_scope_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="claude-code") as unknown_client:
        install_skills(None, "vim", project_dir=tmp_path)
    with pytest.raises(InvalidArgument, match="agent-bus-protocol") as unknown_skill:
        install_skills(["agent-bus-nope"], "codex", project_dir=tmp_path)
    with pytest.raises(InvalidArgument, match="not both"):
        install_skills(None, "codex", project_dir=tmp_path, user=True)
    assert unknown_client.value.code == unknown_skill.value.code == "INVALID_ARGUMENT"


def _entry(client: str, snippet: str) -> dict:
    if CLIENTS[client].config_format == "codex-toml":
        return tomllib.loads(snippet)["mcp_servers"]["agent-bus"]
    return json.loads(snippet)["mcp" if client == "opencode" else "mcpServers"]["agent-bus"]


@pytest.mark.parametrize("client", ALL_CLIENTS)
def test_config_snippet_parses_and_points_the_server_at_the_shared_db(client: str) -> None:
    entry = _entry(client, mcp_config(client, DB))
    if client == "opencode":
        assert entry == {
            "type": "local",
            "command": ["agent-bus"],
            "enabled": True,
            "environment": {"AGENT_BUS_DB": DB},
        }
    else:
        assert entry == {"command": "agent-bus", "args": [], "env": {"AGENT_BUS_DB": DB}}


@pytest.mark.parametrize("client", ALL_CLIENTS)
def test_config_without_a_chosen_db_pins_no_database(client: str, tmp_path: Path) -> None:
    entry = _entry(client, mcp_config(client))
    assert "AGENT_BUS_DB" not in json.dumps(entry)
    assert entry in (
        {"command": "agent-bus", "args": []},
        {"type": "local", "command": ["agent-bus"], "enabled": True},
    )
    written = write_mcp_config(client, project_dir=tmp_path).path.read_text(encoding="utf-8")
    assert "AGENT_BUS_DB" not in written and str(Path.home()) not in written


@pytest.mark.parametrize("client", ALL_CLIENTS)
def test_writing_config_creates_the_file_then_is_idempotent(client: str, tmp_path: Path) -> None:
    first = write_mcp_config(client, DB, project_dir=tmp_path)
    assert first.status == "created"
    assert first.path == tmp_path / CLIENTS[client].project_config
    text = first.path.read_text(encoding="utf-8")
    assert DB in text
    second = write_mcp_config(client, DB, project_dir=tmp_path)
    assert second.status == "unchanged"
    assert first.path.read_text(encoding="utf-8") == text


@pytest.mark.parametrize("client", ["claude-code", "gemini", "cursor", "opencode"])
def test_json_merge_keeps_other_servers_settings_and_our_extra_keys(client: str) -> None:
    path = installers.config_path(client, user=True)
    key = "mcp" if client == "opencode" else "mcpServers"
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = {
        "theme": "dark",
        key: {
            "other": {"command": "other-server", "args": ["--x"]},
            "agent-bus": {
                "command": "old-agent-bus",
                "timeout": 30000,
                "env": {"AGENT_BUS_LOG": "debug"},
            },
        },
    }
    path.write_text(json.dumps(existing), encoding="utf-8")
    path.chmod(0o600)

    result = write_mcp_config(client, DB, user=True)
    assert result.status == "updated"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["theme"] == "dark"
    assert data[key]["other"] == existing[key]["other"]
    ours = data[key]["agent-bus"]
    assert ours["timeout"] == 30000
    if client == "opencode":
        assert ours["command"] == ["agent-bus"] and ours["environment"] == {"AGENT_BUS_DB": DB}
    else:
        assert ours["command"] == "agent-bus"
        assert ours["env"] == {"AGENT_BUS_LOG": "debug", "AGENT_BUS_DB": DB}
    assert path.stat().st_mode & 0o777 == 0o600


def test_json_with_comments_is_refused_untouched_with_the_snippet(tmp_path: Path) -> None:
    path = tmp_path / "opencode.json"
    original = '{\n  // my settings\n  "theme": "dark"\n}\n'
    path.write_text(original, encoding="utf-8")
    with pytest.raises(ConfigMergeRefused, match='"mcp"') as refused:
        write_mcp_config("opencode", DB, project_dir=tmp_path)
    assert refused.value.code == "CONFIG_MERGE_REFUSED"
    assert json.loads(refused.value.details["snippet"])["mcp"]["agent-bus"]
    assert path.read_text(encoding="utf-8") == original


CODEX_CONFIG = """\
# my codex settings
model = "gpt-5-codex"

[mcp_servers.docs]
command = "docs-server"  # keep this comment
args = ["--port", "0"]

[mcp_servers.agent-bus]
command = "old-agent-bus"
startup_timeout_sec = 20

[mcp_servers.agent-bus.env]
AGENT_BUS_LOG = "debug"

[mcp_servers.agent-bus.tools.sync]
approval_mode = "approve"

# trailing comment about profiles
[profiles.fast]
model = "gpt-5-mini"
"""


def test_toml_merge_replaces_only_our_table_and_keeps_text_elsewhere() -> None:
    path = installers.config_path("codex", user=True)
    assert path == Path.home() / ".codex/config.toml"
    path.parent.mkdir(parents=True)
    path.write_text(CODEX_CONFIG, encoding="utf-8")

    assert write_mcp_config("codex", DB, user=True).status == "updated"
    text = path.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    before = tomllib.loads(CODEX_CONFIG)
    assert data["mcp_servers"]["agent-bus"] == {
        "command": "agent-bus",
        "args": [],
        "env": {"AGENT_BUS_LOG": "debug", "AGENT_BUS_DB": DB},
        "startup_timeout_sec": 20,
        "tools": {"sync": {"approval_mode": "approve"}},
    }
    assert text.startswith(CODEX_CONFIG.split("[mcp_servers.agent-bus]")[0])
    assert data["mcp_servers"]["docs"] == before["mcp_servers"]["docs"]
    assert data["profiles"] == before["profiles"] and data["model"] == before["model"]
    for line in (
        "# my codex settings",
        'command = "docs-server"  # keep this comment',
        "# trailing comment about profiles",
    ):
        assert line in text
    # The user's own layout stays: the env sub-table is edited in place.
    assert '[mcp_servers.agent-bus.env]\nAGENT_BUS_LOG = "debug"\n' in text

    assert write_mcp_config("codex", DB, user=True).status == "unchanged"


def test_toml_merge_appends_our_table_to_a_config_without_it(tmp_path: Path) -> None:
    path = tmp_path / ".codex/config.toml"
    path.parent.mkdir()
    path.write_text('model = "o3"\n[mcp_servers.docs]\ncommand = "docs"', encoding="utf-8")
    write_mcp_config("codex", DB, project_dir=tmp_path)
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert data["model"] == "o3"
    assert data["mcp_servers"]["docs"] == {"command": "docs"}
    assert data["mcp_servers"]["agent-bus"]["env"] == {"AGENT_BUS_DB": DB}


def test_toml_defining_our_server_inline_is_merged_in_place(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    original = '# servers\n[mcp_servers]\nagent-bus = { command = "x", tool_timeout_sec = 600 }\n'
    path.write_text(original, encoding="utf-8")
    write_mcp_config("codex", DB, path=path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# servers\n[mcp_servers]\nagent-bus = {")
    assert tomllib.loads(text)["mcp_servers"]["agent-bus"] == {
        "command": "agent-bus",
        "args": [],
        "env": {"AGENT_BUS_DB": DB},
        "tool_timeout_sec": 600,
    }


def test_invalid_toml_is_refused_untouched_with_the_snippet(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    original = "model = \n"
    path.write_text(original, encoding="utf-8")
    with pytest.raises(ConfigMergeRefused, match=r"\[mcp_servers.agent-bus\]"):
        write_mcp_config("codex", DB, path=path)
    assert path.read_text(encoding="utf-8") == original


def test_codex_user_config_follows_codex_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "codex-home"))
    result = write_mcp_config("codex", "~/bus.sqlite", user=True)
    assert result.path == tmp_path / "codex-home/config.toml"
    env = tomllib.loads(result.path.read_text(encoding="utf-8"))["mcp_servers"]["agent-bus"]["env"]
    assert env == {"AGENT_BUS_DB": str(Path.home() / "bus.sqlite")}


def test_a_tampered_manifest_cannot_make_install_delete_files_outside_the_pack(tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me", encoding="utf-8")
    report = installers.install_skills(["agent-bus-protocol"], "claude-code", project_dir=project)
    dest = report.skills[0].path
    manifest_path = dest / installers.MANIFEST
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    digest = hashlib.sha256(b"keep me").hexdigest()
    manifest["files"][str(victim)] = digest
    manifest["files"]["../../../victim.txt"] = digest
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    installers.install_skills(["agent-bus-protocol"], "claude-code", project_dir=project)
    assert victim.read_text(encoding="utf-8") == "keep me"
