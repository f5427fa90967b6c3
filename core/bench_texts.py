"""The fixed text corpus of ``vtts bench``: varied English sentences, mixed into 1–4 sentence requests.

Fixed (not generated) so every run, and the in-process engine ceiling, synthesize the same kind of text;
the mix of short and long sentences, questions, lists and a few numbers is what a chat or reader app
sends. Plain prose keeps the measurement about speed, not about text normalization.
"""

from __future__ import annotations

import random

SENTENCES: tuple[str, ...] = (
    "Yes, of course.",
    "The train leaves the station at half past seven every morning.",
    "Could you tell me where the nearest pharmacy is?",
    "She opened the window and let the cool evening air fill the room.",
    "Thank you for calling; your request has been received.",
    "The committee will review the proposal before the end of the month.",
    "Rain is expected in the afternoon, so bring an umbrella.",
    "He had never seen the ocean before that summer.",
    "Please remember to save your work before closing the application.",
    "Mountains rose on both sides of the narrow valley, their peaks hidden in clouds.",
    "I think we should start with the simplest solution and measure it.",
    "The library is closed on public holidays.",
    "What time does the meeting start tomorrow?",
    "A small dog barked twice and then ran back into the garden.",
    "Turn left at the second traffic light, then continue straight for two miles.",
    "The results were better than anyone had expected.",
    "Our team is working on a fix, and we will update you as soon as possible.",
    "Bread, milk, eggs and a bag of apples were all she needed.",
    "The old clock in the hallway stopped at exactly midnight.",
    "Welcome back!",
    "If the light turns red, wait until it changes before you cross the street.",
    "The museum's new exhibition explores three centuries of maritime history.",
    "Nobody knew who had left the letter on the kitchen table.",
    "Your package has been shipped and should arrive within three days.",
    "Scientists observed the comet for several weeks as it approached the sun.",
    "Is there anything else I can help you with today?",
    "The children laughed as the kite climbed higher and higher into the sky.",
    "Press the green button to confirm, or the red one to cancel.",
    "After a long silence, he finally agreed to tell them the whole story.",
    "Coffee is served in the lounge from eight until ten.",
    "The river flooded the lower fields, but the village stayed dry.",
    "Please speak slowly and clearly after the tone.",
    "Learning a new language takes patience, practice and a bit of courage.",
    "The storm knocked out power across most of the northern district overnight.",
    "Dinner is ready.",
    "We compared four different approaches and chose the one that used the least memory.",
    "The audience stood and applauded for nearly five minutes.",
    "Keep your ticket until the end of the journey, as inspectors may ask to see it.",
    "Somewhere in the distance, a church bell began to ring.",
    "The report is due on Friday, so let's finish the draft by Wednesday.",
    "Why does the sky look blue during the day but orange at sunset?",
    "The quiet streets slowly filled with people as the market opened.",
)


class TextSource:
    """A deterministic stream of request texts: each joins 1–4 distinct corpus sentences.

    One seeded generator shared by all clients (and by the engine ceiling, from the same seed), so two runs
    with the same seed send the same sequence of texts.
    """

    def __init__(self, seed: int = 0, min_sentences: int = 1, max_sentences: int = 4) -> None:
        if not 1 <= min_sentences <= max_sentences <= len(SENTENCES):
            raise ValueError("need 1 <= min_sentences <= max_sentences <= corpus size")
        self._rng = random.Random(seed)
        self._min = min_sentences
        self._max = max_sentences

    def next(self) -> str:
        count = self._rng.randint(self._min, self._max)
        return " ".join(self._rng.sample(SENTENCES, count))
