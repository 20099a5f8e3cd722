"""Public conversation datasets for ``bench.recall``, each read from its upstream layout.

Nothing here is committed to the repository: point ``--path`` at a checkout
(or an extract) of the dataset's repository.

- ``realtalk``: github.com/danny911kr/REALTALK, ``data/Chat_*.json`` (only
  those files; the repository's ``data/locomo/`` copy is never read).
- ``beam``: github.com/mohammadtavakoli78/BEAM, ``chats/<size>/<n>/chat.json``
  with ``probing_questions/probing_questions.json``; the 100K chats unless
  asked for 500K (``--beam-sizes 500K`` or ``100K,500K``).
- ``realmem``: github.com/zhiyuan5986/RealMemBench, ``dataset/*_dialogues_256k.json``.

Every loader returns a ``bench.generator.Dataset``: one user (DM scope) per
conversation, consecutive turns paired into exchanges, each question's
evidence given as the exchanges holding its evidence turns and, as needles,
those turns' texts (scored by ``bench.recall.found``).

``half`` splits conversations deterministically: sorted by name, even
positions are ``tune``, odd ones ``report``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.generator import BenchExchange, Dataset, GenConfig, Question

DATASETS = ("synthetic", "realtalk", "beam", "realmem")
HALVES = ("all", "tune", "report")
REALTALK_TYPES = {1: "multi-hop", 2: "temporal", 3: "commonsense"}


class DatasetError(ValueError):
    """The directory does not hold the dataset in its upstream layout."""


@dataclass(frozen=True, slots=True)
class Turn:
    key: str  # the dataset's own id of the turn
    speaker: str
    text: str
    timestamp: datetime


def pair_turns(user_id: str, conv: str, sessions: Sequence[Sequence[Turn]], *, with_speakers: bool,
               drop_lone: bool = False) -> tuple[list[BenchExchange], dict[str, BenchExchange]]:
    """Consecutive turns of each session paired into exchanges. A lone last turn of a session
    joins the previous exchange, or with ``drop_lone`` is left out (as is a one-turn session),
    so its id no longer resolves. Returns the exchanges, oldest first, and turn key -> exchange."""
    exchanges: list[BenchExchange] = []
    where: dict[str, BenchExchange] = {}

    def say(t: Turn) -> str:
        return f"{t.speaker}: {t.text}" if with_speakers else t.text

    last: datetime | None = None
    for s, turns in enumerate(sessions):
        turns = [t for t in turns if t.text.strip()]
        groups = [list(turns[i:i + 2]) for i in range(0, len(turns), 2)]
        if drop_lone and groups and len(groups[-1]) == 1:
            groups.pop()
        if len(groups) > 1 and len(groups[-1]) == 1:
            groups[-2].append(groups.pop()[0])
        for group in groups:
            if len(group) < 2:  # a one-turn session: the turn answers itself
                group = [group[0], Turn(group[0].key, group[0].speaker, "...", group[0].timestamp)]
            ts = group[0].timestamp
            if last is not None and ts <= last:  # keep a strict order for recency
                ts = last + timedelta(seconds=1)
            last = ts
            e = BenchExchange(id=f"{conv}-{len(exchanges)}", user_id=user_id, guild_id=None,
                              channel_id=None, user_message=say(group[0]),
                              bot_response="\n".join(say(t) for t in group[1:]), timestamp=ts, session=s,
                              speakers=tuple(dict.fromkeys(t.speaker for t in group)))
            exchanges.append(e)
            for t in group:
                where.setdefault(t.key, e)
    return exchanges, where


def _question(qid: str, user_id: str, text: str, qtype: str, answer: str, keys: Iterable[str],
              where: dict[str, BenchExchange], texts: dict[str, str]) -> Question | None:
    """A question whose evidence is the turns ``keys`` (unknown keys dropped); None if none resolve."""
    resolved = [k for k in dict.fromkeys(keys) if k in where and texts.get(k, "").strip()]
    if not resolved:
        return None
    return Question(id=qid, user_id=user_id, guild_id=None, text=text, qtype=qtype, kind=qtype,
                    answer=answer, evidence_ids=tuple(where[k].id for k in resolved),
                    needles=tuple(texts[k] for k in resolved))


def select(names: Sequence[str], half: str, limit: int | None) -> list[str]:
    """The conversations of ``half`` (sorted by name: even positions tune, odd report), at most ``limit``."""
    if half not in HALVES:
        raise DatasetError(f"half must be one of {HALVES}, not {half!r}")
    ordered = sorted(names)
    if half != "all":
        ordered = [n for i, n in enumerate(ordered) if i % 2 == (0 if half == "tune" else 1)]
    return ordered[:limit] if limit else ordered


def _build(parts: list[tuple[list[BenchExchange], list[Question]]], namespace: str) -> Dataset:
    exchanges = tuple(e for ex, _ in parts for e in ex)
    questions = tuple(q for _, qs in parts for q in qs)
    users = tuple(dict.fromkeys(e.user_id for e in exchanges))
    return Dataset(GenConfig(users=len(users), namespace=namespace), users, exchanges, questions)


# ---- REALTALK --------------------------------------------------------------------------------

_EVIDENCE_SPLIT = re.compile(r"[;,]|\s+(?=D\d)")
_RANGE = re.compile(r"^D(\d+):(\d+)\s*-\s*(?:D(\d+):)?(\d+)$")


def realtalk_evidence(entries: Iterable[str]) -> list[str]:
    """Turn ids from evidence entries: "D1:11; D3:18" is two, "D12:3-D12:5" three, "D5:3." one."""
    out: list[str] = []
    for entry in entries:
        for piece in _EVIDENCE_SPLIT.split(str(entry)):
            piece = piece.strip().rstrip(".").strip()
            if not piece:
                continue
            m = _RANGE.match(piece)
            if m and (m.group(3) is None or m.group(3) == m.group(1)):
                out += [f"D{m.group(1)}:{i}" for i in range(int(m.group(2)), int(m.group(4)) + 1)]
            else:
                out.append(piece.replace(" ", ""))
    return out


def _realtalk_time(value: str) -> datetime:
    return datetime.strptime(value.strip(), "%d.%m.%Y, %H:%M:%S").replace(tzinfo=UTC)


def load_realtalk(path: Path, *, half: str = "all", limit: int | None = None,
                  namespace: str = "realtalk", with_speakers: bool = True) -> Dataset:
    files = {f.stem: f for f in (path / "data").glob("Chat_*.json")} or {f.stem: f for f in path.glob("Chat_*.json")}
    if not files:
        raise DatasetError(f"no REALTALK data/Chat_*.json under {path}")
    parts = []
    for name in select(list(files), half, limit):
        raw = json.loads(files[name].read_text())
        sessions: list[list[Turn]] = []
        n = 1
        while f"session_{n}" in raw:
            sessions.append([Turn(t["dia_id"], t["speaker"], t.get("clean_text") or "",
                                  _realtalk_time(t["date_time"])) for t in raw[f"session_{n}"]])
            n += 1
        user = f"{namespace}-{name.split('_')[1]}"
        exchanges, where = pair_turns(user, f"{namespace}{name.split('_')[1]}", sessions,
                                      with_speakers=with_speakers, drop_lone=True)
        texts = {t.key: t.text for s in sessions for t in s}
        questions = [q for i, qa in enumerate(raw.get("qa", []))
                     if (q := _question(f"{user}-q{i}", user, qa["question"],
                                        REALTALK_TYPES.get(qa.get("category"), str(qa.get("category"))),
                                        str(qa.get("answer", "")), realtalk_evidence(qa.get("evidence", [])),
                                        where, texts))]
        parts.append((exchanges, questions))
    return _build(parts, namespace)


# ---- BEAM -------------------------------------------------------------------------------------

def _beam_ids(value: Any) -> list[int]:
    if isinstance(value, dict):
        return [i for v in value.values() for i in _beam_ids(v)]
    if isinstance(value, list):
        return [i for v in value for i in _beam_ids(v)]
    return [value] if isinstance(value, int) else []


def _beam_date(anchor: str | None, fallback: datetime) -> datetime:
    for fmt in ("%B-%d-%Y", "%b-%d-%Y"):
        try:
            return datetime.strptime(str(anchor), fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return fallback


def load_beam(path: Path, *, half: str = "all", limit: int | None = None, namespace: str = "beam",
              sizes: Sequence[str] = ("100K",)) -> Dataset:
    root = path / "chats" if (path / "chats").is_dir() else path
    dirs = {f"{size}-{d.name}": d for size in sizes for d in (root / size).glob("*")
            if (d / "chat.json").is_file() and (d / "probing_questions" / "probing_questions.json").is_file()}
    if not dirs:
        raise DatasetError(f"no BEAM chats/{{{','.join(sizes)}}}/*/chat.json under {path}")
    parts = []
    for name in select(list(dirs), half, limit):
        batches = json.loads((dirs[name] / "chat.json").read_text())
        clock = datetime(2024, 1, 1, tzinfo=UTC)
        sessions: list[list[Turn]] = []
        for batch in batches:
            day = _beam_date(batch.get("time_anchor"), clock)
            clock = max(clock, day)
            for turn in batch.get("turns", []):
                session = []
                for m in turn:
                    clock = max(clock, _beam_date(m.get("time_anchor"), clock)) + timedelta(minutes=1)
                    session.append(Turn(str(m["id"]), str(m["role"]), str(m.get("content", "")), clock))
                sessions.append(session)
        user = f"{namespace}-{name}"
        exchanges, where = pair_turns(user, f"{namespace}{name}", sessions, with_speakers=False)
        texts = {t.key: t.text for s in sessions for t in s}
        probing = json.loads((dirs[name] / "probing_questions" / "probing_questions.json").read_text())
        questions = [q for qtype, items in probing.items() for i, item in enumerate(items)
                     if (q := _question(f"{user}-{qtype}{i}", user, item["question"], qtype,
                                        str(item.get("answer", item.get("ideal_answer", ""))),
                                        [str(k) for k in _beam_ids(item.get("source_chat_ids"))], where, texts))]
        parts.append((exchanges, questions))
    return _build(parts, namespace)


# ---- RealMemBench -----------------------------------------------------------------------------

def _key(content: Any) -> str:
    return content if isinstance(content, str) else json.dumps(content, sort_keys=True)


def load_realmem(path: Path, *, half: str = "all", limit: int | None = None,
                 namespace: str = "realmem") -> Dataset:
    root = path / "dataset" if (path / "dataset").is_dir() else path
    files = {f.name.removesuffix("_dialogues_256k.json"): f for f in root.glob("*_dialogues_256k.json")}
    if not files:
        raise DatasetError(f"no RealMemBench dataset/*_dialogues_256k.json under {path}")
    parts = []
    for name in select(list(files), half, limit):
        raw = json.loads(files[name].read_text())
        sessions: list[list[Turn]] = []
        memories: dict[tuple[str, str], str] = {}  # (session uuid, memory text) -> turn key
        queries: list[tuple[str, dict[str, Any], dict[str, Any]]] = []  # (turn key, query, answer)
        for s in raw["dialogues"]:
            day = datetime.strptime(s["current_time"].split(" ")[0], "%Y-%m-%d").replace(tzinfo=UTC)
            turns = s["dialogue_turns"]
            sessions.append([Turn(f"{s['session_uuid']}:{i}", t["speaker"], t.get("content") or "",
                                  day + timedelta(hours=9, minutes=i)) for i, t in enumerate(turns)])
            for m in s.get("extracted_memory", []):
                if 0 < int(m.get("source_turn") or 0) <= len(turns):  # 1-based; 0 names no turn
                    memories[(m["session_uuid"], _key(m["content"]))] = f"{m['session_uuid']}:{m['source_turn'] - 1}"
            queries += [(f"{s['session_uuid']}:{i}", turns[i], turns[i + 1])
                        for i, t in enumerate(turns[:-1]) if t.get("is_query")]
        user = f"{namespace}-{name.replace('_', '')}"[:100]
        exchanges, where = pair_turns(user, f"{namespace}{name.replace('_', '')}", sessions, with_speakers=False)
        texts = {t.key: t.text for s in sessions for t in s}
        questions = []
        for key, q, answer in queries:
            used = [(m.get("session_uuid"), _key(m.get("content"))) for m in answer.get("memory_used") or []]
            keys = [memories[u] for u in used if u in memories]
            # asked when its turn comes: the history is the exchanges before it (earlier queries
            # and their answers included), never its own answer or anything later
            asked_at = where[key].timestamp if key in where else None
            before = {e.id for e in exchanges if asked_at is not None and e.timestamp < asked_at}
            question = _question(f"{user}-{q.get('query_id')}", user, q["content"],
                                 str(q.get("category_name", "query")), "",
                                 [k for k in keys if k in where and where[k].id in before], where, texts)
            if question is not None:
                questions.append(dataclasses.replace(question, asked_at=asked_at))
        parts.append((exchanges, questions))
    return _build(parts, namespace)


BEAM_SIZES = ("100K", "500K")


def load(name: str, path: Path, *, half: str = "all", limit: int | None = None,
         beam_sizes: Sequence[str] = ("100K",)) -> Dataset:
    """The public dataset ``name`` from ``path``; raises DatasetError if the layout is not found.
    ``beam_sizes``: which of BEAM's chat sizes (``chats/100K``, ``chats/500K``) to read."""
    if name == "realtalk":
        return load_realtalk(path, half=half, limit=limit)
    if name == "beam":
        unknown = [s for s in beam_sizes if s not in BEAM_SIZES]
        if unknown or not beam_sizes:
            raise DatasetError(f"BEAM sizes must be among {BEAM_SIZES}, not {list(beam_sizes)}")
        return load_beam(path, half=half, limit=limit, sizes=tuple(dict.fromkeys(beam_sizes)))
    if name == "realmem":
        return load_realmem(path, half=half, limit=limit)
    raise DatasetError(f"unknown dataset {name!r}; expected one of {DATASETS}")
