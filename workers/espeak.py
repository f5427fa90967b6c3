"""Text to IPA with espeak-ng, through a small ctypes binding to the library that ``espeakng-loader`` ships.

Piper voices were trained on espeak-ng IPA *with each clause's punctuation kept* ("həlˈoʊ, wˈɜːld."), which
Piper gets from a patched espeak-ng (``espeak_TextToPhonemesWithTerminator``). The stock library here only
has ``espeak_TextToPhonemes``, which drops the punctuation, so the marks are read back from the text:
espeak-ng still decides where each clause ends (and advances the text pointer past it), and the character
that ended the clause is looked up in :data:`_MARKS`, a table measured against Piper's own phonemizer.

espeak-ng keeps global state (one voice at a time, static buffers): every call holds :data:`_LOCK`.
"""

from __future__ import annotations

import ctypes
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass

_AUDIO_OUTPUT_SYNCHRONOUS = 2  # espeak_AUDIO_OUTPUT: no audio device, no background thread
_INITIALIZE_DONT_EXIT = 0x8000  # report a bad data path instead of calling exit()
_CHARS_AUTO = 0  # espeakCHARS_AUTO: UTF-8 input
_PHONEMES_IPA = 0x02  # phonememode bit 1: IPA as UTF-8, no separator between phonemes
_EE_OK = 0

#: clause-ending character -> the mark Piper puts back (measured: every punctuation/symbol code point was
#: run through piper-tts 1.8's phonemizer as "one<c> Two"; characters absent here end clauses without a mark)
_MARKS: dict[str, str] = {
    ch: mark
    for mark, chars in {
        ".": ".۔܁܄።᙮᠃᠉⳹⳾⸳⸼꓿꘎꛳︒﹒｡\U00016af5\U0001bc9f\U0001da88",
        "?": "?;؟܉፧᥅⁇❓❔⳺⳻꘏꛷︖﹖\U00011143\U0001e95f",
        "!": "!܃߹᥄‼❕❗❢❣︕﹗\U0001e95e",
        ",": ",՝،܂߸༔፣᠂᠈⸲⸴⹁꓾꘍꛵︐︑﹐﹑､\U0001144d\U0001da87",
        ":": ":܆܇፥፦᠄⦂꛴︓﹕\U00012471\U00012472\U0001da8a",
        ";": ";·؛܈፤–—⁏⸵⸺⸻꛶︔︱︲﹔\U0001da89",
    }.items()
    for ch in chars
}
#: marks that end a sentence (Piper synthesizes each sentence on its own)
_SENTENCE_MARKS = frozenset(".?!")
#: characters that end a sentence although Piper keeps no mark for them (full-width and other scripts' stops)
_UNMARKED_SENTENCE_ENDS = frozenset("։܀।॥෴།༎჻፨。！．？")
#: "(en)" / "(fr)" language-switch flags espeak-ng puts around foreign words; Piper drops them
_LANGUAGE_FLAG = re.compile(r"\([^)]+\)")
#: Piper glues the next clause onto one that ended without a mark ("wait… what" -> "wˈeɪtwˌʌt"); a space
#: keeps the word boundary the voice otherwise always sees
_SPACE_AFTER_UNMARKED = True

_LOCK = threading.Lock()
_library: ctypes.CDLL | None = None
_voice: str | None = None


@dataclass(frozen=True)
class Clause:
    """One clause as espeak-ng cut it: its IPA, the mark Piper keeps ("" for none) and whether it ends a
    sentence."""

    ipa: str
    mark: str
    ends_sentence: bool


def _load() -> ctypes.CDLL:
    """Load and initialise libespeak-ng once per process (call with :data:`_LOCK` held)."""
    global _library
    if _library is not None:
        return _library
    import espeakng_loader

    library = ctypes.CDLL(espeakng_loader.get_library_path())
    library.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    library.espeak_Initialize.restype = ctypes.c_int
    library.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    library.espeak_SetVoiceByName.restype = ctypes.c_int
    library.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
    library.espeak_TextToPhonemes.restype = ctypes.c_char_p
    data_path = espeakng_loader.get_data_path()
    rate = library.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data_path).encode(), _INITIALIZE_DONT_EXIT)
    if rate <= 0:
        raise RuntimeError(f"espeak-ng failed to initialise (code {rate}) with data at {data_path}")
    _library = library
    return library


