"""A full review loop between two real `agent-bus` processes, scripted from the skill packs.

The implementer and the reviewer each talk to their own server process (as two coding
agents would), on one database file. Every step follows `skills/agent-bus-implementer` and
`skills/agent-bus-reviewer`, and every message body is a template copied out of those
files, so the test fails if a template or a step stops working against the real server.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client.session import ClientSession

from conftest import REPO, call, call_error, spawn

pytestmark = pytest.mark.anyio

IMPLEMENTER_TEMPLATES = REPO / "skills" / "agent-bus-implementer" / "references" / "templates.md"
REVIEWER_SKILL = REPO / "skills" / "agent-bus-reviewer" / "SKILL.md"
TOPIC = "review/feature-x"
IMPLEMENTER = "codex-implementer"
REVIEWER = "claude-reviewer"
VERDICT_APPROVED = "### Verdict: approved"
FENCE = re.compile(r"^```markdown\n(.*?)^```", re.S | re.M)
FINDING = re.compile(r"\bF(\d+)\b")


def implementer_template(title: str, **values: str) -> dict[str, Any]:
    """The outbox item the implementer skill's template `title` describes, filled in.

    Its heading line reads like ``## Review request (`message_type="question"`,
    `client_message_id="review-request-1"`)``: those become the item's fields.
    """
    text = IMPLEMENTER_TEMPLATES.read_text(encoding="utf-8")
    found = re.search(rf"^## {re.escape(title)} \((.*)\)$", text, flags=re.M)
    assert found is not None, f"no template titled {title!r}"
    heading = found.group(1)
    body = FENCE.search(text, found.end())
    assert body is not None, f"no markdown template under {title!r}"
    item: dict[str, Any] = {"content_markdown": fill(body.group(1), values)}
    for key, value in re.findall(r'`(message_type|client_message_id)="([^"]+)"`', heading):
        item[key] = fill(value, values)
    return item


def reviewer_example(first_line: str) -> str:
    """The reviewer skill's example message that starts with ``first_line``."""
    blocks = FENCE.findall(REVIEWER_SKILL.read_text(encoding="utf-8"))
    return next(b for b in blocks if b.startswith(first_line))


def fill(template: str, values: dict[str, str]) -> str:
    """Replace each ``<placeholder>`` by ``values[placeholder]`` (or a stand-in)."""
    return re.sub(r"<([^<>\n]+)>", lambda m: values.get(m.group(1), f"[{m.group(1)}]"), template)


async def drain(s: ClientSession, topic_id: str, **extra: Any) -> list[dict[str, Any]]:
    """Protocol rule 4: `sync(wait_seconds=0)` until `has_more` is false."""
    received: list[dict[str, Any]] = []
    for _ in range(100):
        out = await call(s, "sync", topic_id=topic_id, wait_seconds=0, **extra)
        received += out["received"]
        if not out["has_more"]:
            return received
    raise AssertionError("has_more never became false")


async def wait_for(
    s: ClientSession,
    topic_id: str,
    wanted: Callable[[dict[str, Any]], bool],
    *,
    rounds: int = 5,
    wait_seconds: int = 20,
) -> list[dict[str, Any]]:
    """Protocol rule 5: bounded long-poll rounds until a wanted message came; then drain."""
    received: list[dict[str, Any]] = []
    for _ in range(rounds):
        out = await call(s, "sync", topic_id=topic_id, wait_seconds=wait_seconds)
        received += out["received"]
        if any(wanted(m) for m in received):
            if out["has_more"]:
                received += await drain(s, topic_id)
            return received
    raise AssertionError(f"nothing wanted arrived in {rounds} rounds: {received}")


def heading(message: dict[str, Any]) -> str:
    return message["content_markdown"].splitlines()[0]


async def test_review_loop_between_two_processes_follows_the_skills_to_approval(db_path):
    async with spawn(db_path) as impl, spawn(db_path) as rev:
        with anyio.fail_after(120):
            await _review_loop(impl, rev, db_path)


