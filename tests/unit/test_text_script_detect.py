import pytest

from vtts.workers.text.script_detect import detect_language, script_counts


@pytest.mark.parametrize(("text", "language"), [
    ("Hello there, how are you?", "en"),
    ("안녕하세요, 반갑습니다.", "ko"),
    ("今日はいい天気ですね。", "ja"),
    ("東京タワーに行きました", "ja"),
    ("今天天气很好。", "zh"),
    ("Привет, как дела?", "ru"),
    ("삼성 Galaxy를 샀어요", "ko"),
    ("12345 !!!", "en"),
])
def test_detect_language(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_default_and_counts() -> None:
    assert detect_language("Bonjour tout le monde", default="fr") == "fr"
    assert script_counts("ab가") == {"latin": 2, "hangul": 1}
