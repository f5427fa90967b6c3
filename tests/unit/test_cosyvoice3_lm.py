"""CosyVoice3's speech-token LM: parity with upstream (lm.npz), the real checkpoint layout, batching and KV."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from vtts.workers.engines.cosyvoice3.lm import (  # noqa: E402
    END_OF_PROMPT,
    SPEECH_VOCAB,
    CosyVoice3LM,
    LMRequest,
    LMSampling,
    real_size_config,
)

FIXTURE = Path(__file__).resolve().parents[2] / "../shared/fixtures/cosyvoice3-tiny"
pytestmark = pytest.mark.skipif(not FIXTURE.is_dir(), reason="cosyvoice3-tiny fixture absent")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def lm() -> CosyVoice3LM:
    return CosyVoice3LM.load(FIXTURE / "model/llm.pt", FIXTURE / "model/CosyVoice-BlankEN")


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    return dict(np.load(FIXTURE / "lm.npz"))


def _fixture_request(lm: CosyVoice3LM, ref: dict[str, np.ndarray], seed: int = 0) -> LMRequest:
    return lm.start(ref["prompt_text"][0].tolist(), ref["text"][0].tolist(), ref["prompt_speech_token"][0].tolist(),
                    seed=seed)


def _requests(lm: CosyVoice3LM, n: int, **sampling: float) -> list[LMRequest]:
    """``n`` requests with prompts and texts of different lengths (n = 1 is the fixture-like one)."""
    rng = np.random.default_rng(7)
    out = []
    for k in range(n):
        prompt = [*rng.integers(0, 150000, 2 + k).tolist(), END_OF_PROMPT]
        text = rng.integers(0, 150000, 3 + 2 * k).tolist()
        speech = rng.integers(0, SPEECH_VOCAB, (5 * k) % 13).tolist()
        out.append(lm.start(prompt, text, speech, LMSampling(**sampling), seed=100 + k))
    return out


def test_input_assembly_matches_upstream(lm: CosyVoice3LM, ref: dict[str, np.ndarray]) -> None:
    req = _fixture_request(lm, ref)
    assert req.prefix_len == int(ref["prefix_len"]) == req.next_cost
    with torch.inference_mode():
        got = lm._inputs([req]).numpy()
    assert np.abs(got - ref["lm_input"][0]).max() < 1e-6


def test_teacher_forced_log_probs_match_upstream(lm: CosyVoice3LM, ref: dict[str, np.ndarray]) -> None:
    """llm.pt and the tiny Qwen loaded as a serving engine would; prefill then decode one token at a time."""
    req = _fixture_request(lm, ref)
    rows = []
    for token in [*ref["forced_tokens"][0].tolist(), None]:
        rows.append(lm.log_probs([req])[0])
        if token is not None:
            req.force(token)
    assert np.abs(torch.stack(rows).numpy() - ref["logp"]).max() <= 1e-4
    assert req.kv_tokens == int(ref["prefix_len"]) + 20


def test_teacher_forced_log_probs_in_a_batch_and_after_preemption(lm: CosyVoice3LM,
                                                                  ref: dict[str, np.ndarray]) -> None:
    """The fixture's request decoded among three others, its cache dropped and recomputed halfway."""
    req, others = _fixture_request(lm, ref), _requests(lm, 3)
    rows = []
    for i, token in enumerate([*ref["forced_tokens"][0].tolist(), None]):
        if i == 10:
            req.drop_cache()
            assert req.kv_tokens == 0 and req.next_cost == int(ref["prefix_len"]) + 10
        rows.append(lm.log_probs([*others, req])[-1])
        for other in others:
            other.force(i)
        if token is not None:
            req.force(token)
    assert np.abs(torch.stack(rows).numpy() - ref["logp"]).max() <= 1e-4


@pytest.mark.parametrize("dtype,tolerance", [("bfloat16", 0.05), ("float16", 0.05), ("float64", 1e-4)])
def test_other_dtypes(ref: dict[str, np.ndarray], dtype: str, tolerance: float) -> None:
    """The GPU dtypes (weights and caches in half precision, log-probs still float32) stay near upstream's
    log-probs; float64 (the CPU choice for exact same-seed reproduction) matches them."""
    lm = CosyVoice3LM.load(FIXTURE / "model/llm.pt", FIXTURE / "model/CosyVoice-BlankEN", dtype=getattr(torch, dtype))
    req = _fixture_request(lm, ref)
    rows = []
    for token in [*ref["forced_tokens"][0].tolist(), None]:
        rows.append(lm.log_probs([req])[0])
        if token is not None:
            req.force(token)
    assert rows[0].dtype == torch.promote_types(getattr(torch, dtype), torch.float32)
    assert req.cache.buf.dtype == getattr(torch, dtype)
    assert np.abs(torch.stack(rows).numpy() - ref["logp"]).max() <= tolerance


