"""Legacy records -> exchanges: classification, pairing, timestamps and ids (pure functions).

See ``memory.migration`` for the decisions these functions implement.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from memory.errors import InvalidInput
from memory.models import Exchange, clean_id, clean_metadata, clean_text

NAMESPACE = uuid.UUID("dec79bb3-c679-5c24-b623-3ae505119dce")  # uuid5(URL, "mnemo:legacy-chroma-migration")
NO_REPLY = "(no reply recorded)"
NO_MESSAGE = "(no message recorded)"
USER_ROLES = frozenset({"user", "human", "user_message", "question", "input"})
BOT_ROLES = frozenset({"assistant", "bot", "ai", "bot_response", "response", "answer", "output", "model"})
_CONSUMED = frozenset({"user_id", "user_message", "bot_response", "timestamp", "guild_id", "channel_id",
                       "conversation_id", "role", "type", "content", "text", "message"})
_NO_SCOPE = frozenset({"", "none", "null", "dm", "0"})
_TRANSCRIPT = re.compile(r"^\s*(?:user|human)\s*:\s*(?P<u>.*?)\n\s*(?:assistant|bot|ai)\s*:\s*(?P<b>.*)$",
                         re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True, slots=True)
class LegacyRecord:
    """One document of the legacy collection; ``position`` is its index in the store's own order."""

    id: str
    document: str | None
    metadata: Mapping[str, Any]
    position: int


@dataclass(frozen=True, slots=True)
class Unmappable:
    """A legacy record that could not become (part of) an exchange, and why."""

    legacy_id: str
    reason: str
    document: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"legacy_id": self.legacy_id, "reason": self.reason, "document": self.document,
                "metadata": dict(self.metadata)}


