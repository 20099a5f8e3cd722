"""The chromadb client the summaries tier runs on: opened over HTTP (with a bearer token and
request timeouts) or on disk, and closed fully (chromadb leaves its HTTP pool open)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from memory.errors import ConfigurationError

if TYPE_CHECKING:
    import httpx
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection


def _http_sessions(client: ClientAPI) -> list[httpx.Client]:
    """The httpx sessions inside chromadb's HTTP client (its own and its admin client's).

    chromadb (1.x) keeps them private, creates them without timeouts and does
    not close them; we reach in to fix both, and find nothing (so do nothing)
    for an on-disk client or if chromadb's layout changes.
    """
    import httpx

    sessions: list[httpx.Client] = []
    for owner in (client, getattr(client, "_admin_client", None)):
        session = getattr(getattr(owner, "_server", None), "_session", None)
        if isinstance(session, httpx.Client) and all(session is not s for s in sessions):
            sessions.append(session)
    return sessions


def close_chroma_client(client: ClientAPI) -> None:
    """Close a chromadb client fully: its shared system and, for HTTP, its connection pool."""
    sessions = _http_sessions(client)
    close = getattr(client, "close", None)
    if close is not None:
        close()
    for session in sessions:
        # chromadb's close() stops the system but leaves its httpx.Client (and sockets) open.
        session.close()


def _http_address(url: str) -> tuple[str, int, bool]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError("chroma.url", f"expected http(s)://host:port, got {url!r}")
    ssl = parts.scheme == "https"
    try:
        port = parts.port or (443 if ssl else 8000)
    except ValueError as exc:
        raise ConfigurationError("chroma.url", f"bad port in {url!r}") from exc
    return parts.hostname, port, ssl


def open_client(url: str | None, path: Path | None, registry: str, timeout: float,
                memory_limit_bytes: int | None = None, token: str | None = None) -> tuple[ClientAPI, Collection]:
    """A chromadb client (HTTP to ``url`` with a bearer ``token``, else on disk at ``path``) and the
    collection named ``registry``, created if missing. Each HTTP request is bounded by ``timeout``
    seconds; ``memory_limit_bytes`` keeps only recently used collections loaded on disk."""
    import chromadb
    import httpx
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    client: ClientAPI
    if url:
        host, port, ssl = _http_address(url)
        if token:  # chromadb's own client auth: "Authorization: Bearer <token>" on every request
            settings = Settings(anonymized_telemetry=False,
                                chroma_client_auth_provider="chromadb.auth.token_authn.TokenAuthClientProvider",
                                chroma_client_auth_credentials=token)
        client = chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=settings)
        for session in _http_sessions(client):
            session.timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
    elif path is not None:
        path.mkdir(parents=True, exist_ok=True)
        if memory_limit_bytes:  # one collection per owner: keep only the recently used ones loaded
            settings = Settings(anonymized_telemetry=False, chroma_segment_cache_policy="LRU",
                                chroma_memory_limit_bytes=memory_limit_bytes)
        client = chromadb.PersistentClient(path=str(path), settings=settings)
    else:
        raise ConfigurationError("chroma.url", "neither a server URL nor a data path is set")
    try:
        collection = client.get_or_create_collection(registry, embedding_function=None)
    except BaseException:
        close_chroma_client(client)
        raise
    return client, collection


VACUUM_WAIT_SECONDS = 30.0


def vacuum_on_disk(path: Path) -> bool:
    """Rewrite the on-disk store's SQLite file so deleted records leave no bytes behind (SQLite
    keeps them in free pages until then); False when there is no such file. It waits up to
    ``VACUUM_WAIT_SECONDS`` for a writer to finish, then raises sqlite3.OperationalError."""
    db = path / "chroma.sqlite3"
    if not db.is_file():
        return False
    with contextlib.closing(sqlite3.connect(db, timeout=VACUUM_WAIT_SECONDS)) as conn:
        conn.execute("VACUUM")
    return True
