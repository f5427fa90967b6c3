"""The text-to-semantic GPT: parity with upstream on the tiny fixture (teacher-forced logits), the real
checkpoint's keys and shapes, and batching that changes nothing: the same logits and the same sampled
tokens alone or in a ragged batch, and every cache freed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vtts.workers.engines.gptsovits.checkpoints import load_gpt  # noqa: E402
from vtts.workers.engines.gptsovits.t2s import KVPool, RowSampling, T2SConfig, T2SModel, sample  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "gptsovits-v2-tiny"
needs_fixture = pytest.mark.skipif(not FIXTURE.is_dir(), reason="gptsovits-v2-tiny fixture absent")


@pytest.fixture(scope="module")
def model() -> T2SModel:
    torch.set_num_threads(1)
    if FIXTURE.is_dir():
        ck = load_gpt(FIXTURE / "gpt.ckpt")
        m = T2SModel(T2SConfig.from_checkpoint(ck.config, ck.weights))
        m.load_upstream(ck.weights)
        return m
    torch.manual_seed(0)
    m = T2SModel(T2SConfig(dim=64, heads=4, layers=2, ffn=256))
    for p in m.parameters():
        p.normal_(0, 0.2)
    return m


@needs_fixture
def test_teacher_forced_logits_match_upstream(model: T2SModel) -> None:
    z = np.load(FIXTURE / "t2s.npz")
    pool = KVPool(model)
    prompt = torch.from_numpy(z["prompt"][0]).long()
    rows = [pool.prefill("r", torch.from_numpy(z["phones"][0]).long(), torch.from_numpy(z["bert_feature"][0]),
                         prompt)]
    for i, token in enumerate(z["forced"][0].tolist()):
        rows.append(pool.decode(["r"], [token], [len(prompt) + i])[0])
    assert np.abs(torch.stack(rows).numpy() - z["logits"]).max() <= 1e-4
    # a cache rebuilt in one pass from prompt + forced tokens gives the last row too (preemption's resume)
    again = KVPool(model).prefill("r", torch.from_numpy(z["phones"][0]).long(),
                                  torch.from_numpy(z["bert_feature"][0]),
                                  torch.cat([prompt, torch.from_numpy(z["forced"][0]).long()]))
    assert np.abs(again.numpy() - z["logits"][-1]).max() <= 1e-4


@needs_fixture
def test_real_checkpoint_keys_and_shapes_are_accepted() -> None:
    real = json.loads((FIXTURE / "real_keys.json").read_text())
    gpt = next(v for k, v in real.items() if k.startswith("gpt"))
    config = {"model": {"hidden_dim": 512, "head": 16, "n_layer": 24, "phoneme_vocab_size": 732,
                        "vocab_size": 1025, "embedding_dim": 512}}
    weights = {k: torch.empty(shape, device="meta") for k, shape in gpt.items()}
    cfg = T2SConfig.from_checkpoint(config, weights)
    assert cfg == T2SConfig()
    T2SModel(cfg, device="meta").load_upstream(weights)
    weights["bert_proj.weight"] = torch.empty(256, 1024, device="meta")
    with pytest.raises(ValueError, match="bert_proj.weight"):
        T2SModel(cfg, device="meta").load_upstream(weights)
    del weights["bert_proj.weight"]
    with pytest.raises(ValueError, match="missing"):
        T2SModel(cfg, device="meta").load_upstream(weights)


def inputs(k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(k)
    n, m = 8 + 3 * k, 5 + 2 * k
    return (torch.randint(0, 732, (n,), generator=g), torch.randn(1024, n, generator=g) * (k % 2),
            torch.randint(0, 1024, (m,), generator=g))


def test_batched_decode_equals_each_alone(model: T2SModel) -> None:
    alone, batched = KVPool(model), KVPool(model)
    rids = [f"r{k}" for k in range(5)]
    for k, rid in enumerate(rids):
        for pool in (alone, batched):
            pool.prefill(rid, *inputs(k))
    for step in range(4):
        tokens = [(7 * k + step) % 1024 for k in range(5)]
        positions = [inputs(k)[2].shape[0] + step for k in range(5)]
        together = batched.decode(rids, tokens, positions)
        assert batched.decode_calls == step + 1
        for k, rid in enumerate(rids):
            one = alone.decode([rid], [tokens[k]], [positions[k]])[0]
            assert (one - together[k]).abs().max() <= 1e-5


def generate(model: T2SModel, ks: list[int], seeds: list[int], steps: int = 24) -> list[list[int]]:
    """Sample ``steps`` tokens for each request, all decoded together."""
    pool = KVPool(model)
    rids = [f"r{k}" for k in ks]
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    knobs = [RowSampling(temperature=1.0, top_k=15, top_p=0.9 if k % 2 else 1.0) for k in ks]
    hist = [inputs(k)[2].tolist() for k in ks]
    out: list[list[int]] = [[] for _ in ks]
    live = list(range(len(ks)))
    logits = torch.stack([pool.prefill(rids[i], *inputs(k)) for i, k in enumerate(ks)])
    for step in range(steps):
        picks, stops = sample(logits, [torch.tensor(hist[i]) for i in live], [knobs[i] for i in live],
                              [gens[i] for i in live], 1024, [step >= 11] * len(live))
        for i, token, stop in zip(live, picks, stops, strict=True):
            if stop:
                pool.drop(rids[i])
            else:
                out[i].append(token)
                hist[i].append(token)
        live = [i for i, stop in zip(live, stops, strict=True) if not stop]
        if not live:
            break
        logits = pool.decode([rids[i] for i in live], [hist[i][-1] for i in live], [len(hist[i]) - 1 for i in live])
    for rid in rids:
        pool.drop(rid)
    assert pool.tokens == 0 and len(pool) == 0 and pool.bytes == 0
    return out


def test_same_seed_same_tokens_alone_or_batched(model: T2SModel) -> None:
    ks = list(range(8))
    together = generate(model, ks, [100 + k for k in ks])
    for k in ks:
        assert generate(model, [k], [100 + k]) == [together[k]]
    assert generate(model, [0], [5]) != generate(model, [0], [6])
    assert all(len(t) >= 11 for t in together)  # EOS masked for the first 11 steps


def test_sampling_knobs() -> None:
    logits = torch.tensor([[0.0, 5.0, 4.9, -1.0, 3.0]])
    greedy = RowSampling(temperature=0, top_k=0, repetition_penalty=1.0)
    g = torch.Generator().manual_seed(0)
    assert sample(logits, [torch.tensor([], dtype=torch.long)], [greedy], [g], 4, [True]) == ([1], [False])
    penalised = RowSampling(temperature=0, top_k=0, repetition_penalty=2.0)
    assert sample(logits, [torch.tensor([1])], [penalised], [g], 4, [True])[0] == [2]
    for _ in range(20):  # top-k 1 is greedy whatever the draw
        assert sample(logits, [torch.tensor([], dtype=torch.long)], [RowSampling(top_k=1, repetition_penalty=1.0)],
                      [g], 4, [True])[0] == [1]
    eos_best = torch.tensor([[0.0, 1.0, 0.0, 0.0, 9.0]])
    assert sample(eos_best, [torch.tensor([], dtype=torch.long)], [greedy], [g], 4, [True]) == ([4], [True])
    assert sample(eos_best, [torch.tensor([], dtype=torch.long)], [greedy], [g], 4, [False]) == ([1], [False])
