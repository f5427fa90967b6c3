"""Split text into segments an engine synthesizes one at a time.

Sentences are the unit (the voices were trained on them); a long sentence is cut at clause marks, and
the first segment is kept short (a clause) because the first segment's synthesis time is the time to the
first audio byte.
"""

from __future__ import annotations

import re

#: abbreviations whose trailing period does not end a sentence (lower-case, without the period)
ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof sr jr st mt ft vs etc e.g i.e approx dept est fig inc ltd co corp no vol
    jan feb mar apr jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun gen col lt sgt capt
    cmdr adm gov sen rep rev hon pres ave blvd rd rm ext""".split()
)

_SENTENCE_END = re.compile(r"([.!?。！？…]+[\"')\]”’]*)(\s+|$)|([。！？])")
_CLAUSE_END = re.compile(r"[,;:，、；：—–]\s*")


def split_sentences(text: str) -> list[str]:
    """Split at sentence ends, keeping abbreviations ("Dr. Smith"), decimals ("3.5") and initials."""
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        return []
    sentences: list[str] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        end = m.end(1) if m.group(1) else m.end(3)
        if m.group(1) and m.group(1).startswith(".") and len(m.group(1)) == 1:
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
    """Cut a sentence longer than ``max_chars`` at clause marks, then at spaces, never mid-word."""
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
            cut = piece.rfind(" ", 0, max_chars)
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


def split_segments(text: str, max_chars: int = 400, first_max_chars: int = 100) -> list[str]:
    """Sentences, long ones cut at clauses, with a first segment of at most ``first_max_chars`` when a
    clause boundary allows it."""
    segments: list[str] = []
    for sentence in split_sentences(text):
        segments.extend(split_long(sentence, max_chars))
    if segments and len(segments[0]) > first_max_chars:
        first = split_long(segments[0], first_max_chars)
        # only take a clause-sized head; re-join the rest so later segments stay sentence-sized
        head, rest = first[0], " ".join(first[1:])
        segments = [head] + ([rest] if rest else []) + segments[1:]
    return segments
