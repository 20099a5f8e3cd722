"""Session summaries written by the LLM when LLM extraction is configured (see ``memory.sessions``).

One chat call per finished session, in the worker, never on the reply path. It
shares the extractor's client, settings, per-guild daily token budget and stats:
its calls and tokens count in ``calls``, ``prompt_tokens`` and ``completion_tokens``,
and in the ``session_*`` counters. The model writes only the body; the session's
dates and exchange count stay ours (``memory.sessions.build``). An answer that is
empty, refused, cut off by the token limit or not plain text, a timeout, an HTTP
error or a guild over its budget gives None: the caller then writes the rule-based
summary, and the fallback is counted (``session_fallbacks``, ``session_over_budget``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import openai

from memory.llm_extraction import LLMExtractor, _owner, clip_summary
from memory.models import Exchange

log = logging.getLogger(__name__)

ANSWER_TOKENS = 160  # a body of at most ~250 characters, with room to spare
_MESSAGE_CHARS = 600  # of each message sent; the archive keeps the full text
_PROMPT_CHARS = 8000  # of the whole session sent at most (the later turns are left out beyond it)
MIN_CHARS = 12  # a shorter body says nothing useful

INSTRUCTIONS = """You summarise one past conversation between a user and an assistant for the assistant's memory.
Write {limit} characters at most, as plain sentences on one line (no list, no JSON, no Markdown, no date):
what the user talked about and asked, keeping every name, number and date they gave."""


class LLMSessionWriter:
    """Writes the body of a session summary with the extractor's endpoint, or None to fall back to rules."""

    def __init__(self, extractor: LLMExtractor) -> None:
        self.extractor = extractor
        self.client = extractor.client
        self.settings = extractor.settings
        self.budget = extractor.budget
        self.stats = extractor.stats
        self.down = False

    async def write(self, session: Sequence[Exchange], limit: int) -> str | None:
        """A one-line body of at most ``limit`` characters for ``session`` (one user and scope), or None.

        Never raises for a bad or missing answer; raises TierUnavailable when the budget cannot be read.
        """
        try:
            return await self._write(session, limit)
        finally:
            await self.extractor.publish()

    async def _write(self, session: Sequence[Exchange], limit: int) -> str | None:
        stats = self.stats
        stats.session_summaries += 1
        self.down = False
        owner = _owner(session[0])
        if self.budget is not None:
            spent = (await self.budget.spent([owner]))[owner]
            if spent >= self.settings.extraction_daily_tokens:
                stats.session_over_budget += 1
                return None
        messages = [{"role": "system", "content": INSTRUCTIONS.format(limit=limit)},
                    {"role": "user", "content": _render(session, self._prompt_chars())}]
        try:
            response = await self.client.chat.completions.create(
                model=self.settings.model, messages=messages,  # type: ignore[arg-type]
                temperature=0.0, max_tokens=ANSWER_TOKENS)
        except openai.OpenAIError as exc:
            log.warning("LLM session summary unavailable, rule-based instead: %s", type(exc).__name__)
            stats.session_fallbacks += 1
            self.down = True
            return None
        stats.calls += 1
        stats.session_calls += 1
        tokens = 0
        if response.usage is not None:
            prompt, completion = int(response.usage.prompt_tokens or 0), int(response.usage.completion_tokens or 0)
            stats.prompt_tokens += prompt
            stats.completion_tokens += completion
            tokens = prompt + completion
        if self.budget is not None and tokens > 0:
            await self.budget.add(owner, tokens)
        body = _usable(response, limit)
        if body is None:
            stats.session_fallbacks += 1
            return None
        stats.session_llm += 1
        return body

    def _prompt_chars(self) -> int:
        """Characters of conversation sent: within the model's window, with room for the instructions
        and the answer (three characters a token, a cautious rate for chat text)."""
        return max(1000, min(_PROMPT_CHARS, (self.settings.context_tokens - ANSWER_TOKENS - 200) * 3))


def _render(session: Sequence[Exchange], max_chars: int) -> str:
    parts: list[str] = []
    used = 0
    for e in session:
        part = (f"[{e.timestamp:%Y-%m-%d %H:%M}] User: {e.user_message[:_MESSAGE_CHARS]}\n"
                f"Assistant: {e.bot_response[:_MESSAGE_CHARS]}")
        if parts and used + len(part) > max_chars:
            break
        parts.append(part)
        used += len(part)
    return "\n\n".join(parts)


def _usable(response: openai.types.chat.ChatCompletion, limit: int) -> str | None:
    """The answer as one plain line within ``limit`` characters, or None when it cannot be used."""
    if not response.choices:
        return None
    choice = response.choices[0]
    if getattr(choice.message, "refusal", None) or choice.finish_reason == "length":
        return None  # refused, or cut off mid-sentence by the token limit
    text = " ".join((choice.message.content or "").split())
    for label in ("Summary:", "summary:", "SUMMARY:"):
        text = text.removeprefix(label).strip()
    text = text.strip("\"'` ")
    if len(text) < MIN_CHARS or text[0] in "{[<#|" or "```" in text:
        return None  # empty, or JSON, markup or a table instead of plain sentences
    return clip_summary(text, limit)
