"""The message handler shared by Discord and the console: one incoming message -> one reply.

``ChatHandler.handle`` runs the whole turn:

1. rate limits (per user and global, in Redis through the manager); a limited
   user gets one polite notice per window, then silence (``None``). A front end
   that reads a message's files checks first (``admit``), so a flood costs no
   downloads;
2. memory context for the user and scope (guild, or DMs), degraded rather than
   failed when a tier is down;
3. the prompt: persona + memory notes (facts included) + the channel's rolling
   summary + the last ``history_exchanges`` exchanges of this channel verbatim;
   exchanges that fall out of that window are folded into the rolling summary
   (by the LLM when configured, deterministically otherwise) stored in Redis;
4. one LLM call (``remember_fact`` tool calls save facts; ``forget_memories`` proposes a
   forget that the front end asks the user to confirm, ``ChatReply.forget``), usage recorded;
5. the exchange archived with ``store_conversation``.

Per message, one query reads the user's pause, the guild's settings and claims
the one-time notice (``memory.message_state``): a guild's persona replaces
``BOT__PERSONA``; a paused user gets answers from the memories they have, but
nothing is stored (and no ``remember_fact`` tool is offered); the notice that the
bot remembers, and how to see, pause or forget it, rides on the first reply in
each guild (and DMs) for each user, as ``ChatReply.notice``.

Failure policy: an LLM failure answers with a short apology and stores
nothing. A tier down degrades the context and the reply still goes out. If
the archive itself is down the reply still goes out with a note saying this
exchange will not be remembered (it cannot be stored anywhere durable). Rate
limiting fails open when Redis is down: the bot keeps answering.

With no LLM configured (``llm.base_url`` unset) the reply is the prompt that
would have been sent, clearly labelled; the first such reply also says that no
LLM is configured. That exchange is stored with a short placeholder answer so
memory can still be exercised offline.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from typing import Any, Literal

from bot.budget import MESSAGE_OVERHEAD, plan_prompt
from bot.llm import ChatLLM, Completion, LLMUnavailable, Prompt, Turn, tool_tokens
from bot.logs import current_request
from bot.reports import ForgetRequest
from bot.settings import BotSettings
from bot.tools import MemoryTools
from memory.context import ConversationContext
from memory.errors import ArchiveUnavailable, InvalidInput, MemoryPaused, RateLimited, TierUnavailable
from memory.focus import stamp
from memory.manager import HierarchicalMemoryManager
from memory.models import Exchange, MessageState, clean_text
from memory.tokens import count_tokens, truncate_tokens

log = logging.getLogger(__name__)

APOLOGY = "Sorry, I can't answer right now: my language model isn't responding. Please try again in a moment."
NOT_STORED_NOTE = "\n\n-# Memory is unavailable right now, so I won't remember this exchange."
NO_LLM_NOTICE = ("No LLM is configured (set LLM__BASE_URL to an OpenAI-compatible endpoint), so instead "
                 "of an answer I show the context I would have sent.")
NO_LLM_STORED_RESPONSE = "[no reply: no language model is configured]"  # short: it is packed into contexts
CONTEXT_BEGIN = "----- context that would be sent to the LLM -----"
CONTEXT_END = "----- end of context -----"

ReplyKind = Literal["answer", "context", "rate_limited", "llm_error", "invalid"]


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A message addressed to the bot. ``guild_id`` None means a DM."""

    user_id: str
    text: str
    guild_id: str | None = None
    channel_id: str | None = None
    user_name: str | None = None
    message_id: str | None = None  # the Discord message, so its edit or deletion reaches the exchange
    replying_to: str | None = None  # the text of the message this one replies to
    replying_to_name: str | None = None  # its author, when not the bot itself
    # the rate limit already checked by the front end (Discord checks it before downloading files)
    admission: Admission | None = None


@dataclass(frozen=True, slots=True)
class Admission:
    """The rate limiter's word on one message: let through, or refused with what to say
    (``reply`` None: the user was already told this window)."""

    allowed: bool
    reply: ChatReply | None = None


def today_line(zone: tzinfo) -> str:
    """The date for the model (the memories are dated; without it "last week" and a birthday mean
    nothing), in the user's time zone: with its time of day too when the user set one."""
    if zone is UTC:
        return f"Today is {datetime.now(UTC):%A %-d %B %Y} (UTC)."
    now = datetime.now(zone)
    return (f"It is {now:%A %-d %B %Y, %H:%M} where the user is ({zone}); the dates and times in your "
            "memories are in that time zone too.")


