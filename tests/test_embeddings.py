"""Embeddings: chunking, the real default model, llm interop, the queue, retries, CLI."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
from click.testing import CliRunner
from fake_embeddings import PoisonEmbed, registered
from llm.cli import cli as llm_cli
from typer.testing import CliRunner as TyperRunner

from agent_bus.bus import Bus
from agent_bus.cli import app
from agent_bus.embeddings import DEFAULT_MODEL_ID, collection_name, missing_default_modules
from agent_bus.embeddings import service as emb
from agent_bus.embeddings.chunking import chunk_text, passages, sentences
from agent_bus.embeddings.indexer import Indexer
from agent_bus.embeddings.worker import LEASE_NAME, BackgroundIndexer
from agent_bus.models import OutboxItem
from agent_bus.settings import load_settings
from agent_bus.store import embeddings as store

needs_default_model = pytest.mark.skipif(
    bool(missing_default_modules()), reason="the `semantic` extra is not installed"
)


def _bus(db_path, **overrides) -> Bus:
    return Bus(load_settings(db=db_path, **overrides))


def _post(bus: Bus, *texts: str, topic: str = "t") -> str:
    t, _ = bus.topic_create(topic)
    bus.post(t.topic_id, "tester", [OutboxItem(content_markdown=x) for x in texts])
    return t.topic_id


# --- chunking ------------------------------------------------------------------------------------


def test_short_text_is_one_chunk_and_long_text_overlapping_chunks_cut_at_spaces():
    assert chunk_text("short", 100, 20) == ["short"]
    text = " ".join(f"word{i}" for i in range(400))
    chunks = chunk_text(text, 200, 50)
    assert len(chunks) > 10 and all(len(c) <= 200 for c in chunks)
    assert all(c.endswith(" ") or c is chunks[-1] for c in chunks)  # no word split
    assert chunks[0][-30:].strip().split()[-1] in chunks[1]  # overlap
    assert "".join(c for c in chunks).count("word399") >= 1


def test_long_messages_are_stored_as_numbered_chunk_rows(db_path):
    bus = _bus(db_path, chunk_chars=200, chunk_overlap_chars=40)
    try:
        _post(bus, "alpha " * 200)
        with registered():
            emb.index(bus, model="test-words")
        ids = bus.read(lambda c: [r[0] for r in c.execute("SELECT id FROM embeddings")])
        mid = bus.read(lambda c: c.execute("SELECT message_id FROM messages").fetchone()[0])
        assert ids[0] == mid and f"{mid}:1" in ids and len(ids) > 5
    finally:
        bus.close()


def test_passages_are_overlapping_runs_of_three_sentences_ending_with_the_text():
    text = (
        "First we tried the cache. Then the retry loop failed! Why did it fail?\n"
        "- ok\n"
        "Because the lock was held. The fix is in review. Ship it tomorrow morning."
    )
    assert sentences(text) == [
        "First we tried the cache.",
        "Then the retry loop failed!",
        "Why did it fail? - ok",  # a fragment joins the sentence before it
        "Because the lock was held.",
        "The fix is in review.",
        "Ship it tomorrow morning.",
    ]
    assert passages(text) == [
        "First we tried the cache. Then the retry loop failed! Why did it fail? - ok",
        "Why did it fail? - ok Because the lock was held. The fix is in review.",
        "Because the lock was held. The fix is in review. Ship it tomorrow morning.",
    ]
    assert passages("  Looks good to me, merging.  ") == ["Looks good to me, merging."]
    assert passages("") == [] and passages("   ") == []
    assert sentences("ok\nthen we merge the branch") == ["ok then we merge the branch"]
    many = " ".join(f"Sentence number {i} is here." for i in range(200))
    assert len(passages(many)) == 24  # MAX_PASSAGES; the chunks still cover the rest


def _rows(bus: Bus) -> list[tuple[str, dict, str]]:
    """(row id, metadata, message id) of every embedding row, in message then row order."""
    return bus.read(
        lambda c: [
            (r[0], json.loads(r[1]), r[2])
            for r in c.execute(
                "SELECT e.id, e.metadata, m.message_id FROM embeddings e "
                "JOIN messages m ON m.message_id = substr(e.id, 1, length(m.message_id)) "
                "ORDER BY m.seq, e.rowid"
            )
        ]
    )


GREEK = "Alpha beta gamma. Delta epsilon zeta. Eta theta iota. Kappa lambda mu."


@needs_default_model
def test_the_bundled_model_stores_passages_after_the_chunks(db_path):
    bus = _bus(db_path, embeddings_autoindex=False)
    try:
        _post(bus, GREEK, "A single short sentence here.", "   ", topic="greek")
        emb.index(bus)
        rows = _rows(bus)
    finally:
        bus.close()
    long_id, short_id, blank_id = dict.fromkeys(r[2] for r in rows)
    assert [r[0] for r in rows] == [
        long_id,
        f"{long_id}:1",
        f"{long_id}:2",
        short_id,
        f"{short_id}:1",
        blank_id,  # nothing to cut into passages
    ]
    assert [r[1].get("passage", False) for r in rows] == [False, True, True, False, True, False]
    assert rows[1][1]["chunk"] == 1 and rows[1][1]["chunks"] == 3


def test_another_model_embeds_the_chunks_only(db_path):
    bus = _bus(db_path, embeddings_autoindex=False)
    try:
        _post(bus, GREEK)
        with registered():
            emb.index(bus, model="test-words")
        rows = _rows(bus)
    finally:
        bus.close()
    assert len(rows) == 1 and rows[0][1]["chunks"] == 1 and "passage" not in rows[0][1]


@needs_default_model
def test_messages_embedded_before_passages_get_them_in_the_background_once(db_path):
    bus = _bus(db_path, embed_idle_poll_seconds=0.05, embeddings_autoindex=False)
    try:
        _post(bus, GREEK, "A single short sentence here.", topic="greek")
        emb.index(bus)
        cid = bus.read(lambda c: store.collection_id(c, collection_name(DEFAULT_MODEL_ID)))
        assert not bus.read(lambda c: store.passages_done(c, cid))
        # What an older version left: first rows only.
        bus.write(lambda c: c.execute("DELETE FROM embeddings WHERE id LIKE '%:%'"))
        assert len(_rows(bus)) == 2
        runner, where = TyperRunner(), ["--db", str(db_path)]
        shown = runner.invoke(app, ["embeddings", "status", *where])
        assert "passages     2 messages embedded before passages get them" in shown.output
        worker = BackgroundIndexer(bus).start()
        try:
            _until(lambda: bus.read(lambda c: store.passages_done(c, cid)))
        finally:
            worker.stop()
        rows = _rows(bus)
        assert [r[1].get("passage", False) for r in rows] == [False, True, True, False, True]
        assert _jobs(bus)["queued"] == 0  # no job: searches never saw them as missing
        data = json.loads(runner.invoke(app, ["embeddings", "status", "--json", *where]).output)
        assert data["passages"] == {"done": True, "pending": 0}
        assert "passages" not in runner.invoke(app, ["embeddings", "status", *where]).output
    finally:
        bus.close()


def test_a_new_collection_appears_whole_to_other_readers(db_path):
    """llm migrates its tables one transaction at a time; ours wraps them all, so another
    process never reads an `embeddings` table without its later columns."""
    from agent_bus.embeddings.indexer import ensure_collection
    from agent_bus.embeddings.models import get_embedder

    bus = _bus(db_path, embeddings_autoindex=False)
    statements: list[str] = []
    try:
        bus.conn().set_trace_callback(statements.append)
        with registered():
            ensure_collection(bus, get_embedder("test-words", explicit=True))
        bus.conn().set_trace_callback(None)
        data = json.loads(
            TyperRunner()
            .invoke(app, ["embeddings", "status", "--json", "--db", str(db_path)])
            .output
        )
    finally:
        bus.close()
    begin = statements.index("BEGIN IMMEDIATE")
    after = [sql.strip().upper() for sql in statements[begin + 1 :]]
    ends = [i for i, sql in enumerate(after) if sql in ("COMMIT", "ROLLBACK")]
    creates = [i for i, sql in enumerate(after) if sql.startswith("CREATE TABLE")]
    assert not any(sql.startswith("CREATE") for sql in statements[:begin])
    assert len(creates) >= 2 and ends == [len(after) - 1] and after[-1] == "COMMIT"
    assert [c["name"] for c in data["collections"]] == ["agent-bus-messages-test-words"]


# --- the real default model, offline ------------------------------------------------------------


@needs_default_model
def test_default_model_is_listed_by_llm_embed_models():
    result = CliRunner().invoke(llm_cli, ["embed-models"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert DEFAULT_MODEL_ID in result.output


@needs_default_model
def test_default_model_finds_a_paraphrase_offline_and_llm_similar_reads_the_bus(db_path):
    bus = _bus(db_path)
    try:
        _post(
            bus,
            "The nightly build broke because the compiler ran out of memory.",
            "Lunch is at noon in the small kitchen on the second floor.",
            "We will rotate the signing keys for the staging servers on Friday.",
            "Please review the pull request that renames the settings module.",
        )
        result = emb.index(bus)
        assert result["embedded"] == 4 and result["failed"] == 0
        results, warnings = bus.search("when do we eat our midday meal", mode="semantic", limit=2)
        assert warnings == []
        assert results[0].snippet.startswith("Lunch is at noon")
        hybrid, _ = bus.search("when do we eat our midday meal", limit=2)
        assert hybrid[0].snippet.startswith("Lunch is at noon")
        lunch = results[0].message_id
    finally:
        bus.close()
    out = CliRunner().invoke(
        llm_cli,
        [
            "similar",
            collection_name(DEFAULT_MODEL_ID),
            "-d",
            str(db_path),
            "-c",
            "time for a meal in the middle of the day",
            "-n",
            "1",
        ],
        catch_exceptions=False,
    )
    assert out.exit_code == 0, out.output
    # A row id is the message id, or message_id:N for its other chunks and passages.
    assert store.split_chunk_id(json.loads(out.output.splitlines()[0])["id"])[0] == lunch


def test_vectors_from_a_users_llm_embed_multi_run_are_used_by_messages_search(db_path):
    bus = _bus(db_path)
    try:
        _post(bus, "pizzas without basil", "schema migration notes", "retry timings")
        with registered():
            run = CliRunner().invoke(
                llm_cli,
                [
                    "embed-multi",
                    "my-notes",
                    "-d",
                    str(db_path),
                    "-m",
                    "test-words",
                    "--sql",
                    "select message_id as id, content_markdown from messages",
                ],
                catch_exceptions=False,
            )
            assert run.exit_code == 0, run.output
            by_model, _ = bus.search("basil pizzas", mode="semantic", model="test-words")
            by_name, _ = bus.search("basil pizzas", mode="semantic", model="my-notes")
        assert by_model[0].snippet == "pizzas without basil"
        assert [r.message_id for r in by_name] == [r.message_id for r in by_model]
    finally:
        bus.close()


def test_new_vectors_reach_the_cached_matrix_incrementally(db_path):
    bus = _bus(db_path)
    try:
        tid = _post(bus, "alpha beta")
        with registered():
            emb.index(bus, model="test-words")
            first, _ = bus.search("gamma delta", mode="semantic", model="test-words")
            bus.post(tid, "tester", [OutboxItem(content_markdown="gamma delta")])
            emb.index(bus, model="test-words")
            second, _ = bus.search("gamma delta", mode="semantic", model="test-words")
            emb.drop(bus, "test-words")
            emb.index(bus, model="test-words")
            third, _ = bus.search("gamma delta", mode="semantic", model="test-words")
        assert first[0].snippet == "alpha beta"
        assert second[0].snippet == "gamma delta" and len(second) == 2
        assert third[0].snippet == "gamma delta" and len(third) == 2
    finally:
        bus.close()


# --- the queue, retries and the worker ------------------------------------------------------------


def test_new_messages_are_queued_in_the_same_transaction_and_a_v7_bus_is_backfilled(db_path):
    bus = _bus(db_path)
    try:
        _post(bus, "one", "two")
        assert bus.read(lambda c: store.job_counts(c, time.time()))["queued"] == 2
    finally:
        bus.close()
    # Back to version 7, as an older agent-bus left it: everything later migrations made goes.
    from agent_bus.store.schema import MIGRATIONS

    with sqlite3.connect(":memory:") as v7:
        MIGRATIONS[7](v7)
        keep = {r[0] for r in v7.execute("SELECT name FROM sqlite_master")}
    with sqlite3.connect(db_path) as conn:
        later = conn.execute(
            "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'trigger') "
            "AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        for kind, name in later:
            if name not in keep:
                conn.execute(f"DROP {kind.upper()} IF EXISTS {name}")
        conn.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    bus = _bus(db_path)
    try:
        assert bus.read(lambda c: store.job_counts(c, time.time()))["queued"] == 2
    finally:
        bus.close()


def test_a_failing_model_is_retried_with_backoff_then_gives_up_and_shows_in_status(db_path):
    bus = _bus(
        db_path,
        embedding_model="test-poison",
        embed_max_attempts=3,
        embed_retry_base_seconds=10,
    )
    try:
        _post(bus, "fine message", "POISON message", "another fine one")
        with registered():
            indexer = Indexer.for_model(bus, None)
            now = time.time()
            first = indexer.run_batch(now)
            assert (first.embedded, first.failed, first.gave_up) == (2, 1, 0)
            assert indexer.run_batch(now).processed == 0  # backing off: nothing is due
            job = bus.read(lambda c: store.failed_jobs(c))[0]
            assert job["attempts"] == 1 and "model rejected the input" in job["last_error"]
            second = indexer.run_batch(now + 30)
            third = indexer.run_batch(now + 3600)
            assert (second.failed, second.gave_up, third.gave_up) == (1, 0, 1)
            assert indexer.run_batch(now + 10**6).processed == 0  # given up: never again
        data = emb.status(bus)
        assert data["jobs"] == {"queued": 0, "retrying": 0, "failed": 1, "due": 0}
        assert data["failures"][0]["attempts"] == 3 and data["failures"][0]["failed_at"]
        assert data["collections"][0]["messages"] == 2
    finally:
        bus.close()


def _jobs(bus: Bus) -> dict[str, int]:
    return bus.read(lambda c: store.job_counts(c, time.time()))


def _until(condition, timeout: float = 60.0) -> None:
    """Poll for a condition; the deadline is liveness only (a loaded machine is slow)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_a_model_that_raises_in_the_background_does_not_stop_the_bus(db_path):
    bus = _bus(
        db_path,
        embedding_model="test-poison",
        index_lease_ttl_seconds=2,
        embed_idle_poll_seconds=0.05,
        embed_retry_base_seconds=0.05,
        embed_retry_max_seconds=0.1,
        embed_max_attempts=2,
    )
    calls = PoisonEmbed.calls
    try:
        with registered():
            worker = BackgroundIndexer(bus).start()
            try:
                tid = _post(bus, "POISON", "fine")
                _until(lambda: _jobs(bus)["failed"] == 1 and _jobs(bus)["queued"] == 0)
                assert worker.is_leader
                bus.post(tid, "tester", [OutboxItem(content_markdown="later message")])
                _until(lambda: _jobs(bus)["queued"] == 0)
                results, _ = bus.search("later message", mode="semantic", limit=1)
                assert results[0].snippet == "later message"
            finally:
                worker.stop()
        assert PoisonEmbed.calls > calls
        assert bus.read(lambda c: store.get_lease(c, LEASE_NAME)) is None  # handed back
    finally:
        bus.close()


