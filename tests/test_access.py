"""Access tokens (create, list, revoke, verify) and the scope checks every door applies."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent_bus.bus import Bus
from agent_bus.cli import app
from agent_bus.errors import Forbidden, InvalidArgument, TopicNotFound
from agent_bus.service import access
from agent_bus.settings import load_settings

runner = CliRunner()


@pytest.fixture
def bus(db_path: Path):
    b = Bus(load_settings(db=db_path))
    b.ensure_ready()
    yield b
    b.close()


def test_a_created_token_verifies_and_only_its_hash_is_stored(bus: Bus, db_path: Path) -> None:
    info, token = access.create(bus, "devcontainer", agents=["reviewer"], topics=["review"])
    assert token.startswith(f"agb_{info.token_id}_")
    verified = access.verify(bus, token)
    assert verified is not None and verified.token_id == info.token_id
    assert verified.scope().agents == frozenset({"reviewer"})
    raw = db_path.read_bytes() + Path(str(db_path) + "-wal").read_bytes()
    assert token.encode() not in raw
    with sqlite3.connect(db_path) as conn:
        stored = conn.execute("SELECT secret_hash FROM access_tokens").fetchone()[0]
    assert stored == access.hash_secret(token)


def test_wrong_revoked_and_expired_tokens_do_not_verify(bus: Bus) -> None:
    info, token = access.create(bus, "a")
    assert access.verify(bus, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert access.verify(bus, "not-a-token") is None
    assert access.verify(bus, "agb_tk00000000_x") is None
    access.revoke(bus, info.token_id)
    assert access.verify(bus, token) is None
    _, short = access.create(bus, "b", expires_in=60)
    assert access.verify(bus, short) is not None
    assert access.verify(bus, short, now=time.time() + 120) is None
    assert access.usable_count(bus) == 1


def test_revoking_an_unknown_id_is_an_invalid_argument(bus: Bus) -> None:
    with pytest.raises(InvalidArgument):
        access.revoke(bus, "tk12345678")


@pytest.mark.parametrize("text", ["", "3x", "0d", "-1d", "d", None])
def test_bad_expiries_are_refused(text: object) -> None:
    with pytest.raises(InvalidArgument):
        access.parse_duration(text)


def test_scope_refuses_other_agents_topics_and_writes(bus: Bus) -> None:
    mine, _ = bus.topic_create("review", None, "new")
    other, _ = bus.topic_create("secret-plans", None, "new")
    scope = access.Scope(
        token_id="tk00000001",
        label="t",
        agents=frozenset({"reviewer"}),
        topics=frozenset({"review"}),
    )
    scope.check_agent("reviewer")
    scope.check_agent(" reviewer ")
    with pytest.raises(Forbidden) as exc:
        scope.check_agent("implementer")
    assert exc.value.code == "FORBIDDEN"
    scope.guard_topic_id(bus.get_topic, mine.topic_id)
    with pytest.raises(Forbidden):
        scope.guard_topic_id(bus.get_topic, other.topic_id)
    # An unknown id gets the same answer as a hidden one: existence is not revealed.
    with pytest.raises(Forbidden):
        scope.guard_topic_id(bus.get_topic, "nope")
    scope.guard_topic_name(lambda n: bus.topic_resolve(n, True), "review")
    with pytest.raises(Forbidden):
        scope.guard_topic_name(lambda n: bus.topic_resolve(n, True), "secret-plans")
    listed = scope.visible(
        bus.topic_list("all"), id_of=lambda t: t.topic_id, name_of=lambda t: t.name
    )
    assert [t.name for t in listed] == ["review"]
    scope.check_new_topic("review")
    with pytest.raises(Forbidden):
        scope.check_new_topic("elsewhere")
    with pytest.raises(Forbidden):
        access.Scope(read_only=True).check_write("send messages")
    assert not access.UNRESTRICTED.restricted


def test_a_scope_by_topic_id_allows_that_topic_under_any_name(bus: Bus) -> None:
    topic, _ = bus.topic_create("renamed-later", None, "new")
    scope = access.Scope(topics=frozenset({topic.topic_id}))
    scope.guard_topic_name(lambda n: bus.topic_resolve(n, True), "renamed-later")
    with pytest.raises(Forbidden):
        scope.guard_topic_name(lambda n: bus.topic_resolve(n, True), "no-such-topic")
    # Unrestricted callers are never looked up: errors stay those of the operation itself.
    access.UNRESTRICTED.guard_topic_name(lambda n: bus.topic_resolve(n, True), "no-such-topic")
    with pytest.raises(TopicNotFound):
        bus.topic_resolve("no-such-topic")


def test_scope_survives_the_claims_round_trip() -> None:
    scope = access.Scope("tk00000002", "l", frozenset({"a"}), None, True)
    assert access.Scope.from_claims("tk00000002", scope.as_claims()) == scope


def test_tokens_cli_creates_lists_and_revokes_without_showing_secrets(db_path: Path) -> None:
    db = ["--db", str(db_path)]
    made = runner.invoke(
        app, ["tokens", "create", "box", "--agent", "reviewer", "--expires", "2h", "--json", *db]
    )
    assert made.exit_code == 0, made.output
    data = json.loads(made.stdout)
    assert data["token"].startswith("agb_" + data["id"])
    listed = runner.invoke(app, ["tokens", "list", "--json", *db])
    assert listed.exit_code == 0 and data["token"] not in listed.stdout
    (row,) = json.loads(listed.stdout)["tokens"]
    assert row["id"] == data["id"] and row["agents"] == ["reviewer"] and row["status"] == "active"
    gone = runner.invoke(app, ["tokens", "revoke", data["id"], *db])
    assert gone.exit_code == 0, gone.output
    listed = runner.invoke(app, ["tokens", "list", "--json", *db])
    assert json.loads(listed.stdout)["tokens"][0]["status"] == "revoked"
    bad = runner.invoke(app, ["tokens", "create", "x", "--expires", "soon", *db])
    assert bad.exit_code == 1 and "INVALID_ARGUMENT" in bad.output


@pytest.mark.anyio
async def test_the_web_ui_never_shows_access_token_hashes(bus: Bus, db_path: Path) -> None:
    from agent_bus.settings import BusSettings
    from agent_bus.web import build_datasette, load_plugin

    load_plugin()
    from agent_bus_datasette.state import close as close_plugin

    access.create(bus, "web")
    ds = build_datasette(BusSettings(db=db_path))
    await ds.invoke_startup()
    try:
        name = db_path.stem
        for sql in ("select * from access_tokens", "select secret_hash as h from access_tokens"):
            got = (
                await ds.client.get(f"/{name}.json", params={"sql": sql, "_shape": "array"})
            ).json()
            assert isinstance(got, list) and len(got) == 1, got
            assert got[0].get("secret_hash", got[0].get("h")) is None
            assert got[0].get("label", "web") == "web"
    finally:
        close_plugin(ds)
