"""CosyVoice3 causal HiFT vocoder: parity with upstream's outputs on the tiny fixture, the loader against the
real checkpoint layout, streaming equal to offline and batching equal to alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vtts.workers.engines.cosyvoice3.hift import (  # noqa: E402
    CosyVoice3Vocoder,
    SourceNoise,
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
    assert n <= out.shape[0] <= 30 * 480
    assert np.abs(out[:n] - chunk["wav"][0]).max() <= 1e-4
    assert np.abs(out - ref["wav"][0, : out.shape[0]]).max() <= 1e-4
