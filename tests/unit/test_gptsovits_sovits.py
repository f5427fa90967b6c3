"""SoVITS v2 decoder: parity with the upstream fixture, the real checkpoint layout, batching, seeds and streaming."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vtts.workers.engines.gptsovits.checkpoints import load_sovits  # noqa: E402
from vtts.workers.engines.gptsovits.sovits import (  # noqa: E402
    CheckpointError,
    ChunkStream,
    DecodeItem,
    SoVITSConfig,
    SoVITSDecoder,
    SynthesizerV2,
    inference_state_dict,
)

FIXTURE = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "gptsovits-v2-tiny"
TOL = 1e-4

# s2.json (v2) model section: the dimensions of the released checkpoints
REAL_V2 = {
    "inter_channels": 192, "hidden_channels": 192, "filter_channels": 768, "n_heads": 2, "n_layers": 6,
    "kernel_size": 3, "p_dropout": 0.1, "resblock": "1", "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]], "upsample_rates": [10, 8, 2, 2, 2],
    "upsample_initial_channel": 512, "upsample_kernel_sizes": [16, 16, 8, 2, 2], "n_layers_q": 3,
    "use_spectral_norm": False, "gin_channels": 512, "semantic_frame_rate": "25hz", "freeze_quantizer": True,
    "version": "v2",
}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def fixture_model() -> tuple[SoVITSDecoder, dict[str, np.ndarray]]:
    if not (FIXTURE / "sovits.pth").exists():
        pytest.skip("gptsovits-v2-tiny fixture not present")
    torch.set_num_threads(1)
    return SoVITSDecoder.load(str(FIXTURE / "sovits.pth")), dict(np.load(FIXTURE / "sovits.npz"))


@pytest.fixture(scope="module")
def tiny() -> SoVITSDecoder:
    """A random tiny model with two attention layers in every encoder (the fixture's ssl encoders have none)."""
    torch.manual_seed(0)
    cfg = SoVITSConfig(filter_channels=64, n_layers=4, upsample_initial_channel=32)
    model = SynthesizerV2(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "emb_rel" in name:
                p.normal_(0, 0.3)
        model.quantizer.vq.layers[0]._codebook.embed.normal_()
    return SoVITSDecoder(model)


def _items(dec: SoVITSDecoder, n: int, seed: int = 1) -> list[DecodeItem]:
    g = torch.Generator().manual_seed(seed)
    items = []
    for i in range(n):
        codes = torch.randint(0, 1024, (int(torch.randint(3, 30, (1,), generator=g)),), generator=g)
        phones = torch.randint(0, 732, (int(torch.randint(2, 25, (1,), generator=g)),), generator=g)
        spec = torch.rand(1025, int(torch.randint(20, 60, (1,), generator=g)), generator=g)
        style = dec.reference_style(spec)
        items.append(DecodeItem(codes, phones, style, speed=(1.0, 1.25, 0.8)[i % 3]))
    return items


def test_decode_matches_upstream_at_speed_1_and_1_25(fixture_model) -> None:
    dec, z = fixture_model
    style = dec.reference_style(torch.from_numpy(z["refer"]))
    codes, text = torch.from_numpy(z["codes"][0, 0]), torch.from_numpy(z["text"][0])
    wav, fast = dec.decode([DecodeItem(codes, text, style), DecodeItem(codes, text, style, speed=1.25)])
    assert wav.shape == (25600,) and fast.shape == (21120,)
    assert np.abs(wav - z["wav"][0, 0]).max() <= TOL
    assert np.abs(fast - z["wav_speed_1_25"][0, 0]).max() <= TOL


def test_extract_latent_matches_upstream(fixture_model) -> None:
    dec, z = fixture_model
    codes = dec.extract_latent(torch.from_numpy(z["ssl"]))
    assert codes.shape == (1, 1, 20)
    np.testing.assert_array_equal(codes.numpy(), z["latent_codes"])


def test_loader_accepts_the_real_v2_layout() -> None:
    keys = FIXTURE / "real_keys.json"
    if not keys.exists():
        pytest.skip("gptsovits-v2-tiny fixture not present")
    shapes = json.loads(keys.read_text())["sovits v2 (no enc_q. in the .pth)"]
    weights = {k: torch.empty(v, device="meta", dtype=torch.float16) for k, v in shapes.items()}
    cfg = SoVITSConfig.from_checkpoint(REAL_V2, weights)
    assert cfg.n_symbols == 732 and cfg.style_bins == 704 and cfg.semantic_frame_rate == "25hz"
    with torch.device("meta"):
        model = SynthesizerV2(cfg)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in inference_state_dict(weights).items()}
    assert got == expected
    model.load_state_dict(inference_state_dict(weights), strict=True, assign=True)


def test_refuses_other_versions_and_foreign_files() -> None:
    with pytest.raises(CheckpointError, match="v3/v4"):
        SoVITSDecoder.from_checkpoint({"weight": {"cfm.x": torch.zeros(1)}})
    with pytest.raises(CheckpointError, match="not a SoVITS"):
        SoVITSDecoder.from_checkpoint({"weight": {"model.x": torch.zeros(1)}})
    with pytest.raises(CheckpointError):
        SoVITSDecoder.from_checkpoint({"state_dict": {}})


def test_v2pro_style_takes_the_speaker_embedding() -> None:
    """v2Pro/v2ProPlus: sv_emb joins the style (gin 1024 at real size), the text encoder gets ge_to512 of it."""
    torch.manual_seed(0)
    cfg = SoVITSConfig(filter_channels=64, n_layers=2, upsample_initial_channel=32, gin_channels=96, sv_dim=40)
    dec = SoVITSDecoder(SynthesizerV2(cfg))
    assert dec.needs_speaker_embedding
    spec = torch.rand(1025, 30)
    with pytest.raises(ValueError, match="speaker embedding"):
        dec.reference_style(spec)
    style = dec.reference_style(spec, torch.randn(40))
    assert style.shape == (96, 1)
    wav = dec.decode([DecodeItem(torch.tensor([1, 2, 3]), torch.tensor([5, 6]), style)])[0]
    assert wav.shape == (3 * dec.samples_per_code,) and np.isfinite(wav).all()
    real = dict(REAL_V2, gin_channels=1024)
    weights = {"sv_emb.weight": torch.empty(1024, 20480, device="meta"), "ssl_proj.weight": torch.empty(768, 768, 2)}
    real_cfg = SoVITSConfig.from_checkpoint(real, weights)
    assert real_cfg.sv_dim == 20480 and real_cfg.gin_channels == 1024
    with torch.device("meta"):
        model = SynthesizerV2(real_cfg)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["sv_emb.weight"] == (1024, 20480) and shapes["ge_to512.weight"] == (512, 1024)
    assert shapes["prelu.weight"] == (1024,) and shapes["ref_enc.fc.fc.weight"] == (1024, 128)
    assert shapes["dec.cond.weight"] == (512, 1024, 1) and shapes["enc_p.mrte.c_pre.weight"] == (512, 192, 1)


def test_batched_decode_equals_each_alone(tiny: SoVITSDecoder) -> None:
    items = _items(tiny, 6)
    batched = tiny.decode(items)
    for item, wav in zip(items, batched, strict=True):
        alone = tiny.decode([item])[0]
        assert wav.shape == alone.shape
        assert np.abs(wav - alone).max() <= 1e-5


def test_noise_is_seeded_per_item(tiny: SoVITSDecoder) -> None:
    items = _items(tiny, 3, seed=2)
    for it in items:
        it.noise_scale, it.seed = 0.5, 7
    batched = tiny.decode(items)
    alone = tiny.decode([items[1]])[0]
    assert np.abs(batched[1] - alone).max() <= 1e-5
    items[1].seed = 8
    assert np.abs(tiny.decode([items[1]])[0] - alone).max() > 1e-3


def test_bad_input_is_refused(tiny: SoVITSDecoder) -> None:
    item = _items(tiny, 1)[0]
    for bad in (DecodeItem(torch.tensor([1024]), item.phones, item.style),
                DecodeItem(item.codes, torch.tensor([], dtype=torch.long), item.style),
                DecodeItem(item.codes, item.phones, item.style, speed=0.0)):
        with pytest.raises(ValueError):
            tiny.decode([bad])
    with pytest.raises(ValueError):
        tiny.reference_style(torch.zeros(100, 10))
    tiny.max_codes = 20
    try:
        with pytest.raises(ValueError, match="bound of 20"):
            tiny.decode([DecodeItem(torch.zeros(21, dtype=torch.long), item.phones, item.style)])
    finally:
        del tiny.max_codes


def _stream(dec: SoVITSDecoder, item: DecodeItem, codes: torch.Tensor, chunk: int, **options) -> np.ndarray:
    stream = dec.stream(item.phones, item.style, **options)
    out = []
    for end in range(chunk, codes.numel() + 1, chunk):
        window = stream.item(codes[:end], final=end == codes.numel())
        assert window is not None and window.codes.numel() <= options.get("context", 24) + 2 + chunk
        out.append(stream.accept(dec.decode([window])[0]))
    assert stream.item(codes, final=True) is None
    return np.concatenate(out)


def test_streaming_by_chunks_is_close_to_the_whole(tiny: SoVITSDecoder) -> None:
    """Chunks of 10 codes with 24 codes of left context; the measured difference from one whole decode is reported."""
    item = _items(tiny, 1, seed=3)[0]
    codes = torch.randint(0, 1024, (60,), generator=torch.Generator().manual_seed(4))
    whole = tiny.decode([DecodeItem(codes, item.phones, item.style)])[0]
    audio = _stream(tiny, item, codes, 10)
    assert audio.shape == whole.shape
    diff = np.abs(audio - whole).max()
    print(f"streaming vs whole: max abs diff {diff:.3g}, peak {np.abs(whole).max():.3g}")
    assert diff < 0.01 * np.abs(whole).max(), diff  # measured 5.3e-4 against a peak of 0.36


@pytest.mark.parametrize("speed", [1.25, 0.8])
def test_streaming_with_speed_and_noise_follows_one_grid(tiny: SoVITSDecoder, speed: float) -> None:
    """At speed != 1 windows share the request's resampling grid and noise: chunked ≈ the whole on that grid."""
    item = _items(tiny, 1, seed=5)[0]
    codes = torch.randint(0, 1024, (40,), generator=torch.Generator().manual_seed(6))
    whole = tiny.decode([DecodeItem(codes, item.phones, item.style, speed, 0.5, 11, frame_offset=0)])[0]
    audio = _stream(tiny, item, codes, 8, speed=speed, noise_scale=0.5, seed=11)
    assert audio.shape == whole.shape
    diff = np.abs(audio - whole).max()
    print(f"streaming at speed {speed} vs whole on the same grid: max abs diff {diff:.3g}, peak "
          f"{np.abs(whole).max():.3g}")
    assert diff < 0.02 * np.abs(whole).max(), diff
    upstream_grid = tiny.decode([DecodeItem(codes, item.phones, item.style, speed)])[0]
    assert abs(len(upstream_grid) - len(whole)) <= 2 * tiny.cfg.hop  # the whole-utterance resize: +-1-2 frames


def test_chunk_stream_checks_its_options() -> None:
    with pytest.raises(ValueError, match="overlap"):
        ChunkStream(torch.tensor([1]), torch.zeros(512, 1), holdback=1, overlap=1280)
    with pytest.raises(ValueError, match="context"):
        ChunkStream(torch.tensor([1]), torch.zeros(512, 1), context=1)
    with pytest.raises(RuntimeError):
        ChunkStream(torch.tensor([1]), torch.zeros(512, 1)).accept(np.zeros(10, np.float32))


def _pro_layout(v2: dict[str, list[int]], plus: bool) -> dict[str, tuple[int, ...]]:
    """The released v2Pro / v2ProPlus SoVITS keys and shapes from v2's (real_keys.json), changed as upstream's
    module definitions and configs change them (s2v2Pro.json / s2v2ProPlus.json): gin_channels 512 -> 1024 (the
    style encoder's output, every flow coupling's cond_layer, the generator's cond); sv_emb Linear(20480, gin),
    ge_to512 Linear(gin, 512), prelu PReLU(gin) added; the MRTE stays 512 wide. v2ProPlus also widens the
    generator (upsample_initial_channel 512 -> 768: every generator channel x 1.5) and its first upsampling kernel
    (16 -> 20)."""
    gin = 1024
    out: dict[str, tuple[int, ...]] = {}
    for key, shape in v2.items():
        s = list(shape)
        if key.startswith("ref_enc.fc.fc."):
            s[0] = gin
        if key.endswith("cond_layer.weight_v") or key == "dec.cond.weight":
            s[1] = gin
        if plus and key.startswith("dec."):  # every channel axis (not the kernel axis) of the generator
            for i in range(len(s) - 1 if len(s) > 1 else 1):
                if s[i] in (512, 256, 128, 64, 32, 16):
                    s[i] = s[i] * 3 // 2
            if key == "dec.ups.0.weight_v":
                s[-1] = 20
        out[key] = tuple(s)
    out |= {"sv_emb.weight": (gin, 20480), "sv_emb.bias": (gin,), "ge_to512.weight": (512, gin),
            "ge_to512.bias": (512,), "prelu.weight": (gin,)}
    return out


@pytest.mark.parametrize("plus", [False, True], ids=["v2Pro", "v2ProPlus"])
def test_loader_accepts_the_real_v2pro_layouts(plus: bool) -> None:
    keys = FIXTURE / "real_keys.json"
    if not keys.exists():
        pytest.skip("gptsovits-v2-tiny fixture not present")
    shapes = _pro_layout(json.loads(keys.read_text())["sovits v2 (no enc_q. in the .pth)"], plus)
    assert shapes["dec.ups.0.weight_v"] == ((768, 384, 20) if plus else (512, 256, 16))
    assert shapes["dec.conv_post.weight"] == ((1, 24, 7) if plus else (1, 16, 7))
    weights = {k: torch.empty(v, device="meta", dtype=torch.float16) for k, v in shapes.items()}
    # the config may say less than the weights (a v2 config here): the decoder's widths come from the weights
    cfg = SoVITSConfig.from_checkpoint(REAL_V2, weights)
    assert (cfg.gin_channels, cfg.sv_dim) == (1024, 20480)
    assert cfg.upsample_initial_channel == (768 if plus else 512)
    assert cfg.upsample_kernel_sizes == ((20, 16, 8, 2, 2) if plus else (16, 16, 8, 2, 2))
    with torch.device("meta"):
        model = SynthesizerV2(cfg)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in inference_state_dict(weights).items()} == expected


