"""A Discord message as the bot stores it and the LLM reads it: its text as people in the
channel read it, plus what it carries besides text.

- Mentions become ``@Sam``, ``@mods``, ``#general``, custom emoji ``:pepe:``; the bot's own
  mention is dropped; lines and indentation stay (``readable``).
- A text file is read into the message, within ``BOT__ATTACHMENT_MAX_BYTES`` over all its
  files: Discord turns a paste longer than a message into a ``message.txt`` attachment, and
  people share code and logs as files. The file comes from Discord's own CDN, through
  discord.py; the bot never follows a link found in a message.
- A PDF's text is read the same way, page by page within what is left of that limit (pypdf,
  in a thread, under the same deadline); a PDF with no text (a scan), a password or a broken
  file is named with the reason.
- A voice message is transcribed when the operator configured a speech-to-text model
  (``LLM__TRANSCRIBE_MODEL`` on the LLM's endpoint): the user's spoken words are their message.
- A photo is described when the operator configured a model that sees images
  (``LLM__VISION_MODEL``): ``[image: cat.jpg, shows: a grey cat asleep on a red sofa]``, so what
  was shown is remembered too (up to ``IMAGES_DESCRIBED`` per message).
- Any other attachment (an image, a voice message otherwise), a file over the limit or one that is
  not UTF-8 text is a line naming it (``[image: cat.jpg]``), so the model knows something was
  sent and the memory records that it was.
- Stickers are ``[sticker: Wave]``; a forwarded message is ``[forwarded message]`` and its text,
  its files read, its voice messages transcribed and its photos described as the message's own.
"""

from __future__ import annotations

import asyncio
import io
import logging
import mimetypes
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

import aiohttp
import discord
import pypdf

from bot.llm import LLMUnavailable
from memory.models import FORWARDED

log = logging.getLogger(__name__)

ATTACHMENT_READ_SECONDS = 10.0  # for all of a message's files together: the user is waiting
PDF_MAX_BYTES = 10 * 1024 * 1024  # a PDF is downloaded up to this size (Discord's own upload limit)
VOICE_MAX_BYTES = 10 * 1024 * 1024  # a voice message transcribed up to this size (minutes of Opus)
TRANSCRIBE_SECONDS = 30.0  # a voice message's transcription, on top of the files' deadline
# the words spoken in a voice message (bytes, file name) -> text; raises LLMUnavailable
Transcriber = Callable[[bytes, str], Awaitable[str]]
# what an image shows (bytes, content type) -> one or two sentences; raises LLMUnavailable
Describer = Callable[[bytes, str], Awaitable[str]]
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})  # what vision models take
IMAGE_MAX_BYTES = 8 * 1024 * 1024
IMAGES_DESCRIBED = 4  # per message: an album of thirty photos is not thirty model calls
DESCRIBE_SECONDS = 20.0  # one image's description
DESCRIPTION_MAX_CHARS = 400
# text that is not text/*: what people share as code, data and logs
_TEXT_TYPES = {"application/json", "application/xml", "application/javascript", "application/x-yaml",
               "application/yaml", "application/toml", "application/x-sh", "application/sql",
               "application/x-python", "application/x-httpd-php", "application/ld+json"}
