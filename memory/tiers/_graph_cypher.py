"""The graph tier's Cypher, and nothing else: standard Neo4j 5 Cypher, verified on ArcadeDB's Bolt server.

Only ``memory.tiers.graph`` imports this. Every query takes its values as
parameters; labels and property names (which Cypher cannot parameterise) are
filled in from the fixed names below, never from input. Every query matches on
the owner's ``ukey`` or ``user_id``.
"""

from __future__ import annotations

from memory.models import MentionKind

LABELS: dict[MentionKind, str] = {"entity": "Entity", "topic": "Topic"}
ALL_LABELS = ("User", "Exchange", "Entity", "Topic", "Fact")

# Labels cannot be query parameters; they are filled in here from the fixed names above only.
SCHEMA = [
    *(f"CREATE CONSTRAINT {lb.lower()}_key IF NOT EXISTS FOR (n:{lb}) REQUIRE n.key IS UNIQUE"
      for lb in ("User", "Entity", "Topic")),
    "CREATE CONSTRAINT exchange_id IF NOT EXISTS FOR (n:Exchange) REQUIRE n.id IS UNIQUE",
    "CREATE CONSTRAINT fact_fid IF NOT EXISTS FOR (n:Fact) REQUIRE n.fid IS UNIQUE",
    *(f"CREATE INDEX {lb.lower()}_{prop} IF NOT EXISTS FOR (n:{lb}) ON (n.{prop})"
      for lb in ALL_LABELS for prop in ("ukey", "user_id")),
]

EXISTING = "UNWIND $ids AS id MATCH (x:Exchange {id: id}) RETURN x.id AS id"

CREATE_EXCHANGES = """
UNWIND $rows AS r
MERGE (u:User {key: r.ukey})
  ON CREATE SET u.ukey = r.ukey, u.user_id = r.user_id, u.scope = r.scope
CREATE (u)-[:HAD]->(:Exchange {id: r.id, ukey: r.ukey, user_id: r.user_id, ts: r.ts})
"""

# One row per (scope, name) of the batch: count/first/last cover the batch's new exchanges only.
_MERGE_MENTIONS_TEMPLATE = """
UNWIND $rows AS r
MATCH (u:User {key: r.ukey})
MERGE (n:LABEL {key: r.key})
  ON CREATE SET n.ukey = r.ukey, n.user_id = r.user_id, n.kind = r.kind, n.name = r.name,
                n.label = r.label, n.count = 0, n.first_seen = r.first, n.last_seen = r.last
SET n.count = n.count + r.count,
    n.first_seen = CASE WHEN r.first < n.first_seen THEN r.first ELSE n.first_seen END,
    n.last_seen = CASE WHEN r.last > n.last_seen THEN r.last ELSE n.last_seen END,
    n.label = CASE WHEN n.label = '' THEN r.label ELSE n.label END
MERGE (u)-[m:MENTIONED]->(n)
  ON CREATE SET m.count = 0, m.first_seen = r.first, m.last_seen = r.last
SET m.count = m.count + r.count,
    m.first_seen = CASE WHEN r.first < m.first_seen THEN r.first ELSE m.first_seen END,
    m.last_seen = CASE WHEN r.last > m.last_seen THEN r.last ELSE m.last_seen END
WITH n, r
UNWIND r.xids AS xid
MATCH (x:Exchange {id: xid})
WHERE x.ukey = n.ukey
CREATE (x)-[:MENTIONS]->(n)
"""
MERGE_MENTIONS = {kind: _MERGE_MENTIONS_TEMPLATE.replace("LABEL", label) for kind, label in LABELS.items()}

# Entity and Topic are looked up by key, one label at a time, so each lookup is an index seek.
BY_KEYS = """
UNWIND $keys AS key
OPTIONAL MATCH (e:Entity {key: key})
OPTIONAL MATCH (t:Topic {key: key})
WITH [v IN [e, t] WHERE v IS NOT NULL] AS found
UNWIND found AS n
WITH n WHERE n.ukey = $ukey
"""

