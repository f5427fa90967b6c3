"""CosyVoice3's flow decoder against the parity fixture (upstream's outputs on tiny random weights), batched
against alone, and the cached chunk streaming against one-shot recomputation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vtts.workers.engine import EngineError  # noqa: E402
from vtts.workers.engines.cosyvoice3.flow import CosyVoice3Flow, FlowDims, measure_streaming, stream_hops  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "cosyvoice3-tiny"
pytestmark = pytest.mark.skipif(not (FIXTURE / "flow.npz").exists(), reason="cosyvoice3-tiny fixture absent")
TOL = 1e-4


@pytest.fixture(scope="module")
def flow() -> CosyVoice3Flow:
    torch.set_num_threads(1)
    return CosyVoice3Flow.load(FIXTURE / "model" / "flow.pt")


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    return dict(np.load(FIXTURE / "flow.npz"))


@pytest.fixture(scope="module")
def prompt(flow: CosyVoice3Flow, ref: dict[str, np.ndarray]):
    return flow.prompt(torch.from_numpy(ref["prompt_token"]), torch.from_numpy(ref["prompt_feat"]),
                       torch.from_numpy(ref["embedding"]))


def other_prompt(flow: CosyVoice3Flow, tokens: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    return flow.prompt(torch.randint(0, 6561, (tokens,), generator=g), torch.randn(2 * tokens, 80, generator=g),
                       torch.randn(192, generator=g))


def random_tokens(n: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 6561, (n,), generator=torch.Generator().manual_seed(seed))


def diff(a: torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    return float(np.abs(a.numpy() - np.asarray(b)).max(initial=0.0))


def test_starting_noise_is_upstreams(flow: CosyVoice3Flow, ref: dict[str, np.ndarray]) -> None:
    assert flow.noise[:200].t().numpy() == pytest.approx(ref["rand_noise_head"][0], abs=0)


def test_offline_matches_fixture(flow: CosyVoice3Flow, ref: dict[str, np.ndarray], prompt) -> None:
    mel = flow.offline([(prompt, torch.from_numpy(ref["token"]))])[0]
    assert mel.shape == (80, 80)
    assert diff(mel, ref["mel_offline"][0]) <= TOL


def test_stream_final_matches_fixture(flow: CosyVoice3Flow, ref: dict[str, np.ndarray], prompt) -> None:
    mel = flow.stream([(flow.start(prompt), torch.from_numpy(ref["token"]), True)])[0]
    assert diff(mel, ref["mel_stream_final"][0]) <= TOL


def test_stream_chunk_matches_fixture(flow: CosyVoice3Flow, ref: dict[str, np.ndarray], prompt) -> None:
    state = flow.start(prompt)
    mel = flow.stream([(state, torch.from_numpy(ref["token_chunk"]), False)])[0]
    assert mel.shape == (80, 50)  # the last 3 tokens are look-ahead only
    assert diff(mel, ref["mel_stream_chunk"][0]) <= TOL


@pytest.mark.parametrize("hops", [[8, 32], [8, 25, 7], [8, 25, 0, 7]])
def test_chunk_aligned_hops_give_the_one_shot_streamed_mel(flow, ref, prompt, hops: list[int]) -> None:
    """Hops ending on 50-frame chunk boundaries (as upstream's schedule pads them) stream exactly
    ``mel_stream_final``: earlier chunks never depend on later ones, so their cached keys/values are final."""
    state, token, parts, pos = flow.start(prompt), torch.from_numpy(ref["token"])[0], [], 0
    for i, n in enumerate(hops):
        parts.append(flow.stream([(state, token[pos:pos + n], i == len(hops) - 1)])[0])
        pos += n
    assert state.finished and state.kv is None
    assert diff(torch.cat(parts, dim=1), ref["mel_stream_final"][0]) <= TOL


@pytest.mark.parametrize("hops", [[28, 12], [5, 3, 20, 7, 5], [4] * 10, [13, 13, 14]])
def test_any_hops_equal_upstreams_recompute_everything(flow, ref, prompt, hops: list[int]) -> None:
    """Upstream re-decodes prompt + all tokens so far at every call and keeps the frames after those it sent;
    the cache (complete chunks) + recomputing the open chunk gives the same frames at every call."""
    state, token, pos, sent = flow.start(prompt), torch.from_numpy(ref["token"])[0], 0, 0
    for i, n in enumerate(hops):
        final = i == len(hops) - 1
        got = flow.stream([(state, token[pos:pos + n], final)])[0]
        pos += n
        full = flow.stream([(flow.start(prompt), token[:pos], final)])[0]
        assert got.shape[1] == full.shape[1] - sent
        assert diff(got, full[:, sent:]) <= 1e-5
        sent = full.shape[1]
    assert sent == 80


def test_real_layout_is_accepted() -> None:
    shapes = json.loads((FIXTURE / "real_keys.json").read_text())["flow"]
    dims = CosyVoice3Flow.check_layout(shapes)
    assert (dims.dit.dim, dims.dit.depth, dims.dit.heads, dims.dit.dim_head) == (1024, 22, 16, 64)
    assert (dims.lookahead_channels, dims.lookahead, dims.vocab) == (1024, 3, 6561)
    bad = dict(shapes)
    bad["decoder.estimator.proj_out.weight"] = [80, 1000]
    with pytest.raises(ValueError, match="proj_out"):
        CosyVoice3Flow.check_layout(bad)


def test_dims_default_to_the_real_model() -> None:
    shapes = json.loads((FIXTURE / "real_keys.json").read_text())["flow"]
    assert FlowDims.from_shapes({k: tuple(v) for k, v in shapes.items()}) == FlowDims()


def test_offline_batch_equals_alone(flow: CosyVoice3Flow, ref, prompt) -> None:
    """Different prompts, speakers and lengths (one empty) in one padded forward: each as if alone."""
    items = [(prompt, torch.from_numpy(ref["token"])[0]), (other_prompt(flow, 7, 1), random_tokens(23, 2)),
             (other_prompt(flow, 31, 3), random_tokens(0, 4)), (other_prompt(flow, 12, 5), random_tokens(61, 6))]
    together = flow.offline(items)
    for item, mel in zip(items, together, strict=True):
        alone = flow.offline([item])[0]
        assert mel.shape == alone.shape == (80, 2 * item[1].shape[0])
        assert diff(mel, alone) <= 1e-5
    assert diff(together[0], ref["mel_offline"][0]) <= TOL


def test_stream_batch_equals_alone(flow: CosyVoice3Flow, ref, prompt) -> None:
    """Streams at different points (fresh, mid-chunk, finalizing, nothing new) share calls; each gets what it
    gets alone, and its state is its own."""
    prompts = [prompt, other_prompt(flow, 9, 7), other_prompt(flow, 26, 8)]
    tokens = [torch.from_numpy(ref["token"])[0], random_tokens(57, 9), random_tokens(33, 10)]
    hops = [[28, 0, 12], [11, 30, 16], [33, 0, 0]]
    finals = [[False, False, True], [False, False, True], [False, True, False]]
    batched = [flow.start(p) for p in prompts]
    alone = [flow.start(p) for p in prompts]
    pos = [0, 0, 0]
    for call in range(3):
        live = [i for i in range(3) if not batched[i].finished]
        items = [(batched[i], tokens[i][pos[i]:pos[i] + hops[i][call]], finals[i][call]) for i in live]
        got = flow.stream(items)
        for i, mel in zip(live, got, strict=True):
            want = flow.stream([(alone[i], tokens[i][pos[i]:pos[i] + hops[i][call]], finals[i][call])])[0]
            assert mel.shape == want.shape
            assert diff(mel, want) <= 1e-5
            pos[i] += hops[i][call]
    assert all(s.finished and s.kv is None for s in batched)


def test_bad_input_is_a_client_error(flow: CosyVoice3Flow, prompt) -> None:
    with pytest.raises(EngineError, match="speech tokens"):
        flow.offline([(prompt, torch.tensor([1, 6561]))])
    with pytest.raises(EngineError, match="2 per prompt token"):
        flow.prompt(torch.tensor([1, 2, 3]), torch.zeros(5, 80), torch.ones(192))
    with pytest.raises(EngineError, match="192"):
        flow.prompt(torch.tensor([1]), torch.zeros(2, 80), torch.ones(80))
    with pytest.raises(EngineError, match="mel frames"):
        flow.offline([(prompt, torch.zeros(flow.max_frames // 2, dtype=torch.long))])
    state, other = flow.start(prompt), flow.start(prompt)
    with pytest.raises(EngineError, match="speech tokens"):
        flow.stream([(other, random_tokens(5, 0), False), (state, torch.tensor([-1]), False)])
    assert other.total_tokens == state.total_tokens == 20  # nothing was fed to anyone
    with pytest.raises(ValueError, match="once"):
        flow.stream([(state, random_tokens(5, 0), False), (state, random_tokens(5, 0), False)])
    flow.stream([(state, random_tokens(5, 0), True)])
    with pytest.raises(EngineError, match="finalized"):
        flow.stream([(state, random_tokens(5, 0), True)])


def test_release_frees_the_cache(flow: CosyVoice3Flow, prompt) -> None:
    state = flow.start(prompt)
    flow.stream([(state, random_tokens(40, 1), False)])
    assert state.kv_len == 100 and state.kv_bytes >= 100 * flow.kv_bytes_per_frame > 0  # 2 whole chunks
    flow.release(state)
    assert state.finished and state.kv_bytes == 0 and state.kv_len == 0
    with pytest.raises(EngineError, match="finalized"):
        flow.stream([(state, random_tokens(5, 0), False)])


def test_hops() -> None:
    assert stream_hops(60) == [28, 25, 7]
    assert stream_hops(10) == [10]
    assert stream_hops(400, grow=2) == [28, 50, 100, 100, 100, 22]
    assert stream_hops(100, prompt_tokens=20) == [33, 25, 25, 17]  # prompt + first hop = 2 chunks
    assert sum(stream_hops(751, first=25)) == 751


def test_streaming_costs_no_more_than_offline(flow: CosyVoice3Flow) -> None:
    """8 s after a 3 s prompt in 25-token hops: exact, and fewer FLOPs than one offline pass (each call
    computes its new frames once; upstream would re-decode everything: ~8x here, quadratic in length)."""
    prompt = other_prompt(flow, 75, 11)
    tokens = random_tokens(200, 12)
    got = measure_streaming(flow, prompt, tokens, repeats=0)
    assert got["max_abs_diff"] <= 1e-5
    assert got["flop_ratio"] <= 1.0
    assert got["frames"] == 400 and got["calls"] == 8


def test_bounded_left_context_bounds_the_cache(prompt, ref) -> None:
    """left_frames keeps the prompt's frames and the last K: memory and attention stop growing; the mel
    moves a little away from full recomputation (an approximation, measured)."""
    bounded = CosyVoice3Flow.load(FIXTURE / "model" / "flow.pt", left_frames=20)
    exact = CosyVoice3Flow.load(FIXTURE / "model" / "flow.pt")
    token = torch.from_numpy(ref["token"])[0]
    p_b = bounded.prompt(torch.from_numpy(ref["prompt_token"]), torch.from_numpy(ref["prompt_feat"]),
                         torch.from_numpy(ref["embedding"]))
    state, parts = bounded.start(p_b), []
    for i, n in enumerate([8, 25, 7]):
        parts.append(bounded.stream([(state, token[sum([8, 25, 7][:i]):][:n], i == 2)])[0])
        if i < 2:
            assert state.kv_len <= p_b.frames + 20
            assert state.kv_pos[:state.kv_len].tolist() == sorted(state.kv_pos[:state.kv_len].tolist())
    mel = torch.cat(parts, dim=1)
    assert diff(mel[:, :10], ref["mel_stream_final"][0][:, :10]) <= TOL  # the first chunk saw everything
    assert 0 < diff(mel, ref["mel_stream_final"][0]) < 0.5
    full = exact.stream([(exact.start(prompt), token, True)])[0]
    assert diff(full, ref["mel_stream_final"][0]) <= TOL


def test_offline_and_streamed_requests_share_one_forward(flow: CosyVoice3Flow, ref, prompt) -> None:
    token = torch.from_numpy(ref["token"])[0]
    voice = other_prompt(flow, 14, 20)
    fresh, going = flow.start(prompt), flow.start(voice)
    flow.stream([(going, random_tokens(30, 21), False)])
    twin = flow.start(voice)
    flow.stream([(twin, random_tokens(30, 21), False)])
    items = [(prompt, token), (fresh, token[:28], False), (going, random_tokens(9, 22), True)]
    offline, first, more = flow.decode(items)
    assert diff(offline, ref["mel_offline"][0]) <= TOL
    assert diff(first, ref["mel_stream_chunk"][0]) <= TOL
    assert diff(more, flow.stream([(twin, random_tokens(9, 22), True)])[0]) <= 1e-5
