"""Read-only access to one collection of a legacy Chroma store."""

from __future__ import annotations

import asyncio
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from memory.errors import ConfigurationError, InvalidInput, TierUnavailable
from memory.migration.mapping import LegacyRecord

_SEGMENT_DIR = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def snapshot(store: Path, into: Path) -> Path:
    """Copy the on-disk Chroma store ``store`` to the new folder ``into``, only reading ``store``.

    chromadb's ``PersistentClient`` writes to any folder it opens (it creates
    ``chroma.sqlite3`` in an empty one, and rewrites the database and index files
    of an existing store even to read it), so a legacy store is never opened in
    place. The database is copied with SQLite's online backup from a read-only
    connection (consistent even if the legacy application is running), the
    vector segment folders (named by uuid) file by file; nothing else in ``store``
    is read. Raises ConfigurationError when ``store`` holds no Chroma database.
    """
    database = store / "chroma.sqlite3"
    if not database.is_file():
        raise ConfigurationError("from_chroma", f"{store} holds no Chroma store (no chroma.sqlite3)")
    into.mkdir()
    for child in store.iterdir():
        if child.is_dir() and _SEGMENT_DIR.match(child.name):
            shutil.copytree(child, into / child.name)
    source = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
    try:
        target = sqlite3.connect(into / "chroma.sqlite3")
        try:
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()
    return into


class LegacyChromaReader:
    """One collection of a legacy Chroma store, read-only, by pages.

    ``source`` is a directory or an ``http(s)://host:port`` URL (``HttpClient``,
    which only reads). A directory must hold a Chroma store (``chroma.sqlite3``);
    it is copied to a private temporary folder (``snapshot``) and the copy is
    opened, so the legacy folder is never written to; ``aclose`` removes the copy.
    Telemetry is off and no embedding function is attached, so nothing is
    downloaded. Chroma is synchronous: every call runs in a worker thread.
    Raises ConfigurationError (no store, no such collection: the message names
    neither the store's other collections nor anything the server said) and
    TierUnavailable("legacy-chroma") (the store cannot be read).
    """

    def __init__(self, source: str, collection: str) -> None:
        self.source = source
        self.name = collection
        self._collection: Any = None
        self._client: Any = None
        self._scratch: Path | None = None

    async def open(self) -> None:
        try:
            self._collection = await self._call(self._open)
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Close the client and remove the private copy of an on-disk store."""
        from memory.tiers.chroma_client import close_chroma_client

        client, self._client, self._collection = self._client, None, None
        if client is not None:
            await asyncio.to_thread(close_chroma_client, client)
        if self._scratch is not None:
            scratch, self._scratch = self._scratch, None
            await asyncio.to_thread(shutil.rmtree, scratch, True)

    def _open(self) -> Any:
        import chromadb
        from chromadb.config import Settings
        from chromadb.errors import NotFoundError

        settings = Settings(anonymized_telemetry=False)
        url = urlparse(self.source)
        if url.scheme in ("http", "https"):
            # (chromadb leaves the HTTP pool of a client whose constructor fails to the garbage collector)
            self._client = chromadb.HttpClient(host=url.hostname or "localhost",
                                               port=url.port or (443 if url.scheme == "https" else 8000),
                                               ssl=url.scheme == "https", settings=settings)
        elif Path(self.source).expanduser().is_dir():
            self._scratch = Path(tempfile.mkdtemp(prefix="mnemo-legacy-"))
            copy = snapshot(Path(self.source).expanduser(), self._scratch / "store")
            self._client = chromadb.PersistentClient(path=str(copy), settings=settings)
        else:
            raise ConfigurationError("from_chroma",
                                     f"{self.source} is neither a directory nor an http(s) URL")
        try:
            return self._client.get_collection(self.name, embedding_function=None)
        except NotFoundError as exc:
            raise ConfigurationError("collection", f"no collection {self.name!r} in {self.source}") from exc

    @property
    def uuid(self) -> str:
        return str(self._collection.id)

    async def count(self) -> int:
        return int(await self._call(self._collection.count))

    async def page(self, offset: int, limit: int) -> list[LegacyRecord]:
        def read() -> list[LegacyRecord]:
            got = self._collection.get(limit=limit, offset=offset, include=["documents", "metadatas"])
            rows = zip(got["ids"], got["documents"], got["metadatas"], strict=True)
            return [LegacyRecord(i, d, m or {}, offset + n) for n, (i, d, m) in enumerate(rows)]
        return list(await self._call(read))

    async def fetch(self, positions: Mapping[str, int]) -> list[LegacyRecord]:
        """The records with these ids (position = their index in pass 1)."""
        def read() -> list[LegacyRecord]:
            got = self._collection.get(ids=list(positions), include=["documents", "metadatas"])
            return [LegacyRecord(i, d, m or {}, positions[i])
                    for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)]
        return list(await self._call(read))

    async def embedding_model(self) -> tuple[str | None, int | None]:
        """(model name if recorded, vector size of the stored embeddings)."""
        result: tuple[str | None, int | None] = await self._call(self._embedding_model)
        return result

    def _embedding_model(self) -> tuple[str | None, int | None]:
        got = self._collection.get(limit=1, include=["embeddings"])
        vectors = got.get("embeddings")
        dimension = len(vectors[0]) if vectors is not None and len(vectors) else None
        meta = self._collection.metadata or {}
        for key in ("embedding_model", "model", "embedding_function", "model_name"):
            if isinstance(meta.get(key), str):
                return meta[key], dimension
        try:
            function = (self._collection.configuration or {}).get("embedding_function")
        except (ValueError, KeyError, TypeError, AttributeError):   # an unknown function's config
            function = None
        if function is None:
            return None, dimension
        name = function.name() if hasattr(function, "name") else type(function).__name__
        config = function.get_config() if hasattr(function, "get_config") else {}
        model = (config or {}).get("model_name")
        if name == "default":
            model = "all-MiniLM-L6-v2"     # Chroma's default function is all-MiniLM-L6-v2 in ONNX
        return (str(model) if model else str(name)), dimension

    async def _call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` in a thread; whatever the store or the client raises becomes TierUnavailable.

        Broad on purpose: this is the edge to a store the migration does not control
        (an odd server answer can surface as KeyError, TypeError or a bare Exception).
        """
        try:
            return await asyncio.to_thread(fn)
        except (ConfigurationError, InvalidInput):
            raise
        except Exception as exc:
            raise TierUnavailable("legacy-chroma", f"{self.source}: {type(exc).__name__}: {exc}") from exc
