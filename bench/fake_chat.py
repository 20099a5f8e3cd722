"""A minimal OpenAI-compatible chat endpoint on 127.0.0.1 for the benchmarks.

``POST /v1/chat/completions`` answers every request at once with a short
acknowledgement of the last user message, and reports token usage, so the
bot's whole message flow runs without a model. Nothing leaves loopback.
"""

from __future__ import annotations

import socket
from typing import Any

from aiohttp import web


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeChatServer:
    """``async with FakeChatServer() as llm``: ``llm.base_url`` is the endpoint; ``llm.requests`` counts calls."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.requests = 0
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def __aenter__(self) -> FakeChatServer:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _completions(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        self.requests += 1
        messages = body.get("messages") or [{"content": ""}]
        last = str(messages[-1].get("content") or "")
        text = "Noted: " + " ".join(last.split())[:120]
        prompt_chars = sum(len(str(m.get("content") or "")) for m in messages)
        return web.json_response({
            "id": f"chatcmpl-{self.requests}", "object": "chat.completion", "created": 0,
            "model": body.get("model", "fake"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_chars // 4 + 1, "completion_tokens": len(text) // 4 + 1,
                      "total_tokens": prompt_chars // 4 + len(text) // 4 + 2},
        })
