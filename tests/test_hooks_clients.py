"""Real coding clients run the hooks `agent-bus hooks install` wrote (no model needed).

Claude Code runs SessionStart and UserPromptSubmit hooks even when not logged in, and
records their additional context in the session transcript; Gemini CLI runs SessionStart
and BeforeAgent before its first model call (which fails on a dummy key, offline). The
clients are the pinned ones `make test` installs into tests/clients/node_modules.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent_bus.bus import Bus
from agent_bus.settings import load_settings

BIN = Path(__file__).parent / "clients/node_modules/.bin"

pytestmark = pytest.mark.slow


def _client(name: str) -> Path:
    path = BIN / name
    if shutil.which("node") is None or not path.exists():
        message = f"needs Node and {path}: run `make test-deps`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _bus_with_mail(db: Path) -> str:
    bus = Bus(load_settings(db=db))
    try:
        topic, _ = bus.topic_create("review-42")
        bus.topic_join("reviewer", topic_id=topic.topic_id)
        bus.topic_join("implementer", topic_id=topic.topic_id)
    finally:
        bus.close()
    sent = subprocess.run(
        [sys.executable, "-m", "agent_bus", "send", "review-42", "--as", "implementer",
         "Ready for review: src/app.py", "--db", str(db)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert "sent #1" in sent.stdout
    return topic.topic_id


def _env(home: Path, db: Path, **extra: str) -> dict[str, str]:
    node_dir = str(Path(shutil.which("node") or "/usr/bin/node").parent)
    return {
        "HOME": str(home),
        "PATH": f"{node_dir}:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "CI": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "AGENT_BUS_DB": str(db),
        **extra,
    }


def _install(client: str, project: Path, env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agent_bus", "hooks", "install", "--client", client],
        cwd=project, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_claude_code_adds_the_digest_from_the_installed_hooks(tmp_path: Path) -> None:
    claude = _client("claude")
    home, project, db = tmp_path / "home", tmp_path / "project", tmp_path / "bus" / "bus.sqlite"
    home.mkdir(exist_ok=True)
    project.mkdir()
    topic = _bus_with_mail(db)
    env = _env(home, db, AGENT_BUS_AGENT="reviewer")
    _install("claude-code", project, env)
    # Not logged in: it stops after the prompt hooks.
    subprocess.run(
        [str(claude), "-p", "hi"],
        cwd=project, env=env, capture_output=True, text=True, timeout=180,
        stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    transcripts = list((home / ".claude/projects").glob("*/*.jsonl"))
    assert transcripts, "Claude Code wrote no transcript"
    text = transcripts[0].read_text(encoding="utf-8")
    assert text.count("1 unread message on topic 'review-42' for you as 'reviewer'") >= 2
    assert f'sync(topic_id=\\"{topic}\\"' in text


def test_gemini_cli_runs_the_installed_session_start_and_before_agent_hooks(
    tmp_path: Path,
) -> None:
    gemini = _client("gemini")
    home, project, db = tmp_path / "home", tmp_path / "project", tmp_path / "bus" / "bus.sqlite"
    (home / ".gemini").mkdir(parents=True, exist_ok=True)
    project.mkdir()
    _bus_with_mail(db)
    (home / ".gemini/trustedFolders.json").write_text(json.dumps({str(project): "TRUST_FOLDER"}))
    # A topic that does not exist makes each hook log one line naming its client and event:
    # proof that Gemini CLI ran the command the installer wrote, for that event.
    env = _env(home, db, AGENT_BUS_AGENT="reviewer", AGENT_BUS_TOPIC="no-such-topic",
               GEMINI_API_KEY="dummy-offline")  # fmt: skip
    _install("gemini", project, env)
    log = db.parent / "hooks.log"
    wanted = [
        "gemini session-start: HookFailure: no topic 'no-such-topic'",
        "gemini before-agent: HookFailure: no topic 'no-such-topic'",
    ]
    # After the hooks it retries the unreachable model for minutes: stop it once they ran.
    proc = subprocess.Popen(
        [str(gemini), "-p", "hi"], cwd=project, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and proc.poll() is None:
            text = log.read_text(encoding="utf-8") if log.exists() else ""
            if all(w in text for w in wanted):
                break
            time.sleep(0.2)
    finally:
        # Gemini CLI relaunches itself in a child node process: end the whole group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    text = log.read_text(encoding="utf-8") if log.exists() else ""
    for line in wanted:
        assert line in text, text