NOTES_HEADER = "What you remember about this user:\n"
DEGRADED_NOTE = "Part of your memory is unavailable right now; some earlier conversations may be missing."
REPLY_QUOTE_TOKENS = 200
# told to the model on every turn, so "forget my address" never gets a false "done"
FORGET_BY_TOOL = ("You cannot erase memories yourself. When the user asks you to forget something, call "
                  "forget_memories: they confirm with a button, and nothing is forgotten until they do.")
FORGET_BY_COMMAND = ("You cannot erase memories. When the user asks you to forget something, tell them to use "
                     "/memory forget, which can forget a topic, the last exchange, or everything.")


def reply_note(replying_to: str | None, turns: Sequence[Turn], author: str | None = None) -> str:
    """What the model is told when the message replies to an earlier one (its start, within
    ``REPLY_QUOTE_TOKENS``): one of its own, unless already among the turns sent, or another
    member's (``author``). Only for this answer: the user's memory keeps their own words."""
    said = (replying_to or "").strip()
    if not said or (author is None and any(t.role == "assistant" and t.content.strip() == said for t in turns)):
        return ""
    whose = "this earlier message of yours" if author is None else f"this message from {author}"
    return f"The user's message replies to {whose}:\n" + truncate_tokens(said, REPLY_QUOTE_TOKENS)


@dataclass(frozen=True, slots=True)
class ChatReply:
    """The bot's answer to one message, and what happened to it."""

    text: str
    kind: ReplyKind
    exchange_id: str | None = None
    degraded: tuple[str, ...] = ()
    facts_saved: tuple[str, ...] = ()
    notice: str | None = None  # the one-time "I remember our conversations" notice, to show with it
    forget: ForgetRequest | None = None  # what the model proposed to forget, for the user to confirm


@dataclass(frozen=True, slots=True)
class RollingSummary:
    """The folded part of one channel's conversation; ``through`` is the newest exchange folded in."""

    text: str
    through: datetime | None

    def dump(self) -> str:
        return json.dumps({"text": self.text, "through": self.through.isoformat() if self.through else None})

    @classmethod
    def load(cls, raw: str | None) -> RollingSummary:
        if not raw:
            return cls("", None)
        try:
            data = json.loads(raw)
            through = datetime.fromisoformat(data["through"]) if data.get("through") else None
            return cls(str(data.get("text") or ""), through)
        except (ValueError, TypeError, KeyError, AttributeError):
            return cls(raw, None)  # written by something else: keep it as text


def fold_deterministic(previous: str, exchanges: Sequence[Exchange], max_chars: int, zone: tzinfo = UTC) -> str:
    """Append one line per exchange to ``previous`` (its time in the user's ``zone``), dropping the
    oldest lines beyond ``max_chars``."""
    lines = [line for line in previous.splitlines() if line.strip()]
    for e in exchanges:
        user = " ".join(e.user_message.split())[:200]
        bot = " ".join(e.bot_response.split())[:200]
        lines.append(f"- {stamp(e.timestamp, True, zone)} user: {user} | you: {bot}")
    while lines and len("\n".join(lines)) > max_chars:
        lines.pop(0)
    text = "\n".join(lines)
    return text[-max_chars:]


def memory_notice(guild_id: str | None) -> str:
    """The one-time notice: the bot remembers, and how to see, pause or forget it."""
    where = "in this server" if guild_id is not None else "in our DMs"
    return (f"-# I remember our conversations {where}, so I can pick up where we left off. "
            "`/memory show` shows what I remember, `/memory pause` stops me remembering you here, "
            "`/memory forget` makes me forget. (I say this once.)")


def with_notice(reply: ChatReply, state: MessageState, msg: IncomingMessage) -> ChatReply:
    return replace(reply, notice=memory_notice(msg.guild_id)) if state.first_notice else reply


def guild_persona(state: MessageState) -> str | None:
    """The persona the guild's admins set, overriding BOT__PERSONA; None when unset."""
    return state.guild.persona if state.guild is not None and state.guild.persona else None


def format_retry(seconds: float) -> str:
    """A retry delay in words: "1 second", "42 seconds", "3 minutes"."""
    whole = max(1, round(seconds))
    if whole >= 90:
        return f"{round(whole / 60)} minutes"
    return f"{whole} second{'s' if whole != 1 else ''}"


