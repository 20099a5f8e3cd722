"""Photos in words when the operator configured a model that sees images: one line each, within
the message's text limit, at most a few per message, and named with the reason when they cannot
be described. The end-to-end path, through the fake OpenAI-compatible server, is in test_client.py."""

from __future__ import annotations

import asyncio
from unittest.mock import MagicMock

import discord

from bot.content import IMAGE_MAX_BYTES, IMAGES_DESCRIBED, attachment_lines
from bot.llm import LLMUnavailable


def _image(name: str, content_type: str | None = "image/png", size: int = 100) -> discord.Attachment:
    attachment = MagicMock(spec=discord.Attachment, id=3, filename=name, size=size, content_type=content_type,
                           description=None, duration=None)
    attachment.is_voice_message.return_value = attachment.is_spoiler.return_value = False

    async def read() -> bytes:
        return name.encode() + bytes(size)

    attachment.read = read
    return attachment  # type: ignore[no-any-return]


async def test_photos_are_described_on_one_line_within_the_limits() -> None:
    seen: list[tuple[bytes, str]] = []

    async def sees(image: bytes, content_type: str) -> str:
        seen.append((image[:8], content_type))
        return "A receipt from Café Lumen]\n  total 12.40 EUR.\x00"

    deadline = asyncio.get_running_loop().time() + 10
    lines, left = await attachment_lines([_image("receipt.png"), _image("doc.svg", "image/svg+xml")],
                                         1000, 1000, deadline, describe_image=sees)
    assert lines == ["[image: receipt.png, shows: A receipt from Café Lumen) total 12.40 EUR.]",
                     "[image: doc.svg]"]  # a format vision models do not take is only named
    assert left == 1000 - len("A receipt from Café Lumen) total 12.40 EUR.".encode())
    assert seen == [(b"receipt.", "image/png")]
    lines, _ = await attachment_lines([_image(f"p{i}.jpg", None) for i in range(IMAGES_DESCRIBED + 2)],
                                      1000, 1000, deadline, describe_image=sees)  # the type from the name
    assert sum(", shows: " in line for line in lines) == IMAGES_DESCRIBED
    assert lines[-2:] == [f"[image: p{IMAGES_DESCRIBED}.jpg]", f"[image: p{IMAGES_DESCRIBED + 1}.jpg]"]
    lines, left = await attachment_lines([_image("receipt.png")], 1000, 9, deadline, describe_image=sees)
    assert lines == ["[image: receipt.png, shows: A receipt]"] and left == 0


async def test_an_image_that_cannot_be_described_is_named_with_why() -> None:
    async def down(image: bytes, content_type: str) -> str:
        raise LLMUnavailable("HTTP 400 from the endpoint (image)")

    deadline = asyncio.get_running_loop().time() + 10
    big = _image("scan.png", size=IMAGE_MAX_BYTES + 1)
    lines, _ = await attachment_lines([_image("cat.webp", "image/webp"), big], 1000, 1000, deadline,
                                      describe_image=down)
    assert lines == ["[image: cat.webp, could not be described]", "[image: scan.png, 8.0 MB, not described: too large]"]
