"""LLM extraction: summary, entities, typed relations and profile updates, several exchanges per call.

Runs in the worker, never on the reply path. One request covers up to
``batch_size`` exchanges of one user in one scope (never two users' words in one
prompt), so there is at most one call per exchange (plus one repair attempt).
The answer must be JSON matching ``BatchOut`` (sent as ``BATCH_SCHEMA``); how that is asked for
depends on the endpoint (``mode``):

* ``json_schema`` - ``response_format={"type": "json_schema", ...}`` (OpenAI, llama.cpp's own server);
* ``json_object`` - ``{"type": "json_object", "schema": ...}`` (llama-cpp-python's server, which
  answers HTTP 500 to the former);
* ``prompt`` - no ``response_format``; the schema is in the instructions.

``auto`` starts with ``json_schema`` and steps down on HTTP 400/422/500/501,
keeping the first mode the endpoint accepts for later calls. Every field is
validated with pydantic; an invalid, truncated or refused answer gets one
repair request, then the deterministic extractor takes over for whatever is
still missing. Every such exchange is counted in ``stats.fallbacks``: a bad
answer never loses an exchange's facts silently.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Protocol

import openai
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from memory.errors import TierUnavailable
from memory.extraction import DeterministicExtractor, labelled_topics, normalise
from memory.models import (
    ANY_OBJECT,
    FORWARDED,
    NOT_ENTITIES,
    PREDICATES,
    RULES_ONLY,
    Exchange,
    Extraction,
    Mention,
    Statement,
    without_notes,
)
from memory.settings import LLMSettings
from memory.statements import AGE_RANGE, birthday

log = logging.getLogger(__name__)

MODES = ("json_schema", "json_object", "prompt")
SUMMARY_CHARS = 150
_STEP_DOWN_STATUSES = frozenset({400, 422, 500, 501})
_MAX_MESSAGE_CHARS = 3000  # of each message sent for extraction; the archive keeps the full text


class RelationOut(BaseModel):
    model_config = ConfigDict(extra="ignore")
    predicate: str = Field(min_length=2, max_length=20)
    object: str = Field(min_length=1, max_length=200)  # an INSTRUCTS object is a sentence
    detail: str = Field("", max_length=40)
    ended: bool = False


class ProfileOut(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = Field(None, max_length=80)
    address_as: str | None = Field(None, max_length=80)


class ExchangeOut(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1, max_length=10)
    summary: str = Field(min_length=1, max_length=2000)  # clipped to SUMMARY_CHARS after validation
    entities: list[str] = Field(default_factory=list, max_length=30)
    relations: list[RelationOut] = Field(default_factory=list, max_length=20)
    profile: ProfileOut = Field(default_factory=ProfileOut)


class BatchOut(BaseModel):
    exchanges: list[ExchangeOut] = Field(max_length=60)


def _unbounded(schema: Any) -> Any:
    """``schema`` without length and item bounds. Grammar-constrained endpoints expand each bound into
    nested rules: llama.cpp refuses the grammar of a 2,000-character bound (and llama-cpp-python's
    server then dies). The answer is still checked against every bound by pydantic."""
    if isinstance(schema, dict):
        return {k: _unbounded(v) for k, v in schema.items() if k not in ("maxLength", "maxItems")}
    if isinstance(schema, list):
        return [_unbounded(v) for v in schema]
    return schema


BATCH_SCHEMA: dict[str, Any] = _unbounded(BatchOut.model_json_schema())  # what the endpoint is sent

INSTRUCTIONS = f"""You extract memory from chat exchanges between a user and an assistant.
For each exchange (given with an id) return:
- summary: at most {SUMMARY_CHARS} characters, keeping every name, number and date;
- entities: the named people, places, organisations, pets and works mentioned;
- relations: what the USER says about themselves, as {{"predicate", "object", "detail"}} with predicate one of
  {", ".join(sorted(PREDICATES - RULES_ONLY))}; object is a short name or phrase ("Berlin", "nurse", "Maria");
  detail qualifies it ("sister", "dog"); RELATIVE_OF is family beyond parents, siblings, children and partners
  (detail "grandma", "cousin"), FRIEND_OF anyone else around the user (detail "friend", "roommate", "boss");
  only facts the user states about their own life, none guessed;
  "ended": true when the user says the fact is over (a pet died, a break-up, left a job or a city);
  a BIRTHDAY object is the day and month as written ("3 May", "3 May 1990"); an AGE object is the user's
  age in years, in digits ("34"); a PRONOUNS object is as
  written ("she/her", "they/them"); an ALLERGIC_TO detail is "intolerant" for an intolerance
  ("lactose"), else empty; a HAS_CONDITION object is a lasting health condition the user says they
  have ("type 1 diabetes", "asthma", "ADHD"), not a passing illness; an AVOIDS object is a food or drink
  the user does not take as a rule ("pork", "alcohol", "gluten"), not a dislike; a LOST object is someone of the
  user's who died, by name or else by role ("Rose", "mother"), detail the role; a RELATIONSHIP object is the user's
  status: "married", "engaged", "in a relationship", "single", "divorced", "separated" or "widowed"; a SPEAKS detail is
  "native", "learning" or empty; a FROM object is where the user comes from, detail "born", "grew up"
  or empty; a student's WORKS_AS object is what they study and "student" ("law student"), the
  school a WORKS_AT; a WORKS_AS detail is where the job is ("in Leeds") or empty;
  an INSTRUCTS object is an instruction the user gives the assistant for
  its later answers, as said ("Always answer in Spanish", "Never use emojis");
