"""messages_search: sanitiser, fusion, modes, fallbacks and errors (real bus files)."""

from __future__ import annotations

import pytest
from fake_embeddings import registered
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.client import Client

from agent_bus import embeddings
from agent_bus.bus import Bus
from agent_bus.embeddings import service as emb
from agent_bus.embeddings.models import forget
from agent_bus.errors import EmbeddingsUnavailable, InvalidArgument
from agent_bus.mcp.server import build_server
from agent_bus.models import OutboxItem
from agent_bus.search import fts
from agent_bus.search.hybrid import rrf
from agent_bus.search.service import fts_results
from agent_bus.settings import load_settings

CORPUS = [
    "Set retry_backoff_ms to 250 and double it after each failed attempt.",
    "The migration in src/store/schema.py adds the embedding_jobs table.",
    "Lunch order: two pizzas, one without basil.",
    "ERR_DB_LOCKED means another writer held the lock for too long.",
    "We decided to wait longer after each failure before trying again.",
]

# Query -> the CORPUS messages it finds: FTS syntax in user text is words to look for, or
# nothing, never an error.
HOSTILE = [
    ('"', set()),
    ('"unbalanced', set()),
    ("AND", {0}),  # only a stop-word: kept, and "and" is a word of message 0
    ("OR NOT", set()),
    ("NEAR(a b, 3)", set()),
    ("a* ^b c:d", set()),
    ("((( )))", set()),
    ("col:value", set()),
    ("🚀🔥", set()),
    ("the of and", {0, 1, 3}),
    ("x" * 10_000, set()),
    ("- + * / \\", set()),
    ("'; DROP TABLE messages; --", {1}),  # "table" is a word of message 1
    ("retry_backoff_ms AND (src/store/schema.py OR", {0, 1}),
]


@pytest.fixture
def bus(db_path):
    b = Bus(load_settings(db=db_path))
    topic, _ = b.topic_create("search")
    b.post(topic.topic_id, "tester", [OutboxItem(content_markdown=t) for t in CORPUS])
    b.topic = topic  # type: ignore[attr-defined]
    try:
        yield b
    finally:
        b.close()


def _contents(results):
    return [r.content_markdown for r in results]


@given(st.text(max_size=300))
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_query_string_gives_results_or_nothing_never_an_fts_error(bus, query):
    results = bus.read(
        lambda c: fts_results(c, query, topic_id=None, limit=5, include_content=True)
    )
    assert len(results) <= 5
    assert len({r.message_id for r in results}) == len(results)  # each message once
    assert all(r.content_markdown in CORPUS for r in results)


# Words of exactly one CORPUS message each, and the message's index.
KNOWN_WORDS = {"pizzas": 2, "basil": 2, "migration": 1, "retry_backoff_ms": 0, "ERR_DB_LOCKED": 3}


@given(
    st.sampled_from(sorted(KNOWN_WORDS)),
    st.text(max_size=200),
)
@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_a_word_is_found_whatever_hostile_text_follows_it(bus, word, junk):
    results = bus.read(
        lambda c: fts_results(c, f"{word} {junk}", topic_id=None, limit=5, include_content=True)
    )
    assert CORPUS[KNOWN_WORDS[word]] in [r.content_markdown for r in results]


@given(st.text(min_size=1, max_size=200).filter(lambda s: s.strip() and "\x00" not in s))
@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_query_through_the_service_in_fts_mode_never_raises(bus, query):
    results, warnings = bus.search(query, mode="fts", limit=3, include_content=True)
    assert len(results) <= 3 and warnings == []
    assert all(r.content_markdown in CORPUS and r.fts_rank is not None for r in results)


@pytest.mark.parametrize(("query", "expected"), HOSTILE, ids=lambda v: repr(v)[:30])
def test_hostile_queries_find_exactly_the_messages_with_their_words(bus, query, expected):
    results, warnings = bus.search(query, mode="fts", include_content=True)
    assert {CORPUS.index(r.content_markdown) for r in results} == expected
    assert warnings == []


def test_identifiers_and_their_parts_are_found_by_fts(bus):
    for query in ("retry_backoff_ms", "backoff", "src/store/schema.py", "err_db_locked"):
        results, _ = bus.search(query, mode="fts", include_content=True)
        assert results, query
        assert query.split("/")[-1].split(".")[0].lower() in results[0].content_markdown.lower()


