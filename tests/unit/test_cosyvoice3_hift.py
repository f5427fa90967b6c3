"""CosyVoice3 causal HiFT vocoder: parity with upstream's outputs on the tiny fixture, the loader against the
real checkpoint layout, streaming equal to offline and batching equal to alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vtts.workers.engine import EngineError, ModelLoadError  # noqa: E402
from vtts.workers.engines.cosyvoice3.hift import (  # noqa: E402
    CosyVoice3Vocoder,
    HiFTDims,
    SourceNoise,
    expected_keys,
    streaming_cost,
)

FIX = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "cosyvoice3-tiny"
pytestmark = pytest.mark.skipif(not (FIX / "hift.npz").exists(), reason="cosyvoice3-tiny fixture absent")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    return dict(np.load(FIX / "hift.npz"))


@pytest.fixture(scope="module")
def voc(ref: dict[str, np.ndarray]) -> CosyVoice3Vocoder:
    return CosyVoice3Vocoder.load(FIX / "model" / "hift.pt", noise=SourceNoise.fixed(ref["sine_waves_head"]))


def test_offline_waveform_and_source_match_upstream(voc: CosyVoice3Vocoder, ref: dict[str, np.ndarray]) -> None:
    wav = voc.vocode_offline(ref["mel"][0])
    assert wav.shape == (38400,)
    assert np.abs(wav - ref["wav"][0]).max() <= 1e-4
    src = voc.source_offline(ref["mel"][0])
    assert np.abs(src - ref["source"][0, 0]).max() <= 1e-4


def test_chunk_without_finalize_matches_upstream(voc: CosyVoice3Vocoder, ref: dict[str, np.ndarray]) -> None:
    chunk = np.load(FIX / "hift_chunk.npz")
    out = voc.vocode([(voc.new_stream(), chunk["mel"][0], False)])[0]
    n = chunk["wav"].shape[1]
    # upstream holds back 8 frames; this holds back only what the look-ahead needs (about 4), so it emits more
    assert out.shape[0] == 480 * (30 - 4) - 4 > n
    assert np.abs(out[:n] - chunk["wav"][0]).max() <= 1e-4
    assert np.abs(out - ref["wav"][0, : out.shape[0]]).max() <= 1e-4


def test_loader_accepts_the_real_checkpoint_layout() -> None:
    real = CosyVoice3Vocoder.real_keys(FIX / "real_keys.json")
    assert expected_keys(HiFTDims()) == real
    meta = {k: torch.empty(shape, device="meta") for k, shape in real.items()}
    voc = CosyVoice3Vocoder.from_state_dict(meta, device="meta")
    assert voc.dims == HiFTDims()
    assert voc.w["conv_pre.weight"].shape == (512, 80, 5)
    assert voc.w["f0_predictor.condnet.0.weight"].dtype == torch.float64


def test_loader_rejects_a_foreign_checkpoint() -> None:
    sd = torch.load(FIX / "model" / "hift.pt", map_location="cpu", weights_only=True)
    with pytest.raises(ModelLoadError, match="missing"):
        CosyVoice3Vocoder.from_state_dict({k: v for k, v in sd.items() if not k.startswith("ups.1")})
    bad = dict(sd)
    bad["conv_post.bias"] = torch.zeros(3)
    with pytest.raises(ModelLoadError, match="shape"):
        CosyVoice3Vocoder.from_state_dict(bad)


@pytest.fixture(scope="module")
def seeded() -> CosyVoice3Vocoder:
    return CosyVoice3Vocoder.load(FIX / "model" / "hift.pt")  # default seeded, position-indexed noise


@pytest.fixture(scope="module")
def long_mel(ref: dict[str, np.ndarray]) -> np.ndarray:
    return np.concatenate([ref["mel"][0], ref["mel"][0][:, ::-1]], axis=1).copy()  # 160 frames


def _stream(voc: CosyVoice3Vocoder, mel: np.ndarray, cuts: list[int]) -> np.ndarray:
    st, parts, pos = voc.new_stream(), [], 0
    for i, n in enumerate(cuts):
        parts.append(voc.vocode([(st, mel[:, pos:pos + n], i == len(cuts) - 1)])[0])
        pos += n
        if i < len(cuts) - 1:  # held back: conv_pre's 4 look-ahead frames and the ISTFT overlap, no more
            assert st.samples_out == max(0, 480 * (pos - 4) - 4)
    assert pos == mel.shape[1]
    return np.concatenate(parts)


@pytest.mark.parametrize("cuts", [[50, 50, 60], [1, 7, 0, 33, 119], [25, 100, 35, 0], [5, 155]])
def test_streamed_chunks_equal_offline(seeded: CosyVoice3Vocoder, long_mel: np.ndarray, cuts: list[int]) -> None:
    ref = seeded.vocode_offline(long_mel)
    assert ref.shape == (160 * 480,)
    got = _stream(seeded, long_mel, cuts)
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() <= 1e-5


def test_streaming_does_no_recomputation(seeded: CosyVoice3Vocoder, long_mel: np.ndarray) -> None:
    cost = streaming_cost(seeded, torch.as_tensor(long_mel), [20] * 8)
    assert cost["max_abs_diff"] <= 1e-5
    assert cost["mac_ratio"] <= 1.01


def test_batched_requests_equal_alone(seeded: CosyVoice3Vocoder, long_mel: np.ndarray) -> None:
    mels = [long_mel, long_mel[:, 30:130].copy(), long_mel[:, ::-1][:, :70].copy()]
    plans = [[40, 0, 70, 50], [3, 60, 37, 0], [70, 0, 0, 0]]  # per request: frames per step (0: nothing new)
    alone = [_stream(seeded, m, [n for n in p if n] or [0]) for m, p in zip(mels, plans, strict=True)]
    states = [seeded.new_stream() for _ in mels]
    pos, got = [0, 0, 0], [[], [], []]
    for step in range(4):
        batch, who = [], []
        for r, plan in enumerate(plans):
            if states[r].finished:
                continue
            n = plan[step]
            final = pos[r] + n == mels[r].shape[1]
            batch.append((states[r], mels[r][:, pos[r]:pos[r] + n], final))
            who.append(r)
            pos[r] += n
        for r, out in zip(who, seeded.vocode(batch), strict=True):
            got[r].append(out)
    for r in range(3):
        assert states[r].finished
        out = np.concatenate(got[r])
        assert out.shape == alone[r].shape == (mels[r].shape[1] * 480,)
        assert np.abs(out - alone[r]).max() <= 1e-5


def test_seeded_noise_depends_only_on_sample_position() -> None:
    a, b = SourceNoise(seed=0, block=1000), SourceNoise(seed=0, block=1000)
    assert torch.equal(a.take(0, 2500)[700:2100], b.take(700, 1400))
    assert not torch.equal(a.take(0, 100), SourceNoise(seed=1, block=1000).take(0, 100))
    with pytest.raises(EngineError):
        SourceNoise.fixed(np.zeros((1, 10, 9))).take(5, 10)


def test_bad_input_is_a_client_error(seeded: CosyVoice3Vocoder, long_mel: np.ndarray) -> None:
    st = seeded.new_stream()
    with pytest.raises(EngineError):
        seeded.vocode([(st, np.zeros((79, 10)), False)])
    with pytest.raises(EngineError):
        seeded.vocode([(st, np.full((80, 4), np.nan), False)])
    with pytest.raises(EngineError):
        seeded.vocode([(st, "mel", False)])
    with pytest.raises(EngineError):
        seeded.vocode([(st, long_mel[:, :5], False), (st, long_mel[:, 5:9], False)])
    small = CosyVoice3Vocoder.load(FIX / "model" / "hift.pt", max_frames=20)
    with pytest.raises(EngineError, match="max_frames"):
        small.vocode([(small.new_stream(), long_mel[:, :21], True)])
    done = seeded.new_stream()
    seeded.vocode([(done, long_mel[:, :10], True)])
    with pytest.raises(EngineError, match="finalized"):
        seeded.vocode([(done, long_mel[:, 10:12], True)])
