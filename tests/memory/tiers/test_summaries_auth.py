"""The summaries tier reaches a Chroma server that demands a bearer token (``CHROMA__TOKEN``).

Chroma 1.x has no authentication of its own; docker compose puts a token-checking
proxy in front of it. Here a small proxy on loopback does the same in front of the
session's real Chroma server: it answers 401 to any request without the token and
forwards the others.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import numpy as np
import pytest

from memory.errors import TierUnavailable
from memory.models import ForgetTarget, Scope, SummaryRecord
from memory.tiers.summaries import create_summaries

TOKEN = "t0k3n-for-tests"


class TokenProxy:
    """Forwards to ``upstream`` only requests with ``Authorization: Bearer TOKEN``; counts both kinds."""

    def __init__(self, upstream: str) -> None:
        self.allowed = self.refused = 0
        proxy = self
        client = httpx.Client(base_url=upstream.rstrip("/"), timeout=30)

        class Handler(BaseHTTPRequestHandler):
            def _relay(self) -> None:
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    proxy.refused += 1
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                proxy.allowed += 1
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = client.request(self.command, self.path, content=body,
                                        headers={"Content-Type": self.headers.get("Content-Type") or ""})
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("content-type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _relay

            def log_message(self, *args: Any) -> None:
                pass

        self.client = client
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.client.close()


@pytest.fixture
def token_proxy(chroma_http_url: str) -> Iterator[TokenProxy]:
    proxy = TokenProxy(chroma_http_url)
    yield proxy
    proxy.close()


async def test_the_token_goes_with_every_request(token_proxy: TokenProxy) -> None:
    name = f"auth-{uuid.uuid4().hex[:8]}"
    with pytest.raises(TierUnavailable):
        await create_summaries(token_proxy.url, None, name, request_timeout=10)
    assert token_proxy.allowed == 0 and token_proxy.refused >= 1

    refused = token_proxy.refused
    tier = await create_summaries(token_proxy.url, None, name, request_timeout=10, token=TOKEN)
    try:
        scope = Scope("auth-user")
        vector = tuple(float(x) for x in np.ones(8) / np.sqrt(8))
        await tier.upsert([SummaryRecord("ex-1", 0, "auth-user", scope.key, datetime.now(UTC),
                                         "likes sailing", vector)])
        hits = await tier.search(scope, np.array(vector, dtype=np.float32), 5)
        assert [h.exchange_id for h in hits] == ["ex-1"]
        assert await tier.count("auth-user") == 1
        assert await tier.forget(ForgetTarget("auth-user")) == 1
    finally:
        await tier.aclose()
    assert token_proxy.refused == refused and token_proxy.allowed > 0    # every request carried it
