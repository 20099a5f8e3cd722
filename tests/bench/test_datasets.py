"""The public-dataset loaders read small files written in each upstream layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.datasets import DatasetError, load, realtalk_evidence, select


def test_realtalk_evidence_entries_are_split_expanded_and_stripped() -> None:
    assert realtalk_evidence(["D1:11; D3:18", "D12:3-D12:5", "D5:3.", " D2:1 "]) == [
        "D1:11", "D3:18", "D12:3", "D12:4", "D12:5", "D5:3", "D2:1"]


def test_halves_split_conversations_deterministically() -> None:
    names = ["c", "a", "d", "b", "e"]
    assert select(names, "tune", None) == ["a", "c", "e"]
    assert select(names, "report", None) == ["b", "d"]
    assert select(names, "all", 2) == ["a", "b"]
    with pytest.raises(DatasetError):
        select(names, "middle", None)


def _turn(dia: str, speaker: str, text: str, when: str) -> dict[str, object]:
    return {"clean_text": text, "speaker": speaker, "date_time": when, "dia_id": dia}


def test_realtalk_ids_are_looked_up_not_derived_from_the_session(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    chat = {
        "name": {"speaker_1": "Emi", "speaker_2": "elise"},
        "session_1": [_turn("D1:1", "Emi", "Hi there", "29.12.2023, 22:42:04"),
                      _turn("D1:2", "elise", "I went to Art Basel today", "29.12.2023, 22:43:00"),
                      _turn("D1:3", "Emi", "Lovely!", "29.12.2023, 22:44:00")],
        # the second session continues the D1 numbering, as REALTALK's files do
        "session_2": [_turn("D1:4", "elise", "I made tiramisu", "03.01.2024, 10:00:00"),
                      _turn("D1:5", "Emi", "Yum", "03.01.2024, 10:01:00")],
        "qa": [{"question": "When did Elise make tiramisu?", "answer": "3 Jan", "evidence": ["D1:4."],
                "category": 2},
               {"question": "What did Elise do?", "answer": "x", "evidence": ["D1:2-D1:4; D9:9"], "category": 1},
               {"question": "Unresolvable", "answer": "x", "evidence": ["D7:7"], "category": 3}],
    }
    (data / "Chat_1_Emi_Elise.json").write_text(json.dumps(chat))
    (tmp_path / "data" / "locomo").mkdir()  # present upstream, never read
    ds = load("realtalk", tmp_path)
    assert [(e.user_message, e.bot_response) for e in ds.exchanges] == [
        ("Emi: Hi there", "elise: I went to Art Basel today\nEmi: Lovely!"),
        ("elise: I made tiramisu", "Emi: Yum")]
    assert ds.exchanges[1].timestamp.isoformat() == "2024-01-03T10:00:00+00:00"
    assert ds.exchanges[1].speakers == ("elise", "Emi")
    assert [(q.qtype, q.evidence_ids, q.needles) for q in ds.questions] == [
        ("temporal", ("realtalk1-1",), ("I made tiramisu",)),
        ("multi-hop", ("realtalk1-0", "realtalk1-0", "realtalk1-1"),
         ("I went to Art Basel today", "Lovely!", "I made tiramisu"))]


def test_beam_evidence_is_the_source_chat_ids(tmp_path: Path) -> None:
    chat_dir = tmp_path / "chats" / "100K" / "1"
    (chat_dir / "probing_questions").mkdir(parents=True)
    chat = [{"batch_number": 1, "time_anchor": "March-15-2024", "turns": [
        [{"role": "user", "id": 0, "content": "My sprint ends March 29."},
         {"role": "assistant", "id": 1, "content": "Noted."}],
        [{"role": "user", "id": 2, "content": "I use Flask."},
         {"role": "assistant", "id": 3, "content": "Good choice."}]]}]
    (chat_dir / "chat.json").write_text(json.dumps(chat))
    (chat_dir / "chat_trunecated.json").write_text("not read")
    probing = {"information_extraction": [{"question": "When does my sprint end?", "answer": "March 29",
                                           "source_chat_ids": [0]}],
               "knowledge_update": [{"question": "Framework?", "answer": "Flask",
                                     "source_chat_ids": {"original_info": [2], "updated_info": [3]}}],
               "abstention": [{"question": "Unknown?", "answer": "none"}]}
    (chat_dir / "probing_questions" / "probing_questions.json").write_text(json.dumps(probing))
    ds = load("beam", tmp_path)
    assert len(ds.exchanges) == 2 and ds.exchanges[0].timestamp.date().isoformat() == "2024-03-15"
    assert [(q.qtype, q.needles) for q in ds.questions] == [
        ("information_extraction", ("My sprint ends March 29.",)),
        ("knowledge_update", ("I use Flask.", "Good choice."))]


def test_realmem_evidence_is_the_memory_source_turn_and_queries_are_not_history(tmp_path: Path) -> None:
    (tmp_path / "dataset").mkdir()
    memory = {"session_uuid": "s1", "content": "User drinks oolong tea."}
    raw = {"_metadata": {}, "dialogues": [
        {"session_uuid": "s1", "current_time": "2025-12-19 (Friday)", "dialogue_turns": [
            {"speaker": "User", "is_query": False, "content": "Hello"},
            {"speaker": "Assistant", "is_query": False, "content": "Hi"},
            {"speaker": "User", "is_query": False, "content": "I only drink oolong tea."},
            {"speaker": "Assistant", "is_query": False, "content": "Noted."}],
         "extracted_memory": [dict(memory, source_turn=3), {"session_uuid": "s1", "content": "x", "source_turn": 0}]},
        {"session_uuid": "s2", "current_time": "2025-12-28 (Sunday)", "dialogue_turns": [
            {"speaker": "User", "is_query": True, "content": "What tea should I buy?", "query_id": "Q-1",
             "category_name": "Implicit Preference"},
            {"speaker": "Assistant", "is_query": False, "content": "Oolong.", "memory_used": [memory]},
            {"speaker": "User", "is_query": False, "content": "Thanks"},
            {"speaker": "Assistant", "is_query": False, "content": "Bye"}],
         "extracted_memory": []}]}
    (tmp_path / "dataset" / "Kenta_Tanaka_dialogues_256k.json").write_text(json.dumps(raw))
    ds = load("realmem", tmp_path)
    assert [e.user_message for e in ds.exchanges] == ["Hello", "I only drink oolong tea.", "Thanks"]
    [q] = ds.questions
    assert (q.text, q.qtype, q.needles) == ("What tea should I buy?", "Implicit Preference",
                                           ("I only drink oolong tea.",))


def test_missing_layout_is_a_clear_error(tmp_path: Path) -> None:
    for name in ("realtalk", "beam", "realmem"):
        with pytest.raises(DatasetError, match="under"):
            load(name, tmp_path)