- profile: {{"name", "address_as"}} when the user says their name or how to be addressed, else null.
A line in square brackets names an attachment ("[image: cat.jpg]"); text after a line "{FORWARDED}" was
written by someone else and the user only passed it on: summarise it, but take no relation or profile from it.
Answer with one JSON object only: {{"exchanges": [...]}}, one entry per exchange, same ids."""


@dataclass
class ExtractionStats:
    """Counters of this process's extractor and session writer (reported by ``memory stats``).

    ``calls`` and the token counts cover both; ``*_per_exchange`` divide them by the exchanges extracted.
    """

    mode: str = "deterministic"
    calls: int = 0
    exchanges: int = 0
    llm_exchanges: int = 0
    fallbacks: int = 0
    over_budget: int = 0
    repairs: int = 0
    dropped_relations: int = 0
    prompt_tokens: int = 0  # of every call: extraction and session summaries
    completion_tokens: int = 0
    session_summaries: int = 0  # finished sessions offered to the LLM (memory.llm_sessions)
    session_calls: int = 0
    session_llm: int = 0  # of them written by the LLM; the others by the rules:
    session_fallbacks: int = 0
    session_over_budget: int = 0

    def counts(self) -> dict[str, int]:
        """Every counter (all but ``mode``)."""
        return {k: v for k, v in asdict(self).items() if k != "mode"}

    @classmethod
    def from_totals(cls, totals: Mapping[str, int | str]) -> ExtractionStats:
        """Stats from ``RedisExtractionCounters.totals`` (names it does not know are left out)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in totals.items() if k in known})  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = asdict(self)
        done = max(self.exchanges, 1)
        out["calls_per_exchange"] = round(self.calls / done, 3)
        out["tokens_per_exchange"] = round((self.prompt_tokens + self.completion_tokens) / done, 1)
        return out


class _TooLong(Exception):
    """The prompt (with the answer's room) does not fit the model's context window."""


class _Unreachable(Exception):
    """The endpoint gave no answer at all (timeout, connection error, other HTTP error)."""


