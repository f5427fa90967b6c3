"""GPT-SoVITS v2Pro speaker model (speaker.py): Kaldi fbank, the ERes2NetV2 checkpoint's real layout, the embedding's
shape and determinism, clear errors for wrong files, where the ``sv`` option finds the file, and parity with
upstream's own ERes2NetV2 / kaldi code when a package that carries it is installed."""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tests.tiny_models import script  # noqa: E402
from vtts.workers.engine import ModelLoadError  # noqa: E402
from vtts.workers.engines.gptsovits.checkpoints import CheckpointError  # noqa: E402
from vtts.workers.engines.gptsovits.speaker import (  # noqa: E402
    CHECKPOINT,
    ERes2NetV2,
    SpeakerEncoder,
    kaldi_fbank,
    mel_banks,
    resolve,
)

TINY = {"channels": 8, "blocks": (3, 4, 6, 3), "widths": (4, 8, 16, 32), "scale": 2, "expansion": 2}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _randomize(model: torch.nn.Module, seed: int = 0) -> None:
    """The tiny model directory's own speaker weights (scripts/make_tiny_gptsovits.py)."""
    script("make_tiny_gptsovits").randomize_speaker(model, seed)


@pytest.fixture(scope="module")
def tiny_state() -> dict[str, torch.Tensor]:
    model = ERes2NetV2(**TINY)
    _randomize(model)
    state = dict(model.state_dict())
    state["seg_1.weight"] = torch.zeros(16, 2 * 128 * 10)  # the unused pooled head a real file carries
    state["seg_1.bias"] = torch.zeros(16)
    return state


