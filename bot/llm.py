"""The chat model: one OpenAI-compatible endpoint (OpenAI, Ollama, vLLM, llama.cpp server).

``ChatLLM`` sends a ``Prompt`` and returns a ``Completion`` (text, token
usage, and any facts the model asked to save through the ``remember_fact``
tool). Every failure - timeout, connection error, HTTP error, a reply without
text - surfaces as ``LLMUnavailable``, so callers handle one error type.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import openai

from bot.reports import FORGET_WHAT
from memory.metrics import Metrics
from memory.settings import LLMSettings
from memory.tiers.ledger import FACT_CATEGORIES
from memory.tokens import count_tokens

log = logging.getLogger(__name__)

MAX_FACT_CHARS = 500
DESCRIBE_IMAGE_TOKENS = 120
DESCRIBE_IMAGE_PROMPT = ("You describe images a user sent in a chat, so that a memory of the chat keeps what "
                         "they showed. In one or two plain sentences, say what the image shows: people, "
                         "places, objects, any readable text. No preamble, no guesses about who people are.")

REMEMBER_FACT_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "remember_fact",
        "description": ("Save one short fact about the user that they explicitly asked you to remember "
                        "(e.g. 'My birthday is 3 May'). Do not call it for anything else."),
        "parameters": {
            "type": "object",
            "properties": {
                "fact": {"type": "string", "description": "the fact, in one sentence"},
                "category": {"type": "string", "enum": list(FACT_CATEGORIES)},
                "importance": {"type": "integer", "minimum": 1, "maximum": 5,
                               "description": "5 = vital (allergies, names), 1 = trivia"},
            },
            "required": ["fact"],
        },
    },
}


RETRIEVE_USER_INFO_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "retrieve_user_info",
        "description": ("Search your memory of this user (their earlier conversations with you) when the "
                        "notes you were given do not answer the question. Returns the best matches."),
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "what to look for, in a few words"}},
            "required": ["query"],
        },
    },
}
FORGET_MEMORIES_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "forget_memories",
        "description": ("Call this when the user asks you to forget or delete something they told you. You "
                        "cannot erase memories yourself: this shows the user a confirmation button, and "
                        "nothing is forgotten unless they press it, so never say it is already forgotten. "
                        "what: 'topic' (our exchanges about one topic, given in 'topic'), 'last' (our last "
                        "exchange), 'here' (everything in this server or these DMs), 'all' (everything)."),
        "parameters": {
            "type": "object",
            "properties": {
                "what": {"type": "string", "enum": list(FORGET_WHAT)},
                "topic": {"type": "string", "description": (
                    "when what is 'topic': a word or name as the user wrote it in the conversation "
                    "('Elm Street', not 'address'), since it is matched against what was said")},
            },
            "required": ["what"],
        },
    },
}
SET_TIME_ZONE_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "set_time_zone",
        "description": ("Call this when the user tells you their time zone, or where they live and that you "
                        "should use their local time. Their dates ('yesterday') and the times you see are "
                        "then in that zone."),
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string", "description": (
                "an IANA time zone name (Europe/Lisbon) or the city a zone is named after")}},
            "required": ["zone"],
        },
    },
}
MAX_TOOL_ROUNDS = 2


def tool_definitions(runner_tools: bool = True) -> list[dict[str, Any]]:
    """The tools sent with a prompt: ``remember_fact``, and with ``runner_tools`` those that need a
    ``ToolRunner`` (search, forget, time zone)."""
    return [REMEMBER_FACT_TOOL] + ([RETRIEVE_USER_INFO_TOOL, FORGET_MEMORIES_TOOL, SET_TIME_ZONE_TOOL]
                                   if runner_tools else [])


@functools.cache
def tool_tokens() -> int:
    """Tokens the tool definitions take of the model's window (counted as their JSON, which is how
    local servers put them into the prompt's template)."""
    return count_tokens(json.dumps(tool_definitions()))
_RUNNER_TOOLS = ("remember_fact", "retrieve_user_info", "forget_memories", "set_time_zone")


class ToolRunner(Protocol):
    """Carries out the model's tool calls for one reply, always for the asking user and scope."""

    async def remember(self, fact: str, category: str, importance: int) -> str:
        """Save ``fact``; returns the result sent back to the model."""

    async def retrieve(self, query: str) -> str:
        """Search the user's memory; returns the text sent back to the model."""

    async def propose_forget(self, what: str, topic: str | None) -> str:
        """Put a forget to the user for confirmation; returns the text sent back to the model."""

    async def set_time_zone(self, zone: str) -> str:
        """Set the user's time zone; returns the result sent back to the model."""


