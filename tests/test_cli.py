"""The typer CLI in-process: parsing, output, --json, errors (typer's CliRunner, real files)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from agent_bus.bus import Bus
from agent_bus.cli import app
from agent_bus.settings import load_settings
from agent_bus.store.schema import SCHEMA_VERSION

runner = CliRunner()


def cli(db: Path | None, *args: str, input: str | None = None, env: dict | None = None):
    argv = [*args] if db is None else [*args, "--db", str(db)]
    return runner.invoke(app, argv, input=input, env=env)


def ok(db: Path | None, *args: str, **kw) -> str:
    result = cli(db, *args, **kw)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


def fails(db: Path | None, *args: str, code: str, **kw) -> str:
    """Run a command that must fail as a user error: exit 1, one `error: CODE: …` line."""
    result = cli(db, *args, **kw)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(f"error: {code}: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[-1]


@pytest.fixture
def bus(db_path: Path):
    b = Bus(load_settings(db=db_path))
    yield b
    b.close()


def post(bus: Bus, topic_id: str, sender: str, text: str, **fields) -> str:
    items = bus.check_outbox([{"content_markdown": text, **fields}])
    return bus.post(topic_id, sender, items)[0].message.message_id


def test_topics_list_prints_a_table_with_counts_and_json_from_the_models(bus, db_path) -> None:
    topic, _ = bus.topic_create("review-auth")
    post(bus, topic.topic_id, "alice", "hello")
    post(bus, topic.topic_id, "bob", "hi")
    bus.topic_join("bob", topic_id=topic.topic_id)

    out = ok(db_path, "topics", "list")
    header, row = out.splitlines()
    assert header.split() == ["NAME", "ID", "STATUS", "MESSAGES", "PEERS", "LAST", "ACTIVITY"]
    assert row.split()[:5] == ["review-auth", topic.topic_id, "open", "2", "1"]

    data = json.loads(ok(db_path, "topics", "list", "--json"))
    (t,) = data["topics"]
    assert t["topic_id"] == topic.topic_id and t["message_count"] == 2 and t["peers"] == 1
    assert "\x1b[" not in out  # no colours when stdout is not a terminal


def test_topics_list_filters_by_status_and_name_glob(bus, db_path) -> None:
    a, _ = bus.topic_create("review-a")
    bus.topic_create("other")
    bus.topic_close(a.topic_id)
    names = lambda *args: [  # noqa: E731
        t["name"] for t in json.loads(ok(db_path, "topics", "list", "--json", *args))["topics"]
    ]
    assert names() == ["other"]
    assert names("--status", "closed") == ["review-a"]
    assert sorted(names("--status", "all")) == ["other", "review-a"]
    assert names("--status", "all", "--name", "rev*") == ["review-a"]


def test_send_posts_as_a_named_peer_and_show_prints_the_thread(bus, db_path) -> None:
    topic, _ = bus.topic_create("steer")
    first = post(bus, topic.topic_id, "agent", "Which retry policy?", message_type="question")

    sent = json.loads(
        ok(
            db_path,
            "send",
            "steer",
            "--as",
            "alice",
            "--reply-to",
            "#1",
            "--type",
            "answer",
            "Use **exponential** backoff.",
            "--json",
        )
    )
    message = sent["sent"][0]["message"]
    assert message["sender"] == "alice" and message["reply_to"] == first
    assert message["message_type"] == "answer" and message["seq"] == 2

    ok(db_path, "send", "steer", "--as", "alice", "-", input="from stdin\n")
    out = ok(db_path, "topics", "show", "steer", "--raw")
    assert "#2 · alice · answer" in out and "reply to #1" in out
    assert "Use **exponential** backoff." in out and "from stdin" in out

    last = json.loads(ok(db_path, "topics", "show", "steer", "--last", "1", "--json"))
    assert [m["seq"] for m in last["messages"]] == [3]
    since = json.loads(ok(db_path, "topics", "show", "steer", "--since", "1", "--json"))
    assert [m["seq"] for m in since["messages"]] == [2, 3]


def test_send_with_a_client_message_id_does_not_post_twice(bus, db_path) -> None:
    topic, _ = bus.topic_create("idem")
    for _ in range(2):
        ok(db_path, "send", "idem", "--as", "alice", "--client-message-id", "k1", "once")
    assert len(bus.messages(topic.topic_id)) == 1


def test_topic_arguments_accept_an_id_prefix_and_a_name(bus, db_path) -> None:
    topic, _ = bus.topic_create("prefix-me")
    post(bus, topic.topic_id, "a", "x")
    for ref in (topic.topic_id, topic.topic_id[:6], "prefix-me"):
        shown = json.loads(ok(db_path, "topics", "show", ref, "--json"))
        assert shown["topic"]["topic_id"] == topic.topic_id


def test_watch_without_follow_prints_the_last_messages_as_jsonl(bus, db_path) -> None:
    topic, _ = bus.topic_create("w")
    for i in range(5):
        post(bus, topic.topic_id, "a", f"m{i}")
    out = ok(db_path, "topics", "watch", "w", "-n", "2", "--json")
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [4, 5]
    out = ok(db_path, "topics", "watch", "w", "--since", "3", "--json")
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [4, 5]


def test_create_close_rename_and_presence_manage_a_topic(bus, db_path) -> None:
    created = json.loads(ok(db_path, "topics", "create", "plan", "--json"))
    assert created["created"] is True
    again = json.loads(ok(db_path, "topics", "create", "plan", "--json"))
    assert again["created"] is False and again["topic_id"] == created["topic_id"]
    tid = created["topic_id"]
    post(bus, tid, "a", "the plan topic is open")
    bus.topic_join("reviewer", topic_id=tid)
    bus.sync_once(
        tid, "reviewer", [], max_items=10, include_self=False, auto_advance=True, ack_through=None
    )

    presence = json.loads(ok(db_path, "topics", "presence", "plan", "--json"))
    assert [p["agent_name"] for p in presence["peers"]] == ["reviewer"]

    renamed = json.loads(ok(db_path, "topics", "rename", "plan", "plan-v2", "--json"))
    assert renamed["changed"] and renamed["messages_rewritten"] == 1
    assert bus.messages(tid)[0].content_markdown == "the plan-v2 topic is open"
    ok(db_path, "topics", "rename", tid, "plan-v3", "--no-rewrite-messages")
    assert bus.messages(tid)[0].content_markdown == "the plan-v2 topic is open"
    assert bus.get_topic(tid).name == "plan-v3"

    closed = json.loads(ok(db_path, "topics", "close", "plan-v3", "--reason", "done", "--json"))
    assert closed["status"] == "closed" and closed["close_reason"] == "done"
    fails(db_path, "send", tid, "--as", "alice", "late", code="TOPIC_CLOSED")

    reopened = json.loads(ok(db_path, "topics", "reopen", tid, "--json"))
    assert reopened["status"] == "open" and reopened["close_reason"] is None
    assert reopened["already_open"] is False
    assert "already open" in ok(db_path, "topics", "reopen", tid)
    ok(db_path, "send", tid, "--as", "alice", "back again")


def test_search_prints_highlighted_snippets_and_json_results(bus, db_path) -> None:
    topic, _ = bus.topic_create("s")
    post(bus, topic.topic_id, "alice", "The retry_backoff value is too low")
    post(bus, topic.topic_id, "bob", "unrelated chatter")
    out = ok(db_path, "search", "retry_backoff", "--mode", "fts")
    assert "s #1 · alice" in out and "**" in out and "unrelated" not in out
    data = json.loads(ok(db_path, "search", "chatter", "--topic", "s", "--json"))
    assert [r["seq"] for r in data["results"]] == [2]


def test_search_filters_by_sender_type_and_time_on_the_command_line(bus, db_path) -> None:
    topic, _ = bus.topic_create("filters")
    old = post(
        bus, topic.topic_id, "alice", "rollback plan: revert the migration", message_type="decision"
    )
    post(bus, topic.topic_id, "bob", "rollback plan looks risky", message_type="question")
    new = post(
        bus,
        topic.topic_id,
        "alice",
        "rollback plan v2: feature flag first",
        message_type="decision",
    )
    with sqlite3.connect(db_path) as conn:  # the first decision is ten days old
        conn.execute(
            "UPDATE messages SET created_at = created_at - 10 * 86400 WHERE message_id = ?", (old,)
        )

    def ids(*args: str) -> list[str]:
        data = json.loads(ok(db_path, "search", "rollback plan", "--mode", "fts", *args, "--json"))
        return sorted(r["message_id"] for r in data["results"])

    assert ids("--sender", "alice") == sorted([old, new])
    assert ids("--type", "decision", "--since", "2d") == [new]
    assert ids("-s", "alice", "--until", "1w") == [old]
    assert ids("--sender", "nobody") == []
    fails(db_path, "search", "x", "--since", "last tuesday", code="INVALID_ARGUMENT")
    fails(db_path, "search", "--like", new, "--sender", "bob", code="INVALID_ARGUMENT")


def test_search_like_lists_the_messages_nearest_in_meaning_never_itself(bus, db_path) -> None:
    from agent_bus.embeddings import missing_default_modules

    if missing_default_modules():
        pytest.skip("the `semantic` extra is not installed")
    billing, _ = bus.topic_create("billing")
    payments, _ = bus.topic_create("payments-v2")
    source = post(
        bus, billing.topic_id, "alice", "We round VAT per invoice line, never on the subtotal."
    )
    post(
        bus, payments.topic_id, "bob", "Tax is rounded for each line; the total sums rounded lines."
    )
    post(bus, payments.topic_id, "bob", "Pizza for lunch on fridays, basil optional.")
    ok(db_path, "embeddings", "index")
    data = json.loads(ok(db_path, "search", "--like", source, "--json"))
    ids = [r["message_id"] for r in data["results"]]
    assert source not in ids and data["like"] == source
    assert data["results"][0]["topic_name"] == "payments-v2"
    assert "rounded" in data["results"][0]["snippet"]
    scoped = json.loads(ok(db_path, "search", "--like", source, "--topic", "billing", "--json"))
    assert scoped["results"] == []
    fails(db_path, "search", "--like", "no-such-message", code="INVALID_ARGUMENT")
    fails(db_path, "search", code="INVALID_ARGUMENT")
    fails(db_path, "search", "tax", "--like", source, code="INVALID_ARGUMENT")


def test_config_show_names_each_setting_and_its_source(db_path) -> None:
    data = json.loads(ok(db_path, "config", "show", "--json", env={"AGENT_BUS_MAX_OUTBOX": "7"}))
    rows = {r["name"]: r for r in data["settings"]}
    assert rows["db"]["source"] == "flag --db" and rows["db"]["value"] == str(db_path)
    assert rows["max_outbox"]["value"] == 7 and rows["max_outbox"]["source"].startswith("env")
    assert rows["max_sync_items"]["source"] == "default"
    text = ok(None, "config", "show", env={"AGENT_BUS_DB": str(db_path)})
    assert "AGENT_BUS_DB" in text and "(env AGENT_BUS_DB)" in text
    secret = {"AGENT_BUS_WEB_SECRET": "s3cr3t" * 8}
    for args in (("--json",), ()):
        shown = ok(db_path, "config", "show", *args, env=secret)
        assert "s3cr3t" not in shown and "**********" in shown
    fails(db_path, "config", "show", env={"AGENT_BUS_WEB_SECRET": "short"}, code="INVALID_ARGUMENT")


def test_db_commands_report_path_stats_and_a_passing_check(bus, db_path, tmp_path) -> None:
    topic, _ = bus.topic_create("d")
    post(bus, topic.topic_id, "a", "x")
    assert ok(db_path, "db", "path").strip() == str(db_path)
    stats = json.loads(ok(db_path, "db", "stats", "--json"))
    assert (
        stats["messages"] == 1
        and stats["topics_open"] == 1
        and stats["schema_version"] == SCHEMA_VERSION
    )
    report = json.loads(ok(db_path, "db", "check", "--json"))
    assert report["ok"] and {c["name"] for c in report["checks"]} >= {
        "integrity",
        "schema_version",
        "fts",
    }
    ok(db_path, "db", "vacuum")
    copy = tmp_path / "copy.sqlite"
    ok(db_path, "db", "backup", str(copy))
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 1
    fails(db_path, "db", "backup", str(copy), code="INVALID_ARGUMENT")  # exists, no --force
    ok(db_path, "db", "backup", str(copy), "--force")


def test_db_check_finds_a_broken_fts_index_and_repair_fixes_it(bus, db_path) -> None:
    topic, _ = bus.topic_create("fts")
    post(bus, topic.topic_id, "a", "findable words")
    bus.close()
    with sqlite3.connect(db_path) as conn:  # simulate a lost index row
        conn.execute("INSERT INTO messages_fts(messages_fts) VALUES('delete-all')")
    line = fails(db_path, "db", "check", code="INVALID_ARGUMENT")
    assert "fts" in line
    out = ok(db_path, "db", "check", "--repair")
    assert "FAIL" not in out


def test_db_wipe_needs_yes_without_a_terminal_and_removes_the_files(bus, db_path) -> None:
    bus.topic_create("gone")
    bus.close()
    fails(db_path, "db", "wipe", code="INVALID_ARGUMENT")
    assert db_path.exists()
    ok(db_path, "db", "wipe", "--yes")
    assert not db_path.exists() and not Path(f"{db_path}-wal").exists()


def test_reference_cli_spellings_keep_working(bus, db_path) -> None:
    topic, _ = bus.topic_create("legacy")
    post(bus, topic.topic_id, "a", "old habits")
    listed = runner.invoke(app, ["cli", "--db-path", str(db_path), "topics", "list", "--json"])
    assert listed.exit_code == 0, listed.stderr
    assert json.loads(listed.stdout)["topics"][0]["name"] == "legacy"
    md = ok(db_path, "cli", "export", "legacy")
    assert "old habits" in md
    md = ok(db_path, "cli", "topics", "export", topic.topic_id, "--format", "markdown")
    assert "# legacy" in md
    ok(db_path, "cli", "topics", "watch", topic.topic_id, "-n", "1")
    ok(db_path, "cli", "db", "wipe", "--yes")
    assert not db_path.exists()


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("topics", "show", "no-such-topic"), "TOPIC_NOT_FOUND"),
        (("export", "dup", "--format", "xml"), "INVALID_ARGUMENT"),
        (("import", "/nonexistent/file.jsonl"), "INVALID_ARGUMENT"),
        (("topics", "list", "--limit", "0"), "INVALID_ARGUMENT"),
        (("topics", "show"), "INVALID_ARGUMENT"),
        (("send", "dup-once", "--as", "alice", ""), "INVALID_ARGUMENT"),
        (("send", "dup-once", "--as", "alice", "--reply-to", "#99", "hi"), "INVALID_ARGUMENT"),
        (("search", "x", "--mode", "fuzzy"), "INVALID_ARGUMENT"),
        (("topics", "create", "x", "--metadata", "[1]"), "INVALID_ARGUMENT"),
        (("no-such-command",), "INVALID_ARGUMENT"),
    ],
)
def test_bad_input_exits_1_with_one_error_line_and_no_traceback(bus, db_path, args, code) -> None:
    bus.topic_create("dup", mode="new")
    bus.topic_create("dup-once")
    fails(db_path, *args, code=code)


def test_a_name_means_the_newest_open_topic_and_several_closed_ones_are_ambiguous(
    bus, db_path
) -> None:
    a, _ = bus.topic_create("twin", mode="new")
    b, _ = bus.topic_create("twin", mode="new")
    assert bus.resolve_ref("twin").topic_id == b.topic_id
    bus.topic_close(b.topic_id)
    assert bus.resolve_ref("twin").topic_id == a.topic_id  # the open one wins
    bus.topic_close(a.topic_id)
    line = fails(db_path, "topics", "show", "twin", code="TOPIC_AMBIGUOUS")
    assert a.topic_id in line and b.topic_id in line


def test_an_unreadable_import_file_is_reported_by_name(db_path, tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "topic"}\nnot json\n', encoding="utf-8")
    line = fails(db_path, "import", str(bad), code="INVALID_ARGUMENT")
    assert f"{bad}:2" in line
    bad.write_bytes(b"\xff\xfe\x00")
    assert "not UTF-8" in fails(db_path, "import", str(bad), code="INVALID_ARGUMENT")


def test_a_file_that_is_not_a_bus_gives_a_schema_error(tmp_path) -> None:
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    fails(other, "topics", "list", code="DB_SCHEMA_MISMATCH")


def _commands(command, path=()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        if sub.hidden or name == "cli":
            continue
        yield from _commands(sub, (*path, name))


def test_every_command_has_help_with_an_example() -> None:
    root = get_command(app)
    leaves = [(p, c) for p, c in _commands(root) if p and not getattr(c, "commands", None)]
    assert {" ".join(p) for p, _ in leaves} >= {
        "topics list",
        "topics show",
        "topics watch",
        "topics presence",
        "topics create",
        "topics close",
        "topics rename",
        "topics delete",
        "send",
        "export",
        "import",
        "search",
        "db path",
        "db stats",
        "db check",
        "db backup",
        "db vacuum",
        "db wipe",
        "config show",
        "web",
        "mcp",
        "demo",
    }
    for path, _ in leaves:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "Examples" in result.stdout and "agent-bus " in result.stdout, path


def test_version_and_no_arguments_print_without_error() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("agent-bus ")
    result = runner.invoke(app, ["topics"])
    assert result.exit_code == 0 and "list" in result.stdout


def test_skills_install_into_a_project_and_mcp_config_prints_the_client_snippet(
    db_path, tmp_path
) -> None:
    listed = json.loads(ok(None, "skills", "list", "--json"))["skills"]
    assert listed and all(s["name"] and s["description"] for s in listed)
    project = tmp_path / "project"
    project.mkdir()
    report = json.loads(
        ok(
            None,
            "skills",
            "install",
            "--client",
            "claude-code",
            "--project",
            str(project),
            "--json",
        )
    )
    assert {s["status"] for s in report["skills"]} == {"installed"}
    for s in listed:
        assert (project / ".claude" / "skills" / s["name"] / "SKILL.md").is_file()
    again = json.loads(
        ok(
            None,
            "skills",
            "install",
            "--client",
            "claude-code",
            "--project",
            str(project),
            "--json",
        )
    )
    assert {s["status"] for s in again["skills"]} == {"unchanged"}

    snippet = json.loads(ok(db_path, "mcp-config", "--client", "claude-code"))
    assert snippet["mcpServers"]["agent-bus"]["env"]["AGENT_BUS_DB"] == str(db_path)
    fails(None, "skills", "install", "--client", "no-such-client", code="INVALID_ARGUMENT")
    fails(None, "skills", "show", "no-such-skill", code="INVALID_ARGUMENT")


def test_web_refuses_a_public_address_without_allow_remote(db_path) -> None:
    line = fails(db_path, "web", "--host", "0.0.0.0", "--no-open", code="INVALID_ARGUMENT")
    assert "--allow-remote" in line


HOSTILE = "a\x1b]0;pwned\x07b\x1b[2Jc\x9b31md\re\x08f\tg\nh"


@pytest.fixture
def hostile(bus, db_path) -> str:
    """A topic whose name, sender and body carry escape sequences (written past the checks)."""
    topic, _ = bus.topic_create("esc")
    post(bus, topic.topic_id, "mallory", "hostile " + HOSTILE)
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE messages SET sender = ?", ("mal\x1b[31mlory",))
        conn.execute("UPDATE topics SET name = ?", ("esc\x1b]0;t\x07",))
    return topic.topic_id


@pytest.fixture
def tty(monkeypatch):
    import agent_bus.cli._common as common
    import agent_bus.cli._render as render
    import agent_bus.cli.search as search
    import agent_bus.cli.topics as topics

    for module in (common, render, search, topics):
        monkeypatch.setattr(module, "is_tty", lambda: True)


def _no_controls(out: str) -> None:
    assert not any(c in out for c in "\x1b\x07\x9b\r\x08"), repr(out)


@pytest.mark.parametrize(
    "args",
    [
        ("topics", "show", "{tid}", "--raw"),
        ("topics", "show", "{tid}"),
        ("topics", "watch", "{tid}", "-n", "5"),
        ("topics", "watch", "{tid}", "-n", "5", "--brief"),
        ("topics", "list"),
        ("search", "hostile", "--mode", "fts", "--content"),
        ("search", "hostile", "--mode", "fts"),
        ("send", "{tid}", "--as", "eve", "reply"),
    ],
)
def test_terminal_output_drops_control_characters_from_stored_text(
    hostile, db_path, tty, args
) -> None:
    out = ok(db_path, *(a.format(tid=hostile) for a in args))
    _no_controls(out)
    assert "esc" in out or "hostile" in out  # the topic name or the body


def test_raw_show_keeps_newlines_and_tabs_on_a_terminal(hostile, db_path, tty) -> None:
    out = ok(db_path, "topics", "show", hostile, "--raw")
    assert "hostile a]0;pwnedb[2Jc31mdef\tg\nh" in out and "mal[31mlory" in out


def test_pipes_and_json_get_stored_text_unchanged(hostile, db_path) -> None:
    out = ok(db_path, "topics", "show", hostile, "--raw")
    # click itself drops CSI colour sequences on a pipe; everything else stays as stored
    assert "a\x1b]0;pwned\x07bc\x9b31md\re\x08f\tg\nh" in out
    (m,) = json.loads(ok(db_path, "topics", "show", hostile, "--json"))["messages"]
    assert m["content_markdown"] == "hostile " + HOSTILE and m["sender"] == "mal\x1b[31mlory"
