"""Deterministic extraction: summaries, chunks and mentions without an LLM.

The seam for LLM-based extraction is the ``Extractor`` protocol; this module is
the fallback every configuration has, so a malformed LLM answer never drops a
fact. Entities are capitalised names (``Maria``, ``New York``); topics are the
salient content words, lightly stemmed so ``hikes`` and ``hiking`` meet.
"""

from __future__ import annotations

import asyncio
import bisect
import re
from collections import Counter
from collections.abc import Iterable, Sequence

from memory.models import ANY_OBJECT, NOT_ENTITIES, Exchange, Extraction, Mention, own_words, without_notes
from memory.statements import statements
from memory.tokens import split_tokens, truncate_tokens

STOPWORDS = frozenset("""
a about above after again against all almost also am an and any are aren't as at be because been
before being below between both but by can can't cannot could couldn't did didn't do does doesn't
doing don't down during each even ever every few for from further get gets getting got had hadn't has
hasn't have haven't having he he'd he'll he's her here here's hers herself him himself his how how's
however i i'd i'll i'm i've if in into is isn't it it's its itself just know let's like make many
me might more most much must mustn't my myself need no nor not now of off oh ok okay on once one only
or other ought our ours ourselves out over own really right said same say says see shan't she she'd
she'll she's should shouldn't so some something still such sure take tell than thank thanks that
that's the their theirs them themselves then there there's these they they'd they'll they're they've
thing things think this those though through to too under until up upon us very want was wasn't way
we we'd we'll we're we've well were weren't what what's when when's where where's whether which while
who who's whom why why's will with won't would wouldn't yeah yes yet you you'd you'll you're you've
your yours yourself yourselves hi hello hey please sorry great good nice lot lots bit kind sort maybe
going go went gone come came back time today yesterday tomorrow day days week weeks year years
remember remind told tell asked ask bot user anything everything nothing someone anyone
""".split())
# Chat drops the apostrophe ("Im", "dont", "theyre") or types a curly one ("it’s"): those forms are
# stop words too, except the ones that are words of their own ("hell", "shell", "ill", "shed", "wed", "id").
STOPWORDS |= frozenset(w.replace("'", "") for w in STOPWORDS if "'" in w) - frozenset(
    "hell shell ill shed wed id".split())
STOPWORDS |= frozenset(w.replace("'", "’") for w in STOPWORDS if "'" in w)

_WORD = re.compile(r"[^\W\d_][\w'’\-]*[^\W_]|[^\W\d_]")
_NAME_WORD = re.compile(r"[^\W\d_][\w'’\-]*")
_CONNECTORS = frozenset({"of", "de", "da", "del", "van", "von", "la", "le", "d'", "d’"})
# "I" and its contractions are capitalised but never part of a name ("since March I moved").
_PRONOUN_I = frozenset({"i", "i'm", "i’m", "i've", "i’ve", "i'd", "i’d", "i'll", "i’ll"})
# A month or weekday alone is a date, not a name ("since March", "on Friday"); in a longer name
# it stays ("March Madness", "Good Friday").
_WEEKDAYS = frozenset("monday tuesday wednesday thursday friday saturday sunday".split())
_CALENDAR_WORDS = _WEEKDAYS | frozenset("""
january february march april may june july august september october november december""".split())
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def normalise(name: str) -> str:
    """The key a mention is stored and matched under: lower case, single spaces, no possessive."""
    name = re.sub(r"['’]s\b", "", name.strip().lower())
    return re.sub(r"\s+", " ", name)


def stem(word: str) -> str:
    """A light stemmer: possessive, plural, -ing, -ed and a final e go, so hike/hikes/hiking/hiked meet."""
    w = word.lower().replace("’", "'")
    if w.endswith("'s") and len(w) > 3:
        w = w[:-2]  # "friend's" meets "friend"
    if len(w) > 4 and w.endswith("ies"):
        w = w[:-3] + "y"
    elif w.endswith(("sses", "ches", "shes", "xes", "zes")):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")) and len(w) > 3:
        w = w[:-1]
    if w.endswith("ing") and len(w) >= 6:
        w = w[:-3]
    elif w.endswith("ed") and len(w) >= 5:
        w = w[:-2]
    if len(w) >= 4 and w[-1] == w[-2] and w[-1] not in "lsz":
        w = w[:-1]  # running -> runn -> run
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]
    return w


