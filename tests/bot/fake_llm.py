"""A small OpenAI-compatible chat server for tests: POST /v1/chat/completions on 127.0.0.1.

Modes: ``echo`` (answers "ECHO: <last user message>"), ``prompt`` (answers
with every message's content, so tests can read the system prompt the bot
built), ``fixed`` (answers ``text``), ``timeout`` (never answers in time),
``error`` (HTTP 500), ``tool`` (a ``remember_fact`` call with ``tool_arguments``
and optional ``text``), ``malformed`` (200 with a body that is not a completion),
``script`` (answers the next item of ``script``: ``{"content": ...}``,
``{"status": 500}`` (with an optional ``"error"`` body), ``{"refusal": ...}``, ``{"timeout": True}``,
``{"tool_calls": [(name, arguments), ...]}``, optionally with
``"finish": "length"``; an exhausted script answers HTTP 500). A request whose
``response_format`` type is in ``reject_formats`` gets HTTP 500 first, as
llama-cpp-python's server answers ``json_schema``.
``scripted`` maps the start of a system prompt to a fixed answer given whatever
the mode (so a test can script the rolling-summary call and still read the
chat prompt). Every request body is kept in ``requests``.

POST /v1/audio/transcriptions answers ``{"text": transcript}`` with token usage (as gpt-4o-transcribe
does; none when ``transcript_usage`` is False, as whisper-1 bills by the minute; HTTP 500 when
``transcript`` is None) and keeps each upload's model, file name and bytes in ``transcriptions``.
Every answer's token usage is appended to ``usage_sent`` as (prompt or input, completion or output).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from memory.launcher import free_port


class FakeLLM:
    def __init__(self) -> None:
        self.mode = "echo"
        self.text = ""
        self.tool_arguments = ""
        self.scripted: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []
        self.script: list[dict[str, Any]] = []
        self.reject_formats: set[str] = set()
        self.transcript: str | None = ""
        self.transcript_usage = True
        self.transcriptions: list[dict[str, Any]] = []
        self.usage_sent: list[tuple[int, int]] = []
        self.port = free_port()
        self._runner: web.AppRunner | None = None
        self._release = asyncio.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self, mode: str = "echo", text: str = "") -> None:
        self.mode, self.text = mode, text
        self.tool_arguments = '{"fact": "my favourite tea is sencha"}'
        self.scripted = {}
        self.requests.clear()
        self.script = []
        self.reject_formats = set()
        self.transcript = ""
        self.transcript_usage = True
        self.transcriptions = []
        self.usage_sent = []
        self._release.set()  # let any request still held by "timeout" mode finish
        self._release = asyncio.Event()

    async def start(self) -> FakeLLM:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_post("/v1/audio/transcriptions", self._transcriptions)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def aclose(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _transcriptions(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        upload = form["file"]
        assert isinstance(upload, web.FileField)
        self.transcriptions.append({"model": form.get("model"), "filename": upload.filename,
                                    "data": upload.file.read()})
        if self.transcript is None:
            return web.json_response({"error": {"message": "model not loaded"}}, status=500)
        if not self.transcript_usage:
            return web.json_response({"text": self.transcript, "usage": {"type": "duration", "seconds": 4}})
        tokens = len(self.transcriptions[-1]["data"]) // 20 + 1, len(self.transcript) // 4 + 1
        self.usage_sent.append(tokens)
        return web.json_response({"text": self.transcript, "usage": {
            "type": "tokens", "input_tokens": tokens[0], "output_tokens": tokens[1], "total_tokens": sum(tokens)}})

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        messages = body["messages"]
        if (body.get("response_format") or {}).get("type") in self.reject_formats:
            return web.json_response({"error": {"message": "unsupported response_format"}}, status=500)
        system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
        script = next((answer for start, answer in self.scripted.items() if system.startswith(start)), None)
        if script is not None:
            return self._completion(body, {"role": "assistant", "content": script}, "stop")
        if self.mode == "script":
            return await self._scripted(body)
        if self.mode == "timeout":
            release = self._release
            try:
                await asyncio.wait_for(release.wait(), 30)
            except TimeoutError:
                pass
        if self.mode == "error":
            return web.json_response({"error": {"message": "boom", "type": "server_error"}}, status=500)
        if self.mode == "malformed":
            return web.json_response({"id": "x", "object": "chat.completion", "choices": []})
        message: dict[str, Any]
        if self.mode == "tool":
            message = {"role": "assistant", "content": self.text or None, "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": "remember_fact", "arguments": self.tool_arguments}}]}
        else:
            if self.mode == "prompt":
                content = "\n".join(m["content"] for m in messages)
            elif self.mode == "fixed":
                content = self.text
            else:
                content = "ECHO: " + messages[-1]["content"]
            message = {"role": "assistant", "content": content}
        return self._completion(body, message, "tool_calls" if self.mode == "tool" else "stop")

    async def _scripted(self, body: dict[str, Any]) -> web.StreamResponse:
        if not self.script:
            return web.json_response({"error": {"message": "script exhausted"}}, status=500)
        step = self.script.pop(0)
        if step.get("timeout"):
            release = self._release
            try:
                await asyncio.wait_for(release.wait(), 30)
            except TimeoutError:
                pass
            return web.json_response({"error": {"message": "late"}}, status=504)
        if "status" in step:
            return web.json_response({"error": step.get("error", {"message": "scripted"})}, status=step["status"])
        message: dict[str, Any] = {"role": "assistant", "content": step.get("content")}
        if "tool_calls" in step:  # [(name, arguments JSON), ...]
            message["tool_calls"] = [{"id": f"call_{len(self.requests)}_{i}", "type": "function",
                                      "function": {"name": name, "arguments": arguments}}
                                     for i, (name, arguments) in enumerate(step["tool_calls"])]
            return self._completion(body, message, "tool_calls")
        if "refusal" in step:
            message = {"role": "assistant", "content": None, "refusal": step["refusal"]}
        return self._completion(body, message, step.get("finish", "stop"))

    def _completion(self, body: dict[str, Any], message: dict[str, Any], finish: str) -> web.StreamResponse:
        messages = body["messages"]
        prompt_chars = sum(len(m.get("content") or "") for m in messages if isinstance(m.get("content"), str))
        self.usage_sent.append((prompt_chars // 4 + 1, len(json.dumps(message)) // 4 + 1))
        return web.json_response({
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": 0,
            "model": body.get("model", "fake"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_chars // 4 + 1,
                      "completion_tokens": len(json.dumps(message)) // 4 + 1,
                      "total_tokens": prompt_chars // 4 + len(json.dumps(message)) // 4 + 2},
        })