_TEXT_SUFFIXES = {".txt", ".md", ".log", ".csv", ".tsv", ".json", ".yaml", ".yml", ".toml", ".ini", ".cfg",
                  ".conf", ".xml", ".html", ".css", ".js", ".ts", ".py", ".rb", ".rs", ".go", ".java", ".kt",
                  ".c", ".h", ".cpp", ".hpp", ".cs", ".php", ".sh", ".sql", ".lua", ".swift", ".diff", ".patch"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # keeps tabs and line breaks
_MARKUP = re.compile(r"<(@!?|@&|#)(\d+)>|<a?(:\w+:)\d+>")


def strip_mentions(text: str, user_id: int) -> str:
    """Remove mentions of the bot (``<@id>`` and ``<@!id>``) with the spaces after them; the rest of
    the text keeps its lines and indentation (a pasted traceback or code block stays readable)."""
    return re.sub(rf"<@!?{user_id}>[ \t]*", "", text).strip()


def spell_markup(text: str, names: Mapping[int, str], roles: Mapping[int, str], channels: Mapping[int, str]) -> str:
    """Mentions as ``@name``, ``@role`` and ``#channel``, custom emoji as ``:name:``; a mention not in the
    maps stays as it is."""

    def spell(m: re.Match[str]) -> str:
        if m.group(3):
            return m.group(3)
        kind, ident = m.group(1), int(m.group(2))
        found = roles.get(ident) if kind == "@&" else channels.get(ident) if kind == "#" else names.get(ident)
        if found is None:
            return m.group(0)
        return f"#{found}" if kind == "#" else f"@{found}"

    return _MARKUP.sub(spell, text)


def readable(message: discord.Message, bot_id: int) -> str:
    """The message's own text as people in the channel read it (see the module doc)."""
    return spell_markup(strip_mentions(message.content, bot_id),
                        {u.id: u.display_name for u in message.mentions},
                        {r.id: r.name for r in message.role_mentions},
                        {c.id: c.name for c in message.channel_mentions if getattr(c, "name", None)})


def replied_to(message: discord.Message) -> discord.Message | None:
    """The message ``message`` replies to, if Discord sent it along (a forward is not a reply)."""
    ref = message.reference
    if ref is None or ref.type is not discord.MessageReferenceType.default:
        return None
    return ref.resolved if isinstance(ref.resolved, discord.Message) else None


def _kind(attachment: discord.Attachment) -> str:
    if attachment.is_voice_message():
        return "voice message"
    ctype = (attachment.content_type or mimetypes.guess_type(attachment.filename)[0] or "").lower()
    major = ctype.split("/", 1)[0]
    return major if major in ("image", "video", "audio") else "file"


def _is_text(attachment: discord.Attachment) -> bool:
    ctype = (attachment.content_type or "").split(";", 1)[0].strip().lower()
    if ctype:
        return ctype.startswith("text/") or ctype in _TEXT_TYPES
    name = attachment.filename.lower()
    return any(name.endswith(suffix) for suffix in _TEXT_SUFFIXES)


def _is_pdf(attachment: discord.Attachment) -> bool:
    ctype = (attachment.content_type or "").split(";", 1)[0].strip().lower()
    return ctype == "application/pdf" or (not ctype and attachment.filename.lower().endswith(".pdf"))


def pdf_text(data: bytes, max_bytes: int, until: float) -> tuple[str, int, int, str]:
    """A PDF's text, page by page, while it fits in ``max_bytes`` (UTF-8) and ``time.monotonic()``
    is before ``until``: (text, pages read, pages in all, why it is empty or short: "" if whole).
    Blocking: run it in a thread."""
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):  # many PDFs are locked with an empty password
            return "", 0, 0, "not read: password-protected"
        total = len(reader.pages)
        chunks: list[str] = []
        used = 0
        for i, page in enumerate(reader.pages):
            if time.monotonic() > until:
                return "\n\n".join(chunks), i, total, "the rest not read in time" if chunks else "not read in time"
            text = _CONTROL_IN_TEXT.sub("", page.extract_text() or "").strip()
            size = len(text.encode())
            if used + size > max_bytes:
                if not chunks:  # a first page longer than the limit: its start
                    chunks.append(text.encode()[:max_bytes].decode(errors="ignore"))
                    return chunks[0], 1, total, "cut: past the limit of text per message"
                return "\n\n".join(chunks), i, total, "the rest not read: past the limit of text per message"
            if text:
                chunks.append(text)
                used += size + 2
        return "\n\n".join(chunks), total, total, "" if chunks else "not read: no text in it (a scan?)"
    except Exception as exc:  # a malformed PDF can fail anywhere in the parser: it is named, never an error
        log.warning("cannot read a PDF: %s: %s", type(exc).__name__, exc)
        return "", 0, 0, "could not be read"


