"""Word timings as captions (frontend/captions.py): offsets into the client's text, cues, SRT and WebVTT."""

from __future__ import annotations

import io

import srt
import webvtt

from vtts.frontend.captions import MAX_CUE_CHARS, MAX_CUE_S, SEARCH_WINDOW, OffsetFinder, caption_body, cues


def _words(*names: str, step: float = 0.3) -> list[dict]:
    return [{"word": w, "start": round(i * step, 3), "end": round((i + 1) * step, 3)} for i, w in enumerate(names)]


def test_offsets_follow_the_text_in_order_across_chunks() -> None:
    text = "The cat saw the CAT."
    finder = OffsetFinder(text)
    first = finder.add(_words("The", "cat"))
    second = finder.add(_words("saw", "the", "cat."))  # a later chunk; a case the engine changed
    spans = [(w["char_start"], w["char_end"]) for w in first + second]
    assert [text[a:b] for a, b in spans] == ["The", "cat", "saw", "the", "CAT."]
    assert spans == sorted(spans)


def test_a_word_the_frontend_rewrote_gets_no_offset_and_does_not_derail_the_rest() -> None:
    text = "Pay 42 dollars now."
    words = OffsetFinder(text).add(_words("Pay", "forty-two", "dollars", "now."))
    assert "char_start" not in words[1]
    assert [text[w["char_start"]:w["char_end"]] for w in (words[0], words[2], words[3])] == ["Pay", "dollars", "now."]


def test_matches_are_looked_for_near_the_last_one_only() -> None:
    text = "start " + "x " * SEARCH_WINDOW + "needle"
    [word] = OffsetFinder(text).add(_words("needle"))
    assert "char_start" not in word  # too far ahead: a rewritten word is not matched to a distant namesake


def test_lower_casing_that_lengthens_a_character_keeps_indices() -> None:
    text = "İstanbul and Ankara"  # 'İ'.lower() is two characters
    words = OffsetFinder(text).add(_words("istanbul", "Ankara"))
    assert [w.get("char_start") for w in words] == [None, 13]


def test_cues_end_at_sentences_and_at_the_length_and_time_bounds() -> None:
    assert [c.text for c in cues(_words("Hi.", "Yes", "no"), "", 1.0)] == ["Hi.", "Yes no"]
    long = cues(_words(*["word"] * 40, step=0.1), "", 4.0)
    assert len(long) > 1 and all(len(c.text) <= MAX_CUE_CHARS for c in long)
    slow = cues(_words(*["a"] * 10, step=1.0), "", 10.0)
    assert len(slow) > 1 and all(c.end - c.start <= MAX_CUE_S for c in slow)
    assert " ".join(c.text for c in long) == " ".join(["word"] * 40)  # nothing lost between cues


def test_without_timed_words_one_cue_spans_the_audio() -> None:
    [cue] = cues([], "  Hello\n there. ", 2.5)
    assert (cue.start, cue.end, cue.text) == (0.0, 2.5, "Hello there.")
    assert cues([], "   ", 1.0) == []


def test_srt_and_vtt_parse_back_with_their_libraries() -> None:
    words = _words("Hello", "world.", "Again.", step=1.2345)
    body, kind = caption_body("srt", words, "", 3.7)
    assert kind.startswith("application/x-subrip")
    subs = list(srt.parse(body.decode()))
    assert [(s.index, s.content, s.start.total_seconds(), s.end.total_seconds()) for s in subs] == [
        (1, "Hello world.", 0.0, 2.469), (2, "Again.", 2.469, 3.704)]
    body, kind = caption_body("vtt", words, "", 3.7)
    assert kind.startswith("text/vtt") and body.startswith(b"WEBVTT")
    assert [(c.start, c.end, c.text) for c in webvtt.from_buffer(io.StringIO(body.decode())).captions] == [
        ("00:00:00.000", "00:00:02.469", "Hello world."), ("00:00:02.469", "00:00:03.704", "Again.")]


def test_cues_show_the_text_as_written_and_end_at_its_sentences() -> None:
    """Piper and Kokoro name words without their punctuation: the client's text says where sentences end,
    and a cue shows that text (digits as written, punctuation kept)."""
    text = 'He paid $42. "Really?" she asked'
    words = OffsetFinder(text).add(_words("He", "paid", "forty", "two", "dollars", "Really", "she", "asked"))
    expected = ["He paid $42.", '"Really?"', "she asked"]
    assert [c.text for c in cues(words, text, 3.0)] == expected
    assert [c.start for c in cues(words, text, 3.0)] == [0.0, 1.5, 1.8]
    words = OffsetFinder(text).add(_words("He", "paid", "$42.", '"Really?"', "she", "asked"))
    assert [c.text for c in cues(words, text, 3.0)] == expected
    ssml = "<speak>Hi <break/> there.</speak>"
    assert [c.text for c in cues(OffsetFinder(ssml).add(_words("Hi", "there.")), ssml, 1.0)] == ["Hi there."]
