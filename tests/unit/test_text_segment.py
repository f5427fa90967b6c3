import pytest

from vtts.workers.text.segment import (
    base_language,
    first_segment_chars,
    split_first_phrase,
    split_long,
    split_middle_phrase,
    split_segments,
    split_sentences,
)


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


@pytest.mark.parametrize(("sentence", "head"), [
    # before a preposition or conjunction, with a comma for the voice's continuation contour
    ("The train leaves the station at half past seven every morning.", "The train leaves the station,"),
    ("She opened the window and let the cool evening air fill the room.", "She opened the window,"),
    # a clause mark wins when it comes first, after as few as two words
    ("Hello Doctor Smith, you owe five dollars and fifty cents.", "Hello Doctor Smith,"),
    # a head needs four words before a phrase word: "The old clock | in the hallway" would split a noun phrase
    ("The old clock in the hallway stopped at exactly midnight.", "The old clock in the hallway stopped,"),
    # "and"/"or" need four words after them (lists), and never split "higher and higher"
    ("The children laughed as the kite climbed higher and higher into the sky.",
     "The children laughed as the kite climbed higher and higher,"),
])
def test_first_phrase_boundaries(sentence: str, head: str) -> None:
    got = split_first_phrase(sentence, "en")
    assert got is not None and got[0] == head
    assert (got[0] + " " + got[1]).replace(",", "").split() == sentence.replace(",", "").split()


@pytest.mark.parametrize("sentence", [
    "Dinner is ready.",  # short sentences stay whole: they are fast already
    "The museum's new exhibition explores three centuries of maritime history.",  # no boundary
    "The library is closed on public holidays.",  # the tail would be too short to stand alone
])
def test_no_first_phrase(sentence: str) -> None:
    assert split_first_phrase(sentence, "en") is None


def test_phrase_words_are_english_only() -> None:
    sentence = "Der Zug verlässt den Bahnhof in der Frühe um halb acht."
    assert split_first_phrase(sentence, "de") is None  # no phrase words; "in" is not a German phrase rule
    assert split_first_phrase("Ich weiß, dass der Zug um halb acht abfährt.", "de") == (
        "Ich weiß,", "dass der Zug um halb acht abfährt.")


def test_first_segment_modes() -> None:
    text = "The train leaves the station at half past seven every morning. It is never late."
    assert split_segments(text, first_segment="phrase")[:2] == [
        "The train leaves the station,", "at half past seven every morning."]
    assert split_segments(text, first_segment="clause")[0] == split_sentences(text)[0]
    assert split_segments(text, first_segment="sentence") == split_sentences(text)
    assert split_segments(text, first_max_chars=0, first_segment="phrase") == split_sentences(text)
    with pytest.raises(ValueError):
        split_segments(text, first_segment="word")


def test_first_segment_bounded_in_an_engines_tokens() -> None:
    """An engine that counts its own tokens (Kokoro's phonemes) gets a first segment within its bound, cut
    at clause marks only (never mid-clause), the rest re-joined as written: the cut Kokoro used to re-do."""
    def count(text: str) -> int:
        return 2 * len(text)  # a script whose characters each read as two tokens (kana)

    text = "私は昨日、東京駅の近くにある大きな本屋で、面白そうな小説を三冊も買ってしまいました。次の文。"
    assert split_segments(text, first_max_chars=100, language="ja")[0] == split_sentences(text, "ja")[0]
    got = split_segments(text, first_max_chars=100, language="ja", first_max_tokens=30, count_tokens=count)
    assert got == ["私は昨日、", "東京駅の近くにある大きな本屋で、面白そうな小説を三冊も買ってしまいました。",
                   "次の文。"]
    # a clause over the bound is not cut at a space; "sentence" keeps the first sentence whole
    english = "Supercalifragilistic words without any commas go on for a while. Next."
    assert split_segments(english, first_max_chars=100, first_segment="clause", first_max_tokens=10,
                          count_tokens=len) == split_sentences(english)
    long = "One, two, three, four, five, six. Next."
    assert split_segments(long, first_segment="sentence", first_max_tokens=5, count_tokens=len) == [
        "One, two, three, four, five, six.", "Next."]
    assert split_segments(long, first_segment="clause", first_max_tokens=10, count_tokens=len)[:2] == [
        "One, two,", "three, four, five, six."]


