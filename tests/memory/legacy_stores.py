"""Builders of legacy single-Chroma memory stores, in the shapes operators have.

Each builder writes a real Chroma collection with chromadb itself (on disk or
on a server) and returns what a faithful migration must produce. Vectors are
deterministic fakes of the legacy model's size; Chroma's default embedding
function is never used (it downloads a model).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import chromadb
import numpy as np
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings

PETS = ["parrot", "iguana", "beagle", "ferret", "tortoise", "hamster", "falcon", "axolotl"]
CITIES = ["Lisbon", "Osaka", "Valparaiso", "Tromso", "Marrakesh", "Quebec", "Hobart", "Tbilisi"]
HOBBIES = ["pottery", "fencing", "beekeeping", "bouldering", "origami", "sailing", "calligraphy", "juggling"]
BASE_TIME = datetime(2023, 3, 1, 12, 0, tzinfo=UTC)

Record = tuple[str, str | None, dict[str, Any] | None]      # (id, document, metadata)


@dataclass(frozen=True)
class Expected:
    """An exchange the migration must create."""

    legacy_ids: tuple[str, ...]
    user_id: str
    user_message: str
    bot_response: str
    timestamp: datetime | None            # None: the legacy store had none
    guild_id: str | None = None
    channel_id: str | None = None


def file_tree(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file and folder under ``root``: (size, mtime in ns, content), to tell nothing was written."""
    files = {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes())
             for p in sorted(root.rglob("*")) if p.is_file()}
    return files | {str(p.relative_to(root)) + "/": (0, 0, b"") for p in root.rglob("*") if p.is_dir()}


def open_client(location: str | Path) -> ClientAPI:
    """A client of the legacy store: a directory or an http:// URL."""
    settings = Settings(anonymized_telemetry=False)
    if isinstance(location, str) and location.startswith("http"):
        url = urlparse(location)
        return chromadb.HttpClient(host=url.hostname or "127.0.0.1", port=url.port or 8000, settings=settings)
    return chromadb.PersistentClient(path=str(location), settings=settings)


def write_collection(location: str | Path, name: str, records: list[Record], *, dim: int = 1536,
                     metadata: dict[str, Any] | None = None, default_function: bool = False) -> None:
    """Create ``name`` (replacing it) holding ``records`` in this order, with fake ``dim``-sized vectors.

    ``default_function`` records Chroma's default embedding function in the
    collection's configuration, as stores made with ``create_collection(name)`` have.
    """
    client = open_client(location)
    if name in {c.name for c in client.list_collections()}:
        client.delete_collection(name)
    collection: Collection
    if default_function:
        collection = client.create_collection(name, metadata=metadata)
    else:
        collection = client.create_collection(name, metadata=metadata, embedding_function=None)
    rng = random.Random(name)
    for start in range(0, len(records), 100):
        chunk = records[start:start + 100]
        collection.add(ids=[r[0] for r in chunk], documents=[r[1] or "" for r in chunk],
                       metadatas=[r[2] or None for r in chunk],  # type: ignore[misc]
                       embeddings=np.array([[rng.uniform(-1, 1) for _ in range(dim)] for _ in chunk],
                                           dtype=np.float32))


