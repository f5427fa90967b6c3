"""The Qwen2 decoder of the CosyVoice3 engine: loading, the math against a plain formula, ragged batches."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from vtts.workers.engines.cosyvoice3.qwen import KVCache, Qwen2, Qwen2Config  # noqa: E402

QWEN_DIR = Path(__file__).resolve().parents[2] / "../shared/fixtures/cosyvoice3-tiny/model/CosyVoice-BlankEN"
needs_fixture = pytest.mark.skipif(not QWEN_DIR.is_dir(), reason="cosyvoice3-tiny fixture absent")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _random_model(seed: int = 0, dtype: torch.dtype = torch.float64) -> Qwen2:
    """A small Qwen2 with random weights (biases and norms too, so every term is exercised)."""
    cfg = Qwen2Config(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=50, rope_theta=10000.0)
    torch.manual_seed(seed)
    model = Qwen2(cfg).to(dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.3 + (1.0 if p.dim() == 1 and p.shape[0] == 32 else 0.0))
    return model.eval()


def _plain(model: Qwen2, x: torch.Tensor) -> torch.Tensor:
    """Qwen2 on one whole sequence, written as directly as the formulas read (float64)."""
    cfg = model.config
    hd, heads, groups = cfg.head_dim, cfg.num_attention_heads, cfg.num_attention_heads // cfg.num_key_value_heads

    def norm(w: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return w * h / torch.sqrt((h * h).mean(-1, keepdim=True) + cfg.rms_norm_eps)

    def rope(t: torch.Tensor) -> torch.Tensor:  # t: [n, heads, hd]; pairs (i, i + hd/2) rotate by pos * freq_i
        pos = torch.arange(t.shape[0], dtype=torch.float64)[:, None, None]
        freq = torch.tensor([cfg.rope_theta ** (-2 * i / hd) for i in range(hd // 2)], dtype=torch.float64)
        a, b = t[..., : hd // 2], t[..., hd // 2:]
        c, s = torch.cos(pos * freq), torch.sin(pos * freq)
        return torch.cat([a * c - b * s, b * c + a * s], -1)

    n = x.shape[0]
    for layer in model.layers:
        att = layer.self_attn
        h = norm(layer.input_layernorm.weight, x)
        q = rope((h @ att.q_proj.weight.T + att.q_proj.bias).view(n, heads, hd))
        k = rope((h @ att.k_proj.weight.T + att.k_proj.bias).view(n, -1, hd)).repeat_interleave(groups, 1)
        v = (h @ att.v_proj.weight.T + att.v_proj.bias).view(n, -1, hd).repeat_interleave(groups, 1)
        scores = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(hd)
        scores = scores.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
        out = torch.einsum("hqk,khd->qhd", scores.softmax(-1), v).reshape(n, -1)
        x = x + out @ att.o_proj.weight.T
        h = norm(layer.post_attention_layernorm.weight, x)
        mlp = layer.mlp
        gate = h @ mlp.gate_proj.weight.T
        x = x + (gate * torch.sigmoid(gate) * (h @ mlp.up_proj.weight.T)) @ mlp.down_proj.weight.T
    return norm(model.norm.weight, x)


@torch.no_grad()
def test_forward_matches_the_plain_formulas() -> None:
    model = _random_model()
    x = torch.randn(9, 32, dtype=torch.float64)
    got = model(x, [9], [model.new_cache()])
    # not exact: the rotary angles are float32 whatever the model's dtype, as in transformers
    assert (got - _plain(model, x)).abs().max() < 1e-5


@torch.no_grad()
def test_ragged_batch_equals_each_sequence_alone() -> None:
    """Prefills of different lengths, then a step mixing decodes with a newcomer's prefill, in single calls:
    each sequence's hidden states are those of its own whole-sequence pass (float64: equal to rounding)."""
    model = _random_model(1)
    seqs = [torch.randn(n, 32, dtype=torch.float64) for n in (3, 11, 1, 7, 5)]
    alone = [model(s, [len(s)], [model.new_cache()]) for s in seqs]
    caches = [model.new_cache() for _ in seqs]
    lens = [2, 8, 1, 4]  # the first four start with part of their sequence
    out = model(torch.cat([s[:n] for s, n in zip(seqs[:4], lens, strict=True)]), lens, caches[:4])
    for k, part in enumerate(out.split(lens)):
        assert (part - alone[k][: lens[k]]).abs().max() < 1e-10
    # next call: the first four take one token each (decode), the fifth joins with all five of its tokens
    new = [1, 1, 0, 1, 5]
    live = [k for k, n in enumerate(new) if n]
    out = model(torch.cat([seqs[k][lens[k]: lens[k] + 1] if k < 4 else seqs[k] for k in live]),
                [new[k] for k in live], [caches[k] for k in live])
    for k, part in zip(live, out.split([new[k] for k in live]), strict=True):
        start = lens[k] if k < 4 else 0
        assert (part - alone[k][start: start + new[k]]).abs().max() < 1e-10
    assert [c.length for c in caches] == [3, 9, 1, 5, 5]


