"""Planted facts for the generator: what a user says once and is asked about later.

Each ``FactKind`` is one kind of fact with slot pools, paraphrased statement
templates (the *needle*: the sentence that carries the fact), paraphrased
question templates, the expected answer, and distractor templates that share
the question's words but not its answer. Question wording deliberately differs
from the statements (synonyms, indirect references), as real users' questions do.

Question types:
  single      one exchange holds the answer
  multi       two exchanges in different sessions are needed (a bridge entity links them)
  update      the fact changed; the older statement is stored too, the newer one is the answer
  temporal    "when did I ...": the answer is the date of the exchange (or the day before, "yesterday")
  distractor  the evidence avoids the question's words while several distractor exchanges use them
"""

from __future__ import annotations

from dataclasses import dataclass

QTYPES = ("single", "multi", "update", "temporal", "distractor")

POOLS: dict[str, tuple[str, ...]] = {
    "name": (
        "Maria",
        "Tomasz",
        "Aiko",
        "Priya",
        "Joaquin",
        "Lena",
        "Oskar",
        "Fatima",
        "Dmitri",
        "Ines",
        "Kwame",
        "Sofia",
        "Rahul",
        "Elif",
        "Mateo",
        "Ingrid",
        "Yusuf",
        "Chiara",
        "Bram",
        "Noor",
        "Siobhan",
        "Anouk",
        "Tariq",
        "Greta",
        "Hamish",
        "Leilani",
        "Casimir",
        "Odette",
    ),
    "city": (
        "Lisbon",
        "Denver",
        "Leeds",
        "Osaka",
        "Porto",
        "Montreal",
        "Tucson",
        "Gdansk",
        "Valencia",
        "Melbourne",
        "Bergen",
        "Austin",
        "Edinburgh",
        "Kyoto",
        "Ljubljana",
        "Halifax",
        "Tallinn",
        "Wellington",
        "Bologna",
        "Cork",
    ),
    "town": ("Whitby", "Sete", "Hoi An", "Tofino", "Arcachon", "Kinsale", "Ullapool", "Nazare", "Hallstatt"),
    "food": ("peanuts", "shellfish", "sesame", "kiwi", "walnuts", "mustard", "celery", "lupin"),
    "instrument": ("cello", "trumpet", "ukulele", "piano", "clarinet", "bass guitar", "violin", "drums"),
    "book": (
        "The Salt Orchard",
        "Night Trains to Ysolde",
        "A Field Guide to Leaving",
        "The Glass Cartographer",
        "Winter at Hollow End",
        "Small Gods of Harbour Street",
        "The Quiet Engine",
    ),
    "drink": (
        "oat flat white",
        "cortado",
        "iced americano",
        "chai latte",
        "matcha latte",
        "double macchiato",
    ),
    "team": ("Celtic", "the Seattle Sounders", "Boca Juniors", "Ajax", "the Green Bay Packers", "Sporting"),
    "language": ("Portuguese", "Japanese", "Korean", "Dutch", "Turkish", "Swahili", "Greek", "Polish"),
    "job": (
        "paramedic",
        "pastry chef",
        "air traffic controller",
        "sound engineer",
        "vet",
        "midwife",
        "structural engineer",
        "court interpreter",
    ),
    "game": ("Starfall Tactics", "Moss Kingdom", "Harbor Drift", "Ironwood Saga", "Lantern Keep"),
    "date": (
        "3 February",
        "14 March",
        "22 April",
        "9 June",
        "30 July",
        "17 September",
        "5 November",
        "11 December",
    ),
    "hobby": (
        "bouldering",
        "pottery",
        "birdwatching",
        "sourdough baking",
        "chess",
        "film photography",
        "trail running",
        "woodworking",
    ),
    "venue": (
        "the Corn Exchange",
        "St Mary's Hall",
        "the Riverside Theatre",
        "the old library annex",
        "Harlow Community Centre",
    ),
    "company": (
        "Halcyon Labs",
        "Brightwater Insurance",
        "Norrland Games",
        "Tessellate",
        "Ferro Logistics",
        "Pinecrest Bank",
        "Oriel Health",
        "Quillon Media",
    ),
    "month": ("March", "May", "June", "August", "September", "October"),
    "bread": ("focaccia", "rye bread", "brioche", "bagels", "soda bread", "challah"),
    "gift": (
        "a vintage film camera",
        "a set of carving chisels",
        "a bird feeder camera",
        "a glazing workshop voucher",
        "a chalk bag and brush set",
    ),
    "car": (
        "Subaru Outback",
        "Honda Jazz",
        "Skoda Octavia",
        "Toyota Prius",
        "Volvo V60",
        "Mazda MX-5",
        "Kia Niro",
        "Ford Fiesta",
    ),
    "diet": ("vegetarian", "keto", "pescatarian", "vegan", "low-FODMAP", "Mediterranean"),
    "sport": ("swimming", "spin classes", "rowing", "boxing", "yoga", "climbing", "tennis"),
    "show": ("The Lighthouse Files", "Copper Valley", "Northern Line", "Paper Kings", "The Long Summer"),
    "commute": ("the bus", "the train", "my bike", "an e-scooter", "a carpool", "the tram"),
    "band": ("The Velvet Foxes", "Paper Lanterns", "Midnight Ferry", "Static Bloom", "Hollow Pines"),
    "airline": ("Finnair", "KLM", "Aer Lingus", "Iberia", "Qantas", "TAP"),
    "movie": ("The Last Lighthouse", "Saltwater Hymn", "A Year of Kites", "The Orchard Thief"),
    "street": ("Fenwick Street", "Calle Mayor", "Rose Lane", "Dock Road", "Via Sarti"),
    "cuisine": ("Georgian", "Sichuan", "Ethiopian", "Peruvian", "Lebanese", "Basque"),
    "place": ("the Azores", "Sardinia", "Hokkaido", "the Faroe Islands", "Crete", "Patagonia"),
}

