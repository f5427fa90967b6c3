"""Finding a CosyVoice3 model directory: a path, or a Hugging Face id from the local cache (never the network
unless allowed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vtts.workers.engine import ModelLoadError
from vtts.workers.engines.cosyvoice3 import files

REPO_ID = "FunAudioLLM/Fun-CosyVoice3-0.5B-2512"


def _fake_model(root: Path, skip: str = "") -> Path:
    for rel in files.REQUIRED:
        if rel != skip:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(b"x")
    return root


def test_local_directory(tmp_path: Path) -> None:
    found = files.resolve(str(_fake_model(tmp_path)), {})
    assert found.root == tmp_path and found.speakers is None
    assert found.qwen == tmp_path / "CosyVoice-BlankEN"
    assert files.looks_like_model(tmp_path)
    (tmp_path / "spk2info.pt").write_bytes(b"x")
    assert found.speakers == tmp_path / "spk2info.pt"


def test_incomplete_directory_names_what_is_missing(tmp_path: Path) -> None:
    _fake_model(tmp_path, skip="campplus.onnx")
    with pytest.raises(ModelLoadError, match="missing campplus.onnx"):
        files.resolve(str(tmp_path), {})


def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub" / f"models--{REPO_ID.replace('/', '--')}"


def test_hub_id_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _cache(tmp_path, monkeypatch)
    _fake_model(repo / "snapshots" / "abc123")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    assert files.resolve(REPO_ID, {}).root == repo / "snapshots" / "abc123"
    assert files.resolve("cosyvoice3", {}).root == repo / "snapshots" / "abc123"
    assert files.resolve(f"{REPO_ID}@abc123", {}).root == repo / "snapshots" / "abc123"
    assert files.is_hub_id(REPO_ID) and files.is_hub_id(f"{REPO_ID}@main") and not files.is_hub_id("x/y")


def test_no_download_unless_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _cache(tmp_path, monkeypatch)
    _fake_model(repo / "snapshots" / "partial", skip="llm.pt")
    with pytest.raises(ModelLoadError) as err:
        files.resolve(REPO_ID, {})
    assert "allow_download is false" in str(err.value) and "missing llm.pt" in str(err.value)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE"):
        files.resolve(REPO_ID, {"allow_download": True})


def test_bad_reference() -> None:
    with pytest.raises(ModelLoadError, match="not a directory"):
        files.resolve("./no/such/dir", {})


def test_read_config_reads_hyperpyyaml_without_running_it(tmp_path: Path) -> None:
    _fake_model(tmp_path)
    (tmp_path / files.CONFIG).write_text(
        "sample_rate: 24000\nllm: !new:cosyvoice.llm.llm.CosyVoice3LM\n  speech_token_size: 6561\n"
        "  sampling: !name:cosyvoice.utils.common.ras_sampling\n    top_k: 25\nsize: !ref <chunk_size> * 2\n")
    cfg = files.read_config(files.resolve(str(tmp_path), {}))
    assert cfg["sample_rate"] == 24000 and cfg["llm"]["speech_token_size"] == 6561
    assert cfg["llm"]["sampling"]["top_k"] == 25 and cfg["size"] == "<chunk_size> * 2"
    (tmp_path / files.CONFIG).write_text("[unclosed")
    with pytest.raises(ModelLoadError, match="cannot read"):
        files.read_config(files.resolve(str(tmp_path), {}))
