"""A small ``vtts eval``: what Whisper hears from the bundled voice, with and without the text frontend.

Twelve corpus sentences (four of plain prose, the first of each of eight normalization-heavy categories; the
whole corpus is ``vtts eval``'s). The bounds are loose enough for Piper's run-to-run noise (about ±0.02 WER)
and tight enough that a broken frontend fails: normalizing nothing leaves the heavy sentences' WER equal to
the raw voice's (0.24 here, 0.04 with the frontend).
"""

from __future__ import annotations

import pytest

from vtts.evaluate import PROSE, eval_packages_missing, evaluate, load_corpus, sample

HEAVY = ("numbers", "money", "dates", "units", "abbreviations", "roman", "web", "mixed")

pytestmark = pytest.mark.skipif(bool(eval_packages_missing()),
                                reason=f"needs the eval extra: {' '.join(eval_packages_missing())}")


@pytest.mark.timeout(900)
def test_frontend_halves_what_the_listener_gets_wrong() -> None:
    corpus = [s for s in sample(load_corpus(), 1) if s.category in HEAVY]
    corpus += [s for s in load_corpus() if s.category == PROSE][:4]
    assert len(corpus) == 12
    report = evaluate(corpus, progress=False)
    table = "\n" + "\n".join(f"{c.category}: {c.wer_without:.3f} -> {c.wer_with:.3f}" for c in report.categories)
    assert report.heavy.wer_without > 0.15, table  # the raw voice does misread these sentences
    assert report.heavy.wer_with <= 0.6 * report.heavy.wer_without, table
    assert report.prose is not None and report.prose.wer_with <= 0.1, table
