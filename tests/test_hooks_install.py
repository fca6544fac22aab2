"""`agent-bus hooks install|uninstall|status` against real settings files in a temp project/HOME."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent_bus.cli import app

runner = CliRunner()

OTHERS = {
    "claude-code": {
        "permissions": {"allow": ["Bash(ls)"]},
        "hooks": {
            "Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}],
            "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "guard"}]}],
        },
    },
    "codex": {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "./check.sh"}]}]}},
    "gemini": {
        "mcpServers": {"agent-bus": {"command": "agent-bus"}},
        "hooks": {"AfterAgent": [{"hooks": [{"name": "lint", "type": "command", "command": "x"}]}]},
    },
}
FILES = {
    "claude-code": ".claude/settings.json",
    "codex": ".codex/hooks.json",
    "gemini": ".gemini/settings.json",
}
EVENTS = {
    "claude-code": {"SessionStart": "session-start", "UserPromptSubmit": "user-prompt-submit",
                    "Stop": "stop"},
    "codex": {"SessionStart": "session-start", "UserPromptSubmit": "user-prompt-submit",
              "Stop": "stop"},
    "gemini": {"SessionStart": "session-start", "BeforeAgent": "before-agent",
               "AfterAgent": "after-agent"},
}  # fmt: skip


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def ours(data: dict, event: str) -> list[dict]:
    return [
        h
        for g in data["hooks"].get(event, [])
        for h in g["hooks"]
        if " hook " in h["command"] and "agent-bus" in h["command"]
    ]


@pytest.mark.parametrize("client", list(FILES))
def test_install_merges_is_idempotent_and_uninstall_restores(client: str, tmp_path: Path) -> None:
    path = tmp_path / FILES[client]
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(OTHERS[client]))

    out = invoke("hooks", "install", "--client", client, "--project", str(tmp_path))
    assert out.startswith(f"updated: {path}")
    data = json.loads(path.read_text())
    for client_event, ours_name in EVENTS[client].items():
        [handler] = ours(data, client_event)
        assert handler["command"].endswith(f"hook {client} {ours_name}")
        assert handler["type"] == "command"
        assert handler["timeout"] == (30_000 if client == "gemini" else 30)
    # Every other key and hook is still there, untouched.
    for key, value in OTHERS[client].items():
        if key != "hooks":
            assert data[key] == value
    for event, groups in OTHERS[client]["hooks"].items():
        assert all(g in data["hooks"][event] for g in groups)
    assert "AGENT_BUS_DB" not in path.read_text()

    before = path.read_bytes()
    out = invoke("hooks", "install", "--client", client, "--project", str(tmp_path))
    assert out.startswith("unchanged")
    assert path.read_bytes() == before

    status = invoke("hooks", "status", "--project", str(tmp_path))
    assert sum(line.startswith(client) for line in status.splitlines()) == len(EVENTS[client])

    out = invoke("hooks", "uninstall", "--client", client, "--project", str(tmp_path))
    assert out.startswith(f"removed: {path}")
    assert json.loads(path.read_text()) == OTHERS[client]


def test_gemini_entries_are_named_and_timed_in_milliseconds(tmp_path: Path) -> None:
    invoke("hooks", "install", "--client", "gemini", "--project", str(tmp_path))
    data = json.loads((tmp_path / ".gemini/settings.json").read_text())
    [group] = data["hooks"]["SessionStart"]
    assert "matcher" not in group  # Gemini CLI matches lifecycle events by exact string
    assert group["hooks"][0]["name"] == "agent-bus-session-start"
    assert group["hooks"][0]["timeout"] == 30_000


def test_user_scope_writes_under_home_and_dry_run_writes_nothing() -> None:
    home = Path.home()
    out = invoke("hooks", "install", "--client", "codex", "--user", "--dry-run")
    assert out.startswith(f"would change: {home / '.codex/hooks.json'}")
    assert not (home / ".codex/hooks.json").exists()
    invoke("hooks", "install", "--client", "codex", "--user", "--events", "stop")
    data = json.loads((home / ".codex/hooks.json").read_text())
    assert set(data["hooks"]) == {"Stop"}


def test_claude_wait_event_is_an_async_rewake_stop_hook_beside_stop(tmp_path: Path) -> None:
    project = str(tmp_path)
    invoke(
        "hooks", "install", "--client", "claude-code", "--project", project, "--events", "stop,wait"
    )
    data = json.loads((tmp_path / ".claude/settings.json").read_text())
    handlers = ours(data, "Stop")
    assert [h["command"].split()[-1] for h in handlers] == ["stop", "wait"]
    assert handlers[1]["asyncRewake"] is True and "asyncRewake" not in handlers[0]
    assert handlers[1]["timeout"] > 3000


def test_an_old_entry_of_ours_is_replaced_not_duplicated(tmp_path: Path) -> None:
    path = tmp_path / ".claude/settings.json"
    path.parent.mkdir(parents=True)
    old = {"type": "command", "command": "/old/bin/agent-bus hook claude-code stop", "timeout": 5}
    path.write_text(json.dumps({"hooks": {"Stop": [{"hooks": [old]}]}}))
    project = str(tmp_path)
    invoke("hooks", "install", "--client", "claude-code", "--project", project, "--events", "stop")
    data = json.loads(path.read_text())
    [handler] = ours(data, "Stop")
    assert handler["command"] != old["command"] and handler["timeout"] == 30


def test_bad_settings_file_and_unknown_event_are_coded_errors(tmp_path: Path) -> None:
    path = tmp_path / ".claude/settings.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    args = ["hooks", "install", "--client", "claude-code", "--project", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "CONFIG_MERGE_REFUSED" in result.output
    assert path.read_text() == "{not json"
    result = runner.invoke(
        app, ["hooks", "install", "--client", "codex", "--events", "after-agent"]
    )
    assert result.exit_code == 1 and "INVALID_ARGUMENT" in result.output


def test_mcp_config_and_skills_install_mention_hooks_install(tmp_path: Path) -> None:
    result = runner.invoke(app, ["mcp-config", "--client", "codex"])
    assert "agent-bus hooks install --client codex" in result.output
    args = ["skills", "install", "--client", "claude-code", "--project", str(tmp_path)]
    result = runner.invoke(app, args)
    assert "agent-bus hooks install --client claude-code" in result.output


def test_a_chosen_database_is_pinned_in_the_command_and_the_shell_runs_it(tmp_path: Path) -> None:
    from agent_bus.bus import Bus
    from agent_bus.settings import load_settings

    db = tmp_path / "my bus" / "team.sqlite"  # a space: the command must quote it
    bus = Bus(load_settings(db=db))
    try:
        topic, _ = bus.topic_create("pinned")
        bus.topic_join("reviewer", topic_id=topic.topic_id)
        bus.topic_join("implementer", topic_id=topic.topic_id)
    finally:
        bus.close()
    invoke("send", "pinned", "--as", "implementer", "over here", "--db", str(db))
    invoke("hooks", "install", "--client", "codex", "--project", str(tmp_path), "--db", str(db))
    data = json.loads((tmp_path / ".codex/hooks.json").read_text())
    [handler] = ours(data, "Stop")
    assert handler["command"].startswith(f"AGENT_BUS_DB='{db}' ")
    # Codex runs the command through a shell, in an environment without AGENT_BUS_DB.
    done = subprocess.run(
        ["sh", "-c", handler["command"] + " --agent reviewer"],
        input=json.dumps({"session_id": "s", "stop_hook_active": False}),
        capture_output=True, text=True, timeout=60, check=False,
        env={k: v for k, v in os.environ.items() if k != "AGENT_BUS_DB"},
    )  # fmt: skip
    assert json.loads(done.stdout)["decision"] == "block", done.stderr
