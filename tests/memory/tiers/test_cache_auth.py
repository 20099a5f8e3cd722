"""The cache tier reaches a Redis that demands a password (requirepass), as docker compose runs it:
the password travels in ``REDIS__URL`` (``redis://:PASSWORD@host:port/0``)."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator

import pytest

from memory.errors import TierUnavailable
from memory.tiers.cache import create_redis
from tests import servers


@pytest.fixture
def locked_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    if not servers.have_system_redis():
        pytest.skip("redis-server is not installed (.ci/run installs Debian's redis-server)")
    port, password = servers.free_port(), secrets.token_hex(12)
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--requirepass", password,
                             "--dir", str(tmp_path_factory.mktemp("locked-redis"))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        servers.wait_port(port, 20)
        yield port, password
    finally:
        proc.terminate()
        proc.wait(10)


async def test_the_password_in_the_url_opens_it_and_nothing_else_does(locked_redis: tuple[int, str]) -> None:
    port, password = locked_redis
    for url in (f"redis://127.0.0.1:{port}/0", f"redis://:{password}x@127.0.0.1:{port}/0"):
        with pytest.raises(TierUnavailable) as refused:
            await create_redis(url)
        assert refused.value.tier == "cache" and password not in str(refused.value)
    client = await create_redis(f"redis://:{password}@127.0.0.1:{port}/0")
    try:
        await client.set("k", "v")
        assert await client.get("k") == b"v"
    finally:
        await client.aclose()
