import pytest

from vtts.workers.text.segment import split_long, split_segments, split_sentences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One. Two! Three?", ["One.", "Two!", "Three?"]),
        ("Dr. Smith paid $3.50 today. He left.", ["Dr. Smith paid $3.50 today.", "He left."]),
        ("It costs 2.5 million, e.g. a lot. Yes.", ["It costs 2.5 million, e.g. a lot.", "Yes."]),
        ("J. R. R. Tolkien wrote it. Done.", ["J. R. R. Tolkien wrote it.", "Done."]),
        ('He said "stop." Then he went.', ['He said "stop."', "Then he went."]),
        ("Wait... what?! No.", ["Wait...", "what?!", "No."]),
        ("no final mark", ["no final mark"]),
        ("  \n\t ", []),
        ("日本語です。次の文！最後", ["日本語です。", "次の文！", "最後"]),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_split_long_cuts_at_clauses_then_spaces_never_mid_word() -> None:
    sentence = "alpha beta, gamma delta; epsilon " + "word " * 40
    pieces = split_long(sentence.strip(), 50)
    assert all(len(p) <= 50 for p in pieces)
    assert pieces[0].endswith(",") or pieces[0].endswith(";")
    assert " ".join(pieces).split() == sentence.split()


def test_first_segment_is_short_when_a_clause_allows() -> None:
    text = ("When the long first sentence finally begins, it carries on through many clauses, each of them "
            "adding words, until the reader tires. Second sentence.")
    segs = split_segments(text, first_max_chars=60)
    assert len(segs[0]) <= 60
    assert segs[-1] == "Second sentence."
    assert " ".join(segs).split() == text.split()


def test_no_text_is_lost() -> None:
    text = "A. " * 50 + "Then a long one, with clauses, and more clauses, and still more words to read aloud."
    assert " ".join(split_segments(text, max_chars=30, first_max_chars=10)).split() == text.split()
