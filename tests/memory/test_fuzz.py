"""Property-based fuzzing of the public API on real servers (issue 9, "Proof").

store_conversation, get_conversation_context, forget, export and the import file
format get random Unicode (NUL, lone surrogates, RTL and zero-width marks, emoji),
300 KB strings, SQL and Cypher text, deep and huge metadata, naive and aware
timestamps at every offset and at the extremes, and ids with whitespace. The only
allowed outcomes are success and InvalidInput. The last test checks that the worker
is alive, flush completes, nothing was dead-lettered, and every stored text reads
back from the archive byte for byte.

Bounded: a few hundred examples in all, no example database (nothing is written
into the checkout), no per-example deadline (the machine is shared).
"""

from __future__ import annotations

import json
import tempfile
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from memory import HierarchicalMemoryManager, InvalidInput
from memory.cli import build_parser, cmd_import
from memory.models import Scope
from memory.tokens import count_tokens

RUN = uuid.uuid4().hex[:8]
STORED: dict[str, tuple[str, str | None, str, str]] = {}  # exchange id -> (user, guild, message, reply)
FUZZ = settings(max_examples=60, deadline=None, database=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture, HealthCheck.large_base_example])

HOSTILE = [
    "'; DROP TABLE exchanges; --", "\" OR 1=1 --", "$1 $2 ::text[]", "%s %(x)s {0} {x}",
    "MATCH (n) DETACH DELETE n //", "}) RETURN 1 UNION MATCH (m) RETURN m //", "`weird` {key: $x}",
    "\u202eevil override\u202c", "\u200f\u05e9\u05dc\u05d5\u05dd\u200e", "zero\u200bwidth\u200d\ufeff",
    "👩‍👩‍👧‍👦🏳️‍🌈🇵🇹", "e\u0301\u0301\u0301", "\u2028line\u2029para\u0085nel", "\x00", "a\x00b", "\ud800",
    "\udfff lone", "\U0010ffff", "\r\n\t\x0b\x0c", " ", "", "\n", "null", "{\"k\": 1}", "<script>x</script>",
]
# 300 KB and more: refused whether the limit counts characters or UTF-8 bytes; one long text
# that is accepted (its embedding is what the worker spends most of the run on, so it is modest)
BIG = ["x" * 300_000, "ü" * 270_000, "🙂" * 270_000, ("The Lisbon trams are steep. " * 120)[:3_000]]

any_char = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
storable_char = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
piece = st.one_of(st.text(storable_char, min_size=1, max_size=40), st.text(storable_char, min_size=1, max_size=40),
                  st.text(any_char, max_size=40), st.sampled_from(HOSTILE),
                  st.text(st.sampled_from("ab \n\u200b\u202e😀"), max_size=20))
joined = st.lists(piece, min_size=1, max_size=4).map("".join)
texts = st.one_of(joined, joined, joined, st.sampled_from(BIG))
storable_texts = st.one_of(st.text(storable_char, min_size=1, max_size=200).filter(str.strip), joined, joined,
                           st.sampled_from(BIG))
# for the import file: the refused 300 KB strings only (the accepted long one is fuzzed above)
file_texts = st.one_of(joined, joined, st.sampled_from(BIG[:3]))
small_texts = st.text(any_char, max_size=12)

id_body = st.from_regex(r"[A-Za-z0-9_.@-]{1,60}", fullmatch=True)
id_noise = st.sampled_from(["", "\n", " ", "\t", "\r\n", "\u00a0", "\u200b", ":", "/", "é"])
ids = st.one_of(
    st.builds(lambda body, tail: f"fz{RUN}{body}{tail}", id_body, id_noise),
    st.builds(lambda head, body: f"{head}fz{RUN}{body}", id_noise, id_body),
    st.sampled_from(["a" * 100 + "\n", "a" * 101, "u1\n", "", " "]),
    st.integers(min_value=-(10**20), max_value=10**20),
)
guilds = st.one_of(st.none(), st.sampled_from(["g1", "g2", "g1\n", " g2", ""]), st.integers(0, 10**18))

offsets = st.builds(timezone, st.timedeltas(min_value=-timedelta(hours=23, minutes=59),
                                            max_value=timedelta(hours=23, minutes=59)))
