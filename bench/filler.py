"""Chit-chat filler for the generator: templated, but varied across many topics.

Filler shares everyday vocabulary with the questions (work, family, pets, food,
travel, films ...) so that keyword overlap alone does not find the evidence.
Slot values here never overlap the fact pools in ``bench.facts``, so filler
never states a planted answer.
"""

from __future__ import annotations

import random

WORDS: dict[str, tuple[str, ...]] = {
    "dish": (
        "lasagne",
        "a green curry",
        "shakshuka",
        "ramen from scratch",
        "a mushroom risotto",
        "fish tacos",
        "dumplings",
        "a lentil soup",
        "paella",
        "banana bread",
    ),
    "weather": ("pouring", "freezing", "weirdly warm", "so windy", "grey and drizzly", "boiling hot"),
    "chore": (
        "the laundry",
        "my taxes",
        "the gutters",
        "the fridge",
        "my inbox",
        "the garage",
        "the wardrobe",
        "the bathroom grout",
    ),
    "thing": (
        "headphones",
        "a desk lamp",
        "running shoes",
        "a rice cooker",
        "a backpack",
        "a phone case",
        "an office chair",
        "a kettle",
    ),
    "genre": (
        "true crime podcasts",
        "sci-fi novels",
        "cooking shows",
        "old westerns",
        "nature documentaries",
        "stand-up specials",
        "fantasy series",
        "jazz records",
    ),
    "feeling": (
        "tired",
        "a bit stressed",
        "pretty good",
        "restless",
        "weirdly productive",
        "burnt out",
        "excited",
        "bored",
    ),
    "day": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "the weekend", "Sunday"),
    "bigcity": ("Paris", "Rome", "Tokyo", "Berlin", "Chicago", "Madrid", "Vienna", "Seoul"),
    "task": (
        "a slide deck",
        "the budget spreadsheet",
        "a bug in the billing code",
        "the onboarding doc",
        "a grant application",
        "the client proposal",
        "a database migration",
    ),
    "plant": ("basil", "a monstera", "tomatoes", "a fiddle-leaf fig", "succulents", "chillies"),
    "snack": ("crisps", "dark chocolate", "popcorn", "olives", "rice cakes", "cheese on toast"),
    "relative": ("mum", "dad", "aunt", "grandad", "uncle", "nan"),
    "num": ("two", "three", "four", "five", "six", "ten"),
    "fname": (
        "Jess",
        "Marco",
        "Hana",
        "Pete",
        "Olu",
        "Bea",
        "Sam",
        "Dev",
        "Lou",
        "Nikhil",
        "Rosa",
        "Theo",
        "Kat",
        "Ben",
        "Mina",
        "Raf",
    ),
    "instr": ("guitar", "saxophone", "harp", "flute", "accordion"),
    "gcar": ("an old Golf", "a camper van", "an electric hatchback", "a pickup"),
    "gplace": ("Iceland", "Cornwall", "the Alps", "Bali", "Mexico City", "the Lake District"),
}