def test_stop_words_are_dropped_unless_nothing_else_is_left():
    assert fts.phrases("how is the retry") == ['"retry"']
    assert fts.phrases("the of") == ['"the"', '"of"']
    assert fts.phrases('AND NEAR(x "y') == ['"NEAR x"', '"y"']


def test_empty_query_is_invalid_argument(bus):
    with pytest.raises(InvalidArgument) as exc:
        bus.search("   ")
    assert exc.value.code == "INVALID_ARGUMENT"


def test_rrf_ranks_documents_found_by_both_lists_first_once_each():
    fused = rrf([["a", "b", "c"], ["c", "d", "a"]])
    ids = [d for d, _ in fused]
    assert ids[:2] == ["a", "c"]
    assert sorted(ids) == ["a", "b", "c", "d"]
    assert len(ids) == len(set(ids))


def test_hybrid_fuses_fts_and_semantic_one_hit_per_message_on_a_fixed_corpus(bus):
    with registered():
        emb.index(bus, model="test-words")
        results, warnings = bus.search(
            "retry_backoff_ms failed attempt", mode="hybrid", model="test-words", limit=5
        )
    assert warnings == []
    ids = [r.message_id for r in results]
    assert len(ids) == len(set(ids))
    top = results[0]
    assert "retry_backoff_ms" in top.snippet and top.fts_rank is not None
    assert top.semantic_score is not None and top.semantic_score > 0.3
    assert all(r.rank is not None for r in results)
    assert [r.rank for r in results] == sorted((r.rank for r in results), reverse=True)


def test_semantic_mode_ranks_by_similarity_and_snippets_show_the_matching_chunk(bus):
    with registered():
        emb.index(bus, model="test-words")
        results, _ = bus.search("pizzas without basil", mode="semantic", model="test-words")
    assert results[0].snippet.startswith("Lunch order")
    assert results[0].fts_rank is None
    ranks = [r.rank for r in results]
    assert ranks == sorted(ranks, reverse=True)
    # The rank adds the thread-neighbour term; semantic_score stays the cosine itself.
    assert all(-1.0 <= r.semantic_score <= 1.0 + 1e-6 for r in results)
    assert any(r.rank != r.semantic_score for r in results)


def test_topic_filter_applies_to_semantic_hits(bus):
    other, _ = bus.topic_create("elsewhere")
    bus.post(other.topic_id, "x", [OutboxItem(content_markdown="pizzas without basil again")])
    with registered():
        emb.index(bus, model="test-words")
        results, _ = bus.search(
            "pizzas basil", mode="semantic", model="test-words", topic_id=other.topic_id
        )
    assert [r.topic_id for r in results] == [other.topic_id]


def test_unknown_model_is_invalid_argument_naming_installed_models(bus):
    with registered(), pytest.raises(InvalidArgument) as exc:
        bus.search("anything", mode="semantic", model="no-such-model")
    assert exc.value.code == "INVALID_ARGUMENT"
    assert "test-words" in exc.value.details["installed"]
    assert "test-words" in exc.value.message


@pytest.fixture
def no_default_model(monkeypatch):
    """The `semantic` extra as if it were not installed."""
    monkeypatch.setattr(
        embeddings, "DEFAULT_MODEL_MODULES", ("agent_bus_no_such_module_for_tests",)
    )
    forget(embeddings.DEFAULT_MODEL_ID)
    yield
    forget(embeddings.DEFAULT_MODEL_ID)


def test_semantic_without_a_model_says_how_to_enable_it(bus, no_default_model):
    with pytest.raises(EmbeddingsUnavailable) as exc:
        bus.search("retries", mode="semantic")
    assert exc.value.code == "EMBEDDINGS_UNAVAILABLE"
    assert "agent-bus[semantic]" in exc.value.message


def test_hybrid_without_a_model_answers_from_fts_and_says_so(bus, no_default_model):
    results, warnings = bus.search("retry_backoff_ms")
    assert results and "retry_backoff_ms" in results[0].snippet
    assert [w.code for w in warnings] == ["SEMANTIC_UNAVAILABLE"]
    assert "agent-bus[semantic]" in warnings[0].message