def sentence(i: int, user: str) -> tuple[str, str]:
    """A distinctive (user message, bot response) pair, so retrieval can find it by its words."""
    pet, city, hobby = PETS[i % 8], CITIES[(i // 8) % 8], HOBBIES[(i * 3 + len(user)) % 8]
    return (f"My {pet} number {i} came with me to {city} where I practised {hobby}",
            f"A {pet} in {city} sounds lovely; how did the {hobby} go?")


def exchange_store(prefix: str, users: list[str], per_user: int) -> tuple[list[Record], list[Expected]]:
    """Shape (a): one document per exchange; ISO and epoch timestamps, guild and DM scopes."""
    records: list[Record] = []
    expected: list[Expected] = []
    for u, user in enumerate(users):
        for i in range(per_user):
            rid = f"{prefix}-{user}-{i}"
            msg, reply = sentence(u * per_user + i, user)
            ts = BASE_TIME + timedelta(days=u, hours=i)
            guild = "9001" if i % 2 else None
            meta: dict[str, Any] = {"user_id": user, "user_message": msg, "bot_response": reply,
                                    "timestamp": ts.timestamp() if i % 3 == 0 else ts.isoformat(),
                                    "importance": i}
            if guild:
                meta |= {"guild_id": int(guild), "channel_id": "555"}
            records.append((rid, f"User: {msg}\nAssistant: {reply}", meta))
            expected.append(Expected((rid,), user, msg, reply, ts, guild, "555" if guild else None))
    return records, expected


def message_store(prefix: str, user: str, conversations: int) -> tuple[list[Record], list[Expected]]:
    """Shape (b): one document per message; inserted shuffled so conversations straddle pages.

    Each conversation: user/assistant pairs, one user message left unanswered
    (the conversation's last), and in the first conversation an assistant
    greeting before any user message.
    """
    records: list[Record] = []
    expected: list[Expected] = []
    n = 0
    for c in range(conversations):
        conv = f"{prefix}-conv{c}"
        t = BASE_TIME + timedelta(days=10 + c)

        def add(role: str, text: str, at: datetime, key: str = "role", conv: str = conv) -> str:
            rid = f"{prefix}-m{len(records)}"
            records.append((rid, text, {key: role, "conversation_id": conv, "user_id": user,
                                        "timestamp": at.isoformat()}))
            return rid

        if c == 0:
            hello = "Hello again! I kept notes on your travels."
            expected.append(Expected((add("assistant", hello, t - timedelta(minutes=5)),), user,
                                     "(no message recorded)", hello, t - timedelta(minutes=5)))
        for k in range(2):
            msg, reply = sentence(100 + n, user)
            n += 1
            at = t + timedelta(minutes=10 * k)
            uid = add("user", msg, at)
            bid = add("bot" if k else "assistant", reply, at + timedelta(seconds=30),
                      key="type" if k else "role")
            expected.append(Expected((uid, bid), user, msg, reply, at))
        msg, _ = sentence(100 + n, user)
        n += 1
        at = t + timedelta(hours=1)
        expected.append(Expected((add("user", msg, at),), user, msg, "(no reply recorded)", at))
    random.Random(prefix).shuffle(records)
    return records, expected


def messy_store(prefix: str, user: str) -> tuple[list[Record], list[Expected], dict[str, str]]:
    """Shapes (c) and (d): records without timestamps, without metadata, without text or user.

    Returns (records, expected exchanges, {legacy id: reason fragment} of the unmappable ones).
    """
    records: list[Record] = []
    expected: list[Expected] = []
    for i in range(3):
        msg, reply = sentence(200 + i, user)
        rid = f"{prefix}-undated-{i}"
        records.append((rid, "", {"user_id": user, "user_message": msg, "bot_response": reply}))
        expected.append(Expected((rid,), user, msg, reply, None))
    records.append((f"{prefix}-bad-ts", "", {"user_id": user, "user_message": "I moved to Reykjavik",
                                             "bot_response": "Enjoy the aurora!",
                                             "timestamp": "last tuesday"}))
    expected.append(Expected((f"{prefix}-bad-ts",), user, "I moved to Reykjavik", "Enjoy the aurora!", None))
    unmappable = {
        f"{prefix}-nometa-0": "no metadata",
        f"{prefix}-nometa-1": "no metadata",
        f"{prefix}-nouser": "no user_id",
        f"{prefix}-weird": "unknown role/type",
        f"{prefix}-nul": "NUL byte",
    }
    records += [
        (f"{prefix}-nometa-0", "User likes green tea", None),
        (f"{prefix}-nometa-1", "Remember: birthday in May", None),
        (f"{prefix}-nouser", "", {"user_message": "who am I?", "bot_response": "nobody knows"}),
        (f"{prefix}-weird", "a system prompt", {"type": "system", "user_id": user}),
        (f"{prefix}-nul", "", {"user_id": user, "user_message": "bad\x00byte", "bot_response": "ok"}),
    ]
    return records, expected, unmappable