# --- CLI ---------------------------------------------------------------------------------


def test_cli_embeddings_index_status_and_drop(db_path):
    bus = _bus(db_path)
    _post(bus, "pizzas without basil", "retry timings")
    bus.close()
    runner = TyperRunner()
    with registered():
        done = runner.invoke(app, ["embeddings", "index", "-m", "test-words", "--db", str(db_path)])
        assert done.exit_code == 0, done.output
        assert "2 messages embedded into agent-bus-messages-test-words" in done.output
        status = runner.invoke(app, ["embeddings", "status", "--json", "--db", str(db_path)])
        data = json.loads(status.output)
        assert data["collections"][0]["messages"] == 2
        again = runner.invoke(
            app, ["embeddings", "index", "-m", "test-words", "--json", "--db", str(db_path)]
        )
        assert json.loads(again.output)["embedded"] == 0
        rebuilt = runner.invoke(
            app,
            [
                "embeddings",
                "index",
                "-m",
                "test-words",
                "--rebuild",
                "--json",
                "--db",
                str(db_path),
            ],
        )
        assert json.loads(rebuilt.output)["embedded"] == 2
        unknown = runner.invoke(app, ["embeddings", "index", "-m", "nope", "--db", str(db_path)])
        assert unknown.exit_code == 1
        assert "error: INVALID_ARGUMENT: unknown embedding model 'nope'" in unknown.output
    dropped = runner.invoke(app, ["embeddings", "drop", "-m", "test-words", "--db", str(db_path)])
    assert dropped.exit_code == 0 and "dropped agent-bus-messages-test-words" in dropped.output
    missing = runner.invoke(app, ["embeddings", "drop", "-m", "test-words", "--db", str(db_path)])
    assert missing.exit_code == 1 and "error: INVALID_ARGUMENT" in missing.output


