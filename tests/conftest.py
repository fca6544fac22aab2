"""Shared fixtures: real bus files and real `agent-bus` server processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

REPO = Path(__file__).resolve().parent.parent


QUIET_EMBEDDINGS = {
    "AGENT_BUS_EMBEDDINGS_AUTOINDEX": "0",
    "AGENT_BUS_EMBED_SERVICE_IDLE_SECONDS": "5",
}


@pytest.fixture(scope="session", autouse=True)
def _no_stray_embedding_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Stop embedding services that tests' servers started (they are detached on purpose)."""
    yield
    base = str(tmp_path_factory.getbasetemp())
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in cmdline]
        if "agent_bus.embeddings.daemon" in args and any(a.startswith(base) for a in args):
            with contextlib.suppress(OSError):
                os.kill(int(proc.name), signal.SIGTERM)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test reads the user's real bus, llm keys or home directory."""
    for key in list(os.environ):
        if key.startswith("AGENT_BUS_"):
            monkeypatch.delenv(key)
    # Servers only spawn an embedding service where a test asks for one (and it never
    # outlives the test run by long).
    for key, value in QUIET_EMBEDDINGS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path / "llm"))
    (tmp_path / "home").mkdir(exist_ok=True)
    # Sockets of long database paths go to a private dir under the runtime dir: a fresh
    # one per test, short enough for a socket address, removed afterwards.
    runtime = tempfile.mkdtemp(prefix="ab-run-")
    monkeypatch.setenv("XDG_RUNTIME_DIR", runtime)
    yield
    shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "bus" / "agent_bus.sqlite"


def server_params(db: Path, **env: str) -> StdioServerParameters:
    full = {"AGENT_BUS_DB": str(db), "HOME": os.environ.get("HOME", "/tmp"), **QUIET_EMBEDDINGS}
    for isolated in ("LLM_USER_PATH", "XDG_RUNTIME_DIR"):  # set per test by _isolated_env
        if os.environ.get(isolated):
            full[isolated] = os.environ[isolated]
    full.update(env)
    return StdioServerParameters(command=sys.executable, args=["-m", "agent_bus"], env=full)


@contextlib.asynccontextmanager
async def spawn(db: Path, **env: str) -> AsyncIterator[ClientSession]:
    """An initialised MCP client session with a fresh `agent-bus` process."""
    with open(os.devnull, "w") as errlog:
        async with stdio_client(server_params(db, **env), errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool that must succeed; returns its structured content."""
    result = await session.call_tool(tool, arguments)
    text = " ".join(getattr(c, "text", "") for c in result.content)
    assert not result.is_error, f"{tool} failed: {text}"
    assert result.structured_content is not None
    return result.structured_content


async def call_error(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool that must fail; returns its error object (code, message)."""
    result = await session.call_tool(tool, arguments)
    assert result.is_error, f"{tool} unexpectedly succeeded: {result.structured_content}"
    err = result.structured_content["error"]
    text = result.content[0].text
    assert text.startswith(err["code"] + ": "), text
    return result.structured_content


def text_of(result: Any) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


def make_token(db: Path, label: str = "t", **scope: Any) -> tuple[str, str]:
    """(public id, secret) of a new access token on the bus at ``db`` (created if missing)."""
    from agent_bus.bus import Bus
    from agent_bus.service import access
    from agent_bus.settings import load_settings

    bus = Bus(load_settings(db=db))
    try:
        bus.ensure_ready()
        info, token = access.create(bus, label, **scope)
    finally:
        bus.close()
    return info.token_id, token


def revoke_token(db: Path, token_id: str) -> None:
    from agent_bus.bus import Bus
    from agent_bus.service import access
    from agent_bus.settings import load_settings

    bus = Bus(load_settings(db=db))
    try:
        access.revoke(bus, token_id)
    finally:
        bus.close()
