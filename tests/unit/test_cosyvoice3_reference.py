"""CosyVoice3's reference-audio features: the three spectrograms' settings and the ONNX graphs' interface,
on the tiny generated graphs of scripts/make_tiny_cosyvoice3.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("kaldi_native_fbank")
pytest.importorskip("onnx")

from vtts.workers.engine import EngineError  # noqa: E402
from vtts.workers.engines.cosyvoice3 import reference as ref  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO.parent / "shared" / "fixtures" / "cosyvoice3-tiny"


def _tone(hz: float, seconds: float, rate: int) -> np.ndarray:
    return (0.4 * np.sin(2 * np.pi * hz * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def test_slaney_filters_match_librosas_shape_and_areas() -> None:
    filters = ref.slaney_mel_filters(16000, 400, 128)
    assert filters.shape == (128, 201) and (filters >= 0).all()
    # Slaney normalization: a triangle's area (in Hz) is 1 where it spans many FFT bins (the high ones)
    areas = filters.sum(axis=1) * (16000 / 400)
    assert np.allclose(areas[80:], 1.0, rtol=0.1)
    librosa = pytest.importorskip("librosa")
    assert np.allclose(filters, librosa.filters.mel(sr=16000, n_fft=400, n_mels=128), atol=1e-6)


def test_whisper_log_mel_frames_and_range() -> None:
    mel = ref.whisper_log_mel(_tone(1000, 2.0, 16000))
    assert mel.shape == (128, 200) and mel.dtype == np.float32
    assert mel.max() - mel.min() <= 2.0 + 1e-6  # 8 decades at most, divided by 4
    peak = int(np.argmax(mel[:, 100]))
    centres = np.argmax(ref.slaney_mel_filters(16000, 400, 128), axis=1) * 40.0
    assert abs(centres[peak] - 1000) < 100


def test_prompt_mel_frames() -> None:
    mel = ref.prompt_mel(_tone(440, 2.0, 24000))
    assert mel.shape == (100, 80) and mel.dtype == np.float32  # 480 samples a frame
    assert mel.min() >= np.log(1e-5) - 1e-6


def test_kaldi_fbank_frames_and_mean() -> None:
    feats = ref.kaldi_fbank(_tone(300, 1.0, 16000))
    assert feats.shape == (1 + (16000 - 400) // 160, 80)
    assert np.allclose(feats.mean(axis=0), 0, atol=1e-4)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> ref.ReferenceEncoder:
    spec = importlib.util.spec_from_file_location("make_tiny", REPO / "scripts" / "make_tiny_cosyvoice3.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    import onnx

    out = tmp_path_factory.mktemp("graphs")
    onnx.save(module.campplus_graph(), out / "campplus.onnx")
    onnx.save(module.tokenizer_graph(), out / "speech_tokenizer_v3.onnx")
    return ref.ReferenceEncoder(out / "campplus.onnx", out / "speech_tokenizer_v3.onnx")


def test_encode_shapes_and_alignment(encoder: ref.ReferenceEncoder) -> None:
    for rate in (16000, 22050, 24000, 44100):
        prompt = encoder.encode(_tone(220, 3.0, rate), rate)
        n = prompt.tokens.size
        assert 70 <= n <= 76 and prompt.tokens.dtype == np.int64  # 25 tokens a second
        assert prompt.mel.shape == (2 * n, 80) and prompt.embedding.shape == (192,)
        assert ((prompt.tokens >= 0) & (prompt.tokens < 6561)).all()


def test_encode_is_deterministic_and_depends_on_the_voice(encoder: ref.ReferenceEncoder) -> None:
    a = encoder.encode(_tone(220, 2.0, 24000), 24000)
    b = encoder.encode(_tone(220, 2.0, 24000), 24000)
    c = encoder.encode(_tone(600, 2.0, 24000), 24000)
    assert np.array_equal(a.tokens, b.tokens) and np.array_equal(a.embedding, b.embedding)
    assert not np.allclose(a.embedding, c.embedding)


def test_encode_refuses_unusable_samples(encoder: ref.ReferenceEncoder) -> None:
    with pytest.raises(EngineError, match="lasts"):
        encoder.encode(_tone(220, 0.2, 24000), 24000)
    with pytest.raises(EngineError, match="lasts"):
        encoder.encode(_tone(220, 31.0, 16000), 16000)
    with pytest.raises(EngineError, match="rate"):
        encoder.encode(_tone(220, 2.0, 8000), 8000)
    bad = _tone(220, 2.0, 16000)
    bad[5] = np.nan
    with pytest.raises(EngineError, match="non-finite"):
        encoder.encode(bad, 16000)


def test_speaker_embedding_is_the_samples_speaker_vector_at_any_rate(encoder: ref.ReferenceEncoder) -> None:
    """Verification embeds consent recordings too: longer than a sample may be, and at 8 kHz and up."""
    audio = _tone(220, 3.0, 24000)
    assert np.allclose(encoder.speaker_embedding(audio, 24000), encoder.encode(audio, 24000).embedding)
    long_call = encoder.speaker_embedding(_tone(220, 40.0, 8000), 8000)
    assert long_call.shape == (192,) and np.isfinite(long_call).all()
    with pytest.raises(EngineError, match="at least 0.5 s"):
        encoder.speaker_embedding(_tone(220, 0.3, 16000), 16000)
    with pytest.raises(EngineError, match="8 kHz"):
        encoder.speaker_embedding(_tone(220, 2.0, 4000), 4000)
    bad = _tone(220, 2.0, 16000)
    bad[5] = np.inf
    with pytest.raises(EngineError, match="non-finite"):
        encoder.speaker_embedding(bad, 16000)


def test_graph_interface_matches_the_released_files(encoder: ref.ReferenceEncoder) -> None:
    assert [i.name for i in encoder.tokenizer.get_inputs()] == ["feats", "feats_length"]
    assert [i.name for i in encoder.campplus.get_inputs()] == ["input"]
    assert encoder.tokenizer.get_inputs()[1].type == "tensor(int32)"
