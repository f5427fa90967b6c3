"""Batching Supertonic items: padding per-item arrays into one graph call, grouping, and the load-time probe
that decides which groupings leave every item's audio unchanged.

The four graphs take a batch axis, text and latent masks, and per-item ``current_step``/``total_step``, so
in principle anything can share a call. Whether an item's numbers survive that (padding next to a longer
item, sharing a denoising call with items at other steps) is a property of the exported weights, not of the
interface: a decoder without a mask hears the padding near an item's end, for one. :func:`probe` measures it
on the loaded weights, and the engine only joins what the probe found harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np

log = logging.getLogger(__name__)

T = TypeVar("T")

#: two outputs count as equal within this tolerance, relative to the reference's peak (CPU kernels differ by
#: ~1e-7 between batch shapes; GPU kernels pick other algorithms per shape, and TF32, so they get more room)
PROBE_RTOL = {"cpu": 1e-4, "cuda": 1e-3}


@dataclass(frozen=True)
class Policy:
    """What may share a graph call. ``pad_*``: items of different lengths, padded; ``mix_steps``: items at
    different denoising steps or step counts. ``pad_slack``: how much padded work (over the items' own)
    a call may carry before it is split by length (0.25 = 25 % more)."""

    pad_encode: bool = True
    pad_denoise: bool = True
    mix_steps: bool = True
    pad_vocode: bool = True
    pad_slack: float = 0.25
    measured: dict[str, float] = field(default_factory=dict, compare=False)

    @classmethod
    def safe(cls, pad_slack: float = 0.25) -> Policy:
        """Only identical shapes and steps share a call: invariant for any weights."""
        return cls(False, False, False, False, pad_slack)


def pad_stack(arrays: Sequence[np.ndarray], dtype: Any = np.float32) -> np.ndarray:
    """Stack arrays whose last axis differs, zero-padded at the end of that axis."""
    longest = max(a.shape[-1] for a in arrays)
    out = np.zeros((len(arrays), *arrays[0].shape[:-1], longest), dtype=dtype)
    for i, a in enumerate(arrays):
        out[i, ..., : a.shape[-1]] = a
    return out


def length_mask(lengths: Sequence[int]) -> np.ndarray:
    """[B, 1, max(lengths)] float32: 1 inside each item, 0 in its padding."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return (np.arange(int(lengths.max()))[None, :] < lengths[:, None]).astype(np.float32)[:, None, :]


def group(items: Sequence[T], key: Callable[[T], Hashable], size: Callable[[T], int], slack: float) -> list[list[T]]:
    """Items with equal ``key`` share a call; within a key, items sorted by ``size`` are cut into runs whose
    padded cost (count x longest) stays within ``1 + slack`` of their summed sizes."""
    by_key: dict[Hashable, list[T]] = {}
    for item in items:
        by_key.setdefault(key(item), []).append(item)
    groups: list[list[T]] = []
    for members in by_key.values():
        run: list[T] = []
        total = 0
        for item in sorted(members, key=size):
            n = size(item)
            if run and (len(run) + 1) * n > (1.0 + slack) * (total + n):
                groups.append(run)
                run, total = [], 0
            run.append(item)
            total += n
        groups.append(run)
    return groups


def same(reference: np.ndarray, other: np.ndarray, rtol: float) -> tuple[bool, float]:
    """(equal within ``rtol`` of the reference's peak, the largest difference)."""
    if reference.shape != other.shape:
        return False, float("inf")
    diff = float(np.max(np.abs(reference - other))) if reference.size else 0.0
    return diff <= rtol * max(1.0, float(np.max(np.abs(reference)))), diff


class Graphs(Protocol):
    """What the probe needs from an engine: the graphs as batch functions on per-item arrays."""

    def encode(self, ids: list[np.ndarray], voices: list[int]) -> tuple[np.ndarray, list[np.ndarray]]:
        """-> (raw durations [B], per-item text embeddings [D, T_i])."""

    def denoise(self, latents: list[np.ndarray], embs: list[np.ndarray], voices: list[int],
                steps: list[int], totals: list[int]) -> list[np.ndarray]:
        """-> per-item latents [C, L_i] one Euler step on."""

    def vocode(self, latents: list[np.ndarray]) -> list[np.ndarray]:
        """-> per-item waveforms, each ``frame_samples * L_i`` long."""


def probe(graphs: Graphs, ids: tuple[np.ndarray, np.ndarray], channels: int, pad_slack: float,
          rtol: float) -> Policy:
    """Run a short and a longer item alone and together through every graph and keep the joins whose
    results match the items alone within ``rtol``. Costs about ten small graph calls at load."""
    a, b = ids

    def _all_same(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[bool, float]:
        results = [same(ref, other, rtol) for ref, other in pairs]
        return all(ok for ok, _ in results), max(diff for _, diff in results)

    rng = np.random.default_rng(0)
    dur_a, (emb_a,) = graphs.encode([a], [0])
    dur_ab, embs_ab = graphs.encode([a, b], [0, 0])
    pad_encode, d_enc = _all_same([(dur_a, dur_ab[:1]), (emb_a, embs_ab[0])])
    _, (emb_b,) = graphs.encode([b], [0])
    lat_a = rng.standard_normal((channels, 3)).astype(np.float32)
    lat_b = rng.standard_normal((channels, 7)).astype(np.float32)
    (alone_a,) = graphs.denoise([lat_a], [emb_a], [0], [0], [4])
    (alone_b,) = graphs.denoise([lat_b], [emb_b], [0], [2], [5])
    mixed = graphs.denoise([lat_a, lat_b], [emb_a, emb_b], [0, 0], [0, 2], [4, 5])
    mix_steps, d_mix = _all_same([(alone_a, mixed[0]), (alone_b, mixed[1])])
    (alone_b0,) = graphs.denoise([lat_b], [emb_b], [0], [0], [4])
    padded = graphs.denoise([lat_a, lat_b], [emb_a, emb_b], [0, 0], [0, 0], [4, 4])
    pad_denoise, d_den = _all_same([(alone_a, padded[0]), (alone_b0, padded[1])])
    (wav_a,) = graphs.vocode([alone_a])
    wavs = graphs.vocode([alone_a, alone_b])
    pad_vocode, d_voc = _all_same([(wav_a, wavs[0])])
    policy = Policy(pad_encode, pad_denoise, mix_steps and pad_denoise, pad_vocode, pad_slack,
                    {"encode": d_enc, "denoise_mixed_steps": d_mix, "denoise_padded": d_den, "vocode": d_voc})
    log.info("supertonic batching probe: %s", policy)
    return policy
