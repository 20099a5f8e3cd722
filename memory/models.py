"""Domain types that cross module boundaries.

All are frozen dataclasses; dicts stay inside the tier adapters. Validation of
untrusted text lives here (``clean_text``, ``clean_id``) so every entry point
(manager, CLI, bot, migration) refuses the same inputs with the same errors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from memory.errors import InvalidInput

MAX_MESSAGE_BYTES = 256 * 1024  # 256 KiB of UTF-8, as the README promises
MAX_METADATA_BYTES = 64 * 1024
MAX_METADATA_DEPTH = 32        # nesting levels of dicts and lists
MAX_METADATA_ITEMS = 10_000    # keys, list items and values, counted together
EARLIEST_TIMESTAMP = datetime(1970, 1, 1, tzinfo=UTC)
MAX_FUTURE = timedelta(days=1)
_ID_RE = re.compile(r"[A-Za-z0-9_.@-]{1,100}")


# What a chat front end writes into a message besides the user's own words (``bot/content.py``): a
# line naming an attachment ("[image: cat.jpg]", "[sticker: Wave]"), the frame of a text file read in
# ("[file notes.md]" ... "[end of notes.md]"), and a forwarded message, whose words are someone else's.
FORWARDED = "[forwarded message]"
_NOTE_LINE = re.compile(
    r"^\[(?:(?:image|video|audio|file|voice message|sticker): .*|(?:file|end of) [^\]]+|forwarded message)\]$",
    re.MULTILINE)
_FORWARDED_LINE = re.compile(rf"^{re.escape(FORWARDED)}$", re.MULTILINE)


def without_notes(text: str) -> str:
    """``text`` without the front end's note lines (see ``FORWARDED``)."""
    return _NOTE_LINE.sub("", text) if "[" in text else text


def own_words(text: str) -> str:
    """What the user said themselves: the note lines and any forwarded message left out, so a fact in
    someone else's words ("I'm a nurse" in a forwarded message) is not taken as the user's."""
    if "[" not in text:
        return text
    forwarded = _FORWARDED_LINE.search(text)
    return without_notes(text[:forwarded.start()] if forwarded else text)


def clean_id(value: object, field_name: str) -> str:
    """Return ``value`` as an id string, or raise InvalidInput.

    Ids are Discord snowflakes in practice; any 1-100 characters of
    ``[A-Za-z0-9_.@-]`` are accepted so imports and tests can use names.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise InvalidInput("must be 1-100 characters of letters, digits, '_', '.', '@' or '-'",
                           field=field_name)
    return value


def clean_text(value: object, field_name: str, *, allow_empty: bool = False,
               max_chars: int | None = None, max_bytes: int = MAX_MESSAGE_BYTES) -> str:
    """Return ``value`` unchanged if it can be stored faithfully in every tier.

    Raises InvalidInput for non-strings, empty or whitespace-only text (unless
    ``allow_empty``), text over ``max_chars`` characters (when given) or over
    ``max_bytes`` bytes of UTF-8 (256 KiB by default), NUL bytes (PostgreSQL
    text cannot hold them) and lone surrogates (not encodable as UTF-8).
    """
    if not isinstance(value, str):
        raise InvalidInput(f"must be a string, not {type(value).__name__}", field=field_name)
    if not allow_empty and not value.strip():
        raise InvalidInput("must not be empty or whitespace only", field=field_name)
    if max_chars is not None and len(value) > max_chars:
        raise InvalidInput(f"is {len(value)} characters; the limit is {max_chars}", field=field_name)
    if len(value) > max_bytes:  # cheap early refusal: every character is at least one byte
        raise InvalidInput(f"is over {max_bytes} bytes as UTF-8; the limit is {max_bytes}", field=field_name)
    if "\x00" in value:
        raise InvalidInput("contains a NUL byte, which cannot be stored", field=field_name)
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"is not valid Unicode (lone surrogate at {exc.start})",
                           field=field_name) from exc
    if size > max_bytes:
        raise InvalidInput(f"is {size} bytes as UTF-8; the limit is {max_bytes}", field=field_name)
    return value


def clean_metadata(value: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return a JSON-safe copy of ``value`` or raise InvalidInput."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput("must be a mapping", field="metadata")
    _check_shape(value)
    try:
        encoded = json.dumps(dict(value), ensure_ascii=True, allow_nan=False, default=_reject)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"is not JSON-serialisable: {exc}", field="metadata") from exc
    if "\\u0000" in encoded:
        raise InvalidInput("contains a NUL byte, which cannot be stored", field="metadata")
    if len(encoded) > MAX_METADATA_BYTES:
        raise InvalidInput(f"is {len(encoded)} bytes as JSON; the limit is {MAX_METADATA_BYTES}",
                           field="metadata")
    try:
        encoded.encode("utf-8")
    except UnicodeEncodeError as exc:  # pragma: no cover - ensure_ascii escapes, kept as a guard
        raise InvalidInput("is not valid Unicode", field="metadata") from exc
    if re.search(r"\\ud[89a-f]", encoded, re.IGNORECASE):
        # ensure_ascii escapes lone surrogates silently; PostgreSQL's jsonb refuses them.
        _check_surrogates(value)
    result: dict[str, Any] = json.loads(encoded)
    return result


def _check_shape(value: Mapping[str, Any]) -> None:
    """Refuse metadata nested deeper than MAX_METADATA_DEPTH or holding more than
    MAX_METADATA_ITEMS values, before anything recursive (json, the checks below) sees it.
    Iterative, so a cycle or a 100,000-deep nesting costs at most the caps."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    items = 0
    while stack:
        node, depth = stack.pop()
        if depth > MAX_METADATA_DEPTH:
            raise InvalidInput(f"is nested more than {MAX_METADATA_DEPTH} levels deep", field="metadata")
        children: Any = node.values() if isinstance(node, Mapping) else node
        for child in children:
            items += 1
            if items > MAX_METADATA_ITEMS:
                raise InvalidInput(f"holds more than {MAX_METADATA_ITEMS} values", field="metadata")
            if isinstance(child, Mapping | list | tuple):
                stack.append((child, depth + 1))


