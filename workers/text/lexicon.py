"""Pronunciation lexicons: word → respelling ("nginx" → "engine x") or IPA ("/ˈkiːnwɑː/").

A lexicon file is UTF-8 TSV, one ``word<TAB>pronunciation`` per line, ``#`` starts a comment; a
pronunciation between slashes is IPA, anything else a respelling. Keys in lower case match any case;
keys with capitals match exactly ("SQL" → "sequel" leaves "sql" alone). Keys made of letters apply after
normalization (the order the issue asks for); keys holding digits or symbols ("C#", "3M") apply to the
written text, because normalization would have changed them before they could match.

Files are re-read when they change on disk (checked at most once a second) or when :meth:`LexiconSet.reload`
is called, so pronunciations can be fixed without restarting a worker.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

#: limits on entries a request may add through ``extra.lexicon``
MAX_REQUEST_ENTRIES = 100
MAX_KEY_CHARS = 100
MAX_VALUE_CHARS = 200
#: largest lexicon file read (a file named by mistake, or /dev/zero, must not fill the worker's memory)
MAX_FILE_BYTES = 16 * 1024 * 1024
_WORDLIKE = re.compile(r"^[^\W\d_]+(?:[ '’-][^\W\d_]+)*$")


@dataclass(frozen=True)
class Pronunciation:
    """What to say for a lexicon key: ``text`` (a respelling) or ``ipa`` (phonemes)."""

    text: str = ""
    ipa: str | None = None

    @classmethod
    def parse(cls, value: str) -> Pronunciation:
        value = value.strip()
        if len(value) > 2 and value.startswith("/") and value.endswith("/"):
            return cls(ipa=value[1:-1].strip())
        return cls(text=value)


class Lexicon:
    """A set of entries compiled into two regular expressions (case-insensitive and exact keys)."""

    def __init__(self, entries: Mapping[str, str] | None = None) -> None:
        self.entries: dict[str, Pronunciation] = {k: Pronunciation.parse(v) for k, v in (entries or {}).items()
                                                   if k.strip() and v.strip()}
        self._folded = {k.lower(): p for k, p in self.entries.items() if k == k.lower()}
        self._exact = {k: p for k, p in self.entries.items() if k != k.lower()}
        self._patterns = {stage: (self._compile([k for k in self._folded if self._stage(k) == stage], True),
                                  self._compile([k for k in self._exact if self._stage(k) == stage], False))
                          for stage in ("written", "spoken")}

    def __len__(self) -> int:
        return len(self.entries)

    def __bool__(self) -> bool:
        return bool(self.entries)

    @staticmethod
    def _stage(key: str) -> str:
        return "spoken" if _WORDLIKE.match(key) else "written"

    @staticmethod
    def _compile(keys: list[str], fold: bool) -> re.Pattern[str] | None:
        if not keys:
            return None
        alternation = "|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True))
        return re.compile(rf"(?<!\w)(?:{alternation})(?!\w)", re.IGNORECASE if fold else 0)

    @classmethod
    def load(cls, path: str | Path) -> Lexicon:
        """Read a TSV lexicon; ValueError names the file and the line of a malformed entry, never the
        line itself: a file named as a lexicon by mistake (an account file) must not leak into errors
        that reach clients or logs."""
        with open(path, "rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise ValueError(f"{path}: larger than {MAX_FILE_BYTES // 2**20} MiB; not a lexicon")
        entries: dict[str, str] = {}
        for number, data in enumerate(raw.split(b"\n"), 1):
            try:
                line = data.decode("utf-8").rstrip("\r")
            except UnicodeDecodeError:
                raise ValueError(f"{path}:{number}: not UTF-8 text") from None
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            key, sep, value = line.partition("\t")
            if not sep or not key.strip() or not value.strip():
                raise ValueError(f"{path}:{number}: expected 'word<TAB>pronunciation'")
            entries[key.strip()] = value.strip()
        return cls(entries)

    def merged(self, other: Lexicon) -> Lexicon:
        """This lexicon with ``other``'s entries on top (a request's entries override the file's)."""
        if not other:
            return self
        combined = {k: (f"/{p.ipa}/" if p.ipa is not None else p.text) for k, p in self.entries.items()}
        combined.update({k: (f"/{p.ipa}/" if p.ipa is not None else p.text) for k, p in other.entries.items()})
        return Lexicon(combined)

    def apply(self, text: str, stage: str, ipa: Callable[[str, str], str]) -> str:
        """Replace the entries of ``stage`` ("written" or "spoken") in ``text``; an IPA entry becomes
        ``ipa(phonemes, original_word)``, whatever marker the caller uses for phonemes."""
        folded, exact = self._patterns[stage]
        for pattern, table, fold in ((exact, self._exact, False), (folded, self._folded, True)):
            if pattern is None:
                continue

            def replace(m: re.Match[str], table: dict[str, Pronunciation] = table, fold: bool = fold) -> str:
                entry = table[m.group(0).lower() if fold else m.group(0)]
                return ipa(entry.ipa, m.group(0)) if entry.ipa is not None else entry.text

            text = pattern.sub(replace, text)
        return text


