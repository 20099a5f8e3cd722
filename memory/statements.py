"""Clear self-statements, found by rules: "I'm Ana", "I live in Lyon", "my sister Maria".

The deterministic half of the understanding layer: what a user plainly says
about themselves becomes a ``Statement`` (a typed relation from the user to a
name), which the graph keeps as a fact with a validity period. Only the user's
own message is read, and only patterns that leave little doubt; anything
vaguer is left to the LLM extractor when one is configured.
"""

from __future__ import annotations

import bisect
import re
from datetime import datetime, timedelta

from memory.models import ANY_OBJECT, STUDENT, Statement
from memory.timeq import MONTH_WORDS, Began, began, month_number, upcoming

# A name: capitalised words (any cased script), optionally joined by a few connectors.
_NAME = r"(?P<name>(?-i:[^\W\d_a-z][\w'’\-]*(?:[ ](?:de |da |van |von |del |la |le )?[^\W\d_a-z][\w'’\-]*){0,3}))"
# A job named after "I'm a ...": one of these nouns, with at most one word in front ("software
# engineer") that does not say it is not the job now ("former", "retired", "aspiring") or judge
# rather than name it ("a terrible cook", "an amateur photographer").
_JOBS = """
engineer developer teacher nurse doctor designer student lawyer chef cook baker writer manager accountant
programmer scientist artist musician pilot architect pharmacist electrician plumber journalist photographer
researcher consultant librarian firefighter farmer mechanic dentist therapist paramedic surgeon vet
veterinarian midwife carpenter barista bartender waiter waitress cashier driver translator interpreter tutor
professor lecturer analyst intern freelancer receptionist secretary clerk realtor hairdresser barber cleaner
banker economist editor actor actress dancer singer painter illustrator animator coach trainer nanny
caregiver carer counselor counsellor psychologist psychiatrist physiotherapist physician optician surveyor
builder welder technician administrator tester entrepreneur officer soldier salesperson recruiter
producer director technologist specialist coordinator executive planner strategist marketer supervisor
inspector worker dev streamer youtuber
""".split()
_JOB = (r"(?P<phrase>(?:(?!(?:former|retired|ex|aspiring|future|wannabe|would-be|failed|terrible|bad|good|great|"
        r"decent|awful|amazing|huge|big|little|horrible|lousy|keen|avid|amateur|hobby|natural|born|real|total) )"
        r"[a-z]+(?:/[a-z]+)? ){0,2}(?:"  # "nurse", "night nurse", "comp sci student"
        + "|".join(_JOBS) + "))")
# A short lower-case noun phrase: a job or an interest.
_PHRASE = r"(?P<phrase>[a-z][a-z'’\- ]{1,40}?)"
_END = (r"(?=\s*(?:[.,!?;:()]|\band\b|\bbut\b|\bso\b|\bnow\b|\bsince\b|\bfor\b|\bwith\b|\bat\b|\bin\b|\bfrom\b|"
        r"\bany ?more\b|\bthese days\b|\blately\b|\blast\b|\bthis\b|"
        r"\byesterday\b|\btoday\b|\brecently\b|\bagain\b|\btoo\b|\beither\b|\bthough\b|\banyway\b|"
        r"\b(?:btw|lol|haha|tbh|ngl|fyi|lmao)\b|$))")  # chat's tails: "im vegan btw"

# Where a liked or disliked thing ends: besides a clause's end, the words that go on to say how much
# or why ("I love badminton the most", "I love nyquil it knocks me out", "tea especially ginger tea").
_TASTE_END = _END[:-2] + (r"|\b(?:it|it's|it’s|its|they|they're|they’re|theyre|he|he's|she|she's|"
                          r"their(?= [a-z]+ (?:is|are|was|were|looks?|tastes?|seems?)\b)|"
                          r"i|i'm|i’m|im|"
                          r"especially|even|every ?time|when|whenever|because|cause|cuz|"
                          r"lol|haha|lmao|the most|very much|so much|a lot|more|than|if|as well|which|that|while|"
                          r"whereas)\b))")
# A taste starts with the thing, not with "is", "or" or "more" ("Another pose I love is the tree pose",
# "anything I like or dislike"), and an adverb or "called" in front is not part of it.
_TASTE = (r"(?:(?:actually|probably|definitely|honestly|obviously|easily|called|hands down) )?"
          r"(?!(?:is|was|are|were|or|even|more|about|most|much|than|because|if|whatever|anything|everything|"
          r"something|nothing|ones?|stuff|things)\b)" + _PHRASE)
# Words a taste cut short may leave dangling: "adding lots of honey to make (it sweet)", "cloudy days
# as long as (it doesn't rain)"
_TASTE_TAIL = re.compile(r"(?:\s+(?:of|to|as|long|like|where|the|a|an|make|some|get|be|better))+$", re.I)
# "all the x-men movies" are x-men movies
_TASTE_ALL = re.compile(r"^all (?:the |of the )?(?=\S)", re.I)
# A taste that ends on a pronoun names nothing the profile can show ("I love listening to them");
# "bubble teas of them" is bubble teas.
_TASTE_OF_THEM = re.compile(r"\s+of (?:them|those|these|it)$", re.I)
# A lone verb needs its place: "I like staying at home" is "staying at home", not "staying".
_LONE_GERUND = re.compile(r"[a-z]+ing", re.I)
_GERUND_PLACE = re.compile(r"\s+(?:at|in|on|from|with) (?:(?:the|a|an|my|our) )?(?!(?:the|a|an|my|our)\b)[a-z]+"
                           r"(?=\s|[.,!?;:]|$)", re.I)
# Where a job is: "I work as a nurse in Leeds", "I'm a teacher in the Bronx" (not "in March", "in 2019")
_JOB_PLACE = re.compile(r"\s+in (?:the )?" + _NAME + r"(?![&\w])")
_TASTE_PRONOUN = re.compile(r"\b(?:them|him|her|it|that|this|those|these|you|me|us|there|here)$", re.I)

_FAMILY = {
    "sister": "SIBLING_OF", "brother": "SIBLING_OF", "sibling": "SIBLING_OF",
    "mom": "PARENT_OF", "mum": "PARENT_OF", "mother": "PARENT_OF", "dad": "PARENT_OF", "father": "PARENT_OF",
    "son": "CHILD_OF", "daughter": "CHILD_OF", "kid": "CHILD_OF",
    "wife": "PARTNER_OF", "husband": "PARTNER_OF", "partner": "PARTNER_OF", "girlfriend": "PARTNER_OF",
    "boyfriend": "PARTNER_OF", "fiance": "PARTNER_OF", "fiancee": "PARTNER_OF", "fiancé": "PARTNER_OF",
    "friend": "FRIEND_OF", "best friend": "FRIEND_OF", "colleague": "FRIEND_OF", "coworker": "FRIEND_OF",
    # the rest of the family, and the people around the user: "my grandma Rose", "my roommate Dev"
    **dict.fromkeys(("grandma", "grandpa", "grandmother", "grandfather", "granny", "grandson", "granddaughter",
                     "aunt", "auntie", "uncle", "cousin", "niece", "nephew", "mother-in-law", "father-in-law",
                     "sister-in-law", "brother-in-law", "grandparent"), "RELATIVE_OF"),
    **dict.fromkeys(("roommate", "flatmate", "housemate", "teammate", "classmate", "neighbour", "neighbor",
                     "mentor", "boss"), "FRIEND_OF"),
    # chat's short forms, kept as the word they stand for
    "gf": "PARTNER_OF", "bf": "PARTNER_OF", "hubby": "PARTNER_OF", "wifey": "PARTNER_OF", "bff": "FRIEND_OF",
    "bestie": "FRIEND_OF",
}
_ROLE_WORDS = {"gf": "girlfriend", "bf": "boyfriend", "hubby": "husband", "wifey": "wife", "bff": "best friend",
               "bestie": "best friend", "auntie": "aunt", "granny": "grandma"}
_PETS = ("dog", "cat", "puppy", "kitten", "parrot", "rabbit", "hamster", "horse", "turtle", "fish",
         "bird", "beagle", "labrador", "poodle", "terrier", "retriever", "snake", "lizard", "guinea pig")
# Words that follow "I'm" with a capital letter but are not names.
_NOT_NAMES = frozenset("""
i im going so very really just not also back home here there fine good ok okay sure sorry glad happy
tired excited from in at on the a an from english french german spanish italian american british
it that this these those to your you them him her when how what my our doing being having
his their its ur all both way
""".split())

# "my pronouns are she/her", "I use they/them pronouns", "pronouns: he/him", "I go by he/they"
_PRONOUN_SET = (r"(?:she|he|they|xe|ze|ey|fae|it|any)"
                r"(?:/(?:her|hers|him|his|them|theirs|they|she|he|xem|zir|em|faer|its|it|any))+|any pronouns")
_PRONOUNS = re.compile(r"(?:(?:\bmy pronouns (?:are|r)|(?:^|[.!?\n(]\s*)pronouns ?(?::|=|-)?|\bi (?:use|go by))\s+"
                       r"|\bi(?:'m|’m| am) [^.!?()\n]{1,40}\()"  # "I'm Sam (he/him)"
                       r"(?P<phrase>" + _PRONOUN_SET + r")(?![\w/])", re.I)

# What the user plays, as a liking: "I play the piano", "I play football on Sundays", "I mostly play
# Valorant". Only instruments, sports and games by name, so "I play with my dog" is none.
_PLAYABLE = """
guitar piano drums violin bass cello ukulele flute saxophone sax trumpet clarinet harp keyboard banjo
football soccer basketball tennis chess volleyball badminton golf hockey cricket rugby baseball softball
handball netball squash pickleball padel darts pool snooker poker bridge frisbee lacrosse
""".split()
_PLAYS = re.compile(r"\bi (?:also |really |still |mostly |mainly |usually |often |sometimes )?play "
                    r"(?:(?:the|some|a lot of|lots of) )?(?:(?P<phrase>" + "|".join(_PLAYABLE) + r")\b|"
                    + _NAME + r"(?P<of>(?-i: of(?: [^\W\d_a-z][\w'’\-]*)+))?" + _TASTE_END + ")", re.I)

# Hobbies, as likings. "I like to paint" is "painting" and "I love to go hiking" "hiking"; verbs that
# say how one thinks or talks ("I like to think", "I'd like to", "I love to hear that") are none.
_LIKES_TO = re.compile(
    r"\bi (?:really |absolutely |just |also |still |truly |usually |do )?(?:love|like|enjoy|adore) to "
    r"(?:(?:also|just|really|always|usually|sometimes|often|occasionally|still|even|actually) )?"
    r"(?:go (?=[a-z]+ing\b))?(?P<verb>(?!(?:also|just|really|always|usually|sometimes|often|occasionally|still|"
    r"even|actually|think|believe|say|know|imagine|pretend|assume|hope|keep|make|be|have|"
    r"get|see|let|ask|tell|mention|point|remind|hear|call|help|add|share|check|try|start|give|put|note|"
    r"clarify|stress|emphasi[sz]e|remember|consider|understand|admit|confess|agree|inform|warn|stay|avoid|"
    r"wait|joke|talk|chat|speak|answer|reply|respond|confirm|explain|use|go)\b)[a-z]+)"
    r"(?P<rest>(?: (?!(?:and|or|but|so|because|cause|when|whenever|with|for|at|in|on|every|while|if|then|than|"
    r"i|it|it's|as|after|before|during|once|sometimes|too|lol|haha|a lot|more|most|whenever|since|now|though|"
    r"these|this|that|which|where|to be|by|them|em|those|myself|yourself|ourselves|you|me|us)\b)"
    r"[a-z'’\-]+){0,3})(?![\w'’\-])", re.I)
# ... and a verb that needs its object says nothing alone ("I like to play with them", "I love to watch")
_NEEDS_OBJECT = frozenset("play watch listen learn eat visit take make buy find try drink build collect do".split())
# "my hobbies are reading, hiking and baking", "my main hobby is knitting", "my hobbies include chess"
_HOBBY_LIST = re.compile(r"\bmy (?:main |favou?rite |new |current |only |other |biggest )?hobb(?:y|ies)"
                         r"(?: (?:is|are|include|includes|would be|these days are)|:) "
                         r"(?P<items>[a-z][a-z'’\- ,]{1,120}?)(?=\s*(?:[.!?;:)(]|$|\bbut\b|\bso\b|\bbecause\b|"
                         r"\bwhen\b|\bi\b|\bi'm\b|\bwhich\b|\bthough\b|\bnow\b|\blately\b|\bthese days\b))", re.I)