def _reject(obj: object) -> Any:
    if isinstance(obj, datetime):
        return obj.isoformat()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def _check_surrogates(value: Any) -> None:
    if isinstance(value, str):
        clean_text(value, "metadata", allow_empty=True)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _check_surrogates(str(k))
            _check_surrogates(v)
    elif isinstance(value, list | tuple):
        for v in value:
            _check_surrogates(v)


def utc(ts: datetime | None, field_name: str = "timestamp", *, earliest: datetime = EARLIEST_TIMESTAMP,
        max_future: timedelta = MAX_FUTURE) -> datetime:
    """Return ``ts`` as an aware UTC datetime (naive means UTC; None means now).

    Raises InvalidInput naming ``field_name`` for a non-datetime, a time that cannot
    be expressed in UTC (``datetime.max`` at -03:00), or one outside
    [``earliest``, now + ``max_future``]: PostgreSQL would store year 1 as -infinity.
    """
    if ts is None:
        return datetime.now(UTC)
    if not isinstance(ts, datetime):
        raise InvalidInput("must be a datetime", field=field_name)
    try:
        aware = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise InvalidInput(f"cannot be expressed in UTC ({exc})", field=field_name) from exc
    latest = datetime.now(UTC) + max_future
    if not earliest <= aware <= latest:
        raise InvalidInput(f"{aware.isoformat()} is outside {earliest.date().isoformat()} .. "
                           f"{latest.isoformat(timespec='seconds')}", field=field_name)
    return aware


def as_aware(ts: datetime) -> datetime:
    """``ts`` with a timezone, for values read back from a store: naive means UTC.

    Unlike ``utc`` this never refuses: a record stored before the window was
    enforced must still be readable, sortable and comparable.
    """
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose memories, and where: a user in one guild, or in their DMs (``guild_id`` None)."""

    user_id: str
    guild_id: str | None = None

    @classmethod
    def of(cls, user_id: object, guild_id: object | None = None) -> Scope:
        """Validated constructor; raises InvalidInput for malformed ids."""
        return cls(clean_id(user_id, "user_id"),
                   None if guild_id is None else clean_id(guild_id, "guild_id"))

    @property
    def key(self) -> str:
        """The scope column value: ``dm`` or ``g:<guild_id>``."""
        return "dm" if self.guild_id is None else f"g:{self.guild_id}"

    @property
    def label(self) -> str:
        return "DMs" if self.guild_id is None else f"guild {self.guild_id}"

    @staticmethod
    def guild_of(scope_key: str) -> str | None:
        return None if scope_key == "dm" else scope_key.removeprefix("g:")


@dataclass(frozen=True, slots=True)
class Exchange:
    """One user message and the bot's answer: the unit every tier stores."""

    id: str
    user_id: str
    guild_id: str | None
    channel_id: str | None
    user_message: str
    bot_response: str
    timestamp: datetime
    metadata: Mapping[str, Any] = field(default_factory=dict)
    message_id: str | None = None      # the Discord message it answered, if any
    revision: int = 0                  # how many times its text was edited

    def __post_init__(self) -> None:
        # every Exchange compares with aware datetimes, whatever a store handed back
        # (asyncpg reads -infinity as a naive datetime.min)
        if isinstance(self.timestamp, datetime) and self.timestamp.tzinfo is None:
            object.__setattr__(self, "timestamp", as_aware(self.timestamp))

    @property
    def scope(self) -> Scope:
        return Scope(self.user_id, self.guild_id)

    @property
    def text(self) -> str:
        """The exchange as one text, used for embedding and full-text search."""
        return f"{self.user_message}\n{self.bot_response}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "user_id": self.user_id, "guild_id": self.guild_id,
            "channel_id": self.channel_id, "user_message": self.user_message,
            "bot_response": self.bot_response, "timestamp": self.timestamp.isoformat(),
            "metadata": dict(self.metadata), "message_id": self.message_id, "revision": self.revision,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Exchange:
        return cls(id=data["id"], user_id=data["user_id"], guild_id=data.get("guild_id"),
                   channel_id=data.get("channel_id"), user_message=data["user_message"],
                   bot_response=data["bot_response"],
                   timestamp=datetime.fromisoformat(data["timestamp"]),
                   metadata=data.get("metadata") or {}, message_id=data.get("message_id"),
                   revision=int(data.get("revision") or 0))


