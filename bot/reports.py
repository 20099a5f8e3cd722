"""What the user's memory commands show, as plain text: shared by the slash commands and the console.

Each function asks the memory manager and returns a ``Card`` (a title, a
description, named sections, a footer) or a string; ``bot.cogs.memory`` turns a
card into an embed and ``bot.console`` prints it. Errors are the manager's
(``TierUnavailable``, ``InvalidInput``); front ends word them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.cogs.common import clip, format_counts, where
from memory.errors import ForgetPending, InvalidInput, MemoryStoreError, TierUnavailable
from memory.focus import stamp
from memory.lifecycle import zone_suggestions
from memory.manager import HierarchicalMemoryManager

log = logging.getLogger(__name__)

UNAVAILABLE = "My memory is unavailable right now; please try again later."
SHOW_QUERY = "what do you remember about me"
FORGET_WHAT = ("all", "here", "topic", "last")


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Card:
    """Front-end neutral output of a command: an embed on Discord, plain lines in the console."""

    title: str
    description: str = ""
    sections: tuple[Section, ...] = ()
    footer: str = ""


@dataclass(frozen=True, slots=True)
class ForgetRequest:
    """What ``forget_now`` passes to ``memory.forget`` and the question to confirm first."""

    kwargs: Mapping[str, Any]
    question: str


def clip_block(text: str, limit: int) -> str:
    """``text`` kept line by line up to ``limit`` characters (an embed description)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_profile(profile: Any) -> str:
    """Profile lines as `key` text, one a line, then the saved facts."""
    lines = [f"`{ln.key}` {ln.text}" + (" (your correction)" if ln.corrected else "") for ln in profile.lines]
    lines += [f"saved: {f.text}" for f in profile.saved]
    return "\n".join(lines)


NO_PROFILE = ("Nothing yet: tell me about yourself and it will show here (what you said in the last few "
              "seconds may still be on its way).")


async def profile_line_choices(memory: HierarchicalMemoryManager, user_id: str, guild_id: str | None,
                               current: str, limit: int = 25) -> list[tuple[str, str]]:
    """``(label, key)`` of the profile lines whose key or text contains ``current`` (for the
    line option of ``/memory profile``); none when the graph cannot be read."""
    try:
        profile = await memory.user_profile(user_id, guild_id)
    except TierUnavailable:
        return []
    wanted = current.strip().lower()
    return [(clip(f"{ln.key}: {ln.text}", 100), ln.key) for ln in profile.lines
            if wanted in ln.key or wanted in ln.text.lower()][:limit]


async def profile_text(memory: HierarchicalMemoryManager, user_id: str, guild_id: str | None,
                       action: str = "show", line: str | None = None, text: str | None = None) -> str:
    """``/memory profile``: the profile of this scope after showing it (``action`` "show"),
    removing the line keyed ``line`` ("remove") or replacing it with ``text`` ("replace").

    Returns a usage hint when ``line`` (or, to replace, ``text``) is missing. Raises
    InvalidInput for an unknown key or bad text, TierUnavailable when the profile cannot be read.
    """
    if action == "show":
        profile, note = await memory.user_profile(user_id, guild_id), ""
    elif action not in ("remove", "replace") or line is None or (action == "replace" and not text):
        return "Name the line (its key, e.g. `home`) and, to replace it, the new text."
    else:
        profile = await memory.correct_profile(user_id, line, text if action == "replace" else None,
                                               guild_id=guild_id)
        note = f"Line `{line}` {'replaced' if action == 'replace' else 'removed'}.\n"
    body = format_profile(profile) or NO_PROFILE
    return clip(f"{note}Your profile {where(guild_id)}:\n{body}", 1900, lines=True)


