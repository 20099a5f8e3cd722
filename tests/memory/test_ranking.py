"""Weighted reciprocal-rank fusion of the tiers' candidate lists."""

from __future__ import annotations

from memory.models import Hit
from memory.ranking import fuse


def hits(source: str, *ids: str) -> list[Hit]:
    return [Hit(i, 1.0 / (n + 1), source) for n, i in enumerate(ids)]


def test_ids_in_several_lists_outrank_ids_in_one() -> None:
    fused = fuse({"fulltext": hits("fulltext", "a", "b", "c"),
                  "semantic": hits("semantic", "d", "e", "c"),
                  "graph": hits("graph", "f", "c")})
    assert fused[0].exchange_id == "c"
    assert set(fused[0].sources) == {"fulltext", "semantic", "graph"}
    # in two lists beats first place in one
    fused = fuse({"fulltext": hits("fulltext", "a", "b"), "semantic": hits("semantic", "x", "b")})
    assert fused[0].exchange_id == "b"


def test_order_within_one_list_is_kept() -> None:
    fused = fuse({"fulltext": hits("fulltext", "a", "b", "c", "d")})
    assert [f.exchange_id for f in fused] == ["a", "b", "c", "d"]
    assert fused[0].score > fused[1].score > fused[2].score > fused[3].score > 0


def test_weights_are_respected() -> None:
    lists = {"fulltext": hits("fulltext", "a"), "graph": hits("graph", "b")}
    assert [f.exchange_id for f in fuse(lists, weights={"fulltext": 1.0, "graph": 0.5})] == ["a", "b"]
    assert [f.exchange_id for f in fuse(lists, weights={"fulltext": 0.5, "graph": 1.0})] == ["b", "a"]
    scores = {f.exchange_id: f.score for f in fuse(lists, weights={"fulltext": 3.0, "graph": 1.0})}
    assert abs(scores["a"] / scores["b"] - 3.0) < 1e-9  # same rank, so the ratio is the weights'


def test_heavy_single_list_can_beat_two_light_ones() -> None:
    lists = {"fulltext": hits("fulltext", "a"), "recent": hits("recent", "b"), "graph": hits("graph", "b")}
    fused = fuse(lists, weights={"fulltext": 1.0, "recent": 0.2, "graph": 0.5})
    assert [f.exchange_id for f in fused] == ["a", "b"]


def test_default_weights_rank_recent_below_search() -> None:
    fused = fuse({"recent": hits("recent", "r"), "semantic": hits("semantic", "s")})
    assert [f.exchange_id for f in fused] == ["s", "r"]


def test_duplicates_within_a_list_count_once() -> None:
    once = fuse({"semantic": hits("semantic", "a", "b")})
    twice = fuse({"semantic": hits("semantic", "a", "a", "a", "b")})
    assert twice[0].exchange_id == "a"
    assert twice[0].score == once[0].score
    assert twice[0].sources == ("semantic",)
    assert {f.exchange_id for f in twice} == {"a", "b"}


def test_k_flattens_rank_differences() -> None:
    lists = {"fulltext": hits("fulltext", "a", "b")}
    sharp = fuse(lists, k=1)
    flat = fuse(lists, k=1000)
    assert sharp[0].score / sharp[1].score > flat[0].score / flat[1].score > 1


def test_empty_input_gives_nothing() -> None:
    assert fuse({}) == []
    assert fuse({"semantic": [], "graph": []}) == []


def test_time_decay_reorders_by_age_only_when_weighted() -> None:
    from datetime import UTC, datetime, timedelta

    from memory.context import RankedExchange
    from memory.models import Exchange
    from memory.ranking import aged

    now = datetime(2024, 6, 1, tzinfo=UTC)

    def ranked(i: str, days_old: int, score: float) -> RankedExchange:
        e = Exchange(id=i, user_id="u", guild_id=None, channel_id=None, user_message="m", bot_response="r",
                     timestamp=now - timedelta(days=days_old), metadata={})
        return RankedExchange(e, score, ("fulltext",))

    items = [ranked("old", 60, 1.0), ranked("new", 0, 0.8)]
    assert [r.exchange.id for r in aged(items, now, 0.0, 30)] == ["old", "new"]
    decayed = aged(items, now, 0.5, 30)  # old: 1.0 * (0.5 + 0.5 * 0.25) = 0.625; new: 0.8
    assert [(r.exchange.id, round(r.score, 3)) for r in decayed] == [("new", 0.8), ("old", 0.625)]