class LLMUnavailable(Exception):
    """The LLM did not produce a usable answer (timeout, error status, unreachable, empty output)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"LLM unavailable: {reason}")


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier message of the conversation, sent verbatim."""

    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class Prompt:
    """What the model sees: a system message, earlier turns (oldest first), the new user message."""

    system: str
    turns: tuple[Turn, ...]
    user: str

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.system},
                *({"role": t.role, "content": t.content} for t in self.turns),
                {"role": "user", "content": self.user}]

    def render(self) -> str:
        """The prompt as readable text (what the console shows when no LLM is configured)."""
        parts = [f"[system]\n{self.system}"]
        parts += [f"[{t.role}]\n{t.content}" for t in self.turns]
        parts.append(f"[user]\n{self.user}")
        return "\n\n".join(parts)


@dataclass(frozen=True, slots=True)
class Completion:
    """The model's answer. ``facts`` are the valid ``remember_fact`` calls it made."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    facts: tuple[str, ...] = ()


def _fact_details(raw: str) -> tuple[str, int]:
    """Category and importance of a remember_fact call; missing or invalid ones get the defaults."""
    try:
        args = json.loads(raw)
    except ValueError:
        args = {}
    category = args.get("category") if isinstance(args, dict) else None
    importance = args.get("importance") if isinstance(args, dict) else None
    return (category if category in FACT_CATEGORIES else "other",
            importance if isinstance(importance, int) and 1 <= importance <= 5 else 3)


def _call_ok(call: Any) -> bool:
    function = getattr(call, "function", None)
    if function is None or function.name not in _RUNNER_TOOLS:
        log.warning("ignoring an unknown tool call from the LLM: %r", getattr(function, "name", call))
        return False
    return True


def parse_fact_arguments(raw: object, key: str = "fact") -> str | None:
    """Return the ``key`` string of a tool call's JSON arguments, or None if they are malformed."""
    if not isinstance(raw, str):
        return None
    try:
        args = json.loads(raw)
    except ValueError:
        return None
    fact = args.get(key) if isinstance(args, dict) else None
    if not isinstance(fact, str):
        return None
    fact = " ".join(fact.split())
    if not fact or len(fact) > MAX_FACT_CHARS or "\x00" in fact:
        return None
    return fact


