"""``vtts admin``'s pure parts: headless-Service resolution and which HTTP call each action makes."""

from __future__ import annotations

import argparse
import socket

import pytest

from vtts import admin_cli
from vtts.cli import build_parser


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["admin", *argv])


def test_resolve_keeps_each_address_once_sorted_with_ipv6_bracketed() -> None:
    """A headless Service answers one record per pod, often repeated per protocol; each pod is called once."""
    def fake(host: str, port: int, type: int = 0) -> list[tuple]:
        assert host == "rel-vtts-headless.tts.svc" and port == 8000 and type == socket.SOCK_STREAM
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 8000)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", 8000)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 8000)),
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fd00::3", 8000, 0, 0))]
    assert admin_cli.resolve("rel-vtts-headless.tts.svc", 8000, fake) == [
        "http://10.0.0.5:8000", "http://10.0.0.7:8000", "http://[fd00::3]:8000"]


def test_resolve_failure_names_the_service() -> None:
    def fail(*_a: object, **_k: object) -> list:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    with pytest.raises(ValueError, match="nope.svc"):
        admin_cli.resolve("nope.svc", 8000, fail)


def test_all_takes_service_and_port_from_the_pod_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The chart sets $VTTS_ADMIN_SERVICE and $VTTS_ADMIN_PORT, so `vtts admin --all list` needs nothing else."""
    monkeypatch.setenv(admin_cli.SERVICE_ENV, "svc.ns.svc")
    monkeypatch.setenv(admin_cli.PORT_ENV, "9000")
    seen = []

    def fake(host: str, port: int, type: int = 0) -> list[tuple]:
        seen.append((host, port))
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]
    assert admin_cli.targets_of(parse("--all", "list"), fake) == ["http://10.1.2.3:9000"]
    assert seen == [("svc.ns.svc", 9000)]
    monkeypatch.delenv(admin_cli.SERVICE_ENV)
    with pytest.raises(ValueError, match="--service"):
        admin_cli.targets_of(parse("--all", "list"), fake)


def test_targets_accept_host_port_and_urls() -> None:
    assert admin_cli.targets_of(parse("--targets", "a:1, http://b:2/", "list"), socket.getaddrinfo) == [
        "http://a:1", "http://b:2"]


@pytest.mark.parametrize("argv, expected", [
    (["list"], ("GET", "/admin/models", None)),
    (["load", "joe"], ("POST", "/admin/models", {"id": "joe"})),
    (["load", "new", "--entry", '{"engine": "piper"}'], ("POST", "/admin/models", {"engine": "piper", "id": "new"})),
    (["unload", "a/b"], ("DELETE", "/admin/models/a%2Fb", None)),
    (["swap", "joe", "--entry", '{"engine": "piper", "model": "x"}'],
     ("PUT", "/admin/models/joe", {"engine": "piper", "model": "x"})),
    (["reload-lexicon", "joe"], ("POST", "/admin/models/joe/lexicon/reload", None)),
])
def test_each_action_maps_to_its_admin_route(argv: list[str], expected: tuple) -> None:
    assert admin_cli.request_for(parse(*argv)) == expected


def test_entry_from_a_toml_file(tmp_path) -> None:
    f = tmp_path / "joe.toml"
    f.write_text('engine = "piper"\nmodel = "en_US-joe-medium"\noptions = { length_scale = 1.1 }\n')
    assert admin_cli.request_for(parse("swap", "joe", "--entry", f"@{f}"))[2] == {
        "engine": "piper", "model": "en_US-joe-medium", "options": {"length_scale": 1.1}}


@pytest.mark.parametrize("argv, message", [
    (["unload"], "model id is required"),
    (["swap", "joe"], "--entry is required"),
    (["swap", "joe", "--entry", "[1]"], "JSON object"),
    (["swap", "joe", "--entry", "{"], "not JSON"),
])
def test_bad_arguments_are_clear_errors(argv: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        admin_cli.request_for(parse(*argv))
