"""Bearer-token parsing and key comparison shared by /v1 and /admin."""

from __future__ import annotations

from aiohttp.test_utils import make_mocked_request

from vtts.frontend.auth import bearer_token, key_matches


def test_bearer_token_is_taken_from_the_header_case_insensitively() -> None:
    assert bearer_token(make_mocked_request("GET", "/", headers={"Authorization": "bearer  k1 "})) == "k1"
    assert bearer_token(make_mocked_request("GET", "/", headers={"Authorization": "Basic abc"})) == ""
    assert bearer_token(make_mocked_request("GET", "/")) == ""


def test_a_token_that_was_not_utf8_matches_no_key_instead_of_raising() -> None:
    token = b"\xff\xfekey".decode("utf-8", "surrogateescape")  # how aiohttp hands over such header bytes
    assert not key_matches(token, ["key"])
    assert key_matches("key", ["other", "key"])
    assert not key_matches("", ["key"])
