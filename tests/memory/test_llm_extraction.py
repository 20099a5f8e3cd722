"""The LLM extractor against a fake OpenAI-compatible server on a real socket, with scripted answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import openai
import pytest_asyncio

from memory.extraction import DeterministicExtractor
from memory.llm_extraction import SUMMARY_CHARS, LLMExtractor
from memory.models import Exchange
from memory.settings import LLMSettings
from tests.bot.fake_llm import FakeLLM

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
MESSAGES = [
    ("Hi! I'm Ana and I live in Paris with my cat Tofu.", "Nice to meet you, Ana!"),
    ("My sister Maria started a job in Lisbon on 3 March.", "Good luck to Maria."),
    ("I've been hiking a lot lately.", "Hiking is great exercise."),
]


def exchanges(n: int = 3) -> list[Exchange]:
    return [Exchange(f"x{i}", "ana", None, None, u, b, T0 + timedelta(days=i))
            for i, (u, b) in enumerate(MESSAGES[:n])]


def answer(n: int = 3, **overrides: Any) -> str:
    entries: list[Any] = [
        {"id": "1", "summary": "Ana introduces herself: lives in Paris with her cat Tofu.",
         "entities": ["Paris", "Tofu"],
         "relations": [{"predicate": "LIVES_IN", "object": "Paris"},
                       {"predicate": "HAS_PET", "object": "Tofu", "detail": "cat"}],
         "profile": {"name": "Ana", "address_as": None}},
        {"id": "2", "summary": "Ana's sister Maria starts a job in Lisbon on 3 March.",
         "entities": ["Maria", "Lisbon"],
         "relations": [{"predicate": "SIBLING_OF", "object": "Maria", "detail": "sister"}], "profile": {}},
        {"id": "3", "summary": "Ana hikes a lot.", "entities": [],
         "relations": [{"predicate": "likes", "object": "hiking"}, {"predicate": "OWNS_YACHT", "object": "x"}]},
    ][:n]
    for entry in entries:
        entry.update(overrides)
    return json.dumps({"exchanges": entries})


def one_answer(summary: str, entities: list[str], *relations: dict[str, Any]) -> list[dict[str, str]]:
    """A script whose one answer is a valid extraction of one exchange."""
    return [{"content": json.dumps({"exchanges": [
        {"id": "1", "summary": summary, "entities": entities, "relations": list(relations), "profile": {}}]})}]


@pytest_asyncio.fixture(scope="module")
async def server() -> AsyncIterator[FakeLLM]:
    fake = await FakeLLM().start()
    yield fake
    await fake.aclose()


_clients: list[openai.AsyncOpenAI] = []


@pytest_asyncio.fixture
async def fake(server: FakeLLM) -> AsyncIterator[FakeLLM]:
    server.reset("script")
    yield server
    server.reset("script")  # release a request still held by a scripted timeout
    while _clients:
        await _clients.pop().close()


def extractor(fake: FakeLLM, **settings: Any) -> LLMExtractor:
    s = LLMSettings(base_url=fake.base_url, extraction=True, timeout_seconds=settings.pop("timeout", 10.0),
                    **settings)
    client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="x", timeout=s.timeout_seconds, max_retries=0)
    _clients.append(client)
    return LLMExtractor(client, s, DeterministicExtractor())


async def test_a_valid_answer_gives_summaries_entities_relations_and_profile_in_one_call(fake: FakeLLM) -> None:
    fake.script = [{"content": answer()}]
    x = extractor(fake)
    out = await x.extract(exchanges())
    assert len(fake.requests) == 1  # three exchanges, one call
    assert fake.requests[0]["response_format"]["type"] == "json_schema"
    assert [e.exchange_id for e in out] == ["x0", "x1", "x2"]
    assert out[1].summary == "Ana's sister Maria starts a job in Lisbon on 3 March."
    assert {(s.predicate, s.obj, s.detail) for s in out[0].statements} == {
        ("LIVES_IN", "paris", ""), ("HAS_PET", "tofu", "cat"), ("NAME", "ana", "")}
    assert {m.label for m in out[1].mentions if m.kind == "entity"} == {"Maria", "Lisbon"}
    assert [(s.predicate, s.detail) for s in out[1].statements] == [("SIBLING_OF", "sister")]
    # a lower-case predicate is accepted, an unknown one is dropped and counted
    assert [(s.predicate, s.obj) for s in out[2].statements] == [("LIKES", "hiking")]
    assert x.stats.dropped_relations == 1
    assert (x.stats.calls, x.stats.fallbacks, x.stats.llm_exchanges) == (1, 0, 3)


async def test_self_statements_the_model_left_out_are_kept_and_its_own_reading_wins(fake: FakeLLM) -> None:
    said = Exchange("x9", "ana", None, None, "Hi! My name is Ana and I live in Lisbon. I work as a nurse.", "Hello!",
                    T0)
    # a valid answer that states only where she lives, and another city than the text's rules find
    fake.script = one_answer("Ana, a nurse, says hello.", ["Porto"], {"predicate": "LIVES_IN", "object": "Porto"})
    x = extractor(fake)
    [out] = await x.extract([said])
    assert {(s.predicate, s.obj) for s in out.statements} == {
        ("LIVES_IN", "porto"), ("NAME", "ana"), ("WORKS_AS", "nurse")}
    assert (x.stats.llm_exchanges, x.stats.fallbacks) == (1, 0)


async def test_a_jobs_place_keeps_its_case_and_a_kind_is_lower_case(fake: FakeLLM) -> None:
    said = Exchange("x7", "ana", None, None, "My Sister and I both work as nurses in Leeds.", "Nice!", T0)
    fake.script = one_answer("Ana and her sister are nurses in Leeds.", ["Leeds"],
                             {"predicate": "WORKS_AS", "object": "nurse", "detail": "in Leeds"},
                             {"predicate": "SIBLING_OF", "object": "Ana's sister", "detail": "Sister"})
    [out] = await extractor(fake).extract([said])
    assert {(s.predicate, s.detail) for s in out.statements} == {("WORKS_AS", "in Leeds"), ("SIBLING_OF", "sister")}


async def test_the_start_a_message_names_dates_the_models_fact_too(fake: FakeLLM) -> None:
    said = Exchange("x8", "ana", None, None, "I moved to Lisbon last month.", "Welcome!", T0)
    fake.script = one_answer("Ana moved to Lisbon.", ["Lisbon"], {"predicate": "LIVES_IN", "object": "Lisbon"})
    [out] = await extractor(fake).extract([said])
    [home] = out.statements
    month_before = (T0.replace(day=1) - timedelta(days=1)).replace(day=1, hour=0, minute=0)
    assert (home.predicate, home.obj, home.since, home.since_unit) == ("LIVES_IN", "lisbon", month_before, "month")


async def test_an_ending_the_rules_read_outweighs_the_model_reading_it_as_the_fact(fake: FakeLLM) -> None:
    said = Exchange("x7", "ana", None, None, "My cat Tofu died yesterday. I quit my job, now I work at Meta.",
                    "I'm sorry.", T0)
    fake.script = one_answer("Tofu died; Ana works at Meta.", ["Tofu", "Meta"],
                             {"predicate": "HAS_PET", "object": "Tofu", "detail": "cat"},
                             {"predicate": "WORKS_AT", "object": "Meta"})
    [out] = await extractor(fake).extract([said])
    assert {(s.predicate, s.obj, s.ended) for s in out.statements} == {
        ("HAS_PET", "tofu", True), ("WORKS_AS", "*", True), ("WORKS_AT", "*", True), ("WORKS_AT", "meta", False)}
    assert [s.ended for s in out.statements] == [True, True, True, False]  # endings first: the new job survives
    assert "*" not in {m.name for m in out.mentions}


async def test_the_model_can_say_a_fact_ended_where_the_rules_see_none(fake: FakeLLM) -> None:
    said = Exchange("x6", "ana", None, None, "Rex passed away in the spring, I still miss him. Luna is settling in.",
                    "I'm sorry about Rex.", T0)
    fake.script = one_answer("Rex died in spring; Luna is new.", ["Rex", "Luna"],
                             {"predicate": "HAS_PET", "object": "Luna", "detail": "dog"},
                             {"predicate": "HAS_PET", "object": "Rex", "detail": "dog", "ended": True})
    [out] = await extractor(fake).extract([said])
    assert [(s.predicate, s.obj, s.ended) for s in out.statements] == [("HAS_PET", "rex", True),
                                                                      ("HAS_PET", "luna", False)]
    assert '"ended"' in fake.requests[0]["messages"][0]["content"]  # the instructions ask for it


async def test_the_models_birthday_is_read_as_a_day_or_dropped(fake: FakeLLM) -> None:
    said = Exchange("x5", "ana", None, None, "Birthday on the third of May, party soon!", "Fun!", T0)
    fake.script = one_answer("Ana's birthday is on 3 May.", [], {"predicate": "BIRTHDAY", "object": "May 3rd"},
                             {"predicate": "BIRTHDAY", "object": "soon"})
    x = extractor(fake)
    [out] = await x.extract([said])
    assert [(s.predicate, s.obj, s.label) for s in out.statements] == [("BIRTHDAY", "05-03", "3 May")]
    assert x.stats.dropped_relations == 1


async def test_the_models_age_is_a_number_of_years_or_dropped(fake: FakeLLM) -> None:
    said = Exchange("x6", "ana", None, None, "I'm thirty-four, still young!", "Nice.", T0)
    fake.script = one_answer("Ana is 34.", [], {"predicate": "AGE", "object": "34 years old"},
                             {"predicate": "AGE", "object": "young"}, {"predicate": "AGE", "object": "340"})
    x = extractor(fake)
    [out] = await x.extract([said])
    assert [(s.predicate, s.obj) for s in out.statements] == [("AGE", "34")]
    assert x.stats.dropped_relations == 2


async def test_a_plan_is_the_rules_dated_reading_not_the_models(fake: FakeLLM) -> None:
    said = Exchange("x7", "ana", None, None, "I have a job interview on Friday!", "Good luck.",
                    datetime(2026, 12, 2, 15, tzinfo=UTC))
    fake.script = one_answer("Ana has an interview on Friday.", [], {"predicate": "PLANS", "object": "interview"})
    x = extractor(fake)
    [out] = await x.extract([said])
    assert [(s.predicate, s.label, s.since) for s in out.statements] == [
        ("PLANS", "job interview", datetime(2026, 12, 4, tzinfo=UTC))]
    assert x.stats.dropped_relations == 1
    assert "PLANS" not in fake.requests[0]["messages"][0]["content"]  # not asked of the model


async def test_a_long_summary_is_cut_to_the_limit(fake: FakeLLM) -> None:
    fake.script = [{"content": answer(1, summary="Ana " + "talks about Paris and numbers 1234 " * 20)}]
    [out] = await extractor(fake).extract(exchanges(1))
    assert len(out.summary) <= SUMMARY_CHARS
    assert out.summary.startswith("Ana talks about Paris and numbers 1234")


async def test_malformed_json_is_repaired_once(fake: FakeLLM) -> None:
    fake.script = [{"content": '{"exchanges": [{"id": "1", "summ'}, {"content": answer(2)}]
    x = extractor(fake)
    out = await x.extract(exchanges(2))
    assert len(fake.requests) == 2
    assert "not valid JSON" in fake.requests[1]["messages"][-1]["content"]
    assert out[0].summary.startswith("Ana introduces herself")
    assert (x.stats.repairs, x.stats.fallbacks) == (1, 0)


async def test_a_truncated_answer_twice_falls_back_to_rules_and_is_counted(fake: FakeLLM) -> None:
    cut = answer()[:120]
    fake.script = [{"content": cut, "finish": "length"}, {"content": cut, "finish": "length"}]
    x = extractor(fake)
    out = await x.extract(exchanges())
    assert x.stats.fallbacks == 3
    rules = await DeterministicExtractor().extract(exchanges())
    assert out == rules  # nothing lost: the deterministic extraction of each exchange
    assert {(s.predicate, s.obj) for s in out[0].statements} >= {("NAME", "ana"), ("LIVES_IN", "paris")}


async def test_a_partly_valid_answer_keeps_the_valid_entries_and_falls_back_for_the_rest(fake: FakeLLM) -> None:
    good = json.loads(answer(2))["exchanges"]
    good[1]["summary"] = ""  # invalid: empty summary
    fake.script = [{"content": json.dumps({"exchanges": good})}, {"content": "still not JSON"}]
    x = extractor(fake)
    out = await x.extract(exchanges(2))
    assert out[0].summary.startswith("Ana introduces herself")
    assert out[1] == DeterministicExtractor().extract_one(exchanges(2)[1])
    assert (x.stats.llm_exchanges, x.stats.fallbacks, x.stats.repairs) == (1, 1, 1)


async def test_a_refusal_is_repaired_then_falls_back(fake: FakeLLM) -> None:
    fake.script = [{"refusal": "I can't help with that."}, {"refusal": "No."}]
    x = extractor(fake)
    out = await x.extract(exchanges(1))
    assert len(fake.requests) == 2
    assert out[0].statements and x.stats.fallbacks == 1


async def test_a_timeout_falls_back_without_losing_the_exchange(fake: FakeLLM) -> None:
    fake.script = [{"timeout": True}]
    x = extractor(fake, timeout=0.5)
    out = await x.extract(exchanges(2))
    assert out == await DeterministicExtractor().extract(exchanges(2))
    assert x.stats.fallbacks == 2


async def test_auto_mode_steps_down_to_json_object_and_remembers(fake: FakeLLM) -> None:
    fake.reject_formats = {"json_schema"}
    fake.script = [{"content": answer(1)}, {"content": answer(1)}]
    x = extractor(fake)
    await x.extract(exchanges(1))
    await x.extract(exchanges(1))
    formats = [(r.get("response_format") or {}).get("type") for r in fake.requests]
    assert formats == ["json_schema", "json_object", "json_object"]
    assert fake.requests[1]["response_format"]["schema"]["properties"]["exchanges"]["type"] == "array"
    # no length bounds sent: llama.cpp's grammar for a 2,000-character bound is refused and kills the server
    assert "maxLength" not in json.dumps(fake.requests[1]["response_format"]["schema"])
    assert x.stats.mode == "json_object" and x.stats.fallbacks == 0


async def test_prompt_mode_sends_the_schema_in_the_instructions_and_reads_fenced_json(fake: FakeLLM) -> None:
    fake.script = [{"content": "```json\n" + answer(1) + "\n```"}]
    x = extractor(fake, extraction_mode="prompt")
    [out] = await x.extract(exchanges(1))
    assert "response_format" not in fake.requests[0]
    assert '"exchanges"' in fake.requests[0]["messages"][0]["content"]
    assert out.summary.startswith("Ana introduces herself") and x.stats.fallbacks == 0


async def test_batches_bound_the_calls_per_exchange(fake: FakeLLM) -> None:
    fake.script = [{"content": answer(2)}, {"content": answer(1)}]
    x = extractor(fake, extraction_batch_size=2)
    await x.extract(exchanges(3))
    assert len(fake.requests) == 2
    assert x.stats.as_dict()["calls_per_exchange"] == round(2 / 3, 3)


async def test_a_guild_over_its_daily_token_budget_gets_the_rules(fake: FakeLLM, system_redis_url: str) -> None:
    import uuid

    from memory.tiers.budget import RedisTokenBudget
    from memory.tiers.cache import create_redis

    redis = await create_redis(system_redis_url)
    try:
        budget = RedisTokenBudget(redis)
        g1, g2 = f"g{uuid.uuid4().hex[:8]}", f"g{uuid.uuid4().hex[:8]}"
        s = LLMSettings(base_url=fake.base_url, extraction=True, extraction_daily_tokens=50)
        client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="x", max_retries=0)
        _clients.append(client)
        x = LLMExtractor(client, s, DeterministicExtractor(), budget)
        first = [Exchange("b1", "ana", g1, None, *MESSAGES[0], T0)]
        fake.script = [{"content": answer(1)}, {"content": answer(1)}]
        await x.extract(first)
        spent = (await budget.spent([f"g:{g1}"]))[f"g:{g1}"]
        assert spent == x.stats.prompt_tokens + x.stats.completion_tokens > 50
        out = await x.extract([Exchange("b2", "ana", g1, None, *MESSAGES[1], T0),
                               Exchange("b3", "ana", g2, None, *MESSAGES[0], T0)])
        assert len(fake.requests) == 2  # one call for g1's first exchange, one for g2's
        assert out[0] == DeterministicExtractor().extract_one(Exchange("b2", "ana", g1, None, *MESSAGES[1], T0))
        assert out[1].summary.startswith("Ana introduces herself")
        assert x.stats.over_budget == 1
    finally:
        await redis.aclose()


async def test_no_call_mixes_two_users_or_two_scopes(fake: FakeLLM) -> None:
    ana = exchanges(2)
    bo = Exchange("y0", "bo", None, None, "I'm Bo and I live in Oslo.", "Hi Bo.", T0)
    ana_guild = Exchange("z0", "ana", "g1", None, "My cat Tofu is asleep.", "Cute.", T0)
    fake.script = [{"content": answer(2)}, {"content": answer(1)}, {"content": answer(1)}]
    await extractor(fake).extract([ana[0], bo, ana[1], ana_guild])
    prompts = [r["messages"][1]["content"] for r in fake.requests]
    assert len(prompts) == 3
    assert ["Oslo" in p for p in prompts] == [False, True, False]
    assert ["Lisbon" in p for p in prompts] == [True, False, False]  # ana's two DM exchanges together
    assert "Tofu is asleep" in prompts[2] and "Paris" not in prompts[2]


TOO_LONG = {"status": 400, "error": {
    "message": "This model's maximum context length is 2048 tokens. However, you requested 2600 tokens.",
    "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}


async def test_a_batch_too_long_for_the_context_is_halved_and_keeps_its_mode(fake: FakeLLM) -> None:
    fake.script = [TOO_LONG, {"content": answer(1)}, {"content": answer(1)}]
    x = extractor(fake, extraction_batch_size=2)
    out = await x.extract(exchanges(2))
    assert [(r.get("response_format") or {}).get("type") for r in fake.requests] == ["json_schema"] * 3
    assert ["Lisbon" in r["messages"][1]["content"] for r in fake.requests] == [True, False, True]
    assert out[0].summary.startswith("Ana introduces herself") and out[1].summary.startswith("Ana introduces")
    assert (x.stats.mode, x.stats.exchanges, x.stats.llm_exchanges, x.stats.fallbacks) == ("json_schema", 2, 2, 0)


async def test_one_exchange_too_long_for_the_context_gets_the_rules(fake: FakeLLM) -> None:
    fake.script = [TOO_LONG]
    x = extractor(fake)
    out = await x.extract(exchanges(1))
    assert len(fake.requests) == 1 and out == await DeterministicExtractor().extract(exchanges(1))
    assert (x.stats.mode, x.stats.exchanges, x.stats.fallbacks) == ("json_schema", 1, 1)


async def test_a_repair_too_long_for_the_context_falls_back_without_halving(fake: FakeLLM) -> None:
    fake.script = [{"content": "not JSON at all"}, TOO_LONG]
    x = extractor(fake)
    out = await x.extract(exchanges(2))
    assert len(fake.requests) == 2 and out == await DeterministicExtractor().extract(exchanges(2))
    assert (x.stats.mode, x.stats.repairs, x.stats.fallbacks) == ("json_schema", 1, 2)
