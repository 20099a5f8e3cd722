"""Seeded, deterministic generator of long multi-session conversations with planted facts.

``generate(GenConfig(...))`` returns a ``Dataset``: for each user, dozens of
sessions spread over months (DMs and guild channels), mostly chit-chat filler,
with planted facts (``bench.facts``) and questions about them. Every question
names its evidence exchanges by id and the *needle* of each (the sentence that
carries the fact), so a context can be scored by whether the needle is in it.

The same config always yields the same dataset (ids, texts, timestamps):
randomness comes only from ``random.Random`` seeded with strings derived from
``GenConfig.seed``. Questions are asked in the scope (DM or guild) where their
evidence lives; for an ``update`` question the older, superseded statement is
stored as well (role ``stale``) but only the newer one is evidence.

Every user also states their name, a pet, a home and a job in DMs, home and job
changing later (``bench.selfstated``); ``changed-fact`` and ``profile`` questions
ask about them. Those exchanges come from a separate random stream and sit between
the others, so every other exchange (text, timestamp, id) and question is the same
as without them.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bench import selfstated
from bench.facts import PAIRS, POOLS, QTYPES, FactKind, kinds_of
from bench.filler import BOT_EXTRAS, BOT_TAILS, FOLLOWUPS, OPENERS, TOPICS, fill, filler_exchange

_REPLIES = (
    "That's lovely to hear! How are you feeling about it?",
    "Oh nice, thanks for telling me.",
    "I'll remember that. Anything you'd like help with around it?",
    "That sounds like a big deal!",
    "Noted! Sounds like things are moving along.",
    "Oh wow, okay. How did that come about?",
    "Ha, love that. What happens next?",
)


@dataclass(frozen=True, slots=True)
class GenConfig:
    users: int = 5
    seed: int = 7
    exchanges_per_user: int = 320
    sessions: tuple[int, int] = (30, 40)  # sessions per user, drawn in this range
    start: datetime = datetime(2024, 1, 8, 9, 0, tzinfo=UTC)
    span_days: int = 270
    guilds: int = 3  # shared guild pool; each user is in 1-2 of them
    dm_share: float = 0.55  # share of sessions held in DMs
    facts: dict[str, int] = field(
        default_factory=lambda: {"single": 7, "multi": 4, "update": 5, "temporal": 5, "distractor": 4}
    )
    namespace: str = "bench"  # prefixes user/guild ids and salts exchange ids


@dataclass(frozen=True, slots=True)
class BenchExchange:
    id: str
    user_id: str
    guild_id: str | None
    channel_id: str | None
    user_message: str
    bot_response: str
    timestamp: datetime
    session: int
    role: str = "filler"  # filler | evidence | stale | distractor
    needle: str = ""  # for evidence/stale: the sentence that carries the fact
    speakers: tuple[str, ...] = ()  # public datasets: who speaks in the exchange (display names)

    def formatted(self) -> str:
        """The exchange as the baselines pack it: ``[YYYY-MM-DD] User: ... / Bot: ...``."""
        return f"[{self.timestamp:%Y-%m-%d}] User: {self.user_message} / Bot: {self.bot_response}"


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    user_id: str
    guild_id: str | None
    text: str
    qtype: str
    kind: str
    answer: str
    evidence_ids: tuple[str, ...]
    needles: tuple[str, ...]  # needles[i] is the fact sentence of evidence_ids[i]
    superseded_ids: tuple[str, ...] = ()  # update: the older statement, stored but not the answer
    # asked in the middle of the history (RealMemBench): only exchanges older than this exist yet
    asked_at: datetime | None = None


@dataclass(frozen=True)
class Dataset:
    config: GenConfig
    users: tuple[str, ...]
    exchanges: tuple[BenchExchange, ...]  # per user, oldest first
    questions: tuple[Question, ...]

    def by_id(self) -> dict[str, BenchExchange]:
        return {e.id: e for e in self.exchanges}

    def scope_exchanges(self, user_id: str, guild_id: str | None) -> list[BenchExchange]:
        """The exchanges one user has in one scope, oldest first."""
        return [e for e in self.exchanges if e.user_id == user_id and e.guild_id == guild_id]

    def user_exchanges(self, user_id: str) -> list[BenchExchange]:
        return [e for e in self.exchanges if e.user_id == user_id]


@dataclass(slots=True)
class _Planted:
    user_message: str
    bot_response: str
    role: str
    needle: str = ""


@dataclass(slots=True)
class _Session:
    index: int
    guild_id: str | None
    channel_id: str
    start: datetime
    length: int
    planted: dict[int, _Planted] = field(default_factory=dict)
    after: dict[int, list[_Planted]] = field(default_factory=dict)  # self-statements after a position

    def free_position(self, rng: random.Random) -> int | None:
        free = [p for p in range(self.length) if p not in self.planted]
        return rng.choice(free) if free else None


def generate(config: GenConfig | None = None) -> Dataset:
    """Build the dataset the config describes; same config, same dataset."""
    config = config or GenConfig()
    guild_ids = [f"{config.namespace}-guild{j}" for j in range(config.guilds)]
    exchanges: list[BenchExchange] = []
    questions: list[Question] = []
    users: list[str] = []
    for i in range(config.users):
        user_id = f"{config.namespace}-u{i}"
        users.append(user_id)
        ex, qs = _user(config, user_id, i, guild_ids)
        exchanges.extend(ex)
        questions.extend(qs)
    return Dataset(config, tuple(users), tuple(exchanges), tuple(questions))


def _user(
    config: GenConfig, user_id: str, index: int, guild_ids: list[str]
) -> tuple[list[BenchExchange], list[Question]]:
    rng = random.Random(f"{config.seed}:{index}")  # not the namespace: same texts under any prefix
    sessions = _sessions(config, rng, index, guild_ids)
    pending: list[tuple[FactKind, dict[str, str], str | None, list[tuple[_Session, int]]]] = []
    used: dict[str, set[str]] = {}
    for qtype in QTYPES:
        kinds = list(kinds_of(qtype))
        rng.shuffle(kinds)
        for kind in kinds[: config.facts.get(qtype, 0)]:
            values = _draw(kind, rng, used)
            guild = (
                None
                if rng.random() < 0.6
                else rng.choice(sorted({s.guild_id for s in sessions if s.guild_id is not None}))
            )
            scoped = [s for s in sessions if s.guild_id == guild]
            places = _plant(kind, values, scoped, rng)
            pending.append((kind, values, guild, places))
    own = random.Random(f"{config.seed}:{index}:self")  # the other facts' stream stays as it was
    stated = _plant_self(sessions, own)
    exchanges, ids = _materialise(config, user_id, sessions, rng, own)
    questions = []
    for n, (kind, values, guild, places) in enumerate(pending):
        evidence = places[-1:] if kind.qtype == "update" else places
        ev_ids = tuple(ids[(s.index, p)] for s, p in evidence)
        needles = tuple(s.planted[p].needle for s, p in evidence)
        if kind.qtype != "temporal":
            answer = kind.answer.format(**values)
        else:
            when = exchanges[_position(exchanges, ev_ids[0])].timestamp - timedelta(days=kind.day_offset)
            answer = f"{when:%Y-%m-%d}"
        questions.append(
            Question(
                id=f"{user_id}-q{n}",
                user_id=user_id,
                guild_id=guild,
                text=rng.choice(kind.questions).format(**values),
                qtype=kind.qtype,
                kind=kind.key,
                answer=answer,
                evidence_ids=ev_ids,
                needles=needles,
                superseded_ids=tuple(ids[(s.index, p)] for s, p in places[:-1])
                if kind.qtype == "update"
                else (),
            )
        )
    questions.extend(_self_questions(user_id, len(questions), stated, ids))
    return exchanges, questions


_Said = tuple[selfstated.SelfFact, tuple[_Session, int, int] | None, tuple[_Session, int, int]]


def _plant_self(sessions: list[_Session], rng: random.Random) -> list[_Said]:
    """Place each self-statement after a random position of a DM session; a changed
    fact's first statement in the first 45% of the DM sessions, the newer in the last 45%."""
    dms = [s for s in sessions if s.guild_id is None]
    part = max(1, int(len(dms) * 0.45))
    out: list[_Said] = []

    def put(sentence: str, window: list[_Session]) -> tuple[_Session, int, int]:
        session = rng.choice(window)
        pos = rng.randrange(session.length)
        queue = session.after.setdefault(pos, [])
        queue.append(_Planted(selfstated.message(sentence, rng), _reply(rng), "evidence", sentence))
        return session, pos, len(queue) - 1

    for fact in selfstated.draw(rng):
        old = put(fact.old, dms[:part]) if fact.old else None
        out.append((fact, old, put(fact.new, dms[-part:] if fact.old else dms)))
    return out


