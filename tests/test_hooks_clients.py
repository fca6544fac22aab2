"""Real coding clients run the hooks `agent-bus hooks install` wrote.

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
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


class _Model(BaseHTTPRequestHandler):
    """Stand-in for the external model (the one stand-in the test rules allow).

    Claude Code streams Messages API requests to it; it answers the first with a
    ``topic_join`` tool call and every later one with "Done.", and keeps each request body.
    """

    topic_id = ""
    bodies: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        request = json.loads(body or b"{}")
        if "count_tokens" in self.path or not request.get("stream"):
            self._send("application/json", json.dumps({"input_tokens": 10}).encode())
            return
        type(self).bodies.append(body.decode("utf-8", "replace"))
        tools = [t.get("name", "") for t in request.get("tools", [])]
        join = next((t for t in tools if t.endswith("topic_join")), None)
        called = any(
            isinstance(m["content"], list)
            and any(c.get("type") == "tool_use" for c in m["content"])
            for m in request["messages"]
        )
        message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                   "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": 10, "output_tokens": 1}}  # fmt: skip
        events = [("message_start", {"type": "message_start", "message": message})]
        if join and not called:
            args = json.dumps({"agent_name": "reviewer", "topic_id": type(self).topic_id})
            block = {"type": "tool_use", "id": "toolu_1", "name": join, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": args}
            stop = "tool_use"
        else:
            block = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": "Done."}
            stop = "end_turn"
        events += [
            ("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": block}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop},
                               "usage": {"output_tokens": 2}}),
            ("message_stop", {"type": "message_stop"}),
        ]  # fmt: skip
        stream = b"".join(f"event: {n}\ndata: {json.dumps(d)}\n\n".encode() for n, d in events)
        self._send("text/event-stream", stream)

    def _send(self, kind: str, data: bytes) -> None:
        self.send_response(200)
        self.send_header("content-type", kind)
        self.end_headers()
        self.wfile.write(data)


def test_claude_code_stop_hook_finds_the_servers_binding_and_keeps_the_agent_going(
    tmp_path: Path,
) -> None:
    """The whole loop in a real client: Claude Code starts our server, the agent joins as
    reviewer (recording the session binding), stops, and the installed Stop hook, with no
    override, blocks with the implementer's message; the loop guard then lets it stop."""
    claude = _client("claude")
    home, project, db = tmp_path / "home", tmp_path / "project", tmp_path / "bus" / "bus.sqlite"
    home.mkdir(exist_ok=True)
    project.mkdir()
    bus = Bus(load_settings(db=db))
    try:
        topic, _ = bus.topic_create("review-42")
        bus.topic_join("implementer", topic_id=topic.topic_id)
    finally:
        bus.close()
    subprocess.run(
        [sys.executable, "-m", "agent_bus", "send", "review-42", "--as", "implementer",
         "Ready for review: src/app.py", "--db", str(db)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    env = _env(home, db, AGENT_BUS_HOOK_MAX_BLOCKS="1")
    env.pop("AGENT_BUS_DB")  # the configs written below name the database themselves
    for command in (["mcp-config", "--client", "claude-code", "--write"],
                    ["hooks", "install", "--client", "claude-code"]):  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "agent_bus", *command, "--db", str(db)],
            cwd=project, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    _Model.topic_id, _Model.bodies = topic.topic_id, []
    model = ThreadingHTTPServer(("127.0.0.1", 0), _Model)
    threading.Thread(target=model.serve_forever, daemon=True).start()
    try:
        env.update(
            ANTHROPIC_BASE_URL=f"http://127.0.0.1:{model.server_address[1]}",
            ANTHROPIC_API_KEY="sk-offline-test",
        )
        done = subprocess.run(
            [str(claude), "-p", "join the review", "--allowedTools", "mcp__agent-bus__topic_join"],
            cwd=project, env=env, capture_output=True, text=True, timeout=240,
            stdin=subprocess.DEVNULL, check=False, start_new_session=True,
        )  # fmt: skip
    finally:
        model.shutdown()
        model.server_close()
    assert done.returncode == 0, done.stdout + done.stderr
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT agent_name, client_name, cwd FROM session_bindings").fetchall()
    assert rows == [("reviewer", "claude-code", str(project))]
    # join -> tool result -> "Done." -> Stop hook blocks -> "Done." -> the guard lets it stop
    assert len(_Model.bodies) == 3
    assert "Stop hook feedback" not in _Model.bodies[1]
    feedback = _Model.bodies[2][_Model.bodies[2].index("Stop hook feedback") :]
    assert (
        "1 unread message on topic 'review-42' for you as 'reviewer', from implementer" in feedback
    )
    assert "Ready for review: src/app.py" in feedback
    assert "loop guard" in (db.parent / "hooks.log").read_text(encoding="utf-8")
