"""Model directories by Hugging Face id (workers/hub.py): cache first, downloads only when allowed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from vtts.workers.engine import ModelLoadError
from vtts.workers.hub import HubModel, hub_cache_dir, repo_cache_dir, snapshots


def _missing(root: Path) -> list[str]:
    return [] if (root / "model.bin").is_file() else ["model.bin"]


HUB = HubModel("Tiny", "owner/tiny", ("model.bin",), _missing, ("model.bin",), aliases={"tiny": "owner/tiny"})


def test_ids_revisions_and_aliases_parse_and_paths_do_not() -> None:
    assert HUB.parse("owner/tiny") == ("owner/tiny", None)
    assert HUB.parse("owner/tiny@v1.0") == ("owner/tiny", "v1.0")
    assert HUB.parse("tiny@abc") == ("owner/tiny", "abc")
    for bad in ("./owner/tiny", "/abs/path", "~/x/y", "just-a-name"):
        with pytest.raises(ModelLoadError, match="not a directory, and not a Hugging Face id"):
            HUB.parse(bad)


def test_snapshots_try_the_asked_revision_else_pinned_main_then_newest(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert hub_cache_dir() == tmp_path
    repo = repo_cache_dir("owner/tiny")
    for i, name in enumerate(("old", "main-commit", "newest")):
        (repo / "snapshots" / name).mkdir(parents=True)
        os.utime(repo / "snapshots" / name, (time.time() + i, time.time() + i))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("main-commit\n")
    snaps = repo / "snapshots"
    assert snapshots(repo, "v2") == [snaps / "v2"]
    assert snapshots(repo, "main") == [snaps / "main-commit"]
    assert snapshots(repo, None, pinned="old") == [snaps / "old", snaps / "main-commit", snaps / "newest"]
    assert snapshots(repo, None) == [snaps / "main-commit", snaps / "newest", snaps / "old"]
    assert HUB.cached(snapshots(repo, None)) is None
    (snaps / "newest" / "model.bin").write_bytes(b"x")
    assert HUB.cached(snapshots(repo, None)) == snaps / "newest"


def test_refusal_and_offline_say_what_is_missing_where_and_how_to_fetch(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    candidates = [tmp_path / "absent"]
    message = str(HUB.refuse("owner/tiny", "v1", candidates))
    assert "allow_download is false" in message and "absent" in message and "model.bin" in message
    assert "hf download owner/tiny --revision v1" in message
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE is set"):
        HUB.download("owner/tiny", None, candidates)
