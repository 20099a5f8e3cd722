"""Self-statements found by rules, and what the deterministic extractor keeps of them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memory.extraction import DeterministicExtractor, entities
from memory.models import Exchange
from memory.statements import statements


def said(text: str) -> set[tuple[str, str, str]]:
    return {(s.predicate, s.label, s.detail) for s in statements(text)}


@pytest.mark.parametrize(("text", "expected"), [
    ("Hi, I'm Ana, nice to meet you.", {("NAME", "Ana", "")}),
    ("My name is Ana Lopez and I live in Paris.", {("NAME", "Ana Lopez", ""), ("LIVES_IN", "Paris", "")}),
    ("You can call me Annie.", {("CALLED", "Annie", "")}),
    ("I usually go by Alex online", {("CALLED", "Alex", "")}),
    ("I live in the UK", {("LIVES_IN", "UK", "")}),
    ("I moved to the Netherlands last year", {("LIVES_IN", "Netherlands", "")}),
    # pronouns as people give them, in a sentence or a Discord bio
    ("my pronouns are she/her", {("PRONOUNS", "she/her", "")}),
    ("I use they/them pronouns", {("PRONOUNS", "they/them", "")}),
    ("Hi! Pronouns - he/they. I go by train", {("PRONOUNS", "he/they", "")}),
    ("I use it every day", set()),
    ("hey, I'm Jo (pronouns: they/them)", {("NAME", "Jo", ""), ("PRONOUNS", "they/them", "")}),
    ("I'm Sam (he/him)", {("NAME", "Sam", ""), ("PRONOUNS", "he/him", "")}),
    ("My sister (she/her) is visiting", set()),
    ("I'm a huge Arsenal fan", {("LIKES", "Arsenal", "")}),
    ("I'm a big football fan", {("LIKES", "football", "")}),
    ("I'm allergic to peanuts and I'm lactose intolerant", {("ALLERGIC_TO", "peanuts", ""),
                                                             ("ALLERGIC_TO", "lactose", "intolerant")}),
    ("I have celiac disease", {("ALLERGIC_TO", "gluten", "intolerant")}),
    ("I'm lactose intolerant and allergic to cats lol", {("ALLERGIC_TO", "lactose", "intolerant"),
                                                         ("ALLERGIC_TO", "cats", "")}),
    ("I'm intolerant to eggs", {("ALLERGIC_TO", "eggs", "intolerant")}),
    ("I'm intolerant to stupidity", set()),
    # lasting health conditions, from a closed list, lists and acronyms as people write them
    ("I have type 1 diabetes", {("HAS_CONDITION", "type 1 diabetes", "")}),
    ("I was diagnosed with ADHD last year", {("HAS_CONDITION", "ADHD", "")}),
    ("i have adhd and dyslexia", {("HAS_CONDITION", "ADHD", ""), ("HAS_CONDITION", "dyslexia", "")}),
    ("I have asthma, eczema and migraines lol", {("HAS_CONDITION", "asthma", ""), ("HAS_CONDITION", "eczema", ""),
                                                 ("HAS_CONDITION", "migraines", "")}),
    ("I've had asthma since I was a kid", {("HAS_CONDITION", "asthma", "")}),
    ("I'm asthmatic", {("HAS_CONDITION", "asthma", "")}), ("I'm diabetic, type 2", {("HAS_CONDITION", "diabetes", "")}),
    ("I have a heart condition", {("HAS_CONDITION", "heart condition", "")}),
    ("Yeah I have IBS", {("HAS_CONDITION", "IBS", "")}),  # REALTALK
    ("I have MS", {("HAS_CONDITION", "MS", "")}), ("I have ms word installed", set()), ("I have add ons", set()),
    ("I have a cold", set()), ("I have anxiety about my exam tomorrow", set()), ("I think I have ADHD", set()),
    ("do I have diabetes?", set()), ("My mom has diabetes", set()), ("if I have diabetes I should know", set()),
    # what the user plays: instruments, sports, games by name
    ("I play the piano and I play football on Sundays", {("LIKES", "playing piano", ""),
                                                         ("LIKES", "playing football", "")}),
    ("I mostly play League of Legends with friends", {("LIKES", "playing League of Legends", "")}),
    ("I play with my dog; I don't play chess; I used to play piano; I play Mondays", set()),
    ("I'm not a fan, I'm such a fan", set()),
    ("I just moved to Berlin for work!", {("LIVES_IN", "Berlin", "")}),
    ("I've been living in Porto for about three years now.", {("LIVES_IN", "Porto", "")}),
    ("I work as a nurse at the hospital.", {("WORKS_AS", "nurse", "")}),
    ("I'm a software engineer.", {("WORKS_AS", "software engineer", "")}),
    ("I'm a software dev", {("WORKS_AS", "software dev", "")}),
    ("I work at Google now.", {("WORKS_AT", "Google", "")}),
    ("My sister Maria just moved to Lisbon.", {("SIBLING_OF", "Maria", "sister")}),
    ("my friend Melanie came over", {("FRIEND_OF", "Melanie", "friend")}),
    ("I adopted a beagle puppy and named him Biscuit.", {("HAS_PET", "Biscuit", "puppy")}),
    ("I got a new puppy yesterday, his name is Max", {("HAS_PET", "Max", "puppy")}),
    ("My dog Rex hates rain. I love hiking and climbing.", {("HAS_PET", "Rex", "dog"), ("LIKES", "hiking", ""),
                                                            ("LIKES", "climbing", "")}),
    # a list of tastes (REALTALK's and BEAM's phrasings among them), and what is no list
    ("I love hiking, swimming and rock climbing", {("LIKES", "hiking", ""), ("LIKES", "swimming", ""),
                                                   ("LIKES", "rock climbing", "")}),
    ("I really like lychee, mango, and peaches for fruits lol", {("LIKES", "lychee", ""), ("LIKES", "mango", ""),
                                                                 ("LIKES", "peaches", "")}),
    ("I hate spiders and snakes", {("DISLIKES", "spiders", ""), ("DISLIKES", "snakes", "")}),
    ("I love Paris and Rome", {("LIKES", "Paris", ""), ("LIKES", "Rome", "")}),
    ("My favorite place has to be San Diego, California!", {("LIKES", "San Diego", "")}),
    ("I love reading and can even suggest a few", {("LIKES", "reading", "")}),
    ("I love cooking and then eating it all", {("LIKES", "cooking", "")}),
    ("I like to exercise and build muscle", {("LIKES", "exercising", "")}),
    ("I like pizza, but not pineapple", {("LIKES", "pizza", "")}),
    ("I like steam rooms and saunas at the spa", {("LIKES", "steam rooms", ""), ("LIKES", "saunas", "")}),
    # more ways to say it: obsessed with, working from home, a move of the household
    ("I'm kinda obsessed with Taylor Swift", {("LIKES", "Taylor Swift", "")}),
    ("I work from home as a software developer", {("WORKS_AS", "software developer", "")}),
    ("we just moved to Denver", {("LIVES_IN", "Denver", "")}),
    ("My favourite food is grilled sardines; I hate cilantro.",
     {("LIKES", "grilled sardines", ""), ("DISLIKES", "cilantro", "")}),
    ("My all-time favorite band is Radiohead!", {("LIKES", "Radiohead", "")}),
    # tastes as REALTALK's chats say them: the thing, without how much or why
    ("I love badminton the most though", {("LIKES", "badminton", "")}),
    ("Oh I don't like cats very much", {("DISLIKES", "cats", "")}),
    ("I love nyquil it knocks me out", {("LIKES", "nyquil", "")}),
    ("Ooh fancy I love tea especially ginger tea", {("LIKES", "tea", "")}),
    ("I love iced drinks even if its cold out", {("LIKES", "iced drinks", "")}),
    ("I like cloudy days as long as it doesn't rain", {("LIKES", "cloudy days", "")}),
    ("My favorite pasta is actually ravioli", {("LIKES", "ravioli", "")}),
    ("I'm a big fan of jazz", {("LIKES", "jazz", "")}),  # a liking, not a job
    ("I am into skiing while my brother likes to snowboard", {("LIKES", "skiing", "")}),
    ("I am a huge fan of the Lions.", {("LIKES", "Lions", "")}),
    ("I like tv shows or movies more.", {("LIKES", "tv shows or movies", "")}),
    # several relatives or friends named at once, a marriage, an engagement
    ("I have two kids, Sam and Lea.", {("CHILD_OF", "Sam", "kid"), ("CHILD_OF", "Lea", "kid")}),  # no pets
    ("my daughters Amy and Beth are visiting", {("CHILD_OF", "Amy", "daughter"), ("CHILD_OF", "Beth", "daughter")}),
    ("my younger brothers, Francis and Michael", {("SIBLING_OF", "Francis", "brother"),
                                                  ("SIBLING_OF", "Michael", "brother")}),
    ("my best friends Ben and Jess", {("FRIEND_OF", "Ben", "friend"), ("FRIEND_OF", "Jess", "friend")}),
    ("I'm married to Chris and we have two kids, Lily and Max",
     {("PARTNER_OF", "Chris", "spouse"), ("CHILD_OF", "Lily", "kid"), ("CHILD_OF", "Max", "kid"),
      ("RELATIONSHIP", "married", "")}),
    ("our sons Tom and Ben", {("CHILD_OF", "Tom", "son"), ("CHILD_OF", "Ben", "son")}),
    ("we have two cats, Miso and Tofu", {("HAS_PET", "Miso", "cat"), ("HAS_PET", "Tofu", "cat")}),
    ("our dog Rex is sick", {("HAS_PET", "Rex", "dog")}),
    ("my friends and I went out", set()), ("my kids are 5 and 7", set()),
    # chat's short words, the wider family and the people around the user (Discord users wrote like this in
    # the console run; "My niece Natalie" and "my mentor Patrick" are BEAM's)
    ("my gf Jess and I have been together 2 years", {("PARTNER_OF", "Jess", "girlfriend")}),
    ("my bf Leo is cooking tonight", {("PARTNER_OF", "Leo", "boyfriend")}),
    ("My niece Natalie, who's 11", {("RELATIVE_OF", "Natalie", "niece"), ("AGE_OF", "11", "natalie")}),
    ("my grandma Rose turned 90", {("RELATIVE_OF", "Rose", "grandma"), ("AGE_OF", "90", "rose")}),
    ("my cousins Amy and Ben", {("RELATIVE_OF", "Amy", "cousin"), ("RELATIVE_OF", "Ben", "cousin")}),
    ("my roommate Dev plays valorant all night lol", {("FRIEND_OF", "Dev", "roommate")}),
    ("a meeting with my mentor Patrick", {("FRIEND_OF", "Patrick", "mentor")}),
    ("my aunt leaves tomorrow", set()), ("my gf was mad", set()),
    ("I broke up with my gf Jess", {("PARTNER_OF", "Jess", "")}),  # an ending (test_an_ending_... reads it)
    ("we have a cat called Noodle and a dog named Biscuit", {("HAS_PET", "Noodle", "cat"),
                                                            ("HAS_PET", "Biscuit", "dog")}),
    ("I have a dog named Rex, and a cat called Miso", {("HAS_PET", "Rex", "dog"), ("HAS_PET", "Miso", "cat")}),
    ("my sister has a cat and a dog named Rex", set()),
    ("yo, name's Kai. I'm 19 and study computer science at Georgia Tech",
     {("NAME", "Kai", ""), ("AGE", "19", ""), ("WORKS_AS", "computer science student", ""),
      ("WORKS_AT", "Georgia Tech", "")}),
    ("I'm a sophomore and study biology", {("WORKS_AS", "biology student", "")}),
    ("I'm trying to balance work and study prep", set()), ("the name is important", set()),
    ("I'm celiac so no bread", {("ALLERGIC_TO", "gluten", "intolerant")}),
    # a promotion, a home said with remote work, a new employer said after changing jobs
    ("just got promoted to senior engineer!", {("WORKS_AS", "senior engineer", "")}),
    ("I've been promoted to Senior Executive Producer with a 12% raise",  # BEAM
     {("WORKS_AS", "Senior Executive Producer", "")}),
    ("my sister got promoted to manager", set()), ("You got promoted to senior engineer!", set()),
    ("I'm a software engineer at Shopify, working remotely from Lisbon",
     {("WORKS_AS", "software engineer", ""), ("WORKS_AT", "Shopify", ""), ("LIVES_IN", "Lisbon", "")}),
    ("I work remotely from home", set()),
    ("I changed jobs, I'm at Stripe now", {("WORKS_AT", "Stripe", "")}), ("I'm at Costco now", set()),
    ("I'm gluten free btw", {("AVOIDS", "gluten", "")}), ("I'm dairy-free now", {("AVOIDS", "dairy", "")}),
    # chat's tails end a clause; a pet named in the next sentence; an adverb in a list of likings
    ("im vegan btw and i dont drink coffee", {("DIET", "vegan", ""), ("AVOIDS", "coffee", "")}),
    ("hi, I'm Ana lol", {("NAME", "Ana", "")}), ("I'm a nurse btw", {("WORKS_AS", "nurse", "")}),
    ("i got a puppy!! his name is waffles", {("HAS_PET", "Waffles", "puppy")}),
    ("I have a dog. His name is Rex", {("HAS_PET", "Rex", "dog")}),
    ("honestly i love anime, mostly jjk and one piece", {("LIKES", "anime", ""), ("LIKES", "jjk", ""),
                                                         ("LIKES", "one piece", "")}),
    ("I also love some classy Italian food, especially pasta.",  # BEAM
     {("LIKES", "some classy Italian food", ""), ("LIKES", "pasta", "")}),
    ("I'm married to Chris", {("PARTNER_OF", "Chris", "spouse"), ("RELATIONSHIP", "married", "")}),
    ("I got married to Sam in June", {("PARTNER_OF", "Sam", "spouse"), ("RELATIONSHIP", "married", "")}),
    ("I'm engaged to Priya!", {("PARTNER_OF", "Priya", "fiancé"), ("RELATIONSHIP", "engaged", "")}),
    ("I got married in June", {("RELATIONSHIP", "married", "")}), ("I married into a big family", set()),
    # where the user stands, without a name
    ("I'm married with two kids", {("RELATIONSHIP", "married", "")}),
    ("I just got engaged!!", {("RELATIONSHIP", "engaged", "")}), ("im single lol", {("RELATIONSHIP", "single", "")}),
    ("I'm in a long-distance relationship", {("RELATIONSHIP", "in a relationship", "")}),
    ("I'm in a relationship with Sam", {("RELATIONSHIP", "in a relationship", "")}),
    ("we're engaged!", {("RELATIONSHIP", "engaged", "")}), ("I'm widowed", {("RELATIONSHIP", "widowed", "")}),
    ("I'm not married", set()), ("I'm single-handedly running this", set()), ("I'm separated from my group", set()),
    ("I'm in a relationship with food", set()), ("my sister is married", set()), ("am I married?", set()),
    # another person's thing, or a pronoun, names nothing the profile can show
    ("They're hilarious and I love listening to them.", set()),
    ("I absolutely love his writing style", set()),
    ("I love your cooking, and I hate their music", set()),
    ("I like bubble teas of them too lol", {("LIKES", "bubble teas", "")}),
    ("I love all the x-men movies", {("LIKES", "x-men movies", "")}),
    ("honestly I like dogs better", {("LIKES", "dogs", "")}),
    ("I love all the way lol", set()),
    ("Oh I like both", set()),
    ("I love Smile Burger they have the best fries", {("LIKES", "Smile Burger", "")}),
    # run-on chat (REALTALK): the taste ends where the next clause begins, without a comma
    ("I love pistachios theyre green", {("LIKES", "pistachios", "")}),
    ("I like Smile Burger their food looks good in the game", {("LIKES", "Smile Burger", "")}),
    ("I love pizza i eat it every day", {("LIKES", "pizza", "")}),
    # a lone verb keeps its place ("staying" alone names nothing)
    ("I like staying at home drinking bubble tea", {("LIKES", "staying at home", "")}),
    ("Well I hate staying at home then!!!", {("DISLIKES", "staying at home", "")}),
    ("I love working from home lol", {("LIKES", "working from home", "")}),
    ("I love swimming", {("LIKES", "swimming", "")}), ("I like going in there", set()),
    ("I really can't stand loud music.", {("DISLIKES", "loud music", "")}),
    ("I don't really like horror movies but I love comedies.",
     {("DISLIKES", "horror movies", ""), ("LIKES", "comedies", "")}),
    ("I keep two cats, Miso and Tofu.", {("HAS_PET", "Miso", "cat"), ("HAS_PET", "Tofu", "cat")}),
    ("my three dogs named Rex, Bo and Kira love the park",
     {("HAS_PET", "Rex", "dog"), ("HAS_PET", "Bo", "dog"), ("HAS_PET", "Kira", "dog")}),
    ("We got 2 puppies: Bolt and Dash. I have 2 puppies, Bolt and Dash.",
     {("HAS_PET", "Bolt", "puppy"), ("HAS_PET", "Dash", "puppy")}),
    ("I'm allergic to peanuts, by the way.", {("ALLERGIC_TO", "peanuts", "")}),
    ("I am severely allergic to peanuts, shellfish and latex!",
     {("ALLERGIC_TO", "peanuts", ""), ("ALLERGIC_TO", "shellfish", ""), ("ALLERGIC_TO", "latex", "")}),
    ("I have an allergy to penicillin so be careful", {("ALLERGIC_TO", "penicillin", "")}),
    ("I have a severe shellfish allergy.", {("ALLERGIC_TO", "shellfish", "")}),
    ("Im allergic to bee stings and dust mites lol", {("ALLERGIC_TO", "bee stings", ""),
                                                     ("ALLERGIC_TO", "dust mites", "")}),
    ("I'm vegetarian now.", {("DIET", "vegetarian", "")}),
    # the list ends where a new clause begins (found trying the console: "Allergic to: peanuts, I'm vegetarian")
    ("I'm allergic to peanuts and I'm vegetarian.", {("ALLERGIC_TO", "peanuts", ""), ("DIET", "vegetarian", "")}),
    ("I'm allergic to dust and it really sucks", {("ALLERGIC_TO", "dust", "")}),
    ("I've been vegan for years", {("DIET", "vegan", "")}),
    ("I'm a vegetarian chef.", {("WORKS_AS", "vegetarian chef", "")}),  # a job, not a diet
    # students, as Discord's users say it (the console: "yo im Dev, ... uni student" gave no name)
    ("yo im Dev, 24, uni student", {("NAME", "Dev", "")}),
    ("I'm a comp sci student at Leeds", {("WORKS_AS", "comp sci student", ""), ("WORKS_AT", "Leeds", "")}),
    ("I study computer science at UCL", {("WORKS_AS", "computer science student", ""), ("WORKS_AT", "UCL", "")}),
    ("I'm studying comp sci at the University of Leeds",
     {("WORKS_AS", "comp sci student", ""), ("WORKS_AT", "University of Leeds", "")}),
    ("I'm doing a masters in physics", {("WORKS_AS", "physics student", "")}),
    ("im studying maths rn lol", {("WORKS_AS", "maths student", "")}),
    ("I study law here in Orlando", {("WORKS_AS", "law student", "")}),  # REALTALK
    ("I'm studying Korean", {("SPEAKS", "Korean", "learning")}),  # a language is learnt, not a degree
    ("I study hard", set()), ("I'm studying for exams", set()), ("I study at night", set()),
    ("im studying rn", set()), ("I'm studying SQLite query optimization", set()),  # BEAM: a topic, not a degree
    ("I'm a senior software engineer", {("WORKS_AS", "senior software engineer", "")}),
    ("I'm a really good teacher", set()),
    # chat without apostrophes reads as with them
    ("im allergic to peanuts", {("ALLERGIC_TO", "peanuts", "")}),
    ("i dont like mushrooms", {("DISLIKES", "mushrooms", "")}),
    ("i cant stand cilantro", {("DISLIKES", "cilantro", "")}),
    ("ive been vegan for years", {("DIET", "vegan", "")}),
    ("I love Jony Ive designs", {("LIKES", "Jony Ive designs", "")}),  # a name, not "I've"
    # all in lower case, a name is known by the cue before it
    ("my name is sam", {("NAME", "Sam", "")}), ("you can call me sam", {("CALLED", "Sam", "")}),
    ("i go by alex", {("CALLED", "Alex", "")}), ("my dog is called biscuit", {("HAS_PET", "Biscuit", "dog")}),
    ("i have a cat named mochi", {("HAS_PET", "Mochi", "cat")}),
    ("my sister's name is emma", {("SIBLING_OF", "Emma", "sister")}),
    ("my name is not important lol", set()), ("call me maybe", set()), ("my dog is named after my grandpa", set()),
    ("My name is sam", set()),  # capitals elsewhere: this writer would have written "Sam"
    # where the job is, when a place follows it
    ("hi! I'm Mara, I work as a nurse in Leeds", {("NAME", "Mara", ""), ("WORKS_AS", "nurse", "in Leeds")}),
    ("I'm a teacher in the Bronx", {("WORKS_AS", "teacher", "in Bronx")}),
    ("I work as a nurse in March", {("WORKS_AS", "nurse", "")}), ("I became a vet in 2019", {("WORKS_AS", "vet", "")}),
    ("I'm a nurse in A&E", {("WORKS_AS", "nurse", "")}),
    ("I'm not vegan anymore.", {("DIET", "no longer vegan", "")}),
    ("I'm no longer vegetarian, I eat fish now", {("DIET", "no longer vegetarian", "")}),
    ("I am not a vegetarian but I rarely eat meat", {("DIET", "not vegetarian", "")}),
    # jobs said other ways (found in the console: "since March I have been a paramedic" gave no job)
    ("I used to work as a nurse but since March I have been a paramedic.",
     {("WORKS_AS", "nurse", ""), ("WORKS_AS", "paramedic", "")}),  # the nurse job as over (the endings test)
    ("I've been a nurse for 10 years", {("WORKS_AS", "nurse", "")}),
    ("I became a vet last year", {("WORKS_AS", "vet", "")}),
    ("I got a job as a barista!", {("WORKS_AS", "barista", "")}),
    ("I'm working as a junior developer now", {("WORKS_AS", "junior developer", "")}),
    ("I started working as a delivery driver in May", {("WORKS_AS", "delivery driver", "")}),
    ("I work at Nubank as a data scientist.", {("WORKS_AT", "Nubank", ""), ("WORKS_AS", "data scientist", "")}),
    ("I'm a nurse at St Mary's.", {("WORKS_AS", "nurse", ""), ("WORKS_AT", "St Mary", "")}),
    # the employer after the job ("work as X at Y"), and new jobs (found chatting in the console)
    ("I work as a UX designer at Spotify", {("WORKS_AS", "UX designer", ""), ("WORKS_AT", "Spotify", "")}),
    ("I am working as a barista at Blue Bottle", {("WORKS_AS", "barista", ""), ("WORKS_AT", "Blue Bottle", "")}),
    ("I just started as a software engineer at Google", {("WORKS_AS", "software engineer", ""),
                                                         ("WORKS_AT", "Google", "")}),
    ("I got a new job as a chef at Nando's!", {("WORKS_AS", "chef", ""), ("WORKS_AT", "Nando", "")}),
    ("I got a job at Tesco", {("WORKS_AT", "Tesco", "")}),
    ("btw my sister Inês lives in Porto, and my brother is called Tomás",
     {("SIBLING_OF", "Inês", "sister"), ("SIBLING_OF", "Tomás", "brother")}),
    ("I have a brother named Tomás", {("SIBLING_OF", "Tomás", "brother")}),
    ("I've got an older sister called Ana", {("SIBLING_OF", "Ana", "sister")}),
    # an age in front of the relative, or after the name: theirs (AGE_OF, detail the person)
    ("I have a 7 year old son named Leo", {("CHILD_OF", "Leo", "son"), ("AGE_OF", "7", "leo")}),
    ("my 3-year-old daughter Mia loves it", {("CHILD_OF", "Mia", "daughter"), ("AGE_OF", "3", "mia")}),
    ("my 7 year old son is obsessed with dinosaurs", set()),
    ("my son is named Leo and my little brother Jim is 7",
     {("CHILD_OF", "Leo", "son"), ("SIBLING_OF", "Jim", "brother"), ("AGE_OF", "7", "jim")}),
    ("My step-mom is named Carla", {("PARENT_OF", "Carla", "mom")}),
    ("I've been working for Amazon since 2019", {("WORKS_AT", "Amazon", "")}),
    # introductions in BEAM's chats
    ("I'm Crystal, a TV/film producer in East Janethaven.", {("NAME", "Crystal", ""),
                                                            ("WORKS_AS", "TV/film producer", "in East Janethaven")}),
    ("I'm Darryl, a 60-year-old television/film producer, and I'm worried.",
     {("NAME", "Darryl", ""), ("WORKS_AS", "television/film producer", "")}),
    ("I'm Christina, a colour technologist.", {("NAME", "Christina", ""), ("WORKS_AS", "colour technologist", "")}),
    ("I'm Bo, a social worker from Leeds", {("NAME", "Bo", ""), ("WORKS_AS", "social worker", "")}),
])
def test_clear_self_statements_become_typed_statements(text: str, expected: set[tuple[str, str, str]]) -> None:
    assert said(text) == expected


@pytest.mark.parametrize("text", ["I'm sorry about that.", "I'm Going home now", "I like it", "I'm tired.",
                                  "Maria moved to Lisbon.", "what do you know about me?",
                                  "I hate to say it, but you were right.", "I don't like it when you do that.",
                                  "I hate being late.", "I love you and I hate you",
                                  "Her favourite food is pasta.", "My dog is allergic to chicken.",
                                  "I'm not allergic to anything.", "I have a food allergy.",
                                  "Is this vegan?", "I'm not vegetarian food.",
                                  "I am a former teacher.", "I'm a retired pilot", "I used to be a big fan of jazz",
                                  "I'm a teacher's assistant",
                                  "I'm a terrible cook.", "I'm an amateur photographer.",
                                  "I started as a joke at Christmas", "I started with Python at Uni",
                                  "my brother called Tom yesterday", "Another pose I love is the tree pose.",
                                  "nothing specific, mostly area I like or dislike", "I like ones that have ice cream"])
def test_no_statement_without_a_clear_self_statement(text: str) -> None:
    assert statements(text) == []


def test_sentence_openers_are_not_entities_but_names_at_sentence_start_are() -> None:
    assert entities("Certainly! I can help with that. Absolutely, let's go.") == []
    assert entities("Honestly, Paris was nicer than Rome. Sounds good!") == [("paris", "Paris"), ("rome", "Rome")]
    assert entities("Maria just moved to Lisbon.") == [("maria", "Maria"), ("lisbon", "Lisbon")]


def test_the_extractor_keeps_the_relation_in_its_statements() -> None:
    e = Exchange("e1", "ana", None, None, "My sister Maria just moved to Lisbon for a nursing job.",
                 "Good luck to Maria!", datetime(2024, 5, 1, tzinfo=UTC))
    x = DeterministicExtractor().extract_one(e)
    labels = {m.name: m.label for m in x.mentions if m.kind == "entity"}
    assert labels == {"maria": "Maria", "lisbon": "Lisbon"}
    assert [(s.predicate, s.obj, s.detail) for s in x.statements] == [("SIBLING_OF", "maria", "sister")]


def test_a_liked_or_disliked_phrase_is_a_fact_not_an_entity() -> None:
    e = Exchange("e2", "ana", None, None, "I love sea swimming but I can't stand loud music.", "Noted!",
                 datetime(2024, 5, 1, tzinfo=UTC))
    x = DeterministicExtractor().extract_one(e)
    assert {(s.predicate, s.obj) for s in x.statements} == {("LIKES", "sea swimming"), ("DISLIKES", "loud music")}
    assert [m.name for m in x.mentions if m.kind == "entity"] == []


def test_a_statement_carries_the_start_it_names_in_its_own_clause() -> None:
    now = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    found = {s.predicate: (s.label, s.since, s.since_unit) for s in statements(
        "Hi, I'm Priya! I moved to Manchester last month. I used to work as a nurse but since March "
        "I have been a paramedic, and I got a puppy called Biscuit two weeks ago.", now)}
    assert found == {
        "NAME": ("Priya", None, ""),  # a name has no start worth keeping
        "LIVES_IN": ("Manchester", datetime(2026, 11, 1, tzinfo=UTC), "month"),
        "WORKS_AS": ("paramedic", datetime(2026, 3, 1, tzinfo=UTC), "month"),
        "HAS_PET": ("Biscuit", datetime(2026, 11, 17, tzinfo=UTC), "day"),
    }
    # another clause's time is not this statement's, and without the time of saying nothing is dated
    [home] = statements("I moved to Leeds in 2019 and I work as a nurse.", now)[:1]
    [job] = [s for s in statements("I moved to Leeds in 2019 and I work as a nurse.", now) if s.predicate == "WORKS_AS"]
    assert (home.since, job.since) == (datetime(2019, 1, 1, tzinfo=UTC), None)
    assert all(s.since is None for s in statements("I moved to Leeds in 2019."))
    # a time in a clause that says nothing began is not the fact's start (both from BEAM's chats)
    for text in ("My partner Tanya is visiting Toronto in October for 10 days", "My partner David planned this "
                 "incredible surprise July 4 picnic", "I'm living in East Janethaven, and it's March 15, 2024"):
        [said] = statements(text, now)
        assert said.since is None, text


@pytest.mark.parametrize(("text", "expected"), [
    ("My cat Miso passed away last week.", {("HAS_PET", "miso", True)}),  # not a new pet "Miso"
    ("i dont have a cat anymore :(", {("HAS_PET", "*", True)}),
    ("Our dog passed away last week.", {("HAS_PET", "*", True)}),
    ("We lost our dog Rex in the spring.", {("HAS_PET", "rex", True)}),
    ("I lost my dog Rex at the park for an hour, so scary", {("HAS_PET", "rex", False)}),  # found again
    ("I broke up with my girlfriend Sara.", {("PARTNER_OF", "sara", True)}),
    ("My boyfriend broke up with me due to long distance.", {("PARTNER_OF", "*", True),
                                                              ("RELATIONSHIP", "*", True)}),
    ("Actually I don't live in Leeds anymore, I moved to York.", {("LIVES_IN", "leeds", True),
                                                                 ("LIVES_IN", "york", False)}),
    ("I'm not a nurse anymore.", {("WORKS_AS", "nurse", True)}),
    ("I quit my job at Google.", {("WORKS_AT", "google", True)}),
    ("I no longer work at Google.", {("WORKS_AT", "google", True)}),
    ("I quit my job as a barista", {("WORKS_AS", "barista", True)}),
    ("I was laid off, so now I work at Meta.", {("WORKS_AS", "*", True), ("WORKS_AT", "*", True),
                                                ("WORKS_AT", "meta", False)}),
    ("I retired last year", {("WORKS_AS", "*", True), ("WORKS_AT", "*", True)}),
    ("I'm retired now, finally", {("WORKS_AS", "*", True), ("WORKS_AT", "*", True)}),
    ("I'm currently unemployed", {("WORKS_AS", "*", True), ("WORKS_AT", "*", True)}),
    # a student's studies (the planner ends only a current student's job; tests/memory/test_understanding.py)
    ("I just graduated!!", {("WORKS_AS", "*", True), ("WORKS_AT", "*", True)}),
    ("I've finally finished uni", {("WORKS_AS", "*", True), ("WORKS_AT", "*", True)}),
    # ... and not a day's work (BEAM's and REALTALK's chats)
    ("I just finished my shift, getting out of work", set()), ("I finished school at 4 pm", set()),
    ("i finished uni for the day", set()),
    # what the user used to do or have is a past fact, not a current one
    ("I used to work as a nurse.", {("WORKS_AS", "nurse", True)}),
    ("I used to work as a nurse but since March I have been a paramedic.",
     {("WORKS_AS", "nurse", True), ("WORKS_AS", "paramedic", False)}),
    ("I used to live in the UK but now I live in Spain", {("LIVES_IN", "uk", True), ("LIVES_IN", "spain", False)}),
    ("I used to work at Google", {("WORKS_AT", "google", True)}),
    ("I used to have a dog named Rex", {("HAS_PET", "rex", True)}),
    ("I'm tired of my job", set()),
    ("My cat Miso loves boxes", {("HAS_PET", "miso", False)}),
    ("We broke up last month.", {("PARTNER_OF", "*", True), ("RELATIONSHIP", "*", True)}),
    ("I'm single again!", {("PARTNER_OF", "*", True), ("RELATIONSHIP", "single", False)}),
    ("we broke up, I'm single now", {("PARTNER_OF", "*", True), ("RELATIONSHIP", "single", False)}),
    ("I got divorced in 2020", {("PARTNER_OF", "*", True), ("RELATIONSHIP", "divorced", False)}),
    ("I moved to London from Paris two years ago.", {("LIVES_IN", "paris", True), ("LIVES_IN", "london", False)}),
    ("I've just moved here from Leeds", {("LIVES_IN", "leeds", True)}),
    ("My sister broke up with her boyfriend Tom", set()),  # someone else's
    ("We split up the bill and I retired the old laptop; I was fired up!", set()),  # not endings
    ("I'm not a doctor, but you should rest.", set()),  # a denial, not a job that ended
    ("I am no longer a teacher.", {("WORKS_AS", "teacher", True)}),
    ("I retired in 2019, and we separated two years ago.", {("WORKS_AS", "*", True), ("WORKS_AT", "*", True),
                                                           ("PARTNER_OF", "*", True)}),
    # a hobby given up (REALTALK's phrasings among them), and what is not one
    ("I stopped knitting", {("LIKES", "knitting", True)}), ("I gave up pottery", {("LIKES", "pottery", True)}),
    ("I quit playing chess", {("LIKES", "playing chess", True)}),
    ("I've given up knitting", {("LIKES", "knitting", True)}),
    ("I don't play the piano anymore", {("LIKES", "playing piano", True)}),
    ("I'm not really into podcasts or things like that but ok", {("LIKES", "podcasts", True)}),
    ("I’m not into pets myself but I do love animals", {("LIKES", "pets", True), ("LIKES", "animals", False)}),
    ("I stopped by the shop", set()), ("I gave up on him", set()), ("I stopped caring", set()),
    ("I stopped playing them.", set()), ("I'm not into it", set()),
])
def test_an_ending_is_a_statement_that_the_fact_is_over(text: str, expected: set[tuple[str, str, bool]]) -> None:
    found = statements(text, datetime(2026, 12, 1, tzinfo=UTC))
    assert {(s.predicate, s.obj, s.ended) for s in found} == expected
    assert [s.ended for s in found] == sorted((s.ended for s in found), reverse=True)  # endings come first


@pytest.mark.parametrize(("text", "expected"), [
    ("My birthday is on the 3rd of May!", ("05-03", "3 May")),
    ("I was born on May 3rd, 1990.", ("05-03", "3 May 1990")),
    ("my bday is 29 feb", ("02-29", "29 February")),
    ("It's my birthday today!", ("12-01", "1 December")),  # said on 1 December
    ("my birthday is tomorrow, can you believe it", ("12-02", "2 December")),
    ("Thanks its my birthday", ("12-01", "1 December")),
    ("its my birthday tomorrow", ("12-02", "2 December")),
    ("I was born on 12 May 1990 at 10:30", ("05-12", "12 May 1990")),
    # a day to come, said on Tuesday 1 December
    ("my birthday is on Friday!", ("12-04", "4 December")), ("my birthday is next Tuesday", ("12-08", "8 December")),
    ("it's my birthday on the 12th", ("12-12", "12 December")),
])
def test_a_birthday_is_one_fact_however_the_day_is_written(text: str, expected: tuple[str, str]) -> None:
    [said] = statements(text, datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    assert (said.predicate, said.obj, said.label) == ("BIRTHDAY", *expected)


@pytest.mark.parametrize("text", ["my birthday is 31 June", "My birthday is in May", "my birthday is soon",
                                  "it's my birthday next week", "It's my birthday party on Saturday",
                                  "My sister's birthday is on 3 May", "Her birthday is May 3",
                                  "my birthday is next week", "my birthday is coming up",
                                  "my birthday was last Friday"])
def test_no_birthday_without_a_real_day_of_the_users_own(text: str) -> None:
    assert statements(text, datetime(2026, 12, 1, tzinfo=UTC)) == []


def test_a_long_message_makes_a_bounded_number_of_statements_each_dated_by_its_own_neighbourhood() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    # thousands of distinct pets in one clause of ~200k characters: read once each, at most 40 kept
    names = [f"Ab{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}{chr(97 + i // 676 % 26)}" for i in range(15000)]
    found = statements("".join(f"my cat {n} " for n in names) + "since 2019", now)
    assert len(found) == 40 and [s.label for s in found] == names[:40]
    assert all(s.since is None for s in found)  # "since 2019" is 200k characters away, not their clause
    # the time named near a statement still dates it when the clause runs on without a full stop
    filler = "really " * 400
    [home] = statements(f"{filler}I moved to Leeds in 2019 {filler}", now)
    assert (home.label, home.since) == ("Leeds", datetime(2019, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(("text", "expected"), [
    ("I'm from Brazil originally", {("Brazil", "")}),
    ("I'm originally from the Philippines", {("Philippines", "")}),
    ("I was born in Glasgow but I grew up in Ohio", {("Glasgow", "born"), ("Ohio", "grew up")}),
    ("I'm from Los Angeles, born and raised.", {("Los Angeles", "")}),
    ("born and raised in Chicago!", {("Chicago", "born")}),
    ("I was born in Recife and grew up in Ohio", {("Recife", "born"), ("Ohio", "grew up")}),
    ("My dad was born in Italy and grew up in Ohio", set()),
    ("I come from Tirana, the capital city.", {("Tirana", "")}),
    # no place: a word in lower case, a time, someone else's origin
    ("I'm from work, sorry", set()), ("I was born in March", set()), ("I was born in 1990", set()),
    ("I come from a big family", set()), ("I grew up in a small town", set()), ("my mom is from Italy", set()),
    ("I'm away from London this week", set()),
])
def test_where_the_user_is_from(text: str, expected: set[tuple[str, str]]) -> None:
    found = statements(text)
    assert {(s.label, s.detail) for s in found if s.predicate == "FROM"} == expected
    assert {s.predicate for s in found} <= {"FROM", "LIVES_IN"}


@pytest.mark.parametrize(("text", "expected"), [
    ("I speak Spanish, French and a bit of German.", {("Spanish", ""), ("French", ""), ("German", "")}),
    ("I'm fluent in Dutch but I'm learning Japanese", {("Dutch", ""), ("Japanese", "learning")}),
    ("My native language is Polish", {("Polish", "native")}),
    ("I'm a native Spanish speaker", {("Spanish", "native")}),
    ("I speak English and I love it", {("English", "")}),
    ("I've been learning Korean for two years", {("Korean", "learning")}),
    ("I can speak ASL", {("ASL", "")}),
    ("I speak my mind", set()), ("I speak to my mom daily", set()), ("I don't speak French", set()),
    ("I'm learning to code", set()), ("Hi, I'm English", set()),
    # a start, a course, or a time after the language
    ("I started learning Japanese last month", {("Japanese", "learning")}),
    ("I've just begun to study Korean", {("Korean", "learning")}),
    ("I'm studying Spanish at uni", {("Spanish", "learning")}),
    ("I'm taking Italian lessons", {("Italian", "learning")}),
    ("I'm learning Spanish on Duolingo", {("Spanish", "learning")}),
    ("I'm taking cooking classes", set()), ("I'm studying for my exams", set()),
    ("I started studying medicine", set()), ("I started learning to code", set()),
])
def test_languages_spoken_and_learnt(text: str, expected: set[tuple[str, str]]) -> None:
    found = statements(text)
    assert {s.predicate for s in found} <= {"SPEAKS", "LIKES"}  # "learning to code" is a hobby
    assert {(s.label, s.detail) for s in found if s.predicate == "SPEAKS"} == expected
    assert not any(s.predicate == "LIKES" and s.label.split()[-1] in {"Japanese", "Korean", "Spanish", "Italian"}
                   for s in found)  # a language learnt is SPEAKS only


@pytest.mark.parametrize(("text", "expected"), [
    ("I have a job interview on Friday", {("job interview", "2026-12-04")}),
    ("Tomorrow I have a dentist appointment, ugh", {("dentist appointment", "2026-12-03")}),
    ("my exam is tomorrow!", {("exam", "2026-12-03")}),
    ("I've got a big presentation on the 12th", {("big presentation", "2026-12-12")}),
    ("I'm flying to Tokyo next week", {("trip to Tokyo", "2026-12-07")}),
    ("I'm moving to Leeds in March", {("move to Leeds", "2027-03-01")}),
    # past, no time, no event, or no count of things
    ("I had an exam on Friday", set()), ("I have a job interview", set()), ("I have a headache today", set()),
    ("I have a lot of tests next week", set()), ("I'm going to the gym tomorrow", set()),
    ("my exam was in March", set()), ("Do I have an exam tomorrow?", set()),
    # BEAM's users: the whole noun, and no plan in "I have to ..."
    ("I've got my first performance review scheduled for December 15", {("first performance review", "2026-12-15")}),
    ("I have finals next week", {("finals", "2026-12-07")}),
    ("I have to decline a dinner invitation on Sept 3", set()),
    ("I have a final submission deadline of 20 December", {("final submission deadline", "2026-12-20")}),
    # others come, we go, a job begins; the place stays in the label
    ("We're having a party on Friday night!", {("party", "2026-12-04")}),
    ("It's going good, I'm going to a concert today with my boyfriend", {("concert", "2026-12-02")}),  # REALTALK
    ("my flight to Berlin leaves on Sunday", {("flight to Berlin", "2026-12-06")}),
    ("we're going to Rome in March", {("trip to Rome", "2027-03-01")}),
    ("I start my new job at Google on Monday", {("new job at Google", "2026-12-07")}),
    ("I'll start my internship with Arup on the 12th", {("internship with Arup", "2026-12-12")}),
    ("my mom is visiting next week", {("mom's visit", "2026-12-07")}),
    ("My parents are coming to visit on Friday", {("parents' visit", "2026-12-04")}),
    ("I'm going to test it tomorrow", set()), ("I started my new job at Google last week", set()),
    ("my mom is visiting", set()), ("we're having a great time today", set()),
    # the user's people: named for them (with a name, see the next test)
    ("my best friend's getting married on the 12th", {("best friend's wedding", "2026-12-12")}),
    ("my son graduates in May", {("son's graduation", "2027-05-01")}),
    ("my wife is due in March!", {("wife's baby due", "2027-03-01")}),
    ("my sister is having a baby in April", {("sister's baby due", "2027-04-01")}),
    ("my dad is having surgery on Friday", {("dad's surgery", "2026-12-04")}),
    ("my daughter has a recital on Saturday", {("daughter's recital", "2026-12-05")}),
    ("my sister is expecting her first baby in May", {("sister's baby due", "2027-05-01")}),
    ("my sister is due to arrive tomorrow", set()), ("my mom is due back on Monday", set()),
    ("my wife is due in court tomorrow", set()), ("my wife is expecting a package tomorrow", set()),
    ("my brother got married last June", set()), ("my dad had surgery on Friday", set()),
    ("my sister is getting married", set()), ("my friend has a lot of exams next week", set()),
    ("my sister is having a great time in Paris next week", set()),
    # the user's own baby on the way
    ("my final exams start on December 14th", {("exams", "2026-12-14")}),
    ("we're going to Rome for Christmas", {("trip to Rome", "2026-12-25")}),
    ("my bf is having surgery on Friday", {("boyfriend's surgery", "2026-12-04")}),  # chat's words, spelt out
    ("my bestie is visiting next week", {("best friend's visit", "2026-12-07")}),
    ("I've been training for the Lisbon half marathon in March", {("Lisbon half marathon", "2027-03-01")}),
    ("I'm studying for my finals next week", {("finals", "2026-12-07")}),
    ("she is training for a marathon in May", set()), ("I'm training for the marathon", set()),
    ("I've been preparing for my interview from 7 to 8 PM, May 15-24", set()),  # BEAM: a daily slot, no day
    ("my exams are next week", {("exams", "2026-12-07")}), ("my exams are hard", set()),
    ("I'm due in March!", {("baby due", "2027-03-01")}),
    ("we're expecting our first baby in May", {("baby due", "2027-05-01")}),
    ("I'm due on the 14th", {("baby due", "2026-12-14")}), ("I'm due for a haircut next week", set()),
    ("I'm due in court tomorrow", set()), ("I'm due on stage tonight", set()),
    ("I'm expecting a package tomorrow", set()), ("I'm due back at work on Monday", set()),
    # put off: the new day, read after "to"
    ("my exam was moved from Monday to Friday", {("exam", "2026-12-04")}),
    ("the party got pushed back to Saturday", {("party", "2026-12-05")}),
    ("our trip got postponed until next month", {("trip", "2027-01-01")}), ("my exam was moved", set()),
])
def test_a_plan_with_a_time_to_come(text: str, expected: set[tuple[str, str]]) -> None:
    found = statements(text, datetime(2026, 12, 2, 15, tzinfo=UTC))  # a Wednesday
    assert {s.predicate for s in found} <= {"PLANS"}
    assert {(s.label, s.since.date().isoformat()) for s in found if s.since is not None} == expected
    assert not statements(text)  # without the time it was said, no plan can be dated


@pytest.mark.parametrize("text", ["my sister Anjali is getting married in June, I'm so excited",
                                  "My sister Anjali's wedding is in June"])
def test_a_plan_of_a_named_relative_carries_the_name_and_the_relative(text: str) -> None:
    found = {(s.predicate, s.label, s.since.date().isoformat() if s.since else None)
             for s in statements(text, datetime(2026, 12, 2, 15, tzinfo=UTC))}
    assert found == {("SIBLING_OF", "Anjali", None), ("PLANS", "sister Anjali's wedding", "2027-06-01")}


@pytest.mark.parametrize(("text", "expected"), [
    ("I don't eat pork", {("pork", None)}), ("i dont eat meat or fish", {("meat", None), ("fish", None)}),
    ("I don't eat meat, fish or eggs", {("meat", None), ("fish", None), ("eggs", None)}),
    ("we don't eat beef because of our religion", {("beef", None)}), ("I can't eat gluten", {("gluten", None)}),
    ("I avoid gluten and dairy", {("gluten", None), ("dairy", None)}), ("I've cut out sugar", {("sugar", None)}),
    ("I don't drink alcohol anymore", {("alcohol", None)}), ("I don't drink, never have", {("alcohol", None)}),
    ("I'm teetotal", {("alcohol", None)}), ("I'm 3 years sober", {("alcohol", None)}),
    # a stop is the rule's start, and its time counts
    ("I stopped eating meat in January", {("meat", "2026-01-01")}),
    ("I quit drinking in 2019", {("alcohol", "2019-01-01")}), ("I gave up meat 3 years ago", {("meat", "2023-01-01")}),
    ("I haven't eaten meat since 2015", {("meat", "2015-01-01")}),
    ("I've been sober for two years", {("alcohol", "2024-01-01")}),
    # a habit, not a rule; a thing not on the list; a wish; someone else
    ("I don't eat much meat", set()), ("I don't eat meat on weekdays", set()), ("I don't eat breakfast", set()),
    ("I don't drink enough water", set()), ("I don't drink and drive", set()),
    ("I never drink coffee after 5pm", set()), ("if I don't eat sugar I get cranky", set()),
    ("I gave up chocolate for lent", set()),
    ("my wife doesn't eat pork", set()), ("Im sober lol", set()),
])
def test_what_the_user_does_not_eat_or_drink(text: str, expected: set[tuple[str, str | None]]) -> None:
    found = [s for s in statements(text, datetime(2026, 12, 2, 15, tzinfo=UTC)) if s.predicate == "AVOIDS"]
    assert not any(s.ended for s in found)
    assert {(s.label, s.since.date().isoformat() if s.since else None) for s in found} == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("I eat meat again", {"meat"}), ("I started drinking again lol", {"alcohol"}),
    ("I've gone back to eating dairy again", {"dairy"}), ("I ate again after the fast", set()),
])
def test_eating_it_again_ends_the_rule(text: str, expected: set[str]) -> None:
    found = [s for s in statements(text) if s.predicate == "AVOIDS"]
    assert all(s.ended for s in found) and {s.label for s in found} == expected


@pytest.mark.parametrize(("text", "ages"), [
    ("my daughter Kavya is 4 and she loves dinosaurs", {("kavya 4", "4")}),
    ("my son Leo is 7 years old", {("leo 7", "7")}), ("my son Arjun just turned 8!", {("arjun 8", "8")}),
    ("My niece Natalie, who's 11, seems really interested", {("natalie 11", "11")}),  # BEAM
    ("my 3-year-old daughter Mia", {("mia 3", "3")}), ("I have a seven year old son named Leo", {("leo 7", "7")}),
    ("my 6-month-old son Leo", {("leo 6 months", "6 months")}),
    ("my son Leo is 1 month old", {("leo 1 month", "1 month")}),
    # a number that is no age, or no name to hang it on
    ("my son Leo is 5 minutes away", set()), ("my daughter Mia is 100% right", set()),
    ("my daughter Mia is 2.5", set()),
    ("my sister Ana is 30 weeks pregnant", set()), ("my kids are 4 and 7", set()), ("my daughter is 4", set()),
])
def test_a_named_persons_age_is_kept_for_them(text: str, ages: set[tuple[str, str]]) -> None:
    assert {(s.obj, s.label) for s in statements(text) if s.predicate == "AGE_OF"} == ages


@pytest.mark.parametrize(("text", "lost", "ends"), [
    ("my mother passed away last year, still hard", {("mother", "mother", "2025-01-01")},
     {("PARENT_OF", "*", "mother")}),
    ("my grandma Rose died in March", {("Rose", "grandma", "2026-03-01")}, {("RELATIVE_OF", "rose", "")}),
    ("I lost my dad to cancer in 2019", {("dad", "dad", "2019-01-01")}, {("PARENT_OF", "*", "dad")}),
    ("my late father was a sailor", {("father", "father", None)}, {("PARENT_OF", "*", "father")}),
    ("I lost my best friend Sam to cancer", {("Sam", "best friend", None)}, {("FRIEND_OF", "sam", "")}),
    # not a death, or not the user's person
    ("I lost my brother in the crowd", set(), set()), ("my phone died", set(), set()),
    ("my mom's plant died", set(), set()), ("my dad almost died", set(), set()),
    ("my friend's dog died", set(), set()), ("I'm afraid my grandma might die", set(), set()),
    ("I lost my best friend Sam last year", set(), set()),  # a falling-out, maybe: Sam stays a friend
])
def test_someone_who_died_is_kept_as_a_loss_and_leaves_the_users_people(
        text: str, lost: set[tuple[str, str, str | None]], ends: set[tuple[str, str, str]]) -> None:
    found = statements(text, datetime(2026, 12, 2, 15, tzinfo=UTC))
    assert {(s.label, s.detail, s.since.date().isoformat() if s.since else None)
            for s in found if s.predicate == "LOST"} == lost
    assert {(s.predicate, s.obj, s.detail) for s in found if s.ended} == ends


@pytest.mark.parametrize(("text", "expected"), [
    ("I no longer have asthma", {"asthma"}), ("I'm cancer-free!", {"cancer"}), ("I don't have diabetes.", {"diabetes"}),
    ("I don't have diabetes but my dad does", set()),
])
def test_a_condition_said_to_be_over_ends_it(text: str, expected: set[str]) -> None:
    found = statements(text)
    assert all(s.predicate == "HAS_CONDITION" and s.ended for s in found)
    assert {s.label for s in found} == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("My interview got cancelled.", {"interview"}), ("the party was canceled", {"party"}),
    ("I had to cancel my dentist appointment", {"dentist appointment"}), ("The concert is off", {"concert"}),
    ("I called off the wedding", {"wedding"}),
    ("the concert is off the charts", set()), ("my flight is off to a bad start", set()),
])
def test_a_plan_called_off_ends_it(text: str, expected: set[str]) -> None:
    found = statements(text, datetime(2026, 12, 2, 15, tzinfo=UTC))
    assert all(s.predicate == "PLANS" and s.ended for s in found)
    assert {s.label for s in found} == expected


@pytest.mark.parametrize(("text", "expected"), [
    # a user testing what the bot remembers asks; the question states nothing
    ("Do I like sushi?", set()), ("do I live in Paris or Lyon?", set()), ("Where do I work?", set()),
    ("do i have a dog named Rex?", set()), ("Why do I like sushi so much?", set()),
    # a statement inside a question, or after one, still counts
    ("Did I tell you I moved to Berlin?", {("LIVES_IN", "Berlin")}),
    ("I don't know, do I like it? I live in Porto", {("LIVES_IN", "Porto")}),
    # emphasis, and an age in front of a job
    ("I'm not into pets myself but I do love animals", {("LIKES", "pets"), ("LIKES", "animals")}),
    ("I do like to read", {("LIKES", "reading")}),
    ("I'm a 34-year-old nurse", {("WORKS_AS", "nurse"), ("AGE", "34")}),
])
def test_questions_about_oneself_state_nothing(text: str, expected: set[tuple[str, str]]) -> None:
    assert {(s.predicate, s.label) for s in statements(text)} == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("I'm 34", {"34"}), ("I am 27 years old.", {"27"}), ("im 19 lol", {"19"}), ("I'm 34 yo", {"34"}),
    ("I'm a 34-year-old nurse", {"34"}), ("I just turned 30 last week", {"30"}), ("I'm 30 today!", {"30"}),
    # BEAM's users say it in passing
    ("I'm kinda worried about my future, I'm 46 and earning about $85,000 annually", {"46"}),
    # a number that is not an age
    ("I'm 5 minutes away", set()), ("I'm 2 for 2", set()), ("I'm 100% sure", set()), ("I'm 6 feet tall", set()),
    ("I'm 87.5% toward my goal", set()), ("I'm 40 years into my career", set()), ("I'm 3 years sober", set()),
    ("I turned 30 degrees", set()), ("I'm 200", set()), ("I'm 1,000 miles away", set()),
])
def test_the_users_age(text: str, expected: set[str]) -> None:
    assert {s.label for s in statements(text) if s.predicate == "AGE"} == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("My hobbies are reading, hiking and baking.", {"reading", "hiking", "baking"}),
    ("my main hobby is knitting", {"knitting"}),
    ("My hobbies are chess and I also like to paint", {"chess", "painting"}),
    # "to" + a verb is the doing: the verb's -ing form, with what it takes
    ("In my free time I like to read", {"reading"}),
    ("I love to go hiking with my dog", {"hiking"}),
    ("I love to cook Italian food for my family", {"cooking Italian food"}),
    ("I like to swim when it's warm", {"swimming"}), ("I enjoy to bake", {"baking"}),
    ("I like to also do yoga after school", {"yoga"}),  # REALTALK
    ("I like to listen to music", {"listening to music"}),
    ("I took up pottery last year", {"pottery"}), ("I took up the guitar", {"guitar"}),
    ("I started learning the cello last March.", {"learning cello"}),
    ("I started playing chess in 2020", {"playing chess"}), ("I've been learning to code", {"learning to code"}),
    # wishes, manners of speaking, verbs without their object, and taking up anything else are none
    ("I'd like to go home", set()), ("I would love to visit Japan", set()), ("I love to hear that!", set()),
    ("I like to think I'm funny", set()), ("What do I like to do?", set()), ("I don't like to run", set()),
    ("I usually like to play better than my partner", set()),  # REALTALK: "playing" alone says nothing
    ("I took up the offer", set()), ("I took up too much of your time", set()),
    ("I'm learning a lot from you", set()),
])
def test_hobbies_are_likings(text: str, expected: set[str]) -> None:
    found = statements(text)
    assert {s.predicate for s in found} <= {"LIKES"}
    assert {s.label for s in found} == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("please never use emojis", "Never use emojis"),
    ("From now on, answer in Spanish.", "Answer in Spanish"),
    ("stop calling me buddy", "Stop calling me buddy"),
    ("I want you to always cite sources", "Always cite sources"),
    ("Could you always reply in bullet points?", "Always reply in bullet points"),
    ("Hi! Always use metric units. I live in Leeds.", "Always use metric units"),
    # as BEAM's users give them (its plan marker is a sentence of its own)
    ("Always include data encryption details when I ask about data privacy. ->-> 2,23",
     "Always include data encryption details when I ask about data privacy"),
])
def test_a_standing_instruction_to_the_bot_is_a_statement(text: str, expected: str) -> None:
    assert [s.label for s in statements(text) if s.predicate == "INSTRUCTS"] == [expected]


@pytest.mark.parametrize("text", ["Never said you were lol but glad you see it", "Always a fun experience",
                                  "Don't worry about it", "Don't be afraid to experiment",
                                  "Make sure to rest and drink plenty of fluids",
                                  "I think I can always use summaries if I get lost", "Do you always use emojis?",
                                  "Stop gameplay and pick character abilities"])
def test_no_instruction_without_one(text: str) -> None:
    assert [s for s in statements(text) if s.predicate == "INSTRUCTS"] == []


@pytest.mark.parametrize(("text", "about"), [
    ("ok you can use emojis again", "emojis"),
    ("Forget what I said about emojis.", "emojis"),
    ("no need to cite sources anymore", "sources"),
    ("you don't have to answer in Spanish anymore lol", "spanish"),
    ("ignore my earlier instruction about the date format", "date format"),
])
def test_an_instruction_is_taken_back_by_what_it_was_about(text: str, about: str) -> None:
    assert [(s.predicate, s.obj, s.ended) for s in statements(text)] == [("INSTRUCTS", about, True)]
