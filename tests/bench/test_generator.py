"""The generator is deterministic and its evidence bookkeeping is right."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from bench.generator import Dataset, GenConfig, generate

SMALL = GenConfig(
    users=2,
    exchanges_per_user=120,
    sessions=(12, 16),
    facts={"single": 3, "multi": 2, "update": 2, "temporal": 2, "distractor": 2},
)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate()


def test_same_config_same_dataset() -> None:
    assert generate(SMALL) == generate(SMALL)


def test_seed_changes_the_data_and_namespace_only_the_ids() -> None:
    a, b = (
        generate(SMALL),
        generate(
            GenConfig(**{**SMALL.__dict__, "seed": 8})
            if False
            else GenConfig(users=2, exchanges_per_user=120, sessions=(12, 16), facts=SMALL.facts, seed=8)
        ),
    )
    assert [e.user_message for e in a.exchanges] != [e.user_message for e in b.exchanges]
    c = generate(
        GenConfig(users=2, exchanges_per_user=120, sessions=(12, 16), facts=SMALL.facts, namespace="x")
    )
    assert [e.user_message for e in a.exchanges] == [e.user_message for e in c.exchanges]
    assert not {e.id for e in a.exchanges} & {e.id for e in c.exchanges}


def test_default_size_is_long_multi_session_history(dataset: Dataset) -> None:
    assert len(dataset.users) == 5
    for user in dataset.users:
        exchanges = dataset.user_exchanges(user)
        assert len(exchanges) >= 300
        assert len({e.session for e in exchanges}) >= 24
        assert exchanges[-1].timestamp - exchanges[0].timestamp > timedelta(days=90)
        assert [e.timestamp for e in exchanges] == sorted(e.timestamp for e in exchanges)
        assert {e.guild_id for e in exchanges} - {None}, "every user also talks in a guild"
    assert len({e.id for e in dataset.exchanges}) == len(dataset.exchanges)
    assert {q.qtype for q in dataset.questions} == {"single", "multi", "update", "temporal", "distractor"}


def test_evidence_is_in_the_question_scope_and_holds_the_needle(dataset: Dataset) -> None:
    by_id = dataset.by_id()
    for q in dataset.questions:
        assert len(q.evidence_ids) == len(q.needles) == (2 if q.qtype == "multi" else 1)
        for eid, needle in zip(q.evidence_ids, q.needles, strict=True):
            e = by_id[eid]
            assert (e.user_id, e.guild_id) == (q.user_id, q.guild_id)
            assert e.role == "evidence"
            assert needle and needle in e.user_message


def test_multi_evidence_spans_two_sessions_in_order(dataset: Dataset) -> None:
    by_id = dataset.by_id()
    for q in (q for q in dataset.questions if q.qtype == "multi"):
        first, second = (by_id[i] for i in q.evidence_ids)
        assert first.session != second.session
        assert first.timestamp < second.timestamp
        assert q.answer in second.user_message


def test_update_evidence_is_the_newer_statement(dataset: Dataset) -> None:
    by_id = dataset.by_id()
    for q in (q for q in dataset.questions if q.qtype == "update"):
        newer = by_id[q.evidence_ids[0]]
        assert q.answer in newer.user_message
        assert len(q.superseded_ids) == 1
        older = by_id[q.superseded_ids[0]]
        assert older.role == "stale" and (older.user_id, older.guild_id) == (q.user_id, q.guild_id)
        assert older.timestamp < newer.timestamp
        assert q.answer not in older.user_message


def test_temporal_answer_is_the_event_date(dataset: Dataset) -> None:
    by_id = dataset.by_id()
    for q in (q for q in dataset.questions if q.qtype == "temporal"):
        e = by_id[q.evidence_ids[0]]
        offset = 1 if "yesterday" in e.needle or "last night" in e.needle else 0
        assert q.answer == f"{e.timestamp - timedelta(days=offset):%Y-%m-%d}"


def test_answers_appear_nowhere_else_in_the_scope(dataset: Dataset) -> None:
    for q in dataset.questions:
        if q.qtype == "temporal":
            continue
        others = [
            e
            for e in dataset.scope_exchanges(q.user_id, q.guild_id)
            if e.id not in q.evidence_ids and e.role != "stale"
        ]
        leaks = [e.user_message for e in others if q.answer.casefold() in e.formatted().casefold()]
        assert not leaks, (q.text, q.answer, leaks)


def test_distractor_questions_share_words_with_distractors_not_evidence(dataset: Dataset) -> None:
    stop = {
        "what",
        "which",
        "did",
        "do",
        "i",
        "my",
        "the",
        "to",
        "with",
        "a",
        "is",
        "where",
        "we",
        "our",
        "go",
        "on",
        "i've",
        "what's",
        "seen",
        "this",
    }
    for q in (q for q in dataset.questions if q.qtype == "distractor"):
        words = set(re.findall(r"[a-z']+", q.text.lower())) - stop
        distractors = [e for e in dataset.scope_exchanges(q.user_id, q.guild_id) if e.role == "distractor"]
        overlap = [e for e in distractors if words & set(re.findall(r"[a-z']+", e.user_message.lower()))]
        assert overlap, q.text
