"""What real clients showed about our config writer and skill installs (issues 15 and 16).

Configs must run a command that exists for the client, pin no database the user did not
choose, and say what the client still asks before it uses a project's server; each skill pack
must be visible once per client when several clients are set up in one project.
"""

from __future__ import annotations

import json
import os
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent_bus.cli import app
from agent_bus.installers import (
    CLIENTS,
    MANIFEST,
    install_skills,
    list_skills,
    remove_mcp_config,
    resolve_command,
    uninstall_skills,
    write_mcp_config,
)
from agent_bus.installers.mcp_config import this_install

runner = CliRunner()
PACKS = sorted(s.name for s in list_skills())
THIS = this_install()
DB_FILE = "/srv/shared/agent_bus.sqlite"


def cli(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = runner.invoke(app, list(args))
    finally:
        os.chdir(old)
    return result.exit_code, result.stdout, result.stderr


def entry_of(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        return tomllib.loads(text)["mcp_servers"]["agent-bus"]
    data = json.loads(text)
    return data.get("mcpServers", data.get("mcp", {}))["agent-bus"]


# --------------------------------------------------------------------------- the command


@pytest.mark.skipif(THIS is None, reason="needs an installed agent-bus script beside Python")
def test_without_agent_bus_on_path_the_config_runs_this_install_by_absolute_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    resolved = resolve_command()
    assert resolved.argv == (str(THIS),) and "not on PATH" in (resolved.note or "")
    code, out, err = cli(
        "mcp-config", "--client", "claude-code", "--write", "--project", str(tmp_path)
    )
    assert code == 0, err
    assert entry_of(tmp_path / ".mcp.json")["command"] == str(THIS)
    assert "not on PATH" in err


@pytest.mark.skipif(THIS is None, reason="needs an installed agent-bus script beside Python")
def test_with_this_install_on_path_the_config_keeps_the_bare_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", f"{THIS.parent}:/usr/bin:/bin")
    assert resolve_command().argv == ("agent-bus",)
    assert resolve_command().note is None


def test_a_command_that_does_not_exist_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    for command in (str(tmp_path / "no-such-agent-bus"), "no-such-agent-bus-on-path"):
        code, _, err = cli(
            "mcp-config", "--client", "codex", "--write", "--project", str(tmp_path),
            "--command", command,
        )  # fmt: skip
        assert code == 1 and "error: COMMAND_NOT_FOUND: " in err
        assert "Traceback" not in err
    assert not (tmp_path / ".codex").exists()
    code, out, _ = cli("mcp-config", "--client", "codex", "--command", sys.executable)
    assert code == 0 and tomllib.loads(out)["mcp_servers"]["agent-bus"]["command"] == (
        sys.executable
    )


# --------------------------------------------------------------------------- the database


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_the_cli_pins_agent_bus_db_only_when_the_user_chose_a_database(
    client: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = cli("mcp-config", "--client", client, "--write", "--project", str(tmp_path))
    assert code == 0, err
    path = write_mcp_config(client, project_dir=tmp_path).path
    text = path.read_text(encoding="utf-8")
    assert "AGENT_BUS_DB" not in text and str(Path.home()) not in text

    chosen = tmp_path / "team.sqlite"
    code, _, err = cli(
        "mcp-config", "--client", client, "--write", "--project", str(tmp_path), "--db", str(chosen)
    )
    assert code == 0, err
    assert str(chosen) in json.dumps(entry_of(path))

    monkeypatch.setenv("AGENT_BUS_DB", str(tmp_path / "env.sqlite"))
    code, out, _ = cli("mcp-config", "--client", client)
    assert code == 0 and str(tmp_path / "env.sqlite") in out


def test_a_default_db_pin_written_by_an_older_release_is_dropped(tmp_path: Path) -> None:
    old_default = str(Path.home() / ".agent_bus/agent_bus.sqlite")
    mine = {"command": "agent-bus", "args": [], "env": {"AGENT_BUS_DB": old_default, "X": "1"}}
    other = {"command": "agent-bus", "args": [], "env": {"AGENT_BUS_DB": "/srv/team.sqlite"}}
    for name, entry in (("a", mine), ("b", other)):
        project = tmp_path / name
        project.mkdir()
        (project / ".mcp.json").write_text(json.dumps({"mcpServers": {"agent-bus": entry}}))
        write_mcp_config("claude-code", project_dir=project)
    assert entry_of(tmp_path / "a/.mcp.json")["env"] == {"X": "1"}
    assert entry_of(tmp_path / "b/.mcp.json")["env"] == {"AGENT_BUS_DB": "/srv/team.sqlite"}


# --------------------------------------------------------------------------- next steps


@pytest.mark.parametrize(
    ("client", "words"),
    [
        ("claude-code", "approve"),
        ("gemini", "trust"),
        ("codex", "trusted"),
        ("opencode", "opencode mcp approve agent-bus"),
    ],
)
def test_a_project_write_tells_the_clients_next_step(
    client: str, words: str, tmp_path: Path
) -> None:
    code, out, err = cli("mcp-config", "--client", client, "--write", "--project", str(tmp_path))
    assert code == 0, err
    assert "next: " in err and words in err
    code, _, err = cli("mcp-config", "--client", client, "--write", "--user")
    assert code == 0 and "next: " not in err


# --------------------------------------------------------------------------- skills once


def visible(project: Path, client: str, pack: str) -> list[Path]:
    """The copies of ``pack`` that ``client`` finds in ``project``."""
    return [
        project / d / pack
        for d in CLIENTS[client].project_skills
        if (project / d / pack / "SKILL.md").is_file()
    ]


@pytest.mark.parametrize(
    "clients",
    [
        ("codex", "gemini"),
        ("gemini", "codex"),
        ("gemini", "antigravity"),
        ("antigravity", "gemini", "codex", "cursor", "opencode"),
        ("claude-code", "cursor", "opencode"),
        ("cursor", "claude-code"),
        ("opencode", "claude-code", "cursor"),
    ],
)
def test_each_client_sees_each_pack_once_when_several_are_installed(
    clients: tuple[str, ...], tmp_path: Path
) -> None:
    for client in clients:
        report = install_skills(None, client, project_dir=tmp_path)
        assert report.warnings == []
    for client in clients:
        for pack in PACKS:
            assert len(visible(tmp_path, client, pack)) == 1, (client, pack)


def older_gemini_install(project: Path) -> Path:
    """What an older release did for Gemini: the pack, its manifest without a client record,
    in .gemini/skills."""
    install_skills(["agent-bus-protocol"], "claude-code", project_dir=project)
    legacy = project / ".gemini/skills"
    legacy.parent.mkdir()
    (project / ".claude/skills").rename(legacy)
    manifest_path = legacy / "agent-bus-protocol" / MANIFEST
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    del manifest["clients"]
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    return legacy


def test_a_gemini_copy_from_an_older_release_moves_to_the_shared_folder(tmp_path: Path) -> None:
    legacy = older_gemini_install(tmp_path)
    install_skills(["agent-bus-protocol"], "codex", project_dir=tmp_path)
    assert visible(tmp_path, "gemini", "agent-bus-protocol") == [
        tmp_path / ".agents/skills/agent-bus-protocol"
    ]
    assert not (legacy / "agent-bus-protocol").exists()
    manifest = json.loads((tmp_path / ".agents/skills/agent-bus-protocol" / MANIFEST).read_text())
    assert manifest["clients"] == ["codex", "gemini"]


def test_an_edited_copy_is_never_removed_and_the_duplicate_is_reported(tmp_path: Path) -> None:
    legacy = older_gemini_install(tmp_path)
    skill_md = legacy / "agent-bus-protocol/SKILL.md"
    skill_md.write_text(skill_md.read_text(encoding="utf-8") + "\nour rule\n", encoding="utf-8")
    codex = install_skills(["agent-bus-protocol"], "codex", project_dir=tmp_path)
    assert codex.skills[0].removed == []
    report = install_skills(["agent-bus-protocol"], "gemini", project_dir=tmp_path)
    assert "our rule" in skill_md.read_text(encoding="utf-8")
    assert report.warnings == [
        f"Gemini CLI sees agent-bus-protocol twice ({tmp_path / '.agents/skills'} and "
        f"{legacy}): remove the copy it should not use"
    ]
    code, _, err = cli("skills", "install", "--client", "gemini", cwd=tmp_path)
    assert code == 0 and "twice" in err


# --------------------------------------------------------------------------- Antigravity


def test_antigravity_files_land_where_its_docs_say(tmp_path: Path) -> None:
    project = write_mcp_config("antigravity", project_dir=tmp_path)
    assert project.path == tmp_path / ".agents/mcp_config.json"
    user = write_mcp_config("antigravity", user=True)
    assert user.path == Path.home() / ".gemini/config/mcp_config.json"
    skills = install_skills(None, "antigravity", project_dir=tmp_path)
    assert skills.target == tmp_path / ".agents/skills"
    user_skills = install_skills(None, "antigravity", user=True)
    assert user_skills.target == Path.home() / ".gemini/antigravity-cli/skills"
    for pack in PACKS:
        assert (user_skills.target / pack / "SKILL.md").is_file()


def test_antigravity_config_merges_with_other_servers_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / ".agents/mcp_config.json"
    path.parent.mkdir()
    remote = {"serverUrl": "https://example.invalid/mcp", "env": {"TOKEN": "x"}}
    path.write_text(json.dumps({"mcpServers": {"remote": remote}, "other": 1}), encoding="utf-8")
    code, _, err = cli("mcp-config", "--client", "antigravity", "--write", cwd=tmp_path)
    assert code == 0 and "updated:" in _ + err
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["other"] == 1 and data["mcpServers"]["remote"] == remote
    assert set(data["mcpServers"]["agent-bus"]) == {"command", "args"}
    before = path.read_bytes()
    code, out, _ = cli("mcp-config", "--client", "antigravity", "--write", cwd=tmp_path)
    assert code == 0 and out.startswith("unchanged:") and path.read_bytes() == before


def test_a_duplicate_no_placement_can_avoid_is_reported(tmp_path: Path) -> None:
    # Claude Code reads only .claude/skills, Codex only .agents/skills; Cursor reads both.
    install_skills(["agent-bus-protocol"], "claude-code", project_dir=tmp_path)
    install_skills(["agent-bus-protocol"], "cursor", project_dir=tmp_path)
    report = install_skills(["agent-bus-protocol"], "codex", project_dir=tmp_path)
    assert [w.split(" sees ")[0] for w in report.warnings] == ["Cursor"]
    assert len(visible(tmp_path, "claude-code", "agent-bus-protocol")) == 1
    assert len(visible(tmp_path, "codex", "agent-bus-protocol")) == 1


# --------------------------------------------------------------------------- uninstall


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_removing_the_config_entry_gives_back_the_file_as_it_was(
    client: str, tmp_path: Path
) -> None:
    path = write_mcp_config(client, project_dir=tmp_path).path
    assert remove_mcp_config(client, project_dir=tmp_path).status == "removed"
    assert not path.exists()  # we created it: nothing of ours is left
    assert remove_mcp_config(client, project_dir=tmp_path).status == "unchanged"

    if client == "codex":
        original = '# mine\nmodel = "o3"\n\n[mcp_servers.docs]\ncommand = "docs"  # keep\n'
    else:
        key = "mcp" if client == "opencode" else "mcpServers"
        original = json.dumps({"theme": "dark", key: {"docs": {"command": "docs"}}}, indent=2)
        original += "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(original, encoding="utf-8")
    write_mcp_config(client, DB_FILE, project_dir=tmp_path)
    assert path.read_text(encoding="utf-8") != original
    code, out, err = cli("mcp-config", "--client", client, "--remove", "--project", str(tmp_path))
    assert code == 0 and out.startswith("removed:"), err
    assert path.read_text(encoding="utf-8") == original


def test_uninstalling_skills_keeps_copies_other_clients_use(tmp_path: Path) -> None:
    for client in ("codex", "gemini", "claude-code"):
        install_skills(None, client, project_dir=tmp_path)
    shared = tmp_path / ".agents/skills/agent-bus-protocol"
    (tmp_path / ".claude/skills/agent-bus-protocol/NOTES.md").write_text("mine\n")

    report = uninstall_skills(None, "gemini", project_dir=tmp_path)
    assert {s.status for s in report.skills} == {"kept"}
    assert (shared / "SKILL.md").is_file()
    assert visible(tmp_path, "codex", "agent-bus-protocol") == [shared]

    code, out, err = cli(
        "skills", "uninstall", "--client", "codex", "--project", str(tmp_path), "--json"
    )
    assert code == 0, err
    assert {s["status"] for s in json.loads(out)["skills"]} == {"removed"}
    assert not (tmp_path / ".agents/skills").exists() or not any(
        (tmp_path / ".agents/skills").iterdir()
    )

    uninstall_skills(None, "claude-code", project_dir=tmp_path)
    left = tmp_path / ".claude/skills/agent-bus-protocol"
    assert [p.name for p in left.iterdir()] == ["NOTES.md"]  # the user's own file stays
    assert uninstall_skills(None, "claude-code", project_dir=tmp_path).skills[0].status == (
        "absent"
    )


def test_an_edited_pack_is_not_uninstalled_without_force(tmp_path: Path) -> None:
    install_skills(["agent-bus-reviewer"], "cursor", project_dir=tmp_path)
    skill_md = tmp_path / ".agents/skills/agent-bus-reviewer/SKILL.md"
    skill_md.write_text("edited\n", encoding="utf-8")
    code, _, err = cli(
        "skills", "uninstall", "agent-bus-reviewer", "--client", "cursor", "--project",
        str(tmp_path),
    )  # fmt: skip
    assert code == 1 and "--force" in err and skill_md.read_text() == "edited\n"
    report = uninstall_skills(["agent-bus-reviewer"], "cursor", project_dir=tmp_path, force=True)
    assert report.skills[0].status == "removed" and not skill_md.exists()