# "I took up pottery last year", "I started learning the cello", "I've been learning to code"
_TOOK_UP = re.compile(r"\bi(?:'ve|’ve| have)? (?:just |recently |finally |also )?(?:took|taken|take) up "
                      r"(?!(?:a|an|his|her|their|your|our|too|so|all|most|much|more|space|time|residence|arms|that|this|"
                      r"it|them|him|me|the (?:offer|challenge|role|position|job|case|matter|issue|topic|idea|"
                      r"invitation|slack|rest|space|time|cause|fight))\b)" + _TASTE + _TASTE_END, re.I)
_LEARNING = re.compile(
    r"\bi(?:(?:'m|’m| am|'ve been|’ve been| have been) (?:currently |also |still |now |slowly )?learning|"
    r"(?:'ve|’ve| have)? (?:just |recently |finally |also )?(?:started|began|begun) "
    r"(?:learning|playing|practi[sc]ing)) "
    r"(?P<phrase>(?!(?:a lot|so much|more|much|from|that|this|it|new things|things|stuff|something|what|a few|"
    r"lots|loads)\b)(?:to |how to )?[a-z][a-z'’\- ]{1,40}?)" + _TASTE_END, re.I)


def _gerund(verb: str) -> str:
    """The -ing form of a hobby's verb: paint -> painting, bake -> baking, swim -> swimming, ski -> skiing."""
    v = verb.lower()
    if v.endswith("ing") and len(v) > 4:
        return v
    if v.endswith("ie"):
        return v[:-2] + "ying"
    if v.endswith("e") and not v.endswith(("ee", "ye", "oe")) and len(v) > 2:
        return v[:-1] + "ing"
    if re.fullmatch(r"[^aeiou]*[aeiou][bdgklmnprt]", v):  # one short vowel before the last consonant
        return v + v[-1] + "ing"
    return v + "ing"


# The user's age: "I'm 34", "I am 27 years old", "I'm a 34-year-old nurse", "I just turned 30". The number
# must end the clause or be said to be years: "I'm 5 minutes away", "I'm 2 for 2", "I'm 100% sure" are none.
_AGE_END = r"(?=\s*(?:[.,!?;:)]|$|\b(?:and|but|so|now|too|today|lol|haha|btw|though|myself|already|soon)\b))"
_AGES = [
    re.compile(r"\bi(?:'m|’m|m| am) (?:now |only |just |almost |nearly |about |already )?(?P<age>\d{1,3})(?![.,]?\d|%)"
               r"(?: ?(?:years?|yrs?) old\b| ?(?:yo|y/o|y\.o\.)" + _AGE_END + "|" + _AGE_END + ")", re.I),
    re.compile(r"\bi(?:'m|’m|m| am) an? (?P<age>\d{1,3})(?![.,]?\d|%)[- ](?:years?|yr)[- ]old\b", re.I),
    re.compile(r"\bi (?:just |recently |finally |only )?turned (?P<age>\d{1,3})(?![.,]?\d|%)"
               r"(?! ?(?:minutes?|hours?|days?|weeks?|months?|degrees?|times?|pages?|pounds?|lbs|kg|cm)\b)", re.I),
]
AGE_RANGE = range(10, 111)  # ages taken as said; a number outside is something else


# Plans with a time to come: "I have a job interview on Friday", "my exam is tomorrow", "I'm flying to
# Tokyo next week", "I'm moving to Leeds in March". The event must be one of these and its clause must
# name a time that has not passed; "I had an exam on Friday" and "I have a cat" are none.
_EVENTS = ("interview|appointment|exam|test|meeting|date|party|wedding|flight|trip|concert|game|match|surgery|"
           "operation|presentation|deadline|recital|performance|competition|tournament|race|marathon|audition|"
           "graduation|ceremony|check-?up|class|lesson|vacation|holiday|dinner|reunion|show|gig|festival|conference|"
           "hearing|finals|midterms?|quiz|shift|session|visit|anniversary|birthday party|funeral|procedure|scan|"
           "review")
# up to three words in front ("job interview", "mock interview with"... stops at the noun), none of them a
# little word ("I have to decline a dinner invitation" plans nothing), and a second noun that goes with it
# ("performance review", "dinner invitation")
_EVENT = (r"(?P<phrase>(?!(?:an? )?(?:lot|bunch|couple|few|ton|load)s? of )"
          r"(?:(?!(?:a|an|the|to|of|for|with|and|or|my|your|his|her|their|our|this|that|it)\b)[a-z'’\-]+ ){0,3}?"
          r"(?:" + _EVENTS + r")(?:e?s)?(?: (?:review|session|deadline|appointment|meeting|call|interview|party|"
          r"ceremony|invitation|draft|submission|exam|test)s?)?)\b(?!['’-])")
_KIN = "|".join(sorted(map(re.escape, _FAMILY), key=len, reverse=True))
_WE_ARE = r"\b(?:i(?:'m|’m| am)|we(?:'re|’re| are))"
_THEIR = r"\bmy (?P<kin>" + _KIN + r")(?: " + _NAME + r")?"  # "my sister", "my sister Anjali"
# a baby on the way: "due" or "expecting" alone counts only before a month, a count of weeks or a day of the
# month ("I'm due in March"; not "I'm due for a haircut", "I'm due in court", "I'm due on stage tonight",
# "I'm expecting a package tomorrow"); with the baby named, before any time ("we're having our first baby")
_BABY_DUE = (r"(?:(?:due|expecting)(?= (?:in|around|at the end of|early|late|mid-?) (?:" + MONTH_WORDS
             + r")\b| (?:in (?:\d+|a|one|two|three|four|five|six|seven|eight|nine|a few|a couple of) (?:weeks?|"
             r"months?)|next (?:week|month)|on (?:the )?\d+(?:st|nd|rd|th)?)\b)|(?:expecting|having) "
             r"(?:a|our|my|their|his|her) (?:first |second |third |fourth )?(?:baby|child|little one)\b)")
_PLANS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bi(?: have|(?:'ve|’ve| have) got)(?: (?:a|an|my|the|another|this|that|some|two|three|big))? "
                + _EVENT, re.I), ""),
    # "my exam is on Monday", "my flight to Berlin leaves on Sunday" (the place stays in the label)
    (re.compile(r"\bmy (?:big |next |first |final )?" + _EVENT + r"(?P<where> (?:to|in|at|with) " + _NAME
                + r")? (?:is|are|will be|leaves|starts?|begins?)\b", re.I), ""),
    # "we're having a party on Friday", "I'm going to a concert on Saturday": with a determiner, so that
    # "I'm going to test it tomorrow" is no test
    (re.compile(_WE_ARE + r" (?:having|hosting|throwing|attending|going to|off to|heading to|seeing) "
                r"(?:a|an|my|our|the|this|that|his|her|their) " + _EVENT, re.I), ""),
    (re.compile(_WE_ARE + r" (?:flying|going|travell?ing|driving|heading|leaving|off) (?:to|for) (?:the )?"
                + _NAME, re.I), "trip to "),
    (re.compile(_WE_ARE + r" (?:moving|relocating) to (?:the )?" + _NAME, re.I), "move to "),
    # "I start my new job at Google on Monday", "I'm starting an internship with Arup next week"
    (re.compile(r"\bi(?:'m|’m| am| will|'ll|’ll)? (?:start|starting|begin|beginning) (?:my|a|an) "
                r"(?P<phrase>(?:new |first )?(?:job|position|role|internship|apprenticeship))"
                r"(?P<where> (?:at|with) " + _NAME + r")?", re.I), ""),
    # "I'm training for the Lisbon half marathon in March", "I've been studying for my finals next week"
    (re.compile(r"(?:" + _WE_ARE + r"|\bi(?:'ve|’ve| have) been) (?:training|preparing|prepping|studying|revising|"
                r"rehearsing|practi[sc]ing) for (?:a|an|my|the|this|that|our|his|her|their) " + _EVENT, re.I), "ahead"),
    # "my mom is visiting next week", "my parents are coming to visit on Friday"
    (re.compile(r"\bmy (?P<kin>" + _KIN + r"|parents|grandparents|in-laws|cousins?|(?:best )?friends?) "
                r"(?:is|are) (?:visiting|coming (?:over|to visit|to stay|home))\b", re.I), "visit"),
    # a baby on the way: "I'm due in March", "we're expecting our first baby in May"
    (re.compile(_WE_ARE + " " + _BABY_DUE, re.I), "baby"),
    # what the user's people have coming, named for them: "my sister Anjali is getting married in June"
    # (sister Anjali's wedding), "my son graduates in May", "my wife is due in March"
    (re.compile(_THEIR + r"(?:(?: is|'s|’s) (?:(?P<does>getting married|graduating)|(?P<baby>" + _BABY_DUE + r"))"
                r"| (?P<did>gets married|graduates))\b", re.I), "their"),
    # "my dad is having surgery on Friday", "my daughter has a recital on Saturday"
    (re.compile(_THEIR + r"(?:(?: is|'s|’s) having (?:(?:a|an|his|her|their) )?| has (?:got )?(?:a|an|his|her|their) )"
                + _EVENT, re.I), "their"),
]
_THEIRS = {"getting married": "wedding", "gets married": "wedding", "graduating": "graduation",
           "graduates": "graduation"}
# A plan put off keeps its name and takes the new day: "my exam was moved to Friday", "the party got pushed
# back to Saturday" (the day is read after "to", so "from Monday to Friday" is Friday)
_PLAN_MOVED = re.compile(r"\b(?:my|the|our) (?:big |next |first |final )?" + _EVENT + r" (?:got|was|has been|'s been"
                         r"|’s been|is being|is) (?:moved|postponed|pushed|rescheduled|changed|delayed|put off|bumped)"
                         r"(?: back)?(?: from [^.!?,;]{1,30}?)?(?= (?:to|until|till|for)\b)", re.I)


