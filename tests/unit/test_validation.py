import pytest

from vtts.frontend.errors import APIError
from vtts.frontend.validation import parse_speech

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