@torch.no_grad()
def test_float32_decode_is_batch_invariant() -> None:
    """float32, as served: one sequence decoded alone and inside a batch of longer ones agree to 1e-5."""
    model = _random_model(2, torch.float32)
    seqs = [torch.randn(n, 32) for n in (6, 30, 17, 9)]
    alone = model(seqs[0], [6], [model.new_cache()])
    caches = [model.new_cache() for _ in seqs]
    prefix = [1, 25, 12, 4]  # then five decoding steps for all four
    rows = [model(torch.cat([s[:p] for s, p in zip(seqs, prefix, strict=True)]), prefix, caches)[:1]]
    for i in range(5):
        step = torch.cat([s[p + i: p + i + 1] for s, p in zip(seqs, prefix, strict=True)])
        rows.append(model(step, [1] * 4, caches)[:1])
    assert (torch.cat(rows) - alone).abs().max() < 1e-5


def test_kv_cache_grows_and_keeps_its_rows() -> None:
    cache = KVCache(2, 2, 4, torch.float32, torch.device("cpu"))
    rows = [torch.randn(2, 2, 2, n, 4) for n in (3, 20, 1)]
    for r in rows:
        cache.append(r)
    assert cache.length == 24 and cache.buf.shape[3] >= 24
    assert torch.equal(cache.keys_values(), torch.cat(rows, dim=3))
    assert cache.nbytes == cache.buf.numel() * 4


def test_bad_batches_are_refused() -> None:
    model = _random_model()
    x = torch.randn(4, 32, dtype=torch.float64)
    for new, caches in (([2, 1], [model.new_cache()] * 2), ([4], []), ([0, 4], [model.new_cache()] * 2)):
        with pytest.raises(ValueError):
            model(x, new, caches)


def test_config_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    base = {"hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
            "num_key_value_heads": 1, "vocab_size": 10}
    assert Qwen2Config.from_dict(base).head_dim == 4
    for bad in ({"model_type": "llama"}, {"rope_scaling": {"type": "yarn"}}, {"use_sliding_window": True},
                {"hidden_act": "gelu"}, {"num_key_value_heads": 3}):
        with pytest.raises(ValueError):
            Qwen2Config.from_dict({**base, **bad})


@needs_fixture
@torch.no_grad()
def test_loads_the_tiny_checkpoint() -> None:
    from safetensors.torch import load_file

    model = Qwen2.from_pretrained(QWEN_DIR)
    cfg = json.loads((QWEN_DIR / "config.json").read_text())
    assert model.config.rope_theta == cfg["rope_theta"] and model.config.num_key_value_heads == 2
    weights = load_file(str(QWEN_DIR / "model.safetensors"))
    assert torch.equal(model.layers[1].self_attn.k_proj.bias, weights["model.layers.1.self_attn.k_proj.bias"])
    x = model.embed_tokens(torch.tensor([9707, 11, 151646, 40]))
    alone = model(x, [4], [model.new_cache()])
    assert alone.shape == (4, 32) and torch.isfinite(alone).all()
    model64 = Qwen2.from_pretrained(QWEN_DIR, dtype=torch.float64)
    assert (alone.double() - _plain(model64, x.double())).abs().max() < 1e-5
