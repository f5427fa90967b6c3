"""Real ``vtts serve`` process trees on 127.0.0.1, started as subprocesses and stopped with SIGTERM."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from vtts.local_server import LocalServer, alive, descendants, free_port

__all__ = ["KEYED_API_KEY", "Server", "alive", "descendants", "processes", "start_server"]

#: the key of the session's keyed server (``keyed_server``)
KEYED_API_KEY = "sekret"

def processes(srv: Server, needle: bytes) -> list[int]:
    """Live processes of a server's tree whose command line holds ``needle``."""
    pids = []
    for pid in descendants(srv.proc.pid):
        try:
            if needle in Path(f"/proc/{pid}/cmdline").read_bytes():
                pids.append(pid)
        except OSError:
            continue
    return sorted(pids)


class Server(LocalServer):
    """A running ``vtts serve`` subprocess, logging into ``tmp``, with a plain GET for the tests."""

    ready_timeout_s = 60.0
    stop_timeout_s = 15.0

    def __init__(self, args: list[str], tmp: Path, env: dict[str, str] | None = None) -> None:
        port = free_port()
        super().__init__(args, tmp / f"vtts-{port}.log", env=env, port=port)

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(self.url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The default configuration (the bundled voice), shared by the read-only tests."""
    srv = Server([], tmp_path_factory.mktemp("server"))
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The default configuration behind ``--api-key KEYED_API_KEY``, shared by the tests that only read through
    a key (conformance, the key checks, the playground's key dialog): one process tree instead of one each."""
    srv = Server(["--api-key", KEYED_API_KEY], tmp_path_factory.mktemp("keyed"))
    try:
        srv.wait_ready()
        yield srv
    finally:
        _, left = srv.stop()
    assert not left, f"processes left behind: {left}"


def start_server(args: list[str], tmp: Path, env: dict[str, str] | None = None) -> Server:
    srv = Server(args, tmp, env)
    try:
        srv.wait_ready()
    except Exception:
        srv.stop()
        raise
    return srv
