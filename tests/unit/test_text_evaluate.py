"""``vtts eval``'s pure parts (corpus, sampling, scoring, report) and ``vtts normalize``."""

import pytest

from vtts.cli import main
from vtts.evaluate import PROSE, CategoryScore, Report, Result, Sentence, load_corpus, markdown, sample


def test_corpus_has_prose_and_every_heavy_category() -> None:
    corpus = load_corpus()
    assert len(corpus) >= 200
    categories = {s.category for s in corpus}
    assert {PROSE, "numbers", "money", "dates", "times", "units", "abbreviations", "web"} <= categories
    assert sum(s.category == PROSE for s in corpus) >= 50
    assert all(s.written == s.spoken for s in corpus if s.category == PROSE)
    assert len(sample(corpus, 2)) == 2 * len(categories)


def test_scoring_is_symmetric_about_spelling() -> None:
    pytest.importorskip("jiwer")
    pytest.importorskip("whisper_normalizer")
    from vtts.evaluate import score

    def result(category: str, spoken: str, heard_with: str, heard_without: str) -> Result:
        return Result(Sentence(spoken, spoken, category), heard_with, heard_without)

    results = [
        result("web", "Visit w w w dot example dot com now.", "Visit www.example.com now.", "Visit example now."),
        result("phone", "Call five five five, one two three, four five six seven.", "Call 555-123-4567.",
               "Call 555 123."),
        result("roman", "World War two ended.", "World War II ended.", "World War Roman 2 ended."),
        result(PROSE, "The cat slept.", "The cat slept.", "The cat slept."),
    ]
    categories, heavy, prose = score(results)
    assert {c.category: c.wer_with for c in categories} == {PROSE: 0.0, "phone": 0.0, "roman": 0.0, "web": 0.0}
    assert heavy.wer_without > 0 and prose is not None and prose.wer_without == 0.0


def test_markdown_report_states_the_targets() -> None:
    heavy = CategoryScore("all normalization-heavy", 10, 0.1, 0.4)
    prose = CategoryScore(PROSE, 5, 0.01, 0.01)
    text = markdown(Report([prose], heavy, prose, 12.0))
    assert "| prose | 5 | 0.010 | 0.010 | 1.00 |" in text
    assert "| **all normalization-heavy** | 10 | 0.400 | 0.100 | 0.25 |" in text
    assert "met; prose no worse" in text


def test_vtts_normalize(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["normalize", "Dr. Smith paid $5 on 03/04/2025.", "--lang", "en"]) == 0
    assert capsys.readouterr().out.strip() == "Doctor Smith paid five dollars on March fourth, twenty twenty-five."
    assert main(["normalize", "On 03/04/2025.", "--lang", "en", "--locale", "en-GB"]) == 0
    assert "the third of April" in capsys.readouterr().out
    assert main(["normalize", "사과 3개"]) == 0
    assert capsys.readouterr().out.strip() == "사과 세 개"
    assert main(["normalize", '<speak>a<break time="1s"/>b</speak>', "--segments"]) == 0
    assert capsys.readouterr().out.splitlines() == ["a", "b\t[pause_before=1000ms]"]


def test_cut_mode_cuts_each_segment_once_at_a_clause_and_reports_whole_vs_cut() -> None:
    """``vtts eval --cut``: a sentence with a clause mark is cut near its middle (every phoneme kept), one
    without is left whole; the report compares the two readings of the cut sentences."""
    from vtts.evaluate import cut_segments, markdown_cuts
    from vtts.workers.engine import SynthesisParams
    from vtts.workers.engines.piper import PiperEngine

    engine = PiperEngine.load("bundled", options={"warmup": False})
    params = SynthesisParams(voice=engine.voices()[0].id, extra={"first_segment": "sentence"})
    [whole] = engine.prepare("Rain is expected in the afternoon, so bring an umbrella.", params)
    head, tail = cut_segments(engine, [whole])
    assert head.text == "Rain is expected in the afternoon," and tail.text == "so bring an umbrella."
    [short] = engine.prepare("Yes, please.", params)
    assert cut_segments(engine, [short]) == [short]
    pytest.importorskip("jiwer")
    pytest.importorskip("whisper_normalizer")
    spoken = "Rain is expected in the afternoon, so bring an umbrella."
    report = Report([], CategoryScore("none", 0, 0, 0), None, 1.0,
                    [Result(Sentence(spoken, spoken, PROSE), spoken.replace("bring", "sobering"), spoken)])
    text = markdown_cuts(report, 10)
    assert "| prose | 1 | 0.000 | 0.100 | +0.100 |" in text and "1 of 10 sentences could be cut" in text