# (statement word, question word): the question names the thing differently from the statement.
PAIRS: dict[str, tuple[tuple[str, str], ...]] = {
    "pet": (("puppy", "dog"), ("kitten", "cat"), ("bunny", "rabbit"), ("budgie", "bird")),
    "sibling": (
        ("sister", "sister"),
        ("brother", "brother"),
        ("little sis", "sister"),
        ("big brother", "brother"),
    ),
    "kid": (("daughter", "girl"), ("son", "boy")),
}


@dataclass(frozen=True, slots=True)
class FactKind:
    """One plantable fact; templates use ``{slot}`` names from POOLS (``{x}``/``{y}`` draw twice)."""

    key: str
    qtype: str
    slots: tuple[tuple[str, str], ...]  # (template name, pool name)
    statements: tuple[tuple[str, ...], ...]  # one tuple per evidence step (update: old, new)
    questions: tuple[str, ...]
    answer: str
    distractors: tuple[str, ...] = ()
    replies: tuple[str, ...] = ()
    pair: str = ""  # PAIRS key: fills {said} and {asked}
    day_offset: int = 0  # temporal: the event happened this many days before


_R_GOOD = (
    "That's lovely to hear! How are you feeling about it?",
    "Oh nice, thanks for telling me.",
    "I'll remember that. Anything you'd like help with around it?",
    "That sounds like a big deal, congratulations!",
    "Noted! Sounds like things are moving along.",
)