async def show_card(memory: HierarchicalMemoryManager, user_id: str, guild_id: str | None) -> Card:
    """Recent exchanges, top entities, facts, settings (time zone, a pause here) and per-tier counts of
    this user in this scope.

    Raises TierUnavailable when the context or the counts cannot be read; a
    graph outage only blanks the entities section.
    """
    ctx = await memory.get_conversation_context(user_id, SHOW_QUERY, guild_id=guild_id, max_tokens=800)
    counts = await memory.counts(user_id, guild_id=guild_id, dm=guild_id is None)
    queued = await memory.queued(user_id, guild_id=guild_id, dm=guild_id is None)
    try:
        profile_items = await memory.profile(user_id, guild_id=guild_id, limit=12)
    except TierUnavailable:
        profile_items = None
    recent = "\n".join(f"`{stamp(e.timestamp, False, ctx.zone)}` {clip(e.user_message, 90)}" for e in ctx.recent[:5])
    profile = ("(graph unavailable right now)" if profile_items is None
               else ", ".join(f"{r.label or r.name} ({r.count})" for r in profile_items))
    facts = "\n".join(f"`{f.id}` {clip(f.text, 120)}" for f in ctx.facts[:10])
    zone = await memory.time_zone(user_id)
    paused = any(s.guild_id == guild_id for s in await memory.paused_scopes(user_id))
    settings = (f"Time zone: {zone or 'UTC (not set: /memory timezone)'}\n"
                + ("Paused here: I remember nothing new (/memory resume)" if paused
                   else "Remembering here (/memory pause stops it)"))
    return Card(
        title=f"What I remember about you {where(guild_id)}",
        sections=(Section("Recent exchanges", clip(recent, 1000, lines=True) or "none"),
                  Section("Top entities and topics", clip(profile, 1000, lines=True) or "none"),
                  *((Section("Profile (/memory profile to correct it)",
                             clip(format_profile(ctx.profile), 1000, lines=True)
                             or ("(graph unavailable right now)" if "graph" in ctx.degraded else "nothing yet")),)
                    if ctx.profile else ()),
                  Section("Facts (/remember)", clip(facts, 1000, lines=True) or "none"),
                  Section("Your settings", settings),
                  Section("Stored per tier (-1: tier down)", format_counts(counts) + (
                      f"\n{queued} recent exchange{'s' if queued != 1 else ''} still being taken in: the profile"
                      " and topics catch up in a moment" if queued else ""))),
        footer="Unavailable right now: " + ", ".join(ctx.degraded) if ctx.degraded else "")


async def search_card(memory: HierarchicalMemoryManager, user_id: str, guild_id: str | None, query: str,
                      max_tokens: int) -> Card:
    """The context the bot would use to answer ``query``, its best matches and per-tier timings.

    Raises TierUnavailable or InvalidInput (a malformed query).
    """
    ctx = await memory.get_conversation_context(user_id, query, guild_id=guild_id, max_tokens=max_tokens)
    text = ctx.to_context_string(max_tokens)
    ranked = "\n".join(f"{r.score:.3f} [{', '.join(r.sources)}] {clip(r.exchange.user_message, 80)}"
                       for r in ctx.relevant[:6])
    return Card(
        title=f"Memories for “{clip(query, 200)}”",
        description=clip_block(text or "Nothing yet.", 4000),
        sections=(Section("Best matches (score, sources)", clip(ranked, 1000, lines=True)),) if ranked else (),
        footer=" · ".join(f"{name} {r.status} {r.ms:.0f} ms" for name, r in ctx.tiers.items()))


async def export_json(memory: HierarchicalMemoryManager, user_id: str) -> bytes:
    """Everything held about the user, in every scope, as indented UTF-8 JSON. Raises TierUnavailable."""
    data = await memory.export(user_id)
    return json.dumps(data, indent=2, ensure_ascii=False, default=str).encode("utf-8")


def forget_request(what: str, guild_id: str | None, topic: str | None = None) -> ForgetRequest:
    """The forget arguments and confirmation question for ``what`` (one of ``FORGET_WHAT``) in the
    asker's scope. Raises InvalidInput for another ``what``, or "topic" with no topic given.
    """
    if what not in FORGET_WHAT:
        raise InvalidInput(f"expected one of {', '.join(FORGET_WHAT)}", field="what")
    scope: dict[str, Any] = {"guild_id": guild_id} if guild_id is not None else {"dm": True}
    if what == "all":
        return ForgetRequest({}, "Forget **everything** I remember about you, in every server and in DMs?")
    if what == "here":
        return ForgetRequest(scope, f"Forget everything I remember about you {where(guild_id)}?")
    if what == "topic":
        if not topic or not topic.strip():
            raise InvalidInput("name the topic to forget", field="topic")
        return ForgetRequest({**scope, "topic": topic.strip()},
                             f"Forget our exchanges about “{clip(topic, 100)}” {where(guild_id)}?")
    return ForgetRequest({**scope, "last": True}, f"Forget our last exchange {where(guild_id)}?")