_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bmy name(?:'s| is)\s+" + _NAME, re.I), "NAME"),
    (re.compile(r"(?:^|[.!?,]\s*|\b(?:hi|hello|hey|hiya|heya|yo|howdy)\b,?\s*)(?:i'm|i’m|i am)\s+"
                + _NAME + _END, re.I), "NAME"),
    # "yo, name's Kai", "Hi! The name's Ana"
    (re.compile(r"(?:^|[.!?,]\s*|\b(?:hi|hello|hey|hiya|heya|yo|howdy|sup)\b,?\s*)(?:the )?name(?:'s|’s)\s+"
                + _NAME, re.I), "NAME"),
    (re.compile(r"\b(?:call me|you can call me|please call me|i (?:usually )?go by)\s+" + _NAME, re.I), "CALLED"),
    (re.compile(r"\b(?:i|and)(?: (?:now |currently |still )?(?:live|am living)|(?:'m|’m) living|"
                r"(?:'ve|’ve| have) (?:been living|lived)) in\s+(?:the )?" + _NAME, re.I),
     "LIVES_IN"),
    (re.compile(r"\b(?:i|we)(?:'ve|’ve| have)? (?:just |recently |finally )?(?:moved|relocated) to\s+(?:the )?"
                + _NAME, re.I), "LIVES_IN"),
    # "I work remotely from Lisbon", "working remotely from Lisbon"
    (re.compile(r"\b(?:i (?:now |currently )?work|(?:i(?:'m|’m| am) )?(?:now |currently )?working) "
                r"(?:remotely|from home) (?:from|in)\s+(?:the )?" + _NAME, re.I), "LIVES_IN"),
    (re.compile(r"\b(?:i|and) (?:now |currently )?work (?:(?:from home|remotely|part[- ]time|full[- ]time|"
                r"freelance|nights) )?as (?:an? )?" + _PHRASE + _END, re.I), "WORKS_AS"),
    # "I work at Nubank as a data scientist" (the employer is the WORKS_AT rule's)
    (re.compile(r"\bi (?:now |currently )?work (?:at|for) [^.!?,;:]{1,60}? as (?:an? )?" + _PHRASE + _END, re.I),
     "WORKS_AS"),
    (re.compile(r"\bi(?:(?:'m|’m| am) (?:now |currently )?working|(?:'ve|’ve| have) been working|"
                r" (?:just |recently )?(?:got a (?:new )?job|started working|started a new job|started work))"
                r" as (?:an? )?" + _PHRASE + _END, re.I), "WORKS_AS"),
    (re.compile(r"\bi(?:'m|’m| am|(?:'ve|’ve| have) been| (?:just |recently |finally )?became)"
                r" (?:now |currently |still |also )?an? (?:\d{1,3}[- ]year[- ]old )?" + _JOB + _END, re.I), "WORKS_AS"),
    # "I'm Crystal, a TV/film producer", "I'm Darryl, a 60-year-old television/film producer"
    (re.compile(r"\bi(?:'m|’m| am) " + _NAME.replace("?P<name>", "?:") + r", an? (?:\d{1,3}[- ]year[- ]old )?"
                + _JOB + _END, re.I), "WORKS_AS"),
    (re.compile(r"\bi (?:now |currently )?work (?:at|for)\s+" + _NAME, re.I), "WORKS_AT"),
    # "just got promoted to senior engineer!", "I was promoted to head nurse last month"
    (re.compile(r"(?:^|[.!?]\s*|\bi (?:just |finally |recently )?|\bi(?:'ve|’ve| have) (?:just |finally )?been )"
                r"(?:just |finally |recently )?(?:got |was |been )?promoted to (?:an? )?" + _JOB + _END, re.I),
     "WORKS_AS"),
    # "I changed jobs, I'm at Stripe now", "new job! I'm with Arup now" (alone, "I'm at Costco now" is a place)
    (re.compile(r"\b(?:changed|switched|new) jobs?\b[^.!?]{0,20}?\bi(?:'m|’m| am) (?:now )?(?:at|with|working for) "
                r"(?:the )?" + _NAME, re.I), "WORKS_AT"),
    # "I work as a UX designer at Spotify", "I got a job at Google", "I'm working for Arup now",
    # "I just started as a tester at Stripe" (a bare "started" only with "as": not "I started at Easter")
    (re.compile(r"\bi(?:(?: (?:now |currently )?work|(?:'m|’m| am) (?:now |currently )?working|(?:'ve|’ve| have) "
                r"been working| (?:just |recently |finally )?(?:got a (?:new )?job|landed a job|started working|"
                r"started a new job|started work))(?: as (?:an? )?[a-z][a-z'’\-/ ]{1,40}?)?"
                r"| (?:just |recently |finally )?started as an? " + _JOB.replace("?P<phrase>", "?:") + ") (?:at|for) "
                + _NAME, re.I), "WORKS_AT"),
    # "I just started as a software engineer at Stripe" (a bare "started" needs a job noun)
    (re.compile(r"\bi (?:just |recently |finally )?started as an? " + _JOB + _END, re.I), "WORKS_AS"),
    # "I'm a nurse at St Mary's" (the job is the rule above's)
    (re.compile(r"\bi(?:'m|’m| am|(?:'ve|’ve| have) been) (?:now |currently |still )?an? " + _JOB + r" (?:at|for) "
                + _NAME, re.I), "WORKS_AT"),
    (re.compile(r"\bi (?:really |absolutely |just |do |also |still |(?:also |still |really )?do )?"
                r"(?:love|like|enjoy|adore)\s+" + _TASTE + _TASTE_END, re.I),
     "LIKES"),
    (re.compile(r"\bmy (?:all[- ]time |absolute )?favou?rite (?:[a-z]+(?: [a-z]+)?) (?:is|has to be)\s+"
                r"(?:" + _NAME + "|" + _TASTE + ")" + _TASTE_END, re.I), "LIKES"),
    # "I'm really into bouldering", "I am into skiing while my brother likes to snowboard", "I'm obsessed
    # with Taylor Swift"
    (re.compile(r"\bi(?:'m|’m|m| am) (?:really |very |so |super |totally |also |big |kinda |kind of |a bit )?"
                r"(?:into|obsessed with)\s+(?:" + _NAME + "|" + _TASTE + ")" + _TASTE_END, re.I), "LIKES"),
    # "I'm a big fan of desserts", "I am a huge fan of the Lions" (found in REALTALK's chats)
    (re.compile(r"\bi(?:'m|’m|m| am) (?:a |an )?(?:(?:big|huge|massive|great|real|long-time|longtime) )?fan of\s+"
                r"(?:(?:the )?" + _NAME + "|" + _TASTE + ")" + _TASTE_END, re.I), "LIKES"),
    # "I'm a huge Arsenal fan", "I'm a big football fan"
    (re.compile(r"\bi(?:'m|’m|m| am) (?:a |an )?(?:(?:big|huge|massive|great|real|long-time|longtime|die-hard|"
                r"diehard|total) )?(?:" + _NAME + r"|(?P<phrase>(?!(?:not|no|never|such|a|an|the|big|huge|fan|of)\b)"
                r"[a-z]+(?: (?!(?:a|an|the|fan)\b)[a-z]+)?)) fan\b", re.I), "LIKES"),
    # "I have a severe shellfish allergy" ("allergic to a, b and c" is _ALLERGIES)
    (re.compile(r"\bi (?:have|got) (?:an? )?(?:severe |bad |mild |serious )?(?P<phrase>(?!food )[a-z]+(?: [a-z]+)?) "
                r"allerg(?:y|ies)\b", re.I), "ALLERGIC_TO"),
    # "I'm vegetarian", "I am a vegan now", "I've been pescatarian for years"
    (re.compile(r"\bi(?:'m|’m|m| am|'ve been|’ve been| have been) (?:now |still |strictly |fully |mostly )?"
                r"(?:an? )?(?P<phrase>vegetarian|vegan|pescatarian|pescetarian|plant-based|lacto-vegetarian|"
                r"ovo-vegetarian|flexitarian)" + _END, re.I), "DIET"),
    (re.compile(r"\bi (?:really |absolutely |just |truly |kind of |kinda )?(?:hate|dislike|detest|loathe|"
                r"can't stand|can’t stand|cannot stand|(?:don't|don’t|do not) (?:really )?like)\s+"
                + _TASTE + _TASTE_END, re.I), "DISLIKES"),
]
# in front of a relative: "older", "step-", and an age ("my 3-year-old daughter Mia", "a 7 year old son named Leo")
_AGE_WORDS = ("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
              "seventeen").split()
_KIN_AGE = (r"(?:(?P<kage>\d{1,2}|" + "|".join(_AGE_WORDS) + r")[- ](?P<kunit>year|yr|month|week)s?[- ]old )?"
            r"(?:(?:older|younger|little|big|baby|twin|eldest|oldest|youngest) |(?:step|half)-? ?)?")
# "my sister Maria", "my little brother's name is Tom", "my son is called Leo" (not "my brother called
# Tom": that is a phone call)
_RELATIVE = re.compile(r"\bmy " + _KIN_AGE + r"(?P<role>" + _KIN + r")(?:'s name is|'s called| is called| is named"
                       r"|,)?\s+" + _NAME, re.I)
# A named person's age, kept per person (AGE_OF, object "mia 3"): "my daughter Kavya is 4", "my son Leo is 7 years
# old", "my son Arjun just turned 8", "My niece Natalie, who's 11", and the age in front ("my 3-year-old
# daughter Mia"). A newer age of the same person replaces the older one.
_KIN_AGED = re.compile(r"\bmy " + _KIN_AGE.replace("?P<kage>", "?:").replace("?P<kunit>", "?:") + r"(?P<role>"
                       + _KIN + r"),? " + _NAME + r",? (?:is|(?:just )?turned|who is|who's|who’s) "
                       r"(?:now |only |just |almost )?(?P<age>\d{1,2})(?![.,]?\d|%)"
                       r"(?: ?(?P<unit>years?|yrs?|months?|weeks?) old\b|" + _AGE_END + ")", re.I)
# "I have a brother named Tomás", "I've got an older sister called Ana"
_NAMED_RELATIVE = re.compile(r"\bi(?: have|(?:'ve|’ve| have) got) an? " + _KIN_AGE + r"(?P<role>" + _KIN
                             + r")(?:,| named| called)\s+" + _NAME, re.I)
_PET = re.compile(r"\b(?:my|our) (?:\w+ )?(?P<role>" + "|".join(_PETS) + r")(?:'s name is| is called| named|,)?\s+"
                  + _NAME, re.I)
_PLURAL_PETS = {("puppies" if p == "puppy" else p if p == "fish" else p + "s"): p for p in _PETS}
_ONE_NAME = r"(?-i:[^\W\d_a-z][\w'’\-]*)"
# "I have two cats, Miso and Tofu", "my three dogs named Rex, Bo and Kira"
_PET_GROUP = re.compile(r"\b(?:(?:i|we) (?:have|keep|own|got|adopted)|my|our) (?:(?:two|three|four|five|2|3|4|5) )?"
                        r"(?:\w+ )?"
                        r"(?P<role>" + "|".join(sorted(map(re.escape, _PLURAL_PETS), key=len, reverse=True))
                        + r")\b(?:,| (?:named|called)|:)?\s+(?P<names>" + _ONE_NAME
                        + r"(?:(?:,\s*|,?\s+and\s+)" + _ONE_NAME + r"){1,4})", re.I)
# "my kids Lily and Max", "we have two daughters, Amy and Beth", "my best friends Ben and Jess"
_PLURAL_KIN = {"kids": "kid", "children": "kid", "sons": "son", "daughters": "daughter", "sisters": "sister",
               "brothers": "brother", "siblings": "sibling", "friends": "friend", "cousins": "cousin",
               "roommates": "roommate", "flatmates": "flatmate", "housemates": "housemate",
               "grandparents": "grandparent", "nieces": "niece", "nephews": "nephew"}
_KIN_GROUP = re.compile(r"\b(?:(?:i|we) (?:have|(?:'ve|’ve|have) got)|my|our) (?:(?:two|three|four|five|2|3|4|5) )?"
                        r"(?:\w+ )?"
                        r"(?P<role>" + "|".join(_PLURAL_KIN) + r")\b(?:,| (?:named|called|are called|are named)|:)?"
                        r"\s+(?P<names>" + _ONE_NAME + r"(?:(?:,\s*|,?\s+and\s+)" + _ONE_NAME + r"){1,4})", re.I)
# "I'm married to Chris", "I got married to Sam in June", "I'm engaged to Priya"
_MARRIED = [
    (re.compile(r"\bi(?:'m|’m| am) (?:happily |now )?married to\s+" + _NAME, re.I), "spouse"),
    (re.compile(r"\bi (?:just |recently |finally )?(?:got )?married (?:to )?" + _NAME, re.I), "spouse"),
    (re.compile(r"\bi(?:'m|’m| am| just got| got) (?:now )?engaged to\s+" + _NAME, re.I), "fiancé"),
]
# Where the user stands in love, one status at a time: "I'm married", "I just got engaged", "I'm single",
# "we got divorced last year", "I'm in a relationship"; not "I'm not married", "I'm single-handedly ...",
# "I'm separated from my group" or "I'm single minded about it"
_STATUS_END = r"(?=\s*(?:[.,!?;:)]|$|\b(?:and|but|so|now|to|with|since|for|again|too|lol|haha|though|myself)\b))"
_RELATIONSHIP = [
    re.compile(r"\bi(?:'m|’m|m| am) (?:now |happily |recently |newly |still |currently |just )?(?P<status>married|"
               r"engaged|single|divorced|separated|widowed)(?![-'’])" + _STATUS_END, re.I),
    re.compile(r"\b(?:i|we) (?:just |recently |finally |officially )?got (?P<status>married|engaged|divorced)\b", re.I),
    re.compile(r"\bwe(?:'re|’re| are) (?:now |officially |happily )?(?P<status>married|engaged)" + _STATUS_END, re.I),
    re.compile(r"\bi(?:'m|’m|m| am) (?P<status>in an? (?:(?:happy|serious|long[- ]distance|new|committed) )?"
               r"relationship)(?! with (?-i:[a-z]))" + _STATUS_END, re.I),  # with Sam, not "with food"
]
# the next pet of a list: "a cat called Noodle and a dog named Biscuit"
_PET_MORE = re.compile(r"\s*(?:,\s*(?:and\s+)?|\s+and\s+)an? (?:\w+ )?(?P<role>" + "|".join(_PETS)
                       + r")\b(?: (?:named|called)|,)\s+" + _NAME, re.I)