def _size(n: int) -> str:
    return f"{n} bytes" if n < 1024 else f"{n / 1024:.0f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"


def _name(text: str) -> str:
    """A file name, alt text or sticker name on one line, without control characters (a NUL would
    make the whole message unstorable)."""
    return _CONTROL.sub(" ", text).strip()


def describe(attachment: discord.Attachment, why: str = "") -> str:
    """The line that stands for an attachment whose content is not in the message."""
    bits = [_name(attachment.filename)]
    if attachment.is_voice_message() and attachment.duration:
        bits = [f"{attachment.duration:.0f} s"]
    if attachment.description:  # the alt text the sender wrote
        bits.append(f'described as "{_name(attachment.description)}"')
    if attachment.is_spoiler():
        bits.append("marked as a spoiler")
    if why:
        bits.append(why)
    return f"[{_kind(attachment)}: {', '.join(bits)}]"


def _decode(data: bytes) -> str | None:
    """UTF-8 text without NUL bytes (a byte-order mark dropped), else None: the file is not text."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text


async def attachment_lines(attachments: Sequence[discord.Attachment], max_bytes: int,
                           left: int, deadline: float, transcribe: Transcriber | None = None,
                           describe_image: Describer | None = None) -> tuple[list[str], int]:
    """Each attachment as the message will carry it: a text file's content while ``left`` of the
    message's ``max_bytes`` lasts and the loop's clock is before ``deadline``, otherwise a line naming
    it; a voice message's words with ``transcribe``, what a photo shows with ``describe_image``;
    returns the lines and what is left. A file that cannot be read is named, never an error."""
    lines: list[str] = []
    loop = asyncio.get_running_loop()
    described = 0
    for a in attachments:
        if describe_image is not None and _kind(a) == "image" and described < IMAGES_DESCRIBED and max_bytes > 0:
            described += 1
            line, left = await _image_line(a, describe_image, left)
            lines.append(line)
            continue
        if transcribe is not None and a.is_voice_message() and max_bytes > 0:
            line, left = await _voice_line(a, transcribe, left)
            lines.append(line)
            continue
        if _is_pdf(a) and max_bytes > 0:
            line, left = await _pdf_line(a, max_bytes, left, deadline)
            lines.append(line)
            continue
        if not _is_text(a) or max_bytes <= 0:
            lines.append(describe(a))
            continue
        if a.size > left:
            lines.append(describe(a, f"{_size(a.size)}, not read: the bot reads {_size(max_bytes)} of "
                                     "text files per message"))
            continue
        try:
            async with asyncio.timeout_at(max(deadline, loop.time() + 0.1)):
                data = await a.read()
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("cannot read attachment %s: %s", a.id, exc)
            lines.append(describe(a, "could not be read"))
            continue
        text = _decode(data)
        if text is None or len(data) > left:  # the size Discord gave was wrong
            lines.append(describe(a, "not read: not UTF-8 text" if text is None else "not read: too long"))
            continue
        left -= len(data)
        lines.append(f"[file {_name(a.filename)}]\n{text.rstrip()}\n[end of {_name(a.filename)}]")
    return lines, left


async def _image_line(a: discord.Attachment, describe_image: Describer, left: int) -> tuple[str, int]:
    """A photo's line with what it shows (within ``left``), or with why not; and what is left."""
    ctype = (a.content_type or mimetypes.guess_type(a.filename)[0] or "").split(";", 1)[0].strip().lower()
    if ctype not in IMAGE_TYPES:
        return describe(a), left
    if a.size > IMAGE_MAX_BYTES:
        return describe(a, f"{_size(a.size)}, not described: too large"), left
    try:
        async with asyncio.timeout(DESCRIBE_SECONDS):
            text = await describe_image(await a.read(), ctype)
    except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError, LLMUnavailable) as exc:
        log.warning("cannot describe image %s: %s", a.id, exc)
        return describe(a, "could not be described"), left
    text = " ".join(_name(text).replace("]", ")").split())[:DESCRIPTION_MAX_CHARS]  # one line, the note's own
    data = text.encode()[:max(0, left)]
    text = data.decode(errors="ignore").strip()
    if not text:
        return describe(a), left
    return describe(a, f"shows: {text}"), left - len(data)