def _voice(seconds: float = 3.0, hz: float = 180.0, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    rng = np.random.default_rng(seed)
    voiced = sum(np.sin(2 * np.pi * k * hz * t) / k for k in range(1, 8))
    return (0.2 * voiced + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def test_fbank_framing_and_filters() -> None:
    n = 16000
    feats = kaldi_fbank(torch.from_numpy(_voice(1.0)))
    assert feats.shape == (1 + (n - 400) // 160, 80) and feats.dtype == torch.float32
    banks = mel_banks()
    assert banks.shape == (80, 257) and float(banks[:, -1].abs().max()) == 0.0 and float(banks.min()) >= 0.0
    # a 1 kHz tone peaks in the filter centred nearest 1 kHz on Kaldi's mel scale (20 Hz .. 8 kHz, 80 bins)
    t = torch.arange(n) / 16000
    tone = kaldi_fbank(0.5 * torch.sin(2 * math.pi * 1000 * t))

    def mel(f: float) -> float:
        return 1127 * math.log(1 + f / 700)

    step = (mel(8000) - mel(20)) / 81
    expected = round((mel(1000) - mel(20)) / step - 1)
    assert abs(int(tone.mean(0).argmax()) - expected) <= 1
    assert torch.equal(kaldi_fbank(torch.from_numpy(_voice(1.0))), feats)
    with pytest.raises(ValueError, match="at least 400 samples"):
        kaldi_fbank(torch.zeros(399))


def _real_keys() -> dict[str, tuple[int, ...]]:
    """``pretrained_eres2netv2w24s4ep4.ckpt``'s keys and shapes, written from upstream's module definitions
    (ERes2NetV2(baseWidth=24, scale=4, expansion=4): 64 channels, blocks [3, 4, 6, 3], feat_dim 80, TSTP pooling,
    embedding 192; stages 3 and 4 use the AFF block, whose fuse_models are AFF(width, r=4); fuse34 is
    AFF(2048, r=4); layer3_ds a 3x3 stride-2 conv 1024 -> 2048)."""
    keys: dict[str, tuple[int, ...]] = {}

    def bn(name: str, c: int) -> None:
        keys.update({f"{name}.weight": (c,), f"{name}.bias": (c,), f"{name}.running_mean": (c,),
                     f"{name}.running_var": (c,), f"{name}.num_batches_tracked": ()})

    def aff(name: str, c: int) -> None:
        keys.update({f"{name}.local_att.0.weight": (c // 4, 2 * c, 1, 1), f"{name}.local_att.0.bias": (c // 4,),
                     f"{name}.local_att.3.weight": (c, c // 4, 1, 1), f"{name}.local_att.3.bias": (c,)})
        bn(f"{name}.local_att.1", c // 4)
        bn(f"{name}.local_att.4", c)

    keys["conv1.weight"] = (64, 1, 3, 3)
    bn("bn1", 64)
    in_planes = 64
    for stage, (count, planes) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512), strict=True), start=1):
        width = planes * 24 // 64
        for k in range(count):
            pre = f"layer{stage}.{k}"
            keys[f"{pre}.conv1.weight"] = (width * 4, in_planes, 1, 1)
            bn(f"{pre}.bn1", width * 4)
            for i in range(4):
                keys[f"{pre}.convs.{i}.weight"] = (width, width, 3, 3)
                bn(f"{pre}.bns.{i}", width)
            if stage >= 3:
                for j in range(3):
                    aff(f"{pre}.fuse_models.{j}", width)
            keys[f"{pre}.conv3.weight"] = (planes * 4, width * 4, 1, 1)
            bn(f"{pre}.bn3", planes * 4)
            if k == 0 and (stage > 1 or in_planes != planes * 4):
                keys[f"{pre}.shortcut.0.weight"] = (planes * 4, in_planes, 1, 1)
                bn(f"{pre}.shortcut.1", planes * 4)
            in_planes = planes * 4
    keys["layer3_ds.weight"] = (2048, 1024, 3, 3)
    aff("fuse34", 2048)
    keys["seg_1.weight"] = (192, 2 * 2048 * 10)
    keys["seg_1.bias"] = (192,)
    return keys


def test_the_real_checkpoint_layout_loads() -> None:
    real = _real_keys()
    weights = {k: torch.empty(v, device="meta") for k, v in real.items()}
    dims = ERes2NetV2.dims(weights)
    assert dims == {"channels": 64, "blocks": (3, 4, 6, 3), "widths": (24, 48, 96, 192), "scale": 4, "expansion": 4}
    with torch.device("meta"):
        model = ERes2NetV2(**dims)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == {k: v for k, v in real.items() if not k.startswith("seg_1.")}
    # the embedding is the fused map's channels x 10 frequency rows: 20480, what v2Pro's sv_emb reads
    assert model.fuse34.local_att[3].out_channels * 10 == 20480


def test_embedding_shape_determinism_and_voices(tiny_state: dict[str, torch.Tensor]) -> None:
    enc = SpeakerEncoder.from_state_dict(tiny_state)
    assert enc.dim == 1280
    a = enc.embedding(_voice(3.0))
    assert a.shape == (1280,) and a.dtype == torch.float32 and torch.isfinite(a).all()
    assert torch.equal(enc.embedding(_voice(3.0)), a)
    other = enc.embedding(_voice(3.0, hz=260.0, seed=1))
    assert float((other - a).abs().max()) > 1e-3
    # what upstream's forward3 computes: the mean over time of the fused map, so it does not grow with length
    assert enc.embedding(_voice(6.0)).shape == (1280,)


def test_file_load_and_bad_files(tiny_state: dict[str, torch.Tensor], tmp_path: Path) -> None:
    path = tmp_path / "sv.ckpt"
    torch.save(tiny_state, path)
    loaded = SpeakerEncoder.load(path)
    direct = SpeakerEncoder.from_state_dict(tiny_state)
    assert torch.equal(loaded.embedding(_voice()), direct.embedding(_voice()))
    missing = {k: v for k, v in tiny_state.items() if not k.startswith("fuse34.")}
    torch.save(missing, path)
    with pytest.raises(CheckpointError, match="ERes2NetV2 layout"):
        SpeakerEncoder.load(path)
    torch.save({k: v for k, v in tiny_state.items() if not k.startswith("layer2.")}, path)
    with pytest.raises(CheckpointError, match="layer2"):
        SpeakerEncoder.load(path)
    torch.save({**tiny_state, "extra.weight": torch.zeros(2)}, path)
    with pytest.raises(ModelLoadError, match="Unexpected key"):
        SpeakerEncoder.load(path)
    torch.save({"weight": tiny_state, "config": {}}, path)
    with pytest.raises(ModelLoadError, match="state dict of tensors"):
        SpeakerEncoder.load(path)
    with pytest.raises(ModelLoadError, match="not found"):
        SpeakerEncoder.load(tmp_path / "nope.ckpt")


def test_resolve_paths_and_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "model"
    (root / "sv").mkdir(parents=True)
    (root / CHECKPOINT).write_bytes(b"x")
    assert resolve(root, CHECKPOINT) == root / CHECKPOINT
    assert resolve(root, str(root / CHECKPOINT)) == root / CHECKPOINT
    assert resolve(tmp_path, "model") == root / CHECKPOINT  # a folder laid out as upstream's pretrained models
    with pytest.raises(ModelLoadError, match="speaker model not found"):
        resolve(root, "sv/other.ckpt")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelLoadError, match="hf download lj1995/GPT-SoVITS"):
        resolve(root, "lj1995/GPT-SoVITS")
    snap = tmp_path / "hub" / "models--lj1995--GPT-SoVITS" / "snapshots" / "abc"
    (snap / "sv").mkdir(parents=True)
    (snap / CHECKPOINT).write_bytes(b"x")
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text("abc")
    assert resolve(root, "lj1995/GPT-SoVITS") == snap / CHECKPOINT


def _upstream_eres2net() -> Path | None:
    """Upstream's eres2net folder from an installed package that carries GPT-SoVITS's source (e.g.
    ``pip install --no-deps gpt-sovits-cpufast``); None when there is none."""
    spec = importlib.util.find_spec("GPT_SoVITS")
    for base in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(base) / "eres2net"
        if (folder / "ERes2NetV2.py").is_file() and (folder / "kaldi.py").is_file():
            return folder
    return None


@pytest.mark.skipif(_upstream_eres2net() is None, reason="no installed package carries upstream's ERes2NetV2")
@pytest.mark.parametrize("config", [{"baseWidth": 24, "scale": 4, "expansion": 4},
                                    {"m_channels": 8, "baseWidth": 32, "scale": 2, "expansion": 2}])
def test_parity_with_upstream_code(config: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """Upstream's own ERes2NetV2.forward3 on its own kaldi.fbank (as sv.py calls them), random weights: our
    fbank and embedding within 1e-4."""
    monkeypatch.syspath_prepend(str(_upstream_eres2net()))
    for name in ("ERes2NetV2", "kaldi", "fusion", "pooling_layers"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    upstream = importlib.import_module("ERes2NetV2")
    kaldi = importlib.import_module("kaldi")
    model = upstream.ERes2NetV2(**config).eval()
    _randomize(model, 3)
    wav = torch.from_numpy(_voice(3.0, seed=4))
    feats = kaldi.fbank(wav.unsqueeze(0), num_mel_bins=80, sample_frequency=16000, dither=0)
    assert float((kaldi_fbank(wav) - feats).abs().max()) <= 1e-4
    with torch.no_grad():
        expected = model.forward3(feats.unsqueeze(0).clone())[0]
    ours = SpeakerEncoder.from_state_dict(model.state_dict()).embedding(wav.numpy())
    assert ours.shape == expected.shape
    assert float((ours - expected).abs().max()) <= 1e-4
