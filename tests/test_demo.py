"""`agent-bus demo` (what `make run` runs): a real two-process review on a fresh bus."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from agent_bus.bus import Bus
from agent_bus.settings import BusSettings


def test_demo_holds_a_review_between_two_servers_and_prints_the_thread(db_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "agent_bus", "demo", "--db", str(db_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )
    assert result.returncode == 0, result.stderr
    assert "Approved" in result.stdout
    assert '"mcpServers"' in result.stdout and str(db_path) in result.stdout
    bus = Bus(BusSettings(db=db_path))
    try:
        (topic,) = bus.topic_list(status="all")
        assert topic.status == "closed" and topic.close_reason == "approved"
        messages = bus.messages(topic.topic_id)
        assert [(m.sender, m.message_type) for m in messages] == [
            ("implementer", "question"),
            ("reviewer", "review"),
            ("implementer", "answer"),
            ("reviewer", "approval"),
        ]
        assert all(
            m.reply_to == prev.message_id for prev, m in zip(messages, messages[1:], strict=False)
        )
    finally:
        bus.close()