EXTREME_TIMES = [
    datetime(1, 1, 1), datetime.min, datetime.max, datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
    datetime.max.replace(tzinfo=timezone(timedelta(hours=-3))), datetime(1970, 1, 1, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59), datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
]
timestamps = st.one_of(
    st.none(),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31),
                 timezones=st.one_of(st.none(), offsets)),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2026, 1, 1),
                 timezones=st.one_of(st.none(), offsets)),
    st.sampled_from(EXTREME_TIMES),
)


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), small_texts)
metadata = st.one_of(
    st.none(),
    st.dictionaries(small_texts, st.recursive(json_leaf, lambda c: st.lists(c, max_size=3)
                                              | st.dictionaries(small_texts, c, max_size=3), max_leaves=20),
                    max_size=5),
    st.sampled_from([_nested(2000), _nested(33), {"k": "x" * 70_000}, {str(i): i for i in range(20_000)},
                     {"when": datetime(2024, 1, 1)}, {"t": (1, 2)}, {1: "int key"}]),
    st.lists(st.integers(), max_size=2),
)


async def _store(memory: HierarchicalMemoryManager, user: Any, guild: Any, message: str, reply: str,
                 when: datetime | None, meta: Any) -> None:
    try:
        xid = await memory.store_conversation(user, message, reply, guild_id=guild, timestamp=when,
                                              metadata=meta)
    except InvalidInput as exc:
        event(f"refused: {exc.field}")
        return
    event("stored")
    [row] = await memory.t.archive.get(Scope(str(user), None if guild is None else str(guild)), [xid])
    assert row.user_message.encode("utf-8") == message.encode("utf-8")
    assert row.bot_response.encode("utf-8") == reply.encode("utf-8")
    assert row.timestamp.tzinfo is not None
    STORED[xid] = (str(user), None if guild is None else str(guild), message, reply)


valid_users = st.builds(lambda body: f"fz{RUN}{body}", id_body)
valid_times = st.one_of(st.none(), st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2026, 1, 1),
                                                timezones=st.one_of(st.none(), offsets)))
valid_meta = st.one_of(st.none(), st.dictionaries(st.text(storable_char, max_size=8),
                                                  st.one_of(st.integers(), st.text(storable_char, max_size=20)),
                                                  max_size=4))


@settings(FUZZ, max_examples=80)
@given(user=valid_users, guild=st.sampled_from([None, "g1"]), message=storable_texts, reply=storable_texts,
       when=valid_times,
       meta=valid_meta)
async def test_store_conversation_keeps_any_storable_text(memory: HierarchicalMemoryManager, user: str,
                                                          guild: str | None, message: str, reply: str,
                                                          when: datetime | None, meta: Any) -> None:
    await _store(memory, user, guild, message, reply, when, meta)


@FUZZ
@given(user=ids, guild=guilds, message=texts, reply=texts, when=timestamps, meta=metadata)
async def test_store_conversation_succeeds_or_refuses(memory: HierarchicalMemoryManager, user: Any,
                                                      guild: Any, message: str, reply: str,
                                                      when: datetime | None, meta: Any) -> None:
    await _store(memory, user, guild, message, reply, when, meta)


@FUZZ
@given(user=ids, guild=guilds, query=texts, budget=st.one_of(st.integers(-5, 3000), st.sampled_from([0, 10**6])),
       pick=st.integers(0, 10**6), known=st.booleans())
async def test_context_succeeds_or_refuses(memory: HierarchicalMemoryManager, user: Any, guild: Any,
                                           query: str, budget: int, pick: int, known: bool) -> None:
    if known and STORED:
        user, guild, _, _ = list(STORED.values())[pick % len(STORED)]
    try:
        ctx = await memory.get_conversation_context(user, query, guild_id=guild, max_tokens=budget)
    except InvalidInput:
        return
    text = ctx.to_context_string()
    assert count_tokens(text) <= budget
    assert ctx.degraded == []


@FUZZ
@given(user=ids, query=st.one_of(texts, st.integers()), budget=st.one_of(st.floats(), st.text(max_size=3)))
async def test_context_refuses_wrong_types(memory: HierarchicalMemoryManager, user: Any, query: Any,
                                           budget: Any) -> None:
    try:
        await memory.get_conversation_context(user, query, max_tokens=budget)
    except InvalidInput:
        return
    raise AssertionError("a non-integer budget must be refused")


@FUZZ
@given(message=texts, guild=st.sampled_from([None, "g1"]),
       option=st.sampled_from(["all", "guild", "dm", "exchange", "topic", "last", "both"]),
       topic=texts, exchange=st.one_of(ids, st.just("real")))
async def test_forget_succeeds_or_refuses(memory: HierarchicalMemoryManager, message: str, guild: str | None,
                                          option: str, topic: str, exchange: Any) -> None:
    user = f"fg{RUN}{uuid.uuid4().hex[:8]}"
    try:
        xid = await memory.store_conversation(user, message, "reply", guild_id=guild)
    except InvalidInput:
        xid = None
    choices: dict[str, dict[str, Any]] = {
        "all": {}, "guild": {"guild_id": "g1"}, "dm": {"dm": True}, "topic": {"topic": topic},
        "exchange": {"exchange_id": xid if exchange == "real" and xid else exchange}, "last": {"last": True},
        "both": {"guild_id": "g1", "dm": True},
    }
    kwargs = choices[option]
    try:
        await memory.forget(user, **kwargs)
    except InvalidInput:
        return
    if option == "all" or (option == "exchange" and exchange == "real") or option == "last":
        counts = await memory.counts(user)
        assert counts["archive"] == 0 and counts["cache"] == 0


