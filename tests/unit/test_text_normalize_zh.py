"""The Chinese normalizer's output, pinned per rule family, and its accuracy on the public cases."""

import unicodedata
from pathlib import Path

import pytest

from tests.deadline import within
from vtts.workers.text.normalize_zh import cardinal, normalize

CASES = {
    "cardinals and 两": [("我买了35个苹果", "我买了三十五个苹果"), ("2391人", "两千三百九十一人"),
                        ("一共100001000元", "一共一亿零一千元"), ("500010", "五十万零一十"),
                        ("2个和2点", "两个和两点")],
    "decimals and signs": [("气温是-5度", "气温是负五度"), ("0.5和3.14", "零点五和三点一四"), ("1.5亿", "一点五亿")],
    "ordinals": [("第2名", "第二名"), ("第10000", "第一万")],
    "years and dates": [("2015年", "二零一五年"), ("12年了", "十二年了"), ("05年", "零五年"),
                        ("2019/2/10", "二零一九年二月十日"), ("2024-05-01", "二零二四年五月一日"),
                        ("3月8号", "三月八日"), ("1234b.c.", "公元前一二三四年"), ("2015年底", "二零一五年底"),
                        ("1990年代和90年代", "一九九零年代和九十年代"), ("1000年前", "一千年前"),
                        ("2年级", "二年级")],
    "times": [("03:04:05", "三点四分五秒"), ("下午3:30", "下午三点三十分"), ("10:04pm", "下午十点四分"),
              ("3点1刻", "三点一刻")],
    "money": [("$5", "五美元"), ("€1,299", "一千二百九十九欧元"), ("$1.5万", "一点五万美元"), ("100美元", "一百美元")],
    "units": [("25kg", "二十五千克"), ("38°C", "三十八摄氏度"), ("120m²", "一百二十平方米"), ("10ms", "十毫秒"),
              ("120km/h", "一百二十千米每小时"), ("2.5GHz", "二点五吉赫兹"), ("3x4m", "三乘四米"),
              ("5A级景区", "五A级景区")],
    "percentages and fractions": [("30%", "百分之三十"), ("-0.4%", "负百分之零点四"), ("1/5", "五分之一"),
                                  ("-1/3", "负三分之一"), ("负100分之57", "负一百分之五十七")],
    "ranges, versions, phones": [("3-5天", "三到五天"), ("3月~5月", "三月到五月"),
                                 ("10%~20%", "百分之十到百分之二十"), ("85后", "八五后"),
                                 ("v1.2.3版", "v一点二点三版"), ("400-800-8888", "四零零，八零零，八八八八"),
                                 ("13812345678", "一三八，一二三四，五六七八"),
                                 ("010-12345678", "零一零，一二三四五六七八")],
    "initialisms": [("nba比赛", "NBA比赛"), ("公司的c e o", "公司的CEO"), ("I love you", "I love you")],
    "text without numbers": [("你好，世界。", "你好，世界。")],
}


@pytest.mark.parametrize(("written", "spoken"), [case for cases in CASES.values() for case in cases],
                         ids=[f"{family}-{i}" for family, cases in CASES.items() for i in range(len(cases))])
def test_normalize(written: str, spoken: str) -> None:
    assert normalize(written) == spoken


def test_traditional_locales_get_traditional_characters() -> None:
    assert normalize("約2500萬人，下午3:30", "zh-TW") == "約兩千五百萬人，下午三點三十分"
    assert normalize("2500万人", "zh-CN") == normalize("2500万人") == "两千五百万人"
    assert normalize("1.5億", "zh-Hant-HK") == "一點五億"


def test_the_zero_cn2an_drops_is_restored() -> None:
    """cn2an 0.5.24 reads 100001000 as 一亿一千 (the empty 万 group's 零 is lost); every case of it here."""
    assert cardinal("100001000") == "一亿零一千"
    assert cardinal("70000001030") == "七百亿零一千零三十"
    assert cardinal("10001000") == "一千万一千"  # no empty group: no 零


def test_long_digit_strings_are_codes_read_in_linear_time() -> None:
    with within(2.0, "normalize()"):
        assert normalize("1" * 5000) == "一" * 5000
        normalize("1/2-3:4." * 3000 + "2个" * 3000 + "5km/" * 3000)
    assert normalize("编号12345678901234567") == "编号一二三四五六七八九零一二三四五六七"


# ---------------------------------------------------------------- the public cases (shared corpus)

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora" / "text-normalization" / "zh"
#: the classes issue 19 sets a target on, and the least share of each read exactly as the cases do
TARGET_CLASSES = ("cardinal", "date", "decimal", "fraction", "measure", "money", "ordinal", "time")
MIN_EXACT, MIN_CLASS_EXACT = 0.9, 0.75


def canonical(text: str) -> str:
    """What a listener cannot tell apart: width, spacing and punctuation."""
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(c for c in text if not (c.isspace() or unicodedata.category(c).startswith("P")))


def exact_share(path: Path) -> tuple[int, int]:
    pairs = [line.split("~", 1) for line in path.read_text(encoding="utf-8").splitlines() if "~" in line]
    return sum(canonical(normalize(w)) == canonical(s) for w, s in pairs), len(pairs)


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present")
def test_public_cases() -> None:
    """NeMo-text-processing's zh cases (see the corpus README): read exactly as written there. The misses
    left are one reading convention (a.m./p.m. said before the time: 下午三点四分, where the cases keep "pm")
    and two equally natural ones (一百亿零一十万 for 零十万; 六号 for 六日)."""
    scores = {cls: exact_share(CORPUS / f"{cls}.txt") for cls in TARGET_CLASSES if (CORPUS / f"{cls}.txt").exists()}
    right, total = sum(r for r, _ in scores.values()), sum(n for _, n in scores.values())
    assert right / total >= MIN_EXACT, scores
    assert all(r / n >= MIN_CLASS_EXACT for r, n in scores.values()), scores
    for extra in ("whitelist", "word"):  # initialisms upper-cased; text without numbers left alone
        if (CORPUS / f"{extra}.txt").exists():
            r, n = exact_share(CORPUS / f"{extra}.txt")
            assert r / n >= MIN_EXACT, (extra, r, n)


def test_the_evaluator_accepts_the_listed_conventions_only() -> None:
    """``vtts eval --normalization`` counts vTTS's conventions as alternatives, never a real miss."""
    from vtts.normalization_eval import judge

    assert judge("下午三点四分", "三点四分pm", "zh") == ("alternative", ["part of the day"])
    assert judge("十三点十分", "十三点十分pm", "zh")[0] == "alternative"
    assert judge("一百亿零一十万", "一百亿零十万", "zh")[0] == "alternative"
    assert judge("六号", "六日", "zh")[0] == "alternative"
    assert judge("三点四分", "三点四分pm", "zh")[0] == "miss"  # the part of the day lost
    assert judge("六号", "七日", "zh")[0] == "miss"


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present")
def test_every_class_right_or_an_accepted_alternative() -> None:
    from vtts.normalization_eval import evaluate, load_cases

    scores, _, _ = evaluate({"zh": load_cases(CORPUS.parent)["zh"]})
    assert all(s.accuracy >= 0.95 for s in scores), [(s.cls, s.accuracy) for s in scores]