TOPICS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # topic: (user sentences, bot replies)
    "cooking": (
        (
            "tried making {dish} tonight, came out better than expected",
            "what's the trick to getting {dish} right? mine is always bland",
            "meal prepped {dish} for the whole week, feeling smug",
            "I burnt {dish} again, the smoke alarm went off",
        ),
        (
            "Nice! Did you follow a recipe or improvise?",
            "A pinch more salt and some acid at the end usually helps.",
            "Meal prep is such a time saver. What's next week's plan?",
            "Happens to everyone. Lower heat and patience usually fix it.",
        ),
    ),
    "weather": (
        (
            "it's {weather} out again, so much for spring",
            "the weather has been {weather} all week",
            "walked to the shop and it was {weather}, regret",
        ),
        (
            "Ugh, sounds miserable. Got any cosy plans for indoors?",
            "Hopefully it clears up for the weekend.",
            "Layers and a good umbrella, I suppose!",
        ),
    ),
    "work": (
        (
            "spent the whole day on {task}, my brain is mush",
            "work was {feeling} today, too many meetings",
            "a colleague asked me to review {task} at 5pm on {day}",
            "I finally shipped {task}",
            "my team has a planning day on {day}, dreading it",
        ),
        (
            "That's a lot. Did you manage to take a proper break?",
            "Congrats on shipping it!",
            "Late requests are the worst. Maybe push back a little next time?",
            "Planning days can be useful if there's a clear agenda. Want help preparing?",
        ),
    ),
    "chores": (
        (
            "finally cleaned {chore}, why did I put it off so long",
            "I should really sort out {chore} this weekend",
            "spent {day} doing {chore}, thrilling stuff",
        ),
        (
            "The relief of finishing a chore you've been avoiding is real.",
            "Maybe break it into small pieces? Twenty minutes at a time.",
            "Very glamorous. Reward yourself!",
        ),
    ),
    "shopping": (
        (
            "bought new {thing}, the old ones finally died",
            "can't decide between two {thing}, help",
            "returned {thing} because it broke in a week",
        ),
        (
            "What made you pick that one?",
            "What matters most to you: price, looks or durability?",
            "Annoying! At least you got the refund.",
        ),
    ),
    "media": (
        (
            "been binging {genre} lately, can't stop",
            "any recommendations for {genre}?",
            "fell asleep during a film again, classic me",
            "the {genre} I tried last night were disappointing",
        ),
        (
            "What is it about them that hooks you?",
            "Do you like older classics or recent stuff?",
            "Sleep is also a valid way to watch a movie.",
            "Shame. Want to try something different?",
        ),
    ),
    "mood": (
        (
            "feeling {feeling} today, not sure why",
            "honestly just {feeling} this week",
            "slept badly again, woke up at 4am",
        ),
        (
            "Thanks for telling me. Anything in particular on your mind?",
            "Weeks like that happen. Be gentle with yourself.",
            "Rough. Maybe an early night tonight?",
        ),
    ),
    "travel": (
        (
            "thinking about a weekend in {bigcity} sometime",
            "my friend just got back from {bigcity}, jealous",
            "train tickets to {bigcity} are absurdly priced",
        ),
        (
            "{bigcity} is lovely. Would you go for the food or the sights?",
            "Travel envy is real! Any trips on your own horizon?",
            "Booking early sometimes helps a lot.",
        ),
    ),
    "garden": (
        (
            "my {plant} is looking sad, too much water maybe?",
            "repotted {plant} on the balcony today",
            "the snails ate my {plant} overnight",
        ),
        (
            "Yellow leaves often mean overwatering. Let the soil dry out a bit.",
            "Nice, fresh soil works wonders.",
            "Snails are relentless. Copper tape might help.",
        ),
    ),
    "snacks": (
        ("ate way too much {snack} tonight", "trying to cut down on {snack}, failing"),
        ("Everyone needs a treat sometimes.", "Maybe keep a healthier swap around the house?"),
    ),
    "family": (
        (
            "my {relative} called to ask how to use the new phone again",
            "visiting my {relative} on {day}, it's been a while",
            "family group chat is chaos today",
        ),
        (
            "Tech support for family is a full-time job!",
            "That'll be nice. Anything planned?",
            "Family chats are a genre of their own.",
        ),
    ),
    "tech": (
        (
            "my laptop keeps freezing when I open too many tabs",
            "should I switch to a new phone or wait a year?",
            "the wifi at home drops every evening",
        ),
        (
            "Could be memory. How much RAM does it have?",
            "If yours still works fine, waiting is usually fine.",
            "Try changing the router channel; neighbours' networks often clash in the evening.",
        ),
    ),
    "fitness": (
        (
            "went for a walk at lunch, felt nice",
            "did {num} push-ups this morning, small wins",
            "my step count was pathetic today",
        ),
        ("Small wins add up!", "Walks are underrated.", "Tomorrow's another day."),
    ),
    "pets_general": (
        (
            "a dog in the park stole someone's sandwich today, I was crying laughing",
            "cats are so judgmental, my friend's cat just stares at me",
            "thinking about whether I'd ever want a pet",
        ),
        (
            "Dogs have no shame, it's wonderful.",
            "They do have a certain look about them.",
            "Pets are a big commitment, but so rewarding.",
        ),
    ),
    "friends": (
        (
            "had dinner with some friends, we stayed out way too late",
            "a friend cancelled on me again, third time this month",
            "group holiday planning is impossible",
        ),
        (
            "Sounds like fun! Worth the tired morning?",
            "That's frustrating. Have you told them how it feels?",
            "Maybe one person just books it and everyone else follows.",
        ),
    ),
    "news": (
        ("the news is so depressing lately", "read an article about sleep and now I'm paranoid"),
        ("It helps to take breaks from it sometimes.", "Articles like that can make anyone anxious."),
    ),
    "money": (
        (
            "rent went up again, ugh",
            "trying to stick to a budget this month, {num} days in",
            "paid off my credit card, feels great",
        ),
        (
            "That stings. Is it within the usual increase?",
            "Good luck! Tracking is the hardest part.",
            "Huge! What a relief.",
        ),
    ),
    "people": (
        (
            "my friend {fname}'s sister is getting married in the summer",
            "{fname} at work just bought {gcar}, won't shut up about it",
            "my coworker {fname} started learning {instr}, the whole office hears about it",
            "{fname} moved flats again, that's the third time this year",
            "my cousin's dog had puppies, {fname} wants one",
            "{fname} recommended a restaurant but it was closed when we got there",
            "{fname} is back from {gplace} with about a thousand photos",
            "had lunch with {fname}, we talked about our jobs for two hours",
            "{fname} from the gym asked if I'd join a running club",
            "{fname}'s kid has a school play next week, we're all invited",
            "my neighbour {fname} keeps parking in my spot",
            "{fname} got a new job and is already complaining about the boss",
            "{fname} is allergic to cats but still adopted one",
            "{fname} told me their brother is moving abroad",
        ),
        (
            "Sounds like {fname} keeps life interesting!",
            "How do you feel about that?",
            "Ha, everyone has a friend like that.",
            "That's a lot of news in one go.",
            "Will you go?",
            "That's kind of sweet, honestly.",
        ),
    ),
    "plans": (
        (
            "thinking about switching gyms, mine is always packed",
            "booked a dentist check-up for next month",
            "I should call my {relative} more often",
            "we might repaint the living room",
            "looking at flights to {gplace} for next year, just dreaming",
            "maybe I'll pick up {instr} again, I played a bit as a teen",
            "considering a new car, the old one is tired",
            "I want to read more books this year",
        ),
        (
            "Go for it!",
            "Planning is half the fun.",
            "What's holding you back?",
            "That sounds like a nice goal.",
        ),
    ),
    "city_life": (
        (
            "the city is so loud at night, construction everywhere",
            "a new bakery opened round the corner",
            "my street has been dug up for {num} weeks now",
        ),
        ("Earplugs might save you.", "Have you tried it yet?", "Roadworks never seem to end."),
    ),
}