# "Miso, Tofu and Bo": the names of a group, one by one
_NAMES_SPLIT = re.compile(r",\s*(?:and\s+)?|\s+and\s+")
_NAMED_PET = re.compile(r"(?<!_ )(?<!\byou )\b(?:adopted|got|have) an? (?:\w+ )?(?P<role>" + "|".join(_PETS)
                        + r")\b(?:[^.!?]{0,40}?\b(?:named|called|(?:his|her|its) name is)|[.!? ]{1,4}(?:his|her|its) "
                        r"name(?:'s|’s| is)) (?:him |her |it )?" + _NAME, re.I)  # "i got a puppy!! his name is waffles"


# "I'm allergic to peanuts, shellfish and latex", "I have an allergy to penicillin"
_ALLERGIES = re.compile(r"\bi(?:(?:'m|’m|m| am) (?:[a-z]+ intolerant,? and )?"  # "I'm lactose intolerant and allergic"
                        r"(?:very |severely |really |badly |mildly |quite |also |a bit )?allergic"
                        r"| (?:have|got) (?:an? )?(?:severe |bad |mild |serious )?allerg(?:y|ies)) to\s+"
                        r"(?P<items>[a-z][a-z'’\- ,]{0,80}?)(?=\s*(?:[.!?;:)(]|$|\bbut\b|\bso\b|\bwhich\b|"
                        r"\bthough\b|\bsince\b|\btoo\b|\bas well\b))", re.I)
# "I'm not vegan anymore", "I'm no longer vegetarian": a diet too, which closes the old one
_NOT_DIET = re.compile(r"\bi(?:'m|’m|m| am) (?P<neg>not|no longer) (?:an? )?(?P<diet>vegetarian|vegan|pescatarian|"
                       r"pescetarian|plant-based)(?P<more> any ?more)?(?=\s*(?:[.,!?;:)]|\band\b|\bbut\b|\bso\b|"
                       r"\bsince\b|\bfor\b|\bthough\b|\banyway\b|\bnow\b|$))", re.I)
# What the user does not eat or drink, kept beside the diet (AVOIDS, several at once): "I don't eat pork",
# "I stopped eating meat in January", "I gave up alcohol", "I don't drink", "I avoid gluten", "I've been sober
# for two years". From a closed list, so "I don't eat breakfast" and "I don't drink enough water" are none;
# a word of how much or when ("I don't eat much meat", "I don't eat meat on weekdays") makes it a habit,
# not a rule, and none either. "I eat meat again", "I started drinking again" end one.
_AVOIDABLE = (r"(?:red meat|meat|pork|beef|lamb|chicken|fish|seafood|shellfish|dairy|eggs?|gluten|sugar|"
              r"refined sugar|alcohol|booze|caffeine|coffee|soda|carbs|junk food|fast food|animal products)")
_AVOID_NAMES = {"egg": "eggs", "booze": "alcohol"}
# where a rule ends: its clause, or a reason, or a list of more of them ("meat or fish")
_AVOID_END = (r"(?=\s*(?:[.,!?;:)]|$|\b(?:and|or|nor|any ?more|at all|because|cause|since|for|so|but|either|now|"
              r"these days|though|lol|haha|ever|too|myself|personally)\b))")
_AVOID_STOPPED = (r"(?=\s*(?:[.,!?;:)]|$|\b(?:and|or|nor|because|cause|since|for|so|but|now|lol|haha|"
                  r"in|on|last|this|a|an|after|when|years?|months?|weeks?|ago|\d+|two|three|four|five|six)\b))")
_AVOIDS: list[re.Pattern[str]] = [
    re.compile(r"(?<!\bif )\b(?:i|we) (?:(?:don't|don’t|do not|never|no longer|can't|can’t|cannot|won't|won’t) "
               r"(?:really |even |ever )?(?:eat|drink|touch|consume)|(?:try to |strictly |completely )?avoid) "
               r"(?:any )?(?P<item>" + _AVOIDABLE + r")\b" + _AVOID_END, re.I),
    re.compile(r"\bi(?:'ve|’ve| have)? (?:just |recently |finally |completely )?(?:stopped|quit|gave up|given up|"
               r"cut out) (?:eating |drinking |consuming )?(?P<item>" + _AVOIDABLE + r")\b" + _AVOID_STOPPED, re.I),
    # "I'm gluten free", "I'm dairy-free now"
    re.compile(r"\bi(?:'m|’m| am) (?:now |also |completely |strictly )?"
               r"(?P<item>gluten|dairy|sugar|alcohol|meat|caffeine)[- ]free\b", re.I),
    re.compile(r"\bi (?:haven't|haven’t|have not) (?:eaten|had|touched|drunk|drank) (?:any )?(?P<item>" + _AVOIDABLE
               + r")\b(?= (?:since|in|for) )", re.I),
    # drinking, said alone, is alcohol: "I don't drink", "I quit drinking in 2019", "I'm teetotal"
    re.compile(r"(?<!\bif )\bi(?: (?:don't|don’t|do not|never|no longer) drink(?! and drive)" + _AVOID_END
               + r"|(?:'ve|’ve| have)? (?:just |recently |finally )?(?:stopped|quit|gave up|given up) drinking"
               + _AVOID_STOPPED + r"|(?:'m|’m| am) (?:now |also |completely )?(?:teetotal|tee-total|a teetotaller|"
               r"a teetotaler)\b|(?:'m|’m| am) (?:\d+|one|two|three|four|five|six|seven|eight|nine|ten) "
               r"(?:days?|weeks?|months?|years?) sober\b|(?:'ve|’ve| have) been sober (?:for|since)\b)", re.I),
]
_AVOID_STOPPING = re.compile(r"\b(?:stopped|quit|gave up|given up|cut out|sober)\b", re.I)
_AVOID_MORE = re.compile(r"(?:\s*,\s*(?:or\s+|and\s+)?|\s+(?:or|and|nor)\s+)(?:any\s+)?(?P<item>" + _AVOIDABLE
                         + r")\b" + _AVOID_END, re.I)
_AVOID_ENDING = re.compile(r"\bi(?:'m|’m| am|'ve|’ve| have)? (?:just |finally |recently )?(?:started |begun |began |"
                           r"gone back to |went back to )?(?:eat|eating|drink|drinking) (?:some )?(?P<item>"
                           + _AVOIDABLE + r")?\s*again\b", re.I)
# A standing instruction to the bot, one sentence: "Always format dates as Month Day, Year when I ask
# about deadlines", "please never use emojis", "From now on, answer in Spanish", "stop calling me
# buddy", "I want you to always cite sources". The verb must be one an answer can do, so "Never said
# you were lol", "Always a fun experience" and "Don't worry" are none.
_ANSWER_VERBS = (r"include|provide|use|format|answer|reply|respond|give|write|confirm|highlight|report|specify|"
                 r"keep|mention|add|list|show|explain|tell|call|remind|ask|speak|talk|address|summari[sz]e|cite|"
                 r"quote|double-check|check|state|note|send|put|start|end|begin|finish|avoid|break|make|be|refer|"
                 r"say|spell|convert|round|translate|sign|greet|suggest|recommend|offer|correct|reference|show")
_STOP_FORMS = (r"using|calling|adding|sending|saying|writing|giving|asking|suggesting|recommending|mentioning|"
               r"apologi[sz]ing|correcting|telling|replying|responding|answering|being|putting|ending|starting")
_INSTRUCTION = re.compile(
    r"^(?:(?:ok(?:ay)?|also|and|btw|oh|hey|hi|one more thing)[,!:]?\s+)?(?:please,?\s+)?"
    r"(?:(?P<now>from now on|going forward|in (?:the )?future|for future (?:answers|replies)),?\s+)?"
    r"(?:please,?\s+)?(?:(?:can|could|would) you (?:please )?|i (?:want|need|would like|'d like|’d like) you to )?"
    r"(?P<body>(?:(?:always|never|don't ever|don’t ever|do not ever|don't|don’t|do not)(?: again)?\s+"
    r"(?!be (?:afraid|shy|sorry|scared|nervous|so hard|too hard|hard)\b)(?:" + _ANSWER_VERBS + r")"
    r"|stop\s+(?:" + _STOP_FORMS + r")|(?(now)(?:" + _ANSWER_VERBS + r")|(?!)))\b"
    r"[^.!?\n]{2,190})[.!?]*$", re.I)
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")
# An instruction taken back, by what it was about: "you can use emojis again", "forget what I said
# about emojis", "no need to cite sources anymore". The planner closes the open instructions that
# contain every word of it.
_UNINSTRUCT = re.compile(
    r"\b(?:you can (?:" + _ANSWER_VERBS + r") (?P<a>[^.!?\n]{2,60}?) again\b"
    r"|(?:forget|ignore|scrap|drop|cancel|disregard) (?:what i (?:said|told you)|my (?:earlier |previous |last |old )?"
    r"(?:instruction|request|rule)s?) (?:about|on|regarding) (?P<b>[^.!?\n,]{2,60})"
    r"|(?:there's |there is )?no need to (?:always )?(?:" + _ANSWER_VERBS + r") (?P<c>[^.!?\n]{2,60}?)"
    r" any ?more\b|you (?:don't|don’t|do not) (?:have|need) to (?:always )?(?:" + _ANSWER_VERBS + r") "
    r"(?P<d>[^.!?\n]{2,60}?) any ?more\b)", re.I)

# Predicates whose labels come from a closed list of their own (languages, diets: "not vegan", statuses:
# "in a relationship", conditions: "high blood pressure"), not from free text, so the filter of words that
# are no names ("not", "english", "in") does not apply to them.
_OWN_LISTS = frozenset({"SPEAKS", "DIET", "RELATIONSHIP", "HAS_CONDITION", "AVOIDS"})
_LIST_SPLIT = re.compile(r"\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+")
_CLAUSE_STARTS = frozenset("i i'm im i’m i've i’ve i'd my we we're it it's he she they you that this there "
                           "which who so but also".split())
# The rest of a list of tastes: "I love hiking, swimming and rock climbing", "I like lychee and mango too".
# Each item is one to three words that end the clause or the list; a name only after "and" ("San Diego,
# California" is one place); no new clause, aside or verb ("..., and I'd be thrilled", "wow", "and can").
_NOT_TASTE_ITEMS = ("and|or|then|especially|not|more|even|stuff|things|everything|anything|other|lots|etc|much|"
                    "many|wow|omg|yes|yeah|no|oh|ok|okay|well|maybe|such|everytime|every|sometimes|always|often|"
                    "usually|really|just|so|very|can|could|would|wouldn't|wouldnt|will|won't|do|does|did|don't|dont|"
                    "am|is|are|was|were|be|been|have|has|had|get|got|want|need|love|like|hate|enjoy|"
                    + "|".join(map(re.escape, sorted(_CLAUSE_STARTS, key=len, reverse=True))))
_TASTE_MORE = re.compile(r"(?:\s*,\s*(?:(?P<and>and|&)\s+)?|\s+(?P<and2>and|&)\s+)"
                         r"(?:(?:mostly|mainly|especially|particularly|including) )?(?!(?:" + _NOT_TASTE_ITEMS
                         + r")\b)(?P<item>[a-z][a-z'’\-]*(?: (?!(?:" + _NOT_TASTE_ITEMS + r")\b)[a-z][a-z'’\-]*){0,2}?)"
                         r"(?=\s*(?:[.!?;:),]|$|\b(?:and|or|too|a lot|lol|haha|so much|especially|for|in|on|at|with|"
                         r"from|as well|more|though|also|but)\b))", re.I)
