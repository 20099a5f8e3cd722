"""A PDF's text read into a message: page by page within the message's text limit and deadline;
a scan, a password or a broken file named with the reason."""

from __future__ import annotations

import asyncio
import io
import time
from unittest.mock import MagicMock

import discord
import pypdf

from bot.content import attachment_lines, pdf_text
from tests.bot.pdfs import make_pdf

MENU = make_pdf(["Soup of the day: leek", "Dessert: plum tart", ""])


def _later() -> float:
    return time.monotonic() + 10


def _attachment(name: str, data: bytes, content_type: str | None = "application/pdf") -> discord.Attachment:
    attachment = MagicMock(spec=discord.Attachment, id=1, filename=name, size=len(data), content_type=content_type,
                           description=None, duration=None)
    attachment.is_voice_message.return_value = attachment.is_spoiler.return_value = False

    async def read() -> bytes:
        return data

    attachment.read = read
    return attachment  # type: ignore[no-any-return]


def _locked(data: bytes, password: str) -> bytes:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(data)))
    writer.encrypt(password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_pages_are_read_while_they_fit() -> None:
    assert pdf_text(MENU, 64 * 1024, _later()) == ("Soup of the day: leek\n\nDessert: plum tart", 3, 3, "")
    assert pdf_text(MENU, 30, _later()) == (
        "Soup of the day: leek", 1, 3, "the rest not read: past the limit of text per message")
    # a first page longer than the whole limit: its start, not nothing
    assert pdf_text(MENU, 10, _later()) == ("Soup of th", 1, 3, "cut: past the limit of text per message")
    assert pdf_text(MENU, 64 * 1024, time.monotonic() - 1) == ("", 0, 3, "not read in time")


def test_what_has_no_text_is_named_with_the_reason() -> None:
    assert pdf_text(make_pdf(["", ""]), 1000, _later())[3] == "not read: no text in it (a scan?)"
    assert pdf_text(_locked(MENU, "secret"), 1000, _later())[3] == "not read: password-protected"
    assert pdf_text(_locked(MENU, ""), 1000, _later())[0].startswith("Soup of the day")  # locked, empty password
    for broken in (b"%PDF-1.7 garbage", MENU[: len(MENU) // 2], b""):
        assert pdf_text(broken, 1000, _later()) == ("", 0, 0, "could not be read")
    # a catalogue pointing nowhere: the parser recovers a page, and it has no text
    assert pdf_text(MENU.replace(b"/Pages 2 0 R", b"/Pages 9 0 R"), 1000, _later())[::3] == (
        "", "not read: no text in it (a scan?)")


async def test_a_pdf_in_a_message_shares_the_text_limit_with_its_other_files() -> None:
    deadline = asyncio.get_running_loop().time() + 10
    notes = _attachment("notes.txt", b"bring an umbrella\n", "text/plain")
    lines, left = await attachment_lines([_attachment("menu.pdf", MENU), notes], 1000, 1000, deadline)
    assert lines == ["[file menu.pdf, 3 pages]\nSoup of the day: leek\n\nDessert: plum tart\n[end of menu.pdf]",
                     "[file notes.txt]\nbring an umbrella\n[end of notes.txt]"]
    assert left == 1000 - len("Soup of the day: leek\n\nDessert: plum tart") - len("bring an umbrella\n")
    lines, _ = await attachment_lines([_attachment("menu.pdf", MENU, None)], 100, 30, deadline)  # named .pdf only
    assert lines == ["[file menu.pdf, page 1 of 3, the rest not read: past the limit of text per message]\n"
                     "Soup of the day: leek\n[end of menu.pdf]"]
    lines, _ = await attachment_lines([_attachment("scan.pdf", make_pdf([""])),
                                       _attachment("broken.pdf", b"%PDF-1.7 garbage")], 1000, 1000, deadline)
    assert lines == ["[file: scan.pdf, not read: no text in it (a scan?)]", "[file: broken.pdf, could not be read]"]
    huge = _attachment("atlas.pdf", MENU)
    huge.size = 50 * 1024 * 1024
    lines, _ = await attachment_lines([huge], 1000, 1000, deadline)
    assert lines == ["[file: atlas.pdf, 50.0 MB, not read: the bot reads PDFs up to 10.0 MB]"]
