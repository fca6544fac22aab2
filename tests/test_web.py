"""The Datasette plugin's routes through Datasette's own test client, on real bus files."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import anyio
import pytest

from agent_bus.bus import Bus
from agent_bus.models import OutboxItem
from agent_bus.settings import BusSettings
from agent_bus.web import WebError, build_datasette, is_loopback, load_plugin, run_web

pytestmark = pytest.mark.anyio

load_plugin()
from agent_bus_datasette.state import close as close_plugin  # noqa: E402

XSS_BODY = (
    "<script>alert('body')</script>\n\n"
    "<img src=x onerror=alert('img')>\n\n"
    "[click me](javascript:alert('link')) and [again](JaVaScRiPt:alert(1))\n\n"
    '<a href="javascript:alert(2)">raw anchor</a>\n\n'
    "![pixel](https://tracker.example/p.png)\n\n"
    "<iframe src=https://evil.example></iframe> <svg onload=alert(3)></svg>"
)


def seed(path: Path) -> dict[str, Any]:
    """A small realistic bus: an open review topic with a reply, a closed topic, an XSS topic."""
    bus = Bus(BusSettings(db=path))
    try:
        review, _ = bus.topic_create("payments-review", metadata={"pr": 482})
        bus.topic_join("reviewer-heron", topic_id=review.topic_id)
        first = bus.post(
            review.topic_id,
            "implementer-otter",
            [
                OutboxItem(
                    content_markdown=(
                        "Kicking off the review of **PR #482**.\n\n"
                        "```python\ndef charge(amount: int) -> None:\n    pass\n```\n\n"
                        "- `ChargeOrchestrator`\n- `RefundHandler`"
                    ),
                    metadata={"files": ["src/payments/service.py"]},
                )
            ],
        )[0].message
        question = bus.post(
            review.topic_id,
            "reviewer-heron",
            [
                OutboxItem(
                    content_markdown="Are the webhook handlers moving in this PR?",
                    message_type="question",
                    reply_to=first.message_id,
                )
            ],
        )[0].message
        bus.cursor_reset(review.topic_id, "reviewer-heron", 2)
        old, _ = bus.topic_create("release-checklist")
        bus.post(old.topic_id, "bot", [OutboxItem(content_markdown="All done.")])
        bus.topic_close(old.topic_id, reason="shipped")
        evil, _ = bus.topic_create("<script>alert('topic')</script>")
        bad = bus.post(
            evil.topic_id,
            "<img src=x onerror=alert('sender')>",
            [OutboxItem(content_markdown=XSS_BODY, message_type="<b>type</b>")],
        )[0].message
        return {
            "review": review,
            "first": first,
            "question": question,
            "closed": old,
            "evil": evil,
            "bad": bad,
        }
    finally:
        bus.close()


@pytest.fixture
def bus_file(db_path: Path) -> tuple[Path, dict[str, Any]]:
    return db_path, seed(db_path)


@contextlib.asynccontextmanager
async def serving(path: Path, *, remote: bool = False, **settings: Any) -> AsyncIterator[Any]:
    """A started web UI on the bus at ``path`` (remote: every request needs a token)."""
    instance = build_datasette(
        BusSettings(db=path, **settings), anonymous_writes=not remote, require_token=remote
    )
    await instance.invoke_startup()
    try:
        yield instance
    finally:
        close_plugin(instance)


@pytest.fixture
async def ds(bus_file: tuple[Path, dict[str, Any]]) -> AsyncIterator[Any]:
    async with serving(bus_file[0]) as instance:
        yield instance


@pytest.fixture
def data(bus_file: tuple[Path, dict[str, Any]]) -> dict[str, Any]:
    return bus_file[1]


ROOT = "/-/agent-bus/agent_bus"


class Tags(HTMLParser):
    """Every start tag with its attributes, to check what a browser would execute."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def assert_inert(html: str) -> None:
    parser = Tags()
    parser.feed(html)
    for tag, attrs in parser.tags:
        if tag == "svg" and attrs.get("aria-labelledby") == "nav-menu-svg-title":
            continue  # Datasette's menu icon
        assert tag not in ("img", "iframe", "svg", "object", "embed"), (tag, attrs)
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        for name in ("href", "src", "action"):
            value = (attrs.get(name) or "").strip().lower()
            assert not value.startswith(("javascript:", "data:", "vbscript:")), (tag, attrs)
        if tag == "script":
            # our own file, or Datasette's fixed menu script (allowed by hash in the CSP)
            assert attrs.get("src", "").startswith("/-/agent-bus/-/static/") or not attrs
    assert "alert('body')</script>" not in html
    assert "<script>alert(" not in html


