"""A process's chain of ancestors, each as (pid, start time, launcher?).

Hooks and stdio MCP servers are both children of the coding client, but
launchers (a shell running the hook command, ``uvx``/``npx`` starting the
server) may sit in between. A process is identified by pid *and* start time
(clock ticks since boot on Linux), so a reused pid never matches.

Linux reads ``/proc`` (a few microseconds per process); elsewhere one ``ps``
call lists every process.
"""

from __future__ import annotations

import os
from collections import namedtuple

# Processes that start a command for someone else: shells (Claude Code `sh -c`,
# Codex `$SHELL -lc`, Gemini CLI `bash -c`), package runners and small wrappers.
LAUNCHERS = frozenset(
    {
        "sh", "bash", "dash", "zsh", "fish", "ksh", "mksh", "tcsh", "csh", "busybox", "pwsh",
        "uv", "uvx", "pipx", "npx", "npm", "pnpm", "pnpx", "bunx", "yarn", "env", "nice",
        "nohup", "timeout", "direnv", "mise", "sudo", "doas", "setsid", "stdbuf", "time",
    }
)  # fmt: skip
_SCRIPT_HOSTS = frozenset({"node", "bun", "deno"})


class Proc(namedtuple("Proc", "pid start launcher")):
    """One process: pid, start time (opaque text), and whether it is a launcher."""

    __slots__ = ()

    def key(self) -> tuple[int, str]:
        return (self.pid, self.start)


def _is_launcher(comm: str, argv: list[str]) -> bool:
    if comm in LAUNCHERS:
        return True
    name = os.path.basename(argv[0]) if argv else ""
    if name in LAUNCHERS or name.removeprefix("-") in LAUNCHERS:  # "-bash" is a login shell
        return True
    if (comm in _SCRIPT_HOSTS or name in _SCRIPT_HOSTS) and len(argv) > 1:
        script = os.path.basename(argv[1]).removesuffix(".js").removesuffix("-cli")
        return script in LAUNCHERS
    return comm.startswith("npm ")  # npm/npx set their title to "npm exec …"


def _proc_stat(pid: int) -> tuple[int, str, str] | None:
    """(parent pid, start ticks, comm) from /proc, None when the process is gone."""
    raw = _read(f"/proc/{pid}/stat")
    if raw is None:
        return None
    raw = raw.decode("utf-8", "replace")
    open_paren, close_paren = raw.find("("), raw.rfind(")")
    comm = raw[open_paren + 1 : close_paren]
    fields = raw[close_paren + 2 :].split()
    # fields[0] is the state (field 3); ppid is field 4, starttime field 22.
    return int(fields[1]), fields[19], comm


def _proc_argv(pid: int) -> list[str]:
    raw = _read(f"/proc/{pid}/cmdline")
    if raw is None:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


def _has_proc() -> bool:
    return os.path.exists("/proc/self/stat")


def chain(pid: int) -> list[Proc]:
    """``pid`` and its ancestors up to pid 1, nearest first."""
    if not _has_proc():
        return _chain_ps(pid)
    out: list[Proc] = []
    seen: set[int] = set()
    while pid > 0 and pid not in seen:
        seen.add(pid)
        stat = _proc_stat(pid)
        if stat is None:
            break
        ppid, start, comm = stat
        out.append(Proc(pid, start, _is_launcher(comm, _proc_argv(pid))))
        pid = ppid
    return out


def start_time(pid: int) -> str | None:
    """The start time of a live process, None when it is gone."""
    if _has_proc():
        stat = _proc_stat(pid)
        return None if stat is None else stat[1]
    for proc in _chain_ps(pid)[:1]:
        return proc.start
    return None


def is_alive(pid: int, start: str) -> bool:
    return start_time(pid) == start


def client_of(procs: list[Proc]) -> Proc | None:
    """The nearest ancestor that is not a launcher (``procs`` excludes the process itself)."""
    for proc in procs:
        if not proc.launcher:
            return proc
    return None


def _chain_ps(pid: int) -> list[Proc]:
    """Fallback without /proc (macOS, BSD): one ``ps`` listing of every process."""
    import subprocess  # only here: it costs the hook's start path milliseconds

    try:
        listing = subprocess.run(
            ["ps", "-A", "-o", "pid=,ppid=,lstart=,comm="],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    table: dict[int, tuple[int, str, str]] = {}
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        try:
            p, pp = int(parts[0]), int(parts[1])
        except ValueError:
            continue
        table[p] = (pp, " ".join(parts[2:7]), os.path.basename(" ".join(parts[7:])))
    out: list[Proc] = []
    seen: set[int] = set()
    while pid in table and pid not in seen:
        seen.add(pid)
        ppid, start, comm = table[pid]
        out.append(Proc(pid, start, _is_launcher(comm, [comm])))
        pid = ppid
    return out