# an item that ends the list ("peanuts, by the way") or names no allergen ("a food allergy")
# Intolerances, kept beside the allergies (detail "intolerant"): "I'm lactose intolerant", "I'm
# intolerant to gluten", "I have coeliac disease" (gluten)
_INTOLERANT = re.compile(r"\bi(?:'m|’m| am) (?:also |very |severely |a bit |slightly )?(?P<a>lactose|gluten|fructose|"
                         r"histamine|dairy|wheat|soy|egg) intolerant\b|\bi(?:'m|’m| am) (?:also )?intolerant to "
                         r"(?P<b>lactose|gluten|fructose|histamine|dairy|wheat|soy|eggs?)\b|"
                         r"\bi (?:have|got) (?P<c>c(?:o)?eliac)(?: disease)?\b|"
                         r"\bi(?:'m|’m| am) (?:a )?(?P<d>c(?:o)?eliac)\b", re.I)
# A lasting health condition the user says they have, from a closed list (so "I have a cold", "I have a
# meeting" and "I have a problem" are none): "I have type 1 diabetes", "I was diagnosed with ADHD last
# year", "I suffer from migraines", "I'm asthmatic". Anxiety and depression said "about" something are a
# mood, not a condition. "I no longer have asthma", "I'm cancer-free" end one.
_CONDITION_WORDS = (r"(?:type (?:1|2|one|two|i|ii) )?diabetes|asthma|epilepsy|adhd|(?-i:ADD)|autism|dyslexia|dyspraxia|"
                    r"crohn'?s(?: disease)?|ulcerative colitis|ibs|pcos|endometriosis|(?:rheumatoid )?arthritis|"
                    r"high blood pressure|hypertension|migraines|(?:chronic )?anxiety|(?:chronic )?depression|ocd|"
                    r"ptsd|bipolar(?: disorder)?|fibromyalgia|lupus|multiple sclerosis|(?-i:MS)|"
                    r"chronic fatigue(?: syndrome)?|"
                    r"long covid|tinnitus|insomnia|sleep apnea|sleep apnoea|eczema|psoriasis|cancer|"
                    r"(?:a )?heart condition|hypothyroidism|an underactive thyroid|scoliosis|sickle cell(?: disease)?|"
                    r"cystic fibrosis|hiv|hearing loss|(?:color|colour) ?blindness|glaucoma")
_CONDITION = re.compile(r"(?<!\bif )(?<!\bthink )(?<!\bwhether )(?<!\bmaybe )\bi(?: have| (?:'ve|’ve| have) got"
                        r"|(?:'ve|’ve| have) had| suffer from| live with| (?:was|got|(?:'ve|’ve| have) been) "
                        r"diagnosed with)(?: (?:mild|severe|bad|chronic|really bad|diagnosed))? "
                        r"(?P<cond>" + _CONDITION_WORDS + r")\b(?!['’-]| (?:about|over|because|when|before|meds|"
                        r"medication)\b)", re.I)
_CONDITION_MORE = re.compile(r"(?:,? and|,|&) (?:(?:mild|severe|bad|chronic) )?(?P<cond>" + _CONDITION_WORDS
                             + r")\b(?!['’-])", re.I)  # "I have depression and anxiety"
_CONDITION_AS_WORD = {"diabetic": "diabetes", "asthmatic": "asthma", "epileptic": "epilepsy", "autistic": "autism",
                      "dyslexic": "dyslexia", "dyspraxic": "dyspraxia", "colorblind": "colour blindness",
                      "colourblind": "colour blindness", "color blind": "colour blindness",
                      "colour blind": "colour blindness"}
_CONDITION_AS = re.compile(r"\bi(?:'m|’m|m| am) (?:also |a |type (?:1|2) )?(?P<cond>" + "|".join(_CONDITION_AS_WORD)
                           + r")\b", re.I)
_CONDITION_ACRONYMS = frozenset({"adhd", "add", "ibs", "pcos", "ocd", "ptsd", "ms", "hiv"})
_NOT_ALLERGENS = frozenset({"by the way", "btw", "i think", "apparently", "unfortunately", "sadly", "lol", "haha",
                            "though", "anyway", "food", "seasonal", "some", "several", "many", "few", "things",
                            "stuff", "everything", "anything", "nothing", "it", "that", "this", "them"})


# A birthday: "3 May", "the 3rd of May", "May 3rd", each with a year or not.
_BIRTH_DATE = (rf"(?:the )?(?:(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?(?: of)? (?P<m1>{MONTH_WORDS})\.?|"
               rf"(?P<m2>{MONTH_WORDS})\.? (?:the )?(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?)(?:,? (?P<y>(?:19|20)\d\d))?")
_BIRTHDAY = re.compile(r"\b(?:my (?:birthday|bday|b-day) is|i was born)(?: on)? " + _BIRTH_DATE + r"(?![\w:])",
                       re.I)
# "it's my birthday (today)", but not "it's my birthday next week" or "it's my birthday party"
_BIRTHDAY_NOW = re.compile(r"\b(?:it's|it’s|its|it is|today is|today's|today’s) my (?:birthday|bday)"
                           r"(?: (?P<rel2>today|tomorrow)\b|\b"
                           r"(?!'|’|\s+(?:next|on|in|this|soon|coming|later|party|parties|dinner|cake|gift|"
                           r"present|week|weekend|month|celebration|plans?|trip|wish|list|yet|eve)\b))|"
                           r"\bmy (?:birthday|bday) is (?P<rel>today|tomorrow)\b", re.I)
# "my birthday is on Friday", "it's my birthday next Tuesday": a day to come, read by ``upcoming`` (a week or a
# month, "my birthday is next week", names no day)
_BIRTHDAY_AHEAD = re.compile(r"\b(?:my (?:birthday|bday) is|(?:it's|it’s|its|it is) my (?:birthday|bday))"
                             r"(?= (?:on|this|next|coming|in)\b)", re.I)
_MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
                "October", "November", "December")


# Languages: "I speak Spanish and a bit of French", "I'm fluent in German", "my native language is
# Polish", "I'm a native Spanish speaker", "I'm learning Japanese" (detail "native" / "learning").
_LANGUAGES = frozenset("""
english spanish french german italian portuguese dutch swedish norwegian danish finnish icelandic polish czech
slovak hungarian romanian bulgarian greek turkish russian ukrainian serbian croatian bosnian slovenian albanian
lithuanian latvian estonian arabic hebrew persian farsi urdu hindi bengali punjabi tamil telugu marathi gujarati
kannada malayalam nepali sinhala chinese mandarin cantonese japanese korean vietnamese thai indonesian malay
tagalog filipino swahili amharic yoruba igbo hausa zulu xhosa afrikaans catalan basque galician welsh irish
gaelic latin esperanto asl bsl
""".split())
_LANGUAGE_LIST = (r"(?P<items>[A-Za-z][A-Za-z ,]{1,80}?)(?=\s*(?:[.!?;:)(]|$|\bbut\b|\bso\b|\bat\b|\bwith\b|"
                  r"\bsince\b|\bfor\b|\bin\b|\bevery\b|\bdaily\b|\bbecause\b|\bnow\b|\btoo\b|\bas well\b|"
                  r"\bfluently\b|\bwell\b|\bat home\b|\blast\b|\bthis\b|\bnext\b|\brecently\b|\blately\b|"
                  r"\byesterday\b|\btoday\b|\bonline\b|\bagain\b|\bafter\b|\bbefore\b|\bwhen\b|\bwhile\b|"
                  r"\bon\b|\bfrom\b|\btwo\b|\bthree\b|\bfew\b|\bseveral\b))")
_SPEAKS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bi (?:also |can |can also )?speak (?:some |a little |a bit of |basic |fluent )?" + _LANGUAGE_LIST,
                re.I), ""),
    (re.compile(r"\bi(?:'m|’m| am) (?:also )?fluent in " + _LANGUAGE_LIST, re.I), ""),
    (re.compile(r"\bmy (?:native|first|mother) (?:language|tongue) is " + _LANGUAGE_LIST, re.I), "native"),
    (re.compile(r"\bi(?:'m|’m| am) a native (?P<items>[A-Za-z]+) speaker\b", re.I), "native"),
    (re.compile(r"\bi(?:'m|’m| am|'ve been|’ve been| have been) (?:currently |also |still |now )?"
                r"(?:learning|studying) " + _LANGUAGE_LIST, re.I), "learning"),
    # "I started learning Japanese last month", "I've just begun to study Korean"
    (re.compile(r"\bi(?:'ve|’ve| have)? (?:just |recently |also |finally )?(?:started|began|begun) "
                r"(?:learning|studying|to learn|to study) " + _LANGUAGE_LIST, re.I), "learning"),
    (re.compile(r"\bi(?:'m|’m| am) (?:also |now )?taking (?P<items>[A-Za-z]+) (?:classes|lessons|courses?)\b", re.I),
     "learning"),
]
# Where the user is from: "I'm originally from Brazil", "I was born in Glasgow" (detail "born"),
# "I grew up in Ohio" ("grew up"). Several can hold at once, so each is its own fact.
_ORIGIN: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bi(?:'m|’m| am) (?:originally |also |actually )?from (?:the )?" + _NAME, re.I), ""),
    (re.compile(r"\bi (?:originally |actually )?come from (?:the )?" + _NAME, re.I), ""),
    (re.compile(r"\b(?:i was |i'm |i’m |i am )?born and (?:raised|bred) in (?:the )?" + _NAME, re.I), "born"),
    (re.compile(r"\bi was born (?:in|at) (?:the )?" + _NAME, re.I), "born"),
    (re.compile(r"\bi (?:grew up|was raised) in (?:the )?" + _NAME, re.I), "grew up"),
    (re.compile(r"\bi was born in [^.!?;]{1,60}? and (?:grew up|was raised) in (?:the )?" + _NAME, re.I), "grew up"),
]
_NOT_PLACES = frozenset(m.lower() for m in (*_MONTH_NAMES, "Monday", "Tuesday", "Wednesday", "Thursday",
                                             "Friday", "Saturday", "Sunday", "Christmas", "Easter"))
# What the user studies makes them a student of it: "I study computer science at UCL", "I'm studying
# medicine", "I'm doing a masters in physics" (a language is learnt, not a degree: SPEAKS reads those).
# One or two words: "I'm studying SQLite query optimization" is a topic, not a degree.
_CHAT_TAIL = r"(?:lol|haha|rn|atm|tbh|lmao|here|there)"
_STUDIES = re.compile(r"\bi(?: (?:now |currently |also )?study|"
                      r"(?:'m|’m| am) (?:\d{1,2}|an? [a-z]+(?: [a-z]+)?) and (?:now |currently |also )?study|"
                      r"(?:'m|’m| am) (?:now |currently |also )?(?:studying|"
                      r"doing an? (?:degree|masters?|master's|phd|bachelors?|bachelor's|ba|bsc|ma|msc|diploma) in))"
                      r" (?!(?:for|at|in|on|with|hard|harder|right|now|a|an|the|all|every|late|so|really|abroad|"
                      r"together|alone|online|tonight|today|there|here|it|this|that|too|more|less|rn|atm|lol|tbh)\b)"
                      r"(?P<phrase>[a-z][a-z\-]+(?: (?!" + _CHAT_TAIL + r"\b)[a-z][a-z\-]+)?)"
                      r"(?:(?=\s*\b" + _CHAT_TAIL + r"\b)|" + _END + ")"
                      r"(?:\s+at (?:the )?" + _NAME + r"(?P<of>(?-i: of(?: the)?(?: [^\W\d_a-z][\w'’\-]*)+))?)?",
                      re.I)
_LANGUAGE_QUALIFIERS = re.compile(r"^(?:some|a little|a bit of|basic|fluent|conversational|native|also)\s+", re.I)


def birthday(text: str) -> Statement | None:
    """A BIRTHDAY statement for a date as people write it ("3 May", "May 3rd, 1990"), or None.
    The object is "MM-DD", so every spelling of one day is one fact."""
    m = re.fullmatch(_BIRTH_DATE, " ".join(text.split()).strip(" .!"), re.I)
    return None if m is None else _birthday_of(m)


def _birthday_of(m: re.Match[str]) -> Statement | None:
    day, month = (m.group("d1"), m.group("m1")) if m.group("d1") else (m.group("d2"), m.group("m2"))
    try:
        at = datetime(2000, month_number(month), int(day))  # 2000: a leap year, so 29 February is a day
    except ValueError:
        return None
    label = f"{at.day} {_MONTH_NAMES[at.month - 1]}" + (f" {m.group('y')}" if m.group("y") else "")
    return Statement("BIRTHDAY", f"{at:%m-%d}", label)


