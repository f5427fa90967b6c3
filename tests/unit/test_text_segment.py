from vtts.workers.text.segment import base_language, split_long, split_segments, split_sentences


def test_english_knows_abbreviations_decimals_and_initials() -> None:
    assert split_sentences("Dr. Smith paid $3.50 today. J. R. Smith left. Done.") == [
        "Dr. Smith paid $3.50 today.", "J. R. Smith left.", "Done."]


def test_korean_japanese_chinese() -> None:
    korean = split_sentences("안녕하세요. 3.5킬로그램입니다! 좋아요?", "ko")
    assert korean == ["안녕하세요.", "3.5킬로그램입니다!", "좋아요?"]
    assert split_sentences("「はい。」と言った。次です！", "ja") == ["「はい。」", "と言った。", "次です！"]
    assert split_sentences("今天很好。明天呢？好", "zh") == ["今天很好。", "明天呢？", "好"]


def test_abbreviation_rules_are_english_only() -> None:
    assert split_sentences("Il est venu vers 5 h. Puis il est parti.", "fr") == [
        "Il est venu vers 5 h.", "Puis il est parti."]


def test_paragraphs_end_sentences() -> None:
    assert split_sentences("A heading\n\nThe body text") == ["A heading", "The body text"]


def test_clauses_and_limits() -> None:
    long = "alpha beta, gamma delta; epsilon " + "word " * 40
    pieces = split_long(long.strip(), 50)
    assert all(len(p) <= 50 for p in pieces) and pieces[0].endswith((",", ";"))
    cjk = "今天天气很好，我们去公园散步吧，" * 10
    assert all(len(p) <= 30 for p in split_long(cjk, 30))


def test_first_segment_short_and_nothing_lost() -> None:
    text = ("When the long first sentence finally begins, it carries on through many clauses, each of them "
            "adding words, until the reader tires. Second sentence.")
    segments = split_segments(text, first_max_chars=60)
    assert len(segments[0]) <= 60 and segments[-1] == "Second sentence."
    assert " ".join(segments).split() == text.split()
    assert split_segments(text, first_max_chars=0)[0].endswith("tires.")


def test_base_language() -> None:
    assert base_language("en-US") == "en" and base_language("ko_KR") == "ko" and base_language(None) == ""