def request_lexicon(value: object) -> Lexicon:
    """``extra.lexicon`` of a request: a small object of word → pronunciation; ValueError says what is wrong."""
    if value is None:
        return Lexicon()
    if not isinstance(value, dict):
        raise ValueError("'extra.lexicon' must be an object of word -> pronunciation")
    if len(value) > MAX_REQUEST_ENTRIES:
        raise ValueError(f"'extra.lexicon' has {len(value)} entries; at most {MAX_REQUEST_ENTRIES} are allowed")
    for key, pron in value.items():
        if not isinstance(pron, str) or not key.strip() or not pron.strip():
            raise ValueError(f"'extra.lexicon' entry {key!r} must map a word to a non-empty string")
        if len(key) > MAX_KEY_CHARS or len(pron) > MAX_VALUE_CHARS:
            raise ValueError(f"'extra.lexicon' entry {key[:20]!r} is too long "
                             f"(keys up to {MAX_KEY_CHARS} characters, values up to {MAX_VALUE_CHARS})")
    return Lexicon(value)


class LexiconSet:
    """The lexicon files of one model, per language, re-read when they change.

    ``paths`` is one path (for ``default_language``) or a mapping language → path, as written in the
    model's options: ``options = { lexicon = "lex.tsv" }`` or ``{ lexicon = { en = "en.tsv", ko = "ko.tsv" } }``.
    """

    #: seconds between checks of the files' modification times
    CHECK_INTERVAL_S = 1.0

    def __init__(self, paths: str | Mapping[str, str] | None, default_language: str) -> None:
        if isinstance(paths, str | os.PathLike):
            paths = {default_language: str(paths)}
        self.paths: dict[str, Path] = {lang: Path(p).expanduser() for lang, p in (paths or {}).items()}
        self._lexicons: dict[str, Lexicon] = {}
        self._mtimes: dict[str, float] = {}
        self._checked = 0.0
        self._lock = threading.Lock()
        self.reload()

    def reload(self) -> dict[str, int]:
        """Re-read every file now; returns entries per language. A file that fails to parse keeps its
        previous entries (the error is logged and raised), so a typo never empties a live lexicon."""
        with self._lock:
            counts = {}
            for lang, path in self.paths.items():
                lexicon = Lexicon.load(path)
                self._lexicons[lang] = lexicon
                self._mtimes[lang] = path.stat().st_mtime
                counts[lang] = len(lexicon)
            self._checked = time.monotonic()
            return counts

    def get(self, language: str) -> Lexicon:
        """The lexicon for ``language`` (empty if none), re-read first if its file changed."""
        if self.paths and time.monotonic() - self._checked > self.CHECK_INTERVAL_S:
            self._refresh_changed()
        return self._lexicons.get(language, _EMPTY)

    def _refresh_changed(self) -> None:
        with self._lock:
            self._checked = time.monotonic()
            for lang, path in self.paths.items():
                try:
                    mtime = path.stat().st_mtime
                    if mtime != self._mtimes.get(lang):
                        self._lexicons[lang] = Lexicon.load(path)
                        self._mtimes[lang] = mtime
                        log.info("lexicon %s reloaded: %d entries", path, len(self._lexicons[lang]))
                except (OSError, ValueError) as exc:
                    log.warning("lexicon %s not reloaded: %s", path, exc)


_EMPTY = Lexicon()
