"""Real coding clients read what `agent-bus mcp-config --write` wrote and connect (issue 15).

Claude Code, Gemini CLI and OpenCode each check their MCP servers offline with their own
`mcp list` command, which starts the server and runs the MCP handshake. Each runs in a
temporary HOME, with `agent-bus` not on PATH, so the entry must carry this install's path.
`make test` installs the pinned clients into tests/clients/node_modules.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(__file__).parent / "clients/node_modules/.bin"

pytestmark = pytest.mark.slow


def _client(name: str) -> Path:
    path = BIN / name
    if shutil.which("node") is None or not path.exists():
        message = f"needs Node and {path}: run `make test-deps`"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs them: missing there is a broken setup
        pytest.skip(message)
    return path


@pytest.mark.parametrize(
    ("client", "cli"), [("claude-code", "claude"), ("gemini", "gemini"), ("opencode", "opencode")]
)
def test_the_client_connects_to_the_server_its_config_names(
    client: str, cli: str, tmp_path: Path
) -> None:
    exe = _client(cli)
    home, project = tmp_path / "home", tmp_path / "project"
    home.mkdir(exist_ok=True)
    project.mkdir()
    node_dir = str(Path(shutil.which("node")).parent)
    env = {
        "HOME": str(home),
        "PATH": f"{node_dir}:/usr/bin:/bin",  # no agent-bus on it
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "CI": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "OPENCODE_DISABLE_AUTOUPDATE": "1",
        "XDG_RUNTIME_DIR": os.environ.get("XDG_RUNTIME_DIR", str(tmp_path)),
    }
    wrote = subprocess.run(
        [sys.executable, "-m", "agent_bus", "mcp-config", "--client", client, "--write", "--user"],
        env=env, cwd=project, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert wrote.returncode == 0, wrote.stderr
    if client == "gemini":
        # Gemini CLI suppresses every server in an untrusted folder (its trusted-folders file).
        trusted = home / ".gemini/trustedFolders.json"
        trusted.write_text(json.dumps({str(project): "TRUST_FOLDER"}), encoding="utf-8")
    listed = subprocess.run(
        [str(exe), "mcp", "list"],
        env=env, cwd=project, capture_output=True, text=True, timeout=180,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    out = re.sub(r"\x1b\[[0-9;]*m", "", listed.stdout + listed.stderr)
    line = next((ln for ln in out.splitlines() if "agent-bus" in ln), "")
    assert "connected" in line.lower() and "disconnected" not in line.lower(), out
