import logging

import pytest

from vtts.workers.engine import EngineError
from vtts.workers.text import ssml
from vtts.workers.text.ssml import Span, is_ssml, parse, parse_rate, parse_time


def test_detection() -> None:
    assert is_ssml("<speak>hi</speak>") and is_ssml('  <?xml version="1.0"?>\n<speak>hi</speak>')
    assert is_ssml("<!DOCTYPE speak><speak/>")
    assert not is_ssml("<speaker> is a word") and not is_ssml("plain text <speak>")


def test_spans_in_reading_order() -> None:
    spans = parse('<speak>Hi <break time="250ms"/>there<p>New <prosody rate="slow">slow <sub alias="World Wide '
                  'Web">WWW</sub></prosody></p><s><say-as interpret-as="digits" format="x">42</say-as>'
                  '<phoneme alphabet="ipa" ph="təˈmɑːtoʊ">tomato</phoneme></s></speak>')
    assert spans == [
        Span(text="Hi "), Span(break_ms=250), Span(text="there"), Span(text="New ", boundary=True),
        Span(text="slow ", rate=0.75), Span(text=" World Wide Web ", rate=0.75),
        Span(text="42", say_as=("digits", "x", ""), boundary=True), Span(text="tomato", ipa="təˈmɑːtoʊ"),
    ]


def test_break_strengths_and_nested_rates() -> None:
    spans = parse('<speak><break strength="x-strong"/><prosody rate="200%"><prosody rate="fast">a</prosody>'
                  '</prosody><break/></speak>')
    assert spans == [Span(break_ms=1000), Span(text="a", rate=2.5), Span(break_ms=400)]


@pytest.mark.parametrize(("value", "factor"), [("slow", 0.75), ("150%", 1.5), ("+20%", 1.2), ("-10%", 0.9),
                                                ("1.2", 1.2), ("x-fast", 1.75)])
def test_parse_rate(value: str, factor: float) -> None:
    assert parse_rate(value) == pytest.approx(factor)


def test_parse_time() -> None:
    assert parse_time("1.5s") == 1500 and parse_time("300ms") == 300
    with pytest.raises(ValueError):
        parse_time("3 minutes")


@pytest.mark.parametrize(("document", "message"), [
    ("<speak><audio src='x.wav'/></speak>", "unsupported element <audio> at line 1, column 8"),
    ("<speak>\n  <p>hi</speak>", "malformed XML (mismatched tag) at line 2, column 10"),
    ("<speak>&boom;</speak>", "undefined entity"),
    ('<!DOCTYPE speak [<!ENTITY a "aaaa">]><speak>&a;</speak>', "DOCTYPE is not allowed"),
    ('<!DOCTYPE speak SYSTEM "http://example.com/x.dtd"><speak/>', "DOCTYPE is not allowed"),
    ("<voice>hi</voice>", "root element must be <speak>"),
    ('<speak><break time="20s"/></speak>', "longer than 10s"),
    ('<speak><break time="soon"/></speak>', "<break time='soon'> is not a duration"),
    ('<speak><break strength="huge"/></speak>', "<break strength='huge'>"),
    ('<speak><break>x</break></speak>', "<break> must be empty"),
    ('<speak><prosody rate="warp">x</prosody></speak>', "<prosody rate='warp'>"),
    ('<speak><say-as interpret-as="bogus">1</say-as></speak>', "<say-as interpret-as='bogus'>"),
    ('<speak><say-as interpret-as="digits"><b/>1</say-as></speak>', "<b> is not allowed inside <say-as>"),
    ('<speak><sub>WWW</sub></speak>', "<sub> needs an alias"),
    ('<speak><phoneme alphabet="x-sampa" ph="t@">a</phoneme></speak>', "alphabet='x-sampa'"),
    ("<speak>" + "<s>" * 40 + "x" + "</s>" * 40 + "</speak>", "nests deeper than 32"),
])
def test_errors_name_the_element_and_position(document: str, message: str) -> None:
    with pytest.raises(EngineError) as info:
        parse(document)
    assert message in info.value.message
    assert info.value.param == "input" and info.value.code == "invalid_ssml"


def test_pitch_and_volume_are_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    ssml._IGNORED_ONCE.discard("<prosody pitch>")
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            assert parse('<speak><prosody pitch="high">a</prosody></speak>') == [Span(text="a")]
    assert sum("pitch" in r.message for r in caplog.records) == 1


def test_an_absurd_break_time_is_a_400_not_an_overflow() -> None:
    """float("9"*400) is infinity and round(inf) raised OverflowError: a 500. Now it is over the 10 s cap
    like any long break, and the message does not echo the whole value."""
    with pytest.raises(EngineError) as err:
        parse(f'<speak>a<break time="{"9" * 400}s"/></speak>')
    assert err.value.code == "invalid_ssml" and "longer than 10s" in err.value.message
    assert len(err.value.message) < 120
    assert parse_time("9" * 400 + "ms") > ssml.MAX_BREAK_MS
