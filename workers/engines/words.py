"""Word timestamps shared by the engines: words timed from per-token durations, and the input's own words
named in place of the spoken form normalization made ("$5" spoken "five dollars" is timed as "$5").

An engine gives, per chunk, its token ids and the frames each token lasts (Kokoro's and Piper's graphs
predict them); :func:`word_timestamps` pairs the runs of sounds between pauses with the chunk's spoken words,
and :func:`written_labels` / :func:`label_timestamps` carry the timings over to the words the client wrote.
"""

from __future__ import annotations

import math
import unicodedata
from bisect import bisect_right
from collections.abc import Callable
from difflib import SequenceMatcher
from typing import Any

import numpy as np

from ..text import is_ssml
from ..text.ssml import parse as parse_ssml

#: symbols that are pauses, not sounds: word boundaries for timestamps
PAUSES = frozenset(' ;:,.!?—…"()“”«»')


def strip_punctuation(word: str) -> str:
    start, end = 0, len(word)
    while start < end and unicodedata.category(word[start])[0] in "PS":
        start += 1
    while end > start and unicodedata.category(word[end - 1])[0] in "PS":
        end -= 1
    return word[start:end]


def _spans_by_groups(ids: np.ndarray, pause_ids: frozenset[int]) -> list[tuple[int, int]]:
    """[start, end) token ranges of the runs of sounds between pauses."""
    spans, start = [], None
    for k, token in enumerate(ids.tolist()):
        if token in pause_ids:
            if start is not None:
                spans.append((start, k))
            start = None
        elif start is None:
            start = k
    if start is not None:
        spans.append((start, len(ids)))
    return spans


def _spans_by_weight(weights: list[float], ids: np.ndarray, pause_ids: frozenset[int]) -> list[tuple[int, int]]:
    """Share the sound tokens out among the words in proportion to their weights, in order."""
    sounds = [k for k, token in enumerate(ids.tolist()) if token not in pause_ids] or list(range(len(ids)))
    total = sum(weights) or float(len(weights))
    shares = weights if sum(weights) else [1.0] * len(weights)
    spans, done, acc = [], 0, 0.0
    for share in shares:
        acc += share
        upto = min(len(sounds), round(acc / total * len(sounds)))
        if upto > done:
            spans.append((sounds[done], sounds[upto - 1] + 1))
        else:  # a word with no token of its own: a zero-length mark where the previous word ended
            at = sounds[done - 1] + 1 if done else sounds[0]
            spans.append((at, at))
        done = max(done, upto)
    return spans


def word_timestamps(
    words: list[tuple[str, float]], ids: np.ndarray, durations: np.ndarray, samples: int, pause_ids: frozenset[int],
    sample_rate: int,
) -> list[dict[str, Any]]:
    """Word-level timings in seconds from the start of this utterance's audio.

    ``durations`` has one entry per token plus one for a leading pad before ``ids`` (Kokoro's two pads; a
    trailing one may follow), in frames; they are scaled to the audio's real length (``samples`` at
    ``sample_rate``). Words map one to one onto the runs of sounds between pauses when the counts agree
    (espeak and misaki write one run per word), else in proportion to their weights.
    """
    if not words or not len(ids):
        return []
    frames = np.concatenate([[0.0], np.cumsum(np.asarray(durations, dtype=np.float64).reshape(-1))])
    seconds = samples / sample_rate / frames[-1] if frames[-1] > 0 else 0.0
    spans = _spans_by_groups(ids, pause_ids)
    if len(spans) != len(words):
        spans = _spans_by_weight([w for _, w in words], ids, pause_ids)
    out = []
    for (word, _), (start, end) in zip(words, spans, strict=True):
        begin = float(frames[start + 1] * seconds)  # +1: the leading pad is token 0 of the graph
        finish = float(frames[end + 1] * seconds) if end > start else begin
        out.append({"word": word, "start": round(begin, 3), "end": round(finish, 3)})
    return out