def _clean(name: str) -> str:
    return " ".join(name.replace("’", "'").removesuffix("'s").split()).strip(" -'")


def _key(label: str) -> str:
    return " ".join(label.lower().split())


# Endings: the fact is over. "my cat Miso passed away", "I broke up with my girlfriend Sara",
# "I don't live in Leeds anymore", "I'm not a nurse anymore", "I quit my job at Google"; and
# with no object, whatever is current: "I quit my job", "I was laid off", "we broke up".
_PET_WORDS = "|".join(sorted((*_PETS, *_PLURAL_PETS), key=len, reverse=True))
_PARTNER_WORDS = "girlfriend|boyfriend|partner|wife|husband|fiance|fiancee|fiancé|gf|bf|hubby|wifey"
_ENDINGS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bmy (?:\w+ )?(?:" + _PET_WORDS + r"),?\s+" + _NAME + r",?\s+(?:has |had |just |sadly |finally )?"
                r"(?:passed away|passed on|died|was put down|was put to sleep|ran away|went missing)", re.I),
     "HAS_PET"),
    # "we lost our dog Rex" ends Rex; "I lost my dog Rex at the park for an hour" does not
    (re.compile(r"\b(?:i|we) (?:just |sadly |recently )?(?:lost|had to put down|buried) (?:my|our) (?:\w+ )?(?:"
                + _PET_WORDS + r"),?\s+" + _NAME + r"\b(?!\s+(?:at|during|while|near|somewhere|outside|inside|again|"
                r"for (?:an? |a few |about |almost )?(?:hour|minute|while|bit|moment|day)s?|in the (?:park|woods|"
                r"forest|crowd|store|mall|shop|market|street|city|garden|yard|dark|snow|rain))\b)", re.I),
     "HAS_PET"),
    (re.compile(r"\bi (?:just |finally |recently )?(?:broke up|split up|separated) with (?:my (?:\w+ )?(?:"
                + _PARTNER_WORDS + r"),?\s+)?" + _NAME, re.I), "PARTNER_OF"),
    (re.compile(r"\bi (?:just |finally |recently )?divorced (?:my (?:" + _PARTNER_WORDS + r"),?\s+)?" + _NAME, re.I),
     "PARTNER_OF"),
    # "I moved to London from Paris", "I've just moved here from Leeds"
    (re.compile(r"\bi(?:'ve|’ve| have)? (?:just |recently |finally )?(?:moved|relocated)(?: here| back| over|"
                r" to [^.!?;,]{1,40}?)? from\s+" + _NAME, re.I), "LIVES_IN"),
    (re.compile(r"\bi (?:(?:don't|don’t|do not) live in " + _NAME + r" any ?more|no longer live in " + _NAME.replace(
        "?P<name>", "?P<name2>") + r")", re.I), "LIVES_IN"),
    (re.compile(r"\bi (?:(?:don't|don’t|do not) work (?:at|for) " + _NAME + r" any ?more|no longer work (?:at|for) "
                + _NAME.replace("?P<name>", "?P<name2>") + r"|(?:just )?(?:quit|left) my (?:job|position|role) "
                r"(?:at|with|for) " + _NAME.replace("?P<name>", "?P<name3>") + r")", re.I), "WORKS_AT"),
    # "I'm not a doctor, but ..." denies rather than ends: only "no longer" or "anymore" end a job
    (re.compile(r"\bi(?:'m|’m| am) (?:no longer an? " + _JOB + _END + r"|not an? "
                + _JOB.replace("?P<phrase>", "?P<name3>") + r" any ?more)", re.I), "WORKS_AS"),
    (re.compile(r"\bi (?:just |recently )?(?:quit|left) my job as (?:an? )?" + _PHRASE + _END, re.I), "WORKS_AS"),
    # a hobby given up: "I stopped knitting", "I gave up pottery", "I quit playing chess", "I don't play
    # guitar anymore", "I'm not into photography anymore" (not "I stopped by", "I gave up on him")
    (re.compile(r"\bi(?: (?:just |recently |finally |eventually |kind of |kinda )?(?:stopped|quit|gave up)|"
                r"(?:'ve|’ve| have) (?:just |finally )?(?:stopped|quit|given up)) "
                r"(?!(?:by|at|in|on|for|to|with|my|the|a|an|it|that|this|them|him|her|trying|caring|talking|being|working|worrying|thinking)\b)"
                r"(?P<phrase>[a-z]+ing(?: [a-z]+)?|[a-z]+)" + _END, re.I), "LIKES"),
    (re.compile(r"\bi(?: (?:don't|don’t|do not) play (?:the )?(?P<playing>[a-z]+(?: [a-z]+)?) any ?more|"
                r"(?:'m|’m| am) (?:not|no longer) (?:really )?into " + _TASTE + r"(?: any ?more)?"
                + _TASTE_END[:-2] + r"|\b(?:myself|personally|or things|or anything|or stuff|and stuff)\b)))", re.I),
     "LIKES"),
    # a plan called off: "my interview got cancelled", "the party is off", "I had to cancel my dentist appointment"
    (re.compile(r"\b(?:my|the|our) (?:big |next |first |final )?" + _EVENT + r" (?:got |was |has been |'s been "
                r"|’s been |is |has )?(?:now )?(?:cancell?ed|called off|scrapped|off)\b"
                r"(?! (?:the|to|of|by|and|with|for|from)\b)", re.I), "PLANS"),
    (re.compile(r"\bi (?:just |had to |have to |'ve |’ve |have )?(?:cancell?ed|cancel|called off|call off) "
                r"(?:my|the|our) " + _EVENT, re.I), "PLANS"),
    # what the user used to do or have is over: "I used to live in Paris", "I used to work at Google",
    # "I used to be a teacher", "I used to have a dog named Rex"
    (re.compile(r"\bi used to (?:live|be living) in (?:the )?" + _NAME, re.I), "LIVES_IN"),
    (re.compile(r"\bi used to work (?:at|for) (?:the )?" + _NAME, re.I), "WORKS_AT"),
    (re.compile(r"\bi used to (?:be|work as) an? " + _JOB + _END, re.I), "WORKS_AS"),
    (re.compile(r"\bi used to have an? (?:\w+ )?(?:" + "|".join(_PETS) + r")\b[^.!?]{0,40}?\b(?:named|called) "
                + _NAME, re.I), "HAS_PET"),
]
# Endings that name nothing: whatever is current under these predicates ends. The phrase must end
# its clause (or go on with a time), so "we split up the bill" and "I was fired up" end nothing.
_STOPS = (r"(?=\s*(?:[.,!?;:)]|$|\b(?:and|but|so|because|since|last|this|in|on|at|from|after|yesterday|today|"
          r"recently|again|now|a few|a couple|\d+|two|three|four|five|six|lol|haha)\b))")
# "we broke up", "my girlfriend dumped me": the partner goes, and with them the status
_BROKE_UP = (r"\b(?:we|i) (?:just |finally |recently )?(?:broke up|split up)" + _STOPS + r"|\bmy (?:" + _PARTNER_WORDS
             + r") (?:just |finally |recently )?(?:broke up with me|dumped me|left me)\b")
_ANY_ENDINGS: list[tuple[re.Pattern[str], tuple[str, ...], str]] = [
    (re.compile(r"\bi (?:(?:just |recently )?(?:quit|lost|left) my job(?! (?:at|with|for|as)\b)|"
                r"(?:got|was|have been|'ve been|’ve been) (?:laid off|fired|made redundant|let go)|"
                r"(?:just |recently |finally )?retired)" + _STOPS + r"|\bi(?:'m|’m| am) (?:now |currently |still )?"
                r"(?:unemployed|out of work|between jobs|retired)\b", re.I), ("WORKS_AS", "WORKS_AT"), "job"),
    # "I graduated last week", "I just graduated from Leeds": a student's studies end (a job stays: the
    # planner closes only a current student's, so "I graduated in 2015" ends no one's nursing job)
    # ("I just finished my shift", "I finished school at 4 pm" and "finished uni for the day" end nothing)
    (re.compile(r"\bi(?:'ve|’ve| have)? (?:just |finally |recently |officially )?(?:graduated\b|finished my (?:degree|"
                r"studies|masters|master's|phd|bachelors|bachelor's)\b|finished (?:uni|university|college)"
                r"(?=\s*(?:[.,!?;:)]|$|\b(?:and|but|so|last|this|yesterday|recently|lol|haha)\b)))", re.I),
     ("WORKS_AS", "WORKS_AT"), STUDENT),
    (re.compile(r"\b(?:we|i) (?:just |finally |recently )?(?:got divorced|separated)" + _STOPS + "|" + _BROKE_UP
                + r"|\bi(?:'m|’m| am) (?:single|divorced) (?:now|again)\b", re.I), ("PARTNER_OF",), "partner"),
    # a break-up leaves the status unknown (a divorce or "I'm single now" names the new one)
    (re.compile(_BROKE_UP, re.I), ("RELATIONSHIP",), "relationship"),
]

# Someone of the user's who died, kept as a loss (LOST, dated by when it happened): "my mother passed away last
# year", "my grandma Rose died in March", "I lost my dad to cancer in 2019", "my late father". A named one
# also leaves the people the user has ("my mom Ana" ends). "I lost my brother in the crowd", "my phone died"
# and "my mom's plant died" are none.
_DIED = r"(?:has |had |just |sadly |recently |unfortunately |suddenly )?(?:passed away|passed on|died)\b"
_LOSS = [
    re.compile(r"\bmy " + _KIN_AGE + r"(?P<role>" + _KIN + r")(?:,? " + _NAME + r",?)? " + _DIED, re.I),
    re.compile(r"\bi (?:just |recently |sadly |tragically )?lost my " + _KIN_AGE + r"(?P<role>" + _KIN + r")(?:,? "
               + _NAME + r")?(?=\s*(?:[.,!?;:)]|$|\b(?:last|this|a (?:few|couple)|\d+|two|three|four|five|six|recently|"
               r"yesterday|today|to (?:cancer|covid|a heart attack|suicide|an accident|an overdose)|in (?:19|20)\d\d|"
               r"and|when|back)\b))", re.I),
    re.compile(r"\bmy late " + _KIN_AGE + r"(?P<role>" + _KIN + r")(?:,? " + _NAME + r")?", re.I),
]
_CAUSE = re.compile(r"\s*to (?:cancer|covid|a heart attack|suicide|an accident|an overdose)\b", re.I)


def _loss(m: re.Match[str], text: str) -> bool:
    """Whether a ``_LOSS`` match tells of a death: a friend "lost" only with its cause ("I lost my best
    friend Sam last year" may be a falling-out; "... to cancer" is not)."""
    return not (m.re is _LOSS[1] and _FAMILY[m.group("role").lower()] == "FRIEND_OF"
                and not _CAUSE.match(text, m.end()))


# Pets of one kind that are gone, no name said: "I don't have a cat anymore", "I no longer have dogs",
# "our cat passed away" (the detail of the ending is the kind; the planner closes only those)
_PET_KIND_ENDING = re.compile(
    r"\bi (?:(?:don't|don’t|dont|do not) have (?:a |an |my |any )?(?P<kind>" + _PET_WORDS + r") any ?more"
    r"|no longer have (?:a |an |my |any )?(?P<kind2>" + _PET_WORDS + r"))\b"
    r"|\b(?:my|our) (?P<kind3>" + _PET_WORDS + r") (?:has |had |just |sadly |finally )?"
    r"(?:passed away|passed on|died|was put down|was put to sleep|ran away|went missing)", re.I)

# Facts a statement can date ("I moved to Leeds in 2019"); a name or a liking has no start worth showing.
_DATED = frozenset({"LIVES_IN", "WORKS_AS", "WORKS_AT", "HAS_PET", "DIET", "AVOIDS", "LOST", "PARTNER_OF",
                    "RELATIONSHIP"})
# Where one clause ends: "I was a nurse but since March I have been a paramedic" dates the second only.
_CLAUSE_END = re.compile(r"[.!?;\n]+|\s+(?:but|and|although|though|whereas|while)\s+", re.I)