# One row per matched name, with the ids and times of the exchanges mentioning it;
# memory.tiers.graph scores and orders them. Summing and sorting in Cypher cost ArcadeDB
# three times as much (6 vs 2 ms a query on a 3,000-exchange user), and a row per
# (exchange, name) cost the driver ~50 us a row to decode on the event loop. Names
# mentioned in more than $max_count exchanges are skipped: they say little about which
# exchange is meant (their weight, 1/ln(1 + count), is the smallest) and walking all
# their mentions was most of the cost.
RELATED = BY_KEYS + """
WITH n WHERE n.count <= $max_count
MATCH (n)<-[:MENTIONS]-(x:Exchange)
WHERE x.ukey = $ukey
RETURN n.name AS name, n.count AS count, collect(x.id) AS ids, collect(x.ts) AS ts
"""

PROFILE = """
MATCH (u:User {key: $ukey})-[:MENTIONED]->(n)
WHERE n.ukey = $ukey
RETURN n.name AS name, n.kind AS kind, n.label AS label, n.count AS count,
       n.first_seen AS first_seen, n.last_seen AS last_seen
ORDER BY n.count DESC, n.last_seen DESC, n.name
LIMIT $limit
"""

TOPIC_EXCHANGES = BY_KEYS + """
MATCH (n)<-[:MENTIONS]-(x:Exchange)
WHERE x.ukey = $ukey
RETURN DISTINCT x.id AS id, x.ts AS ts
ORDER BY ts
"""

COUNT = {
    prop: "CALL { " + " UNION ALL ".join(
        f"MATCH (n:{lb} {{{prop}: $owner}}) RETURN count(n) AS c" for lb in ALL_LABELS
    ) + " } RETURN sum(c) AS total"
    for prop in ("user_id", "ukey")
}

DELETE_OWNED = {
    (lb, prop): f"MATCH (n:{lb} {{{prop}: $owner}}) DETACH DELETE n RETURN count(n) AS removed"
    for lb in ALL_LABELS for prop in ("user_id", "ukey")
}

TOUCHED_BY = """
UNWIND $ids AS id
MATCH (x:Exchange {id: id})-[:MENTIONS]->(n)
WHERE x.ukey = $ukey AND n.ukey = $ukey
RETURN DISTINCT n.key AS key, n.kind AS kind
"""

DELETE_EXCHANGES = """
UNWIND $ids AS id
MATCH (x:Exchange {id: id})
WHERE x.ukey = $ukey
DETACH DELETE x
RETURN count(x) AS removed
"""

# Recount from the remaining MENTIONS edges rather than subtracting: exact whatever was replayed.
_RECOUNT_TEMPLATE = """
UNWIND $keys AS key
MATCH (n:LABEL {key: key})
WHERE n.ukey = $ukey
OPTIONAL MATCH (n)<-[:MENTIONS]-(x:Exchange)
WITH n, count(x) AS c, min(x.ts) AS first, max(x.ts) AS last
SET n.count = c, n.first_seen = first, n.last_seen = last
WITH n, c, first, last
MATCH (:User {key: $ukey})-[m:MENTIONED]->(n)
SET m.count = c, m.first_seen = first, m.last_seen = last
"""
RECOUNT = {kind: _RECOUNT_TEMPLATE.replace("LABEL", label) for kind, label in LABELS.items()}

_DELETE_UNMENTIONED_TEMPLATE = """
UNWIND $keys AS key
MATCH (n:LABEL {key: key})
WHERE n.ukey = $ukey AND n.count = 0
DETACH DELETE n
RETURN count(n) AS removed
"""
DELETE_UNMENTIONED = {kind: _DELETE_UNMENTIONED_TEMPLATE.replace("LABEL", label)
                       for kind, label in LABELS.items()}

DELETE_IDLE_USER = """
MATCH (u:User {key: $ukey})
WHERE NOT (u)-[:HAD]->(:Exchange)
DETACH DELETE u
RETURN count(u) AS removed
"""


# ---- typed facts: (:User)-[:HOLDS]->(:Fact {predicate, obj, valid_from, valid_to})<-[:SUPPORTS]-(:Exchange)

