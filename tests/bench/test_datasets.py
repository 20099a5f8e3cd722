"""The public-dataset loaders read small files written in each upstream layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.baselines import BASELINES, Baselines
from bench.datasets import DatasetError, load, realtalk_evidence, select
from bench.generator import Question
from bench.recall import Tally, found, schedule
from memory.embedding import OnnxMiniLMEmbedder


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
        "session_3": [_turn("D2:1", "Emi", "Anyone there?", "04.01.2024, 09:00:00")],
        "qa": [{"question": "When did Elise make tiramisu?", "answer": "3 Jan", "evidence": ["D1:4."],
                "category": 2},
               {"question": "What did Elise do?", "answer": "x", "evidence": ["D1:2-D1:4; D9:9"], "category": 1},
               {"question": "Unresolvable", "answer": "x", "evidence": ["D7:7"], "category": 3}],
    }
    (data / "Chat_1_Emi_Elise.json").write_text(json.dumps(chat))
    (tmp_path / "data" / "locomo").mkdir()  # present upstream, never read
    ds = load("realtalk", tmp_path)
    assert [(e.user_message, e.bot_response) for e in ds.exchanges] == [
        ("Emi: Hi there", "elise: I went to Art Basel today"),
        ("elise: I made tiramisu", "Emi: Yum")]
    assert ds.exchanges[1].timestamp.isoformat() == "2024-01-03T10:00:00+00:00"
    assert ds.exchanges[1].speakers == ("elise", "Emi")
    assert [(q.qtype, q.evidence_ids, q.needles) for q in ds.questions] == [
        ("temporal", ("realtalk1-1",), ("I made tiramisu",)),
        ("multi-hop", ("realtalk1-0", "realtalk1-1"), ("I went to Art Basel today", "I made tiramisu"))]


def test_realtalk_lone_last_turn_of_a_session_is_left_out_and_does_not_resolve(tmp_path: Path) -> None:
    """Turns are paired (1,2), (3,4), ... within a session; an odd session's last turn and a
    one-turn session pair with nothing, so a question whose only evidence is such a turn is dropped
    (REALTALK's calibration figures count 703 questions this way, not 706)."""
    (tmp_path / "data").mkdir()
    chat = {
        "name": {"speaker_1": "Nicolas", "speaker_2": "Nebraas"},
        "session_1": [_turn("D1:1", "Nicolas", "Morning", "01.01.2024, 08:00:00"),
                      _turn("D1:2", "Nebraas", "Morning!", "01.01.2024, 08:01:00"),
                      _turn("D1:3", "Nebraas", "I work at a bakery", "01.01.2024, 08:02:00")],
        "session_2": [_turn("D1:5", "Nicolas", "Made bubble tea", "02.01.2024, 08:00:00")],
        "session_3": [_turn("D2:1", "Nebraas", "I adopted a cat", "03.01.2024, 08:00:00"),
                      _turn("D2:2", "Nicolas", "Name?", "03.01.2024, 08:01:00")],
        "qa": [{"question": "What is Nebraas's job?", "answer": "baker", "evidence": ["D1:3"], "category": 3},
               {"question": "When did Nicolas make bubble tea?", "answer": "2 Jan", "evidence": ["D1:5"],
                "category": 2},
               {"question": "What did Nebraas say?", "answer": "x", "evidence": ["D1:3", "D2:1"], "category": 1}],
    }
    (tmp_path / "data" / "Chat_5_Nicolas_Nebraas.json").write_text(json.dumps(chat))
    ds = load("realtalk", tmp_path)
    assert [e.bot_response for e in ds.exchanges] == ["Nebraas: Morning!", "Nicolas: Name?"]
    assert [(q.text, q.needles) for q in ds.questions] == [("What did Nebraas say?", ("I adopted a cat",))]


def test_public_datasets_score_each_question_by_the_share_of_its_evidence_found() -> None:
    def question(qid: str, qtype: str, needles: tuple[str, ...]) -> Question:
        return Question(id=qid, user_id="u", guild_id=None, text="?", qtype=qtype, kind=qtype, answer="",
                        evidence_ids=tuple(f"e{i}" for i in range(len(needles))), needles=needles)

    tally = Tally()
    many = question("q1", "multi-hop", ("a", "b", "c", "d"))
    one = question("q2", "temporal", ("e",))
    tally.add("bm25", 1000, many, found(many, "a"), 10)
    tally.add("bm25", 1000, one, found(one, "E"), 10)
    # pooled over evidence turns: 2 of 5; per question: (1/4 + 1) / 2
    assert tally.recall("bm25", 1000) == {"overall": 0.4, "temporal": 1.0, "multi-hop": 0.25}
    assert tally.recall("bm25", 1000, per_question=True) == {"overall": 0.625, "temporal": 1.0,
                                                              "multi-hop": 0.25}


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


def _beam_chat(root: Path, size: str, n: int, said: str) -> None:
    chat_dir = root / "chats" / size / str(n)
    (chat_dir / "probing_questions").mkdir(parents=True)
    chat = [{"batch_number": 1, "time_anchor": "March-15-2024", "turns": [
        [{"role": "user", "id": 0, "content": said}, {"role": "assistant", "id": 1, "content": "Noted."}]]}]
    (chat_dir / "chat.json").write_text(json.dumps(chat))
    probing = {"information_extraction": [{"question": "What did I say?", "answer": said, "source_chat_ids": [0]}]}
    (chat_dir / "probing_questions" / "probing_questions.json").write_text(json.dumps(probing))


def test_beam_reads_the_100k_chats_unless_asked_for_500k(tmp_path: Path) -> None:
    _beam_chat(tmp_path, "100K", 1, "I keep bees in Porto.")
    _beam_chat(tmp_path, "500K", 1, "My cello is from 1911.")

    def said(**kwargs: object) -> set[str]:
        return {n for q in load("beam", tmp_path, **kwargs).questions for n in q.needles}  # type: ignore[arg-type]

    assert said() == {"I keep bees in Porto."}
    assert said(beam_sizes=("500K",)) == {"My cello is from 1911."}
    assert said(beam_sizes=("100K", "500K")) == {"I keep bees in Porto.", "My cello is from 1911."}
    with pytest.raises(DatasetError, match="BEAM sizes"):
        load("beam", tmp_path, beam_sizes=("1M",))


def _realmem(tmp_path: Path) -> Path:
    """Two sessions in RealMemBench's layout: a preference stated, then two queries in a row;
    the second query's evidence is the first query's answer (a turn that is itself a query's)."""
    (tmp_path / "dataset").mkdir()
    tea = {"session_uuid": "s1", "content": "User drinks oolong tea."}
    shop = {"session_uuid": "s2", "content": "Assistant suggested the Camden tea shop."}
    raw = {"_metadata": {}, "dialogues": [
        {"session_uuid": "s1", "current_time": "2025-12-19 (Friday)", "dialogue_turns": [
            {"speaker": "User", "is_query": False, "content": "Hello"},
            {"speaker": "Assistant", "is_query": False, "content": "Hi"},
            {"speaker": "User", "is_query": False, "content": "I only drink oolong tea."},
            {"speaker": "Assistant", "is_query": False, "content": "Noted."}],
         "extracted_memory": [dict(tea, source_turn=3), {"session_uuid": "s1", "content": "x", "source_turn": 0}]},
        {"session_uuid": "s2", "current_time": "2025-12-28 (Sunday)", "dialogue_turns": [
            {"speaker": "User", "is_query": True, "content": "What tea should I buy?", "query_id": "Q-1",
             "category_name": "Implicit Preference"},
            {"speaker": "Assistant", "is_query": False, "content": "Oolong, from the Camden tea shop.",
             "memory_used": [tea]},
            {"speaker": "User", "is_query": True, "content": "Where was that shop again?", "query_id": "Q-2",
             "category_name": "Dynamic Incremental"},
            {"speaker": "Assistant", "is_query": False, "content": "Camden.", "memory_used": [shop, tea]}],
         "extracted_memory": [dict(shop, source_turn=2)]}]}
    (tmp_path / "dataset" / "Kenta_Tanaka_dialogues_256k.json").write_text(json.dumps(raw))
    return tmp_path


def test_realmem_questions_are_asked_mid_history_with_earlier_queries_as_history(tmp_path: Path) -> None:
    ds = load("realmem", _realmem(tmp_path))
    # every turn is history, earlier queries and their answers included
    assert [(e.user_message, e.bot_response) for e in ds.exchanges] == [
        ("Hello", "Hi"), ("I only drink oolong tea.", "Noted."),
        ("What tea should I buy?", "Oolong, from the Camden tea shop."), ("Where was that shop again?", "Camden.")]
    first, second = ds.questions
    assert (first.text, first.qtype, first.needles) == ("What tea should I buy?", "Implicit Preference",
                                                        ("I only drink oolong tea.",))
    # the second query's evidence is the first query's answer: it resolves (it used to be dropped)
    assert second.needles == ("Oolong, from the Camden tea shop.", "I only drink oolong tea.")
    assert second.evidence_ids == (ds.exchanges[2].id, ds.exchanges[1].id)
    assert [q.asked_at for q in ds.questions] == [ds.exchanges[2].timestamp, ds.exchanges[3].timestamp]


def test_realmem_schedule_stores_only_what_was_said_before_each_question(tmp_path: Path) -> None:
    ds = load("realmem", _realmem(tmp_path))
    steps = [([e.user_message for e in batch], [q.text for q in asked]) for batch, asked in schedule(ds)]
    assert steps == [(["Hello", "I only drink oolong tea."], ["What tea should I buy?"]),
                     (["What tea should I buy?"], ["Where was that shop again?"]),
                     (["Where was that shop again?"], [])]


def test_realmem_baselines_rank_only_the_history_before_the_question(tmp_path: Path) -> None:
    ds = load("realmem", _realmem(tmp_path))
    baselines = Baselines(ds, OnnxMiniLMEmbedder())
    first, second = ds.questions
    for name in BASELINES:
        assert {e.user_message for e in baselines.rank(name, first)} <= {"Hello", "I only drink oolong tea."}
    assert [e.user_message for e in baselines.rank("recent", second)] == [
        "What tea should I buy?", "I only drink oolong tea.", "Hello"]


def test_missing_layout_is_a_clear_error(tmp_path: Path) -> None:
    for name in ("realtalk", "beam", "realmem"):
        with pytest.raises(DatasetError, match="under"):
            load(name, tmp_path)
