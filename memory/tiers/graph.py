"""Tier 4, the graph: users, the entities and topics they talk about, and which exchanges say so.

Speaks Cypher over Bolt with the official ``neo4j`` async driver; the queries are
standard Neo4j 5 Cypher and are verified against ArcadeDB's Bolt server too.

Data model. Every node carries the owner's ``user_id`` and ``ukey`` (``user_id|scope.key``);
every query matches on one of them, so isolation is part of each ``MATCH``::

    (:User {key, ukey, user_id, scope})-[:HAD]->(:Exchange {id, ukey, user_id, ts})
    (:User)-[:MENTIONED {count, first_seen, last_seen}]->(:Entity|Topic)
    (:Exchange)-[:MENTIONS]->(:Entity|Topic {key: ukey|name, ukey, user_id, kind, name, label,
                                            count, first_seen, last_seen})
    (:User)-[:HOLDS]->(:Fact {fid, ukey, user_id, predicate, obj, label, detail, aliases,
                              valid_from, valid_to, closed_by})<-[:SUPPORTS]-(:Exchange)

A ``Fact`` is a typed relation from the user (``LIVES_IN`` Berlin), reified as a node so
it can carry its validity period and the exchanges that state it (``SUPPORTS``); how
new statements change facts is planned in ``_graph_facts``.

``count`` is the number of the scope's exchanges that mention the node (its
``MENTIONS`` edges); times are epoch seconds in the store and aware UTC
datetimes in the domain types. The Cypher itself is in ``_graph_cypher``, used by
this module only.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from neo4j import READ_ACCESS, AsyncDriver, AsyncGraphDatabase, AsyncManagedTransaction, Record
from neo4j.exceptions import ConstraintError, DriverError, Neo4jError

from memory.errors import InvalidInput, TierUnavailable
from memory.models import Exchange, Extraction, ForgetTarget, Hit, MentionKind, Relation, Scope, TypedFact
from memory.tiers import _graph_cypher as cypher
from memory.tiers._graph_facts import FactState, Said, plan

T = TypeVar("T")

_CONFLICT_RETRIES = 4  # tries of a batch that lost a race to create the same node
MAX_NAME_COUNT = 100  # names mentioned more often are skipped by related() (see _graph_cypher.RELATED)


def normalise(name: str) -> str:
    """The stored form of an entity or topic name: lower case, single spaces."""
    return " ".join(name.lower().split())


def _epoch(ts: datetime) -> float:
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp()


def _aware(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _ukey(scope: Scope) -> str:
    return f"{scope.user_id}|{scope.key}"


def _node_key(ukey: str, name: str) -> str:
    return f"{ukey}|{name}"


@dataclass
class _Tally:
    """What one batch adds to one entity or topic of one scope."""

    ukey: str
    user_id: str
    kind: MentionKind
    name: str
    label: str
    first: float
    last: float
    xids: list[str] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return {"key": _node_key(self.ukey, self.name), "ukey": self.ukey, "user_id": self.user_id,
                "kind": self.kind, "name": self.name, "label": self.label, "count": len(self.xids),
                "first": self.first, "last": self.last, "xids": self.xids}


def _batch_rows(items: Sequence[tuple[Exchange, Extraction]]
                ) -> tuple[list[dict[str, Any]], dict[MentionKind, list[dict[str, Any]]]]:
    """Exchange rows and per-kind mention rows of ``items`` (already new and distinct)."""
    exchanges: list[dict[str, Any]] = []
    tallies: dict[tuple[MentionKind, str, str], _Tally] = {}
    for exchange, extraction in items:
        scope = exchange.scope
        ukey, ts = _ukey(scope), _epoch(exchange.timestamp)
        exchanges.append({"id": exchange.id, "ukey": ukey, "user_id": scope.user_id,
                          "scope": scope.key, "ts": ts})
        seen: set[tuple[MentionKind, str]] = set()
        for mention in extraction.mentions:
            name = normalise(mention.name)
            if not name or (mention.kind, name) in seen:
                continue
            seen.add((mention.kind, name))
            tally = tallies.get((mention.kind, ukey, name))
            if tally is None:
                tally = tallies[(mention.kind, ukey, name)] = _Tally(
                    ukey, scope.user_id, mention.kind, name, mention.label, ts, ts)
            tally.first, tally.last = min(tally.first, ts), max(tally.last, ts)
            tally.label = tally.label or mention.label
            tally.xids.append(exchange.id)
    by_kind: dict[MentionKind, list[dict[str, Any]]] = {"entity": [], "topic": []}
    for tally in tallies.values():
        by_kind[tally.kind].append(tally.row())
    return exchanges, by_kind


class Neo4jGraph:
    """The graph tier over one Bolt driver. Every method raises TierUnavailable("graph")
    when the server cannot answer; the driver pools connections and retries transient errors."""

    name = "graph"

    def __init__(self, driver: AsyncDriver, database: str | None = None) -> None:
        self._driver = driver
        self._database = database

    async def aclose(self) -> None:
        """Close the driver and its connection pool."""
        await self._driver.close()

    @asynccontextmanager
    async def _edge(self) -> AsyncIterator[None]:
        try:
            yield
        except (Neo4jError, DriverError, OSError) as exc:
            raise TierUnavailable(self.name, f"{type(exc).__name__}: {exc}") from exc

    async def _read(self, work: Callable[[AsyncManagedTransaction], Awaitable[T]]) -> T:
        async with self._edge(), self._driver.session(database=self._database) as session:
            return await session.execute_read(work)

    async def _read_once(self, query: str, **params: Any) -> list[Record]:
        """One read query in an auto-commit transaction, for the reply path: RUN and PULL go out
        together and no BEGIN/COMMIT follow. On ArcadeDB's Bolt server a managed read
        transaction cost 2-3x as much as the same query auto-committed (typed facts of a
        3,000-exchange user: 9.6 against 3.8 ms median). Not retried: a failure is the
        manager's to report."""
        async with self._edge(), self._driver.session(database=self._database,
                                                      default_access_mode=READ_ACCESS) as session:
            result = await session.run(query, params)
            return [record async for record in result]

    async def _write(self, work: Callable[[AsyncManagedTransaction], Awaitable[T]]) -> T:
        async with self._edge(), self._driver.session(database=self._database) as session:
            return await session.execute_write(work)

    async def ensure_schema(self) -> None:
        """Create the constraints and indexes the queries rely on (idempotent)."""
        for statement in cypher.SCHEMA:
            async def create(tx: AsyncManagedTransaction, q: str = statement) -> None:
                await (await tx.run(q)).consume()
            await self._write(create)

    async def ping(self) -> None:
        """Return when the server answers a query; raise TierUnavailable otherwise."""
        async def probe(tx: AsyncManagedTransaction) -> None:
            await (await tx.run("RETURN 1 AS ok")).consume()
        await self._read(probe)

    async def ingest(self, items: Sequence[tuple[Exchange, Extraction]]) -> int:
        """Record the exchanges and their mentions, each exchange id exactly once.

        The existence check and every write of the batch run in one transaction:
        a crash leaves all or nothing, and a replayed (or partly replayed) batch
        adds only the exchanges not yet stored. Returns how many were new.
        Raises InvalidInput when an extraction does not belong to its exchange.
        """
        distinct: dict[str, tuple[Exchange, Extraction]] = {}
        for exchange, extraction in items:
            if extraction.exchange_id != exchange.id:
                raise InvalidInput(f"extraction of {extraction.exchange_id!r} paired with exchange "
                                   f"{exchange.id!r}", field="items")
            distinct.setdefault(exchange.id, (exchange, extraction))
        if not distinct:
            return 0

        async def work(tx: AsyncManagedTransaction) -> int:
            result = await tx.run(cypher.EXISTING, ids=list(distinct))
            existing = {record["id"] async for record in result}
            new = [item for xid, item in distinct.items() if xid not in existing]
            if not new:
                return 0
            exchanges, by_kind = _batch_rows(new)
            await (await tx.run(cypher.CREATE_EXCHANGES, rows=exchanges)).consume()
            for kind, rows in by_kind.items():
                if rows:
                    await (await tx.run(cypher.MERGE_MENTIONS[kind], rows=rows)).consume()
            await _apply_statements(tx, new)
            return len(new)

        for _ in range(_CONFLICT_RETRIES):
            try:
                return await self._write(work)
            except TierUnavailable as exc:
                # A concurrent writer created one of these exchanges (or a new entity/topic)
                # between our check and commit; the next try sees it and skips or merges it.
                if not isinstance(exc.__cause__, ConstraintError):
                    raise
        return await self._write(work)

    async def existing(self, exchange_ids: Sequence[str]) -> set[str]:
        """Which of ``exchange_ids`` have an exchange node (ingested); raises TierUnavailable."""
        if not exchange_ids:
            return set()

        async def work(tx: AsyncManagedTransaction) -> set[str]:
            result = await tx.run(cypher.EXISTING, ids=list(exchange_ids))
            return {record["id"] async for record in result}

        return await self._read(work)

    async def related(self, scope: Scope, names: Sequence[str], limit: int) -> list[Hit]:
        """The scope's exchanges mentioning any of ``names``, best first.

        Score: sum over matched names of 1/ln(1 + count), so rare names weigh more
        than common ones; ties go to the newest exchange. ``detail`` lists the
        matched names, comma-separated. No names (or limit < 1) -> [].
        """
        ukey = _ukey(scope)
        keys = sorted({_node_key(ukey, n) for n in map(normalise, names) if n})
        if not keys or limit < 1:
            return []

        records = await self._read_once(cypher.RELATED, keys=keys, ukey=ukey, max_count=MAX_NAME_COUNT)
        rows = [(r["name"], r["count"], r["ids"], r["ts"]) for r in records]
        scores: dict[str, float] = {}
        matched: dict[str, list[str]] = {}
        newest: dict[str, Any] = {}
        for name, count, ids, times in rows:
            weight = 1.0 / math.log(1.0 + max(int(count), 1))
            for xid, ts in zip(ids, times, strict=True):
                scores[xid] = scores.get(xid, 0.0) + weight
                matched.setdefault(xid, []).append(name)
                newest[xid] = ts
        best = sorted(scores, key=lambda x: (scores[x], newest[x]), reverse=True)[:limit]
        return [Hit(x, scores[x], "graph", ", ".join(sorted(matched[x]))) for x in best]

    async def profile(self, scope: Scope, limit: int) -> list[Relation]:
        """The scope's most mentioned entities and topics, most frequent (then most recent) first."""
        ukey = _ukey(scope)

        async def work(tx: AsyncManagedTransaction) -> list[Relation]:
            result = await tx.run(cypher.PROFILE, ukey=ukey, limit=max(limit, 0))
            return [Relation(r["name"], r["kind"], int(r["count"]), _aware(r["first_seen"]),
                             _aware(r["last_seen"]), r["label"] or "")
                    async for r in result]

        return await self._read(work)

    async def facts(self, scope: Scope, *, support: bool = True) -> list[TypedFact]:
        """The scope's typed facts, current and closed, oldest first, with their supporting exchange
        ids (``support=False``: without them, a cheaper query for the read path)."""
        ukey = _ukey(scope)

        def typed(r: Record) -> TypedFact:
            return TypedFact(r["fid"], r["predicate"], r["obj"], r["label"] or r["obj"], r["detail"] or "",
                             _aware(r["valid_from"]), None if r["valid_to"] is None else _aware(r["valid_to"]),
                             tuple(sorted(r["support"])), tuple(r["aliases"] or ()), r["from_unit"] or "",
                             None if r["told"] is None else _aware(r["told"]))

        if not support:  # the reply path's query
            return [typed(r) for r in await self._read_once(cypher.FACTS_BRIEF, ukey=ukey)]

        async def work(tx: AsyncManagedTransaction) -> list[TypedFact]:
            return [typed(r) async for r in await tx.run(cypher.FACTS, ukey=ukey)]

        return await self._read(work)

    async def topic_exchanges(self, scope: Scope, name: str) -> list[str]:
        """Ids of the scope's exchanges mentioning the entity or topic ``name``, oldest first."""
        ukey = _ukey(scope)
        key = _node_key(ukey, normalise(name))

        async def work(tx: AsyncManagedTransaction) -> list[str]:
            result = await tx.run(cypher.TOPIC_EXCHANGES, keys=[key], ukey=ukey)
            return [r["id"] async for r in result]

        return await self._read(work)

    async def forget(self, target: ForgetTarget) -> int:
        """Delete a user's every node, one scope's, or some exchanges of one scope.

        Forgetting exchanges recounts the entities and topics they mentioned from
        what remains and deletes those no exchange mentions any more, and the
        scope's User node once it has no exchange left. Returns nodes removed.
        """
        if target.scope is None:
            return await self._write(_delete_owned("user_id", target.user_id))
        ukey = _ukey(Scope(target.user_id, target.scope.guild_id))
        if target.exchange_ids is None:
            return await self._write(_delete_owned("ukey", ukey))
        ids = sorted(set(target.exchange_ids))
        if not ids:
            return 0

        async def work(tx: AsyncManagedTransaction) -> int:
            touched: dict[MentionKind, list[str]] = {"entity": [], "topic": []}
            async for r in await tx.run(cypher.TOUCHED_BY, ids=ids, ukey=ukey):
                touched[r["kind"]].append(r["key"])
            fids = [r["fid"] async for r in await tx.run(cypher.FACTS_SUPPORTED_BY, ids=ids, ukey=ukey)]
            removed = await _single(tx, cypher.DELETE_EXCHANGES, ids=ids, ukey=ukey)
            if fids:
                removed += await _drop_unsupported(tx, ukey, fids)
            for kind, keys in touched.items():
                if keys:
                    await (await tx.run(cypher.RECOUNT[kind], keys=keys, ukey=ukey)).consume()
                    removed += await _single(tx, cypher.DELETE_UNMENTIONED[kind], keys=keys, ukey=ukey)
            return removed + await _single(tx, cypher.DELETE_IDLE_USER, ukey=ukey)

        return await self._write(work)

    async def count(self, user_id: str, scope: Scope | None = None) -> int:
        """How many nodes (users, exchanges, entities, topics) the graph holds for the user."""
        prop, owner = ("user_id", user_id) if scope is None else (
            "ukey", _ukey(Scope(user_id, scope.guild_id)))

        async def work(tx: AsyncManagedTransaction) -> int:
            return await _single(tx, cypher.COUNT[prop], owner=owner)

        return await self._read(work)


