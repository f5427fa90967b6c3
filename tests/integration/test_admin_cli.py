"""``vtts admin --all`` against two real ``vtts serve`` trees standing in for two pods of a release.

A fake resolver plays the headless Service's DNS: it answers 127.0.0.1 twice, with each server's port, the way
a cluster's DNS answers one record per ready pod. Both servers require an admin key, as pods do (the chart
passes it from a Secret), since an admin call from another pod is not a loopback call.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Server, start_server
from vtts import admin_cli
from vtts.cli import build_parser

KEY = "adm-test-key"
CONFIG = """
[server]
drain_timeout_s = 30.0
load_timeout_s = 60.0

[[models]]
id = "joe"
engine = "piper"
model = "en_US-joe-medium"
options = { warmup = false }
"""


@pytest.fixture(scope="module")
def pods(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    tmp = tmp_path_factory.mktemp("admin-cli")
    (tmp / "vtts.toml").write_text(CONFIG)
    servers: list[Server] = []
    try:
        for _ in range(2):
            servers.append(start_server(["--config", str(tmp / "vtts.toml")], tmp, env={"VTTS_ADMIN_KEY": KEY}))
        yield servers
    finally:
        for srv in servers:
            _, left = srv.stop()
            assert not left


def headless(pods: list[Server]):
    """getaddrinfo for the headless Service name: one record per pod."""
    def resolver(host: str, port: int, type: int = 0) -> list[tuple]:
        assert host == "rel-vtts-headless.tts.svc"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", srv.port)) for srv in pods]
    return resolver


def admin(pods: list[Server], capsys: pytest.CaptureFixture[str], *argv: str, key: str = KEY) -> tuple[int, dict]:
    args = build_parser().parse_args(["admin", "--all", "--service", "rel-vtts-headless.tts.svc",
                                      "--admin-key", key, "--json", *argv])
    code = admin_cli.run(args, resolver=headless(pods))
    return code, json.loads(capsys.readouterr().out)


def models(srv: Server) -> dict[str, dict]:
    status, body = srv.get("/admin/models", {"Authorization": f"Bearer {KEY}"})
    assert status == 200
    return {m["id"]: m for m in json.loads(body)["data"]}


def test_list_reports_every_pod(pods: list[Server], capsys: pytest.CaptureFixture[str]) -> None:
    code, out = admin(pods, capsys, "list")
    assert code == 0
    assert [r["target"] for r in out["results"]] == sorted(srv.url for srv in pods)
    for r in out["results"]:
        assert r["status"] == 200 and r["body"]["data"][0]["id"] == "joe"


def test_swap_reaches_every_pod(pods: list[Server], capsys: pytest.CaptureFixture[str]) -> None:
    """A hot swap applied with --all: every pod serves the new entry, a new generation, no restart."""
    before = {srv.port: models(srv)["joe"]["generation"] for srv in pods}
    entry = json.dumps({"engine": "piper", "model": "en_US-joe-medium",
                        "options": {"warmup": False, "length_scale": 1.05}})
    code, out = admin(pods, capsys, "swap", "joe", "--entry", entry)
    assert code == 0, out
    assert [r["status"] for r in out["results"]] == [200, 200]
    for srv in pods:
        joe = models(srv)["joe"]
        assert joe["state"] == "ready"
        assert joe["generation"] > before[srv.port]
        assert joe["entry"]["options"]["length_scale"] == 1.05
        assert srv.get("/ready")[0] == 200


def test_a_failed_change_stops_at_the_first_pod_unless_keep_going(
        pods: list[Server], capsys: pytest.CaptureFixture[str]) -> None:
    code, out = admin(pods, capsys, "unload", "joe", key="wrong")
    assert code == 1
    assert [r["status"] for r in out["results"]] == [401]
    assert out["skipped"] == [sorted(srv.url for srv in pods)[1]]
    code, out = admin(pods, capsys, "unload", "no-such-model", "--keep-going")
    assert code == 1
    assert [r["status"] for r in out["results"]] == [404, 404] and out["skipped"] == []
    assert all(models(srv)["joe"]["state"] == "ready" for srv in pods)


def test_the_command_line_with_an_explicit_target_list(pods: list[Server], tmp_path: Path) -> None:
    """`vtts admin --targets` through the real entry point: one line per server, exit 0."""
    targets = ",".join(f"127.0.0.1:{srv.port}" for srv in pods)
    proc = subprocess.run([sys.executable, "-m", "vtts", "admin", "--targets", targets, "list"],
                          capture_output=True, text=True, timeout=60, env={"VTTS_ADMIN_KEY": KEY, "PATH": ""})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2 and all("\t200\tjoe ready gen" in line for line in lines)
    assert "2 of 2 succeeded" in proc.stderr