# --- overview ---------------------------------------------------------------------------


async def test_home_redirects_to_the_only_bus_database(ds):
    response = await ds.client.get("/-/agent-bus")
    assert response.status_code == 302
    assert response.headers["location"] == ROOT


async def test_overview_lists_topics_with_status_counts_and_presence(ds, data):
    response = await ds.client.get(ROOT)
    assert response.status_code == 200
    html = response.text
    assert "payments-review" in html and "release-checklist" in html
    assert 'class="ab-badge ab-status-closed"' in html
    assert "reviewer-heron" in html  # present: its cursor moved just now
    csp = response.headers["content-security-policy"]
    assert "script-src 'self' 'sha256-" in csp and "default-src 'none'" in csp
    assert_inert(html)


async def test_overview_filters_by_status(ds):
    html = (await ds.client.get(ROOT + "?status=open")).text
    assert "payments-review" in html and "release-checklist" not in html
    html = (await ds.client.get(ROOT + "?status=closed")).text
    assert "release-checklist" in html and "payments-review" not in html


async def test_overview_json_lists_topics_newest_activity_first(ds, data):
    response = await ds.client.get(ROOT + ".json")
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "agent_bus"
    names = [t["name"] for t in body["topics"]]
    assert names[0] == data["evil"].name  # the most recent message
    review = next(t for t in body["topics"] if t["topic_id"] == data["review"].topic_id)
    assert review["message_count"] == 2
    assert review["present"] == ["reviewer-heron"]
    assert review["url"] == f"{ROOT}/topics/{data['review'].topic_id}"
    assert {"status", "last_seq", "last_message_at", "last_activity_at"} <= set(review)


# --- thread -----------------------------------------------------------------------------


async def test_thread_renders_messages_in_seq_order_with_markdown_and_reply(ds, data):
    tid = data["review"].topic_id
    response = await ds.client.get(f"{ROOT}/topics/{tid}")
    assert response.status_code == 200
    html = response.text
    assert html.index('id="m-1"') < html.index('id="m-2"')
    assert "<strong>PR #482</strong>" in html
    assert '<pre class="highlight"><code class="language-python">' in html
    assert '<span class="k">def</span>' in html  # pygments tokens
    assert '<span class="ab-badge ab-type-question">question</span>' in html
    assert 'class="ab-reply" href="#m-1"' in html  # reply-to link with quoted parent
    assert "Kicking off the review of **PR #482**" in html  # the quote is plain text
    assert f'href="{ROOT}/messages/{data["first"].message_id}"' in html  # permalink
    assert "src/payments/service.py" in html  # metadata, folded in <details>
    assert f'data-poll-url="{ROOT}/topics/{tid}/poll.json"' in html
    assert "reviewer-heron" in html.split('id="ab-presence"')[1]
    assert response.headers["content-security-policy"]


async def test_thread_accepts_a_topic_name(ds, data):
    response = await ds.client.get(f"{ROOT}/topics/payments-review.json")
    assert response.json()["topic"]["topic_id"] == data["review"].topic_id


