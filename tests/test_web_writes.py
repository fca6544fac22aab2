# ruff: noqa: F811 - the fixtures imported from test_web are used as arguments
"""Writing from the web UI (post, reply, preview, manage topics) through Datasette's client.

Every write is a POST form with Datasette's CSRF token, from an actor that may write, and
goes through the same service calls as the CLI; refused writes store nothing.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from test_web import ROOT, XSS_BODY, assert_inert, bus_file, data, ds  # noqa: F401

from agent_bus.bus import Bus
from agent_bus.settings import BusSettings
from agent_bus.web import build_datasette

pytestmark = pytest.mark.anyio

TOKEN = re.compile(r'name="csrftoken" value="([^"]+)"')


async def form_token(ds: Any, path: str, cookies: dict[str, str] | None = None) -> dict[str, str]:
    """The page's CSRF token and the cookie it pairs with, as a browser would hold them."""
    response = await ds.client.get(path, cookies=cookies or {})
    assert response.status_code == 200, response.text
    token = TOKEN.search(response.text)
    assert token, "the page has no write form"
    jar = dict(cookies or {})
    jar["ds_csrftoken"] = response.cookies.get("ds_csrftoken") or jar.get("ds_csrftoken", "")
    return {"token": token.group(1), **jar}


async def post(ds: Any, path: str, fields: dict[str, str], jar: dict[str, str]) -> Any:
    cookies = {k: v for k, v in jar.items() if k != "token"}
    return await ds.client.post(path, data={"csrftoken": jar["token"], **fields}, cookies=cookies)


def messages_of(path: Path, topic_id: str) -> list[Any]:
    bus = Bus(BusSettings(db=path))
    try:
        return bus.messages(topic_id, limit=500)
    finally:
        bus.close()


def topic_row(path: Path, topic_id: str) -> tuple | None:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT name, status, close_reason FROM topics WHERE topic_id = ?", (topic_id,)
        ).fetchone()


# --- post and reply ------------------------------------------------------------------------


async def test_a_person_replies_from_the_page_and_the_name_is_remembered(ds, bus_file, data):
    tid = data["review"].topic_id
    turl = f"{ROOT}/topics/{tid}"
    jar = await form_token(ds, turl)
    fields = {
        "sender": "alice",
        "message_type": "answer",
        "reply_to": "#2",
        "content_markdown": "No, webhooks move in **#490**.",
    }
    response = await post(ds, f"{turl}/post", fields, jar)
    assert response.status_code == 303
    assert response.headers["location"] == f"{turl}#m-3"
    assert response.cookies.get("ab_name") == "alice"
    stored = messages_of(bus_file[0], tid)[-1]
    assert (stored.seq, stored.sender, stored.message_type) == (3, "alice", "answer")
    assert stored.reply_to == data["question"].message_id
    flash = response.cookies["ds_messages"]
    page = await ds.client.get(turl, cookies={"ab_name": "alice", "ds_messages": flash})
    assert 'id="ab-sender" name="sender" value="alice"' in page.text
    assert "Posted #3 as alice." in page.text  # Datasette's flash message after the redirect


async def test_the_default_name_comes_from_the_setting(db_path, monkeypatch):
    monkeypatch.setenv("AGENT_BUS_WEB_NAME", "overseer")
    bus = Bus(BusSettings(db=db_path))
    topic, _ = bus.topic_create("t")
    bus.close()
    instance = build_datasette(BusSettings(db=db_path))
    page = (await instance.client.get(f"{ROOT}/topics/{topic.topic_id}")).text
    assert 'name="sender" value="overseer"' in page


