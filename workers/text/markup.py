"""Language-independent clean-up before the language rules: markdown, emoji, odd spaces and digits.

Chat models write markdown and emoji; read raw, a voice says "asterisk asterisk" or a garbled name for a
pictograph. Headings and list items become sentences of their own, so they keep their pause.
"""

from __future__ import annotations

import re

#: pictographs, dingbats, flags, skin tones, variation selectors, ZWJ and tag characters
_EMOJI = re.compile(
    "["
    "\U0001f000-\U0001faff"  # mahjong .. symbols and pictographs extended-A (faces, flags, skin tones)
    "\u2600-\u27bf"  # miscellaneous symbols, dingbats
    "\u2b00-\u2bff"  # arrows and stars such as ⭐
    "\u3030\u303d\u3297\u3299"
    "\ufe0e\ufe0f\u200d\u20e3"  # variation selectors, zero-width joiner, keycap
    "\U000e0020-\U000e007f"  # tag characters (subdivision flags)
    "]+"
)
_CODE_FENCE = re.compile(r"^\s*(```|~~~).*$", re.MULTILINE)
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\((?:[^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+(.+?)\s*$", re.MULTILINE)
_QUOTE = re.compile(r"^\s*>+\s?", re.MULTILINE)
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$", re.MULTILINE)
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1|(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"
                       r"|(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])|~~(?=\S)(.+?)(?<=\S)~~")
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_TABLE_PIPE = re.compile(r"\s*\|\s*")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_FULLWIDTH = str.maketrans({chr(0xFF10 + i): str(i) for i in range(10)} | {"\u2212": "-", "\u2044": "/"})
_MARKDOWN_HINT = re.compile(r"[#*_`\[>|~•]|^\s*(?:[-+]|\d{1,3}[.)])\s", re.MULTILINE)
_ENDS_SENTENCE = re.compile(r"[.!?。！？:;,…]$")


def _as_sentence(match: re.Match[str]) -> str:
    """A heading or list item read as a sentence: add a full stop when it has no closing mark."""
    body = match.group(1).strip()
    return body if _ENDS_SENTENCE.search(body) else body + "."


def _emphasis(match: re.Match[str]) -> str:
    return next(g for g in match.groups()[1:] if g is not None)


def strip_markdown(text: str) -> str:
    """Markdown to plain text: the words stay, the markup goes, structure becomes sentence ends."""
    if not _MARKDOWN_HINT.search(text):
        return text
    text = _CODE_FENCE.sub("", text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _RULE.sub("", text)
    text = _TABLE_RULE.sub("", text)
    text = _HEADING.sub(_as_sentence, text)
    text = _QUOTE.sub("", text)
    if "\n" in text or text.lstrip()[:2] in {"- ", "* ", "+ ", "• "}:
        text = _BULLET.sub(_as_sentence, text)
    text = _INLINE_CODE.sub(r"\1", text)
    text = _EMPHASIS.sub(_emphasis, text)
    if "|" in text:
        text = "\n".join(_table_row(line) for line in text.split("\n"))
    return text


def _table_row(line: str) -> str:
    stripped = line.strip()
    if stripped.startswith("|") and stripped.endswith("|") and len(stripped) > 1:
        cells = [c.strip() for c in _TABLE_PIPE.split(stripped.strip("|")) if c.strip()]
        return ", ".join(cells) + "."
    return line


def strip_emoji(text: str) -> str:
    """Remove pictographs (and their joiners and modifiers); a voice cannot say them usefully."""
    return _EMOJI.sub(" ", text)


def tidy(text: str) -> str:
    """Full-width digits and the Unicode minus to ASCII, odd spaces to one space, paragraph breaks kept."""
    text = text.translate(_FULLWIDTH)
    text = _SPACES.sub(" ", text)
    text = _BLANK_LINES.sub("\n\n", text)
    return "\n".join(line.strip() for line in text.split("\n")).strip()


def clean(text: str) -> str:
    """Everything above, in order."""
    return tidy(strip_emoji(strip_markdown(text)))
