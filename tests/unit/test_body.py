"""Request body reading: JSON depth, decoding errors, and the 100-continue size check (issue 12 #12/#13)."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from vtts.frontend.body import MAX_BODY_BYTES, MAX_JSON_DEPTH, expect_within_limit, json_depth, parse_json
from vtts.frontend.errors import APIError


def test_parse_json_accepts_normal_documents() -> None:
    assert parse_json(b'{"a": [1, {"b": "c"}]}') == {"a": [1, {"b": "c"}]}
    assert parse_json(("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH).encode()) is not None


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1000, 100_000])
def test_deep_nesting_is_a_400(depth: int) -> None:
    """~1000 levels made Python's parser raise RecursionError (a 500); any depth over the bound is a 400."""
    with pytest.raises(APIError) as err:
        parse_json(("[" * depth + "]" * depth).encode())
    assert err.value.status == 400 and err.value.code == "invalid_json"


@pytest.mark.parametrize("raw", [b"{", b"\xff\xfe", b"1" * 5000, b""])
def test_unparsable_bodies_are_a_400(raw: bytes) -> None:
    """Including an integer over Python's 4300-digit limit, a ValueError that is not a JSONDecodeError."""
    with pytest.raises(APIError) as err:
        parse_json(raw)
    assert err.value.status == 400


def test_json_depth() -> None:
    assert json_depth(1) == 0 and json_depth([]) == 1 and json_depth({"a": [[1]]}) == 3
    assert json_depth(json.loads("[" * 500 + "]" * 500)) == MAX_JSON_DEPTH + 1  # stops counting past the bound


def test_expect_continue_with_a_too_large_body_is_a_413() -> None:
    """A declared body over the limit is refused before the client uploads it, not answered 100 Continue."""
    req = make_mocked_request("POST", "/v1/audio/speech", headers={
        "Expect": "100-continue", "Content-Length": str(50 * MAX_BODY_BYTES), "Content-Type": "application/json"})
    resp = asyncio.run(expect_within_limit(req))
    assert isinstance(resp, web.Response) and resp.status == 413
    assert json.loads(resp.body)["error"]["code"] == "request_too_large"

