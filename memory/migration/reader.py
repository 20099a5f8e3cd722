"""Read-only access to one collection of a legacy Chroma store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from memory.errors import ConfigurationError, InvalidInput, TierUnavailable
from memory.migration.mapping import LegacyRecord


class LegacyChromaReader:
    """One collection of a legacy Chroma store, read-only, by pages.

    ``source`` is a directory (``PersistentClient``; it must exist, nothing is
    created) or an ``http(s)://host:port`` URL (``HttpClient``). Telemetry is
    off and no embedding function is attached, so nothing is downloaded.
    Chroma is synchronous: every call runs in a worker thread. Raises
    ConfigurationError (no such directory or collection) and
    TierUnavailable("legacy-chroma") (the store cannot be read).
    """

    def __init__(self, source: str, collection: str) -> None:
        self.source = source
        self.name = collection
        self._collection: Any = None

    async def open(self) -> None:
        self._collection = await self._call(self._open)

    def _open(self) -> Any:
        import chromadb
        from chromadb.config import Settings
        from chromadb.errors import NotFoundError

        settings = Settings(anonymized_telemetry=False)
        url = urlparse(self.source)
        if url.scheme in ("http", "https"):
            client = chromadb.HttpClient(host=url.hostname or "localhost",
                                         port=url.port or (443 if url.scheme == "https" else 8000),
                                         ssl=url.scheme == "https", settings=settings)
        elif Path(self.source).is_dir():
            client = chromadb.PersistentClient(path=self.source, settings=settings)
        else:
            raise ConfigurationError("from_chroma",
                                     f"{self.source} is neither a directory nor an http(s) URL")
        try:
            return client.get_collection(self.name, embedding_function=None)
        except NotFoundError as exc:
            names = sorted(c.name for c in client.list_collections())
            raise ConfigurationError("collection", f"no collection {self.name!r} in {self.source}; "
                                     f"it has {names}") from exc

    @property
    def uuid(self) -> str:
        return str(self._collection.id)

    async def count(self) -> int:
        return int(await self._call(self._collection.count))

    async def page(self, offset: int, limit: int) -> list[LegacyRecord]:
        got = await self._call(lambda: self._collection.get(limit=limit, offset=offset,
                                                            include=["documents", "metadatas"]))
        rows = zip(got["ids"], got["documents"], got["metadatas"], strict=True)
        return [LegacyRecord(i, d, m or {}, offset + n) for n, (i, d, m) in enumerate(rows)]

    async def fetch(self, positions: Mapping[str, int]) -> list[LegacyRecord]:
        """The records with these ids (position = their index in pass 1)."""
        got = await self._call(lambda: self._collection.get(ids=list(positions),
                                                            include=["documents", "metadatas"]))
        return [LegacyRecord(i, d, m or {}, positions[i])
                for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)]

    async def embedding_model(self) -> tuple[str | None, int | None]:
        """(model name if recorded, vector size of the stored embeddings)."""
        got = await self._call(lambda: self._collection.get(limit=1, include=["embeddings"]))
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
        from chromadb.errors import ChromaError

        try:
            return await asyncio.to_thread(fn)
        except (ConfigurationError, InvalidInput):
            raise
        except (ChromaError, OSError, ValueError, RuntimeError) as exc:
            raise TierUnavailable("legacy-chroma", f"{self.source}: {exc}") from exc
