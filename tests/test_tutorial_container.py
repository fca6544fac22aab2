"""The container tutorial, followed as a reader would (docs/tutorial/agent-in-a-container.md).

The "container" is a Linux network namespace joined to the host by a veth pair: the
network position of a container on Docker's bridge. The host serves `agent-bus mcp
--http` on its end of the pair only; the container knows the host as
``host.docker.internal`` (what ``--add-host=host.docker.internal:host-gateway`` writes
into a container's /etc/hosts), writes its client config and runs `agent-bus doctor`
with the CLI, and runs the tutorial's own ``agent.py`` (the official MCP client over
streamable HTTP, taken from the page) while a stdio agent on the host answers.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import pytest
from http_server import _env, http_server

from conftest import REPO, call, spawn

pytestmark = pytest.mark.anyio

TUTORIAL = REPO / "docs" / "tutorial" / "agent-in-a-container.md"
TOPIC = "review/retry-uploads"


def tutorial_script() -> str:
    """The ``agent.py`` the reader writes with ``cat > agent.py <<'EOF'``."""
    match = re.search(r"cat > agent\.py <<'EOF'\n(.*?)\nEOF\n", TUTORIAL.read_text(), re.S)
    assert match, f"{TUTORIAL.name} has no `cat > agent.py <<'EOF'` block"
    return match.group(1) + "\n"


@dataclass
class Container:
    """A network namespace standing in for a container on a bridge."""

    name: str
    host_addr: str
    home: Path

    def run(self, *args: str, token: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args), env=self.env(token), cwd=self.home, **_TEXT)

    def command(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, sys.executable, *args]

    def env(self, token: str) -> dict[str, str]:
        # Nothing of the host's bus: the container knows only the URL and its token.
        base = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_BUS_")}
        return {**base, "HOME": str(self.home), "AGENT_BUS_TOKEN": token}


_TEXT = {"capture_output": True, "text": True, "timeout": 120}


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 for a network namespace (.ci/run installs iproute2)")
    tag = os.getpid() % 100_000
    name, host_if = f"abtut{tag}", f"abtut{tag}h"
    net = f"10.{100 + (tag >> 8) % 150}.{tag % 256}"
    hosts_dir = Path("/etc/netns") / name
    try:
        _ip("netns", "add", name)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot create a network namespace here: {exc.stderr.strip()}")
    try:
        _ip("link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", name)
        _ip("addr", "add", f"{net}.1/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("-n", name, "addr", "add", f"{net}.2/30", "dev", "eth0")
        _ip("-n", name, "link", "set", "eth0", "up")
        _ip("-n", name, "link", "set", "lo", "up")
        # `ip netns exec` mounts this over the container's /etc/hosts, as Docker's
        # --add-host=host.docker.internal:host-gateway writes its line there.
        hosts_dir.mkdir(parents=True, exist_ok=True)
        (hosts_dir / "hosts").write_text(f"127.0.0.1 localhost\n{net}.1 host.docker.internal\n")
        home = tmp_path / "container-home"
        home.mkdir()
        (home / "agent.py").write_text(tutorial_script())
        yield Container(name, f"{net}.1", home)
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)  # takes the pair along
        shutil.rmtree(hosts_dir, ignore_errors=True)


def host_cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "agent_bus", *args], env=_env(db, {}), **_TEXT)
    assert result.returncode == 0, result.stderr
    return result


async def test_an_agent_in_a_container_joins_the_bus_on_the_host(
    container: Container, db_path: Path
) -> None:
    token = host_cli(
        db_path, "tokens", "create", "devcontainer", "--agent", "codex-implementer",
        "--topic", TOPIC, "--expires", "1d",
    ).stdout.strip()  # fmt: skip
    token_id = token.split("_", 2)[1]
    host_cli(db_path, "topics", "create", TOPIC)
    with http_server(
        db_path,
        "--host", container.host_addr, "--allow-remote", "--allowed-host", "host.docker.internal",
    ) as srv:  # fmt: skip
        url = f"http://host.docker.internal:{urlsplit(srv.url).port}/mcp"

        # The client config names the variable, never the secret.
        config = container.run(
            "-m", "agent_bus", "mcp-config", "--client", "codex", "--user",
            "--url", url, "--token-env", "AGENT_BUS_TOKEN", "--write", token=token,
        )  # fmt: skip
        assert config.returncode == 0, config.stderr
        written = (container.home / ".codex" / "config.toml").read_text()
        assert f'url = "{url}"' in written
        assert 'bearer_token_env_var = "AGENT_BUS_TOKEN"' in written
        assert token not in written and token.split("_", 2)[2] not in written

        doctor = container.run("-m", "agent_bus", "doctor", "--url", url, token=token)
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert "ok   auth: token accepted" in doctor.stdout

        async with spawn(db_path) as reviewer:  # the host's agent, on stdio
            topic = await call(reviewer, "topic_join", agent_name="claude-reviewer", name=TOPIC)
            implementer: dict[str, subprocess.CompletedProcess[str]] = {}

            async def run_implementer() -> None:
                implementer["result"] = await anyio.to_thread.run_sync(
                    lambda: container.run("agent.py", "--url", url, token=token)
                )

            with anyio.fail_after(120):  # a hang guard, not a timing assertion
                async with anyio.create_task_group() as tg:
                    tg.start_soon(run_implementer)
                    received: list[dict] = []
                    while not received and "result" not in implementer:
                        got = await call(
                            reviewer, "sync", topic_id=topic["topic_id"], wait_seconds=30
                        )
                        received = got["received"]
                    assert received, implementer["result"].stdout + implementer["result"].stderr
                    request = received[0]
                    assert request["sender"] == "codex-implementer"
                    assert request["message_type"] == "question"
                    assert request["content_markdown"].startswith("## Review request")
                    answer = {
                        "message_type": "answer",
                        "reply_to": request["message_id"],
                        "content_markdown": "Approved.",
                    }
                    await call(
                        reviewer,
                        "sync",
                        topic_id=topic["topic_id"],
                        outbox=[answer],
                        wait_seconds=0,
                    )
            done = implementer["result"]
            assert done.returncode == 0, done.stdout + done.stderr
            assert "claude-reviewer (answer)" in done.stdout and "Approved." in done.stdout

            # The token names one agent and one topic: anything else is refused, unstored.
            for args in (["--as", "claude-reviewer"], ["--topic", "deploy/prod"]):
                refused = container.run("agent.py", "--url", url, *args, token=token)
                assert refused.returncode == 1, refused.stdout + refused.stderr
                assert "FORBIDDEN: " in refused.stdout
            history = await call(reviewer, "sync", topic_id=topic["topic_id"], wait_seconds=0)
            assert history["received"] == []
        with sqlite3.connect(db_path) as conn:
            assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 2
        assert f"{container.host_addr[:-1]}2 token={token_id}" in srv.log

        host_cli(db_path, "tokens", "revoke", token_id)
        after = container.run("-m", "agent_bus", "doctor", "--url", url, token=token)
        assert after.returncode == 1
        assert "FAIL auth: the token in AGENT_BUS_TOKEN was refused" in after.stdout
