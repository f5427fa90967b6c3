"""The espeak-ng binding: IPA as Piper's phonemizer writes it (expected strings checked against piper-tts 1.8)."""

from __future__ import annotations

import threading

import pytest

from vtts.workers import espeak


def test_hello_world_keeps_clause_punctuation() -> None:
    assert espeak.phonemize("Hello, world.", "en-us") == "həlˈoʊ, wˈɜːld."
    assert espeak.phonemize("hello world", "en-us") == "həlˈoʊ wˈɜːld"


def test_every_piper_mark_comes_back() -> None:
    assert espeak.phonemize_sentences("Is it? Yes! No; maybe: ok", "en-us") == [
        "ɪz ɪt?",
        "jˈɛs!",
        "nˈoʊ; mˈeɪbiː: ˌoʊkˈeɪ",
    ]


def test_first_mark_of_a_run_decides_and_quotes_are_skipped() -> None:
    assert espeak.phonemize_sentences("Really?! Fine.", "en-us") == ["ɹˈiəli?", "fˈaɪn."]
    assert espeak.phonemize_sentences('He said "hi." Then left.', "en-us") == ["hiː sˈɛd hˈaɪ.", "ðˈɛn lˈɛft."]


def test_espeak_decides_the_clauses() -> None:
    # "Dr." ends a sentence for espeak-ng (as in Piper); a comma without a space ends nothing
    assert espeak.phonemize_sentences("Dr. Smith", "en-us") == ["dˈɑːktɚ.", "smˈɪθ"]
    assert espeak.phonemize("one, two,three", "en-us") == "wˌʌn, tˈuː θɹˈiː"


def test_unmarked_clause_ends_keep_the_word_boundary() -> None:
    # Piper itself writes "wˈeɪtwˌʌt" here; the space is our one deliberate difference
    assert espeak.phonemize("Wait… what", "en-us") == "wˈeɪt wˌʌt"
    assert espeak.phonemize("ok... then", "en-us") == "ˌoʊkˈeɪ ðˈɛn"


def test_full_width_stops_split_sentences_without_a_mark() -> None:
    sentences = espeak.phonemize_sentences("你好。谢谢！", "cmn")
    assert len(sentences) == 2
    assert not any(mark in "".join(sentences) for mark in "。！.!")


def test_language_switch_flags_are_dropped() -> None:
    ipa = espeak.phonemize("le weekend", "fr")
    assert "(" not in ipa and "wiːkˈɛnd" in ipa


def test_nothing_to_say() -> None:
    assert espeak.phonemize("", "en-us") == ""
    assert espeak.phonemize_sentences("... —", "en-us") == []


def test_unknown_voice_raises_and_leaves_espeak_usable() -> None:
    with pytest.raises(ValueError, match="no-such-voice"):
        espeak.phonemize("hello", "no-such-voice")
    assert not espeak.has_voice("no-such-voice")
    assert espeak.has_voice("en-us")
    assert espeak.phonemize("hello", "en-us") == "həlˈoʊ"


def test_threads_with_different_voices_do_not_mix() -> None:
    texts = {"en-us": "The quick brown fox, again.", "de": "Guten Morgen, liebe Welt."}
    expected = {voice: espeak.phonemize(text, voice) for voice, text in texts.items()}
    results: list[bool] = []

    def work(voice: str) -> None:
        for _ in range(50):
            results.append(espeak.phonemize(texts[voice], voice) == expected[voice])

    threads = [threading.Thread(target=work, args=(v,)) for v in list(texts) * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 300 and all(results)