async def test_thread_json_shape(ds, data):
    tid = data["review"].topic_id
    body = (await ds.client.get(f"{ROOT}/topics/{tid}.json")).json()
    assert body["topic"]["name"] == "payments-review"
    assert [m["seq"] for m in body["messages"]] == [1, 2]
    assert body["messages"][1]["reply_to"] == data["first"].message_id
    assert body["window"] == {
        "first_seq": 1,
        "last_seq": 2,
        "has_earlier": False,
        "has_later": False,
        "limit": 100,
    }
    assert body["stats"]["message_count"] == 2
    assert [p["agent_name"] for p in body["presence"]] == ["reviewer-heron"]


async def test_unknown_topic_is_404_as_page_and_as_json(ds):
    response = await ds.client.get(f"{ROOT}/topics/no-such-topic")
    assert response.status_code == 404
    assert "no-such-topic" in response.text
    response = await ds.client.get(f"{ROOT}/topics/no-such-topic.json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "TOPIC_NOT_FOUND"
    for path in ("poll.json", "export.md"):
        response = await ds.client.get(f"{ROOT}/topics/no-such-topic/{path}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "TOPIC_NOT_FOUND"


async def test_error_json_message_does_not_repeat_the_code(ds, data):
    for path in (
        "topics/no-such-topic.json",
        "topics/no-such-topic/poll.json",
        f"topics/{data['review'].topic_id}.json?before=abc",
    ):
        error = (await ds.client.get(f"{ROOT}/{path}")).json()["error"]
        assert error["message"] and not error["message"].startswith(error["code"]), error


async def test_unknown_database_and_message_are_404(ds):
    assert (await ds.client.get("/-/agent-bus/nope")).status_code == 404
    assert (await ds.client.get("/-/agent-bus/nope.json")).json()["error"]["code"] == "NOT_FOUND"
    assert (await ds.client.get(f"{ROOT}/messages/nope")).status_code == 404


async def test_bad_paging_argument_is_invalid_argument(ds, data):
    tid = data["review"].topic_id
    response = await ds.client.get(f"{ROOT}/topics/{tid}.json?before=abc")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_ARGUMENT"


async def test_an_invalid_argument_is_400_on_the_page_and_in_json(ds, data):
    tid = data["review"].topic_id
    for suffix in ("", ".json"):
        response = await ds.client.get(f"{ROOT}/topics/{tid}{suffix}?before=abc")
        assert response.status_code == 400, suffix
        assert "before must be an integer" in response.text
    page = await ds.client.get(f"{ROOT}/search?q=x&mode=nonsense")
    assert page.status_code == 400 and "mode" in page.text
    assert (await ds.client.get(f"{ROOT}/topics/{tid}/poll.json?after=-1")).status_code == 400


async def test_json_envelopes_validate_against_the_mcp_models(ds, data):
    from agent_bus.models import Message, PresencePeer, SearchResult, Topic, TopicSummary

    tid = data["review"].topic_id
    body = (await ds.client.get(f"{ROOT}/topics/{tid}.json")).json()
    Topic.model_validate(body["topic"])
    assert [Message.model_validate(m).seq for m in body["messages"]] == [1, 2]
    assert [PresencePeer.model_validate(p).agent_name for p in body["presence"]]
    for t in (await ds.client.get(f"{ROOT}.json")).json()["topics"]:
        TopicSummary.model_validate(t)
    for r in (await ds.client.get(f"{ROOT}/search.json?q=review&mode=fts")).json()["results"]:
        SearchResult.model_validate(r)
    error = (await ds.client.get(f"{ROOT}/topics/nope.json")).json()
    assert error == {"error": {"code": "TOPIC_NOT_FOUND", "message": error["error"]["message"]}}


async def test_long_thread_is_windowed_and_paged(db_path):
    bus = Bus(BusSettings(db=db_path))
    topic, _ = bus.topic_create("long")
    items = [OutboxItem(content_markdown=f"message {i}") for i in range(50)]
    for _ in range(5):
        bus.post(topic.topic_id, "a", items)
    target = bus.messages(topic.topic_id, after_seq=119, limit=1)[0]
    bus.close()
    ds = build_datasette(BusSettings(db=db_path))
    try:
        root = f"/-/agent-bus/long/topics/{topic.topic_id}".replace("/long/", "/agent_bus/")
        body = (await ds.client.get(root + ".json")).json()
        assert [m["seq"] for m in body["messages"]] == list(range(151, 251))
        assert body["window"]["has_earlier"] and not body["window"]["has_later"]
        body = (await ds.client.get(root + ".json?before=151")).json()
        assert [m["seq"] for m in body["messages"]] == list(range(51, 151))
        body = (await ds.client.get(root + ".json?after=200&limit=10")).json()
        assert [m["seq"] for m in body["messages"]] == list(range(201, 211))
        body = (await ds.client.get(root + ".json?at=120&limit=20")).json()
        assert [m["seq"] for m in body["messages"]] == list(range(110, 130))
        html = (await ds.client.get(root + "?before=151")).text
        assert "?before=51" in html and "?after=150" in html
        assert "data-poll-url" not in html  # not live while an older window is shown
        response = await ds.client.get(f"/-/agent-bus/agent_bus/messages/{target.message_id}")
        assert response.status_code == 302
        assert response.headers["location"].endswith(f"{topic.topic_id}?at=120#m-120")
    finally:
        close_plugin(ds)


# --- live updates -----------------------------------------------------------------------


async def test_poll_returns_messages_after_a_seq_with_their_html(ds, data):
    tid = data["review"].topic_id
    body = (await ds.client.get(f"{ROOT}/topics/{tid}/poll.json?after=1")).json()
    assert [m["seq"] for m in body["messages"]] == [2]
    assert body["last_seq"] == 2 and body["status"] == "open"
    assert 'id="m-2"' in body["html"]
    # the parent is outside this fragment: its quote links to the permalink
    assert f'href="{ROOT}/messages/{data["first"].message_id}"' in body["html"]
    assert "reviewer-heron" in body["presence_html"]
    body = (await ds.client.get(f"{ROOT}/topics/{tid}/poll.json?after=2")).json()
    assert body["messages"] == [] and body["html"] == "" and body["last_seq"] == 2


async def test_poll_wakes_when_another_connection_posts(ds, bus_file, data):
    tid = data["review"].topic_id

    def post_later() -> None:
        other = Bus(BusSettings(db=bus_file[0]))
        try:
            other.post(tid, "implementer-otter", [OutboxItem(content_markdown="live **now**")])
        finally:
            other.close()

    timer = threading.Timer(0.3, post_later)
    timer.start()
    try:
        # wait=25 is the most a poll waits; a bound below it shows a wake-up ended the wait,
        # and is generous for a loaded machine.
        with anyio.fail_after(20):
            body = (await ds.client.get(f"{ROOT}/topics/{tid}/poll.json?after=2&wait=25")).json()
    finally:
        timer.join()
    assert [m["seq"] for m in body["messages"]] == [3]
    assert "<strong>now</strong>" in body["html"]


# --- search -----------------------------------------------------------------------------


async def test_search_page_highlights_matches_and_offers_the_modes(ds, data):
    response = await ds.client.get(f"{ROOT}/search?q=webhook&mode=fts")
    assert response.status_code == 200
    html = response.text
    assert "<mark>webhook</mark>" in html
    assert f'href="{ROOT}/messages/{data["question"].message_id}"' in html
    for mode in ("hybrid", "fts", "semantic"):
        assert f"mode={mode}" in html
    assert_inert(html)


async def test_search_json_shape_and_topic_scope(ds, data):
    body = (await ds.client.get(f"{ROOT}/search.json?q=review&mode=fts")).json()
    assert body["query"] == "review" and body["mode"] == "fts"
    assert body["count"] == len(body["results"]) >= 1
    assert {"topic_id", "topic_name", "message_id", "seq", "snippet"} <= set(body["results"][0])
    scoped = (
        await ds.client.get(f"{ROOT}/search.json?q=done&topic={data['closed'].topic_id}")
    ).json()
    assert [r["topic_id"] for r in scoped["results"]] == [data["closed"].topic_id]
    bad = await ds.client.get(f"{ROOT}/search.json?q=x&mode=nonsense")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_ARGUMENT"


async def test_search_snippets_of_hostile_text_are_escaped(ds):
    html = (await ds.client.get(f"{ROOT}/search?q=alert&mode=fts")).text
    assert "<mark>alert</mark>" in html
    assert_inert(html)


# --- export -----------------------------------------------------------------------------


async def test_export_buttons_download_md_json_and_jsonl(ds, data):
    tid = data["review"].topic_id
    md = await ds.client.get(f"{ROOT}/topics/{tid}/export.md")
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    assert "attachment;" in md.headers["content-disposition"]
    assert md.text.startswith("# payments-review")
    doc = (await ds.client.get(f"{ROOT}/topics/{tid}/export.json")).json()
    assert [m["seq"] for m in doc["messages"]] == [1, 2]
    lines = (await ds.client.get(f"{ROOT}/topics/{tid}/export.jsonl")).text.splitlines()
    assert json.loads(lines[0])["kind"] == "topic" and len(lines) == 3
    for text in (md.text, json.dumps(doc), "\n".join(lines)):
        assert "reclaim_token" not in text


# --- security ---------------------------------------------------------------------------


async def test_hostile_bodies_names_and_types_render_inert(ds, data):
    tid = data["evil"].topic_id
    for path in (
        f"{ROOT}/topics/{tid}",
        ROOT,
        f"/agent_bus/messages/{data['bad'].message_id}",
    ):
        response = await ds.client.get(path)
        assert response.status_code == 200, path
        assert_inert(response.text)
    html = (await ds.client.get(f"{ROOT}/topics/{tid}")).text
    assert "&lt;script&gt;alert('body')&lt;/script&gt;" in html  # shown as text
    assert "[image: pixel]" in html and "https://tracker.example/p.png" in html  # a link
    body = (await ds.client.get(f"{ROOT}/topics/{tid}/poll.json?after=0")).json()
    assert_inert(body["html"])


async def test_messages_table_is_inert_with_hostile_markdown(ds, data):
    response = await ds.client.get(f"/agent_bus/messages?topic_id={data['evil'].topic_id}")
    assert response.status_code == 200
    html = response.text
    cells = html.split('class="ab-body ab-cell"')[1:]
    assert len(cells) == 1, "the hostile message's body is rendered by our cell renderer"
    body = cells[0].split("</td>")[0]
    assert "&lt;script&gt;alert('body')&lt;/script&gt;" in body  # shown as text
    assert_inert(body)
    # The rest of the page is Datasette's (its own scripts and menu icons); the hostile
    # sender and message type in other cells must not become tags there either.
    parser = Tags()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert tag not in ("img", "iframe", "object", "embed"), (tag, attrs)
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        if tag == "script":
            assert not attrs or attrs.get("src", "").startswith("/-/static/"), attrs


async def test_reclaim_token_hashes_are_never_readable(ds, bus_file):
    with sqlite3.connect(bus_file[0]) as conn:
        stored = conn.execute("SELECT reclaim_token_hash FROM agent_name_reservations").fetchall()
    assert stored and all(len(row[0]) == 64 for row in stored)
    rows = (await ds.client.get("/agent_bus/agent_name_reservations.json?_shape=array")).json()
    assert rows and all(r["reclaim_token_hash"] is None for r in rows)
    for sql in (
        "select reclaim_token_hash from agent_name_reservations",
        "select * from agent_name_reservations",
        "select group_concat(reclaim_token_hash) as h from agent_name_reservations",
    ):
        got = (
            await ds.client.get("/agent_bus.json", params={"sql": sql, "_shape": "array"})
        ).json()
        assert isinstance(got, list) and got, (sql, got)  # rows came back, so all() means it
        assert all(
            value is None
            for row in got
            for key, value in row.items()
            if key != "agent_name" and "hash" in key or key == "h"
        ), got
    html = (await ds.client.get("/agent_bus")).text
    assert "agent_name_reservations" not in html.split("hidden tables")[0]


async def test_pages_refuse_posts(ds, data):
    tid = data["review"].topic_id
    for path in (f"{ROOT}/topics/{tid}", f"{ROOT}/topics/{tid}/poll.json", ROOT):
        response = await ds.client.post(path, data={"content_markdown": "x"})
        assert response.status_code in (403, 405), path


# --- Datasette integration ----------------------------------------------------------------


async def test_messages_table_renders_markdown_and_links_seq_to_the_thread(ds, data):
    html = (await ds.client.get(f"/agent_bus/messages?topic_id={data['review'].topic_id}")).text
    assert (
        '<div class="ab-body ab-cell"><p>Kicking off the review of <strong>PR #482</strong>' in html
    )
    assert f'href="{ROOT}/messages/{data["first"].message_id}"' in html
    assert "/-/agent-bus/-/static/agent-bus.css" in html


async def test_menu_table_and_database_actions_link_to_the_ui(ds):
    home = (await ds.client.get("/")).text
    assert f'href="{ROOT}">Agent-bus topics</a>' in home
    assert f'href="{ROOT}/search">Agent-bus search</a>' in home
    table = (await ds.client.get("/agent_bus/topics")).text
    assert "Open as agent-bus threads" in table


async def test_metadata_hides_internal_tables_and_offers_canned_queries(ds, data):
    tables = {t["name"]: t for t in (await ds.client.get("/agent_bus.json")).json()["tables"]}
    for name in ("meta", "topic_seq", "agent_name_reservations", "messages_fts"):
        assert tables[name]["hidden"] is True, name
    assert tables["messages"]["hidden"] is False
    rows = (await ds.client.get("/agent_bus/open_questions.json?_shape=array")).json()
    assert [r["message_id"] for r in rows] == [data["question"].message_id]
    assert (await ds.client.get("/agent_bus/open_questions")).status_code == 200


async def test_plugin_leaves_other_databases_alone(tmp_path):
    from datasette.app import Datasette

    other = tmp_path / "notes.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE messages (content_markdown TEXT, seq INTEGER)")
        conn.execute("INSERT INTO messages VALUES ('**bold**', 1)")
    ds = Datasette([str(other)])
    try:
        assert (await ds.client.get("/-/agent-bus.json")).json() == {"databases": []}
        assert (await ds.client.get("/-/agent-bus/notes")).status_code == 404
        html = (await ds.client.get("/notes/messages")).text
        assert "**bold**" in html and "ab-cell" not in html
        assert "Agent-bus topics" not in (await ds.client.get("/")).text
    finally:
        close_plugin(ds)


async def test_bus_of_another_schema_version_is_reported_not_migrated(tmp_path):
    from datasette.app import Datasette

    old = tmp_path / "old.sqlite"
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '6'), ('app', 'agent-bus')")
    ds = Datasette([str(old)])
    try:
        response = await ds.client.get("/-/agent-bus/old.json")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "DB_SCHEMA_MISMATCH"
        assert "schema version 6" in (await ds.client.get("/-/agent-bus/old")).text
        with sqlite3.connect(old) as conn:
            assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (
                "6",
            )
    finally:
        close_plugin(ds)


