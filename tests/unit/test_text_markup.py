import pytest

from tests.deadline import within
from vtts.workers.text.markup import clean, strip_emoji, strip_markdown


def test_markdown_keeps_words_and_makes_sentences() -> None:
    assert strip_markdown("## Plan\n* **first** step\n2. `second` step") == "Plan.\nfirst step.\nsecond step."
    assert strip_markdown("See [the docs](https://x.y/z) and ![a cat](c.png).") == "See the docs and a cat."
    assert strip_markdown("snake_case_name stays") == "snake_case_name stays"
    assert strip_markdown("| a | b |\n|---|---|\n| 1 | 2 |").split("\n") == ["a, b.", "", "1, 2."]


def test_emoji_and_spaces() -> None:
    assert strip_emoji("hi 👋🏽 there 🇰🇷!").split() == ["hi", "there", "!"]
    assert clean("a\u00a0b  c\n\n\n d ５") == "a b c\n\nd 5"


#: 4096-character inputs that made the old rules backtrack: "|" and newlines (the table rule, cubic: 23 s at
#: 2000 newlines), a heading or list item with a long run of spaces (cubic), unclosed links and emphasis
#: (quadratic), and runs of blank lines for every line-anchored rule
ADVERSARIAL = {
    "table rule": "|" + "\n" * 4095,
    "table rule, spaces": "|" + " \n" * 2047,
    "heading": "# a" + " " * 4090 + "x",
    "bullet": "- a" + " \t" * 2045 + "x",
    "rule": "-" + " \n-" * 1365,
    "links": "[" * 4096,
    "images": "![a](" * 819,
    "bold": "**a " * 1024,
    "strike": "~~a " * 1024,
    "quote": ">" + " \n" * 2047,
    "fence": "```" + "\n " * 2046,
}


@pytest.mark.parametrize("text", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_markdown_rules_are_linear(text: str) -> None:
    """Every rule is line-local with no two quantifiers sharing characters: milliseconds for 4 KB."""
    with within(2.0, "clean()"):
        clean(text)


def test_closing_hashes_and_table_cells() -> None:
    assert strip_markdown("## Plan ##\nbody") == "Plan.\nbody"
    assert strip_markdown("|  a  |b|") == "a, b."