FACT_STATES = """
UNWIND $ukeys AS k
MATCH (f:Fact {ukey: k})
RETURN f.ukey AS ukey, f.fid AS fid, f.predicate AS predicate, f.obj AS obj, f.aliases AS aliases,
       f.valid_from AS valid_from, f.valid_to AS valid_to, f.label AS label, f.from_unit AS from_unit,
       f.closed_by AS closed_by, f.detail AS detail, f.told AS told
"""

CREATE_FACTS = """
UNWIND $rows AS r
MATCH (u:User {key: r.ukey})
CREATE (u)-[:HOLDS]->(:Fact {fid: r.fid, ukey: r.ukey, user_id: r.user_id, predicate: r.predicate,
                             obj: r.obj, label: r.label, detail: r.detail, aliases: r.aliases,
                             valid_from: r.valid_from, from_unit: r.from_unit, valid_to: r.valid_to,
                             closed_by: r.closed_by, told: r.told})
"""

CLOSE_FACTS = """
UNWIND $rows AS r
MATCH (f:Fact {fid: r.fid})
WHERE f.ukey = $ukey
SET f.valid_to = r.valid_to, f.closed_by = r.closed_by
"""

UPDATE_FACTS = """
UNWIND $rows AS r
MATCH (f:Fact {fid: r.fid})
WHERE f.ukey = $ukey
SET f.obj = r.obj, f.label = r.label, f.aliases = r.aliases, f.valid_from = r.valid_from,
    f.from_unit = r.from_unit, f.detail = r.detail, f.told = r.told
"""

SUPPORT_FACTS = """
UNWIND $rows AS r
MATCH (f:Fact {fid: r.fid})
WHERE f.ukey = $ukey
MATCH (x:Exchange {id: r.xid})
WHERE x.ukey = $ukey
CREATE (x)-[:SUPPORTS]->(f)
"""

FACTS = """
MATCH (f:Fact {ukey: $ukey})
OPTIONAL MATCH (f)<-[:SUPPORTS]-(x:Exchange)
WHERE x.ukey = $ukey
RETURN f.fid AS fid, f.predicate AS predicate, f.obj AS obj, f.label AS label, f.detail AS detail,
       f.aliases AS aliases, f.valid_from AS valid_from, f.from_unit AS from_unit, f.valid_to AS valid_to,
       f.told AS told, collect(x.id) AS support
ORDER BY valid_from, fid
"""

# The read path's variant: no support ids (the profile does not show them), one index seek.
FACTS_BRIEF = """
MATCH (f:Fact {ukey: $ukey})
RETURN f.fid AS fid, f.predicate AS predicate, f.obj AS obj, f.label AS label, f.detail AS detail,
       f.aliases AS aliases, f.valid_from AS valid_from, f.from_unit AS from_unit, f.valid_to AS valid_to,
       f.told AS told, [] AS support
ORDER BY valid_from, fid
"""

FACTS_SUPPORTED_BY = """
UNWIND $ids AS id
MATCH (x:Exchange {id: id})-[:SUPPORTS]->(f:Fact)
WHERE x.ukey = $ukey AND f.ukey = $ukey
RETURN DISTINCT f.fid AS fid
"""

# Facts whose last supporting exchange was deleted go; a fact one of them had closed takes over its
# end (reopened if the deleted fact was current), so forgetting "I moved to Berlin" brings Paris back.
UNSUPPORTED_FACTS = """
UNWIND $fids AS fid
MATCH (f:Fact {fid: fid})
WHERE f.ukey = $ukey AND NOT (f)<-[:SUPPORTS]-(:Exchange)
RETURN f.fid AS fid, f.valid_to AS valid_to, f.closed_by AS closed_by
"""

REOPEN_FACTS = """
UNWIND $rows AS r
MATCH (o:Fact {ukey: $ukey})
WHERE o.closed_by = r.fid
SET o.valid_to = r.valid_to, o.closed_by = r.closed_by
"""

DELETE_FACTS = """
UNWIND $fids AS fid
MATCH (f:Fact {fid: fid})
WHERE f.ukey = $ukey
DETACH DELETE f
RETURN count(f) AS removed
"""