def parse_timestamp(value: object) -> datetime | None:
    """An aware UTC datetime from an ISO string or an epoch number in s/ms/us; None if unusable."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                return None
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return None
    seconds = float(value)
    while seconds > 1e11:          # milliseconds or microseconds since the epoch
        seconds /= 1000
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def role_of(metadata: Mapping[str, Any]) -> str | None:
    for key in ("role", "type"):
        value = metadata.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip().lower()
    return None


def classify(record: LegacyRecord) -> Literal["exchange", "message"] | Unmappable:
    """Whether ``record`` is a whole exchange, one message of a conversation, or unmappable."""
    meta = record.metadata
    if not meta:
        return _unmappable(record, "no metadata: the user it belongs to is unknown")
    if "user_message" in meta or "bot_response" in meta:
        return "exchange"
    role = role_of(meta)
    if role in USER_ROLES or role in BOT_ROLES:
        return "message"
    if record.document and _TRANSCRIPT.match(record.document):
        return "exchange"
    if role is not None:
        return _unmappable(record, f"unknown role/type {role!r}")
    return _unmappable(record, "neither user_message/bot_response nor a role/type in the metadata")


def conversation_key(record: LegacyRecord) -> str:
    """The group a message belongs to: its conversation id, else its user, guild and channel."""
    meta = record.metadata
    if meta.get("conversation_id") not in (None, ""):
        return json.dumps(["c", str(meta["conversation_id"])])
    return json.dumps(["u", *(str(meta.get(k, "")) for k in ("user_id", "guild_id", "channel_id"))])


def exchange_id_for(collection_uuid: str, collection: str, legacy_ids: Sequence[str]) -> str:
    """The deterministic exchange id of the exchange made of these legacy records."""
    return str(uuid.uuid5(NAMESPACE, "\x1f".join([collection_uuid, collection, *legacy_ids])))


@dataclass(frozen=True, slots=True)
class Mapper:
    """Maps legacy records of one collection to exchanges; pure apart from its inputs."""

    collection: str
    collection_uuid: str
    started_at: datetime

    def map_exchange(self, record: LegacyRecord) -> list[Exchange | Unmappable]:
        """One exchange-shaped record -> one exchange (or an Unmappable)."""
        meta = record.metadata
        user, bot = meta.get("user_message"), meta.get("bot_response")
        if not _nonblank(user) and not _nonblank(bot) and record.document:
            match = _TRANSCRIPT.match(record.document)
            if match:
                user, bot = match["u"].strip(), match["b"].strip()
        user_text = user if _nonblank(user) else None
        bot_text = bot if _nonblank(bot) else None
        extra: dict[str, Any] = {}
        doc = record.document
        if doc and doc.strip() and not (user_text and user_text in doc and (bot_text or "") in doc):
            extra["legacy_document"] = doc
        return self._build([record], record, user_text, [bot_text] if bot_text else [], extra)

    def pair(self, records: Sequence[LegacyRecord]) -> list[Exchange | Unmappable]:
        """The messages of one conversation -> exchanges, paired in time order.

        Order: by timestamp (ties by legacy position) when every message has
        one, else by legacy position. Deterministic for the same records.
        """
        stamps = [parse_timestamp(r.metadata.get("timestamp")) for r in records]
        if all(s is not None for s in stamps):
            ordered = [r for _, r in sorted(zip(stamps, records, strict=True),
                                            key=lambda p: (p[0], p[1].position))]
        else:
            ordered = sorted(records, key=lambda r: r.position)
        out: list[Exchange | Unmappable] = []
        user: LegacyRecord | None = None
        replies: list[LegacyRecord] = []
        for rec in ordered:
            if _message_text(rec) is None:
                out.append(_unmappable(rec, "message without text"))
            elif role_of(rec.metadata) in USER_ROLES:
                if user is not None or replies:
                    out += self._emit(user, replies)
                user, replies = rec, []
            else:
                replies.append(rec)
        if user is not None or replies:
            out += self._emit(user, replies)
        return out

    def _emit(self, user: LegacyRecord | None, replies: list[LegacyRecord]) -> list[Exchange | Unmappable]:
        head = user or replies[0]
        return self._build([user, *replies] if user else replies, head,
                           _message_text(user) if user else None,
                           [_message_text(r) or "" for r in replies], {})

    def _build(self, records: list[LegacyRecord], head: LegacyRecord, user_text: str | None,
               bot_texts: list[str], extra: dict[str, Any]) -> list[Exchange | Unmappable]:
        """One exchange of ``records`` (``head`` gives its scope), or one Unmappable per record."""
        ids = [r.id for r in records]
        meta = head.metadata
        try:
            if not user_text and not bot_texts:
                raise InvalidInput("no user message and no bot response")
            user_id = next((r.metadata["user_id"] for r in records if r.metadata.get("user_id") not in
                            (None, "")), None)
            if user_id is None:
                raise InvalidInput("no user_id: the user it belongs to is unknown")
            stamp = next((t for t in (parse_timestamp(r.metadata.get("timestamp")) for r in records) if t),
                         None)
            info: dict[str, Any] = {"legacy_ids": ids, "legacy_collection": self.collection,
                                    "legacy_source": "chroma"}
            if stamp is None:
                stamp = self.started_at + timedelta(microseconds=head.position)
                info["legacy_timestamp_missing"] = True
                raw = meta.get("timestamp")
                if raw not in (None, ""):
                    info["legacy_timestamp_raw"] = raw
            if user_text is None or not bot_texts:
                info["legacy_unpaired"] = True
            if meta.get("conversation_id") not in (None, ""):
                info["legacy_conversation_id"] = str(meta["conversation_id"])
            extras = {r.id: {k: v for k, v in r.metadata.items() if k not in _CONSUMED} for r in records}
            extras = {k: v for k, v in extras.items() if v}
            if extras:
                info["legacy_metadata"] = extras
            info.update(extra)
            return [Exchange(
                id=exchange_id_for(self.collection_uuid, self.collection, ids),
                user_id=clean_id(_id_text(user_id), "user_id"),
                guild_id=_scope_id(meta.get("guild_id"), "guild_id"),
                channel_id=_scope_id(meta.get("channel_id"), "channel_id"),
                user_message=clean_text(user_text or NO_MESSAGE, "user_message"),
                bot_response=clean_text("\n\n".join(bot_texts) or NO_REPLY, "bot_response"),
                timestamp=stamp, metadata=clean_metadata(info))]
        except InvalidInput as exc:
            return [_unmappable(r, str(exc)) for r in records]


def _nonblank(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _message_text(record: LegacyRecord) -> str | None:
    for value in (record.document, *(record.metadata.get(k) for k in ("content", "text", "message"))):
        if isinstance(value, str) and value.strip():
            return value
    return None


def _id_text(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value.strip() if isinstance(value, str) else value


def _scope_id(value: object, name: str) -> str | None:
    value = _id_text(value)
    if value is None or (isinstance(value, str) and value.lower() in _NO_SCOPE) or value == 0:
        return None
    return clean_id(value, name)


def _unmappable(record: LegacyRecord, reason: str) -> Unmappable:
    return Unmappable(record.id, reason, record.document, dict(record.metadata or {}))


def named_owner(metadata: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(user id, scope key) a legacy record's metadata names, each None when it names no valid one."""
    try:
        user_id = clean_id(_id_text(metadata.get("user_id")), "user_id")
    except InvalidInput:
        return None, None
    try:
        guild_id = _scope_id(metadata.get("guild_id"), "guild_id")
    except InvalidInput:
        return user_id, None
    return user_id, "dm" if guild_id is None else f"g:{guild_id}"
