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
    assert {q.qtype for q in dataset.questions} == {
        "single", "multi", "update", "temporal", "distractor", "changed-fact", "profile"
    }


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


def test_self_statements_are_asked_about_in_dms_with_the_stating_exchange_as_evidence(
    dataset: Dataset,
) -> None:
    by_id = dataset.by_id()
    for user in dataset.users:
        mine = [q for q in dataset.questions if q.user_id == user and q.qtype in ("changed-fact", "profile")]
        assert sorted(q.kind for q in mine) == [
            "home-before", "home-now", "name", "pet", "work-before", "work-now"
        ]
        for q in mine:
            (eid,) = q.evidence_ids
            e = by_id[eid]
            assert q.guild_id is None and (e.user_id, e.guild_id) == (user, None)
            assert e.needle == q.needles[0] and e.user_message.startswith(e.needle)
            assert e.needle.endswith(q.answer)  # "I moved to Oslo" answers "Oslo"


def test_a_changed_fact_is_stated_first_then_replaced(dataset: Dataset) -> None:
    by_id = dataset.by_id()
    for user in dataset.users:
        asked = {q.kind: q for q in dataset.questions if q.user_id == user and q.qtype == "changed-fact"}
        for key, old_form, new_form in (("home", "I live in ", "I moved to "),
                                        ("work", "I work as a ", "I now work as a ")):
            now, before = asked[f"{key}-now"], asked[f"{key}-before"]
            newer, older = by_id[now.evidence_ids[0]], by_id[before.evidence_ids[0]]
            assert now.superseded_ids == (older.id,) and before.superseded_ids == ()
            assert older.timestamp < newer.timestamp and older.session < newer.session
            assert older.needle == old_form + before.answer and newer.needle == new_form + now.answer
            assert now.answer != before.answer


def test_self_statements_are_six_per_user_in_time_order_under_any_namespace() -> None:
    """Six statements per user, interleaved in time order; the namespace changes only ids."""
    full = generate(SMALL)
    said = {e.id for q in full.questions if q.qtype in ("changed-fact", "profile") for e in
            (full.by_id()[i] for i in q.evidence_ids + q.superseded_ids)}
    rest = [e for e in full.exchanges if e.id not in said]
    assert len(full.exchanges) - len(rest) == 6 * len(full.users)  # name, pet, two homes, two jobs
    for user in full.users:
        mine = full.user_exchanges(user)
        assert [e.timestamp for e in mine] == sorted(e.timestamp for e in mine)
    # the same users with another namespace: texts equal, ids disjoint, self-statements included
    other = generate(GenConfig(**{**{f: getattr(SMALL, f) for f in SMALL.__dataclass_fields__},
                                  "namespace": "y"}))
    assert [e.user_message for e in other.exchanges] == [e.user_message for e in full.exchanges]
    assert not {e.id for e in other.exchanges} & {e.id for e in full.exchanges}
