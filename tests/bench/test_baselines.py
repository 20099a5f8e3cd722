"""Baselines pack whole exchanges under the budget, in their own rank order."""

from __future__ import annotations

import pytest

from bench.baselines import Baselines, pack
from bench.generator import Dataset, GenConfig, generate
from memory.embedding import OnnxMiniLMEmbedder
from memory.tokens import count_tokens

SMALL = GenConfig(
    users=1,
    exchanges_per_user=80,
    sessions=(8, 10),
    facts={"single": 2, "multi": 1, "update": 1, "temporal": 1, "distractor": 1},
)


@pytest.fixture(scope="module")
def data() -> tuple[Dataset, Baselines]:
    dataset = generate(SMALL)
    return dataset, Baselines(dataset, OnnxMiniLMEmbedder())


@pytest.mark.parametrize("budget", [60, 500, 1000])
def test_pack_stays_under_budget_with_whole_exchanges(data: tuple[Dataset, Baselines], budget: int) -> None:
    dataset, _ = data
    exchanges = dataset.user_exchanges(dataset.users[0])
    packed = pack(exchanges, budget)
    assert packed.tokens == count_tokens(packed.text) <= budget
    lines = packed.text.split("\n")
    by_id = dataset.by_id()
    assert lines == [by_id[i].formatted() for i in packed.ids]


def test_recent_baseline_packs_the_newest(data: tuple[Dataset, Baselines]) -> None:
    dataset, baselines = data
    q = dataset.questions[0]
    packed = baselines.context("recent", q, 400)
    scope = dataset.scope_exchanges(q.user_id, q.guild_id)
    newest = sorted(scope, key=lambda e: e.timestamp, reverse=True)[: len(packed.ids)]
    assert set(packed.ids) == {e.id for e in newest}


def test_rankers_stay_in_the_question_scope_and_find_exact_words(data: tuple[Dataset, Baselines]) -> None:
    dataset, baselines = data
    for q in dataset.questions:
        scope = {e.id for e in dataset.scope_exchanges(q.user_id, q.guild_id)}
        for name in ("recent", "bm25", "dense"):
            assert {e.id for e in baselines.rank(name, q)} <= scope
    multi = next(q for q in dataset.questions if q.qtype == "multi")
    # the multi question names the first statement's hobby/book/job: BM25 ranks that statement high
    top = [e.id for e in baselines.rank("bm25", multi)[:5]]
    assert multi.evidence_ids[0] in top


def test_dense_ranks_a_paraphrase_above_filler(data: tuple[Dataset, Baselines]) -> None:
    dataset, baselines = data
    q = next(q for q in dataset.questions if q.qtype == "single")
    ranked = [e.id for e in baselines.rank("dense", q)]
    assert ranked.index(q.evidence_ids[0]) < len(ranked) // 4
