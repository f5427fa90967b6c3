"""GPT-SoVITS reference side: spectrogram, 16 kHz HuBERT input, tiny HuBERT → prompt codes, per-voice features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from vtts.workers.engines.gptsovits.reference import (  # noqa: E402
    TAIL_ZEROS,
    HubertEncoder,
    ReferenceError,
    hubert_input,
    linear_spectrogram,
    reference_features,
    speaker_input,
)
from vtts.workers.engines.gptsovits.sovits import SoVITSConfig, SoVITSDecoder, SynthesizerV2  # noqa: E402
from vtts.workers.engines.gptsovits.speaker import ERes2NetV2, SpeakerEncoder  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def hubert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random HubertModel in chinese-hubert-base's layout (768-dim output, 320x downsampling)."""
    torch.manual_seed(0)
    cfg = transformers.HubertConfig(hidden_size=768, num_hidden_layers=1, num_attention_heads=12,
                                    intermediate_size=64, conv_dim=(16,) * 7, num_conv_pos_embeddings=16,
                                    num_conv_pos_embedding_groups=16)
    path = tmp_path_factory.mktemp("hubert")
    transformers.HubertModel(cfg).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def decoder() -> SoVITSDecoder:
    torch.manual_seed(1)
    model = SynthesizerV2(SoVITSConfig(filter_channels=64, n_layers=2, upsample_initial_channel=32))
    with torch.no_grad():
        model.quantizer.vq.layers[0]._codebook.embed.normal_()
    return SoVITSDecoder(model)


def _tone(seconds: float, rate: int, freq: float = 1000.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_linear_spectrogram_layout_and_peak_bin() -> None:
    spec = linear_spectrogram(_tone(2.0, 32000), 32000)
    assert spec.shape == (1025, 100)  # (64000 + 2*704 - 2048) // 640 + 1
    assert int(spec[:, 50].argmax()) == 64  # 1000 Hz / (32000 / 2048) Hz per bin
    resampled = linear_spectrogram(_tone(2.0, 48000), 48000)
    assert resampled.shape == spec.shape and int(resampled[:, 50].argmax()) == 64


def test_linear_spectrogram_tames_over_range_and_mixes_stereo() -> None:
    tone = _tone(1.0, 32000)  # peak 0.5
    # peak 1.5 is divided by 1.5 (peak 1 is left alone), peak 3 by 2 at most, as upstream
    np.testing.assert_allclose(linear_spectrogram(tone * 3, 32000), linear_spectrogram(tone * 2, 32000), rtol=1e-5,
                               atol=1e-4)
    np.testing.assert_allclose(linear_spectrogram(tone * 6, 32000), linear_spectrogram(tone * 3, 32000) * 1.5,
                               rtol=1e-5, atol=1e-4)
    mono = _tone(1.0, 32000)
    stereo = np.stack([mono, mono])
    np.testing.assert_allclose(linear_spectrogram(stereo, 32000), linear_spectrogram(mono, 32000), atol=1e-5)


def test_hubert_input_pads_and_bounds_length() -> None:
    x = hubert_input(_tone(4.0, 32000), 32000)
    assert x.shape == (4 * 16000 + TAIL_ZEROS,) and not x[-TAIL_ZEROS:].any()
    with pytest.raises(ReferenceError, match="2.00 s"):
        hubert_input(_tone(2.0, 16000), 16000)
    with pytest.raises(ReferenceError, match="3-10 s"):
        hubert_input(_tone(11.0, 16000), 16000)
    assert hubert_input(_tone(11.0, 16000), 16000, max_seconds=12).size == 11 * 16000 + TAIL_ZEROS
    with pytest.raises(ReferenceError):
        hubert_input(np.zeros(0, np.float32), 16000)


def test_reference_features_from_a_tiny_hubert(hubert_dir: Path, decoder: SoVITSDecoder) -> None:
    hubert = HubertEncoder.load(str(hubert_dir), local_files_only=True)
    audio = _tone(3.5, 24000, 220.0) + 0.05 * np.random.default_rng(0).standard_normal(84000).astype(np.float32)
    feats = reference_features(audio, 24000, hubert, decoder)
    n16 = 3.5 * 16000 + TAIL_ZEROS
    frames = int((n16 - 400) // 320 + 1)  # HuBERT's conv stack: 20 ms frames, 25 ms receptive field
    ssl = hubert.features(hubert_input(audio, 24000))
    assert ssl.shape == (1, 768, frames)
    assert feats.prompt_codes.shape == (frames // 2,) and feats.prompt_codes.dtype == torch.long
    assert torch.equal(feats.prompt_codes, decoder.extract_latent(ssl)[0, 0])
    assert feats.spec.shape[0] == 1025 and feats.style.shape == (512, 1)
    torch.testing.assert_close(feats.style, decoder.reference_style(feats.spec))
    wav = decoder.decode([(feats.prompt_codes[:5], torch.tensor([1, 2, 3]), feats.style)])[0]
    assert wav.shape == (5 * decoder.samples_per_code,) and np.isfinite(wav).all()


def test_speaker_input_is_the_spectrogram_audio_at_16k() -> None:
    """Upstream resamples the (tamed) 32 kHz audio of the spectrogram to 16 kHz, without HuBERT's silence."""
    x = speaker_input(_tone(4.0, 24000, 440.0) * 3, 24000)  # peak 1.5: divided by 1.5 first
    assert x.shape == (4 * 16000,) and x.dtype == np.float32
    assert abs(float(np.abs(x[1000:-1000]).max()) - 1.0) < 0.01


def test_v2pro_features_carry_the_speaker_embedding(hubert_dir: Path) -> None:
    torch.manual_seed(3)
    pro = SoVITSDecoder(SynthesizerV2(SoVITSConfig(filter_channels=64, n_layers=1, upsample_initial_channel=32,
                                                   gin_channels=64, sv_dim=1280)))
    net = ERes2NetV2(channels=8, blocks=(1, 1, 1, 1), widths=(4, 8, 16, 32), scale=2, expansion=2)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, p[0].numel() ** -0.5) if p.dim() > 1 else p.uniform_(0.8, 1.2)
    speaker = SpeakerEncoder(net)
    hubert = HubertEncoder.load(str(hubert_dir), local_files_only=True)
    audio = _tone(3.5, 24000, 220.0)
    feats = reference_features(audio, 24000, hubert, pro, speaker=speaker)
    assert feats.speaker is not None and feats.speaker.shape == (1280,) and feats.style.shape == (64, 1)
    torch.testing.assert_close(feats.speaker, speaker.embedding(speaker_input(audio, 24000)))
    torch.testing.assert_close(feats.style, pro.reference_style(feats.spec, feats.speaker))
    other = reference_features(_tone(3.5, 24000, 330.0), 24000, hubert, pro, speaker=speaker)
    assert float((other.speaker - feats.speaker).abs().max()) > 1e-3
    with pytest.raises(ValueError, match="needs a speaker model"):
        reference_features(audio, 24000, hubert, pro)