def _self_questions(
    user_id: str, start: int, stated: list[_Said], ids: dict[tuple[int, int], str]
) -> list[Question]:
    questions: list[Question] = []
    for fact, old, new in stated:
        for q in (q for q in selfstated.QUESTIONS if q.key == fact.key):
            place = new if q.newest else old
            assert place is not None, fact.key
            session, pos, k = place
            questions.append(
                Question(
                    id=f"{user_id}-q{start + len(questions)}",
                    user_id=user_id,
                    guild_id=None,
                    text=q.text,
                    qtype=q.qtype,
                    kind=fact.key + ("-now" if q.newest and old else "-before" if old else ""),
                    answer=q.answer.format(new=fact.new_value, old=fact.old_value),
                    evidence_ids=(ids[(session.index, -1 - pos * 100 - k)],),
                    needles=(session.after[pos][k].needle,),
                    superseded_ids=(ids[(old[0].index, -1 - old[1] * 100 - old[2])],)
                    if old and q.newest
                    else (),
                )
            )
    return questions


def _position(exchanges: list[BenchExchange], exchange_id: str) -> int:
    return next(i for i, e in enumerate(exchanges) if e.id == exchange_id)


def _sessions(config: GenConfig, rng: random.Random, index: int, guild_ids: list[str]) -> list[_Session]:
    mine = rng.sample(guild_ids, k=min(len(guild_ids), rng.choice((1, 2))))
    count = rng.randint(*config.sessions)
    offsets = sorted(rng.uniform(0, config.span_days) for _ in range(count))
    scopes: list[str | None] = [None] * 4 + [g for g in mine for _ in range(4)]  # every scope has sessions
    scopes += [
        None if rng.random() < config.dm_share else rng.choice(mine) for _ in range(count - len(scopes))
    ]
    rng.shuffle(scopes)
    lengths = [rng.randint(5, 14) for _ in range(count)]
    while sum(lengths) < config.exchanges_per_user:
        lengths[rng.randrange(count)] += 1
    sessions = []
    for k in range(count):
        guild = scopes[k]
        channel = f"{config.namespace}-dm{index}" if guild is None else f"{guild}-c{rng.randint(1, 3)}"
        start = config.start + timedelta(
            days=offsets[k], hours=rng.randint(0, 12), minutes=rng.randint(0, 59)
        )
        sessions.append(_Session(k, guild, channel, start, lengths[k]))
    return sessions


