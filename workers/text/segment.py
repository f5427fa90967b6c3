"""Split text into segments an engine synthesizes one at a time.

Sentences are the unit (voices were trained on them); a sentence longer than the engine's limit is cut at
clause marks, then at spaces, and the first segment is kept short (a phrase or a clause) because its
synthesis time is the time to the first audio byte. English needs to know abbreviations ("Dr. Smith"), initials and
decimals; Chinese and Japanese end sentences with 。！？ and no space; Korean punctuates like English.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

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


def split_long(sentence: str, max_chars: int, measure: Callable[[str], int] = len,
               at_spaces: bool = True) -> list[str]:
    """Cut a sentence longer than ``max_chars`` at clause marks, then (``at_spaces``) at spaces, never
    mid-word (text without spaces, such as Chinese, is cut at the limit as a last resort). ``measure`` is how
    long a piece is: characters by default; an engine may count its own tokens (Kokoro's phonemes)."""
    if measure(sentence) <= max_chars:
        return [sentence]
    pieces: list[str] = []
    current = ""
    for part in _split_keep(sentence, _CLAUSE_END):
        if current and measure(current + part) > max_chars:
            pieces.append(current.strip())
            current = ""
        current += part
    if current.strip():
        pieces.append(current.strip())
    out: list[str] = []
    if not at_spaces:
        return pieces
    for piece in pieces:
        while measure(piece) > max_chars:
            cut = _longest_fit(piece, [i for i, c in enumerate(piece) if c == " " and i > 0], max_chars, measure)
            if cut is None:
                cut = _unspaced_cut(piece, max_chars, measure)
            out.append(piece[:cut].strip())
            piece = piece[cut:].strip()
        if piece:
            out.append(piece)
    return out


_HIRAGANA = re.compile("[\u3041-\u309f]")
_PUNCTUATION_ONLY = re.compile(r"[\W_]*")


def _unspaced_cut(piece: str, max_chars: int, measure: Callable[[str], int]) -> int:
    """Where to cut text with no spaces (Chinese, Japanese) that has to be cut: after a hiragana run that
    meets kanji or katakana (a Japanese phrase ends there: 会社は|二千), when that keeps at least half the
    limit, else at the limit; never leaving only punctuation behind (。 alone is not a segment)."""
    boundaries = [i for i in range(1, len(piece))
                  if _HIRAGANA.match(piece[i - 1]) and not _HIRAGANA.match(piece[i]) and piece[i].isalnum()]
    cut = _longest_fit(piece, boundaries, max_chars, measure)
    if cut is None or measure(piece[:cut]) < max_chars // 2:
        cut = _longest_fit(piece, range(1, len(piece)), max_chars, measure) or 1
    tail = len(piece) - cut
    if _PUNCTUATION_ONLY.fullmatch(piece[cut:]) and cut > tail:
        cut -= tail
    return cut


def _longest_fit(text: str, cuts: Sequence[int], limit: int, measure: Callable[[str], int]) -> int | None:
    """The last of the ascending ``cuts`` whose head ``text[:cut]`` measures at most ``limit`` (a binary
    search: heads grow with the cut), None when none does. With ``len`` it is the last cut <= ``limit``."""
    lo, hi, best = 0, len(cuts) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        if measure(text[: cuts[mid]]) <= limit:
            best, lo = cuts[mid], mid + 1
        else:
            hi = mid - 1
    return best


def _split_keep(text: str, pattern: re.Pattern[str]) -> list[str]:
    parts: list[str] = []
    start = 0
    for m in pattern.finditer(text):
        parts.append(text[start : m.end()])
        start = m.end()
    if start < len(text):
        parts.append(text[start:])
    return parts


#: how the first segment of a request is cut (time to first audio is its synthesis time)
FIRST_SEGMENT_MODES = ("phrase", "clause", "sentence")
#: English words a prosodic phrase starts with: conjunctions, relatives and prepositions that begin a
#: phrase of their own ("...the station | at half past seven"). Not "to", "of", "that": they bind too closely
#: ("want | to go", "a bag | of apples", "seen | that film")
PHRASE_STARTERS = frozenset(
    """and but or nor so yet because while when whenever where wherever which who whom whose if unless until
    before after as since though although than then at in on into onto from for with without by about across
    through throughout during over under between among against toward towards behind beyond near around
    along""".split()
)
#: a cut at a clause mark needs CLAUSE_MIN_HEAD words before it; one before a phrase word PHRASE_MIN_HEAD
#: (a short head rarely holds a verb: "The old clock | in the hallway"); each leaves PHRASE_MIN_TAIL words
#: after it (LIST_MIN_TAIL after "and"/"or", which often join the last item of a list: "dollars and fifty
#: cents"), in a sentence of at least PHRASE_MIN_WORDS
CLAUSE_MIN_HEAD, PHRASE_MIN_HEAD, PHRASE_MIN_TAIL, LIST_MIN_TAIL, PHRASE_MIN_WORDS = 2, 4, 3, 4, 8
_LIST_WORDS = frozenset({"and", "or"})
#: Chinese and Japanese write no spaces: a phrase ends at a clause mark (，、；：) with at least CJK_MIN_HEAD
#: characters before it and CJK_MIN_TAIL after it (a character is about a syllable). One character is as
#: long to say as CJK_CHAR_WEIGHT Latin letters (7 vs 15 a second), so a first segment's character bound is
#: divided by it: the same bound is the same time to first audio in either script
CJK_LANGUAGES = frozenset({"zh", "ja", "yue"})
CJK_MIN_HEAD, CJK_MIN_TAIL, CJK_CHAR_WEIGHT = 4, 6, 2
_CJK_CLAUSE = re.compile(r"[，、；：,;:]")
_TOPIC = re.compile("(?<=[\u3400-\u9fff\u30a1-\u30ff々])(?:では|には|は|が|も)(?=[\u3400-\u9fff\u30a1-\u30ff々])")
_WORD_CHARS = re.compile(r"[^\w']+")


def first_segment_chars(max_chars: int, language: str | None = None) -> int:
    """The first segment's character bound in ``language``'s script: divided by CJK_CHAR_WEIGHT where a
    character is a syllable, so the bound means the same time to first audio in every script."""
    if max_chars and base_language(language) in CJK_LANGUAGES:
        return max(1, max_chars // CJK_CHAR_WEIGHT)
    return max_chars


def split_first_phrase(sentence: str, language: str | None = None) -> tuple[str, str] | None:
    """Cut a sentence at its earliest prosodic phrase boundary: a clause mark, or (English) before a
    conjunction or preposition, leaving at least PHRASE_MIN_HEAD words before and PHRASE_MIN_TAIL after.
    A head cut before a word (no mark of its own) ends in a comma, so the voice closes it with the rising,
    pausing contour it learnt for commas rather than a sentence's fall. None when no boundary qualifies."""
    if base_language(language) in CJK_LANGUAGES:
        return _split_first_phrase_cjk(sentence)
    words = sentence.split(" ")
    if len(words) < PHRASE_MIN_WORDS:
        return None
    english = base_language(language) in {"", "en"}
    for i in range(CLAUSE_MIN_HEAD, len(words) - PHRASE_MIN_TAIL + 1):
        before, word = words[i - 1], _WORD_CHARS.sub("", words[i]).lower()
        if _CLAUSE_END.search(before[-1:]):
            return " ".join(words[:i]), " ".join(words[i:])
        tail = LIST_MIN_TAIL if word in _LIST_WORDS else PHRASE_MIN_TAIL
        repeated = word in _LIST_WORDS and before.lower() == words[i + 1].lower().rstrip(".,;:!?")  # "more and more"
        if (english and i >= PHRASE_MIN_HEAD and len(words) - i >= tail and word in PHRASE_STARTERS
                and before[-1:].isalnum() and not repeated):
            return " ".join(words[:i]) + ",", " ".join(words[i:])
    return None


def split_middle_phrase(sentence: str, language: str | None = None) -> tuple[str, str] | None:
    """Cut an English sentence at the phrase boundary without a clause mark (before a conjunction or
    preposition, by :func:`split_first_phrase`'s rules) nearest its middle, the head closed with a comma:
    the cut candidate segment sizing keeps for a later segment (an engine cuts at clause marks itself).
    None when no boundary qualifies or the language is not English."""
    if base_language(language) not in {"", "en"}:
        return None
    words = sentence.split(" ")
    if len(words) < PHRASE_MIN_WORDS:
        return None
    best: tuple[float, int] | None = None
    for i in range(PHRASE_MIN_HEAD, len(words) - PHRASE_MIN_TAIL + 1):
        before, word = words[i - 1], _WORD_CHARS.sub("", words[i]).lower()
        tail = LIST_MIN_TAIL if word in _LIST_WORDS else PHRASE_MIN_TAIL
        repeated = word in _LIST_WORDS and before.lower() == words[i + 1].lower().rstrip(".,;:!?")
        starter_before = _WORD_CHARS.sub("", before).lower() in PHRASE_STARTERS  # "and | then": no boundary
        if (len(words) - i >= tail and word in PHRASE_STARTERS and before[-1:].isalnum() and not repeated
                and not starter_before):
            distance = abs(len(" ".join(words[:i])) - len(sentence) / 2)
            if best is None or distance < best[0]:
                best = (distance, i)
    if best is None:
        return None
    return " ".join(words[:best[1]]) + ",", " ".join(words[best[1]:])


def _split_first_phrase_cjk(sentence: str) -> tuple[str, str] | None:
    """The earliest clause mark with CJK_MIN_HEAD characters before it and CJK_MIN_TAIL after it; in
    Japanese without one, after a topic or subject particle (は, が, も) that follows a noun (kanji or
    katakana) and precedes the next word: 私たちの会社は、| 二千二十四年に… (given a 、 so the voice pauses there)."""
    for m in _CJK_CLAUSE.finditer(sentence):
        head, tail = sentence[:m.end()].strip(), sentence[m.end():].strip()
        if len(tail) < CJK_MIN_TAIL:
            break
        if len(head) >= CJK_MIN_HEAD:
            return head, tail
    for m in _TOPIC.finditer(sentence):
        head, tail = sentence[:m.end()], sentence[m.end():]
        if len(head) >= CJK_MIN_HEAD and len(tail) >= CJK_MIN_TAIL:
            return head + "、", tail
    return None


def split_segments(text: str, max_chars: int = 400, first_max_chars: int = 100,
                   language: str | None = None, first_segment: str = "clause",
                   first_max_tokens: int = 0, count_tokens: Callable[[str], int] | None = None) -> list[str]:
    """Sentences, long ones cut at clauses, and a short first segment:

    - ``"phrase"``: the first sentence is cut at its earliest phrase boundary (:func:`split_first_phrase`),
      else as ``"clause"``;
    - ``"clause"``: a first sentence over ``first_max_chars`` is cut at a clause mark (then at a space);
    - ``"sentence"`` (or ``first_max_chars=0``): the first sentence stays whole.

    An engine that knows what its model reads may bound the first segment in its own units too
    (``count_tokens``, e.g. Kokoro's phonemes): a first segment over ``first_max_tokens`` is then cut
    again, at clause marks only, so the time to first audio stays bounded in any script.
    """
    if first_segment not in FIRST_SEGMENT_MODES:
        raise ValueError(f"first_segment must be one of {', '.join(FIRST_SEGMENT_MODES)}")
    segments: list[str] = []
    for sentence in split_sentences(text, language):
        segments.extend(split_long(sentence, max_chars))
    if not first_max_chars or first_segment == "sentence" or not segments:
        return segments
    cjk = base_language(language) in CJK_LANGUAGES
    first_max_chars = first_segment_chars(first_max_chars, language)
    phrase = split_first_phrase(segments[0], language) if first_segment == "phrase" else None
    if phrase is not None and len(phrase[0]) <= first_max_chars:
        segments = [*phrase, *segments[1:]]
    elif len(segments[0]) > first_max_chars:
        segments = [*_head_and_rest(split_long(segments[0], first_max_chars), "" if cjk else " "), *segments[1:]]
    if count_tokens is not None and first_max_tokens > 0 and count_tokens(segments[0]) > first_max_tokens:
        pieces = split_long(segments[0], first_max_tokens, count_tokens, at_spaces=False)
        head = pieces[0]
        # the rest as written (segments are stripped, so the head is a prefix): no space between CJK clauses
        rest = segments[0][len(head):].strip() if segments[0].startswith(head) else " ".join(pieces[1:])
        segments = [head, *([rest] if rest else []), *segments[1:]]
    return segments


def _head_and_rest(pieces: list[str], joiner: str = " ") -> list[str]:
    """Only a clause-sized head is cut off; the rest is re-joined (with no space in Chinese and Japanese) so
    later segments stay sentence-sized."""
    rest = joiner.join(pieces[1:])
    return [pieces[0], rest] if rest else pieces[:1]