def clip_summary(text: str, limit: int = SUMMARY_CHARS) -> str:
    """``text`` on one line, cut at a word boundary to at most ``limit`` characters."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit - 1].rsplit(" ", 1)[0] or text[:limit - 1]
    return cut.rstrip(",;:") + "…"


class LLMExtractor:
    """The ``Extractor`` backed by an OpenAI-compatible chat endpoint, with the deterministic one behind it."""

    def __init__(self, client: openai.AsyncOpenAI, settings: LLMSettings,
                 fallback: DeterministicExtractor, budget: TokenBudget | None = None,
                 counters: SharedCounters | None = None) -> None:
        self.client = client
        self.settings = settings
        self.fallback = fallback
        self.budget = budget if settings.extraction_daily_tokens > 0 else None
        self.counters = counters
        self.batch_size = settings.extraction_batch_size
        self._modes = list(MODES) if settings.extraction_mode == "auto" else [settings.extraction_mode]
        self.stats = ExtractionStats(mode=self._modes[0])
        self._published = ExtractionStats()

    async def publish(self) -> None:
        """Add what was counted since the last call to the shared ``counters`` (kept for the next
        call when they cannot be written: nothing is lost)."""
        if self.counters is None:
            return
        now, before = self.stats.counts(), self._published.counts()
        delta = {k: v - before[k] for k, v in now.items() if v != before[k]}
        if not delta:
            return
        try:
            await self.counters.add(delta, self.stats.mode)
        except TierUnavailable as exc:
            log.warning("extraction counters not shared this time (kept for the next call): %s", exc)
            return
        self._published = ExtractionStats.from_totals(now)

    async def extract(self, exchanges: Sequence[Exchange]) -> list[Extraction]:
        """One extraction per exchange, in order; never raises for a bad or missing answer.

        Exchanges of a guild (or DM user) over its daily token budget get the rules' extraction,
        counted in ``stats.over_budget``. Raises TierUnavailable when the budget cannot be read.
        """
        done: dict[str, Extraction] = {}
        todo = list(exchanges)
        if self.budget is not None:
            spent = await self.budget.spent(sorted({_owner(e) for e in todo}))
            over = [e for e in todo if spent[_owner(e)] >= self.settings.extraction_daily_tokens]
            for e in over:
                self.stats.over_budget += 1
                done[e.id] = self.fallback.extract_one(e)
            todo = [e for e in todo if e.id not in done]
        by_scope: dict[tuple[str, str | None], list[Exchange]] = {}
        for e in todo:  # one user and scope per call: no model ever reads two users' words together
            by_scope.setdefault((e.user_id, e.guild_id), []).append(e)
        batches = [group[i:i + self.batch_size] for group in by_scope.values()
                   for i in range(0, len(group), self.batch_size)]
        for batch in batches:
            before = self.stats.prompt_tokens + self.stats.completion_tokens
            for e, x in zip(batch, await self._batch(batch), strict=True):
                done[e.id] = x
            await self._charge(batch, self.stats.prompt_tokens + self.stats.completion_tokens - before)
        await self.publish()
        return [done[e.id] for e in exchanges]

    async def _charge(self, batch: Sequence[Exchange], tokens: int) -> None:
        """Split a batch's tokens over the owners of its exchanges."""
        if self.budget is None or tokens <= 0:
            return
        share: dict[str, int] = {}
        for e in batch:
            share[_owner(e)] = share.get(_owner(e), 0) + 1
        for owner, n in share.items():
            await self.budget.add(owner, -(-tokens * n // len(batch)))

    async def _batch(self, batch: list[Exchange]) -> list[Extraction]:
        ids = {str(i + 1): e for i, e in enumerate(batch)}
        messages = [{"role": "system", "content": self._instructions()},
                    {"role": "user", "content": self._render(ids)}]
        found: dict[str, ExchangeOut] = {}
        try:
            content = await self._ask(messages)
            error = self._collect(content, ids, found)
            if error is not None:
                self.stats.repairs += 1
                messages += [{"role": "assistant", "content": content[:4000]},
                             {"role": "user", "content": f"That answer was not usable: {error[:400]}. "
                                                         "Answer again with the complete JSON object only."}]
                self._collect(await self._ask(messages), ids, found)
        except _TooLong as exc:
            if len(messages) == 2 and len(batch) > 1:  # the batch does not fit the model's window: halve it
                # (not when the repair, which carries the first answer, is what does not fit)
                half = len(batch) // 2
                return await self._batch(batch[:half]) + await self._batch(batch[half:])
            log.warning("LLM extraction prompt too long for the model, deterministic for %d exchanges: %s",
                        len(ids) - len(found), exc)
        except _Unreachable as exc:
            log.warning("LLM extraction unavailable, deterministic for %d exchanges: %s",
                        len(ids) - len(found), exc)
        self.stats.exchanges += len(batch)
        result = []
        for key, exchange in ids.items():
            if key in found:
                self.stats.llm_exchanges += 1
                result.append(self._extraction(exchange, found[key]))
            else:
                self.stats.fallbacks += 1
                result.append(self.fallback.extract_one(exchange))
        return result

    def _instructions(self) -> str:
        if self._modes[0] == "json_schema":
            return INSTRUCTIONS
        return INSTRUCTIONS + "\nThe JSON schema of the answer:\n" + json.dumps(BATCH_SCHEMA)

    @staticmethod
    def _render(ids: dict[str, Exchange]) -> str:
        parts = []
        for key, e in ids.items():
            parts.append(f"### exchange {key} ({e.timestamp:%Y-%m-%d})\nUser: {e.user_message[:_MAX_MESSAGE_CHARS]}"
                         f"\nAssistant: {e.bot_response[:_MAX_MESSAGE_CHARS]}")
        return "\n\n".join(parts)

    def _collect(self, content: str, ids: dict[str, Exchange], found: dict[str, ExchangeOut]) -> str | None:
        """Add the valid entries of ``content`` to ``found``; returns what was wrong, or None."""
        try:
            data = json.loads(_strip_fence(content))
        except ValueError as exc:
            return f"not valid JSON ({exc})"
        items = data.get("exchanges") if isinstance(data, dict) else data if isinstance(data, list) else None
        if not isinstance(items, list):
            return 'the JSON must be an object with an "exchanges" list'
        problems = []
        for item in items:
            try:
                entry = ExchangeOut.model_validate(item)
            except ValidationError as exc:
                problems.append(f"an entry is invalid: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}")
                continue
            if entry.id in ids:
                found.setdefault(entry.id, entry)
        missing = [key for key in ids if key not in found]
        if missing:
            problems.append("missing or invalid exchanges: " + ", ".join(missing))
        return "; ".join(problems) or None

    async def _ask(self, messages: list[dict[str, str]]) -> str:
        """The text of one answer ("" when there is none). Raises _TooLong or _Unreachable."""
        while True:
            mode = self._modes[0]
            try:
                response = await self.client.chat.completions.create(
                    model=self.settings.model, messages=messages,  # type: ignore[arg-type]
                    temperature=0.0, max_tokens=self.settings.extraction_max_tokens,
                    **self._format(mode))
            except openai.APIStatusError as exc:
                if _context_exceeded(exc):  # an HTTP 400 too, but no reason to give up a mode
                    raise _TooLong(str(exc)[:300]) from exc
                if exc.status_code in _STEP_DOWN_STATUSES and len(self._modes) > 1:
                    log.warning("the LLM endpoint refused %s output (HTTP %d); trying %s", mode,
                                exc.status_code, self._modes[1])
                    self._modes.pop(0)
                    self.stats.mode = self._modes[0]
                    messages[0]["content"] = self._instructions()
                    continue
                raise _Unreachable(f"HTTP {exc.status_code}") from exc
            except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                raise _Unreachable(type(exc).__name__) from exc
            except openai.OpenAIError as exc:
                raise _Unreachable(str(exc) or type(exc).__name__) from exc
            break
        self.stats.calls += 1
        if response.usage is not None:
            self.stats.prompt_tokens += int(response.usage.prompt_tokens or 0)
            self.stats.completion_tokens += int(response.usage.completion_tokens or 0)
        if not response.choices:
            return ""
        choice = response.choices[0]
        refusal = getattr(choice.message, "refusal", None)
        if refusal:
            return f"(refused: {refusal})"
        return choice.message.content or ""

    @staticmethod
    def _format(mode: str) -> dict[str, Any]:
        if mode == "json_schema":
            return {"response_format": {"type": "json_schema", "json_schema": {
                "name": "memory_extraction", "schema": BATCH_SCHEMA, "strict": False}}}
        if mode == "json_object":
            return {"response_format": {"type": "json_object", "schema": BATCH_SCHEMA}}
        return {}

    def _extraction(self, exchange: Exchange, out: ExchangeOut) -> Extraction:
        base = self.fallback.extract_one(exchange)  # chunks to embed and topics stay rule-based
        said: list[Statement] = []
        for r in out.relations:
            predicate = r.predicate.strip().upper().replace(" ", "_")
            name = normalise(r.object)
            if predicate not in PREDICATES or predicate in RULES_ONLY or not name:
                self.stats.dropped_relations += 1
                continue
            if predicate == "BIRTHDAY":  # "May 3rd" and "3 May" are one day; "soon" is none
                if (day := birthday(r.object)) is None:
                    self.stats.dropped_relations += 1
                else:
                    said.append(day)
                continue
            if predicate == "AGE":  # "34", "34 years old"; "young" or "340" is none
                years = re.match(r"\s*(\d{1,3})\b", r.object)
                if years is None or int(years.group(1)) not in AGE_RANGE:
                    self.stats.dropped_relations += 1
                else:
                    said.append(Statement("AGE", str(int(years.group(1))), str(int(years.group(1)))))
                continue
            detail = " ".join(r.detail.split())  # a kind ("sister", "dog") in lower case; a job's place as written
            said.append(Statement(predicate, name, " ".join(r.object.split()),
                                  detail if predicate == "WORKS_AS" else detail.lower(), ended=r.ended))
        for predicate, value in (("NAME", out.profile.name), ("CALLED", out.profile.address_as)):
            if value and normalise(value):
                said.append(Statement(predicate, normalise(value), " ".join(value.split())))
        # a clear self-statement ("my name is", "I live in") the model left out still counts; where
        # the model states the same kind of fact, its reading wins
        stated = {s.predicate for s in said}
        dated = {(s.predicate, s.obj): s for s in base.statements if s.since is not None}
        said = [replace(s, since=d.since, since_unit=d.since_unit) if (d := dated.get((s.predicate, s.obj)))
                and s.since is None else s for s in said]  # "last month" read by the rules dates the model's fact
        said += [s for s in base.statements if s.predicate not in stated and not s.ended]
        # an ending the rules read ("my cat Miso died") is kept, and outweighs the model reading the
        # same words as the fact itself
        ends = [s for s in base.statements if s.ended]
        said = [*ends, *(s for s in said if not any(e.predicate == s.predicate and e.obj == s.obj for e in ends))]
        said.sort(key=lambda s: not s.ended)  # endings first, so a new fact said with them stays
        mentions: dict[str, Mention] = {}
        for name in out.entities:
            key = normalise(name)
            if key and len(key) <= 200:
                mentions.setdefault(key, Mention(key, "entity", " ".join(name.split())))
        for s in said:
            if s.predicate not in NOT_ENTITIES and s.obj != ANY_OBJECT:
                mentions.setdefault(s.obj, Mention(s.obj, "entity", s.label))
        for t, label in labelled_topics(without_notes(exchange.user_message), besides=list(mentions)):
            mentions.setdefault(t, Mention(t, "topic", label))
        unique = list({(s.predicate, s.obj): s for s in said}.values())
        return Extraction(exchange.id, clip_summary(out.summary), base.chunks, tuple(mentions.values()),
                          tuple(unique))


class TokenBudget(Protocol):
    async def spent(self, owners: Sequence[str]) -> dict[str, int]: ...

    async def add(self, owner: str, tokens: int) -> None: ...


class SharedCounters(Protocol):
    async def add(self, counts: Mapping[str, int], mode: str) -> None: ...


def _owner(e: Exchange) -> str:
    """Whose daily budget an exchange's extraction counts against: its guild, or the DM user."""
    return f"g:{e.guild_id}" if e.guild_id is not None else f"dm:{e.user_id}"


def _context_exceeded(exc: openai.APIStatusError) -> bool:
    """Whether the endpoint says the prompt does not fit the context window (OpenAI and llama-cpp-python:
    code ``context_length_exceeded``; llama.cpp's server: type ``exceed_context_size_error``)."""
    if exc.status_code != 400:
        return False
    kinds = f"{getattr(exc, 'code', '') or ''} {getattr(exc, 'type', '') or ''}".lower()
    return "context" in kinds or "maximum context length" in str(exc).lower()


def _strip_fence(text: str) -> str:
    """Models in prompt mode often wrap JSON in a Markdown fence; take what is inside."""
    text = text.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text
