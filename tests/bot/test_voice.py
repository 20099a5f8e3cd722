"""Voice messages in words: within the message's text limit, and named with the reason when they
cannot be (too long, no words, the speech model failing). The end-to-end path, through the fake
OpenAI-compatible server's /audio/transcriptions, is in test_client.py."""

from __future__ import annotations

import asyncio
from unittest.mock import MagicMock

import discord

from bot.content import VOICE_MAX_BYTES, attachment_lines
from bot.llm import LLMUnavailable


def _voice(seconds: float, size: int = 300) -> discord.Attachment:
    attachment = MagicMock(spec=discord.Attachment, id=7, filename="voice-message.ogg", size=size,
                           content_type="audio/ogg", description=None, duration=seconds)
    attachment.is_voice_message.return_value = True
    attachment.is_spoiler.return_value = False

    async def read() -> bytes:
        return b"OggS" + bytes(size - 4)

    attachment.read = read
    return attachment  # type: ignore[no-any-return]


async def test_a_transcript_counts_against_the_text_limit_and_failures_are_named() -> None:
    heard: list[tuple[int, str]] = []

    async def words(audio: bytes, filename: str) -> str:
        heard.append((len(audio), filename))
        return "the cat needs her pills at eight \x00 every night"

    deadline = asyncio.get_running_loop().time() + 10
    lines, left = await attachment_lines([_voice(3.4)], 1000, 1000, deadline, words)
    assert lines == ["[voice message: 3 s, transcribed]\nthe cat needs her pills at eight  every night\n"
                     "[end of voice message]"]
    assert left == 1000 - len("the cat needs her pills at eight  every night") and heard == [(300, "voice-message.ogg")]
    lines, left = await attachment_lines([_voice(3.4)], 1000, 12, deadline, words)  # what is left of the limit
    assert lines == ["[voice message: 3 s, transcribed]\nthe cat need\n[end of voice message]"] and left == 0

    async def silence(audio: bytes, filename: str) -> str:
        return "   "

    async def down(audio: bytes, filename: str) -> str:
        raise LLMUnavailable("HTTP 500 from the endpoint (transcription)")

    lines, _ = await attachment_lines([_voice(2.0)], 1000, 1000, deadline, silence)
    assert lines == ["[voice message: 2 s, no words in it]"]
    lines, _ = await attachment_lines([_voice(2.0)], 1000, 1000, deadline, down)
    assert lines == ["[voice message: 2 s, could not be transcribed]"]
    lines, _ = await attachment_lines([_voice(900.0, VOICE_MAX_BYTES + 1)], 1000, 1000, deadline, words)
    assert lines == ["[voice message: 900 s, 10.0 MB, not transcribed: too long]"]
    assert len(heard) == 2  # the one over the size was never downloaded nor sent