def test_v2proplus_decoder_decodes_at_its_width() -> None:
    """A tiny v2ProPlus-shaped model (wider generator, first kernel 20): a 32 kHz waveform of 1280 samples a code,
    batched items equal to each alone."""
    torch.manual_seed(2)
    cfg = SoVITSConfig(filter_channels=64, n_layers=1, upsample_initial_channel=96,
                       upsample_kernel_sizes=(20, 16, 8, 2, 2), gin_channels=64, sv_dim=32)
    dec = SoVITSDecoder(SynthesizerV2(cfg), dtype=torch.float64)
    styles = [dec.reference_style(torch.rand(1025, 20), torch.randn(32)) for _ in range(2)]
    items = [DecodeItem(torch.randint(0, 1024, (n,)), torch.randint(1, 700, (m,)), s)
             for n, m, s in ((7, 5, styles[0]), (11, 9, styles[1]))]
    together = dec.decode(items)
    for item, wav in zip(items, together, strict=True):
        assert wav.shape == (item.codes.numel() * 1280,)
        assert np.abs(dec.decode([item])[0] - wav).max() <= 1e-6


def test_v2pro_path_reduces_to_upstream_v2_with_neutral_speaker_weights(fixture_model) -> None:
    """Upstream's v2Pro decode is v2's with ge = prelu(ref_enc(spec) + sv_emb(sv)) and the text encoder reading
    ge_to512(ge). With a zero sv_emb, a PReLU of slope 1 and an identity ge_to512 it must give upstream's v2
    waveform (the fixture) exactly as v2 does; with a random sv_emb, v2's decode of the shifted style."""
    _, z = fixture_model
    ck = load_sovits(FIXTURE / "sovits.pth")
    sv_dim = 40
    neutral = {"sv_emb.weight": torch.zeros(512, sv_dim), "sv_emb.bias": torch.zeros(512),
               "ge_to512.weight": torch.eye(512), "ge_to512.bias": torch.zeros(512), "prelu.weight": torch.ones(512)}
    pro = SoVITSDecoder.from_checkpoint({"weight": {**ck.weights, **neutral}, "config": ck.config})
    assert pro.needs_speaker_embedding
    spec, speaker = torch.from_numpy(z["refer"]), torch.randn(sv_dim)
    codes, text = torch.from_numpy(z["codes"][0, 0]), torch.from_numpy(z["text"][0])
    wav = pro.decode([DecodeItem(codes, text, pro.reference_style(spec, speaker))])[0]
    assert np.abs(wav - z["wav"][0, 0]).max() <= TOL
    torch.manual_seed(5)
    shifted = {**neutral, "sv_emb.weight": torch.randn(512, sv_dim) * 0.05, "sv_emb.bias": torch.randn(512) * 0.05}
    pro = SoVITSDecoder.from_checkpoint({"weight": {**ck.weights, **shifted}, "config": ck.config})
    v2 = SoVITSDecoder.from_checkpoint(ck)
    style = v2.reference_style(spec) + (shifted["sv_emb.weight"] @ speaker + shifted["sv_emb.bias"]).unsqueeze(-1)
    expected = v2.decode([DecodeItem(codes, text, style)])[0]
    got = pro.decode([DecodeItem(codes, text, pro.reference_style(spec, speaker))])[0]
    assert np.abs(got - expected).max() <= 1e-5 and np.abs(got - wav).max() > 1e-4