MentionKind = Literal["entity", "topic"]


@dataclass(frozen=True, slots=True)
class Mention:
    """An entity (a named thing: person, place, product) or a topic found in an exchange."""

    name: str          # normalised: lower case, single spaces
    kind: MentionKind
    label: str = ""    # display form, e.g. "Paris"


# Typed relations between the user and something they talk about. Single-valued ones (a user
# lives in one place at a time) are closed by a newer statement with another object.
SINGLE_VALUED = frozenset({"NAME", "CALLED", "PRONOUNS", "LIVES_IN", "WORKS_AS", "WORKS_AT", "DIET",
                           "BIRTHDAY", "AGE", "RELATIONSHIP"})
MULTI_VALUED = frozenset({"HAS_PET", "SIBLING_OF", "PARENT_OF", "CHILD_OF", "PARTNER_OF", "FRIEND_OF", "RELATIVE_OF",
                          "LIKES", "DISLIKES", "ALLERGIC_TO", "HAS_CONDITION", "AVOIDS", "SPEAKS", "INSTRUCTS",
                          "FROM", "PLANS", "LOST", "AGE_OF"})
PREDICATES = SINGLE_VALUED | MULTI_VALUED
# A newer statement of one of these ends the open fact of the other about the same thing: who now
# hates coffee no longer likes it (and a forget of that statement brings the old one back).
OPPOSITES = {"LIKES": "DISLIKES", "DISLIKES": "LIKES"}
# Predicates whose object is the user's own name or a phrase ("software engineer", "loud music"),
# not a thing to index as an entity mention.
# The object of an ending that ends whatever is current ("I quit my job": the job, whichever it was).
ANY_OBJECT = "*"
# The label of such an ending that closes a student's studies only ("I graduated"): the current job if it
# is a student's ("comp sci student"), and with it the school; anyone else's job stays.
STUDENT = "student"
# The graph's record of an ending (not a predicate a statement can make): it closed the ended facts
# and is supported by the exchange that said so, so forgetting that exchange reopens them.
ENDED = "ENDED"
NOT_ENTITIES = frozenset({"NAME", "CALLED", "PRONOUNS", "WORKS_AS", "LIKES", "DISLIKES", "DIET", "ALLERGIC_TO",
                          "HAS_CONDITION", "AVOIDS", "BIRTHDAY", "INSTRUCTS", "AGE", "PLANS", "RELATIONSHIP", "LOST",
                          "AGE_OF"})
# Predicates only the rules state: a plan is dated by the time its clause names, which the model's
# relations do not carry, and a person's age joins their name and the age in one object ("mia 3"; the
# rules' reading of the same exchange is kept beside the model's)
RULES_ONLY = frozenset({"PLANS", "AGE_OF"})
# How the graph keeps some predicates apart from the rest (``memory.tiers._graph_facts``):
# - dated ahead: the start is the day it will happen, so it may lie after the message, and a new day
#   said later moves it ("my interview is on Saturday now");
# - named by their last words: "my interview" is the "job interview" told of, when it is the only one;
# - kept only while open: ending one we never heard of keeps nothing ("I quit smoking" is no liking,
#   "the party is off" no plan of the user's, "I don't have diabetes" no condition, "I eat meat again" no
#   rule against meat);
# - one open fact per detail: a person's age (detail the person, "mia"), so "mia 4" ends "mia 3".
DATED_AHEAD = frozenset({"PLANS"})
NAMED_BY_LAST_WORDS = frozenset({"PLANS"})
KEPT_ONLY_WHILE_OPEN = frozenset({"LIKES", "DISLIKES", "PLANS", "HAS_CONDITION", "AVOIDS"})
ONE_PER_DETAIL = frozenset({"AGE_OF"})


