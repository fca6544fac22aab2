"""Real ``agent-bus mcp --http`` processes for tests, and official-client sessions on them."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from conftest import QUIET_EMBEDDINGS

START_TIMEOUT = 60.0
_SERVING = re.compile(r"serving (https?://\S+/mcp)")


@dataclass
class HttpServer:
    proc: subprocess.Popen[str]
    url: str
    lines: list[str] = field(default_factory=list)

    @property
    def log(self) -> str:
        return "\n".join(self.lines)


def _env(db: Path, env: dict[str, str]) -> dict[str, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_BUS_")}
    full.update({"AGENT_BUS_DB": str(db), **QUIET_EMBEDDINGS, **env})
    return full


def run_http(db: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``agent-bus mcp --http --port 0 …`` with stderr piped (text)."""
    return subprocess.Popen(
        [sys.executable, "-m", "agent_bus", "mcp", "--http", "--port", "0", *args],
        env=_env(db, env or {}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextlib.contextmanager
def http_server(db: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[HttpServer]:
    """A running server; its stderr lines are collected; it is stopped on exit."""
    proc = run_http(db, *args, env=env)
    lines: list[str] = []
    ready = threading.Event()
    found: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            match = _SERVING.search(line)
            if match and not found:
                found.append(match.group(1))
                ready.set()
        ready.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        ready.wait(START_TIMEOUT)
        assert found, "server did not start:\n" + "\n".join(lines)
        yield HttpServer(proc, found[0], lines)
    finally:
        stop(proc)
        reader.join(5)


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


@contextlib.asynccontextmanager
async def http_session(url: str, token: str | None = None) -> AsyncIterator[ClientSession]:
    """An initialised official-client session over streamable HTTP."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=120)) as client:
        async with streamable_http_client(url, http_client=client) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def raw_post(url: str, body: object = INIT, *, token: str | None = None, **kw) -> httpx2.Response:
    headers = dict(ACCEPT)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    headers.update(kw.pop("headers", {}))
    if isinstance(body, bytes):
        return httpx2.post(url, content=body, headers=headers, timeout=30, **kw)
    return httpx2.post(url, json=body, headers=headers, timeout=30, **kw)


def wait_until(check, timeout: float = 20.0) -> None:
    """Poll ``check`` until true (a deadline, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)
