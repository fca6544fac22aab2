"""Plumbing shared by the benchmarks: server processes, /proc readings, statistics.

Every server is a real child process spoken to with the official `mcp` client
over stdio, exactly as a coding agent's client would start it.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

REPO = Path(__file__).resolve().parent.parent
BARE_SERVER = Path(__file__).resolve().parent / "bare_server.py"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class ToolFailed(RuntimeError):
    """A tool answered ``isError: true``; ``code`` is the stable error code."""

    def __init__(self, tool: str, code: str, text: str) -> None:
        super().__init__(f"{tool}: {text}")
        self.code = code


@dataclass
class Server:
    """An initialised client session and the pid of the server process behind it."""

    session: ClientSession
    pid: int


# Extra environment for every agent-bus server (``--env KEY=VALUE`` of the runner).
EXTRA_ENV: dict[str, str] = {}


def server_env(db: Path, home: Path) -> dict[str, str]:
    return {
        "AGENT_BUS_DB": str(db),
        "HOME": str(home),
        "LLM_USER_PATH": str(home / "llm"),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **EXTRA_ENV,
    }


def agent_bus_params(db: Path, home: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", "agent_bus"], env=server_env(db, home), cwd=REPO
    )


def bare_params(home: Path) -> StdioServerParameters:
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return StdioServerParameters(command=sys.executable, args=[str(BARE_SERVER)], env=env)


def prepare_db(db: Path) -> None:
    """Create the bus schema up front: servers then open an existing bus, as in daily use.

    (Creating a database is a one-off per machine and imports sqlite-utils; it is
    not what an agent's server pays at start.)
    """
    from agent_bus.store.connection import open_connection, prepare_path
    from agent_bus.store.schema import ensure_schema

    prepare_path(db)
    conn = open_connection(db, busy_timeout_ms=5000)
    try:
        ensure_schema(conn, str(db))
    finally:
        conn.close()


def children(pid: int | None = None) -> set[int]:
    """Direct child pids of ``pid`` (default: this process), from /proc."""
    pid = os.getpid() if pid is None else pid
    found: set[int] = set()
    with contextlib.suppress(FileNotFoundError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(FileNotFoundError):
                text = Path(f"/proc/{pid}/task/{task}/children").read_text()
                found.update(int(p) for p in text.split())
    return found


@contextlib.asynccontextmanager
async def open_server(params: StdioServerParameters) -> AsyncIterator[Server]:
    """Start a server process, initialise a session, and find the child's pid.

    Servers must be opened one after another (not concurrently) so that the
    new child pid is unambiguous.
    """
    before = children()
    with open(os.devnull, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                new = children() - before
                if len(new) != 1:
                    raise RuntimeError(f"cannot identify the server process: new children {new}")
                yield Server(session, new.pop())


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool that must succeed; returns its structured content."""
    result = await session.call_tool(tool, arguments)
    if result.is_error:
        text = " ".join(getattr(c, "text", "") for c in result.content)
        code = ((result.structured_content or {}).get("error") or {}).get("code", "UNKNOWN")
        raise ToolFailed(tool, code, text)
    assert result.structured_content is not None
    return result.structured_content


# --- /proc readings -----------------------------------------------------------------------


def rss_mib(pid: int) -> float:
    """Resident set size (VmRSS) of a process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# --- statistics ---------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty list."""
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def summary(values_ms: list[float]) -> dict[str, float]:
    return {
        "n": len(values_ms),
        "p50": round(percentile(values_ms, 50), 3),
        "p95": round(percentile(values_ms, 95), 3),
        "p99": round(percentile(values_ms, 99), 3),
        "min": round(min(values_ms), 3),
        "max": round(max(values_ms), 3),
        "mean": round(sum(values_ms) / len(values_ms), 3),
    }


def ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000


# --- the machine --------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, Any]:
    commit = "unknown"
    dirty: list[str] = []
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", "agent_bus"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout
        dirty = [line[3:] for line in status.splitlines() if line.strip()]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "mcp": _version("mcp"),
        "agent_bus": _version("agent-bus"),
        "commit": commit,
        "dirty_files": dirty,
        "server_env": dict(EXTRA_ENV),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