async def test_posting_json_answers_with_the_sync_sent_shape(ds, bus_file, data):
    tid = data["review"].topic_id
    jar = await form_token(ds, f"{ROOT}/topics/{tid}")
    response = await post(
        ds,
        f"{ROOT}/topics/{tid}/post.json",
        {"sender": "alice", "content_markdown": "hello"},
        jar,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["topic_id"] == tid and body["sent"][0]["duplicate"] is False
    assert body["sent"][0]["message"]["content_markdown"] == "hello"
    assert body["sent"][0]["message"]["message_type"] == "message"


async def test_reply_button_without_javascript_prefills_target_and_quote(ds, data):
    tid = data["review"].topic_id
    first = data["first"].message_id
    html = (await ds.client.get(f"{ROOT}/topics/{tid}")).text
    assert f'href="?reply_to={first}#ab-compose"' in html
    html = (await ds.client.get(f"{ROOT}/topics/{tid}?reply_to={first}")).text
    assert f'id="ab-reply-to" value="{first}"' in html
    assert "&gt; Kicking off the review of **PR #482**.\n&gt;\n&gt; ```python" in html  # as text


async def test_preview_uses_the_thread_sanitiser_and_stores_nothing(ds, bus_file, data):
    tid = data["review"].topic_id
    jar = await form_token(ds, f"{ROOT}/topics/{tid}")
    fields = {"sender": "alice", "content_markdown": XSS_BODY + "\n\n**bold**"}
    page = await post(ds, f"{ROOT}/topics/{tid}/post", {**fields, "intent": "preview"}, jar)
    assert page.status_code == 200
    preview = page.text.split('id="ab-preview-body">')[1].split("</div>")[0]
    assert "<strong>bold</strong>" in preview
    assert_inert(page.text)
    body = (
        await post(ds, f"{ROOT}/topics/{tid}/post.json", {**fields, "intent": "preview"}, jar)
    ).json()
    assert "<strong>bold</strong>" in body["html"]
    assert_inert(body["html"])
    assert len(messages_of(bus_file[0], tid)) == 2


@pytest.mark.parametrize(
    ("fields", "status", "code", "words"),
    [
        ({"sender": "alice", "content_markdown": ""}, 400, "INVALID_ARGUMENT", "content_markdown"),
        ({"sender": "", "content_markdown": "hi"}, 400, "INVALID_ARGUMENT", "sender"),
        (
            {"sender": "alice", "content_markdown": "x" * 70000},
            400,
            "INVALID_ARGUMENT",
            "max length",
        ),
        (
            {"sender": "alice", "content_markdown": "hi", "message_type": "x" * 200},
            400,
            "INVALID_ARGUMENT",
            "message_type",
        ),
        (
            {"sender": "alice", "content_markdown": "hi", "reply_to": "#99"},
            400,
            "INVALID_ARGUMENT",
            "#99",
        ),
    ],
)
async def test_bad_input_is_a_clear_message_and_stores_nothing(
    ds, bus_file, data, fields, status, code, words
):
    tid = data["review"].topic_id
    jar = await form_token(ds, f"{ROOT}/topics/{tid}")
    page = await post(ds, f"{ROOT}/topics/{tid}/post", fields, jar)
    assert page.status_code == status
    error = page.text.split('id="ab-compose-error" role="alert">')[1].split("</p>")[0]
    assert words in error
    if fields["content_markdown"] and len(fields["content_markdown"]) < 100:
        assert f">{fields['content_markdown']}</textarea>" in page.text  # nothing typed is lost
    response = await post(ds, f"{ROOT}/topics/{tid}/post.json", fields, jar)
    assert response.status_code == status and response.json()["error"]["code"] == code
    assert len(messages_of(bus_file[0], tid)) == 2


async def test_a_closed_topic_takes_no_post(ds, bus_file, data):
    tid = data["closed"].topic_id
    html = (await ds.client.get(f"{ROOT}/topics/{tid}")).text
    assert "This topic is closed" in html and 'id="ab-compose-form"' not in html
    jar = await form_token(ds, f"{ROOT}/topics/{tid}")  # the manage forms carry the token
    response = await post(
        ds, f"{ROOT}/topics/{tid}/post.json", {"sender": "a", "content_markdown": "x"}, jar
    )
    assert response.status_code == 409 and response.json()["error"]["code"] == "TOPIC_CLOSED"
    assert len(messages_of(bus_file[0], tid)) == 1


# --- safety ---------------------------------------------------------------------------------


def write_forms(html: str) -> list[str]:
    """Our POST forms on a page (Datasette's own log-out form is not ours)."""
    return re.findall(r'<form method="post" action="(/-/agent-bus/[^"]*)"', html)


WRITES = [
    ("topics/{tid}/post", {"sender": "mallory", "content_markdown": "pwned"}),
    ("topics/{tid}/post.json", {"sender": "mallory", "content_markdown": "pwned"}),
    ("topics/{tid}/close", {"reason": "pwned"}),
    ("topics/{tid}/rename", {"new_name": "pwned"}),
    ("topics/{tid}/delete", {"confirm_name": "payments-review"}),
    ("topics/-/create", {"name": "pwned"}),
]


def unchanged(path: Path, data: dict[str, Any]) -> None:
    tid = data["review"].topic_id
    assert topic_row(path, tid) == ("payments-review", "open", None)
    assert len(messages_of(path, tid)) == 2
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM topics WHERE name = 'pwned'").fetchone() == (0,)


@pytest.mark.parametrize(("path", "fields"), WRITES)
async def test_a_write_without_the_csrf_token_is_403(ds, bus_file, data, path, fields):
    url = f"{ROOT}/" + path.format(tid=data["review"].topic_id)
    jar = await form_token(ds, f"{ROOT}/topics/{data['review'].topic_id}")
    cookie = {"ds_csrftoken": jar["ds_csrftoken"]}
    # no cookies at all (a cross-site form from a fresh browser), a cookie but no field,
    # and a field that does not match the cookie
    assert (await ds.client.post(url, data=fields)).status_code == 403
    assert (await ds.client.post(url, data=fields, cookies=cookie)).status_code == 403
    wrong = {**fields, "csrftoken": "x" + jar["token"]}
    assert (await ds.client.post(url, data=wrong, cookies=cookie)).status_code == 403
    unchanged(bus_file[0], data)


async def test_a_form_posted_from_another_site_is_403(ds, bus_file, data):
    tid = data["review"].topic_id
    jar = await form_token(ds, f"{ROOT}/topics/{tid}")
    response = await ds.client.post(
        f"{ROOT}/topics/{tid}/close",
        data={"csrftoken": jar["token"], "reason": "x"},
        cookies={"ds_csrftoken": jar["ds_csrftoken"]},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    unchanged(bus_file[0], data)


@pytest.mark.parametrize(("path", "fields"), WRITES)
@pytest.mark.parametrize("scope", [{"write": False}, {"read_only": True}])
async def test_a_read_only_actor_sees_no_write_controls_and_gets_403(
    ds, bus_file, data, path, fields, scope
):
    actor = ds.sign({"a": {"id": "viewer", "agent_bus": scope}}, "actor")
    tid = data["review"].topic_id
    for page in (f"{ROOT}/topics/{tid}", ROOT):
        assert write_forms((await ds.client.get(page)).text), page  # the local user's
        html = (await ds.client.get(page, cookies={"ds_actor": actor})).text
        assert not write_forms(html) and "ab-reply-btn" not in html, page
    poll = (await ds.client.get(f"{ROOT}/topics/{tid}/poll.json?after=0")).json()["html"]
    assert "ab-reply-btn" in poll  # the local user may write...
    poll = await ds.client.get(
        f"{ROOT}/topics/{tid}/poll.json?after=0", cookies={"ds_actor": actor}
    )
    assert "ab-reply-btn" not in poll.json()["html"]  # ...the read-only actor may not
    jar = await form_token(ds, f"{ROOT}/topics/{tid}")
    response = await post(ds, f"{ROOT}/" + path.format(tid=tid), fields, {**jar, "ds_actor": actor})
    assert response.status_code == 403
    assert "FORBIDDEN" in response.text or "may read" in response.text
    unchanged(bus_file[0], data)


@pytest.mark.parametrize("scope", [{"write": True}, {"read_only": False}])
async def test_an_actor_whose_scope_allows_writing_may_post(ds, bus_file, data, scope):
    actor = ds.sign({"a": {"id": "writer", "agent_bus": scope}}, "actor")
    tid = data["review"].topic_id
    jar = await form_token(ds, f"{ROOT}/topics/{tid}", {"ds_actor": actor})
    response = await post(
        ds, f"{ROOT}/topics/{tid}/post", {"sender": "w", "content_markdown": "ok"}, jar
    )
    assert response.status_code == 303
    assert messages_of(bus_file[0], tid)[-1].sender == "w"


async def test_a_remote_ui_offers_no_anonymous_writes(bus_file, data):
    from agent_bus_datasette.state import close

    instance = build_datasette(BusSettings(db=bus_file[0]), anonymous_writes=False)
    try:
        tid = data["review"].topic_id
        html = (await instance.client.get(f"{ROOT}/topics/{tid}")).text
        assert not write_forms(html)
        response = await instance.client.post(
            f"{ROOT}/topics/{tid}/post", data={"sender": "m", "content_markdown": "x"}
        )
        assert response.status_code == 403
        unchanged(bus_file[0], data)
    finally:
        close(instance)


async def test_a_visitor_from_another_machine_gets_no_anonymous_writes(ds, bus_file, data):
    import httpx

    tid = data["review"].topic_id
    transport = httpx.ASGITransport(app=ds.app(), client=("192.168.1.5", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://bus.lan") as remote:
        html = (await remote.get(f"{ROOT}/topics/{tid}")).text
        assert "payments-review" in html and not write_forms(html)
        response = await remote.post(
            f"{ROOT}/topics/{tid}/post", data={"sender": "m", "content_markdown": "x"}
        )
        assert response.status_code == 403
    unchanged(bus_file[0], data)


async def test_pages_answer_get_only_and_forms_post_only(ds, data):
    tid = data["review"].topic_id
    assert (await ds.client.get(f"{ROOT}/topics/{tid}/close")).status_code == 405
    assert (await ds.client.get(f"{ROOT}/topics/-/create")).status_code == 405


async def test_hostile_names_posted_from_the_page_stay_inert(ds, bus_file, data):
    tid = data["review"].topic_id
    jar = await form_token(ds, f"{ROOT}/topics/{tid}")
    fields = {
        "sender": "<img src=x onerror=alert(1)>",
        "message_type": "<script>alert(2)</script>",
        "content_markdown": XSS_BODY,
    }
    assert (await post(ds, f"{ROOT}/topics/{tid}/post", fields, jar)).status_code == 303
    for page in (f"{ROOT}/topics/{tid}", ROOT):
        assert_inert((await ds.client.get(page)).text)
    assert_inert((await ds.client.get(f"{ROOT}/topics/{tid}/poll.json?after=2")).json()["html"])


# --- manage topics ---------------------------------------------------------------------------


async def test_create_close_reopen_and_rename_a_topic(ds, bus_file, data):
    path = bus_file[0]
    jar = await form_token(ds, ROOT)
    response = await post(ds, f"{ROOT}/topics/-/create", {"name": "release-3.0"}, jar)
    assert response.status_code == 303
    tid = response.headers["location"].rsplit("/", 1)[1]
    assert topic_row(path, tid) == ("release-3.0", "open", None)
    turl = f"{ROOT}/topics/{tid}"
    jar = await form_token(ds, turl)
    assert (await post(ds, f"{turl}/close", {"reason": "shipped"}, jar)).status_code == 303
    assert topic_row(path, tid) == ("release-3.0", "closed", "shipped")
    html = (await ds.client.get(turl)).text
    assert "Reopen topic" in html and "Close with reason" not in html
    assert (await post(ds, f"{turl}/reopen", {}, jar)).status_code == 303
    assert topic_row(path, tid) == ("release-3.0", "open", None)
    response = await post(ds, f"{turl}/rename", {"new_name": "release-3.0.1"}, jar)
    assert response.status_code == 303
    assert topic_row(path, tid)[0] == "release-3.0.1"
    response = await post(ds, f"{turl}/rename", {"new_name": "  "}, jar)
    assert response.status_code == 400 and "new_name" in response.text
    assert (await post(ds, f"{ROOT}/topics/-/create", {"name": ""}, jar)).status_code == 400


async def test_rename_rewrites_the_old_name_in_messages_as_the_cli_does(ds, bus_file, data):
    bus = Bus(BusSettings(db=bus_file[0]))
    from agent_bus.models import OutboxItem

    tid = data["review"].topic_id
    bus.post(tid, "a", [OutboxItem(content_markdown="see payments-review for details")])
    bus.close()
    jar = await form_token(ds, f"{ROOT}/topics/{tid}")
    fields = {"new_name": "payments-review-v2", "rewrite_messages": "1"}
    assert (await post(ds, f"{ROOT}/topics/{tid}/rename", fields, jar)).status_code == 303
    assert messages_of(bus_file[0], tid)[-1].content_markdown == (
        "see payments-review-v2 for details"
    )


async def test_delete_needs_the_name_typed_exactly(ds, bus_file, data):
    path = bus_file[0]
    tid = data["review"].topic_id
    jar = await form_token(ds, f"{ROOT}/topics/{tid}")
    for typed in ("", "payments", "Payments-Review"):
        response = await ds.client.post(
            f"{ROOT}/topics/{tid}/delete",
            data={"csrftoken": jar["token"], "confirm_name": typed},
            cookies={"ds_csrftoken": jar["ds_csrftoken"]},
            headers={"Referer": f"http://localhost{ROOT}/topics/{tid}"},
        )
        assert response.status_code == 400, typed
        assert "exactly" in response.text and "(INVALID_ARGUMENT)" in response.text
        assert f'<a href="http://localhost{ROOT}/topics/{tid}">← Back' in response.text
        unchanged(path, data)
    response = await post(
        ds, f"{ROOT}/topics/{tid}/delete", {"confirm_name": "payments-review"}, jar
    )
    assert response.status_code == 303 and response.headers["location"] == ROOT
    assert topic_row(path, tid) is None
    with sqlite3.connect(path) as conn:
        for table in ("messages", "cursors", "agent_name_reservations"):
            count = conn.execute(f"SELECT count(*) FROM {table} WHERE topic_id = ?", (tid,))
            assert count.fetchone() == (0,), table
    flash = {"ds_messages": response.cookies["ds_messages"]}
    assert "Deleted payments-review: 2 messages" in (await ds.client.get(ROOT, cookies=flash)).text


# --- select, export, copy ---------------------------------------------------------------------


async def test_export_a_range_of_messages(ds, data):
    tid = data["review"].topic_id
    md = await ds.client.get(f"{ROOT}/topics/{tid}/export.md?from=2&to=2")
    assert md.status_code == 200
    assert "### #2 " in md.text and "### #1 " not in md.text
    assert "-2-2.md" in md.headers["content-disposition"]
    lines = (await ds.client.get(f"{ROOT}/topics/{tid}/export?from=1&to=1&format=jsonl")).text
    assert [line.count('"kind": "message"') for line in lines.splitlines()] == [0, 1]
    doc = (await ds.client.get(f"{ROOT}/topics/{tid}/export?from=2&format=json")).json()
    assert [m["seq"] for m in doc["messages"]] == [2]
    bad = await ds.client.get(f"{ROOT}/topics/{tid}/export.md?from=3&to=1")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_ARGUMENT"
    bad = await ds.client.get(f"{ROOT}/topics/{tid}/export?format=pdf")
    assert bad.status_code == 400


async def test_a_message_source_is_its_markdown(ds, data):
    response = await ds.client.get(f"{ROOT}/messages/{data['first'].message_id}.md")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/markdown")
    assert response.text.startswith("Kicking off the review of **PR #482**.")
    assert (await ds.client.get(f"{ROOT}/messages/nope.md")).status_code == 404


async def test_every_control_has_a_label(ds, data):
    from test_web import Tags

    for page in (
        ROOT,
        f"{ROOT}/topics/{data['review'].topic_id}",
        f"{ROOT}/topics/{data['closed'].topic_id}",
    ):
        html = (await ds.client.get(page)).text
        parser = Tags()
        parser.feed(html)
        labelled = set(re.findall(r'<label for="([^"]+)"', html))
        for tag, attrs in parser.tags:
            if tag in ("input", "textarea", "select") and attrs.get("type") != "hidden":
                ok = attrs.get("id") in labelled or attrs.get("aria-label")
                wrapped = attrs.get("type") == "checkbox"  # inside its <label>
                assert ok or wrapped, (page, tag, attrs)
