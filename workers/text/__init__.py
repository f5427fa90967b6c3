"""vTTS's text frontend: what every engine runs before its own phonemizer or tokenizer.

Pure Python with no engine imports, so the HTTP frontend may use it too (``/v1/text/normalize``).

* :func:`normalize` — written → spoken form, per language (English, Korean, Chinese and Japanese rules;
  others pass through);
* :class:`TextFrontend` — SSML or text → normalized, lexicon-applied, segmented :class:`TextSegment` list;
* :func:`split_segments`, :func:`detect_language`, :class:`Lexicon`, :class:`LexiconSet`, :func:`is_ssml`.
"""

from .lexicon import Lexicon, LexiconSet
from .pipeline import NORMALIZERS, TEXT_OPTIONS, Piece, TextFrontend, TextSegment, normalize
from .script_detect import detect_language
from .segment import base_language, split_segments, split_sentences
from .ssml import SSMLError, is_ssml

__all__ = [
    "NORMALIZERS", "TEXT_OPTIONS", "Lexicon", "LexiconSet", "Piece", "SSMLError", "TextFrontend", "TextSegment",
    "base_language", "detect_language", "is_ssml", "normalize", "split_segments", "split_sentences",
]
