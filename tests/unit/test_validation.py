import pytest

from vtts.frontend.errors import APIError
from vtts.frontend.validation import MAX_EXTRA_DEPTH, MAX_EXTRA_ITEMS, parse_speech

BASE = {"model": "tts-1", "input": "Hello.", "voice": "alloy"}


def parse(**changes):
    body = {**BASE, **changes}
    return parse_speech({k: v for k, v in body.items() if v is not ...}, max_input_chars=50)


def test_defaults_follow_openai() -> None:
    r = parse()
    assert (r.response_format, r.speed, r.stream_format, r.voice) == ("mp3", 1.0, "audio", "alloy")


def test_voice_object_and_extensions() -> None:
    r = parse(voice={"id": "voice_123"}, language="en", extra={"steps": 5}, instructions="calm", speed=2)
    assert r.voice == "voice_123" and r.language == "en" and r.extra == {"steps": 5} and r.speed == 2.0


@pytest.mark.parametrize(
    ("changes", "param", "code"),
    [
        ({"input": ""}, "input", "empty_input"),
        ({"input": "   "}, "input", "empty_input"),
        ({"input": "x" * 51}, "input", "string_above_max_length"),
        ({"input": ...}, "input", "missing_required_parameter"),
        ({"input": 5}, "input", "invalid_type"),
        ({"model": ...}, "model", "missing_required_parameter"),
        ({"model": ""}, "model", "invalid_value"),
        ({"voice": ...}, "voice", "missing_required_parameter"),
        ({"voice": 3}, "voice", "invalid_type"),
        ({"voice": {"name": "x"}}, "voice", "invalid_type"),
        ({"voice": ""}, "voice", "invalid_value"),
        ({"response_format": "ogg"}, "response_format", "invalid_value"),
        ({"stream_format": "chunks"}, "stream_format", "invalid_value"),
        ({"speed": 0.1}, "speed", "invalid_value"),
        ({"speed": 4.5}, "speed", "invalid_value"),
        ({"speed": "fast"}, "speed", "invalid_type"),
        ({"speed": True}, "speed", "invalid_type"),
        ({"instructions": "x" * 5000}, "instructions", "invalid_value"),
        ({"extra": [1]}, "extra", "invalid_type"),
        ({"temperature": 1}, "temperature", "unknown_parameter"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(changes: dict, param: str, code: str) -> None:
    with pytest.raises(APIError) as err:
        parse(**changes)
    assert err.value.status == 400
    assert err.value.param == param and err.value.code == code
    assert err.value.body()["error"]["type"] == "invalid_request_error"


def test_body_must_be_an_object() -> None:
    with pytest.raises(APIError) as err:
        parse_speech(["x"], 10)
    assert err.value.status == 400


def test_speed_bounds_are_inclusive() -> None:
    assert parse(speed=0.25).speed == 0.25 and parse(speed=4).speed == 4.0


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"input": "hi \ud800"}, "input"),
        ({"voice": "a\udfff"}, "voice"),
        ({"instructions": "\ud83d"}, "instructions"),
        ({"extra": {"a": 2**64}}, "extra"),
        ({"extra": {"a": -(2**63) - 1}}, "extra"),
        ({"extra": {"a": ["x", "\ud800"]}}, "extra"),
        ({"extra": {"k\ud800": 1}}, "extra"),
        ({"extra": {"a": float("nan")}}, "extra"),
        ({"extra": {"a": float("inf")}}, "extra"),
        ({"extra": {"a": b"bytes"}}, "extra"),
        ({"speed": 10**400}, "speed"),
        ({"speed": -(10**400)}, "speed"),
        ({"language": "../../etc"}, "language"),
        ({"language": ""}, "language"),
        ({"language": "en US"}, "language"),
        ({"response_format": ""}, "response_format"),
        ({"stream_format": ""}, "stream_format"),
    ],
)
def test_values_the_worker_could_not_take_are_a_400(changes: dict, param: str) -> None:
    """Issue 12 #2/#12/#13: each of these used to pass validation and then fail (500, lost queue slot) or be
    silently reinterpreted."""
    with pytest.raises(APIError) as err:
        parse(**changes)
    assert err.value.status == 400 and err.value.param == param


def test_lone_surrogate_error_names_the_position() -> None:
    with pytest.raises(APIError) as err:
        parse(input="hi \ud800")
    assert err.value.code == "invalid_unicode" and "position 3" in err.value.message


def test_extra_depth_and_size_are_bounded() -> None:
    deep: object = 1
    for _ in range(MAX_EXTRA_DEPTH + 1):
        deep = [deep]
    with pytest.raises(APIError) as err:
        parse(extra={"a": deep})
    assert err.value.param == "extra" and "nested" in err.value.message
    with pytest.raises(APIError) as err:
        parse(extra={"a": list(range(MAX_EXTRA_ITEMS + 1))})
    assert err.value.param == "extra"


def test_plain_extra_and_valid_values_pass() -> None:
    extra = {"steps": 5, "big": 2**63 - 1, "neg": -(2**63), "f": 1.5, "s": "é😀", "l": [None, True, {"k": []}]}
    r = parse(extra=extra, language="en-US", input="emoji 😀")
    assert r.extra == extra and r.language == "en-US"
    assert parse(language="pt_BR").language == "pt_BR" and parse(language="zh-Hans-CN").language == "zh-Hans-CN"
    assert parse(response_format=None, stream_format=None).response_format == "mp3"


def test_extra_sample_rate_is_checked_and_kept_from_the_engine() -> None:
    req = parse(extra={"sample_rate": 8000, "normalize": False}, response_format="mulaw")
    assert req.sample_rate == 8000 and req.extra == {"normalize": False} and req.response_format == "mulaw"
    assert parse(response_format="alaw").sample_rate is None
    for bad in (7999, 48001, 16000.0, "16000", True):
        with pytest.raises(APIError) as err:
            parse(extra={"sample_rate": bad})
        assert err.value.status == 400 and err.value.param == "extra"