async def _single(tx: AsyncManagedTransaction, query: str, **params: Any) -> int:
    record = await (await tx.run(query, params)).single()
    return 0 if record is None or record[0] is None else int(record[0])


async def _apply_statements(tx: AsyncManagedTransaction, items: Sequence[tuple[Exchange, Extraction]]) -> None:
    """Bring the typed facts of the batch's scopes up to date with its statements (see ``_graph_facts``)."""
    by_scope: dict[str, list[Said]] = {}
    owners: dict[str, str] = {}
    for e, x in sorted(items, key=lambda item: (item[0].timestamp, item[0].id)):
        for st in x.statements:
            ukey = _ukey(e.scope)
            owners[ukey] = e.user_id
            by_scope.setdefault(ukey, []).append(Said(
                e.id, _epoch(e.timestamp), st.predicate, st.obj, st.label or st.obj, st.detail,
                None if st.since is None else _epoch(st.since), st.since_unit, st.ended))
    if not by_scope:
        return
    states: dict[str, list[FactState]] = {k: [] for k in by_scope}
    async for r in await tx.run(cypher.FACT_STATES, ukeys=list(by_scope)):
        states[r["ukey"]].append(FactState(r["fid"], r["predicate"], r["obj"], list(r["aliases"] or []),
                                           r["valid_from"], r["valid_to"], label=r["label"] or "",
                                           detail=r["detail"] or "", closed_by=r["closed_by"],
                                           from_unit=r["from_unit"] or "", told=r["told"]))
    for ukey, said in by_scope.items():
        p = plan(ukey, owners[ukey], states[ukey], said)
        for query, rows in ((cypher.CREATE_FACTS, p.create), (cypher.CLOSE_FACTS, p.close),
                            (cypher.UPDATE_FACTS, p.update), (cypher.SUPPORT_FACTS, p.support)):
            if rows:
                await (await tx.run(query, rows=rows, ukey=ukey)).consume()


