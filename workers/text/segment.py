"""Split text into segments an engine synthesizes one at a time.

Sentences are the unit (voices were trained on them); a sentence longer than the engine's limit is cut at
clause marks, then at spaces, and the first segment is kept short (a clause) because its synthesis time is
the time to the first audio byte. English needs to know abbreviations ("Dr. Smith"), initials and
decimals; Chinese and Japanese end sentences with 。！？ and no space; Korean punctuates like English.
"""

from __future__ import annotations

import re

#: abbreviations whose trailing period does not end a sentence (lower-case, without the period)
ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof sr jr st mt ft vs etc e.g i.e approx dept est fig inc ltd co corp no vol
    jan feb mar apr jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun gen col lt sgt capt
    cmdr adm gov sen rep rev hon pres ave blvd rd rm ext p pp ch""".split()
)
_CLOSERS = "\"')\\]”’」』）】》〉"
_SENTENCE_END = re.compile(rf"([.!?…]+[{_CLOSERS}]*)(\s+|$)|([。！？]+[{_CLOSERS}]*)")
_CLAUSE_END = re.compile(r"[,;:，、；：—–]\s*")
_PARAGRAPH = re.compile(r"\n\s*\n")
_SPACES = re.compile(r"\s+")


def base_language(language: str | None) -> str:
    """"en-US" → "en", "ko_KR" → "ko", None → ""."""
    return (language or "").replace("_", "-").partition("-")[0].lower()


def split_sentences(text: str, language: str | None = None) -> list[str]:
    """Split at sentence ends and paragraph breaks, keeping abbreviations ("Dr. Smith"), decimals ("3.5")
    and initials together. ``language`` ("en", "ko", "ja", "zh") turns the English abbreviation rules off
    where they do not apply."""
    english_rules = base_language(language) in {"", "en"}
    sentences: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        sentences.extend(_split_paragraph(_SPACES.sub(" ", paragraph).strip(), english_rules))
    return sentences


def _split_paragraph(text: str, english_rules: bool) -> list[str]:
    if not text:
        return []
    sentences: list[str] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        end = m.end(1) if m.group(1) else m.end(3)
        if english_rules and m.group(1) and m.group(1).startswith(".") and len(m.group(1).rstrip(_CLOSERS)) == 1:
            word = text[start : m.start(1)].rsplit(" ", 1)[-1].lower().lstrip("(\"'")
            if word in ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
                continue
            nxt = text[m.end() : m.end() + 1]
            if nxt and nxt.islower():
                continue
        piece = text[start:end].strip()
        if piece:
            sentences.append(piece)
        start = m.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def split_long(sentence: str, max_chars: int) -> list[str]:
    """Cut a sentence longer than ``max_chars`` at clause marks, then at spaces, never mid-word (text
    without spaces, such as Chinese, is cut at the limit as a last resort)."""
    if len(sentence) <= max_chars:
        return [sentence]
    pieces: list[str] = []
    current = ""
    for part in _split_keep(sentence, _CLAUSE_END):
        if current and len(current) + len(part) > max_chars:
            pieces.append(current.strip())
            current = ""
        current += part
    if current.strip():
        pieces.append(current.strip())
    out: list[str] = []
    for piece in pieces:
        while len(piece) > max_chars:
            cut = piece.rfind(" ", 0, max_chars + 1)
            if cut <= 0:
                cut = max_chars
            out.append(piece[:cut].strip())
            piece = piece[cut:].strip()
        if piece:
            out.append(piece)
    return out


def _split_keep(text: str, pattern: re.Pattern[str]) -> list[str]:
    parts: list[str] = []
    start = 0
    for m in pattern.finditer(text):
        parts.append(text[start : m.end()])
        start = m.end()
    if start < len(text):
        parts.append(text[start:])
    return parts


def split_segments(text: str, max_chars: int = 400, first_max_chars: int = 100,
                   language: str | None = None) -> list[str]:
    """Sentences, long ones cut at clauses, with a first segment of at most ``first_max_chars`` when a
    clause boundary allows it (``first_max_chars=0`` leaves the first sentence whole)."""
    segments: list[str] = []
    for sentence in split_sentences(text, language):
        segments.extend(split_long(sentence, max_chars))
    if first_max_chars and segments and len(segments[0]) > first_max_chars:
        first = split_long(segments[0], first_max_chars)
        # only take a clause-sized head; re-join the rest so later segments stay sentence-sized
        head, rest = first[0], " ".join(first[1:])
        segments = [head] + ([rest] if rest else []) + segments[1:]
    return segments
