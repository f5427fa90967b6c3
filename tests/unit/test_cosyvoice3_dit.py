"""The CosyVoice3 DiT estimator's pieces: key layout, first-head rotary, causality, and that a call continued
from cached keys/values and convolution tails equals one call over everything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from vtts.workers.engines.cosyvoice3.dit import DiTDims, DiTEstimator, _rotate_first_head, estimator_key  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "cosyvoice3-tiny"
DIMS = DiTDims(dim=32, depth=2, heads=2, dim_head=16, ff_mult=2, conv_groups=16)


@pytest.fixture(scope="module")
def est() -> DiTEstimator:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = DiTEstimator(DIMS)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
        model.inv_freq = 1.0 / (10000 ** (torch.arange(0, DIMS.dim_head, 2).float() / DIMS.dim_head))
    return model.eval()


@pytest.mark.skipif(not (FIXTURE / "real_keys.json").exists(), reason="cosyvoice3-tiny fixture absent")
def test_real_keys_map_one_to_one_and_give_the_real_sizes() -> None:
    shapes = {k: tuple(v) for k, v in json.loads((FIXTURE / "real_keys.json").read_text())["flow"].items()}
    prefix = "decoder.estimator."
    upstream = [k[len(prefix):] for k in shapes if k.startswith(prefix)]
    mine = {estimator_key(k) for k in upstream}
    assert len(mine) == len(upstream)
    dims = DiTDims.from_shapes(shapes)
    assert dims == DiTDims()
    with torch.device("meta"):
        model = DiTEstimator(dims)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == {
        estimator_key(k[len(prefix):]): v for k, v in shapes.items() if k.startswith(prefix)}
    with pytest.raises(KeyError):
        estimator_key("transformer_blocks.0.attn.to_q_c.weight")


def test_rotary_turns_the_first_head_only() -> None:
    x = torch.randn(1, 5, 48)
    angles = torch.arange(5).float()[:, None] * torch.rand(8)
    cos, sin = angles.repeat_interleave(2, -1).cos()[None], angles.repeat_interleave(2, -1).sin()[None]
    y = _rotate_first_head(x, cos, sin)
    assert torch.equal(y[..., 16:], x[..., 16:])  # heads after the first: no position
    assert torch.allclose(y[:, 0], x[:, 0])  # position 0: identity
    pairs = y[..., :16].unflatten(-1, (8, 2))  # interleaved pairs keep their norm
    assert torch.allclose(pairs.norm(dim=-1), x[..., :16].unflatten(-1, (8, 2)).norm(dim=-1), atol=1e-6)


def inputs(frames: int, rows: int = 2, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(rows, frames, 80, generator=g), "cond": torch.randn(rows, frames, 80, generator=g),
            "mu": torch.randn(rows, frames, 80, generator=g), "spk": torch.randn(rows, 80, generator=g)}


def chunk_mask(start: int, frames: int, keys_before: int, chunk: int = 10) -> torch.Tensor:
    pos = torch.arange(start, start + frames)
    allowed = (pos[None, :] // chunk) <= (pos[:, None] // chunk)
    allowed = torch.cat((torch.ones(frames, keys_before, dtype=torch.bool), allowed), dim=1)
    return torch.zeros(allowed.shape).masked_fill(~allowed, -torch.inf)[None, None]


@torch.inference_mode()
def test_chunk_mask_makes_earlier_chunks_independent_of_later_ones(est: DiTEstimator) -> None:
    mod = est.modulation(torch.tensor([0.3]))
    a, b = inputs(35), inputs(35, seed=1)
    for k in ("x", "cond", "mu"):
        b[k][:, :20] = a[k][:, :20]
    b["spk"] = a["spk"]
    pos = torch.arange(35)[None].repeat(2, 1)
    out_a = est(**a, mod=mod, rope=est.rope(pos), mask=chunk_mask(0, 35, 0)).out
    out_b = est(**b, mod=mod, rope=est.rope(pos), mask=chunk_mask(0, 35, 0)).out
    assert torch.equal(out_a[:, :20], out_b[:, :20])
    assert not torch.allclose(out_a[:, 20:], out_b[:, 20:])


@torch.inference_mode()
def test_cached_continuation_equals_one_call(est: DiTEstimator) -> None:
    """Frames 0-19 computed first (keys/values into a cache, conv tails kept), then 20-44 after them: the
    same velocity as one call over 0-44."""
    mod = est.modulation(torch.tensor([0.6]))
    data = inputs(45)
    pos = torch.arange(45)[None].repeat(2, 1)
    whole = est(**data, mod=mod, rope=est.rope(pos), mask=chunk_mask(0, 45, 0)).out
    cache = torch.zeros(DIMS.depth, 2, 2, DIMS.heads, 64, DIMS.dim_head)
    first = {k: v[:, :20] if v.dim() == 3 else v for k, v in data.items()}
    head = est(**first, mod=mod, rope=est.rope(pos[:, :20]), mask=chunk_mask(0, 20, 0), cache=cache, offset=0)
    tails = tuple(t[:, :, 20:20 + est.tail] for t in head.conv_in)
    rest = {k: v[:, 20:] if v.dim() == 3 else v for k, v in data.items()}
    tail = est(**rest, mod=mod, rope=est.rope(pos[:, 20:]), mask=chunk_mask(20, 25, 20), cache=cache, offset=20,
               tails=tails).out
    assert torch.allclose(head.out, whole[:, :20], atol=1e-5)
    assert torch.allclose(tail, whole[:, 20:], atol=1e-5)
