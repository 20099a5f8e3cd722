"""The model's memory tools for one reply: ``remember_fact``, ``retrieve_user_info``,
``forget_memories`` and ``set_time_zone``.

A ``MemoryTools`` is built per incoming message with that message's user and
scope, so whatever the model asks, it can only save into and search the memory
of the user it is answering, where they are talking. The model never erases
anything: ``forget_memories`` only records a proposal (``proposed``), which the
front end puts to the user with a confirmation, as ``/memory forget`` does.
"""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.reports import ForgetRequest, counted, forget_request
from memory.errors import InvalidInput, TierUnavailable
from memory.lifecycle import zone_suggestions
from memory.manager import HierarchicalMemoryManager

log = logging.getLogger(__name__)

RETRIEVE_TOKENS = 400
MIN_RETRIEVE_TOKENS = 40


class MemoryTools:
    """``bot.llm.ToolRunner`` bound to one user and scope."""

    def __init__(self, memory: HierarchicalMemoryManager, user_id: str, guild_id: str | None,
                 max_tokens: int = RETRIEVE_TOKENS, *, previous: str | None = None) -> None:
        self.memory = memory
        self.user_id = user_id
        self.guild_id = guild_id
        self.max_tokens = max_tokens
        self.previous = previous  # the user's newest exchange in this scope before the message answered
        self.proposed: ForgetRequest | None = None

    async def remember(self, fact: str, category: str = "other", importance: int = 3) -> str:
        """Save ``fact`` in the user's scope; the result says whether it was saved, for the model."""
        try:
            await self.memory.remember_fact(self.user_id, fact, guild_id=self.guild_id, category=category,
                                            importance=importance)
        except (InvalidInput, TierUnavailable) as exc:
            log.warning("could not save a fact the LLM proposed: %s", exc)
            return f"not saved ({exc}); tell the user it could not be saved"
        return f"saved: {fact}"

    async def retrieve(self, query: str) -> str:
        """The user's memories matching ``query`` in this scope, packed to a small budget (what the
        model's window has left for it)."""
        if self.max_tokens < MIN_RETRIEVE_TOKENS:
            return "no room left in this reply for more memories; answer with what you have"
        try:
            ctx = await self.memory.get_conversation_context(self.user_id, query, guild_id=self.guild_id,
                                                             max_tokens=self.max_tokens)
        except (InvalidInput, TierUnavailable) as exc:
            return f"memory search failed ({exc})"
        text = ctx.to_context_string(self.max_tokens)
        return text or "nothing in memory matches that"

    async def propose_forget(self, what: str, topic: str | None) -> str:
        """Record a forget for the user to confirm (the last proposal of the reply wins)."""
        try:
            request = forget_request(what, self.guild_id, topic)
        except InvalidInput as exc:
            return f"not proposed ({exc.reason}); ask the user what to forget"
        if what == "topic" and topic is not None:  # say what it would take; nothing at all is a dead end
            found = await counted(self.memory, self.user_id, request)
            if found is None:
                return (f"not proposed: nothing remembered here mentions {topic!r}; ask the user which words "
                        "they used, or look with retrieve_user_info and propose those words")
            request = found
        if what == "last":  # by the time they press, "last" would be this very request: name the one before
            if self.previous is None:
                return "not proposed (no earlier exchange here is known); suggest /memory forget"
            request = ForgetRequest({k: v for k, v in request.kwargs.items() if k != "last"}
                                    | {"exchange_id": self.previous}, request.question)
        self.proposed = request
        return (f"the user will be asked: {self.proposed.question} Nothing is forgotten unless they "
                "confirm; tell them so, and do not say it is already forgotten")

    async def set_time_zone(self, zone: str) -> str:
        """Set the user's own time zone (the same everywhere), as ``/memory timezone`` does."""
        try:
            name = await self.memory.set_time_zone(self.user_id, zone)
        except InvalidInput:
            close = zone_suggestions(zone, 3)
            return (f"not set: {zone!r} is not a time zone" + (f" (zones named like it: {', '.join(close)})"
                                                                  if close else "")
                    + ". Use a zone you know covers where the user lives (Europe/Lisbon for Porto), or ask them "
                      "for a big city near them that shares their time")
        except TierUnavailable as exc:
            return f"not set (memory unavailable: {exc}); suggest /memory timezone later"
        assert name is not None
        return (f"set: {name}; it is {datetime.now(ZoneInfo(name)):%A %H:%M} there now. Tell the user, and that "
                "/memory timezone shows or changes it")
