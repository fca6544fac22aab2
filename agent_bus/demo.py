"""``agent-bus demo``: two real agent-bus server processes hold a short review.

It shows a newcomer the whole loop in a few seconds, on the real database:
an implementer and a reviewer (each its own MCP server process, driven with
the official MCP client, exactly as a coding agent's client would) create
and join a topic, ask, wait, answer and close. Then the thread is printed
with the next commands to try and the config snippet for a client.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from agent_bus.settings import DEFAULT_DB_PATH, BusSettings

REVIEW_REQUEST = """\
Ready for review: retry with backoff in the HTTP client.

- `src/http/client.py`: new `retry_backoff_ms` setting (default 250), doubling per attempt
- `tests/test_client.py`: 4 new tests, all green (`pytest -q tests/test_client.py`)

Please check the retry limit and the error path."""

FINDINGS = """\
Review of the retry change:

1. **major** `src/http/client.py:88`: retries also fire on 4xx answers; only 5xx and
   timeouts should be retried.
2. **nit** `src/http/client.py:41`: name the magic `5` as `MAX_RETRIES`.

Everything else reads well."""

FIXES = """\
Both fixed in the second commit:

1. 4xx answers now fail at once (new test `test_no_retry_on_404`).
2. `MAX_RETRIES = 5` at module level.

`pytest -q` → 31 passed. Please re-review."""

APPROVAL = "Re-reviewed: both points are resolved. **Approved.**"


async def _conversation(settings: BusSettings) -> str:
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    env = {"AGENT_BUS_DB": str(settings.db), "AGENT_BUS_EMBEDDINGS_AUTOINDEX": "0"}
    params = StdioServerParameters(command=sys.executable, args=["-m", "agent_bus"], env=env)

    async def call(session: ClientSession, tool: str, **args: Any) -> dict[str, Any]:
        result = await session.call_tool(tool, args)
        if result.is_error:
            text = " ".join(getattr(c, "text", "") for c in result.content)
            raise RuntimeError(f"{tool} failed: {text}")
        return result.structured_content or {}

    with open(os.devnull, "w") as quiet:
        async with (
            stdio_client(params, errlog=quiet) as (ir, iw),
            ClientSession(ir, iw) as implementer,
            stdio_client(params, errlog=quiet) as (rr, rw),
            ClientSession(rr, rw) as reviewer,
        ):
            await implementer.initialize()
            await reviewer.initialize()
            name = time.strftime("demo-review-%Y%m%d-%H%M%S")
            topic = await call(implementer, "topic_create", name=name, mode="new")
            topic_id = topic["topic_id"]
            await call(implementer, "topic_join", agent_name="implementer", topic_id=topic_id)
            await call(reviewer, "topic_join", agent_name="reviewer", topic_id=topic_id)

            request = await call(
                implementer,
                "sync",
                topic_id=topic_id,
                wait_seconds=0,
                outbox=[
                    {
                        "content_markdown": REVIEW_REQUEST,
                        "message_type": "question",
                        "metadata": {"files": ["src/http/client.py", "tests/test_client.py"]},
                    }
                ],
            )
            question_id = request["sent"][0]["message"]["message_id"]
            got = await call(reviewer, "sync", topic_id=topic_id, wait_seconds=10)
            assert got["received"][0]["message_id"] == question_id
            await call(
                reviewer,
                "sync",
                topic_id=topic_id,
                wait_seconds=0,
                outbox=[
                    {
                        "content_markdown": FINDINGS,
                        "message_type": "review",
                        "reply_to": question_id,
                    }
                ],
            )
            findings = await call(implementer, "sync", topic_id=topic_id, wait_seconds=10)
            findings_id = findings["received"][0]["message_id"]
            await call(
                implementer,
                "sync",
                topic_id=topic_id,
                wait_seconds=0,
                outbox=[
                    {"content_markdown": FIXES, "message_type": "answer", "reply_to": findings_id}
                ],
            )
            fixes = await call(reviewer, "sync", topic_id=topic_id, wait_seconds=10)
            await call(
                reviewer,
                "sync",
                topic_id=topic_id,
                wait_seconds=0,
                outbox=[
                    {
                        "content_markdown": APPROVAL,
                        "message_type": "approval",
                        "reply_to": fixes["received"][0]["message_id"],
                    }
                ],
            )
            await call(implementer, "sync", topic_id=topic_id, wait_seconds=10)
            await call(implementer, "topic_close", topic_id=topic_id, reason="approved")
            return topic_id


def run_demo(settings: BusSettings) -> None:
    """Run the demo conversation and print the thread and next steps."""
    import anyio

    from agent_bus.bus import Bus
    from agent_bus.export import render_markdown
    from agent_bus.installers import mcp_config, resolve_command

    print(f"agent-bus demo: two server processes review a change on {settings.db}\n")
    started = time.perf_counter()
    topic_id = anyio.run(_conversation, settings)
    elapsed = time.perf_counter() - started
    bus = Bus(settings)
    try:
        topic = bus.get_topic(topic_id)
        messages = bus.messages(topic_id)
        print(render_markdown(topic, messages))
    finally:
        bus.close()
    db = str(settings.db)
    # A client starts the server by command name; point at this install if it is not on PATH.
    server = resolve_command()
    command = " ".join(server.argv)
    default_db = settings.db == DEFAULT_DB_PATH.expanduser()
    flag = "" if default_db else f" --db {db}"
    print(
        f"\n({len(messages)} messages between two MCP server processes, "
        f"{elapsed:.1f} s including their start-up)\n"
    )
    print("Next:")
    print(f"  {command} topics list --status all{flag}    # every topic on this bus")
    print(f"  {command} topics show {topic_id}{flag}    # this thread again")
    print(f"  {command} web{flag}    # browse it in Datasette")
    print("\nTo let a coding agent use this bus, add this to its MCP config")
    print("(Claude Code: .mcp.json; `agent-bus mcp-config --client NAME` for others):\n")
    print(mcp_config("claude-code", None if default_db else db, command=server))
