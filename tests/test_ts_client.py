"""agent-bus driven by the official TypeScript MCP SDK client (the one under Claude Code,
Cursor and Gemini CLI): a two-agent exchange over real stdio servers, every structuredContent
checked against its tool's outputSchema, and a sync without wait_seconds that returns within
the SDK's default request timeout. The test itself is tests/ts/client.test.mjs; `make test`
installs its pinned npm packages into tests/ts/node_modules.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TS = Path(__file__).parent / "ts"

pytestmark = pytest.mark.slow


def test_the_typescript_sdk_client_runs_a_two_agent_review(db_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not (TS / "node_modules/@modelcontextprotocol/sdk").is_dir():
        message = "needs Node and tests/ts/node_modules: run `make test-deps`"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs them: missing there is a broken setup
        pytest.skip(message)
    script = Path(sys.executable).parent / "agent-bus"
    argv = [str(script)] if script.is_file() else [sys.executable, "-m", "agent_bus"]
    env = {**os.environ, "AGENT_BUS_DB": str(db_path), "AGENT_BUS_ARGV": json.dumps(argv)}
    proc = subprocess.run(
        [node, "--test", "--test-reporter=tap", "client.test.mjs"],
        cwd=TS,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "# pass 1" in proc.stdout and "# fail 0" in proc.stdout