def _capitalised(word: str) -> bool:
    return word[0].isupper()


# Words that open sentences ("Certainly!", "Absolutely, ...") and are capitalised only for that.
_OPENERS = frozenset("""
certainly absolutely definitely actually honestly really sure wow well thanks great awesome yes no okay
oh ah hmm also anyway congratulations welcome lovely cool perfect exactly indeed glad happy sorry sounds
try let maybe perhaps hopefully unfortunately fortunately basically seriously totally nope yep yeah
agreed alright right wonderful amazing fantastic interesting good nice hello hi hey dear thank cheers
of course here there this that these those it what how why when where which who whose
since last next every without although unless whenever
nah ohh ooh lol lmao omg wait anyways man dude bro sometimes another imagine idk tbh btw ngl id ill
""".split())
# what an imperative or an ordinary word is followed by, and a name seldom: "Use a", "Ensure your",
# "Consider the" open sentences; "Sam is", "Maria and I", "Rex's" do not follow this
_AFTER_ORDINARY = re.compile(r"[ \t]+(?:the|a|an|your|you|my|our|their|its|this|that|these|those|some|any|each|"
                             r"every|all|up|out)\b")
# Markdown, as a model writes it: a line that starts a list item, a heading or a quote, and the
# Title Case there ("1. **Secure Password Storage**: Use a ...", "### Key Points to Consider").
_MARKDOWN_START = re.compile(r"(?:^|\n)[ \t]*(?:(?:[-*+•>]|\d{1,3}[.)]|#{1,6})[ \t]+)?(?:\*\*|__|\*|_)?$")
_MARKDOWN = re.compile(r"^[ \t]*(?:[-*+•>]|\d{1,3}[.)]|#{1,6})[ \t]+\S|^[ \t]*(?:\*\*|__)\S", re.MULTILINE)
_MARKDOWN_TITLES = re.compile(  # headings, bold labels, code and table cells
    r"^[ \t]*#{1,6}[ \t][^\n]*|^[ \t]*(?:(?:[-*+•]|\d{1,3}[.)])[ \t]+)?(\*\*|__)[^*_\n]{1,100}\1"
    r"|```[\s\S]*?(?:```|\Z)|`[^`\n]+`|^[ \t]*\|[^\n]*\|[ \t]*$", re.MULTILINE)


def _sentence_start(text: str, start: int) -> bool:
    """Whether ``start`` opens a sentence: the text's start, after . ! ? : a quote or a line break, or
    after a Markdown list, heading or quote marker."""
    i = start
    while i > 0 and text[i - 1] in " \t*_":  # "**Label:** Use ..." opens a sentence after the bold colon
        i -= 1
    return (i == 0 or text[i - 1] in ".!?:\n\"“(" or text[start - 1] == "\n"
            or _MARKDOWN_START.search(text, max(0, start - 12), start) is not None)


class _Markdown:
    """Where a text written in Markdown shows a name: a word capitalised in running prose. Elsewhere
    (a list item's first word, a heading, a bold label, code, a table) capitals are Title Case,
    imperatives or code, and count as a name only if the same word is capitalised in prose too."""

    def __init__(self, text: str) -> None:
        spans = [m.span() for m in _MARKDOWN_TITLES.finditer(text)]  # in order, never overlapping
        self.starts = [a for a, _ in spans]
        self.ends = [b for _, b in spans]
        self.prose = {m.group(0).rstrip("'’-").lower() for m in _NAME_WORD.finditer(text)
                      if m.group(0)[0].isupper() and not self.in_title(m.start())
                      and not _sentence_start(text, m.start())}

    def in_title(self, at: int) -> bool:
        i = bisect.bisect_right(self.starts, at) - 1
        return i >= 0 and at < self.ends[i]

    def ordinary(self, word: str, at: int, text: str) -> bool:
        """A model's sentences open with imperatives ("Use", "Ensure", "**Label**: Consider"), so here
        any opening word needs the prose to call it a name."""
        return (self.in_title(at) or _sentence_start(text, at)) and word.lower() not in self.prose