async def counted(memory: HierarchicalMemoryManager, user_id: str, request: ForgetRequest) -> ForgetRequest | None:
    """A topic forget with how many exchanges it would take in its question ("(3 exchanges so far)"),
    or None when nothing mentions the topic; any other forget as it is. When the count cannot be
    had (a tier down), the question stays as it was."""
    topic = request.kwargs.get("topic")
    if topic is None:
        return request
    try:
        found = await memory.topic_count(user_id, topic, **{k: v for k, v in request.kwargs.items() if k != "topic"})
    except (TierUnavailable, InvalidInput) as exc:
        log.warning("cannot count the exchanges about a topic: %s", exc)
        return request
    if not found:
        return None
    return replace(request, question=f"{request.question[:-1]} ({found} exchange{'s' if found != 1 else ''} so far)?")


def nothing_about(topic: str, guild_id: str | None) -> str:
    """The answer to a topic forget that would take nothing."""
    return f"Nothing I remember {where(guild_id)} mentions “{clip(topic, 100)}”, so there is nothing to forget."


async def forget_now(memory: HierarchicalMemoryManager, user_id: str, request: ForgetRequest) -> str:
    """Run a confirmed forget; returns what to tell the user (never raises for a tier outage)."""
    try:
        removed = await memory.forget(user_id, **request.kwargs)
    except InvalidInput as exc:
        return f"I can't forget that: {exc}"
    except ForgetPending as exc:
        return ("Forgotten. Removed per tier: " + format_counts(exc.removed)
                + f". The {', '.join(exc.pending)} store is unavailable right now; what it holds "
                "is queued and will be removed as soon as it is back.")
    except MemoryStoreError as exc:
        log.warning("forget failed for user %s: %s", user_id, exc)
        return f"{UNAVAILABLE} Nothing may have been removed."
    if not any(removed.values()):
        return "There was nothing to forget."
    return "Forgotten. Removed per tier: " + format_counts(removed)


async def time_zone_text(memory: HierarchicalMemoryManager, user_id: str, zone: str | None,
                         reset: bool = False) -> str:
    """``/memory timezone``: show the user's time zone, set it (``zone``) or go back to UTC (``reset``).
    Raises TierUnavailable; a name that is no time zone gets an answer saying so."""
    if reset:
        await memory.set_time_zone(user_id, None)
        return "Back to UTC: I read the dates you give me, and show my memories' dates, in UTC."
    if zone is not None:
        try:
            name = await memory.set_time_zone(user_id, zone)
        except InvalidInput:
            close = zone_suggestions(zone, 3)
            return (f"I don't know a time zone called \"{clip(zone, 64)}\". " + (
                f"Zones named like it: {', '.join(close)}. If none is yours, give a big city near you that "
                "shares your time (Europe/Paris for Lyon, say)." if close else
                "Use a name like Europe/Berlin, America/New_York or Asia/Tokyo, or your city if a zone is "
                "named after it (the list suggests them as you type)."))
        assert name is not None
        return (f"Your time zone is now {name} (it's {datetime.now(ZoneInfo(name)):%H:%M} there). \"Yesterday\" "
                "means your yesterday, and my memories' dates are shown in your time.")
    current = await memory.time_zone(user_id)
    if current is None:
        return ("I use UTC for you. Tell me your time zone (`/memory timezone Europe/Berlin`) so that "
                "\"yesterday\" and \"this morning\" mean yours.")
    return (f"Your time zone is {current} (it's {datetime.now(ZoneInfo(current)):%H:%M} there). "
            "`/memory timezone` with another name changes it, or resets it to UTC.")


def pause_message(changed: bool, guild_id: str | None) -> str:
    """The answer to a pause in this scope; ``changed`` False when it was paused already."""
    first = "Paused" if changed else "Already paused"
    return (f"{first}: I won't remember anything new you say {where(guild_id)}. I still answer, using what I "
            "already remember. `/memory resume` starts again; `/memory forget` erases what I have.")


def resume_message(changed: bool, guild_id: str | None) -> str:
    """The answer to a resume in this scope; ``changed`` False when it was not paused."""
    return (f"Resumed: I remember our conversations {where(guild_id)} again." if changed
            else f"I wasn't paused {where(guild_id)}: I remember our conversations here.")