class ChatHandler:
    """Turns incoming messages into replies using the memory manager and (optionally) an LLM.

    Holds no conversation state of its own: everything lives in the memory
    tiers, so any number of bot processes can share the work.
    """

    def __init__(self, memory: HierarchicalMemoryManager, llm: ChatLLM | None, settings: BotSettings) -> None:
        self.memory = memory
        self.llm = llm
        self.settings = settings
        self._no_llm_notice_due = True  # a display nicety only; not shared state
        self.metrics = memory.metrics  # one registry per process, made by the composition root

    def suppress_no_llm_notice(self) -> None:
        """For front ends that already said no LLM is configured (the console does at start)."""
        self._no_llm_notice_due = False

    async def handle(self, msg: IncomingMessage) -> ChatReply | None:
        """Answer ``msg``. Returns None when the user is rate limited and was already told so.

        Runs under the caller's request id (``bot.logs``), or a new one."""
        current_request()
        self.metrics.messages.inc()
        reply = await self._answer(msg)
        if reply is not None:
            self.metrics.replies.labels(reply.kind).inc()
        return reply

    async def admit(self, user_id: str) -> Admission:
        """Check (and count) one message against the rate limits. A front end that does work before
        ``handle`` (reading a message's files) calls this first and passes the result along."""
        cfg = self.settings.bot
        try:
            await self.memory.check_rate_limit(user_id, per_user=cfg.rate_limit_per_user,
                                               global_limit=cfg.rate_limit_global,
                                               window_seconds=cfg.rate_limit_window_seconds)
        except RateLimited as exc:
            if not getattr(exc, "notify", True):
                return Admission(False)
            who = "you're sending messages" if exc.scope == "user" else "I'm getting a lot of messages"
            return Admission(False, ChatReply(f"Sorry, {who} faster than I can keep up. Please try again in "
                                              f"{format_retry(exc.retry_after)}.", "rate_limited"))
        except TierUnavailable as exc:
            self.metrics.errors.labels("rate_limiter_unavailable").inc()
            log.warning("rate limiter unavailable, letting the message through: %s", exc)
        return Admission(True)

    async def _answer(self, msg: IncomingMessage) -> ChatReply | None:
        admission = msg.admission or await self.admit(msg.user_id)
        if not admission.allowed:
            return admission.reply
        try:
            text = clean_text(msg.text.strip(), "message")
        except InvalidInput as exc:
            return ChatReply(f"I can't read that message ({exc.reason}). What would you like to talk about?",
                             "invalid")
        cfg = self.settings.bot
        state = await self._state(msg)

        ctx: ConversationContext | None = None
        degraded: tuple[str, ...] = ()
        try:
            ctx = await self.memory.get_conversation_context(
                msg.user_id, text, guild_id=msg.guild_id, channel_id=msg.channel_id,
                max_tokens=cfg.context_max_tokens)
            degraded = tuple(ctx.degraded)
        except TierUnavailable as exc:
            self.metrics.errors.labels("context_unavailable").inc()
            log.warning("memory context unavailable, answering without it: %s", exc)
            degraded = (exc.tier,)

        turns, summary, verbatim = await self._conversation(msg, ctx)
        # the tools save, search and propose forgetting only this user's memory here; paused: no tools
        tools = (MemoryTools(self.memory, msg.user_id, msg.guild_id,
                             previous=ctx.recent[0].id if ctx is not None and ctx.recent else None)
                 if self.llm is not None and cfg.remember_tool and not state.paused else None)
        extra = "\n\n".join(filter(None, (reply_note(msg.replying_to, turns, msg.replying_to_name),
                                           FORGET_BY_TOOL if tools is not None else FORGET_BY_COMMAND)))
        # the window holds the prompt, the tools' definitions when they go along, and the reply
        window = self.settings.llm.context_tokens - self.settings.llm.max_tokens - (
            tool_tokens() if tools is not None else 0)
        head = self._head(msg, ctx, guild_persona(state), extra)
        plan = plan_prompt(window, "\n\n".join([*head, NOTES_HEADER, *([DEGRADED_NOTE] if degraded else [])]),
                           text, turns, summary, cfg.context_max_tokens)
        turns, summary = plan.turns, plan.summary  # the message may be cut for the model; memory keeps it whole
        prompt = self._prompt(head, plan.message, ctx, summary, turns, degraded, verbatim,
                              notes_tokens=plan.notes_tokens)
        if tools is not None:  # a search's results go back in the same window: at most half of what is left
            left = window - sum(count_tokens(m["content"]) + MESSAGE_OVERHEAD for m in prompt.messages())
            tools.max_tokens = max(0, min(tools.max_tokens, left // 2))

        if self.llm is None:
            return with_notice(await self._answer_without_llm(msg, text, prompt, degraded, paused=state.paused),
                               state, msg)
        try:
            done = (await self.llm.complete_with_tools(prompt, tools) if tools is not None
                    else await self.llm.complete(prompt))
        except LLMUnavailable as exc:
            self.metrics.errors.labels("llm_unavailable").inc()
            log.warning("LLM failed for user %s: %s", msg.user_id, exc)
            return with_notice(ChatReply(APOLOGY, "llm_error", degraded=degraded), state, msg)
        await self.record_usage(msg.user_id, msg.guild_id, done)
        saved = list(done.facts)  # saved by MemoryTools as the model called remember_fact
        reply = done.text or ("Got it, I'll remember: " + "; ".join(saved) if saved
                              else "Sorry, I couldn't save that. Try /remember instead.")
        reply = reply.replace("\x00", "")
        exchange_id, note = await self._store(msg, text, reply, {"model": self.llm.model,
                                                                 "degraded": list(degraded)}, paused=state.paused)
        return with_notice(ChatReply(reply + note, "answer", exchange_id, degraded, tuple(saved),
                                     forget=tools.proposed if tools is not None else None), state, msg)

    async def _state(self, msg: IncomingMessage) -> MessageState:
        """Pause, the one-time notice and the guild's settings; defaults when the archive is down."""
        try:
            return await self.memory.message_state(msg.user_id, msg.guild_id,
                                                   claim_notice=self.settings.bot.memory_notice)
        except TierUnavailable as exc:
            self.metrics.errors.labels("message_state_unavailable").inc()
            log.warning("pause and guild settings unavailable, using the defaults: %s", exc)
            return MessageState()

    async def _answer_without_llm(self, msg: IncomingMessage, text: str, prompt: Prompt,
                                  degraded: tuple[str, ...], *, paused: bool = False) -> ChatReply:
        exchange_id, note = await self._store(msg, text, NO_LLM_STORED_RESPONSE, {"llm": None}, paused=paused)
        body = f"{CONTEXT_BEGIN}\n{prompt.render()}\n{CONTEXT_END}"
        if degraded:
            body += "\n(memory tiers that did not answer in time: " + ", ".join(degraded) + ")"
        if self._no_llm_notice_due:
            self._no_llm_notice_due = False
            body = f"{NO_LLM_NOTICE}\n\n{body}"
        return ChatReply(body + note, "context", exchange_id, degraded)

    def _head(self, msg: IncomingMessage, ctx: ConversationContext | None, persona: str | None,
              extra: str) -> list[str]:
        """The system prompt's fixed parts: persona, who is talking, ``extra``, today's date."""
        parts = [(persona or self.settings.bot.persona).strip()]
        if msg.user_name:
            parts.append(f"You are talking with {msg.user_name} "
                         f"({'in a direct message' if msg.guild_id is None else 'in a server channel'}).")
        if extra:  # what the message replies to; how forgetting works
            parts.append(extra)
        # the memories are dated; without today's date "last week" and a birthday mean nothing to the model
        parts.append(today_line(ctx.zone if ctx is not None else UTC))
        return parts

    def _prompt(self, head: list[str], text: str, ctx: ConversationContext | None, summary: str,
                turns: tuple[Turn, ...], degraded: tuple[str, ...], verbatim: frozenset[str], *,
                notes_tokens: int | None = None) -> Prompt:
        parts = list(head)
        # the exchanges sent as turns are not repeated in the notes: their budget goes to memories
        budget = self.settings.bot.context_max_tokens if notes_tokens is None else notes_tokens
        notes = ctx.to_context_string(budget, exclude=verbatim) if ctx is not None and budget > 0 else ""
        if notes.strip():
            parts.append(NOTES_HEADER + notes)
        if summary.strip():
            parts.append("Earlier in this conversation (summary):\n" + summary)
        if degraded:
            parts.append(DEGRADED_NOTE)
        return Prompt(system="\n\n".join(parts), turns=turns, user=text)

    async def _conversation(self, msg: IncomingMessage, ctx: ConversationContext | None,
                            ) -> tuple[tuple[Turn, ...], str, frozenset[str]]:
        """The channel's last exchanges as turns, its rolling summary (folded up to date), and
        the ids of the exchanges in those turns."""
        window = self.settings.bot.history_exchanges
        recent: list[Exchange] = list(ctx.recent) if ctx is not None else []
        mine = [e for e in recent if e.channel_id == msg.channel_id]  # newest first
        verbatim = list(reversed(mine[:window]))
        turns = tuple(t for e in verbatim for t in (Turn("user", e.user_message),
                                                     Turn("assistant", e.bot_response)))
        shown = frozenset(e.id for e in verbatim)
        try:
            state = RollingSummary.load(
                await self.memory.rolling_summary(msg.user_id, msg.guild_id, msg.channel_id))
        except TierUnavailable as exc:
            self.metrics.errors.labels("rolling_summary_unavailable").inc()
            log.warning("rolling summary unavailable: %s", exc)
            return turns, "", shown
        overflow = [e for e in reversed(mine[window:])
                    if state.through is None or e.timestamp > state.through]
        if not overflow:
            return turns, state.text, shown
        folded = await self._fold(msg, state.text, overflow, ctx.zone if ctx is not None else UTC)
        new_state = RollingSummary(folded, max(e.timestamp for e in overflow))
        try:
            await self.memory.set_rolling_summary(msg.user_id, msg.guild_id, msg.channel_id, new_state.dump())
        except TierUnavailable as exc:
            self.metrics.errors.labels("rolling_summary_unavailable").inc()
            log.warning("could not save the rolling summary: %s", exc)
        return turns, folded, shown

    async def _fold(self, msg: IncomingMessage, previous: str, exchanges: list[Exchange], zone: tzinfo) -> str:
        limit = self.settings.bot.summary_max_chars
        if self.llm is None:
            return fold_deterministic(previous, exchanges, limit, zone)
        transcript = "\n".join(f"User: {e.user_message}\nYou: {e.bot_response}" for e in exchanges)
        prompt = Prompt(
            system=("You maintain a running summary of a chat between a user and you (the assistant). "
                    f"Merge the new exchanges into the summary. Keep names, facts, decisions and open "
                    f"questions; drop small talk. Answer with the summary only, under {limit} characters."),
            turns=(), user=f"Summary so far:\n{previous or '(empty)'}\n\nNew exchanges:\n{transcript}")
        try:
            done = await self.llm.complete(prompt, max_tokens=400, temperature=0.2)
        except LLMUnavailable as exc:
            self.metrics.errors.labels("llm_summary_unavailable").inc()
            log.warning("LLM summary failed, folding deterministically: %s", exc)
            return fold_deterministic(previous, exchanges, limit, zone)
        await self.record_usage(msg.user_id, msg.guild_id, done)
        return done.text[:limit] if done.text else fold_deterministic(previous, exchanges, limit, zone)

    async def record_usage(self, user_id: str, guild_id: str | None, done: Completion) -> None:
        """Add a model call's tokens to the user's usage (``/memory stats``); an archive that is
        down loses the count, never the answer."""
        try:
            await self.memory.record_usage(user_id, guild_id, done.prompt_tokens, done.completion_tokens)
        except TierUnavailable as exc:
            self.metrics.errors.labels("usage_not_recorded").inc()
            log.warning("could not record token usage: %s", exc)

    async def _store(self, msg: IncomingMessage, text: str, reply: str,
                     metadata: dict[str, Any], *, paused: bool = False) -> tuple[str | None, str]:
        """Archive the exchange (not when the user paused memory here); returns (id, note to
        append to the reply). The user's display name goes with it, so the context names who
        said what."""
        if paused:
            return None, ""
        if msg.user_name:
            metadata = {**metadata, "user_name": msg.user_name}
        try:
            exchange_id = await self.memory.store_conversation(
                msg.user_id, text, reply, guild_id=msg.guild_id, channel_id=msg.channel_id,
                metadata={**metadata, "request_id": current_request()}, message_id=msg.message_id)
        except MemoryPaused:
            return None, ""  # paused after this message arrived
        except ArchiveUnavailable as exc:
            self.metrics.errors.labels("exchange_not_stored").inc()
            log.error("exchange of user %s not stored, archive unavailable: %s", msg.user_id, exc)
            return None, NOT_STORED_NOTE
        except InvalidInput as exc:
            self.metrics.errors.labels("exchange_invalid").inc()
            log.warning("exchange of user %s not stored, invalid: %s", msg.user_id, exc)
            return None, ""
        log.info("stored exchange %s of user %s", exchange_id, msg.user_id,
                 extra={"exchange_id": exchange_id, "user_id": msg.user_id})
        return exchange_id, ""
