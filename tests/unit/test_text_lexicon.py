import os
import time
from pathlib import Path

import pytest

from vtts.workers.text.lexicon import Lexicon, LexiconSet, Pronunciation, request_lexicon


def _ipa(ipa: str, word: str) -> str:
    return f"<{ipa}|{word}>"


def test_pronunciations_and_case_rules() -> None:
    lex = Lexicon({"nginx": "engine x", "SQL": "sequel", "kubernetes": "/kuːbɚˈnɛtiːz/", "C#": "C sharp"})
    assert lex.entries["kubernetes"] == Pronunciation(ipa="kuːbɚˈnɛtiːz")
    assert lex.apply("Nginx, SQL and sql.", "spoken", _ipa) == "engine x, sequel and sql."
    assert lex.apply("Kubernetes!", "spoken", _ipa) == "<kuːbɚˈnɛtiːz|Kubernetes>!"
    assert lex.apply("I like C# a lot", "written", _ipa) == "I like C sharp a lot"
    assert lex.apply("I like C# a lot", "spoken", _ipa) == "I like C# a lot"  # symbol keys act before normalization
    assert lex.apply("nginxes", "spoken", _ipa) == "nginxes"  # whole words only


def test_merge_overrides_and_longest_key_wins() -> None:
    lex = Lexicon({"new york": "noo york", "york": "yawk"}).merged(Lexicon({"york": "YORK"}))
    assert lex.apply("New York and York", "spoken", _ipa) == "noo york and YORK"


def test_load_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "lex.tsv"
    path.write_text("# comment\nnginx\tengine x\n\ntomato\t/təˈmɑːtoʊ/\n", encoding="utf-8")
    assert len(Lexicon.load(path)) == 2
    path.write_text("broken line\n", encoding="utf-8")
    with pytest.raises(ValueError, match="lex.tsv:1"):
        Lexicon.load(path)


def test_request_entries_are_validated() -> None:
    assert len(request_lexicon({"a": "b"})) == 1 and not request_lexicon(None)
    for bad in (["a"], {"a": 3}, {"a": ""}, {str(i): "x" for i in range(101)}, {"a": "x" * 300}):
        with pytest.raises(ValueError, match="extra.lexicon"):
            request_lexicon(bad)


def test_files_reload_on_change_and_on_demand(tmp_path: Path) -> None:
    path = tmp_path / "en.tsv"
    path.write_text("nginx\tengine x\n", encoding="utf-8")
    lexicons = LexiconSet(str(path), "en")
    assert lexicons.get("en").apply("nginx", "spoken", _ipa) == "engine x"
    assert not lexicons.get("ko")
    path.write_text("nginx\tengine ex\n", encoding="utf-8")
    os.utime(path, (time.time() + 5, time.time() + 5))
    lexicons._checked = 0.0  # as if a second had passed
    assert lexicons.get("en").apply("nginx", "spoken", _ipa) == "engine ex"
    path.write_text("nginx\tN G I N X\nredis\tred iss\n", encoding="utf-8")
    assert lexicons.reload() == {"en": 2}


def test_a_broken_file_keeps_the_live_entries(tmp_path: Path) -> None:
    path = tmp_path / "en.tsv"
    path.write_text("nginx\tengine x\n", encoding="utf-8")
    lexicons = LexiconSet({"en": str(path)}, "en")
    path.write_text("oops\n", encoding="utf-8")
    os.utime(path, (time.time() + 5, time.time() + 5))
    lexicons._checked = 0.0
    assert lexicons.get("en").apply("nginx", "spoken", _ipa) == "engine x"
    with pytest.raises(ValueError):
        lexicons.reload()


def test_errors_name_the_path_and_line_never_the_contents(tmp_path: Path) -> None:
    """A file named as a lexicon by mistake (an account file) must not leak into errors that reach clients."""
    secret = tmp_path / "passwd"
    secret.write_text("# accounts\nroot:x:0:0:secret-hash:/root:/bin/bash\n")
    with pytest.raises(ValueError) as err:
        Lexicon.load(secret)
    assert str(err.value) == f"{secret}:2: expected 'word<TAB>pronunciation'"
    binary = tmp_path / "binary"
    binary.write_bytes(b"ok\tfine\n\xff\xfesecret\n")
    with pytest.raises(ValueError) as err:
        Lexicon.load(binary)
    assert str(err.value) == f"{binary}:2: not UTF-8 text"