def test_loader_takes_the_real_checkpoint_layout() -> None:
    """Key names and shapes of Fun-CosyVoice3-0.5B's llm.pt (real_keys.json), on a module built at real size
    on the meta device: every key is taken, none is missing."""
    real = {k: tuple(v) for k, v in json.loads((FIXTURE / "real_keys.json").read_text())["llm"].items()}
    with torch.device("meta"):
        model = CosyVoice3LM(real_size_config())
    layout = model.upstream_layout()
    assert {k: v for k, v in real.items() if k != "llm.model.lm_head.weight"} == layout
    model.load_upstream({k: torch.empty(v, device="meta") for k, v in real.items()}, assign=True)
    wrong = {k: torch.empty(v, device="meta") for k, v in real.items()}
    wrong["llm_decoder.weight"] = torch.empty(6761, 1024, device="meta")
    with pytest.raises(ValueError, match="wrong shape"):
        model.load_upstream(wrong, assign=True)
    with pytest.raises(ValueError, match="lacks"):
        model.load_upstream({k: v for k, v in wrong.items() if k != "speech_embedding.weight"}, assign=True)
    with pytest.raises(ValueError, match="does not know"):
        model.load_upstream({**wrong, "llm.spk_embed_affine_layer.weight": torch.empty(2, device="meta")})


