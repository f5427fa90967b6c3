"""OpenAI's error shape: the types OpenAI itself sends and the headers that steer its SDK's retries."""

from __future__ import annotations

import json

from vtts.frontend.errors import APIError


def test_401_is_an_invalid_request_error_as_openai_sends_it() -> None:
    body = APIError(401, "Incorrect API key provided.", code="invalid_api_key").body()
    assert body == {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                              "param": None, "code": "invalid_api_key"}}


def test_should_retry_false_reaches_the_header_the_sdk_reads() -> None:
    resp = APIError(504, "the model did not start this request in time", code="timeout", should_retry=False).response()
    assert resp.headers["x-should-retry"] == "false"
    assert json.loads(resp.body)["error"]["type"] == "server_error"
    resp = APIError(503, "no room", code="insufficient_memory", retry_after=1.0, should_retry=False).response()
    assert resp.headers["x-should-retry"] == "false" and resp.headers["Retry-After"] == "1"
    assert "x-should-retry" not in APIError(503, "busy", code="model_not_ready").response().headers