def _sentence_opener(word: str, text: str, start: int) -> bool:
    """Whether ``word`` at ``start`` opens a sentence and is a common word rather than a name.

    A sentence-initial word counts as a name only if nothing marks it as an ordinary word:
    it is no known opener, no -ly adverb or -ing form, not followed by a determiner or pronoun
    ("Use a", "Ensure your"), and not followed by "!" or "," right away (interjections); a word
    also seen capitalised mid-sentence is a name.
    """
    if not _sentence_start(text, start):
        return False
    lower = word.lower()
    if lower in _OPENERS or lower in STOPWORDS or _AFTER_ORDINARY.match(text, start + len(word)):
        return True
    if re.search(r"(?<![.!?\n]\s)(?<!^)\b" + re.escape(word) + r"\b", text[start + len(word):]):
        return False  # capitalised again mid-text: a name
    follow = text[start + len(word):start + len(word) + 1]
    return (len(lower) > 4 and (lower.endswith("ly") or lower.endswith("ing"))) or follow in ("!", ",")


def entities(text: str) -> list[tuple[str, str]]:
    """Capitalised names in ``text`` (any script with case) as (normalised, display) pairs, in order."""
    found: dict[str, str] = {}
    run: list[str] = []
    last_end = -1

    def close() -> None:
        words = list(run)
        while words and (words[0].lower() in STOPWORDS or words[0].lower() in _CONNECTORS):
            words = words[1:]
        while words and words[-1].lower() in _CONNECTORS:
            words = words[:-1]
        if len(words) > 1 and words[0].lower() in _WEEKDAYS:
            words = words[1:]  # "Last Tuesday Maria called"
        run.clear()
        if not words:
            return
        display = " ".join(words)
        key = normalise(display)
        if len(key) >= 2 and key not in STOPWORDS and key not in _CALENDAR_WORDS:
            found.setdefault(key, display)

    markdown = _Markdown(text) if "```" in text or _MARKDOWN.search(text) else None
    for match in _NAME_WORD.finditer(text):
        word = match.group(0).rstrip("'’-")
        if word.lower() in _PRONOUN_I:
            if run:
                close()
            last_end = -1
            continue
        gap = text[last_end:match.start()] if last_end >= 0 else ""
        joined = last_end >= 0 and gap.strip() == "" and "\n" not in gap
        if _capitalised(word) and (markdown.ordinary(word, match.start(), text) if markdown is not None else
                                   (not run or not joined) and _sentence_opener(word, text, match.start())):
            if run:
                close()
            last_end = match.end()  # "Certainly", "Absolutely": capitalised only as sentence openers
            continue
        if _capitalised(word) or (run and joined and word.lower() in _CONNECTORS):
            if run and not joined:
                close()
            run.append(word)
        elif run:
            close()
        last_end = match.end()
    if run:
        close()
    return list(found.items())


def topics(text: str, limit: int = 8, *, besides: Iterable[str] = ()) -> list[str]:
    """The most frequent content-word stems of ``text`` (see ``labelled_topics``)."""
    return [key for key, _ in labelled_topics(text, limit, besides=besides)]


# Words that carry no subject of their own: fillers, time words and light verbs ("Actually I moved
# here last month" is about the move's place, not about "actually", "moved" or "month"). Kept out
# of topics (matched by stem, so "loves" and "loved" go with "love"), not out of entities.
_WEAK_TOPICS = frozenset(stem(w) for w in """
actually basically probably literally definitely usually always never often sometimes recently finally name
already pretty quite little last next first second third new old big small long short whole best better near
worse worst every another other different same own enough lately soon later ago since almost instead
early late final older younger eldest oldest youngest switch switched switching
honestly mostly mainly especially particularly seriously totally truly
month months hour hours minute minutes moment morning evening night tonight weekend weekends
live lives lived living love loves loved loving like likes liked move moves moved moving start started
starting stop stopped try tried use used using feel felt feeling look looked looking find found
give gave keep kept seem seemed leave left call called show showed turn turned begin began help helped
talk talked talking hope hoped wonder guess mean meant happen happened bring brought finish finished wait
waited wish stay stayed made making doing done having saying trying thinking thought getting
hate hates hated hating enjoy enjoys enjoyed adore adores prefer prefers preferred stuff stand
haha hahaha hehe lmao lmfao gonna wanna gotta kinda sorta anyway anyways
""".split()) | frozenset(stem(w) for w in _CALENDAR_WORDS)


