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
# Every rule below is line-local ([ \t], never \s, before a line's content) and has no two quantifiers that
# can share the same characters, so each runs in linear time: a rule like ``^\s*\|?\s*`` lets an input of
# "|" and thousands of newlines try every split of the newlines (cubic time, 23 s at 2000 newlines).
_CODE_FENCE = re.compile(r"^[ \t]*(?:```|~~~).*$", re.MULTILINE)
_IMAGE = re.compile(r"!\[([^\[\]]*)\]\([^()]*\)")
_LINK = re.compile(r"\[([^\[\]]+)\]\([^()\s]+(?:[ \t]+\"[^\"()]*\")?\)")
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(\S.*)$", re.MULTILINE)
_BULLET = re.compile(r"^[ \t]*(?:[-*+•]|\d{1,3}[.)])[ \t]+(\S.*)$", re.MULTILINE)
_QUOTE = re.compile(r"^[ \t]*>+[ \t]?", re.MULTILINE)
_RULE = re.compile(r"^[ \t]*([-*_])(?:[ \t]*\1){2,}[ \t]*$", re.MULTILINE)
_TABLE_RULE = re.compile(r"^[ \t]*(?:\|[ \t]*)?:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)*(?:\|[ \t]*)?$",
                         re.MULTILINE)
# an emphasis run stops at the first closing delimiter it meets (no nesting of the same marker), so a line
# of openers without closers costs one scan, not one per opener
_EMPHASIS = re.compile(r"(\*\*|__)(?=\S)((?:[^*_\n]|\*(?!\*)|_(?!_))+?)(?<=\S)\1"
                       r"|(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"
                       r"|(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])|~~(?=\S)((?:[^~\n]|~(?!~))+?)(?<=\S)~~")
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n(?:[^\S\n]*\n)+")
_FULLWIDTH = str.maketrans({chr(0xFF10 + i): str(i) for i in range(10)} | {"\u2212": "-", "\u2044": "/"})
_MARKDOWN_HINT = re.compile(r"[#*_`\[>|~•]|^[ \t]*(?:[-+]|\d{1,3}[.)])\s", re.MULTILINE)
_ENDS_SENTENCE = re.compile(r"[.!?。！？:;,…]$")


def _as_sentence(match: re.Match[str]) -> str:
    """A heading or list item read as a sentence: add a full stop when it has no closing mark."""
    body = match.group(1).strip()
    return body if _ENDS_SENTENCE.search(body) else body + "."


def _heading(match: re.Match[str]) -> str:
    """A heading without its closing hashes ("## Plan ##"), read as a sentence."""
    body = match.group(1).rstrip(" \t#") or match.group(1)
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
    text = _HEADING.sub(_heading, text)
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
        cells = [c.strip() for c in stripped.strip("|").split("|") if c.strip()]
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
