"""``vtts eval --normalization DIR``: the text frontend's readings against public written → spoken cases.

``DIR/<lang>/<class>.txt`` holds one ``written~spoken`` pair a line (NeMo-text-processing's test cases for
en, ko, zh, ja). Each written text goes through the same frontend ``vtts normalize`` runs
(:meth:`TextFrontend.normalize`) and the result is compared with the spoken side after a light
canonicalisation both sides share: lower case, hyphens and punctuation to spaces, spelled letters joined
("A-M" = "AM"), whitespace collapsed — and dropped altogether for Korean, Chinese and Japanese, whose
spacing is not heard.

The cases are one grammar's conventions, not the only right readings. Where vTTS reads a case differently
but as naturally, a listed :class:`Convention` says which reading vTTS follows and why; a case that matches
only after those conventions are applied to both sides counts as an *accepted alternative*, anything else as
a *miss*.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

#: class files that are not ``written~spoken`` pairs: NeMo's audio-based test lists several readings per
#: input on separate lines, and the 70 % line split separated readings from their inputs
SKIPPED_CLASSES = frozenset({"normalize_with_audio"})
#: languages whose spacing is not heard: whitespace is ignored when comparing
UNSPACED = frozenset({"ko", "zh", "ja"})

_EN_NUMBER_WORDS = (
    "zero oh one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million "
    "billion trillion quadrillion quintillion"
).split()
_EN_NUM = "|".join(_EN_NUMBER_WORDS)
_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_CURRENCY_WORDS = "dollars?|cents?|pounds?|pence|penny|euros?|yen|won|rupees?|yuan"


@dataclass(frozen=True)
class Convention:
    """A reading vTTS gives that differs from the cases' but is as natural: ``rewrite`` maps both readings
    to one form (applied to both sides, so it never turns a miss into a match by itself)."""

    name: str
    vtts_reads: str
    why: str
    rewrite: Callable[[str], str]


# --------------------------------------------------------------------------- English digit-run grouping

_UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve "
                                     "thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_UNITS["oh"] = 0
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i > 1}
_SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_NUMBER_RUN = re.compile(rf"\b(?:(?:{_EN_NUM})\s+)*(?:{_EN_NUM})\b")
#: longest digit string whose grouping may differ ("fourteen twenty-eight" = "one thousand four hundred
#: twenty-eight" for an address); longer ones (phones, ids, amounts) must be grouped as the cases group them
MAX_REGROUP_DIGITS = 4


def _run_digits(words: list[str]) -> str | None:
    """The digits a run of number words says, however it is grouped: "two oh four", "two hundred four" →
    "204"; "fourteen twenty-eight" → "1428" (a word that cannot continue the number so far starts a new group,
    and the groups' digits are concatenated). None when the run is no number ("hundred" alone)."""
    groups: list[int] = []
    total = current = 0
    last = ""  # kind of the previous word: unit, teen, tens, hundred, scale; "" at a group's start

    def flush() -> None:
        nonlocal total, current, last
        if last:
            groups.append(total + current)
        total = current = 0
        last = ""

    for w in words:
        if w in ("oh", "zero"):
            flush()
            groups.append(0)
        elif w in _UNITS:
            kind = "teen" if _UNITS[w] >= 10 else "unit"
            if last in ("unit", "teen") or (last == "tens" and kind == "teen"):
                flush()
            current += _UNITS[w]
            last = kind
        elif w in _TENS:
            if last in ("unit", "teen", "tens"):
                flush()
            current += _TENS[w]
            last = "tens"
        elif w == "hundred":
            if last not in ("unit", "teen") or current >= 100:
                return None
            current *= 100
            last = "hundred"
        elif w in _SCALES:
            if not last:
                return None
            total += current * _SCALES[w]
            current = 0
            last = "scale"
        else:
            return None
    flush()
    return "".join(str(g) for g in groups)


def _regroup(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        said = _run_digits(match.group(0).split())
        return said if said is not None and len(said) <= MAX_REGROUP_DIGITS else match.group(0)

    return _NUMBER_RUN.sub(one, text)


EN_CONVENTIONS: list[Convention] = [
    Convention("'and' inside amounts", "one hundred five, twenty dollars fifty cents",
               "US usage; vTTS writes no 'and' in cardinals (it and commas become audible pauses), and joins "
               "dollars and cents with 'and'", lambda t: re.sub(
                   rf"\b({_EN_NUM}|{_CURRENCY_WORDS}) and (?=(?:{_EN_NUM}|a)\b)", r"\1 ", t)),
    Convention("date order", "July fifth (month-first locales), the fifth of July (day first written)",
               "both orders are said in every English region; vTTS follows the written order and the locale",
               lambda t: re.sub(rf"\bthe (\w+) of ({_MONTHS})\b", r"\2 \1", t)),
    Convention("URL scheme", "developer dot nvidia dot com", "people reading an address aloud leave out "
               "'https://'; vTTS drops the scheme", lambda t: re.sub(r"\b(?:https?|ftp|file) colon slash slash ?",
                                                                   "", t)),
    Convention("multiplier sign", "four point four times", "'4.4x' is said 'times' in speech; the letter name "
               "is a reading of the glyph", lambda t: re.sub(r"\bx\b(?! (?:" + _EN_NUM + r")\b)", "times", t)),
    Convention("quarters", "three quarters", "US 'fourths' and 'quarters' are both common; vTTS says quarters",
               lambda t: re.sub(r"\bfourths?\b", lambda m: m.group(0).replace("fourth", "quarter"), t)),
    Convention("range dash", "two to five (2-5)", "a dash between numbers is said 'to'; the cases leave some "
               "dashes unsaid, which a reader cannot do", lambda t: re.sub(
                   rf"\b({_EN_NUM}|[ap]m|s) to (?=(?:{_EN_NUM})\b)", r"\1 ", t)),
    Convention("currency once in a range", "five to ten dollars ($5-$10)", "the currency is said once, after "
               "the range, as in speech", lambda t: re.sub(rf"\b(?:{_CURRENCY_WORDS}) (?=(?:{_EN_NUM})\b)", "", t)),
    Convention("regnal 'the'", "Henry the eighth, Sam the second", "a roman numeral after a name is said with "
               "'the'", lambda t: re.sub(r"\bthe (?=(?:first|second|third|\w+th)\b(?! of))", "", t)),
    Convention("hashtag", "hashtag word (#word)", "'#' before a word is a hashtag today; 'hash' names the glyph",
               lambda t: t.replace("hashtag", "hash")),
    Convention("Mrs.", "Missus", "the same sound; spelled the way the phonemizer says it", lambda t: re.sub(
        r"\bmissus\b", "misses", t)),
    Convention("multiplication", "two times eight (2*8)", "'*' between numbers is said 'times'; 'asterisk' "
               "names the glyph", lambda t: t.replace("asterisk", "times")),
    Convention("short numbers' grouping", "two oh four or two hundred four, fourteen twenty-eight",
               f"a number of up to {MAX_REGROUP_DIGITS} digits may be said as a cardinal, in pairs or digit by "
               "digit ('oh' or 'zero'); vTTS reads quantities as cardinals, years and house numbers in pairs, codes "
               "digit by digit", _regroup),
]

_KO_DIGIT = "영일이삼사오육칠팔구공"
KO_CONVENTIONS: list[Convention] = [
    Convention("zero in digit strings", "공일공 (010)", "phone numbers and codes are said with 공 as often "
               "as 영; vTTS says 공 in phone numbers, 영 elsewhere",
               lambda t: re.sub(rf"공(?=[{_KO_DIGIT}])|(?<=[{_KO_DIGIT}])공", "영", t)),
    Convention("country code", "플러스 팔이 (+82)", "the '+' of an international number is said 플러스; "
               "'국가번호' (country code) names it instead", lambda t: t.replace("국가번호", "플러스")),
    Convention("speed", "시속 육십 킬로미터 (60km/h)", "Korean says a speed with 시속/초속 before the number; "
               "'킬로미터 퍼 시간' is a reading of the symbol",
               lambda t: re.sub(r"시속(.+?)킬로미터", r"\1킬로미터퍼시간", t)),
]
CONVENTIONS: dict[str, list[Convention]] = {"en": EN_CONVENTIONS, "ko": KO_CONVENTIONS}

_ZH_NUMERAL = "零一二三四五六七八九十两"
ZH_CONVENTIONS: list[Convention] = [
    Convention("part of the day", "下午三点四分 (03:04pm), 十三点十分 (13:10pm)", "Chinese says the part of the day "
               "before the clock time, and none with a 24-hour time; the cases keep the English 'pm' after it",
               lambda t: re.sub(r"下午(?=(?:十[三四五六七八九]|二十[一二三四]?)点)", "", re.sub(
                   rf"([{_ZH_NUMERAL}]+点差?(?:[{_ZH_NUMERAL}]+分)?(?:[{_ZH_NUMERAL}]+秒)?)(am|pm)",
                   lambda m: ("上午" if m.group(2) == "am" else "下午") + m.group(1), t))),
    Convention("一十 after 零", "一百亿零一十万", "inside a number 十 is said 一十 (一百一十); the cases drop the 一 "
               "after 零 in one group only", lambda t: t.replace("零一十", "零十")),
    Convention("号 for the day", "六号 (6号), 三月八日 (3月8号)", "号 is how a day is said, 日 how it is written; vTTS "
               "writes 日 only after a month, where the number is a date for sure (6号楼 is a building)",
               lambda t: re.sub(rf"([{_ZH_NUMERAL}]+)号", r"\1日", t)),
]


def _ja_trap_digits(text: str) -> str:
    from vtts.workers.text.normalize_ja import cardinal

    return re.sub(r"\d+(?=分(?!の)|[頭歳足])|(?<!\d)(?:13|99)(?![\d\u3400-\u9fff])",
                  lambda m: cardinal(m.group(0)), text)


JA_CONVENTIONS: list[Convention] = [
    Convention("numerals that spell another word", "5分, 8頭, 13から (五分 ごぶ, 十分 じゅうぶん, 十三 じゅうそう)",
               "dictionary-based G2Ps (pyopenjtalk, MeCab: Kokoro, GPT-SoVITS) read these kanji as words of "
               "their own; the digits are read as the number", _ja_trap_digits),
    Convention("ごろ after an hour", "二時ごろ", "頃 after a clock hour is read ころ by those G2Ps; ごろ is how "
               "it is said, and both spellings are standard", lambda t: t.replace("時頃", "時ごろ")),
    Convention("mixed numbers", "一と二分の一 (1 1/2)", "Japanese joins a whole number and a fraction with と (the "
               "cases' own 1と1/3); 荷 is no reading of it", lambda t: t.replace("荷", "と")),
]
CONVENTIONS.update(zh=ZH_CONVENTIONS, ja=JA_CONVENTIONS)


# --------------------------------------------------------------------------- canonical form

_SPELLED = re.compile(r"\b([^\W\d_])-(?=[^\W\d_]\b)")


def canonical(text: str, lang: str) -> str:
    """Case, punctuation, hyphens and whitespace unified: what a listener could not tell apart."""
    text = unicodedata.normalize("NFKC", text).lower()
    while _SPELLED.search(text):
        text = _SPELLED.sub(r"\1", text)
    text = "".join(" " if unicodedata.category(c).startswith("P") or c in "`´" else c for c in text)
    if lang in UNSPACED:
        return re.sub(r"\s+", "", text)
    return " ".join(text.split())


# --------------------------------------------------------------------------- scoring


@dataclass
class Case:
    lang: str
    cls: str
    written: str
    spoken: str
    got: str = ""
    verdict: str = ""  # "right", "alternative", "miss"
    conventions: list[str] = field(default_factory=list)


@dataclass
class ClassScore:
    lang: str
    cls: str
    cases: int
    right: int
    alternative: int

    @property
    def accuracy(self) -> float:
        """Right or accepted alternative, over all cases."""
        return (self.right + self.alternative) / self.cases if self.cases else 0.0


def load_cases(root: str | Path) -> dict[str, dict[str, list[tuple[str, str]]]]:
    """``{lang: {class: [(written, spoken)]}}`` from ``root/<lang>/<class>.txt``."""
    out: dict[str, dict[str, list[tuple[str, str]]]] = {}
    root = Path(root)
    if not root.is_dir():
        raise OSError(f"{root}: not a directory")
    for path in sorted(root.glob("*/*.txt")):
        if path.stem in SKIPPED_CLASSES:
            continue
        pairs = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if "~" in line:
                written, _, spoken = line.partition("~")
                pairs.append((written, spoken))
        if pairs:
            out.setdefault(path.parent.name, {})[path.stem] = pairs
    return out


def judge(written_reading: str, spoken: str, lang: str) -> tuple[str, list[str]]:
    """("right" | "alternative" | "miss", the conventions that made an alternative match)."""
    got, want = canonical(written_reading, lang), canonical(spoken, lang)
    if got == want:
        return "right", []
    used = []
    for convention in CONVENTIONS.get(lang, []):
        new_got, new_want = convention.rewrite(got), convention.rewrite(want)
        if (new_got, new_want) != (got, want):
            used.append(convention.name)
        got, want = new_got, new_want
        if got == want:
            return "alternative", used
    return "miss", []


def normalizer_for(lang: str) -> Callable[[str], str] | None:
    """The frontend ``vtts normalize --lang LANG`` runs, or None where vTTS has no rules for the language."""
    from vtts.workers.text import NORMALIZERS, TextFrontend

    if lang not in NORMALIZERS:
        return None
    frontend = TextFrontend(lang)
    return lambda text: frontend.normalize(text, language=lang)


def evaluate(cases: dict[str, dict[str, list[tuple[str, str]]]]) -> tuple[list[ClassScore], list[Case], list[str]]:
    """Per-class scores, every judged case, and the languages with no normalizer (not supported)."""
    scores, judged, unsupported = [], [], []
    for lang, classes in sorted(cases.items()):
        norm = normalizer_for(lang)
        if norm is None:
            unsupported.append(lang)
            continue
        for cls, pairs in sorted(classes.items()):
            score = ClassScore(lang, cls, len(pairs), 0, 0)
            for written, spoken in pairs:
                try:
                    got = norm(written)
                except Exception as exc:  # noqa: BLE001 - a crash on one case is a miss, reported as such
                    got = f"<error: {exc}>"
                verdict, used = judge(got, spoken, lang)
                score.right += verdict == "right"
                score.alternative += verdict == "alternative"
                judged.append(Case(lang, cls, written, spoken, got, verdict, used))
            scores.append(score)
    return scores, judged, unsupported


def totals(scores: list[ClassScore]) -> dict[str, ClassScore]:
    """All classes of a language together."""
    out: dict[str, ClassScore] = {}
    for s in scores:
        t = out.setdefault(s.lang, ClassScore(s.lang, "all", 0, 0, 0))
        t.cases += s.cases
        t.right += s.right
        t.alternative += s.alternative
    return out


def markdown(scores: list[ClassScore], unsupported: list[str]) -> str:
    """The per-class table: cases, right, accepted alternative, accuracy (right + alternative)."""
    lines = ["| language | class | cases | right | accepted alternative | right or alternative |",
             "|---|---|---:|---:|---:|---:|"]
    for s in scores:
        lines.append(f"| {s.lang} | {s.cls} | {s.cases} | {s.right} | {s.alternative} | {s.accuracy:.0%} |")
    for lang, t in totals(scores).items():
        lines.append(f"| **{lang}** | **all** | {t.cases} | {t.right} | {t.alternative} | **{t.accuracy:.0%}** |")
    for lang in unsupported:
        lines.append(f"| {lang} | — | not supported (no normalizer for this language) | | | |")
    return "\n".join(lines)


def conventions_markdown() -> str:
    """The accepted alternative readings, with the one vTTS follows and why."""
    lines = ["| language | convention | vTTS reads | why |", "|---|---|---|---|"]
    for lang, conventions in CONVENTIONS.items():
        lines += [f"| {lang} | {c.name} | {c.vtts_reads} | {c.why} |" for c in conventions]
    return "\n".join(lines)


def run(root: str | Path, *, show_misses: bool = False, languages: list[str] | None = None) -> str:
    """The report ``vtts eval --normalization`` prints."""
    cases = load_cases(root)
    if languages:
        cases = {k: v for k, v in cases.items() if k in languages}
    scores, judged, unsupported = evaluate(cases)
    out = [markdown(scores, unsupported)]
    if show_misses:
        out.append("")
        out += [f"MISS {c.lang}/{c.cls}: {c.written!r}\n  got:  {c.got!r}\n  want: {c.spoken!r}"
                for c in judged if c.verdict == "miss"]
    return "\n".join(out)