# How far a statement's clause may reach each way, and how many statements one message may make:
# a message of 256 KiB with no full stop is one clause, and reading it whole for each of its
# thousands of matches took minutes (found by timing adversarial input).
_CLAUSE_REACH = 200
_MAX_STATEMENTS = 40
_FILLER_WORDS = frozenset("the a an my me your any some all of with in on for to that those these it them".split())
_INSTRUCTION_REACH = 20_000  # instructions are short messages; a long paste is read no further


# A time dates a fact only in a clause that says something began: "I moved here last month", "since
# March", "two weeks ago", "I've lived here for three years". "My partner Tanya is visiting Toronto in
# October for 10 days" names times, but not when the partnership began (found in BEAM's chats). An
# ending is itself the event: its time always counts.
_STARTED = re.compile(r"\b(?:since|ago|moved|relocated|became|started|got|adopted|joined|married|began|switched|"
                      r"took up|promoted)\b|(?:'ve|’ve|\bhave|'s|’s|\bhas) (?:been|lived|worked|had|owned)\b", re.I)


class _Times:
    """When the statements of one message say their facts began, each clause read once."""

    def __init__(self, text: str, now: datetime | None) -> None:
        self.text, self.now = text, now
        ends = [(m.start(), m.end()) for m in _CLAUSE_END.finditer(text)] if now is not None else []
        self.starts = [a for a, _ in ends]
        self.ends = [b for _, b in ends]
        self.read: dict[tuple[int, int], tuple[datetime | None, str]] = {}

    def _clause(self, pos: int) -> tuple[int, int]:
        i = bisect.bisect_left(self.starts, pos)  # the first clause end at or after pos
        start = max(self.ends[i - 1] if i > 0 else 0, pos - _CLAUSE_REACH)
        end = min(self.starts[i] if i < len(self.starts) else len(self.text), pos + _CLAUSE_REACH)
        return start, end

    def upcoming(self, pos: int, *, after: bool = False, reach: int = _CLAUSE_REACH) -> Began | None:
        """When the plan told of in the clause around ``pos`` will happen, if it says and it is to come
        (``after``: read only from ``pos`` on, the new day of a plan put off; at most ``reach`` characters)."""
        if self.now is None:
            return None
        start, end = self._clause(pos)
        return upcoming(self.text[pos if after else start:min(end, pos + reach)], self.now)

    def at(self, pos: int, *, ending: bool = False) -> tuple[datetime | None, str]:
        """(start, unit) the clause around ``pos`` names, or (None, "")."""
        if self.now is None:
            return None, ""
        start, end = self._clause(pos)
        if (start, end) not in self.read:
            found = began(self.text[start:end], self.now)
            self.read[start, end] = (found.at, found.unit) if found else (None, "")
        if not ending and self.read[start, end][0] is not None and not _STARTED.search(self.text, start, end):
            return None, ""
        return self.read[start, end]


# Chat drops the apostrophe: "im a nurse", "i dont like mushrooms", "ive been vegan". The rules read
# the contraction ("im" -> "i'm", one letter longer), which no word of its own spells.
_BARE_CONTRACTIONS = re.compile(r"\b(?:(?-i:(?P<i>i)(?P<ii>m|ve)|(?P<i2>I)(?P<ii2>m))|(?P<n>(?:do|does|did|ca|is|was|"
                                r"are|were|have|has|had|wo|would|could|should))(?P<t>nt))\b", re.I)  # not "Jony Ive"


def _apostrophes(text: str) -> str:
    def put(m: re.Match[str]) -> str:
        if m.group("i") or m.group("i2"):
            return f"{m.group('i') or m.group('i2')}'{m.group('ii') or m.group('ii2')}"
        return f"{m.group('n')}{m.group('t')[0]}'{m.group('t')[1]}"  # "dont" -> "don't", keeping the case
    return _BARE_CONTRACTIONS.sub(put, text)


# Someone who types all in lower case ("my name is sam", "my dog is called biscuit") gives no capital
# to tell a name by; right after these cues the next word is one all the same, unless it is a word
# that names nobody ("my name is not important", "call me maybe", "a cat named after my aunt").
_NAME_CUES = re.compile(r"\b(?:(?<!don't )call me|i go by|(?:named|called)(?: (?:him|her|it|them))?|name(?:'s| is))"
                        r"\s+(?P<word>[a-z][a-z'’\-]*)")
_NOT_A_NAME = _NOT_NAMES | frozenset("""
not no nothing something anything everything whatever literally actually kinda kind sort basically honestly
lol lmao haha btw tbh idk ngl maybe later anytime whenever tomorrow tonight today again out after for
weird hard long short unique common funny cool nice great stupid silly boring normal different after
like about over up down off with by if or and but as of one someone somebody nobody he she they we me us
""".split())


def _capital_names(text: str) -> str:
    """An all-lower-case message with the word after a naming cue capitalised ("Sam"), so the
    rules that know a name by its capital read it; any other message is returned as it is."""
    if not text or text != text.lower():
        return text

    def up(m: re.Match[str]) -> str:
        word = m.group("word")
        if len(word) < 2 or word in _NOT_A_NAME or word.removesuffix("'s").removesuffix("’s") in _NOT_A_NAME:
            return m.group(0)
        return m.group(0)[:m.start("word") - m.start()] + word[0].upper() + word[1:]
    return _NAME_CUES.sub(up, text)


_ASKED = re.compile(r"\b((?:do|did|does|don't|didn't|doesn't|don’t|didn’t|doesn’t) )i\b", re.I)