class _Call:
    """The clock and the metrics of one request (see ``ChatLLM._errors``)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics, self.start = metrics, time.perf_counter()

    def ok(self, prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
        self.metrics.llm_call("ok", time.perf_counter() - self.start, prompt_tokens, completion_tokens)

    def failed(self) -> None:
        self.metrics.llm_call("error", time.perf_counter() - self.start)


class ChatLLM:
    """An async client for one chat model.

    Open with ``async with`` or ``create()``; close with ``aclose()``.
    """

    def __init__(self, settings: LLMSettings, *, max_retries: int = 1, metrics: Metrics | None = None) -> None:
        if settings.base_url is None:
            raise ValueError("ChatLLM needs llm.base_url; without it the bot runs without an LLM")
        self.settings = settings
        self.metrics = metrics or Metrics()
        self._max_retries = max_retries
        self._client: openai.AsyncOpenAI | None = None

    @property
    def model(self) -> str:
        return self.settings.model

    async def create(self) -> ChatLLM:
        self._client = openai.AsyncOpenAI(
            base_url=self.settings.base_url, api_key=self.settings.api_key.get_secret_value(),
            timeout=self.settings.timeout_seconds, max_retries=self._max_retries)
        return self

    async def __aenter__(self) -> ChatLLM:
        return await self.create()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def complete_with_tools(self, prompt: Prompt, runner: ToolRunner, *,
                                  max_tokens: int | None = None) -> Completion:
        """Answer with the memory tools: each round's tool calls are run by ``runner`` and their
        results sent back, at most ``MAX_TOOL_ROUNDS`` rounds, then a last call without tools.

        ``facts`` of the result are those ``runner`` saved. Raises LLMUnavailable as ``complete``.
        """
        messages: list[dict[str, Any]] = list(prompt.messages())
        saved: list[str] = []
        prompt_tokens = completion_tokens = 0
        for round_ in range(MAX_TOOL_ROUNDS + 1):
            tools = round_ < MAX_TOOL_ROUNDS
            data = await self._create(messages, tools=tools, runner_tools=tools, max_tokens=max_tokens,
                                      temperature=None, request_timeout=None)
            if not data.choices:
                raise LLMUnavailable("the reply had no choices")
            if data.usage:
                prompt_tokens += int(data.usage.prompt_tokens)
                completion_tokens += int(data.usage.completion_tokens)
            message = data.choices[0].message
            text = (message.content or "").strip()
            calls = [c for c in message.tool_calls or [] if _call_ok(c)] if tools else []
            if not calls:
                if not text and not saved:
                    raise LLMUnavailable("the reply had no text")
                return Completion(text, prompt_tokens, completion_tokens, tuple(saved))
            messages.append({"role": "assistant", "content": message.content, "tool_calls": [
                {"id": c.id, "type": "function",
                 "function": {"name": c.function.name, "arguments": c.function.arguments}} for c in calls]})
            for call in calls:
                result = await self._run_tool(call, runner, saved)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        raise AssertionError("unreachable: the last round has no tools")  # pragma: no cover

    async def _run_tool(self, call: Any, runner: ToolRunner, saved: list[str]) -> str:
        args = call.function.arguments
        if call.function.name == "remember_fact":
            fact = parse_fact_arguments(args)
            if fact is None:
                return "error: the arguments must be JSON like {\"fact\": \"...\"}"
            if fact in saved:
                return f"already saved: {fact}"
            category, importance = _fact_details(args)
            result = await runner.remember(fact, category, importance)
            if result.startswith("saved"):
                saved.append(fact)
            return result
        if call.function.name == "forget_memories":
            what = parse_fact_arguments(args, key="what")
            if what not in FORGET_WHAT:
                return "error: the arguments must be JSON like {\"what\": \"topic\", \"topic\": \"...\"}"
            return await runner.propose_forget(what, parse_fact_arguments(args, key="topic"))
        if call.function.name == "set_time_zone":
            zone = parse_fact_arguments(args, key="zone")
            if zone is None:
                return "error: the arguments must be JSON like {\"zone\": \"Europe/Lisbon\"}"
            return await runner.set_time_zone(zone)
        query = parse_fact_arguments(args, key="query")
        if query is None:
            return "error: the arguments must be JSON like {\"query\": \"...\"}"
        return await runner.retrieve(query)

    async def complete(self, prompt: Prompt, *, tools: bool = False, max_tokens: int | None = None,
                       temperature: float | None = None) -> Completion:
        """Ask the model once. Raises LLMUnavailable when no usable text or fact comes back."""
        data = await self._create(prompt.messages(), tools=tools, max_tokens=max_tokens,
                                  temperature=temperature, request_timeout=None)
        if not data.choices:
            raise LLMUnavailable("the reply had no choices")
        message = data.choices[0].message
        text = (message.content or "").strip()
        facts: list[str] = []
        for call in message.tool_calls or []:
            function = getattr(call, "function", None)
            if function is None or function.name != "remember_fact":
                log.warning("ignoring an unknown tool call from the LLM: %r", getattr(function, "name", call))
                continue
            fact = parse_fact_arguments(function.arguments)
            if fact is None:
                log.warning("ignoring a remember_fact call with malformed arguments: %.200r",
                            function.arguments)
                continue
            facts.append(fact)
        if not text and not facts:
            raise LLMUnavailable("the reply had no text")
        usage = data.usage
        return Completion(text=text,
                          prompt_tokens=int(usage.prompt_tokens) if usage else 0,
                          completion_tokens=int(usage.completion_tokens) if usage else 0,
                          facts=tuple(facts))

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[_Call]:
        """One request besides the chat (an image, a voice message): its failures become LLMUnavailable
        naming ``what``, and it is counted in ``metrics`` either way (``ok`` once it succeeded)."""
        call = _Call(self.metrics)
        try:
            yield call
        except openai.APITimeoutError as exc:
            call.failed()
            raise LLMUnavailable(f"{what} timed out") from exc
        except openai.APIStatusError as exc:
            call.failed()
            raise LLMUnavailable(f"HTTP {exc.status_code} from {self.settings.base_url} ({what})") from exc
        except openai.OpenAIError as exc:  # cannot connect, a malformed answer
            call.failed()
            raise LLMUnavailable(str(exc) or type(exc).__name__) from exc

    async def describe_image(self, image: bytes, content_type: str, *, request_timeout: float) -> Completion:
        """What ``image`` shows, in a sentence or two, by ``vision_model`` on the same endpoint (the image
        goes as a data URL: the endpoint fetches nothing), with the tokens it cost; raises LLMUnavailable
        as ``complete`` does."""
        if not self.settings.vision_model:
            raise LLMUnavailable("no vision model is configured (LLM__VISION_MODEL)")
        url = f"data:{content_type};base64,{base64.b64encode(image).decode()}"
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": DESCRIBE_IMAGE_PROMPT},
            {"role": "user", "content": [{"type": "text", "text": "Describe this image."},
                                         {"type": "image_url", "image_url": {"url": url}}]}]
        if self._client is None:
            raise RuntimeError("ChatLLM is not open; use 'async with' or create()")
        with self._errors("image description") as call:
            done = await self._client.chat.completions.create(
                model=self.settings.vision_model, messages=messages,  # type: ignore[arg-type]
                max_tokens=DESCRIBE_IMAGE_TOKENS, temperature=0.2, timeout=request_timeout)
        usage = getattr(done, "usage", None)
        tokens = int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0)
        call.ok(*tokens)
        text = done.choices[0].message.content if done.choices else None
        if not text or not text.strip():
            raise LLMUnavailable("the image description had no text")
        return Completion(text.strip(), *tokens)

    async def transcribe(self, audio: bytes, filename: str, *, request_timeout: float) -> Completion:
        """The words spoken in ``audio`` (a voice message), by ``transcribe_model`` on the same endpoint,
        with the tokens it cost when the endpoint counts them (models priced by the minute report
        none); raises LLMUnavailable as ``complete`` does, and when no such model is configured."""
        if self._client is None:
            raise RuntimeError("ChatLLM is not open; use 'async with' or create()")
        if not self.settings.transcribe_model:
            raise LLMUnavailable("no transcription model is configured (LLM__TRANSCRIBE_MODEL)")
        with self._errors("transcription") as call:
            done = await self._client.audio.transcriptions.create(
                model=self.settings.transcribe_model, file=(filename, audio), timeout=request_timeout)
        usage = getattr(done, "usage", None)  # {"type": "tokens", "input_tokens", ...} or {"type": "duration"}
        tokens = int(getattr(usage, "input_tokens", 0) or 0), int(getattr(usage, "output_tokens", 0) or 0)
        call.ok(*tokens)
        text = getattr(done, "text", None)
        if not isinstance(text, str):
            raise LLMUnavailable("the transcription had no text")
        return Completion(text.strip(), *tokens)

    async def ping(self, request_timeout: float = 10.0) -> None:
        """A one-token request to check the endpoint and model at startup; raises LLMUnavailable."""
        await self._create([{"role": "user", "content": "ping"}], tools=False, max_tokens=1,
                           temperature=0.0, request_timeout=request_timeout)

    async def _create(self, messages: list[dict[str, Any]], *, tools: bool, max_tokens: int | None,
                      temperature: float | None, request_timeout: float | None, runner_tools: bool = False) -> Any:
        """One request, counted in ``metrics`` (calls by outcome, latency, tokens). ``runner_tools``
        adds the tools that need a ``ToolRunner`` (search, forget, time zone) to ``remember_fact``."""
        start = time.perf_counter()
        try:
            data = await self._request(messages, tools=tools, max_tokens=max_tokens, temperature=temperature,
                                       request_timeout=request_timeout, runner_tools=runner_tools)
        except LLMUnavailable:
            self.metrics.llm_call("error", time.perf_counter() - start)
            raise
        usage = getattr(data, "usage", None)
        self.metrics.llm_call("ok", time.perf_counter() - start, int(getattr(usage, "prompt_tokens", 0) or 0),
                              int(getattr(usage, "completion_tokens", 0) or 0))
        return data

    async def _request(self, messages: list[dict[str, Any]], *, tools: bool, max_tokens: int | None,
                       temperature: float | None, request_timeout: float | None, runner_tools: bool = False) -> Any:
        if self._client is None:
            raise RuntimeError("ChatLLM is not open; use 'async with' or create()")
        kwargs: dict[str, Any] = {}
        if tools:
            kwargs["tools"] = tool_definitions(runner_tools)
        if request_timeout is not None:
            kwargs["timeout"] = request_timeout
        try:
            return await self._client.chat.completions.create(
                model=self.settings.model, messages=messages,  # type: ignore[arg-type]
                temperature=self.settings.temperature if temperature is None else temperature,
                max_tokens=max_tokens or self.settings.max_tokens, **kwargs)
        except openai.APITimeoutError as exc:
            raise LLMUnavailable("timed out") from exc
        except openai.APIStatusError as exc:
            raise LLMUnavailable(f"HTTP {exc.status_code} from {self.settings.base_url}") from exc
        except openai.APIConnectionError as exc:
            raise LLMUnavailable(f"cannot reach {self.settings.base_url}") from exc
        except openai.OpenAIError as exc:  # malformed responses and other client-side failures
            raise LLMUnavailable(str(exc) or type(exc).__name__) from exc
