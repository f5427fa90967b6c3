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
        # a v2 file tagged as v2Pro lacks the speaker-embedding projection: refused as mis-tagged
        path = tmp_path / f"{version}.pth"
        path.write_bytes(tag + data[2:])
        with pytest.raises(CheckpointError, match=f"says it is a GPT-SoVITS {version}.*sv_emb"):
            load_sovits(path)
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


def _pro_file(path: Path, tag: bytes | None, version_in_config: str | None = None, sv: bool = True) -> Path:
    """A v2Pro-shaped .pth as upstream's my_save2 writes it: fp16 weights, the tag over the zip's "PK"."""
    import io

    weight = {"enc_p.text_embedding.weight": torch.zeros(732, 4, dtype=torch.float16)}
    if sv:
        weight |= {"sv_emb.weight": torch.zeros(8, 20, dtype=torch.float16), "prelu.weight": torch.zeros(8).half()}
    model = {"gin_channels": 8} | ({"version": version_in_config} if version_in_config else {})
    buf = io.BytesIO()
    torch.save({"weight": weight, "config": {"model": model}, "info": "x"}, buf)
    data = buf.getvalue()
    path.write_bytes(tag + data[2:] if tag else data)
    return path


def test_v2pro_versions_by_tag_config_and_weights(tmp_path: Path) -> None:
    for tag, version in ((b"05", "v2Pro"), (b"06", "v2ProPlus")):
        ck = load_sovits(_pro_file(tmp_path / f"{version}.pth", tag))
        assert ck.version == version and ck.weights["sv_emb.weight"].dtype == torch.float16
    # untagged (upstream's pretrained s2Gv2Pro*.pth are known by hash there): the config, else the weights say
    assert load_sovits(_pro_file(tmp_path / "c.pth", None, "v2ProPlus")).version == "v2ProPlus"
    assert load_sovits(_pro_file(tmp_path / "w.pth", None)).version == "v2Pro"
    with pytest.raises(CheckpointError, match="v2 model but has v2Pro weights"):
        load_sovits(_pro_file(tmp_path / "v2.pth", b"01"))
    with pytest.raises(CheckpointError, match="no speaker-embedding projection"):
        load_sovits(_pro_file(tmp_path / "bare.pth", None, "v2Pro", sv=False))
    for tag, version in ((b"02", "v3"), (b"03", "v3"), (b"04", "v4")):
        with pytest.raises(CheckpointError, match=f"{version} model .CFM decoder"):
            load_sovits(_pro_file(tmp_path / f"{tag.decode()}.pth", tag))