def test_llm_agent_bus_search_and_index_commands(db_path):
    bus = _bus(db_path)
    _post(bus, "pizzas without basil", "retry timings")
    bus.close()
    with registered():
        runner = CliRunner()
        indexed = runner.invoke(
            llm_cli, ["agent-bus", "index", "-m", "test-words", "-d", str(db_path)]
        )
        assert indexed.exit_code == 0, indexed.output
        found = runner.invoke(
            llm_cli,
            ["agent-bus", "search", "basil", "-m", "test-words", "-d", str(db_path)],
        )
    assert found.exit_code == 0, found.output
    assert json.loads(found.output.splitlines()[0])["snippet"].startswith("pizzas")


def test_a_default_model_file_that_is_not_the_measured_one_is_refused(tmp_path):
    from agent_bus.embeddings.minilm import _check_weights
    from agent_bus.errors import EmbeddingsUnavailable

    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not the weights")
    with pytest.raises(EmbeddingsUnavailable):
        _check_weights(fake)


def test_the_shipped_weights_record_their_upstream_source_and_a_vector_ignores_its_batch():
    import numpy as np
    import onnxruntime as ort

    from agent_bus.embeddings.minilm import MODEL_PATH, get_minilm

    meta = ort.InferenceSession(str(MODEL_PATH), providers=["CPUExecutionProvider"]).get_modelmeta()
    assert meta.custom_metadata_map["source"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta.custom_metadata_map["source_model_safetensors_sha256"].startswith("53aa5117")
    model = get_minilm()
    text = "the invoice total is one cent more than its lines"
    alone = model.embed([text])[0]
    padded_with_others = model.embed([text, "short", "a much longer message " * 40])[0]
    assert float(np.dot(alone, padded_with_others)) > 0.9999
    similar, unrelated = model.embed(["the bill is a penny too high", "lunch with basil"])
    assert float(np.dot(alone, similar)) > float(np.dot(alone, unrelated)) + 0.2


def test_upgrading_to_v11_drops_the_bundled_models_old_vectors_and_queues_them_again(db_path):
    """Vectors of the old weights/text recipe would share no space with new queries."""
    from llm.embeddings_migrations import embeddings_migrations
    from sqlite_utils import Database

    bus = _bus(db_path)
    try:
        _post(bus, "one", "two")
        conn = bus.conn()
        embeddings_migrations.apply(Database(conn))  # llm's own tables, as llm makes them
        for name in (collection_name(DEFAULT_MODEL_ID), collection_name("someone-elses")):
            cid = conn.execute(
                "INSERT INTO collections(name, model) VALUES (?, 'm') RETURNING id", (name,)
            ).fetchone()[0]
            for mid in bus.read(
                lambda c: [r[0] for r in c.execute("SELECT message_id FROM messages")]
            ):
                conn.execute(
                    "INSERT INTO embeddings(collection_id, id, embedding) VALUES (?, ?, x'00')",
                    (cid, mid),
                )
    finally:
        bus.close()
    with sqlite3.connect(db_path) as conn:  # as version 10 left it
        conn.execute("UPDATE meta SET value = '10' WHERE key = 'schema_version'")
    bus = _bus(db_path)
    try:
        left = dict(
            bus.read(
                lambda c: c.execute(
                    "SELECT c.name, COUNT(e.id) FROM collections c "
                    "LEFT JOIN embeddings e ON e.collection_id = c.id GROUP BY c.name"
                ).fetchall()
            )
        )
        assert left == {collection_name(DEFAULT_MODEL_ID): 0, collection_name("someone-elses"): 2}
        default = bus.read(lambda c: store.collection_id(c, collection_name(DEFAULT_MODEL_ID)))
        assert bus.read(lambda c: store.missing_count(c, default)) == 2  # embedded again
    finally:
        bus.close()