async def _review_loop(impl: ClientSession, rev: ClientSession, db_path: Path) -> None:
    # --- implementer: join and catch up, announce the plan, ask for review -------------
    topic = await call(impl, "topic_create", name=TOPIC, mode="reuse")
    assert topic["created"] is True and topic["status"] == "open"
    topic_id = topic["topic_id"]
    joined = await call(impl, "topic_join", agent_name=IMPLEMENTER, topic_id=topic_id)
    assert joined["reclaim_token"]
    assert await drain(impl, topic_id) == []

    plan = implementer_template(
        "Plan", **{"task title": "retry policy", "one sentence": "retry failed uploads"}
    )
    assert plan == {**plan, "message_type": "message", "client_message_id": "plan-1"}
    request = implementer_template(
        "Review request",
        **{"base ref": "main", "sha": "4e1d2a7", "branch": "feature-x", "path": "app/upload.py"},
    )
    assert request["message_type"] == "question"
    assert request["client_message_id"] == "review-request-1"
    request["metadata"] = {
        "files": ["app/upload.py", "tests/test_upload.py"],
        "tests": ["pytest -q tests/test_upload.py: 12 passed"],
        "base_ref": "main",
        "head": "4e1d2a7",
    }
    out = await call(impl, "sync", topic_id=topic_id, wait_seconds=0, outbox=[plan, request])
    assert [s["duplicate"] for s in out["sent"]] == [False, False]
    request_msg = out["sent"][1]["message"]
    # A retry of the same item (same client_message_id) is not stored twice.
    retry = await call(impl, "sync", topic_id=topic_id, wait_seconds=0, outbox=[request])
    assert retry["sent"][0]["duplicate"] is True
    assert retry["sent"][0]["message"]["message_id"] == request_msg["message_id"]

    # --- reviewer: join, drain, post findings while the implementer long-polls ---------
    findings_text = reviewer_example("## Review: changes requested")
    findings_msg: dict[str, Any] = {}
    impl_saw: list[dict[str, Any]] = []

    async def reviewer_round_one() -> None:
        resolved = await call(rev, "topic_resolve", name=TOPIC)
        assert resolved["topic_id"] == topic_id
        await call(rev, "topic_join", agent_name=REVIEWER, topic_id=topic_id)
        seen = await drain(rev, topic_id, max_items=1)  # small pages: has_more is exercised
        assert [m["seq"] for m in seen] == [1, 2]
        requests = [
            m for m in seen if m["message_type"] == "question" and heading(m) == "## Review request"
        ]
        assert requests[-1]["message_id"] == request_msg["message_id"]
        assert requests[-1]["metadata"]["files"] == ["app/upload.py", "tests/test_upload.py"]
        item = {
            "content_markdown": findings_text,
            "message_type": "answer",
            "reply_to": requests[-1]["message_id"],
            "client_message_id": "review-round-1",
        }
        sent = await call(rev, "sync", topic_id=topic_id, wait_seconds=0, outbox=[item])
        findings_msg.update(sent["sent"][0]["message"])

    async def implementer_waits() -> None:
        impl_saw.extend(
            await wait_for(impl, topic_id, lambda m: m["sender"] == REVIEWER, wait_seconds=30)
        )

    async with anyio.create_task_group() as tg:
        tg.start_soon(implementer_waits)
        tg.start_soon(reviewer_round_one)

    assert [m["message_id"] for m in impl_saw] == [findings_msg["message_id"]]
    review = impl_saw[0]
    assert review["reply_to"] == request_msg["message_id"]
    assert heading(review) == "## Review: changes requested"
    raised = sorted(set(FINDING.findall(review["content_markdown"])), key=int)
    assert raised == ["1", "2", "3", "4"]

    # --- implementer: answer point by point, then ask for re-review --------------------
    response = implementer_template(
        "Response to review", round="1", sha="9b0c1de", **{"test name": "test_concurrent_seq"}
    )
    response.update(message_type="answer", reply_to=review["message_id"])
    response["client_message_id"] = "review-response-1"
    answered = sorted(set(FINDING.findall(response["content_markdown"])), key=int)
    assert answered == raised  # every finding gets a line
    rereview = implementer_template("Ready for re-review", **{"new sha": "9b0c1de", "n": "1"})
    assert rereview["message_type"] == "question"
    out = await call(impl, "sync", topic_id=topic_id, wait_seconds=0, outbox=[response, rereview])
    response_msg, rereview_msg = (s["message"] for s in out["sent"])
    assert rereview_msg["seq"] == response_msg["seq"] + 1
    assert rereview_msg["client_message_id"] == "rereview-request-1"

    # --- reviewer: re-review with cursor semantics, approve ----------------------------
    fresh = await wait_for(rev, topic_id, lambda m: heading(m) == "## Ready for re-review")
    assert [m["message_id"] for m in fresh] == [
        response_msg["message_id"],
        rereview_msg["message_id"],
    ]
    # The cursor stood after the findings: nothing old came back. Re-reading the round
    # (rereview prompt: cursor_reset to the request, include_self) shows both sides.
    reset = await call(rev, "cursor_reset", topic_id=topic_id, last_seq=request_msg["seq"])
    assert reset["cursor"]["last_seq"] == request_msg["seq"] and reset["agent_name"] == REVIEWER
    reread = await drain(rev, topic_id, include_self=True, max_items=2)
    assert [m["message_id"] for m in reread] == [
        findings_msg["message_id"],
        response_msg["message_id"],
        rereview_msg["message_id"],
    ]
    approval_text = reviewer_example("## Re-review 2: approved")
    approval = {
        "content_markdown": approval_text,
        "message_type": "answer",
        "reply_to": rereview_msg["message_id"],
        "client_message_id": "review-round-2",
    }
    out = await call(rev, "sync", topic_id=topic_id, wait_seconds=0, outbox=[approval])
    approval_msg = out["sent"][0]["message"]

    # --- implementer: verdict approved, done, close ------------------------------------
    verdicts = await wait_for(
        impl, topic_id, lambda m: m["content_markdown"].rstrip().endswith(VERDICT_APPROVED)
    )
    assert [m["message_id"] for m in verdicts] == [approval_msg["message_id"]]
    done = implementer_template(
        "Done", n=str(approval_msg["seq"]), sha="9b0c1de", branch="feature-x"
    )
    assert done["message_type"] == "message"
    done["client_message_id"] = "done-1"
    out = await call(impl, "sync", topic_id=topic_id, wait_seconds=0, outbox=[done])
    done_msg = out["sent"][0]["message"]
    closed = await call(
        impl, "topic_close", topic_id=topic_id, reason=f"approved at seq {approval_msg['seq']}"
    )
    assert closed["status"] == "closed" and closed["close_reason"] == "approved at seq 6"

    # --- the topic is closed for both processes ------------------------------------------
    late = {"content_markdown": "one more thing"}
    err = await call_error(rev, "sync", topic_id=topic_id, wait_seconds=0, outbox=[late])
    assert err["error"]["code"] == "TOPIC_CLOSED"
    closed_topics = (await call(rev, "topic_list", status="closed"))["topics"]
    assert [(t["topic_id"], t["status"]) for t in closed_topics] == [(topic_id, "closed")]
    assert (await call(rev, "topic_list", status="open"))["topics"] == []
    again = await call(rev, "topic_close", topic_id=topic_id)
    assert [w["code"] for w in again["warnings"]] == ["ALREADY_CLOSED"]

    # --- the transcript, replayed from the start -------------------------------------------
    await call(rev, "cursor_reset", topic_id=topic_id, last_seq=0)
    thread = await drain(rev, topic_id, include_self=True, max_items=3)
    ids = {
        "plan": thread[0]["message_id"],
        "request": request_msg["message_id"],
        "findings": findings_msg["message_id"],
        "response": response_msg["message_id"],
        "rereview": rereview_msg["message_id"],
        "approval": approval_msg["message_id"],
        "done": done_msg["message_id"],
    }
    transcript = [
        (m["seq"], m["sender"], m["message_type"], heading(m).split(":")[0], m["reply_to"])
        for m in thread
    ]
    assert transcript == [
        (1, IMPLEMENTER, "message", "## Plan", None),
        (2, IMPLEMENTER, "question", "## Review request", None),
        (3, REVIEWER, "answer", "## Review", ids["request"]),
        (4, IMPLEMENTER, "answer", "## Response to review 1", ids["findings"]),
        (5, IMPLEMENTER, "question", "## Ready for re-review", None),
        (6, REVIEWER, "answer", "## Re-review 2", ids["rereview"]),
        (7, IMPLEMENTER, "message", "## Done", None),
    ]
    assert [m["message_id"] for m in thread] == list(ids.values())
    assert thread[-1]["content_markdown"].startswith("## Done\nApproved at seq 6.")
    presence = await call(rev, "topic_presence", topic_id=topic_id)
    assert {p["agent_name"] for p in presence["peers"]} == {IMPLEMENTER, REVIEWER}
