"""The WebSocket route's pure parts: incremental segmentation (when a piece of streamed text is complete enough to
send to a worker) and the subprotocol key. The session itself runs against a real server in
tests/integration/test_ws_stream.py."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import make_mocked_request

from vtts.frontend.ws import MAX_SEGMENT_CHARS, Segmenter, _protocols, protocol_key
from vtts.workers.text.segment import split_segments


def stream(seg: Segmenter, text: str) -> list[tuple[str, list[str]]]:
    """Feed ``text`` as LLM-like tokens (a word with its leading space); (token, segments it completed)."""
    return [(tok, out) for tok in re.findall(r" ?\S+", text) if (out := seg.feed(tok))]


def test_sentences_leave_with_their_last_token_and_the_first_at_a_phrase_boundary() -> None:
    seg = Segmenter("en")
    got = stream(seg, "The train leaves the station at half past seven every morning. It is late! Is it? Yes.")
    assert got == [
        (" seven", ["The train leaves the station,"]),  # "at half past" are three whole words after the cut
        (" morning.", ["at half past seven every morning."]),
        (" late!", ["It is late!"]),
        (" it?", ["Is it?"]),
        (" Yes.", ["Yes."]),
    ]
    assert seg.flush() == [] and seg.buffer == ""


def test_abbreviations_initials_and_decimals_wait_for_the_next_token() -> None:
    seg = Segmenter("en")
    assert seg.feed("I met Dr.") == [] and seg.feed(" Smith today.") == ["I met Dr. Smith today."]
    assert seg.feed(" Ask J.") == [] and seg.feed(" R. Tolkien.") == ["Ask J. R. Tolkien."]
    assert seg.feed(" It costs 3.") == [] and seg.feed("5 dollars.") == ["It costs 3.5 dollars."]


def test_a_partial_last_word_does_not_count_until_it_is_whole() -> None:
    seg = Segmenter("en")
    # a cut before "at" needs three words after it; "to" may still become "today" or "tomorrow"
    assert seg.feed("The old clock in the hallway struck twelve at noon to") == []
    assert seg.feed("day") == []
    assert seg.feed(" and") == ["The old clock in the hallway struck twelve,"]
    assert seg.buffer == "at noon today and"


def test_cjk_sentence_ends_need_no_space_and_paragraphs_end_sentences() -> None:
    seg = Segmenter("ja")
    assert seg.feed("今日は晴れです。明日") == ["今日は晴れです。"]
    assert seg.buffer == "明日"
    seg = Segmenter("en")
    assert seg.feed("A heading without a stop\n\n") == ["A heading without a stop"]


@pytest.mark.parametrize("mode", ["phrase", "clause", "sentence"])
def test_chinese_first_segment_is_cut_as_the_worker_does(mode: str) -> None:
    """Chinese has the worker's halved first bound (a character is a syllable) and joins pieces without spaces."""
    text = ("我们公司在二零二四年成立了一个专门研究语音合成的团队并且在很多城市都开设了办公室和实验室"
            "还招聘了许多来自世界各地的优秀工程师和研究人员一起工作。")
    expected = split_segments(text, language="zh", first_segment=mode)
    assert Segmenter("zh", mode).feed(text + "下一句。") == [*expected, "下一句。"]
    assert "".join(expected) == text
    if mode != "sentence":
        assert len(expected) == 2 and len(expected[0]) <= 50  # 100 characters halved


def test_an_unfinished_chinese_first_sentence_leaves_at_its_first_clause_mark() -> None:
    seg = Segmenter("zh")
    assert seg.feed("今天下午三点，") == []  # a clause mark needs six characters after it
    assert seg.feed("我们在公司门口") == ["今天下午三点，"]
    assert seg.buffer == "我们在公司门口"
    assert seg.feed("见面。") == ["我们在公司门口见面。"]


@pytest.mark.parametrize("mode", ["phrase", "clause", "sentence"])
def test_first_segment_modes_cut_as_the_worker_does(mode: str) -> None:
    """The worker's own segmentation of a whole request is the oracle for the session's first sentence."""
    text = ("Every morning the train leaves the station at half past seven, and it is rarely late at all, "
            "whatever the weather or the season may be or how many people are waiting.")
    expected = split_segments(text, language="en", first_segment=mode)
    segments = Segmenter("en", mode).feed(text + " Next.")
    assert segments == [*expected, "Next."]
    assert len(expected) == (1 if mode == "sentence" else 2)
    assert Segmenter("en", "bogus").feed(text + " Next.") == Segmenter("en").feed(text + " Next.")


def test_flush_takes_the_unfinished_rest_and_drops_what_says_nothing() -> None:
    seg = Segmenter("en")
    assert seg.feed("Hello there") == []
    assert seg.flush() == ["Hello there"]
    assert seg.feed('"') == [] and seg.flush() == []  # a quote alone is not speech
    assert seg.feed("One more ") == [] and seg.feed("time") == [] and seg.flush() == ["One more time"]


def test_a_run_on_sentence_is_cut_so_the_buffer_stays_bounded() -> None:
    seg = Segmenter("en", "sentence")
    sent = []
    for _ in range(200):
        sent += seg.feed("and then some more words ")
        assert len(seg.buffer) <= MAX_SEGMENT_CHARS + 1
    assert sent and all(len(s) <= MAX_SEGMENT_CHARS for s in sent)


def test_text_survives_segmentation() -> None:
    text = ("Streaming text arrives in small pieces, and the server speaks each sentence when it is complete. "
            "Numbers like 3.5 and names like Dr. Smith stay whole! Does it work? It does.")
    seg = Segmenter("en")
    segments = [s for _, out in stream(seg, text) for s in out] + seg.flush()
    assert " ".join(segments).replace(",", "") == text.replace(",", "")


def test_api_key_subprotocol() -> None:
    req = make_mocked_request("GET", "/v1/audio/speech/stream",
                              headers={"Sec-WebSocket-Protocol": "vtts, openai-insecure-api-key.s3cret"})
    assert protocol_key(req) == "s3cret"
    assert _protocols(req) == ["vtts", "openai-insecure-api-key.s3cret"]
    req = make_mocked_request("GET", "/v1/audio/speech/stream")
    assert protocol_key(req) == "" and _protocols(req) == ["vtts"]