def statements(text: str, now: datetime | None = None) -> list[Statement]:
    """The clear self-statements in ``text`` (a user's own message), in order, without repeats.
    With ``now`` (when it was said), a statement that says when its fact began carries that time, and
    a plan ("I have an exam on Friday") the day it will happen; without it no plan is read."""
    # "Do I like sushi?", "do I live in Paris or Lyon?": a user testing what the bot remembers states
    # nothing (the "I" is masked, one character for one, so positions stay)
    text = _ASKED.sub(lambda m: m.group(1) + "_", _capital_names(_apostrophes(text)))
    found: dict[tuple[str, str], Statement] = {}
    at = 0
    times = _Times(text, now)
    ended = _endings(text, times)

    def add(predicate: str, label: str, detail: str = "", *, began_here: bool = False) -> None:
        label = _clean(label)
        if predicate in ("LIKES", "DISLIKES"):
            label = _TASTE_TAIL.sub("", _TASTE_OF_THEM.sub("", _TASTE_ALL.sub("", label)))
            if _TASTE_PRONOUN.search(label):
                return
        key = (predicate, _key(label))
        if not label or len(label) > 80 or key in ended or key in found:
            return  # "my cat Miso" in "my cat Miso died" is the ending's, not a new pet
        if predicate not in _OWN_LISTS and key[1].split()[0] in _NOT_NAMES:
            return  # "I'm Going home", "I like it"
        if len(found) < _MAX_STATEMENTS:
            found[key] = Statement(predicate, key[1], label, detail,
                                   *(times.at(at, ending=began_here) if predicate in _DATED else (None, "")))

    for pattern, predicate in _RULES:
        for m in pattern.finditer(text):
            at, before = m.start(), len(found)
            if "name" in m.groupdict() and m.group("name"):
                add(predicate, m.group("name"))
            elif m.groupdict().get("phrase"):
                phrase = m.group("phrase")
                if predicate in ("LIKES", "DISLIKES") and (where := _GERUND_PLACE.match(text, m.end())) \
                        and _LONE_GERUND.fullmatch(phrase.strip()):
                    phrase += where.group(0)  # "staying at home", not "staying"
                place = ""
                if predicate == "WORKS_AS" and (where := _JOB_PLACE.match(text, m.end())) \
                        and where.group("name").split()[0].lower() not in _NOT_PLACES:
                    place = "in " + _clean(where.group("name"))  # "a nurse in Leeds"
                add(predicate, phrase, place)
            first = (m.groupdict().get("name") or m.groupdict().get("phrase") or "").lower()
            if predicate in ("LIKES", "DISLIKES") and len(found) > before and not first.startswith("to ") \
                    and not text[:m.end()].lower().endswith("to " + first):
                # the rest of a list whose first item was kept ("I like to wait and see" is no list, nor
                # "I love you and ...")
                end = m.end()
                while (more := _TASTE_MORE.match(text, end)) and (more.group("and") or more.group("and2")
                                                                   or not more.group("item")[0].isupper()):
                    if first.endswith("ing") and not more.group("item").lower().endswith("ing"):
                        break  # "I love reading and cooking", not "I love hiking and nature lol"
                    add(predicate, more.group("item"))
                    end = more.end()
    for sentence in _SENTENCES.split(text[:_INSTRUCTION_REACH]):
        if len(sentence) <= 240 and (told := _INSTRUCTION.match(sentence.strip())):
            body = " ".join(told.group("body").split())
            key = ("INSTRUCTS", _key(body))
            if key not in found and len(found) < _MAX_STATEMENTS:
                found[key] = Statement("INSTRUCTS", key[1], body[0].upper() + body[1:])
    for m in _NOT_DIET.finditer(text):
        at = m.start()
        diet = m.group("diet").lower()
        add("DIET", f"no longer {diet}" if m.group("neg").lower() != "not" or m.group("more") else f"not {diet}")
    for m in (m for pattern in _AVOIDS for m in pattern.finditer(text)):
        at = m.start()
        item = m.groupdict().get("item")
        # "I stopped eating meat in January": a stop is itself the start, so its time always counts
        add("AVOIDS", _avoided(item) if item else "alcohol", began_here=bool(_AVOID_STOPPING.search(m.group(0))))
        while item and (more := _AVOID_MORE.match(text, m.end())):  # "I don't eat meat or fish"
            add("AVOIDS", _avoided(more.group("item")))
            m = more
    for m in _ALLERGIES.finditer(text):
        at = m.start()
        for item in _LIST_SPLIT.split(m.group("items")):
            item = re.sub(r"(?:\s+(?:lol|haha|xd|tbh|btw|honestly|apparently))+$", "", item, flags=re.I)
            words = _key(item).split()
            if not words or _key(item) in _NOT_ALLERGENS or words[0] in _CLAUSE_STARTS or len(words) > 3:
                break  # "peanuts and I'm vegetarian": the list ended where a new clause began
            add("ALLERGIC_TO", item)
    for m in _INTOLERANT.finditer(text):
        at = m.start()
        add("ALLERGIC_TO", (m.group("a") or m.group("b") or "gluten").lower(), "intolerant")
    for pattern in _RELATIONSHIP:
        for m in pattern.finditer(text):
            at = m.start()
            status = " ".join(m.group("status").lower().split())
            add("RELATIONSHIP", "in a relationship" if status.endswith("relationship") else status)
    for m in _CONDITION.finditer(text):
        at = m.start()
        add("HAS_CONDITION", _condition(m.group("cond")))
        while more := _CONDITION_MORE.match(text, m.end()):
            add("HAS_CONDITION", _condition(more.group("cond")))
            m = more
    for m in _CONDITION_AS.finditer(text):
        at = m.start()
        add("HAS_CONDITION", _CONDITION_AS_WORD[" ".join(m.group("cond").lower().split())])

    def aged(name: str, age: str, unit: str) -> None:  # "mia 3": Mia is 3 (years unless ``unit`` says)
        n = int(age) if age.isdigit() else _AGE_WORDS.index(age.lower()) + 1
        unit = unit.lower().rstrip("s")
        label = str(n) if unit in ("", "year", "yr") else f"{n} {unit}{'s' if n != 1 else ''}"
        who = _key(_clean(name))
        if who and 0 < n < 111 and len(found) < _MAX_STATEMENTS:
            found.setdefault(("AGE_OF", f"{who} {label}"), Statement("AGE_OF", f"{who} {label}", label, who))

    for pattern in (_RELATIVE, _NAMED_RELATIVE):
        for m in pattern.finditer(text):
            at = m.start()
            role = m.group("role").lower()
            add(_FAMILY[role], m.group("name"), _ROLE_WORDS.get(role, role))
            if m.group("kage"):  # "my 3-year-old daughter Mia"
                aged(m.group("name"), m.group("kage"), m.group("kunit"))
    for m in _KIN_AGED.finditer(text):  # "my daughter Kavya is 4"
        at = m.start()
        role = m.group("role").lower()
        add(_FAMILY[role], m.group("name"), _ROLE_WORDS.get(role, role))
        aged(m.group("name"), m.group("age"), m.group("unit") or "")
    for pattern in _LOSS:
        for m in pattern.finditer(text):
            if _loss(m, text):
                at = m.start()
                role = _ROLE_WORDS.get(m.group("role").lower(), m.group("role").lower())
                add("LOST", _clean(m.group("name")) if m.group("name") else role, role, began_here=True)
    for pattern in (_PET, _NAMED_PET):
        for m in pattern.finditer(text):
            at = m.start()
            add("HAS_PET", m.group("name"), m.group("role").lower())
            while more := _PET_MORE.match(text, m.end()):
                add("HAS_PET", more.group("name"), more.group("role").lower())
                m = more
    for m in _KIN_GROUP.finditer(text):
        at = m.start()
        role = _PLURAL_KIN[m.group("role").lower()]
        for name in _NAMES_SPLIT.split(m.group("names")):
            add(_FAMILY[role], name, role)
    for pattern, role in _MARRIED:
        for m in pattern.finditer(text):
            at = m.start()
            add("PARTNER_OF", m.group("name"), role)
    for m in _PET_GROUP.finditer(text):
        at = m.start()
        for name in _NAMES_SPLIT.split(m.group("names")):
            add("HAS_PET", name, _PLURAL_PETS[m.group("role").lower()])
    for m in _PLAYS.finditer(text):
        at = m.start()
        game = _clean(m.group("phrase") or m.group("name") + (m.group("of") or ""))
        if game.split()[0].lower().rstrip("s") not in _NOT_PLACES:  # "I play Mondays and Fridays"
            add("LIKES", "playing " + game)
    for m in _LIKES_TO.finditer(text):
        at = m.start()
        rest = _TASTE_TAIL.sub("", m.group("rest"))  # "I like to play better than ...": "playing"
        if rest or m.group("verb").lower() not in _NEEDS_OBJECT:
            verb = m.group("verb").lower()
            add("LIKES", rest.strip() if verb == "do" else _gerund(verb) + rest)  # "I like to do yoga": yoga
    for m in _HOBBY_LIST.finditer(text):
        at = m.start()
        for item in _LIST_SPLIT.split(re.sub(r"(?:\s*,|\s+(?:and|or))+$", "", m.group("items"))):
            words = _key(item).split()
            if not words or words[0] in _CLAUSE_STARTS or len(words) > 4:
                break  # "reading and I also like ...": the list ended
            add("LIKES", item)
    for pattern in (_TOOK_UP, _LEARNING):
        for m in pattern.finditer(text):
            at = m.start()
            phrase = re.sub(r"^the ", "", m.group("phrase").strip(), flags=re.I)  # "took up the guitar"
            if phrase.split()[0].lower() in _LANGUAGES:
                continue  # "I'm learning Spanish" is SPEAKS
            if pattern is _LEARNING:  # "I started playing chess": "playing chess"; "learning to code"
                doing = m.group(0).lower()
                verb = next((v for v in ("playing", "practising", "practicing") if v in doing), "learning")
                phrase = f"{verb} {phrase}"
            add("LIKES", phrase)
    for m in _STUDIES.finditer(text):
        at = m.start()
        subject = _clean(m.group("phrase"))
        if subject and subject.lower() not in _LANGUAGES:
            add("WORKS_AS", f"{subject} student")
            if m.group("name"):
                add("WORKS_AT", m.group("name") + (m.group("of") or ""))
    for m in _PRONOUNS.finditer(text) if "/" in text or "pronoun" in text.lower() else ():
        at = m.start()
        add("PRONOUNS", m.group("phrase").lower())
    for pattern, lead in [*_PLANS, (_PLAN_MOVED, "moved")] if now is not None else ():
        for m in pattern.finditer(text):
            # a plan put off, or prepared for, takes the day said after it ("preparing for an interview" does not
            # take the May 7 event named before it); one prepared for, only a day said right after it ("training
            # for the marathon in March", not "preparing for my interview from 7 to 8 PM, May 15-24")
            when = (times.upcoming(m.end(), after=True, reach=20 if lead == "ahead" else _CLAUSE_REACH)
                    if lead in ("moved", "ahead") else times.upcoming(m.start()))
            if lead == "visit":  # "my mom is visiting": mom's visit
                kin = _ROLE_WORDS.get(m.group("kin").lower(), m.group("kin").lower())
                label = f"{kin}' visit" if kin.endswith("s") else f"{kin}'s visit"
            elif lead == "baby":
                label = "baby due"
            elif lead == "their":  # "my sister Anjali is getting married": sister Anjali's wedding
                said = m.groupdict().get("does") or m.groupdict().get("did")
                what = (_THEIRS[said.lower()] if said else "baby due" if m.groupdict().get("baby")
                        else _clean(m.group("phrase")))
                kin = m.group("kin").lower()
                who = _ROLE_WORDS.get(kin, kin) + (f" {_clean(m.group('name'))}" if m.group("name") else "")
                label = f"{who}'s {what}"
            elif lead and lead not in ("moved", "ahead"):
                label = lead + _clean(m.group("name"))
            else:
                bound_for = m.groupdict().get("where")  # " to Berlin"
                label = _clean(m.group("phrase")) + (f" {bound_for.split()[0].lower()} {_clean(m.group('name'))}"
                                                     if bound_for else "")
            key = ("PLANS", _key(label))
            if when is not None and label and key not in found and len(found) < _MAX_STATEMENTS:
                found[key] = Statement("PLANS", key[1], label, "", when.at, when.unit)
    for pattern, detail in _ORIGIN:
        for m in pattern.finditer(text):
            at = m.start()
            place = _clean(m.group("name"))
            if place and place.split()[0].lower() not in _NOT_PLACES:
                add("FROM", place, detail)
    for pattern, detail in _SPEAKS:
        for m in pattern.finditer(text):
            at = m.start()
            for item in _LIST_SPLIT.split(m.group("items")):
                language = _LANGUAGE_QUALIFIERS.sub("", item.strip())
                if language.lower() not in _LANGUAGES:
                    break  # "Spanish and I love it": the list ended
                add("SPEAKS", language.capitalize() if len(language) > 3 else language.upper(), detail)
    for pattern in _AGES:
        for m in pattern.finditer(text):
            if int(m.group("age")) in AGE_RANGE:
                at = m.start()
                add("AGE", str(int(m.group("age"))))
    for m in _BIRTHDAY.finditer(text):
        if (said := _birthday_of(m)) is not None:
            found.setdefault(("BIRTHDAY", said.obj), said)
    if now is not None and (today := _BIRTHDAY_NOW.search(text)):
        rel = (today.group("rel") or today.group("rel2") or "").lower()
        day = now + timedelta(days=1 if rel == "tomorrow" else 0)
        found.setdefault(("BIRTHDAY", f"{day:%m-%d}"), Statement("BIRTHDAY", f"{day:%m-%d}",
                                                                 f"{day.day} {_MONTH_NAMES[day.month - 1]}"))
    elif (ahead := _BIRTHDAY_AHEAD.search(text)) and (when := times.upcoming(ahead.end(), after=True)) \
            and when.unit == "day" and not any(p == "BIRTHDAY" for p, _ in found):
        day = when.at
        found[("BIRTHDAY", f"{day:%m-%d}")] = Statement("BIRTHDAY", f"{day:%m-%d}",
                                                        f"{day.day} {_MONTH_NAMES[day.month - 1]}")
    if any(p == "RELATIONSHIP" for p, _ in found):  # "we broke up, I'm single now": the new status says it
        ended.pop(("RELATIONSHIP", ANY_OBJECT), None)
    return [*ended.values(), *found.values()]


_CONDITION_ENDING = re.compile(r"\bi (?:no longer|(?:don't|don’t|do not)(?: even)?) (?:have|suffer from) (?P<cond>"
                               + _CONDITION_WORDS + r")\b(?= any ?more\b|\s*[.,!;]|$)"
                               r"|\bi(?:'m|’m| am) (?:now |finally )?(?P<free>cancer)[- ]free\b", re.I)


def _avoided(said: str) -> str:
    """A food or drink as the diet line shows it: "eggs" for "egg", "alcohol" for "booze"."""
    said = " ".join(said.lower().split())
    return _AVOID_NAMES.get(said, said)


def _condition(said: str) -> str:
    """A condition as the profile shows it: "ADHD", "type 1 diabetes", "migraines"."""
    said = re.sub(r"^an? ", "", " ".join(said.split()), flags=re.I)
    return said.upper() if said.lower() in _CONDITION_ACRONYMS else said.lower()


def _endings(text: str, times: _Times) -> dict[tuple[str, str], Statement]:
    out: dict[tuple[str, str], Statement] = {}
    for m in _UNINSTRUCT.finditer(text[:_INSTRUCTION_REACH]):
        about = " ".join(w for w in _key(next(g for g in m.group("a", "b", "c", "d") if g)).split()
                         if w not in _FILLER_WORDS)
        if about and ("INSTRUCTS", about) not in out:
            out["INSTRUCTS", about] = Statement("INSTRUCTS", about, about, "", *times.at(m.start(), ending=True),
                                                ended=True)
    for m in _PET_KIND_ENDING.finditer(text):  # "I don't have a cat anymore": the cats end, not the dog
        kind = next(g for g in m.group("kind", "kind2", "kind3") if g).lower()
        kind = _PLURAL_PETS.get(kind, kind)
        if ("HAS_PET", ANY_OBJECT) not in out:
            out["HAS_PET", ANY_OBJECT] = Statement("HAS_PET", ANY_OBJECT, kind, kind,
                                                   *times.at(m.start(), ending=True), ended=True)
    for pattern in _LOSS:  # the one who died leaves the user's people: by name, or the one of that role
        for m in (m for m in pattern.finditer(text) if _loss(m, text)):
            role = m.group("role").lower()
            name = _clean(m.group("name")) if m.group("name") else ""
            key = (_FAMILY[role], _key(name) if name else ANY_OBJECT)
            if key not in out:  # "my husband passed away": the husband told of, whatever his name
                out[key] = Statement(key[0], key[1], name or role, "" if name else _ROLE_WORDS.get(role, role),
                                     *times.at(m.start(), ending=True), ended=True)
    for any_pattern, predicates, what in _ANY_ENDINGS:
        for m in any_pattern.finditer(text):
            for p in predicates:
                if (p, ANY_OBJECT) not in out:
                    out[p, ANY_OBJECT] = Statement(p, ANY_OBJECT, what, "", *times.at(m.start(), ending=True),
                                                   ended=True)
    for m in _AVOID_ENDING.finditer(text):  # "I eat meat again"; "I'm drinking again" is alcohol
        item = _avoided(m.group("item") or "alcohol")
        if ("AVOIDS", item) not in out:
            out["AVOIDS", item] = Statement("AVOIDS", item, item, "", *times.at(m.start(), ending=True), ended=True)
    for m in _CONDITION_ENDING.finditer(text):
        cond = _condition(m.group("cond") or m.group("free"))
        if ("HAS_CONDITION", _key(cond)) not in out:
            out["HAS_CONDITION", _key(cond)] = Statement("HAS_CONDITION", _key(cond), cond, "",
                                                          *times.at(m.start(), ending=True), ended=True)
    for pattern, predicate in _ENDINGS:
        for m in pattern.finditer(text):
            groups = m.groupdict()
            label = _clean(next((groups[g] for g in ("name", "name2", "name3", "phrase") if groups.get(g)), "")
                           or ("playing " + groups["playing"] if groups.get("playing") else ""))
            if predicate == "LIKES" and _TASTE_PRONOUN.search(label):
                continue  # "I stopped playing them" names nothing
            key = (predicate, _key(label))
            if label and key[1].split()[0] not in _NOT_NAMES and key not in out and len(out) < _MAX_STATEMENTS:
                out[key] = Statement(predicate, key[1], label, "", *times.at(m.start(), ending=True), ended=True)
    return out