def test_qwen_weights_come_from_safetensors_when_llm_pt_has_none(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    state = torch.load(FIXTURE / "model/llm.pt", weights_only=True)
    torch.save({k: v for k, v in state.items() if not k.startswith("llm.model.")}, tmp_path / "llm.pt")
    model = CosyVoice3LM.load(tmp_path / "llm.pt", FIXTURE / "model/CosyVoice-BlankEN")
    weights = load_file(str(FIXTURE / "model/CosyVoice-BlankEN/model.safetensors"))
    assert torch.equal(model.qwen.layers[0].mlp.up_proj.weight, weights["model.layers.0.mlp.up_proj.weight"])
    assert torch.equal(model.speech_embedding.weight, state["speech_embedding.weight"])


def _decode(lm: CosyVoice3LM, requests: list[LMRequest], joins: list[int], tokens_each: int,
            preempt: dict[int, int] | None = None) -> tuple[list[list[int | None]], list[list[np.ndarray]]]:
    """Decode ``requests`` together, request k joining at step ``joins[k]`` (and preempted at step
    ``preempt[k]``), each for ``tokens_each`` steps at most; return each one's tokens and per-step log-probs."""
    tokens: list[list[int | None]] = [[] for _ in requests]
    logps: list[list[np.ndarray]] = [[] for _ in requests]
    step = 0
    while True:
        for k, at in (preempt or {}).items():
            if at == step:
                requests[k].drop_cache()
        live = [k for k, r in enumerate(requests)
                if joins[k] <= step and not r.finished and len(tokens[k]) < tokens_each]
        if not live and step > max(joins):
            return tokens, logps
        step += 1
        if not live:
            continue
        batch = [requests[k] for k in live]
        logp = lm.log_probs(batch)
        for k, token, row in zip(live, lm.sample(batch, logp), logp, strict=True):
            tokens[k].append(token)
            logps[k].append(row.numpy())


@pytest.mark.parametrize("dtype,tolerance", [("float32", 1e-5), ("float64", 1e-12)])
def test_batched_decoding_equals_decoding_alone(lm: CosyVoice3LM, dtype: str, tolerance: float) -> None:
    """Four requests of different lengths, joining at different steps, one preempted (its cache recomputed
    in a step mixed with decodes): each one's log-probs (to 1e-5; 1e-12 in float64) and seeded tokens
    (exactly) are those it gets alone."""
    lm = copy.deepcopy(lm).to(getattr(torch, dtype))  # not the shared fixture's module: .to is in place
    no_stop = {"min_token_text_ratio": 20}  # random weights often sample a stop id: 40 tokens each here
    alone = [_decode(lm, [r], [0], 40) for r in _requests(lm, 4, **no_stop)]
    together = _decode(lm, _requests(lm, 4, **no_stop), [0, 3, 3, 7], 40, preempt={2: 20})
    for k in range(4):
        assert together[0][k] == alone[k][0][0]
        assert len(together[1][k]) == len(alone[k][1][0]) == 40
        assert max(np.abs(a - b).max() for a, b in zip(together[1][k], alone[k][1][0], strict=True)) <= tolerance
    assert len({tuple(t[:20]) for t in together[0]}) == 4  # different seeds and inputs, different tokens


def test_same_seed_same_tokens_through_step(lm: CosyVoice3LM, ref: dict[str, np.ndarray]) -> None:
    first = _fixture_request(lm, ref, seed=5)
    again = _fixture_request(lm, ref, seed=5)
    other = _fixture_request(lm, ref, seed=6)
    crowd = _requests(lm, 3)
    out: list[list[int | None]] = [[], [], []]
    while not first.finished:
        out[0] += lm.step([first])
    while not again.finished:
        live = [r for r in (*crowd, again, other) if not r.finished]
        for r, tok in zip(live, lm.step(live), strict=True):
            if r is again:
                out[1].append(tok)
            elif r is other:
                out[2].append(tok)
    assert out[0] == out[1] and out[0] != out[2]
    assert first.max_len == 5 * 20 and len(out[0]) > 20


def test_kv_is_released_on_every_exit(lm: CosyVoice3LM) -> None:
    done, cancelled, stopped = _requests(lm, 3, max_tokens=4)
    lm.step([done, cancelled, stopped])
    assert done.kv_tokens == done.prefix_len and done.kv_bytes > 0
    cancelled.release()
    assert cancelled.kv_tokens == 0 and cancelled.kv_bytes == 0
    with pytest.raises(ValueError, match="finished or released"):
        lm.step([cancelled])
    logp = lm.log_probs([stopped]).clone()
    logp[0, SPEECH_VOCAB + 1] = 0.0  # force the eos
    stopped.min_len = 0
    assert lm.sample([stopped], logp) == [None] and stopped.finished and stopped.kv_tokens == 0
    for _ in range(3):
        lm.step([done])
    assert done.finished and len(done.tokens) == 4 and done.kv_tokens == 0
    assert lm.kv_bytes_per_token == 2 * 2 * 2 * 8 * 4  # k and v × 2 layers × 2 kv heads × head dim 8 × float32


def test_minimum_length_masks_every_stop_id(lm: CosyVoice3LM) -> None:
    (req,) = _requests(lm, 1)
    assert (req.min_len, req.max_len) == (6, 60)  # 3 text tokens × 2 and × 20, as upstream
    for stop in (SPEECH_VOCAB, SPEECH_VOCAB + 1, SPEECH_VOCAB + 3, SPEECH_VOCAB + 199):
        req.tokens = []
        logp = torch.full((1, SPEECH_VOCAB + 200), -50.0)
        logp[0, stop] = 0.0
        logp[0, 17] = -10.0
        assert lm.sample([req], logp) == [17]
    req.tokens = [1, 2, 3, 4, 5, 6]
    logp = torch.full((1, SPEECH_VOCAB + 200), -50.0)
    logp[0, SPEECH_VOCAB + 5] = 0.0
    assert lm.sample([req], logp) == [None] and req.finished


def test_repetition_aware_sampling(lm: CosyVoice3LM) -> None:
    """top-k/top-p nucleus, and a token repeated within the window replaced by a draw from the rest."""
    never = LMSampling(min_token_text_ratio=0, tau=2.0)  # 20 repeats needed in a window of 10: nucleus alone
    req = lm.start([END_OF_PROMPT], [1] * 10, [], never, seed=3)
    logp = torch.full((1, SPEECH_VOCAB + 200), -30.0)
    logp[0, [40, 41, 42]] = torch.tensor([0.0, -0.5, -3.0])  # 40 holds 0.60 < top_p, 40 + 41 0.97: 40 or 41
    picks = [lm.sample([req], logp.clone())[0] for _ in range(30)]
    assert set(picks) == {40, 41} and len(req.tokens) == 30
    req.sampling = LMSampling(top_k=1, min_token_text_ratio=0)  # nucleus can only pick 40
    logp = torch.full((1, SPEECH_VOCAB + 200), -30.0)
    logp[0, 40], logp[0, 9] = 0.0, -1.0
    req.tokens = [40, 7]  # 40 seen once in the last 10 (>= 10 × 0.1): masked, drawn again from the rest
    assert lm.sample([req], logp) == [9]
    req.tokens = [40] + [8] * 10  # out of the window: 40 stays
    assert lm.sample([req], logp) == [40]


def test_bad_inputs_are_refused(lm: CosyVoice3LM) -> None:
    for prompt, text, speech in (([1, 2], [3], []), ([END_OF_PROMPT], [], []), ([END_OF_PROMPT], [5], [6561]),
                                 ([END_OF_PROMPT], [-1], []), ([END_OF_PROMPT], [151936], [])):
        with pytest.raises(ValueError):
            lm.start(prompt, text, speech)
    with pytest.raises(ValueError, match="positions"):
        lm.start([END_OF_PROMPT], [5] * 2000, [])  # 40000 tokens allowed by the ratio: past 32768 positions
    assert lm.start([END_OF_PROMPT], [5] * 2000, [], LMSampling(max_tokens=1000)).max_len == 1000
    with pytest.raises(ValueError):
        LMSampling(top_p=0.0)
    req = lm.start([END_OF_PROMPT], [5], [])
    lm.log_probs([req])
    with pytest.raises(ValueError, match="no new input"):
        lm.log_probs([req])