def _draw(kind: FactKind, rng: random.Random, used: dict[str, set[str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for slot, pool_name in kind.slots:
        taken = used.setdefault(pool_name, set())
        options = [v for v in POOLS[pool_name] if v not in taken] or list(POOLS[pool_name])
        values[slot] = rng.choice(options)
        taken.add(values[slot])
    if kind.pair:
        values["said"], values["asked"] = rng.choice(PAIRS[kind.pair])
    return values


def _plant(
    kind: FactKind, values: dict[str, str], scoped: list[_Session], rng: random.Random
) -> list[tuple[_Session, int]]:
    """Place the fact's statements (and distractors) in the scope's sessions; return evidence places."""
    steps = len(kind.statements)
    n = len(scoped)
    if steps == 1:
        windows = [scoped]
    elif kind.qtype == "update":  # old in the first 45% of sessions, new in the last 45%
        windows = [scoped[: max(1, int(n * 0.45))], scoped[n - max(1, int(n * 0.45)) :]]
    else:  # two different sessions, in order
        cut = rng.randint(1, n - 1)
        windows = [scoped[:cut], scoped[cut:]]
    places: list[tuple[_Session, int]] = []
    for step, window in enumerate(windows):
        session, pos = _free_slot(window, rng)
        needle = rng.choice(kind.statements[step]).format(**values)
        role = "stale" if kind.qtype == "update" and step == 0 else "evidence"
        session.planted[pos] = _Planted(_wrap(needle, rng), _reply(rng), role, needle)
        places.append((session, pos))
    distractors = list(kind.distractors)
    rng.shuffle(distractors)
    for text in distractors:
        window = scoped
        if kind.qtype == "temporal":  # plans and worries come before the event
            window = [s for s in scoped if s.index < places[0][0].index] or scoped
        session, pos = _free_slot(window, rng)
        message = _wrap(fill(text, rng, values), rng)
        session.planted[pos] = _Planted(message, _reply(rng), "distractor")
    return places


def _free_slot(window: list[_Session], rng: random.Random) -> tuple[_Session, int]:
    for session in rng.sample(window, k=len(window)):
        pos = session.free_position(rng)
        if pos is not None:
            return session, pos
    session = rng.choice(window)  # every slot taken: lengthen the session
    session.length += 1
    return session, session.length - 1


def _wrap(sentence: str, rng: random.Random) -> str:
    """A user message around a sentence: an opener, sometimes an unrelated tail."""
    text = rng.choice(OPENERS) + sentence + rng.choice(FOLLOWUPS)
    if rng.random() < 0.35:
        other = TOPICS[rng.choice(sorted(TOPICS))][0]
        tail = rng.choice(other)
        if "{" not in tail:
            text += ". also " + tail
    return text


def _reply(rng: random.Random) -> str:
    reply = rng.choice(_REPLIES) + rng.choice(BOT_TAILS)
    return reply + (" " + rng.choice(BOT_EXTRAS) if rng.random() < 0.5 else "")


def _materialise(
    config: GenConfig, user_id: str, sessions: list[_Session], rng: random.Random, own: random.Random
) -> tuple[list[BenchExchange], dict[tuple[int, int], str]]:
    """The exchanges, oldest first, and their ids by (session, position); a self-statement
    ``k`` after position ``p`` is keyed ``(session, -1 - 100 * p - k)``."""
    exchanges: list[BenchExchange] = []
    ids: dict[tuple[int, int], str] = {}
    extra = 0
    last = config.start
    for session in sessions:  # in index order; a session never starts before the last one ended
        ts = max(session.start, last + timedelta(minutes=45))
        for pos in range(session.length):
            ts += timedelta(minutes=rng.randint(1, 7), seconds=rng.randint(0, 59))
            planted = session.planted.get(pos)
            if planted is None:
                user_message, bot_response = filler_exchange(rng)
                planted = _Planted(user_message, bot_response, "filler")
            seq = len(exchanges) - extra
            eid = str(
                uuid.uuid5(
                    uuid.NAMESPACE_URL, f"mnemo-bench/{config.namespace}/{config.seed}/{user_id}/{seq}"
                )
            )
            ids[(session.index, pos)] = eid
            exchanges.append(
                BenchExchange(
                    eid,
                    user_id,
                    session.guild_id,
                    session.channel_id,
                    planted.user_message,
                    planted.bot_response,
                    ts,
                    session.index,
                    planted.role,
                    planted.needle,
                )
            )
            for k, said in enumerate(session.after.get(pos, [])):  # seconds later, before the next one
                eid = str(uuid.uuid5(uuid.NAMESPACE_URL,
                                     f"mnemo-bench/{config.namespace}/{config.seed}/{user_id}/self{extra}"))
                ids[(session.index, -1 - 100 * pos - k)] = eid
                at = ts + timedelta(seconds=5 + 8 * k + own.randint(0, 6))
                exchanges.append(BenchExchange(eid, user_id, None, session.channel_id, said.user_message,
                                               said.bot_response, at, session.index, said.role, said.needle))
                extra += 1
        last = ts
    return exchanges, ids


def iter_scopes(dataset: Dataset) -> Iterator[tuple[str, str | None]]:
    """Every (user, guild) pair that holds exchanges, in a fixed order."""
    seen: dict[tuple[str, str | None], None] = {}
    for e in dataset.exchanges:
        seen.setdefault((e.user_id, e.guild_id), None)
    yield from seen