@FUZZ
@given(user=ids, pick=st.integers(0, 10**6), known=st.booleans())
async def test_export_succeeds_or_refuses(memory: HierarchicalMemoryManager, user: Any, pick: int,
                                          known: bool) -> None:
    if known and STORED:
        user = list(STORED.values())[pick % len(STORED)][0]
    try:
        data = await memory.export(user)
    except InvalidInput:
        return
    json.dumps(data, ensure_ascii=False).encode("utf-8")  # JSON-serialisable, and encodable
    for e in data["exchanges"]:
        if e["id"] in STORED:
            assert (e["user_message"], e["bot_response"]) == STORED[e["id"]][2:]


def _line(row: dict[str, Any]) -> str:
    try:
        return json.dumps(row, ensure_ascii=bool(row.pop("_ascii", True)), allow_nan=True, default=str)
    except (ValueError, RecursionError):
        return "{not json"


epoch_or_iso = st.one_of(
    st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**20), 10**20), st.booleans(),
    timestamps.map(lambda t: None if t is None else t.isoformat()), st.sampled_from(
        ["0001-01-01T00:00:00Z", "2024-02-30", "2024-01-01T00:00:00+25:00", "", "yesterday", "1e999"]),
)
rows = st.fixed_dictionaries(
    {"user_id": ids, "user_message": st.one_of(file_texts, st.integers(), st.none()),
     "bot_response": st.one_of(file_texts, st.lists(st.integers(), max_size=2))},
    optional={"timestamp": epoch_or_iso, "guild_id": guilds, "channel_id": ids, "metadata": metadata,
              "id": st.builds(lambda: f"im{RUN}{uuid.uuid4().hex}"), "_ascii": st.booleans()})
raw_lines = st.one_of(st.text(any_char, max_size=30), st.sampled_from(
    ["[" * 5000 + "]" * 5000, "[]", "null", "\"just a string\"", "{}", "{\"user_id\": 1}", "\u2028"]))


@settings(FUZZ, max_examples=20)
@given(items=st.lists(st.one_of(rows.map(_line), raw_lines), min_size=1, max_size=6))
async def test_import_file_succeeds_or_refuses_per_line(memory: HierarchicalMemoryManager,
                                                        items: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="mnemo-fuzz-import-") as d:
        path = Path(d) / "history.jsonl"
        path.write_bytes("\n".join(items).encode("utf-8", errors="surrogatepass"))
        code = await cmd_import(build_parser().parse_args(["import", str(path)]), memory)
    assert code in (0, 2)
    for line in items:  # what was stored is byte for byte what the file said
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            continue
        found = await memory.t.archive.find(str(row["user_id"]), row["id"])
        if found is not None:
            assert found.user_message.encode("utf-8") == row["user_message"].encode("utf-8")
            assert found.bot_response.encode("utf-8") == row["bot_response"].encode("utf-8")
            STORED[found.id] = (found.user_id, found.guild_id, found.user_message, found.bot_response)


async def test_after_the_fuzzing_the_worker_is_alive_and_everything_reads_back(
        memory: HierarchicalMemoryManager) -> None:
    # 55-78 when this file runs alone, but 27 in one full-suite run (the "storable" texts still mix in
    # refused pieces: NUL, lone surrogates, 300 KB): the bound only catches a run that stored almost nothing
    assert len(STORED) >= 15, "the fuzz tests above stored (almost) nothing"
    print(f"stored {len(STORED)}")
    assert memory._task is not None and not memory._task.done()
    await memory.flush(timeout=120)
    stats = await memory.stats()
    assert stats.pending == 0 and stats.dead_letters == 0
    for xid, (user, guild, message, reply) in STORED.items():
        [row] = await memory.t.archive.get(Scope(user, guild), [xid])
        assert row.user_message.encode("utf-8") == message.encode("utf-8")
        assert row.bot_response.encode("utf-8") == reply.encode("utf-8")
    users = {(u, g) for u, g, _, _ in STORED.values()}
    for user, guild in sorted(users, key=str)[:20]:  # the derived tiers answer for them too
        ctx = await memory.get_conversation_context(user, "Lisbon trams", guild_id=guild)
        assert ctx.degraded == []