async def _drop_unsupported(tx: AsyncManagedTransaction, ukey: str, fids: list[str]) -> int:
    """Delete the facts among ``fids`` that no exchange supports any more; returns how many."""
    gone = [dict(r) async for r in await tx.run(cypher.UNSUPPORTED_FACTS, fids=fids, ukey=ukey)]
    if not gone:
        return 0
    await (await tx.run(cypher.REOPEN_FACTS, rows=gone, ukey=ukey)).consume()
    return await _single(tx, cypher.DELETE_FACTS, fids=[g["fid"] for g in gone], ukey=ukey)


def _delete_owned(prop: str, owner: str) -> Callable[[AsyncManagedTransaction], Awaitable[int]]:
    async def work(tx: AsyncManagedTransaction) -> int:
        removed = 0
        for label in cypher.ALL_LABELS:
            removed += await _single(tx, cypher.DELETE_OWNED[(label, prop)], owner=owner)
        return removed
    return work


async def create_graph(uri: str, auth: tuple[str, str] | None, database: str | None = None, *,
                       connection_timeout: float = 5.0, max_retry_time: float = 5.0) -> Neo4jGraph:
    """Open a driver, check the server answers and create the schema.

    Raises TierUnavailable("graph") when the server cannot be reached or refuses;
    the driver is closed again in that case.
    """
    driver = AsyncGraphDatabase.driver(uri, auth=auth, connection_timeout=connection_timeout,
                                       max_transaction_retry_time=max_retry_time)
    graph = Neo4jGraph(driver, database)
    try:
        async with graph._edge():
            await driver.verify_connectivity()
        await graph.ensure_schema()
    except BaseException:
        await driver.close()
        raise
    return graph


__all__ = ["Neo4jGraph", "create_graph", "normalise"]