KINDS: tuple[FactKind, ...] = (
    # --- single ---
    FactKind(
        "sibling_name",
        "single",
        (("name", "name"),),
        (
            (
                "my {said} {name} is coming to stay with us for a few days",
                "{name}, my {said}, called me for two hours last night",
                "my {said} {name} just got a promotion and won't stop talking about it",
            ),
        ),
        ("What's my {asked}'s name again?", "Remind me, what is my {asked} called?", "Who is my {asked}?"),
        "{name}",
        pair="sibling",
        distractors=(
            "my friend's {asked} is also coming to the party, it'll be crowded",
            "do you think every {asked} argues with their siblings as a kid?",
            "{fname}'s {asked} is staying with them, they're driving each other mad",
        ),
    ),
    FactKind(
        "pet_name",
        "single",
        (("name", "name"),),
        (
            (
                "our {said} {name} has been chewing every shoe in the house",
                "took {name} the {said} to the vet for the first jabs",
            ),
        ),
        ("What is my {asked} called?", "What name did I give my {asked}?"),
        "{name}",
        pair="pet",
        distractors=(
            "the {asked} next door got out again and dug up the flowerbed",
            "I keep watching {asked} videos at 2am instead of sleeping",
            "{fname} named their {asked} Pickle, which is the best name ever",
        ),
    ),
    FactKind(
        "allergy",
        "single",
        (("food", "food"),),
        (
            (
                "the clinic confirmed it, I'm allergic to {food}",
                "turns out {food} is what's been giving me hives all year",
            ),
        ),
        ("Is there a food I need to stay away from?", "What am I allergic to?"),
        "{food}",
        distractors=(
            "food at the work canteen has been awful lately",
            "my colleague has a nut allergy so we checked the whole menu",
            "{fname} can't eat gluten so dinner parties are tricky",
        ),
    ),
    FactKind(
        "instrument",
        "single",
        (("instrument", "instrument"),),
        (
            (
                "signed up for {instrument} lessons on Thursday evenings",
                "my fingers hurt from practising {instrument} scales all week",
            ),
        ),
        ("Which instrument am I learning to play?", "What am I taking music lessons in?"),
        "{instrument}",
        distractors=(
            "the orchestra concert was great, the brass section especially",
            "learning anything new as an adult is humbling",
            "{fname} is taking {instr} lessons too, we compare notes",
        ),
    ),
    FactKind(
        "comfort_book",
        "single",
        (("book", "book"),),
        (("I've reread {book} about four times, it's my comfort read",),),
        ("Which novel do I keep going back to?", "What book do I read when I need cheering up?"),
        "{book}",
        distractors=(
            "my book club picked something really bleak this month",
            "I need a new novel for the flight, any ideas?",
        ),
    ),
    FactKind(
        "best_friend",
        "single",
        (("name", "name"),),
        (
            (
                "{name} and I have been inseparable since primary school",
                "known {name} since we were seven, still talk every day",
            ),
        ),
        ("Who is my oldest friend?", "Who's my childhood best mate?"),
        "{name}",
        distractors=(
            "a friend from uni messaged me out of nowhere",
            "old friends are the best friends",
            "{fname} and I used to be close but we drifted apart",
        ),
    ),
    FactKind(
        "coffee",
        "single",
        (("drink", "drink"),),
        (("my usual at the corner place is a {drink}, no sugar",),),
        ("What do I usually order at the café?", "How do I take my coffee?"),
        "{drink}",
        distractors=("the café near work raised its prices again", "coffee makes me jittery after 3pm"),
    ),
    FactKind(
        "hometown",
        "single",
        (("town", "town"),),
        (
            (
                "I grew up in {town}, a tiny place by the sea",
                "back when I was a kid in {town} we had one shop",
            ),
        ),
        ("Where was I raised?", "Which town is my childhood home?"),
        "{town}",
        distractors=("where I live now the sea is two hours away", "childhood memories are weird"),
    ),
    FactKind(
        "team",
        "single",
        (("team", "team"),),
        (("I've supported {team} since I was tiny, through all the bad seasons",),),
        ("Which club am I a fan of?", "What team do I root for?"),
        "{team}",
        distractors=("the match last night was so boring", "my coworkers are obsessed with fantasy football"),
    ),
    FactKind(
        "boss",
        "single",
        (("name", "name"),),
        (
            (
                "my manager {name} wants the quarterly report by Friday",
                "{name}, who runs our department, gave me good feedback today",
            ),
        ),
        ("What's my boss called?", "Who do I report to at work?"),
        "{name}",
        distractors=(
            "my boss's boss came to the office today and everyone panicked",
            "bosses who micromanage drive me up the wall",
            "my old manager {fname} from my previous job emailed me today",
        ),
    ),
    FactKind(
        "language",
        "single",
        (("language", "language"),),
        (
            (
                "been practising {language} on my commute every morning",
                "my {language} tutor says my pronunciation is improving",
            ),
        ),
        ("Which language am I studying?", "What foreign language am I working on?"),
        "{language}",
        distractors=(
            "languages were my worst subject at school",
            "learning a new language at thirty-five is hard",
        ),
    ),
    FactKind(
        "birthday",
        "single",
        (("date", "date"),),
        (("my birthday is {date}, can't believe another year went by",),),
        ("When's my birthday?", "On what day do I celebrate getting older?"),
        "{date}",
        distractors=(
            "it was my coworker's birthday so we had cake at lunch",
            "{fname}'s birthday is next week, need a card",
        ),
    ),
    FactKind(
        "partner_job",
        "single",
        (("job", "job"),),
        (("my partner works as a {job}, so weekends are our only time together",),),
        ("What does my partner do for a living?", "What's my other half's profession?"),
        "{job}",
        distractors=(
            "my partner and I are finally planning a trip",
            "job hunting is miserable",
            "{fname} works as a teacher, they say the holidays are the only perk",
        ),
    ),
    FactKind(
        "game",
        "single",
        (("game", "game"),),
        (("I've sunk 300 hours into {game} and I regret nothing",),),
        ("Which video game am I hooked on?", "What game have I been playing nonstop?"),
        "{game}",
        distractors=("video games are getting so expensive", "my nephew plays games all day"),
    ),
    # --- multi: two statements linked by a bridge entity ---
    FactKind(
        "hobby_friend_city",
        "multi",
        (("name", "name"), ("hobby", "hobby"), ("city", "city")),
        (
            ("my old roommate {name} is the one who got me into {hobby}",),
            ("{name} just moved to {city} for a new job, I'll miss them",),
        ),
        ("Where does the friend who introduced me to {hobby} live now?",),
        "{city}",
    ),
    FactKind(
        "cousin_wedding",
        "multi",
        (("name", "name"), ("job", "job"), ("city", "city")),
        (
            ("my cousin {name} works as a {job}, crazy hours",),
            ("{name}'s wedding is going to be in {city} next spring",),
        ),
        ("Where is my cousin, the {job}, getting married?",),
        "{city}",
    ),
    FactKind(
        "kid_recital",
        "multi",
        (("name", "name"), ("instrument", "instrument"), ("venue", "venue")),
        (
            ("my {said} {name} picked the {instrument} at school this term",),
            ("{name}'s first recital is at {venue}, I'm so nervous for them",),
        ),
        ("Where does my kid who plays {instrument} perform?",),
        "{venue}",
        pair="kid",
    ),
    FactKind(
        "coworker_company",
        "multi",
        (("name", "name"), ("book", "book"), ("company", "company")),
        (
            ("{name} from the office lent me {book}",),
            ("{name} handed in their notice, they're joining {company} next month",),
        ),
        ("Which company is the colleague who lent me {book} moving to?",),
        "{company}",
    ),
    FactKind(
        "trip_companion",
        "multi",
        (("name", "name"), ("city", "city"), ("month", "month")),
        (
            ("booked flights to {city} for {month}, finally a proper break",),
            ("{name} says they're coming along to {city}, should be fun",),
        ),
        ("Who is travelling with me on my {month} trip?",),
        "{name}",
    ),
    FactKind(
        "neighbour_bread",
        "multi",
        (("name", "name"), ("job", "job"), ("bread", "bread")),
        (
            ("turns out my neighbour {name} is a retired {job}",),
            ("{name} is teaching me to make {bread} on Sunday mornings",),
        ),
        ("What is the retired {job} next door teaching me to bake?",),
        "{bread}",
    ),
    FactKind(
        "gift",
        "multi",
        (("name", "name"), ("hobby", "hobby"), ("gift", "gift")),
        (
            ("{name}'s birthday is coming up and they're really into {hobby} lately",),
            ("ordered {gift} for {name}, hope it arrives in time",),
        ),
        ("What present did I get for my friend who loves {hobby}?",),
        "{gift}",
    ),
    # --- update: old then new; the newer one is the answer ---
    FactKind(
        "city_move",
        "update",
        (("x", "city"), ("y", "city")),
        (
            ("I've been living in {x} for about three years now, still love the neighbourhood",),
            (
                "the movers finally dropped everything at our new flat in {y}",
                "first week living in {y} done, the new place is bigger than the old one",
            ),
        ),
        ("Which city do I live in these days?", "Where's home for me right now?"),
        "{y}",
    ),
    FactKind(
        "employer",
        "update",
        (("x", "company"), ("y", "company")),
        (
            ("work at {x} has been pretty calm this month",),
            ("first week at {y} done, the new job is intense but good",),
        ),
        ("Where do I work at the moment?", "Who is my current employer?"),
        "{y}",
    ),
    FactKind(
        "car",
        "update",
        (("x", "car"), ("y", "car")),
        (
            ("my {x} is making that rattling noise again",),
            ("sold the old car and picked up a {y} yesterday",),
        ),
        ("What car am I driving now?", "What's my current ride?"),
        "{y}",
    ),
    FactKind(
        "diet",
        "update",
        (("x", "diet"), ("y", "diet")),
        (
            ("been eating {x} for two months and honestly I feel great",),
            ("gave up on the old eating plan, I'm fully {y} now",),
        ),
        ("What diet do I follow currently?", "How am I eating these days?"),
        "{y}",
    ),
    FactKind(
        "exercise",
        "update",
        (("x", "sport"), ("y", "sport")),
        (
            ("I do {x} three times a week before work",),
            ("quit {x}, switched to {y} and my knees are thanking me",),
        ),
        ("What's my main exercise nowadays?", "Which workout do I do at the moment?"),
        "{y}",
    ),
    FactKind(
        "team_lead",
        "update",
        (("x", "name"), ("y", "name")),
        (
            ("my team lead {x} approved my holiday request",),
            ("{y} took over as our team lead after the reorg",),
        ),
        ("Who leads my team now?", "Who's in charge of my team currently?"),
        "{y}",
    ),
    FactKind(
        "show",
        "update",
        (("x", "show"), ("y", "show")),
        (
            ("I'm completely hooked on {x}, watching an episode every night",),
            ("started {y} last night and I'm already three episodes in",),
        ),
        ("What series am I watching right now?", "Which TV show am I currently into?"),
        "{y}",
    ),
    FactKind(
        "commute",
        "update",
        (("x", "commute"), ("y", "commute")),
        (
            ("I take {x} to the office, it's about forty minutes",),
            ("switched to {y} for getting to the office, so much better",),
        ),
        ("How do I get to work these days?", "What's my commute like now?"),
        "{y}",
    ),
    # --- temporal: answer is the date ---
    FactKind(
        "driving_test",
        "temporal",
        (),
        (("passed my driving test today!!",),),
        ("When did I get my driving licence?",),
        "{date}",
        distractors=(
            "thinking about finally learning to drive this year",
            "{fname} failed their driving test for the second time today",
        ),
    ),
    FactKind(
        "half_marathon",
        "temporal",
        (),
        (("ran my first half marathon yesterday, legs destroyed",),),
        ("When did I complete my first half marathon?", "What day did I run 21k for the first time?"),
        "{date}",
        day_offset=1,
        distractors=("maybe I'll train for a half marathon someday", "ran a slow 10k today, felt heavy"),
    ),
    FactKind(
        "wisdom_teeth",
        "temporal",
        (),
        (("had my wisdom teeth out this morning, chipmunk face",),),
        ("When was my dental surgery?", "When did I get my wisdom teeth removed?"),
        "{date}",
        distractors=(
            "the dentist says my wisdom teeth might need to come out eventually",
            "had a filling done today, my jaw is numb",
        ),
    ),
    FactKind(
        "allotment",
        "temporal",
        (),
        (("picked up the keys to the allotment today, so many weeds",),),
        ("When did I get my garden plot?",),
        "{date}",
        distractors=("there's a waiting list for allotments in our area",),
    ),
    FactKind(
        "concert",
        "temporal",
        (("band", "band"),),
        (("saw {band} live last night, my ears are ringing",),),
        ("When did I go to the {band} gig?", "On what date did I see {band} play?"),
        "{date}",
        day_offset=1,
        distractors=("{band} announced a tour but tickets sold out instantly",),
    ),
    FactKind(
        "tattoo",
        "temporal",
        (),
        (("got my first tattoo today, a tiny fern on my wrist",),),
        ("When did I get inked for the first time?",),
        "{date}",
        distractors=("my sister has loads of tattoos, I'm too scared", "got my ears pierced today"),
    ),
    FactKind(
        "thesis",
        "temporal",
        (),
        (("handed in my thesis today, I could cry",),),
        ("When did I submit my dissertation?",),
        "{date}",
        distractors=("my dissertation supervisor wants another draft",),
    ),
    FactKind(
        "skydive",
        "temporal",
        (),
        (("did a tandem skydive yesterday, still shaking",),),
        ("When did I jump out of a plane?", "When was my skydiving day?"),
        "{date}",
        day_offset=1,
        distractors=(
            "skydiving looks terrifying, no way I'd ever do it",
            "went paragliding today, the view was unreal",
        ),
    ),
    FactKind(
        "wrist",
        "temporal",
        (),
        (("fell off my skateboard today and fractured my wrist",),),
        ("When did I break my wrist?",),
        "{date}",
        distractors=("my wrist aches when I type too long", "sprained my ankle today on the stairs"),
    ),
    FactKind(
        "kitchen",
        "temporal",
        (),
        (("the kitchen renovation is finally finished today!",),),
        ("When was the kitchen redo done?",),
        "{date}",
        distractors=("kitchen renovations always take twice as long as planned",),
    ),
    # --- distractor: evidence avoids the question words ---
    FactKind(
        "new_dog",
        "distractor",
        (("name", "name"),),
        (("the puppy finally has a name: {name}. the kids picked it",),),
        ("What did we call our new dog?",),
        "{name}",
        distractors=(
            "my neighbour's dog won't stop barking at night",
            "what's a good name for a dog? asking for a friend",
            "saw a dog called Captain at the park, so cute",
        ),
    ),
    FactKind(
        "favourite_restaurant",
        "distractor",
        (("cuisine", "cuisine"), ("street", "street")),
        (("that little {cuisine} spot on {street} is where we end up every Friday now",),),
        ("What's my favourite restaurant?", "Where do I like to go out to eat?"),
        "{street}",
        distractors=(
            "the restaurant at work closed down",
            "favourite restaurant lists online are just ads",
            "we went out to eat for my mum's birthday, the restaurant was too loud",
        ),
    ),
    FactKind(
        "airline",
        "distractor",
        (("airline", "airline"),),
        (("booked with {airline} again, their legroom is unbeatable",),),
        ("Which airline do I prefer to fly with?",),
        "{airline}",
        distractors=(
            "flights are so expensive this year",
            "my flight to the conference got delayed three hours",
            "do you prefer window or aisle when you fly?",
        ),
    ),
    FactKind(
        "back_doctor",
        "distractor",
        (("name", "name"),),
        (("Dr {name} at the physio clinic finally sorted out my spine",),),
        ("Which doctor fixed my back pain?",),
        "{name}",
        distractors=(
            "my doctor appointment got moved again",
            "back pain is apparently super common at desk jobs",
            "the doctor said my blood pressure is fine",
        ),
    ),
    FactKind(
        "best_film",
        "distractor",
        (("movie", "movie"),),
        (("{movie} made me sob in the cinema, nothing else this year comes close",),),
        ("What's the best movie I've seen this year?",),
        "{movie}",
        distractors=(
            "we watched a movie last night, it was fine I guess",
            "the best movie of all time debate again",
            "this year has been slow for movies",
        ),
    ),
    FactKind(
        "holiday",
        "distractor",
        (("place", "place"),),
        (("two weeks in {place} and I never wanted to leave",),),
        ("Where did I go on holiday?", "Where was my last vacation?"),
        "{place}",
        distractors=(
            "holiday planning is so stressful",
            "my coworker's holiday photos are everywhere",
            "I need a vacation so badly",
        ),
    ),
)


def kinds_of(qtype: str) -> tuple[FactKind, ...]:
    """Every kind of the question type, in a fixed order."""
    return tuple(k for k in KINDS if k.qtype == qtype)
