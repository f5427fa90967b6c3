from vtts.workers.text.markup import clean, strip_emoji, strip_markdown


def test_markdown_keeps_words_and_makes_sentences() -> None:
    assert strip_markdown("## Plan\n* **first** step\n2. `second` step") == "Plan.\nfirst step.\nsecond step."
    assert strip_markdown("See [the docs](https://x.y/z) and ![a cat](c.png).") == "See the docs and a cat."
    assert strip_markdown("snake_case_name stays") == "snake_case_name stays"
    assert strip_markdown("| a | b |\n|---|---|\n| 1 | 2 |").split("\n") == ["a, b.", "", "1, 2."]


def test_emoji_and_spaces() -> None:
    assert strip_emoji("hi 👋🏽 there 🇰🇷!").split() == ["hi", "there", "!"]
    assert clean("a\u00a0b  c\n\n\n d ５") == "a b c\n\nd 5"
