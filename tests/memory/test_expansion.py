"""The second retrieval round (memory.expansion): the best hits lead to the evidence the query misses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from memory import HierarchicalMemoryManager
from memory.expansion import feedback_words
from memory.launcher import Addresses
from memory.models import Exchange, Scope
from tests import servers
from tests.memory.conftest import ManagerFactory, settings_for

DAY = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
FILLER = ["I repainted the kitchen cabinets green.", "My cat knocked a plant off the shelf.",
          "The train to work was late again.", "I finally finished that long novel.",
          "We tried a new curry place downtown.", "My knee hurts after football."]


async def _wedding(memory: HierarchicalMemoryManager, user: str) -> None:
    """Filler on other days, then the wedding told over two exchanges two minutes apart, then a
    visit weeks later that shares words with the second exchange only."""
    for i, text in enumerate(FILLER):
        await memory.store_conversation(user, text, "Oh, I see.", timestamp=DAY - timedelta(days=10 - i),
                                        exchange_id=f"{user}-f{i}")
    await memory.store_conversation(user, "My sister Ines got married on Saturday!", "Congratulations to her!",
                                    timestamp=DAY, exchange_id=f"{user}-seed")
    await memory.store_conversation(user, "The ceremony was held at the old lighthouse in Brest.",
                                    "What a place for it.", timestamp=DAY + timedelta(minutes=2),
                                    exchange_id=f"{user}-next")
    await memory.store_conversation(user, "I bought a red bicycle.", "Enjoy the rides.",
                                    timestamp=DAY + timedelta(days=1), exchange_id=f"{user}-later")
    await memory.store_conversation(user, "We went back to Brest and climbed up the lighthouse.",
                                    "The view must be great.", timestamp=DAY + timedelta(days=30),
                                    exchange_id=f"{user}-visit")
    await memory.flush()


def _sources(ctx: object, exchange_id: str) -> tuple[str, ...]:
    for r in ctx.relevant:  # type: ignore[attr-defined]
        if r.exchange.id == exchange_id:
            return tuple(r.sources)
    return ()


async def _manager(make_manager: ManagerFactory, bundled: Addresses, tmp_path: Path,
                   **retrieval: object) -> HierarchicalMemoryManager:
    own = replace(bundled, postgres_dsn=await servers.create_database(bundled.postgres_dsn))
    return await make_manager(settings_for(own, tmp_path, retrieval=retrieval))


async def test_the_exchange_after_the_best_hit_is_a_neighbour(make_manager: ManagerFactory, bundled: Addresses,
                                                              tmp_path: Path, uid: Callable[[str], str]) -> None:
    memory = await _manager(make_manager, bundled, tmp_path, expand_seeds=1, weight_neighbours=0.5)
    user = uid("wed")
    await _wedding(memory, user)
    ctx = await memory.get_conversation_context(user, "When did Ines get married?", max_tokens=400)
    assert ctx.relevant[0].exchange.id == f"{user}-seed"
    assert "neighbours" in _sources(ctx, f"{user}-next")
    assert "neighbours" not in _sources(ctx, f"{user}-later")  # the next day: another sitting
    assert "old lighthouse in Brest" in ctx.to_context_string(400)
    assert ctx.tiers["expansion"].status == "ok" and ctx.tiers["expansion"].hits >= 1

    memory.settings.retrieval.expand_seeds = 0  # the round off: nobody is a neighbour
    plain = await memory.get_conversation_context(user, "When did Ines get married?", max_tokens=400)
    assert all("neighbours" not in r.sources for r in plain.relevant)
    assert "expansion" not in plain.tiers


async def test_feedback_query_finds_what_shares_words_with_the_hits_only(
        make_manager: ManagerFactory, bundled: Addresses, tmp_path: Path, uid: Callable[[str], str]) -> None:
    memory = await _manager(make_manager, bundled, tmp_path, expand_seeds=2, weight_neighbours=0.0,
                            weight_feedback=0.5)
    user = uid("fb")
    await _wedding(memory, user)
    ctx = await memory.get_conversation_context(user, "Where was the ceremony?", max_tokens=400)
    assert ctx.relevant[0].exchange.id == f"{user}-next"
    visit = _sources(ctx, f"{user}-visit")
    assert "feedback" in visit and "fulltext" not in visit  # no query word, but "Brest" and "lighthouse"
    assert "climbed up the lighthouse" in ctx.to_context_string(400)


async def test_neighbours_stay_in_the_scope_and_the_sitting(memory: HierarchicalMemoryManager,
                                                            uid: Callable[[str], str]) -> None:
    user, other = uid("n-user"), uid("n-other")
    times = [DAY, DAY + timedelta(minutes=5), DAY + timedelta(minutes=9), DAY + timedelta(hours=5)]
    for i, ts in enumerate(times):
        await memory.store_conversation(user, f"message {i}", "ok", timestamp=ts, exchange_id=f"{user}-{i}")
    await memory.store_conversation(other, "between", "ok", timestamp=DAY + timedelta(minutes=7),
                                    exchange_id=f"{other}-x")
    await memory.store_conversation(user, "in a guild", "ok", guild_id="g1", timestamp=DAY + timedelta(minutes=6),
                                    exchange_id=f"{user}-guild")
    rows = await memory.t.archive.neighbours(Scope.of(user), [f"{user}-1", f"{user}-3"], 2, timedelta(hours=1))
    assert [(anchor, e.id, step) for anchor, e, step in rows] == [
        (f"{user}-1", f"{user}-0", 1), (f"{user}-1", f"{user}-2", 1)]  # {user}-3: nobody within the hour
    assert all(isinstance(e, Exchange) and e.user_id == user for _, e, _ in rows)
    assert await memory.t.archive.neighbours(Scope.of(other), [f"{user}-1"], 2, timedelta(hours=1)) == []


def test_feedback_words_prefer_words_the_seeds_share() -> None:
    said = [("We hiked the Kjerag trail with Tove.", "Sounds fun."), ("Tove and I camped below Kjerag.", "Cold?"),
            ("Rain all day.", "Stay dry.")]
    seeds = [Exchange(id=f"x{i}", user_id="u", guild_id=None, channel_id=None, user_message=text,
                      bot_response=reply, timestamp=DAY) for i, (text, reply) in enumerate(said)]
    assert feedback_words("Who did I go hiking with?", seeds, 3) == ["kjerag", "tove", "trail"]