# --- run_web -------------------------------------------------------------------------------


def test_loopback_detection():
    assert all(map(is_loopback, ["127.0.0.1", "localhost", "::1", "127.0.0.2", "[::1]"]))
    assert not any(map(is_loopback, ["0.0.0.0", "192.168.1.5", "example.com", "::"]))


def test_run_web_refuses_a_public_address_without_allow_remote(db_path, monkeypatch):
    import uvicorn

    monkeypatch.setattr(uvicorn.Server, "run", lambda *a, **k: pytest.fail("must not serve"))
    with pytest.raises(WebError):
        run_web(BusSettings(db=db_path), host="0.0.0.0", open_browser=False)


def _record_serving(monkeypatch) -> list[tuple[Any, list[Any]]]:
    """Stand in for uvicorn's serving loop only (the external server): record what it got."""
    import uvicorn

    calls: list[tuple[Any, list[Any]]] = []

    def run(self, sockets=None):
        calls.append((self.config, [s.getsockname() for s in sockets or []]))

    monkeypatch.setattr(uvicorn.Server, "run", run)
    return calls


def test_run_web_serves_datasette_on_loopback_on_the_port_it_names(db_path, monkeypatch, capsys):
    calls = _record_serving(monkeypatch)
    run_web(BusSettings(db=db_path), port=0, open_browser=False)
    [(config, sockets)] = calls
    assert (config.log_level, config.lifespan, config.timeout_graceful_shutdown) == (
        "warning",
        "on",
        1,
    )
    [(host, port)] = sockets  # bound before serving: port 0 became a real port
    assert host == "127.0.0.1" and port > 0
    assert f"http://127.0.0.1:{port}/-/agent-bus" in capsys.readouterr().err
    assert db_path.exists()  # a fresh bus is created, so the UI has something to open