def test_semantic_before_anything_is_indexed_warns_and_returns_nothing(bus):
    with registered():
        results, warnings = bus.search("pizza", mode="semantic", model="test-words")
    assert results == []
    assert [w.code for w in warnings] == ["EMBEDDINGS_NOT_INDEXED"]


def test_partially_indexed_bus_says_how_many_messages_are_queued(db_path, monkeypatch):
    monkeypatch.setenv("AGENT_BUS_EMBEDDING_MODEL", "test-words")
    b = Bus(load_settings(db=db_path))
    try:
        topic, _ = b.topic_create("t")
        b.post(topic.topic_id, "a", [OutboxItem(content_markdown="first message")])
        with registered():
            emb.index(b)
            b.post(topic.topic_id, "a", [OutboxItem(content_markdown="second message")])
            results, warnings = b.search("message", mode="semantic")
        assert [r.content_markdown for r in results] == [None]
        assert [w.code for w in warnings] == ["EMBEDDINGS_PARTIAL"]
        assert warnings[0].context["pending"] == 1
    finally:
        b.close()


@pytest.mark.anyio
async def test_messages_search_tool_notes_the_fts_fallback_in_its_text(db_path, no_default_model):
    server = build_server(load_settings(db=db_path, embeddings_autoindex=False))
    bus = server.bus  # type: ignore[attr-defined]
    topic, _ = bus.topic_create("tool")
    bus.post(topic.topic_id, "a", [OutboxItem(content_markdown="retry_backoff_ms is 250")])
    async with Client(server) as client:
        result = await client.call_tool("messages_search", {"query": "retry_backoff_ms"})
        assert not result.is_error
        data = result.structured_content
        assert data["count"] == 1 and data["warnings"][0]["code"] == "SEMANTIC_UNAVAILABLE"
        text = result.content[0].text
        assert "full-text search only" in text and "agent-bus[semantic]" in text
        failed = await client.call_tool("messages_search", {"query": "retry", "mode": "semantic"})
        assert failed.is_error
        assert failed.structured_content["error"]["code"] == "EMBEDDINGS_UNAVAILABLE"
    bus.close()


def test_full_text_counts_fully_for_identifier_queries_and_less_for_plain_words():
    from agent_bus.search.hybrid import PROSE_FTS_WEIGHT, fts_weight, rrf

    for query in (
        "retry_backoff_ms",
        "src/store/schema.py",
        "ERR_DB_LOCKED",
        "`sync`",
        "getUserById",
        "--no-open",
        "issue 482",
        "v2.8 release",
        "Retry-After",
        "WAL checkpoint",
    ):
        assert fts_weight(query) == 1.0, query
    for query in (
        "how long do we pause between attempts",
        "who decided about the database",
        "why does re-sending a sign-in request fail",
        "the GUI freezes when the machine runs out of RAM",
    ):
        assert fts_weight(query) == PROSE_FTS_WEIGHT, query
    fused = rrf([["a", "b"], ["b", "c"]], weights=(0.25, 1.0))
    assert [doc for doc, _ in fused] == ["b", "c", "a"]


def test_common_phrases_are_pruned_from_or_queries_rarest_first_but_not_from_and(
    db_path, monkeypatch
):
    monkeypatch.setattr(fts, "PRUNE_BUDGET_DOCS", 40)
    b = Bus(load_settings(db=db_path, embeddings_autoindex=False))
    try:
        topic, _ = b.topic_create("pruning")
        items = [OutboxItem(content_markdown=f"status update number {i}") for i in range(60)]
        items.append(OutboxItem(content_markdown="status update: the kill switch flipped"))
        b.post(topic.topic_id, "tester", items)
        conn = b.db.conn()
        assert fts.match_or_pruned(conn, "status switch kill") == '"switch" OR "kill"'
        assert fts.match_all("status switch") == '"status" AND "switch"'
        # Only common phrases: the rarest one stays, so the query still means something.
        assert fts.match_or_pruned(conn, "status update") in ('"status"', '"update"')
        results = fts_results(
            conn, "kill switch status", topic_id=None, limit=5, include_content=False
        )
        assert "kill switch" in results[0].snippet.replace("**", "")
    finally:
        b.close()


