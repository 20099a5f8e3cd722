"""Self-statements for the generator: facts about the user that the profile keeps, some changing over time.

Each generated user says, in DMs and in plain self-statement form the
deterministic rules understand, their name, a pet, where they live and what
they do for work; home and work change later ("I live in Reykjavik" early, "I
moved to Tallinn" weeks later). Questions of two types ask about them:

  changed-fact  "where do I live now?" (evidence: the newer statement) and
                "where did I live before?" (evidence: the older one)
  profile       "what's my name?", "what's my pet called?" (evidence: the stating exchange)

The values come from pools no other planted fact uses, so an answer string found
in a context comes from these statements. Randomness comes from its own
``random.Random`` stream: the other facts, the filler, the timestamps and the
ids of every other exchange are exactly what they are without these statements.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

QTYPES = ("changed-fact", "profile")

NAMES = ("Ottilie", "Barnaby", "Wilhelmina", "Ezekiel", "Marisol", "Thaddeus", "Rosalind", "Leopold")
PETS = ("Biscuit", "Gizmo", "Waffles", "Noodle", "Pretzel", "Muffin", "Sprocket", "Juniper")
ANIMALS = ("dog", "cat", "rabbit", "parrot")
CITIES = ("Reykjavik", "Trondheim", "Plovdiv", "Bratislava", "Valletta", "Tbilisi", "Vilnius", "Zagreb",
          "Sarajevo", "Podgorica")
JOBS = ("nurse", "carpenter", "librarian", "pharmacist", "electrician", "florist", "beekeeper", "translator")
_TAILS = (".", ". anyway.", ", what do you think?", ". how's your day going?", "")


@dataclass(frozen=True, slots=True)
class SelfFact:
    """One fact the user states once (``old`` empty) or states and later changes."""

    key: str  # name | pet | home | work
    old: str  # the first statement (changed facts), or ""
    new: str  # the statement that holds now
    old_value: str
    new_value: str


@dataclass(frozen=True, slots=True)
class SelfQuestion:
    qtype: str
    key: str
    text: str
    answer: str
    newest: bool  # evidence: the newer statement (else the older one)


QUESTIONS: tuple[SelfQuestion, ...] = (
    SelfQuestion("changed-fact", "home", "Where do I live now?", "{new}", True),
    SelfQuestion("changed-fact", "home", "Where did I live before?", "{old}", False),
    SelfQuestion("changed-fact", "work", "What do I do for work these days?", "{new}", True),
    SelfQuestion("changed-fact", "work", "What was my job before?", "{old}", False),
    SelfQuestion("profile", "name", "What's my name?", "{new}", True),
    SelfQuestion("profile", "pet", "What's my pet called?", "{new}", True),
)


def draw(rng: random.Random) -> list[SelfFact]:
    """One user's self-statements: name and pet once, home and work each stated then changed."""
    name, pet, animal = rng.choice(NAMES), rng.choice(PETS), rng.choice(ANIMALS)
    home_old, home_new = rng.sample(CITIES, 2)
    work_old, work_new = rng.sample(JOBS, 2)
    return [
        SelfFact("name", "", f"my name is {name}", "", name),
        SelfFact("pet", "", f"my {animal} is called {pet}", "", pet),
        SelfFact("home", f"I live in {home_old}", f"I moved to {home_new}", home_old, home_new),
        SelfFact("work", f"I work as a {work_old}", f"I now work as a {work_new}", work_old, work_new),
    ]


def message(sentence: str, rng: random.Random) -> str:
    return sentence + rng.choice(_TAILS)