async def _voice_line(a: discord.Attachment, transcribe: Transcriber, left: int) -> tuple[str, int]:
    """A voice message as its words (within ``left``), or its line with why not; and what is left."""
    if a.size > VOICE_MAX_BYTES:
        return describe(a, f"{_size(a.size)}, not transcribed: too long"), left
    try:
        async with asyncio.timeout(TRANSCRIBE_SECONDS):
            text = await transcribe(await a.read(), _name(a.filename) or "voice-message.ogg")
    except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError, LLMUnavailable) as exc:
        log.warning("cannot transcribe voice message %s: %s", a.id, exc)
        return describe(a, "could not be transcribed"), left
    text = _CONTROL_IN_TEXT.sub("", text).strip()
    if not text:
        return describe(a, "no words in it"), left
    data = text.encode()[:max(0, left)]
    text = data.decode(errors="ignore")
    if not text:
        return describe(a, "not transcribed: past the limit of text per message"), left
    heading = describe(a, "transcribed")
    return f"{heading}\n{text}\n[end of voice message]", left - len(data)


async def _pdf_line(a: discord.Attachment, max_bytes: int, left: int, deadline: float) -> tuple[str, int]:
    """A PDF as the message carries it (its text while ``left`` lasts), and what is left."""
    if a.size > PDF_MAX_BYTES:
        return describe(a, f"{_size(a.size)}, not read: the bot reads PDFs up to {_size(PDF_MAX_BYTES)}"), left
    if left < 16:
        return describe(a, f"not read: the bot reads {_size(max_bytes)} of text per message"), left
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout_at(max(deadline, loop.time() + 0.1)):
            data = await a.read()
            # the parser stops between pages at the deadline (the loop's clock is time.monotonic)
            text, read, total, why = await asyncio.to_thread(pdf_text, data, left, max(deadline, loop.time() + 0.1))
    except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
        log.warning("cannot read attachment %s: %s", a.id, exc)
        return describe(a, "could not be read"), left
    if not text:
        return describe(a, why), left
    name = _name(a.filename)
    shown = "page 1" if read == 1 else f"pages 1-{read}"
    pages = f"{total} page{'s' if total != 1 else ''}" if not why else f"{shown} of {total}, {why}"
    return f"[file {name}, {pages}]\n{text}\n[end of {name}]", left - len(text.encode())


def _stickers(stickers: Sequence[discord.StickerItem]) -> list[str]:
    return [f"[sticker: {_name(s.name)}]" for s in stickers]


async def message_text(message: discord.Message, bot_id: int, attachment_max_bytes: int,
                       transcribe: Transcriber | None = None, describe_image: Describer | None = None) -> str:
    """Everything the message says, as the bot stores it (see the module doc); "" when nothing."""
    parts = [readable(message, bot_id)]
    deadline = asyncio.get_running_loop().time() + ATTACHMENT_READ_SECONDS
    files, left = await attachment_lines(message.attachments, attachment_max_bytes, attachment_max_bytes, deadline,
                                         transcribe, describe_image)
    parts += files + _stickers(message.stickers)
    for snap in message.message_snapshots:  # forwarded: its mentions cannot be resolved, so they stay raw
        files, left = await attachment_lines(snap.attachments, attachment_max_bytes, left, deadline,
                                             transcribe, describe_image)
        parts += [FORWARDED, spell_markup(snap.content.strip(), {}, {}, {}), *files,
                  *_stickers(snap.stickers)]
    return "\n".join(p for p in parts if p.strip())
