# ruff: noqa: F811 - the fixtures imported from test_web are used as arguments
"""The web UI behind access tokens (``agent-bus web --allow-remote``), through Datasette's
own client: no token gets the login page or a 401, a token's scope decides what is seen
and written, in our pages, their JSON and Datasette's own tables and SQL."""

from __future__ import annotations

import functools
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from test_web import ROOT, bus_file, data, serving  # noqa: F401
from test_web_writes import TOKEN, messages_of

from agent_bus.bus import Bus
from agent_bus.service import access
from agent_bus.settings import BusSettings

import conftest
from conftest import revoke_token

pytestmark = pytest.mark.anyio

LOGIN = "/-/agent-bus/-/login"
HTML = {"accept": "text/html,application/xhtml+xml"}


# A token as the bus's owner makes one for a colleague (the label shows on the page).
make_token = functools.partial(conftest.make_token, label="colleague")


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
async def remote(bus_file) -> AsyncIterator[Any]:
    async with serving(bus_file[0], remote=True) as instance:
        yield instance


@pytest.fixture
async def local(bus_file) -> AsyncIterator[Any]:
    async with serving(bus_file[0], remote=False) as instance:
        yield instance


async def sign_in(ds: Any, token: str, next_path: str = f"{ROOT}") -> Any:
    """The login page as a browser uses it: GET the form, POST the token with its CSRF pair."""
    form = await ds.client.get(f"{LOGIN}?next={next_path}", headers=HTML)
    assert form.status_code == 200, form.text
    csrf = TOKEN.search(form.text).group(1)
    return await ds.client.post(
        LOGIN,
        data={"csrftoken": csrf, "token": token, "next": next_path},
        cookies={"ds_csrftoken": form.cookies["ds_csrftoken"]},
    )


async def session(ds: Any, token: str) -> dict[str, str]:
    response = await sign_in(ds, token)
    assert response.status_code == 303, response.text
    return {"ab_session": response.cookies["ab_session"]}


# --- nobody gets in without a token -----------------------------------------------------------


async def test_a_browser_without_a_token_is_sent_to_the_login_page(remote, data):
    tid = data["review"].topic_id
    response = await remote.client.get(f"{ROOT}/topics/{tid}?at=2", headers=HTML)
    assert response.status_code == 302
    target = urlsplit(response.headers["location"])
    assert target.path == LOGIN
    assert parse_qs(target.query)["next"] == [f"{ROOT}/topics/{tid}?at=2"]
    page = await remote.client.get(response.headers["location"], headers=HTML)
    assert page.status_code == 200
    assert 'name="token"' in page.text and "agent-bus tokens create" in page.text
    assert "payments-review" not in page.text and "Kicking off" not in page.text


@pytest.mark.parametrize(
    "path",
    [
        f"{ROOT}.json",
        f"{ROOT}/search.json?q=review",
        f"{ROOT}/topics/payments-review/export.md",
        "/agent_bus/messages.json",
        "/agent_bus.json?sql=select+content_markdown+from+messages",
        "/-/metadata.json",
        "/",
    ],
)
async def test_a_script_without_a_token_gets_401_token_required_and_no_data(remote, path):
    response = await remote.client.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "TOKEN_REQUIRED"
    assert "Kicking off" not in response.text and "payments-review" not in response.text


async def test_the_login_page_assets_are_open_but_lead_to_no_data(remote):
    for asset in ("/-/static/app.css", "/-/agent-bus/-/static/agent-bus.css"):
        assert (await remote.client.get(asset)).status_code == 200
    for sneaky in (
        "/-/static/%2E%2E/agent_bus/messages.json",
        "/-/agent-bus/-/static/%2E%2E/%2E%2E/agent_bus/messages.json",
        "/-/agent-bus/-/static/../../../agent_bus/messages.json",
    ):
        response = await remote.client.get(sneaky)
        assert response.status_code in (401, 404), sneaky
        assert "Kicking off" not in response.text