@dataclass(frozen=True, slots=True)
class Statement:
    """Something an exchange says about the user: ``predicate`` -> ``obj`` (normalised name).

    ``label`` is the display form ("Berlin"), ``detail`` qualifies the relation
    ("sister", "dog"). ``since`` is when the statement itself says the fact began ("I moved
    here last month"), ``since_unit`` how precisely ("day", "month", "year"); without it the
    fact begins when it was said. An ``ended`` statement says the fact is over (then ``since``
    is when it ended). Raises InvalidInput for an unknown predicate or an empty object.
    """

    predicate: str
    obj: str
    label: str = ""
    detail: str = ""
    since: datetime | None = None
    since_unit: str = ""
    ended: bool = False                # "my cat Miso died": the fact ends then (``obj`` ANY_OBJECT: any current)

    def __post_init__(self) -> None:
        if self.predicate not in PREDICATES:
            raise InvalidInput(f"unknown predicate {self.predicate!r}", field="predicate")
        if not self.obj.strip() or len(self.obj) > 200:
            raise InvalidInput("must be 1-200 characters", field="obj")


@dataclass(frozen=True, slots=True)
class TypedFact:
    """A typed relation as the graph holds it: current while ``valid_to`` is None."""

    id: str
    predicate: str
    obj: str
    label: str
    detail: str
    valid_from: datetime
    valid_to: datetime | None
    support: tuple[str, ...]           # ids of the exchanges that state it
    aliases: tuple[str, ...] = ()
    from_unit: str = ""                # "month"/"year": valid_from is as precise as the user said it
    told: datetime | None = None       # when the user said it (or last changed its detail); None: before this was kept

    @property
    def current(self) -> bool:
        return self.valid_to is None


@dataclass(frozen=True, slots=True)
class Extraction:
    """What the derived tiers keep of one exchange."""

    exchange_id: str
    summary: str
    chunks: tuple[str, ...]            # texts to embed; chunk i is keyed (exchange_id, i)
    mentions: tuple[Mention, ...] = ()
    statements: tuple[Statement, ...] = ()


@dataclass(frozen=True, slots=True)
class SummaryRecord:
    """One chunk of one exchange in the summaries tier."""

    exchange_id: str
    chunk: int
    user_id: str
    scope_key: str
    timestamp: datetime
    summary: str
    embedding: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Hit:
    """A candidate exchange proposed by one tier, best first within that tier."""

    exchange_id: str
    score: float
    source: str                        # "recent", "fulltext", "semantic", "graph"
    detail: str = ""                   # e.g. the summary or the entity that matched


@dataclass(frozen=True, slots=True)
class Relation:
    """An entity or topic the user talked about, with how often and when."""

    name: str
    kind: MentionKind
    count: int
    first_seen: datetime
    last_seen: datetime
    label: str = ""


@dataclass(frozen=True, slots=True)
class ForgetTarget:
    """What to forget: a user's every scope, one scope, or some exchanges in one scope."""

    user_id: str
    scope: Scope | None = None
    exchange_ids: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.exchange_ids is not None and self.scope is None:
            raise InvalidInput("forgetting exchanges needs their scope", field="exchange_ids")


TierStatus = Literal["ok", "failed", "timeout", "skipped"]


@dataclass(frozen=True, slots=True)
class TierReport:
    """How one tier answered during one context assembly."""

    tier: str
    status: TierStatus
    ms: float
    hits: int = 0
    detail: str = ""


# ---- preferences and policies: pause, notices, guild settings, retention, activity ----------


@dataclass(frozen=True, slots=True)
class GuildSettings:
    """What a guild's admins set with ``/memory settings``; unset fields fall back to the bot's."""

    guild_id: str
    persona: str | None = None
    always_on_channels: frozenset[str] = frozenset()
    retention_days: int | None = None
    updated_by: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class MessageState:
    """What the bot needs to know about a user and scope before answering one message."""

    paused: bool = False
    first_notice: bool = False         # the one-time "I remember" notice is due now
    guild: GuildSettings | None = None


@dataclass(frozen=True, slots=True)
class ActiveConversation:
    """A user and channel with exchanges stored in the last minutes."""

    user_id: str
    guild_id: str | None
    channel_id: str | None
    exchanges: int
    last_at: datetime


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """One run of the retention job: exchanges past their retention, and what each tier removed."""

    exchanges: int
    removed: Mapping[str, int]
    pending: tuple[str, ...] = ()      # derived tiers that were down: queued like any forget