def written_text(text: str) -> str:
    """The words a client wrote: ``text`` itself, or an SSML document's text (``sub`` aliases, ``say-as`` and
    ``phoneme`` contents as written), without the markup."""
    if not is_ssml(text):
        return text
    parts: list[str] = []
    for span in parse_ssml(text):
        whole = span.ipa is not None or span.say_as is not None
        parts += [" " if whole or span.boundary or not span.text else "", span.text, " " if whole else ""]
    return "".join(parts)


def align_words(written: list[str], spoken: list[str],
                weigh: Callable[[int], float] | None = None) -> list[tuple[str, float, float]]:
    """Each written word with the stretch [start, end) of ``spoken`` word positions it became.

    Words the normalizer left alone match one to one (case-insensitively); a written stretch it rewrote
    ("$5" → "five dollars", "Jan. 5th" → "January fifth") shares the spoken stretch that replaced it in
    proportion to ``weigh(i)`` (how many words written word ``i`` makes on its own; equal parts without
    it); a written word that is not spoken at all is a zero-length mark; spoken words that no written
    word stands for belong to none."""
    ops = SequenceMatcher(None, [w.casefold() for w in written], [w.casefold() for w in spoken],
                          autojunk=False).get_opcodes()
    out: list[tuple[str, float, float]] = []
    for tag, i1, i2, j1, j2 in ops:
        if tag == "insert":
            continue
        if tag == "equal":
            out += [(written[i1 + k], j1 + k, j1 + k + 1) for k in range(i2 - i1)]
            continue
        share = [max(1e-6, float(weigh(i))) if weigh else 1.0 for i in range(i1, i2)]
        total, done = sum(share), 0.0
        for k, part in enumerate(share):
            out.append((written[i1 + k], j1 + (j2 - j1) * done / total, j1 + (j2 - j1) * (done + part) / total))
            done += part
    return out


def written_labels(text: str, spoken: list[list[str]],
                   weigh: Callable[[str], float] | None = None) -> list[list[tuple[str, float, float]]]:
    """For each chunk (its spoken words), the input's words said in it, with their stretch of the chunk's
    spoken word positions (see :func:`align_words`; ``weigh``: how many words a written word makes alone).
    A written word belongs to the chunk where its first spoken word is; a silent one to the chunk that ends
    where it stands. Written words that are only punctuation or symbols ("&") are aligned but not named."""
    raw = written_text(text).split()
    written = [strip_punctuation(w) for w in raw]
    starts = [0]
    for words in spoken:
        starts.append(starts[-1] + len(words))
    labels: list[list[tuple[str, float, float]]] = [[] for _ in spoken]
    if not spoken:
        return labels
    ends = starts[1:]
    weights = (lambda i: weigh(raw[i])) if weigh else None  # only asked for the rewritten stretches
    for word, begin, end in align_words(written, [w for words in spoken for w in words], weights):
        if not word:
            continue
        at = begin if end > begin else max(0.0, begin - 1)
        k = bisect_right(ends, at + 1e-9)  # the chunk whose words reach past ``at`` (chunks without words skipped)
        if k >= len(spoken):  # past the last spoken word: the last chunk that has words
            k = max((i for i, words in enumerate(spoken) if words), default=len(spoken) - 1)
        low, high = starts[k], starts[k + 1]
        labels[k].append((word, min(max(begin, low), high) - low, min(max(end, low), high) - low))
    return labels


def label_timestamps(labels: list[tuple[str, float, float]], spoken: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Timings of written words from the timings of the spoken words they became; inside a spoken word
    shared by several written ones, time is interpolated."""

    def at(position: float, end: bool) -> float:
        if not spoken:
            return 0.0
        k = math.floor(position + 1e-9)
        frac = max(0.0, position - k)
        if k >= len(spoken) or (end and frac < 1e-9 and k > 0):
            return float(spoken[min(k, len(spoken)) - 1]["end"])
        word = spoken[k]
        return float(word["start"] + frac * (word["end"] - word["start"]))

    out = []
    for word, begin, end in labels:
        start = at(begin, end=begin > 0 and end <= begin)
        finish = at(end, end=True) if end > begin else start
        out.append({"word": word, "start": round(start, 3), "end": round(max(start, finish), 3)})
    return out