def labelled_topics(text: str, limit: int = 8, *, besides: Iterable[str] = ()) -> list[tuple[str, str]]:
    """``(stem, display word)`` for the most frequent content-word stems of ``text``; the display
    word is the stem's most frequent spelling in the text ("hiking", not "hik"). A word that is
    in one of ``besides`` (entity keys: "leeds" for "Leeds") is left out, so it is not counted twice."""
    taken = {w for k in besides for w in k.split()}
    taken |= {stem(w) for w in taken}
    counts: Counter[str] = Counter()
    spellings: dict[str, Counter[str]] = {}
    for w in _WORD.findall(text):
        word = w.lower()
        if len(w) >= 4 and word not in STOPWORDS:
            key = stem(w)
            if key in _WEAK_TOPICS or key in taken:
                continue
            counts[key] += 1
            if word.endswith(("'s", "’s")):
                word = word[:-2]  # "cat's" shows as "cat"
            spellings.setdefault(key, Counter())[word] += 1
    return [(key, spellings[key].most_common(1)[0][0]) for key, _ in counts.most_common(limit)
            if key not in STOPWORDS]


def query_names(text: str) -> list[str]:
    """Names to look up in the graph for a query: its entities and topic stems."""
    names = [key for key, _ in entities(text)]
    return names + topics(text, limit=12, besides=names)


def summarise(exchange: Exchange, max_tokens: int = 60) -> str:
    """A short summary: the user's first sentences and the start of the answer."""
    def first(text: str, words: int) -> str:
        parts = [p.strip() for p in _SENTENCE.split(text.strip()) if p.strip()]
        out = ""
        for p in parts:
            if len((out + " " + p).split()) > words and out:
                break
            out = (out + " " + p).strip()
        return out or text.strip()

    summary = f"User: {first(exchange.user_message, 30)} | Bot: {first(exchange.bot_response, 15)}"
    return truncate_tokens(summary, max_tokens)


class DeterministicExtractor:
    """Summaries, chunks and mentions from rules alone: fast, offline, reproducible."""

    def __init__(self, chunk_tokens: int = 300) -> None:
        self.chunk_tokens = chunk_tokens

    def extract_one(self, exchange: Exchange) -> Extraction:
        text = f"User: {exchange.user_message}\nBot: {exchange.bot_response}"
        chunks = tuple(split_tokens(text, self.chunk_tokens))
        user = without_notes(exchange.user_message)  # "[image: IMG_2041.jpg]" names no entity or topic
        source = user + "\n" + exchange.bot_response
        # "my sister Maria": SIBLING_OF maria, detail "sister"; "I moved here last month" dates it
        said = statements(own_words(exchange.user_message), exchange.timestamp)
        mentions = [Mention(key, "entity", display) for key, display in entities(source)[:20]]
        seen = {m.name for m in mentions}
        mentions += [Mention(s.obj, "entity", s.label) for s in said
                     if s.obj not in seen and s.predicate not in NOT_ENTITIES and s.obj != ANY_OBJECT]
        seen = {m.name for m in mentions}
        mentions += [Mention(t, "topic", label) for t, label in labelled_topics(user, besides=seen)]
        return Extraction(exchange.id, summarise(exchange), chunks, tuple(mentions), tuple(said))

    async def extract(self, exchanges: Sequence[Exchange]) -> list[Extraction]:
        out = []
        for exchange in exchanges:
            out.append(self.extract_one(exchange))
            # one exchange at a time: a batch of 64 in one step held the event loop ~40 ms,
            # and every store and read of the process waited behind it
            await asyncio.sleep(0)
        return out
