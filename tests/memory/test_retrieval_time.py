"""A date named in the query ("in July 2024") brings that time's exchanges into the context."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from memory import HierarchicalMemoryManager


async def test_month_in_the_query_finds_that_month(memory: HierarchicalMemoryManager,
                                                   uid: Callable[[str], str]) -> None:
    user = uid("cook")
    for month in range(1, 13):  # the same words every month: only the date tells them apart
        await memory.store_conversation(user, f"I cooked a new pasta recipe tonight, number {month}.",
                                        "Sounds tasty!", timestamp=datetime(2024, month, 10, 19, tzinfo=UTC))
    await memory.flush()
    ctx = await memory.get_conversation_context(user, "What pasta did I cook in July 2024?", max_tokens=120)
    text = ctx.to_context_string(120)
    assert "[2024-07-10]\nUser: I cooked a new pasta recipe tonight, number 7." in text
    assert "time" in ctx.relevant[0].sources
    plain = await memory.get_conversation_context(user, "What pasta did I cook?", max_tokens=120)
    assert all("time" not in r.sources for r in plain.relevant)
