"""A bare JSON-RPC-over-stdio driver for tests that need the raw process.

The official client is used everywhere else; this exists for what it cannot
do on purpose: send malformed text, close stdin mid-call, or kill -9 a server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from mcp.types import LATEST_PROTOCOL_VERSION


class RawServer:
    def __init__(self, db: Path, *, stderr: Any = subprocess.DEVNULL, **env: str) -> None:
        full = {**os.environ, "AGENT_BUS_DB": str(db), **env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent_bus"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=full,
        )
        self._next_id = 0
        self.notifications: list[dict[str, Any]] = []
        self.init = self.request(
            "initialize",
            {
                "protocolVersion": LATEST_PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "raw-test", "version": "0"},
            },
        )
        self.notify("notifications/initialized", {})

    def send_line(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.send_line(json.dumps({"jsonrpc": "2.0", "method": method, "params": params}))

    def send(self, method: str, params: dict[str, Any]) -> int:
        self._next_id += 1
        msg = {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params}
        self.send_line(json.dumps(msg))
        return self._next_id

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise EOFError("server closed stdout")
            msg = json.loads(line)
            if "id" in msg:
                return msg
            self.notifications.append(msg)

    def next_notification(self, method: str) -> dict[str, Any]:
        """The first notification named ``method`` (reading on until it comes)."""
        assert self.proc.stdout is not None
        while True:
            for i, msg in enumerate(self.notifications):
                if msg.get("method") == method:
                    return self.notifications.pop(i)
            line = self.proc.stdout.readline()
            if not line:
                raise EOFError("server closed stdout")
            self.notifications.append(json.loads(line))

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        rid = self.send(method, params)
        msg = self.read()
        assert msg["id"] == rid, msg
        return msg

    def tool(self, tool_name: str, /, **arguments: Any) -> dict[str, Any]:
        return self.request("tools/call", {"name": tool_name, "arguments": arguments})["result"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
