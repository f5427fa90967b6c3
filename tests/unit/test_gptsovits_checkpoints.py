"""GPT-SoVITS checkpoints: the real formats load, version tags are read, and nothing but tensors, containers
and plain values comes out of a pickle (a global that would run code is refused before it runs)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from vtts.workers.engines.gptsovits.checkpoints import (  # noqa: E402
    CheckpointError,
    load_gpt,
    load_sovits,
    safe_load,
)

FIXTURE = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "gptsovits-v2-tiny"
needs_fixture = pytest.mark.skipif(not FIXTURE.is_dir(), reason="gptsovits-v2-tiny fixture absent")


@needs_fixture
def test_gpt_ckpt_loads_without_prefix() -> None:
    ck = load_gpt(FIXTURE / "gpt.ckpt")
    assert ck.config["model"]["n_layer"] == 2
    assert "ar_predict_layer.weight" in ck.weights and not any(k.startswith("model.") for k in ck.weights)


@needs_fixture
def test_sovits_pth_plain_and_tagged(tmp_path: Path) -> None:
    ck = load_sovits(FIXTURE / "sovits.pth")
    assert ck.version == "v2" and ck.config["data"]["sampling_rate"] == 32000
    assert all(v.dtype == torch.float16 for v in ck.weights.values() if v.is_floating_point())
    data = (FIXTURE / "sovits.pth").read_bytes()
    for tag, version in ((b"05", "v2Pro"), (b"06", "v2ProPlus")):
        path = tmp_path / f"{version}.pth"
        path.write_bytes(tag + data[2:])
        tagged = load_sovits(path)
        assert tagged.version == version and tagged.weights.keys() == ck.weights.keys()
    for tag, version in ((b"02", "v3"), (b"04", "v4")):
        path = tmp_path / f"{version}.pth"
        path.write_bytes(tag + data[2:])
        with pytest.raises(CheckpointError, match=f"{version}.*serves v2"):
            load_sovits(path)
    (tmp_path / "junk.pth").write_bytes(b"zz" + data[2:])
    with pytest.raises(CheckpointError, match="not a SoVITS checkpoint"):
        load_sovits(tmp_path / "junk.pth")


def test_v3_by_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s2v3.pth"
    torch.save({"weight": {"x": torch.zeros(1)}, "config": {"model": {"version": "v3"}}}, path)
    with pytest.raises(CheckpointError, match="v3"):
        load_sovits(path)


class Payload:
    """Unpickling this would touch a file (what a malicious checkpoint would do with os.system)."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.target,))


def test_a_pickled_global_is_refused_before_it_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    torch.save({"config": {}, "weight": {"a": torch.zeros(2)}, "x": Payload(marker)}, path)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_gpt(path)
    assert not marker.exists()
    torch.save({"weight": {"a": torch.zeros(2)}, "config": Payload(marker)}, path)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_sovits(path)
    assert not marker.exists()


def test_upstream_hparams_come_back_as_dicts(tmp_path: Path) -> None:
    """Upstream's training saves its config as ``utils.HParams``: admitted, as a plain dict."""
    module = types.ModuleType("utils")

    class HParams:
        def __init__(self, **kw: object) -> None:
            self.__dict__.update(kw)

    HParams.__module__, HParams.__qualname__ = "utils", "HParams"
    module.HParams = HParams  # type: ignore[attr-defined]
    sys.modules["utils"] = module
    try:
        path = tmp_path / "s2.pth"
        torch.save({"weight": {"a": torch.zeros(2, dtype=torch.float16)},
                    "config": HParams(model=HParams(version="v2", gin_channels=512), data={"sampling_rate": 32000})},
                   path)
    finally:
        del sys.modules["utils"]
    ck = load_sovits(path)
    assert ck.config == {"model": {"version": "v2", "gin_channels": 512}, "data": {"sampling_rate": 32000}}


def test_missing_and_oversized_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_gpt(tmp_path / "nope.ckpt")
    (tmp_path / "big.ckpt").write_bytes(b"PK" + b"\0" * 100)
    monkeypatch.setattr("vtts.workers.engines.gptsovits.checkpoints.MAX_BYTES", 10)
    with pytest.raises(CheckpointError, match="limit"):
        load_gpt(tmp_path / "big.ckpt")
    with pytest.raises(CheckpointError):
        safe_load(b"not a pickle at all")