def test_run_web_says_why_when_the_port_is_taken(db_path, monkeypatch):
    import socket

    _record_serving(monkeypatch)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        with pytest.raises(WebError, match="cannot listen on 127.0.0.1"):
            run_web(BusSettings(db=db_path), port=taken.getsockname()[1], open_browser=False)


def test_run_web_remote_needs_a_token_and_says_every_request_needs_one(
    db_path, monkeypatch, capsys
):
    from agent_bus.errors import TokenRequired
    from agent_bus.service import access

    calls = _record_serving(monkeypatch)
    with pytest.raises(TokenRequired, match="agent-bus tokens create"):
        run_web(
            BusSettings(db=db_path), host="0.0.0.0", port=0, open_browser=False, allow_remote=True
        )
    assert calls == []  # refused before listening
    bus = Bus(BusSettings(db=db_path))
    access.create(bus, "colleague")
    bus.close()
    run_web(BusSettings(db=db_path), host="0.0.0.0", port=0, open_browser=False, allow_remote=True)
    assert len(calls) == 1
    assert "every request needs an access token (1 usable" in capsys.readouterr().err


def test_web_queries_read_messages_with_the_core_column_list():
    from agent_bus.models import Message
    from agent_bus.store import queries
    from agent_bus.store import web as store_web

    assert store_web.MESSAGE_COLS is queries.MESSAGE_COLS
    cols = [c.strip().removesuffix("_json") for c in queries.MESSAGE_COLS.split(",")]
    assert cols == list(Message.model_fields)