def test_messages_are_embedded_with_their_topic_type_and_the_line_they_answer(db_path):
    from agent_bus.embeddings.indexer import embedding_text
    from agent_bus.store import embeddings as estore

    b = Bus(load_settings(db=db_path, embeddings_autoindex=False))
    try:
        topic, _ = b.topic_create("release-1.4")
        (asked,) = b.post(
            topic.topic_id,
            "lead",
            [OutboxItem(content_markdown="Should we tag today?\nDetails below.")],
        )
        b.post(
            topic.topic_id,
            "dev",
            [
                OutboxItem(
                    content_markdown="yes, ship it",
                    message_type="answer",
                    reply_to=asked.message.message_id,
                )
            ],
        )
        jobs = b.db.read(lambda c: estore.due_jobs(c, 1e12, 10))
        texts = {j.content: embedding_text(j, j.content) for j in jobs}
        assert (
            texts["yes, ship it"] == "release-1.4 · answer · re: Should we tag today?\nyes, ship it"
        )
        assert texts["Should we tag today?\nDetails below."].startswith("release-1.4\n")
    finally:
        b.close()


@pytest.mark.anyio
async def test_messages_search_filters_by_sender_type_and_time_on_both_sides(db_path):
    server = build_server(load_settings(db=db_path, embeddings_autoindex=False))
    bus = server.bus  # type: ignore[attr-defined]
    topic, _ = bus.topic_create("filters")
    bus.post(topic.topic_id, "alice", [OutboxItem(content_markdown="retry policy: wait 2 s")])
    bus.post(
        topic.topic_id,
        "bob",
        [OutboxItem(content_markdown="retry policy decided: 5 s", message_type="decision")],
    )
    bus.post(topic.topic_id, "bob", [OutboxItem(content_markdown="retry policy? no idea")])
    every = bus.search("retry policy", mode="fts")[0]
    stamps = sorted(r.created_at for r in every)
    async with Client(server) as client:

        async def senders(**arguments) -> list[tuple[str, str]]:
            result = await client.call_tool(
                "messages_search", {"query": "retry policy", "mode": "fts", **arguments}
            )
            assert not result.is_error, result.content[0].text
            return sorted(
                (r["sender"], r["message_type"]) for r in result.structured_content["results"]
            )

        assert await senders(sender="bob") == [("bob", "decision"), ("bob", "message")]
        assert await senders(message_type="decision") == [("bob", "decision")]
        assert await senders(sender="alice", message_type="decision") == []
        assert len(await senders(created_after=stamps[0])) == 2
        assert len(await senders(created_before="2000-01-01")) == 0
        assert len(await senders(created_after="2000-01-01T00:00:00Z")) == 3
        assert len(await senders(created_after="1h")) == 3  # a duration before now
        assert len(await senders(created_before="90m")) == 0
        bad = await client.call_tool(
            "messages_search", {"query": "retry", "created_after": "last tuesday"}
        )
        assert bad.is_error
        assert bad.structured_content["error"]["code"] == "INVALID_ARGUMENT"
    with registered():
        emb.index(bus, model="test-words")
        hits, _ = bus.search("retry policy", mode="semantic", model="test-words", sender="alice")
        fused, _ = bus.search(
            "retry policy", mode="hybrid", model="test-words", message_type="decision"
        )
    assert [r.sender for r in hits] == ["alice"]
    assert [r.message_type for r in fused] == ["decision"]
    bus.close()


def test_a_paraphrase_of_a_few_sentences_finds_the_passage_and_shows_it(db_path):
    long_report = (
        "The nightly build ran on the new runners. It compiled every package in the "
        "monorepo. The integration suite passed on all three platforms. "
        "Afterwards the team met in the kitchen. Lunch was pizza from the place downstairs. "
        "Everyone agreed the basil was missing."
    )
    b = Bus(load_settings(db=db_path, embeddings_autoindex=False, embed_service=False))
    try:
        topic, _ = b.topic_create("ci-runners")
        b.post(
            topic.topic_id,
            "ops",
            [
                OutboxItem(content_markdown=long_report),
                OutboxItem(content_markdown="Disk usage on the runners is at 40 percent."),
            ],
        )
        emb.index(b)
        found, _ = b.search("the team had pizza for lunch", mode="semantic", limit=1)
    finally:
        b.close()
    assert found[0].snippet.startswith("Afterwards the team met in the kitchen. Lunch was")