OPENERS = (
    "",
    "",
    "",
    "hey, ",
    "ok so ",
    "random thought: ",
    "quick one - ",
    "lol ",
    "hmm, ",
    "so, ",
    "guess what, ",
    "morning! ",
    "evening. ",
    "not much news but ",
    "honestly ",
)
FOLLOWUPS = (
    "",
    "",
    ".",
    ". anyway.",
    ", what do you think?",
    ". how's your day going?",
    " lol",
    ". just venting.",
    ". any tips?",
    ". sorry for rambling.",
    ". life, eh.",
    ". we'll see how it goes.",
    " haha",
    "! honestly",
    ". not sure how I feel about it",
)
BOT_EXTRAS = (
    "It sounds like you've had a lot going on lately.",
    "I always enjoy hearing about your week.",
    "Small things like that can make a whole day better.",
    "That's very relatable, to be honest.",
    "Sometimes it helps just to say it out loud.",
    "It's good that you noticed that about yourself.",
    "I hope the rest of the week is kinder to you.",
    "You tend to handle these things well.",
    "Let's see how you feel about it in a few days.",
    "There's no rush to figure it all out.",
)
BOT_TAILS = (
    "",
    "",
    " Let me know how it goes.",
    " I'm here if you want to talk it through.",
    " Anything else on your mind today?",
    " Keep me posted!",
)
GENERIC_REPLIES = (
    "Got it. How are you feeling about everything else?",
    "Interesting! Tell me more?",
    "That makes sense.",
    "Ha, I can picture it.",
)


def fill(template: str, rng: random.Random, extra: dict[str, str] | None = None) -> str:
    """Fill ``{slot}`` names from WORDS (or ``extra``), drawing each slot once."""
    values = dict(extra or {})
    for slot, pool in WORDS.items():
        if "{" + slot + "}" in template and slot not in values:
            values[slot] = rng.choice(pool)
    return template.format(**values)


def filler_exchange(rng: random.Random) -> tuple[str, str]:
    """(user message, bot response) of one chit-chat exchange."""
    topic = rng.choice(sorted(TOPICS))
    sentences, replies = TOPICS[topic]
    slots = {slot: rng.choice(pool) for slot, pool in WORDS.items()}
    user = rng.choice(OPENERS) + rng.choice(sentences).format(**slots) + rng.choice(FOLLOWUPS)
    if rng.random() < 0.5:  # a second sentence from another topic, as people drift
        other = TOPICS[rng.choice(sorted(TOPICS))][0]
        user += ". also " + rng.choice(other).format(**slots)
    pick = rng.choice(replies) if rng.random() < 0.85 else rng.choice(GENERIC_REPLIES)
    bot = pick.format(**slots) + rng.choice(BOT_TAILS)
    if rng.random() < 0.5:
        bot += " " + rng.choice(BOT_EXTRAS)
    return user, bot