def _select_voice(library: ctypes.CDLL, voice: str) -> None:
    """Switch espeak-ng's voice if needed; ValueError for a name it does not know.

    espeak-ng crashes when asked for phonemes with no voice loaded, so a failed switch forgets the current
    voice and the next call sets one again before phonemizing.
    """
    global _voice
    if voice == _voice:
        return
    _voice = None
    if not voice or "\0" in voice or library.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
        raise ValueError(f"unknown espeak-ng voice {voice!r}")
    _voice = voice


def _raw_clauses(library: ctypes.CDLL, data: bytes) -> Iterator[tuple[str, str, bool]]:
    """Yield (ipa, consumed text, is_last) per clause, letting espeak-ng advance through ``data``."""
    buffer = ctypes.create_string_buffer(data)
    base = ctypes.addressof(buffer)
    pointer = ctypes.c_void_p(base)
    start = 0
    while pointer.value is not None:
        ipa = library.espeak_TextToPhonemes(ctypes.byref(pointer), _CHARS_AUTO, _PHONEMES_IPA) or b""
        end = len(data) if pointer.value is None else pointer.value - base
        yield ipa.decode("utf-8", "replace"), data[start:end].decode("utf-8", "ignore"), pointer.value is None
        if end <= start:  # no progress: never loop forever on odd input
            return
        start = end


def _clause_end(consumed: str, is_last: bool) -> tuple[str, bool]:
    """(mark, ends_sentence) for a clause, from the text espeak-ng consumed for it.

    espeak-ng reads one character past the clause end before it stops (the next clause's first letter,
    or a closing quote), so all but the last clause drop one character before the search. The clause type
    comes from the first mark of the final run of punctuation ("?!" is a question), as in espeak-ng.
    """
    body = consumed if is_last else consumed[:-1]
    tail = body.rstrip()
    paragraph = body[len(tail) :].count("\n") >= 2
    start = len(tail)
    while start > 0 and not tail[start - 1].isalnum() and not tail[start - 1].isspace():
        start -= 1
    run = tail[start:]
    if run.startswith(".."):  # espeak-ng reads "..." as an ellipsis: a pause, no mark
        return "", paragraph
    for char in run:
        if char in _MARKS:
            mark = _MARKS[char]
            return mark, mark in _SENTENCE_MARKS or paragraph or is_last
        if char in _UNMARKED_SENTENCE_ENDS:
            return "", True
    return "", paragraph or is_last


def clauses(text: str, voice: str) -> list[Clause]:
    """espeak-ng's clauses of ``text`` in ``voice`` (e.g. "en-us"), with Piper's marks; ValueError for an
    unknown voice."""
    data = text.replace("\0", " ").encode("utf-8")
    out: list[Clause] = []
    with _LOCK:
        library = _load()
        _select_voice(library, voice)
        for ipa, consumed, is_last in _raw_clauses(library, data):
            mark, ends = _clause_end(consumed, is_last)
            out.append(Clause(_LANGUAGE_FLAG.sub("", ipa).strip(), mark, ends))
    return out


def phonemize_sentences(text: str, voice: str) -> list[str]:
    """IPA per sentence, written the way Piper's phonemizer writes it: clause marks kept, a space after
    ``, : ;`` (and after unmarked clause ends, where Piper would glue two words together), nothing after
    a sentence's final mark. Clauses without phonemes are dropped (Piper would speak a lone mark)."""
    sentences: list[str] = []
    current = ""
    for clause in clauses(text, voice):
        if clause.ipa:
            current += clause.ipa + clause.mark
            if not clause.ends_sentence and (clause.mark or _SPACE_AFTER_UNMARKED):
                current += " "
        if clause.ends_sentence and current.strip():
            sentences.append(current.strip())
            current = ""
    if current.strip():
        sentences.append(current.strip())
    return sentences


def phonemize(text: str, voice: str) -> str:
    """IPA for ``text`` in espeak-ng ``voice``, sentences joined by a space (see :func:`phonemize_sentences`)."""
    return " ".join(phonemize_sentences(text, voice))


def has_voice(voice: str) -> bool:
    """Whether espeak-ng knows ``voice`` (loads it as a side effect)."""
    try:
        with _LOCK:
            _select_voice(_load(), voice)
    except ValueError:
        return False
    return True