async def test_thread_shows_related_messages_from_other_topics(db_path):
    from agent_bus.embeddings import missing_default_modules
    from agent_bus.embeddings import service as emb

    if missing_default_modules():
        pytest.skip("the `semantic` extra is not installed")
    bus = Bus(BusSettings(db=db_path, embeddings_autoindex=False))
    billing, _ = bus.topic_create("billing")
    bus.post(billing.topic_id, "a", [OutboxItem(content_markdown="We round VAT per invoice line.")])
    payments, _ = bus.topic_create("payments-v2")
    (hit,) = bus.post(
        payments.topic_id,
        "b",
        [OutboxItem(content_markdown="Tax is rounded on each line of the invoice.")],
    )
    lunch, _ = bus.topic_create("lunch")
    bus.post(lunch.topic_id, "c", [OutboxItem(content_markdown="Pizza on fridays, no basil.")])
    emb.index(bus)
    bus.close()
    ds = build_datasette(BusSettings(db=db_path, embeddings_autoindex=False))
    try:
        html = (await ds.client.get(f"{ROOT}/topics/{billing.topic_id}")).text
        panel = html.split('id="ab-related"')[1].split("</ul>")[0]
        assert panel.index("payments-v2 #1") < panel.index("lunch #1")
        assert f'href="{ROOT}/messages/{hit.message.message_id}"' in panel
        assert "billing #" not in panel
    finally:
        close_plugin(ds)