async def test_posting_without_a_token_stores_nothing(remote, bus_file, data):
    tid = data["review"].topic_id
    response = await remote.client.post(
        f"{ROOT}/topics/{tid}/post.json", data={"sender": "x", "content_markdown": "hi"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "TOKEN_REQUIRED"
    assert len(messages_of(bus_file[0], tid)) == 2


@pytest.mark.parametrize("remote_ui", [True, False])
async def test_wrong_revoked_and_expired_tokens_get_401_remote_or_local(bus_file, remote_ui):
    path = bus_file[0]
    revoked_id, revoked = make_token(path)
    revoke_token(path, revoked_id)
    expired_id, expired = make_token(path, expires_in=3600)
    with sqlite3.connect(path) as conn:  # its hour is over
        conn.execute(
            "UPDATE access_tokens SET expires_at = ? WHERE token_id = ?",
            (time.time() - 1, expired_id),
        )
    _, good = make_token(path)
    wrong = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    async with serving(path, remote=remote_ui) as ds:
        for token in (wrong, revoked, expired, "agb_tk00000000_nope", "not-a-token"):
            response = await ds.client.get(f"{ROOT}.json", headers=bearer(token))
            assert response.status_code == 401, token
            assert response.json()["error"]["code"] == "TOKEN_REQUIRED"
        assert (await ds.client.get(f"{ROOT}.json", headers=bearer(good))).status_code == 200
        login = await sign_in(ds, revoked)
        assert login.status_code == 401 and "TOKEN_REQUIRED" in login.text
        assert "ab_session" not in login.cookies


async def test_a_loopback_ui_needs_no_token(local, data):
    response = await local.client.get(f"{ROOT}.json")
    assert response.status_code == 200
    assert len(response.json()["topics"]) == 3


# --- signing in and out -------------------------------------------------------------------


async def test_signing_in_through_the_login_page_opens_the_asked_page(remote, bus_file, data):
    token_id, token = make_token(bus_file[0])
    tid = data["review"].topic_id
    response = await sign_in(remote, token, f"{ROOT}/topics/{tid}")
    assert response.status_code == 303
    assert response.headers["location"] == f"{ROOT}/topics/{tid}"
    cookie = response.headers["set-cookie"]
    assert "ab_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert token.split("_", 2)[2] not in cookie  # the secret never leaves the form post
    jar = {"ab_session": response.cookies["ab_session"]}
    page = await remote.client.get(f"{ROOT}/topics/{tid}", cookies=jar, headers=HTML)
    assert page.status_code == 200 and "Kicking off" in page.text
    assert f"colleague (token {token_id})" in page.text
    actor = (await remote.client.get("/-/actor.json", cookies=jar)).json()["actor"]
    assert actor["id"] == f"token:{token_id}" and actor["agent_bus"]["topics"] is None
    bus = Bus(BusSettings(db=bus_file[0]))
    try:
        tokens = {t.token_id: t for t in access.list_tokens(bus)}
    finally:
        bus.close()
    assert tokens[token_id].last_used_at is not None  # `tokens list` shows the use


async def test_the_login_page_returns_only_to_our_own_pages(remote, bus_file):
    _, token = make_token(bus_file[0])
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        response = await sign_in(remote, token, target)
        assert response.headers["location"] == "/-/agent-bus"


async def test_a_login_form_without_its_csrf_token_is_refused(remote, bus_file):
    _, token = make_token(bus_file[0])
    response = await remote.client.post(LOGIN, data={"token": token})
    assert response.status_code == 403
    assert "ab_session" not in response.cookies


async def test_a_fixed_web_secret_keeps_people_signed_in_across_restarts(bus_file, data):
    _, token = make_token(bus_file[0])
    fixed = {"web_secret": "k" * 40}

    for extra, kept in ((fixed, True), ({}, False)):
        async with serving(bus_file[0], remote=True, **extra) as first:
            jar = await session(first, token)
        async with serving(bus_file[0], remote=True, **extra) as second:
            response = await second.client.get(f"{ROOT}.json", cookies=jar)
            assert (response.status_code == 200) is kept, (extra, response.status_code)


async def test_signing_out_ends_the_session(remote, bus_file):
    _, token = make_token(bus_file[0])
    jar = await session(remote, token)
    page = await remote.client.get(ROOT, cookies=jar, headers=HTML)
    csrf = TOKEN.search(page.text.split('class="ab-session"')[1]).group(1)
    out = await remote.client.post(
        "/-/agent-bus/-/logout",
        data={"csrftoken": csrf},
        cookies={**jar, "ds_csrftoken": page.cookies.get("ds_csrftoken") or ""},
    )
    assert out.status_code == 303 and urlsplit(out.headers["location"]).path == LOGIN
    cleared = [c for c in out.headers.get_list("set-cookie") if c.startswith("ab_session=")]
    assert len(cleared) == 1 and "Max-Age=0" in cleared[0]
    back = await remote.client.get(ROOT, cookies={"ab_session": ""}, headers=HTML)
    assert back.status_code == 302


async def test_revoking_the_token_ends_a_signed_in_session_at_the_next_request(
    remote, bus_file, data
):
    token_id, token = make_token(bus_file[0])
    jar = await session(remote, token)
    tid = data["review"].topic_id
    assert (await remote.client.get(f"{ROOT}/topics/{tid}.json", cookies=jar)).status_code == 200
    revoke_token(bus_file[0], token_id)
    page = await remote.client.get(f"{ROOT}/topics/{tid}", cookies=jar, headers=HTML)
    assert page.status_code == 302
    assert parse_qs(urlsplit(page.headers["location"]).query)["ended"] == ["1"]
    assert "ab_session=" in page.headers["set-cookie"]  # cleared
    as_json = await remote.client.get(f"{ROOT}/topics/{tid}.json", cookies=jar)
    assert as_json.status_code == 401
    assert as_json.json()["error"]["code"] == "TOKEN_REQUIRED"
    assert "Kicking off" not in as_json.text


# --- what a token's scope lets it do -------------------------------------------------------


async def test_a_read_only_token_reads_but_every_write_is_403_and_stores_nothing(
    remote, bus_file, data
):
    _, token = make_token(bus_file[0], read_only=True)
    tid = data["review"].topic_id
    jar = await session(remote, token)
    page = await remote.client.get(f"{ROOT}/topics/{tid}", cookies=jar, headers=HTML)
    assert page.status_code == 200 and "Kicking off" in page.text
    assert 'name="content_markdown"' not in page.text  # no write controls shown
    writes = [
        (f"{ROOT}/topics/{tid}/post.json", {"sender": "alice", "content_markdown": "hi"}),
        (f"{ROOT}/topics/-/create", {"name": "sneaky"}),
        (f"{ROOT}/topics/{tid}/close", {"reason": "x"}),
        (f"{ROOT}/topics/{tid}/rename", {"new_name": "renamed"}),
        (f"{ROOT}/topics/{tid}/delete", {"confirm_name": "payments-review"}),
    ]
    for path, fields in writes:
        response = await remote.client.post(path, data=fields, headers=bearer(token))
        assert response.status_code == 403, path
    posted = await remote.client.post(writes[0][0], data=writes[0][1], headers=bearer(token))
    assert posted.json()["error"]["code"] == "FORBIDDEN"
    assert len(messages_of(bus_file[0], tid)) == 2
    with sqlite3.connect(bus_file[0]) as conn:
        rows = conn.execute("SELECT name, status FROM topics ORDER BY name").fetchall()
    assert ("sneaky", "open") not in rows and ("payments-review", "open") in rows


async def test_an_agent_limited_token_posts_only_as_its_names(remote, bus_file, data):
    _, token = make_token(bus_file[0], agents=["reviewer-heron"])
    tid = data["review"].topic_id
    path = f"{ROOT}/topics/{tid}/post.json"
    other = await remote.client.post(
        path,
        data={"sender": "implementer-otter", "content_markdown": "I am otter"},
        headers=bearer(token),
    )
    assert other.status_code == 403 and other.json()["error"]["code"] == "FORBIDDEN"
    mine = await remote.client.post(
        path, data={"sender": "reviewer-heron", "content_markdown": "LGTM"}, headers=bearer(token)
    )
    assert mine.status_code == 200
    assert [m.sender for m in messages_of(bus_file[0], tid)][-1] == "reviewer-heron"
    assert "I am otter" not in [m.content_markdown for m in messages_of(bus_file[0], tid)]
    jar = await session(remote, token)
    page = await remote.client.get(f"{ROOT}/topics/{tid}", cookies=jar, headers=HTML)
    assert 'name="sender" value="reviewer-heron"' in page.text


@pytest.fixture
async def scoped(remote, bus_file, data) -> dict[str, Any]:
    """A token that may see only payments-review (by name), signed in."""
    _, token = make_token(bus_file[0], topics=["payments-review"])
    return {"token": token, "jar": await session(remote, token), "ds": remote}


async def test_a_topic_limited_token_sees_only_its_topic_in_pages_and_json(scoped, data):
    ds, jar = scoped["ds"], scoped["jar"]
    mine, other = data["review"], data["closed"]
    overview = await ds.client.get(ROOT, cookies=jar, headers=HTML)
    assert "payments-review" in overview.text and "release-checklist" not in overview.text
    listed = (await ds.client.get(f"{ROOT}.json", cookies=jar)).json()["topics"]
    assert [t["name"] for t in listed] == ["payments-review"]
    thread = await ds.client.get(f"{ROOT}/topics/{mine.topic_id}", cookies=jar, headers=HTML)
    assert thread.status_code == 200 and "release-checklist" not in thread.text  # sidebar
    assert "Messages table (facets, SQL)" not in thread.text
    outside = [
        f"{ROOT}/topics/{other.topic_id}",
        f"{ROOT}/topics/{other.topic_id}.json",
        f"{ROOT}/topics/release-checklist.json",
        f"{ROOT}/topics/{other.topic_id}/export.md",
        f"{ROOT}/topics/{other.topic_id}/poll.json?after=0",
        f"{ROOT}/search.json?q=done&topic={other.topic_id}",
    ]
    for path in outside:
        response = await ds.client.get(path, cookies=jar)
        assert response.status_code == 403, path
        assert "All done" not in response.text
    # An unknown topic answers exactly like an existing one outside the scope.
    unknown = await ds.client.get(f"{ROOT}/topics/no-such-topic.json", cookies=jar)
    assert unknown.status_code == 403 and unknown.json()["error"]["code"] == "FORBIDDEN"


async def test_a_topic_limited_token_finds_nothing_outside_its_topic(scoped, bus_file, data):
    ds, jar = scoped["ds"], scoped["jar"]
    found = (await ds.client.get(f"{ROOT}/search.json?q=done&mode=fts", cookies=jar)).json()
    assert found["results"] == []  # "All done." lives in release-checklist
    found = (await ds.client.get(f"{ROOT}/search.json?q=webhook&mode=fts", cookies=jar)).json()
    assert {r["topic_id"] for r in found["results"]} == {data["review"].topic_id}
    page = await ds.client.get(f"{ROOT}/search?q=done&mode=fts", cookies=jar, headers=HTML)
    assert "All done" not in page.text
    bus = Bus(BusSettings(db=bus_file[0]))
    hidden = bus.messages(data["closed"].topic_id, limit=5)[0]
    bus.close()
    for suffix in ("", ".md"):
        response = await ds.client.get(f"{ROOT}/messages/{hidden.message_id}{suffix}", cookies=jar)
        assert response.status_code == 404 and "All done" not in response.text


@pytest.mark.parametrize(
    "path",
    [
        "/agent_bus",
        "/agent_bus/messages",
        "/agent_bus/messages.json",
        "/agent_bus/messages/1",
        "/agent_bus/topics.json",
        "/agent_bus/messages_fts.json?_search=done",
        "/agent_bus.json?sql=select+content_markdown+from+messages",
        "/agent_bus?sql=select+name+from+topics",
        "/.json",
        "/-/databases.json",
        "/-/metadata.json",
        "/-/settings.json",
        "/-/threads.json",
    ],
)
async def test_a_topic_limited_token_gets_no_raw_tables_or_sql(scoped, path):
    ds = scoped["ds"]
    for credentials in ({"cookies": scoped["jar"]}, {"headers": bearer(scoped["token"])}):
        response = await ds.client.get(path, **credentials)
        assert response.status_code == 403, (path, credentials)
        assert "All done" not in response.text and "release-checklist" not in response.text


async def test_a_remote_ui_names_the_database_file_but_not_where_it_lives(scoped, bus_file):
    listed = await scoped["ds"].client.get("/-/agent-bus.json", cookies=scoped["jar"])
    (entry,) = listed.json()["databases"]
    assert entry["path"] == bus_file[0].name
    assert str(bus_file[0].parent) not in listed.text


async def test_a_topic_limited_token_may_not_rename_or_delete_or_create_elsewhere(
    scoped, bus_file, data
):
    ds, token = scoped["ds"], scoped["token"]
    tid = data["review"].topic_id
    for action, fields in (("rename", {"new_name": "x"}), ("delete", {"confirm_name": "x"})):
        response = await ds.client.post(
            f"{ROOT}/topics/{tid}/{action}", data=fields, headers=bearer(token)
        )
        assert response.status_code == 403
    created = await ds.client.post(
        f"{ROOT}/topics/-/create", data={"name": "elsewhere"}, headers=bearer(token)
    )
    assert created.status_code == 403
    with sqlite3.connect(bus_file[0]) as conn:
        assert conn.execute("SELECT count(*) FROM topics WHERE name='elsewhere'").fetchone() == (0,)


async def test_an_unscoped_token_may_use_raw_tables_and_sql(remote, bus_file):
    _, token = make_token(bus_file[0], read_only=True)
    response = await remote.client.get(
        "/agent_bus.json?sql=select+content_markdown+from+messages&_shape=array",
        headers=bearer(token),
    )
    assert response.status_code == 200
    assert any("All done" in row["content_markdown"] for row in response.json())


async def test_a_token_presented_to_a_loopback_ui_brings_its_scope(local, bus_file, data):
    _, token = make_token(bus_file[0], topics=["payments-review"])
    listed = (await local.client.get(f"{ROOT}.json", headers=bearer(token))).json()["topics"]
    assert [t["name"] for t in listed] == ["payments-review"]
    raw = await local.client.get("/agent_bus/messages.json", headers=bearer(token))
    assert raw.status_code == 403


# --- the command line ----------------------------------------------------------------------


def test_web_allow_remote_without_a_token_refuses_to_start(db_path):
    agent_bus = str(Path(sys.executable).with_name("agent-bus"))
    result = subprocess.run(
        [
            agent_bus,
            "web",
            "--allow-remote",
            "--host",
            "0.0.0.0",
            "--no-open",
            "--port",
            "0",
            "--db",
            str(db_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: TOKEN_REQUIRED: ")
    assert "agent-bus tokens create" in result.stderr
    assert "Traceback" not in result.stderr