def test_sign_bit_candidates_then_exact_scores_give_the_exact_ranking_when_all_fit(
    bus, monkeypatch
):
    from agent_bus.search import semantic

    with registered():
        emb.index(bus, model="test-words")
        exact, _ = bus.search("pizzas without basil", mode="semantic", model="test-words")
        monkeypatch.setattr(semantic, "EXACT_BELOW", 0)
        pruned, _ = bus.search("pizzas without basil", mode="semantic", model="test-words")
        monkeypatch.setattr(semantic, "CANDIDATES", 2)
        few, _ = bus.search("pizzas without basil", mode="semantic", model="test-words", limit=1)
    assert [r.message_id for r in pruned] == [r.message_id for r in exact]
    assert [r.semantic_score for r in pruned] == [r.semantic_score for r in exact]
    assert few[0].message_id == exact[0].message_id


# A paraphrased question that matches the report opening a thread, not the answer after it.
THREAD = [
    "Friday's deploy stopped halfway through the rollout and paged on-call.",
    "Root cause: the new image was built without the CA bundle, so TLS to Postgres broke.",
]
LATER = "Fixed in the Dockerfile; the rollout finished on Monday."
DISTRACTOR = "At the end of the week we break for the summer holiday."
WHY = "why did the release break at the end of the week"


def _real_model_bus(db_path, thread):
    b = Bus(load_settings(db=db_path, embeddings_autoindex=False, embed_service=False))
    deploys, _ = b.topic_create("deploys")
    social, _ = b.topic_create("social")
    b.post(deploys.topic_id, "ops", [OutboxItem(content_markdown=t) for t in thread])
    b.post(social.topic_id, "hr", [OutboxItem(content_markdown=DISTRACTOR)])
    emb.index(b)
    return b, deploys


def _order(results):
    return [r.content_markdown for r in results]


def test_a_message_is_lifted_by_the_thread_around_it(db_path, monkeypatch):
    from agent_bus.search import semantic

    b, _ = _real_model_bus(db_path, [*THREAD, LATER])
    try:
        found, _ = b.search(WHY, mode="semantic", limit=4, include_content=True)
        monkeypatch.setattr(semantic, "NEIGHBOUR_WEIGHT", 0.0)
        alone, _ = b.search(WHY, mode="semantic", limit=4, include_content=True)
    finally:
        b.close()
    # Alone, the holiday line is nearest the question's words ("end of the week", "break");
    # the deploy report gains from the root cause and the fix that follow it, and the
    # holiday line, alone in its topic, gains nothing.
    assert _order(alone) == [DISTRACTOR, THREAD[0], LATER, THREAD[1]]
    assert _order(found) == [THREAD[0], DISTRACTOR, LATER, THREAD[1]]
    answer = next(r for r in found if r.content_markdown == THREAD[1])
    assert answer.rank > answer.semantic_score  # the cosine itself, shown unchanged
    holiday = next(r for r in found if r.content_markdown == DISTRACTOR)
    assert holiday.rank == pytest.approx(holiday.semantic_score)


def test_neighbours_of_messages_embedded_later_match_a_fresh_index(db_path):
    b, deploys = _real_model_bus(db_path, THREAD)
    try:
        b.search(WHY, mode="semantic", limit=4)  # the vector cache now holds the first rows
        b.post(deploys.topic_id, "ops", [OutboxItem(content_markdown=LATER)])
        emb.index(b)
        grown, _ = b.search(WHY, mode="semantic", limit=4, include_content=True)
    finally:
        b.close()
    fresh_bus = Bus(load_settings(db=db_path, embeddings_autoindex=False, embed_service=False))
    try:
        fresh, _ = fresh_bus.search(WHY, mode="semantic", limit=4, include_content=True)
    finally:
        fresh_bus.close()
    assert _order(grown) == _order(fresh) and len(fresh) == 4
    assert [r.rank for r in grown] == pytest.approx([r.rank for r in fresh], abs=1e-6)