ZH_PARAGRAPH = (
    "人工智能技术在过去十年里发展迅速，尤其是在语音合成领域，新的模型不断出现，合成的声音也越来越自然。"
    "许多公司推出了能够模仿任何人声音的系统，只需要三秒钟的参考音频！这种技术带来了便利，也引发了关于隐私和安全的担忧；"
    "专家们建议，在使用这类服务之前，用户应该仔细阅读相关条款，了解自己的数据会被如何处理、保存多长时间、"
    "是否会被用于训练新的模型。监管机构也在研究新的规则，希望在鼓励创新和保护个人权利之间找到平衡？"
) * 3
JA_PARAGRAPH = (
    "私たちの会社は、新しい音声サービスを今年の春に開始しました。このサービスでは、お客様が自分の声を登録して、"
    "好きな文章を読み上げさせることができます！料金は月額九百八十円で、最初の三十日間は無料でお試しいただけます。"
    "ただし、登録した声は本人の同意なしに他人が使用することはできず、不正な利用が見つかった場合には、"
    "直ちにアカウントを停止するなどの措置をとります。詳しくは、公式サイトのよくある質問をご覧ください。"
) * 3


@pytest.mark.parametrize(("language", "text"), [("zh", ZH_PARAGRAPH), ("ja", JA_PARAGRAPH)])
def test_long_chinese_and_japanese_paragraphs(language: str, text: str) -> None:
    """Every segment within the bound, cut at 。！？ and clause marks only, nothing lost and no space added,
    and a short first phrase (a first-segment bound counts a character as two letters)."""
    segments = split_segments(text, max_chars=60, first_max_chars=100, language=language, first_segment="phrase")
    assert "".join(segments) == text
    assert all(len(s) <= 60 for s in segments)
    assert all(s[-1] in "。！？，、；：" for s in segments), [s for s in segments if s[-1] not in "。！？，、；："]
    assert len(segments[0]) <= 20 and segments[0][-1] in "，、"
    clause = split_segments(text, max_chars=400, first_max_chars=40, language=language, first_segment="clause")
    assert len(clause[0]) <= 20 and "".join(clause) == text


def test_japanese_first_phrase_without_a_comma_and_cuts_without_spaces() -> None:
    """No clause mark: the first phrase ends at a topic particle after a noun, given a 、 to pause on;
    a clause cut at the limit ends at a phrase edge where one is near and never leaves 。 alone."""
    assert split_first_phrase("私たちの会社は二千二十四年四月一日に新しいサービスを開始しました。", "ja") == (
        "私たちの会社は、", "二千二十四年四月一日に新しいサービスを開始しました。")
    assert split_first_phrase("これは短い。", "ja") is None
    pieces = split_long("好きな文章を読み上げさせることができます。", 20)
    assert all(len(p) <= 20 for p in pieces) and all(len(p) > 1 for p in pieces)
    assert split_long("私たちの会社は新しいサービスを開始しました。", 16)[0] == "私たちの会社は新しいサービスを"


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


def test_first_segment_bound_is_halved_where_a_character_is_a_syllable() -> None:
    assert first_segment_chars(100, "en") == first_segment_chars(100, None) == 100
    assert first_segment_chars(100, "zh-CN") == first_segment_chars(100, "ja") == first_segment_chars(100, "yue") == 50
    assert first_segment_chars(0, "zh") == 0  # 0 keeps meaning "no bound"
    assert first_segment_chars(1, "ja") == 1


def test_split_middle_phrase_picks_the_boundary_nearest_the_middle() -> None:
    sentence = "She walked along the river with her dog and then sat under an old tree for an hour."
    head, tail = split_middle_phrase(sentence, "en")
    assert head.endswith(",") and f"{head[:-1]} {tail}" == sentence
    assert (head, tail) == ("She walked along the river with her dog,", "and then sat under an old tree for an hour.")
    assert split_middle_phrase("The big brown dog happily chewed the old red shoe every single day.") is None
    assert split_middle_phrase("Short one here.") is None
    assert split_middle_phrase(sentence, "de") is None  # English phrase words only
    # a repeated list word is no boundary ("more and more"); too few words after "and" neither
    assert split_middle_phrase("The kite climbed higher and higher into the evening sky.") == (
        "The kite climbed higher and higher,", "into the evening sky.")
