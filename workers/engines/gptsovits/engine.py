"""The GPT-SoVITS engine: few-shot voice cloning, every request in one batch whatever its voice.

A model directory holds ``gpt.ckpt`` (the text-to-semantic GPT), ``sovits.pth`` (the SoVITS v2 decoder),
``chinese-hubert-base/`` (HuBERT, for a voice's semantic prompt), optionally
``chinese-roberta-wwm-ext-large/`` (Chinese BERT features; without it Mandarin gets zero features), and
``voices/NAME.wav`` + ``voices/NAME.txt`` (built-in voices: a sample and its transcript; ``NAME.lang``
may give its language), and for a v2Pro / v2ProPlus ``sovits.pth`` the speaker model
``sv/pretrained_eres2netv2w24s4ep4.ckpt``. Options name other files (``gpt``, ``sovits``, ``hubert``, ``bert``,
``sv``: relative to the directory, or absolute; ``sv`` also a Hugging Face id from the local cache); only these
operator-configured files are read, checkpoints with the restricted unpickler of :mod:`.checkpoints`.

Per voice (built-in at load, custom ones in :meth:`voice_features`, cached by the worker): the sample's
semantic tokens (HuBERT → SoVITS quantizer), its style vector (spectrogram → style encoder, joined with the
sample's speaker embedding for v2Pro / v2ProPlus: :mod:`.speaker`) and the
phonemes and BERT features of its transcript. Per request: each sentence is one segment; a step prefills
new segments (voice transcript phonemes + sentence phonemes, then the voice's semantic tokens), decodes
every other running segment in one batched forward call, samples one token per request with its own
seeded generator (EOS masked for the first 11 tokens, as upstream), and, when a request has enough new
tokens, decodes its next audio chunk; the chunks of every request of the step go through SoVITS in one
call (:class:`ChunkStream`: left context, crossfade). KV caches count against ``kv_budget_tokens``;
a preempted request recomputes its cache from its tokens and continues exactly.
"""

from __future__ import annotations

import math
import re
import secrets
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vtts.protocol import FinishReason

from ...engine import (
    SAMPLING_KNOBS,
    Engine,
    EngineError,
    ModelLoadError,
    RequestContext,
    Sampling,
    Segment,
    StepOutput,
    SynthesisParams,
    VoiceInfo,
    WorkItem,
    check_option_names,
    sampling_from_extra,
)
from ..options import number
from . import speaker
from .checkpoints import CheckpointError, load_gpt, load_sovits
from .reference import HubertEncoder, ReferenceError, reference_features
from .sovits import ChunkStream, SoVITSDecoder
from .t2s import KVPool, RowSampling, T2SConfig, T2SModel, sample
from .text import LANGUAGES, ChineseBert, TextSide, split_by_script

SAMPLE_RATE = 32000
#: semantic tokens per second (25 Hz) and upstream's minimum before EOS may end a sentence
TOKENS_PER_SECOND = 25
MIN_TOKENS = 11
#: the crossfade between streamed chunks, in samples
OVERLAP = 640
DEFAULT_SAMPLING = Sampling(temperature=1.0, top_p=1.0, top_k=15, repetition_penalty=1.35)
OPTIONS: dict[str, Any] = {
    "gpt": "gpt.ckpt", "sovits": "sovits.pth", "hubert": "chinese-hubert-base", "bert": "chinese-roberta-wwm-ext-large",
    "sv": speaker.CHECKPOINT,
    "max_new_tokens": 1500, "kv_budget_tokens": 65536, "first_chunk_tokens": 12, "chunk_tokens": 24,
    "max_batch": 16, "threads": 1, "dtype": "float32", "max_phonemes": 400, "min_reference_s": 3.0,
    "max_reference_s": 10.0, "noise_scale": 0.0,
}
#: the numeric options' accepted ranges (integers where the default is one)
RANGES: dict[str, tuple[float, float]] = {
    "max_new_tokens": (1, 15000), "kv_budget_tokens": (1, 1 << 24), "first_chunk_tokens": (1, 1000),
    "chunk_tokens": (1, 1000), "max_batch": (1, 256), "threads": (0, 256), "max_phonemes": (1, 10000),
    "min_reference_s": (0.5, 60.0), "max_reference_s": (0.5, 60.0), "noise_scale": (0.0, 2.0),
}
EXTRA = SAMPLING_KNOBS
_SENTENCE = re.compile(r"(?<=[.!?。！？…])\s*")
_STOPS = ".!?。！？…,，;；:："
_EMPTY = np.zeros(0, np.float32)


class GPTSoVITSEngine(Engine):
    """See the module docstring."""

    name = "gpt-sovits"
    clones = True
    needs_transcript = True
    prepare_threads = 1

    def __init__(self, root: Path, device: str, options: dict[str, Any]) -> None:
        self.opt = options
        self.max_batch = int(options["max_batch"])
        self.device = torch.device(device)
        dtype = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
                 "bfloat16": torch.bfloat16}.get(options["dtype"])
        if dtype is None:
            raise ModelLoadError(f"gpt-sovits option dtype must be float32, float64, float16 or bfloat16, "
                                 f"not {options['dtype']!r}")
        self.dtype = dtype
        gpt = load_gpt(_inside(root, options["gpt"]))
        self.t2s = T2SModel(T2SConfig.from_checkpoint(gpt.config, gpt.weights), self.device, dtype)
        try:
            self.t2s.load_upstream(gpt.weights)
        except ValueError as exc:
            raise ModelLoadError(str(exc)) from exc
        sovits = load_sovits(_inside(root, options["sovits"]))
        decoder_dtype = torch.float32 if dtype == torch.float64 else dtype
        try:
            self.decoder = SoVITSDecoder.from_checkpoint(sovits, self.device, decoder_dtype)
        except ValueError as exc:
            raise ModelLoadError(str(exc)) from exc
        # v2Pro/v2ProPlus: the speaker-verification model whose embedding joins each voice's style
        self.speaker = None
        if self.decoder.needs_speaker_embedding:
            self.speaker = speaker.SpeakerEncoder.load(speaker.resolve(root, options["sv"]), self.device)
            if self.speaker.dim != self.decoder.cfg.sv_dim:
                raise ModelLoadError(f"the speaker model gives {self.speaker.dim}-value embeddings, the SoVITS "
                                     f"{sovits.version} model takes {self.decoder.cfg.sv_dim}: they do not belong "
                                     "together")
        self.hubert = HubertEncoder.load(str(_inside(root, options["hubert"], directory=True)), self.device,
                                         local_files_only=True)
        bert_dir = Path(options["bert"]) if Path(options["bert"]).is_absolute() else root / options["bert"]
        bert = ChineseBert(str(bert_dir), str(self.device)) if options["bert"] and bert_dir.is_dir() else None
        self.text = TextSide(bert)
        self.pool = KVPool(self.t2s)
        self._live: set[str] = set()
        self._lock = threading.Lock()  # voice features run on the prepare pool while steps run
        self._voices: dict[str, tuple[VoiceInfo, dict[str, Any]]] = {}
        for wav in sorted((root / "voices").glob("*.wav")) if (root / "voices").is_dir() else []:
            self._voices[wav.stem] = self._builtin_voice(wav)
        if not self._voices:
            raise ModelLoadError(f"{root} has no voices/NAME.wav with voices/NAME.txt: GPT-SoVITS needs at least one "
                                 "built-in reference voice (custom voices come on top)")

    # -- loading -------------------------------------------------------------------------------------
    @classmethod
    def load(cls, model_ref: str, device: str = "cpu", options: dict[str, Any] | None = None) -> GPTSoVITSEngine:
        options = dict(options or {})
        check_option_names("gpt-sovits", options, OPTIONS)
        merged = dict(OPTIONS)
        for name, value in options.items():
            if isinstance(OPTIONS[name], str):
                if not isinstance(value, str):
                    raise ModelLoadError(f"gpt-sovits option {name} must be a string, not {value!r}")
                merged[name] = value
            else:  # the same check as every engine's numbers: "NaN", inf, strings and out-of-range values fail
                lo, hi = RANGES[name]
                integer = isinstance(OPTIONS[name], int)
                checked = number("gpt-sovits", name, value, lo, hi, integer=integer)
                merged[name] = int(checked) if integer else checked
        if merged["min_reference_s"] > merged["max_reference_s"]:
            raise ModelLoadError("gpt-sovits option min_reference_s must not exceed max_reference_s")
        root = Path(model_ref)
        if not root.is_dir():
            raise ModelLoadError(f"gpt-sovits model {model_ref!r} is not a directory (see docs/gptsovits.md)")
        if merged["threads"]:
            torch.set_num_threads(int(merged["threads"]))
        try:
            return cls(root, device, merged)
        except CheckpointError:
            raise
        except (OSError, ReferenceError) as exc:
            raise ModelLoadError(f"gpt-sovits model {model_ref}: {exc}") from exc

    @classmethod
    def detect(cls, model_ref: str) -> bool:
        root = Path(model_ref)
        return root.is_dir() and (root / "gpt.ckpt").is_file() and (root / "sovits.pth").is_file()

    def _builtin_voice(self, wav: Path) -> tuple[VoiceInfo, dict[str, Any]]:
        import soundfile

        transcript_file = wav.with_suffix(".txt")
        if not transcript_file.is_file():
            raise ModelLoadError(f"voice {wav} has no transcript {transcript_file.name}")
        lang_file = wav.with_suffix(".lang")
        language = lang_file.read_text().strip() if lang_file.is_file() else ""
        audio, rate = soundfile.read(str(wav), dtype="float32", always_2d=False)
        try:
            feats = self.voice_features({"audio": audio, "sample_rate": rate, "language": language,
                                         "transcript": transcript_file.read_text().strip()})
        except EngineError as exc:
            raise ModelLoadError(f"voice {wav}: {exc.message}") from exc
        return VoiceInfo(wav.stem, _bcp47(feats["language"]), SAMPLE_RATE, "GPT-SoVITS reference voice"), feats

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    def voices(self) -> list[VoiceInfo]:
        return [info for info, _ in self._voices.values()]

    # -- bookkeeping the tests read ----------------------------------------------------------------------
    @property
    def live_requests(self) -> int:
        return len(self._live)

    @property
    def kv_tokens(self) -> int:
        return self.pool.tokens

    # -- voices and text -----------------------------------------------------------------------------------
    def voice_features(self, reference: dict[str, Any]) -> dict[str, Any]:
        """The sample's semantic tokens and style, its transcript's phonemes and BERT features."""
        transcript = (reference.get("transcript") or "").strip()
        if not transcript:
            raise EngineError("GPT-SoVITS needs the voice sample's transcript", "voice", "voice_transcript_required")
        audio = np.asarray(reference["audio"], np.float32)
        try:
            with self._lock:
                ref = reference_features(audio, int(reference["sample_rate"]), self.hubert, self.decoder,
                                         float(self.opt["min_reference_s"]), float(self.opt["max_reference_s"]),
                                         self.speaker)
        except ReferenceError as exc:
            raise EngineError(f"voice sample unusable for GPT-SoVITS: {exc}", "voice") from exc
        language = _language(reference.get("language"), transcript)
        if transcript[-1] not in _STOPS:
            transcript += "。" if language in ("zh", "ja", "yue") else "."  # upstream ends the prompt text with a stop
        phonemes = self.text.phonemes(transcript, language)
        if not phonemes.ids:
            raise EngineError("the voice sample's transcript has nothing to read", "voice")
        return {"codes": ref.prompt_codes.long(), "style": ref.style, "phones": phonemes.ids,
                "bert": torch.from_numpy(phonemes.bert), "language": language}

    def _voice(self, params: SynthesisParams) -> dict[str, Any]:
        if params.reference is not None:
            features = params.reference.get("features")
            if not isinstance(features, dict) or "codes" not in features:
                raise EngineError("custom voice has no GPT-SoVITS features", "voice")
            return features
        if params.voice not in self._voices:
            raise EngineError(f"unknown voice {params.voice!r}; this model has: {', '.join(self._voices)}",
                              "voice", "voice_not_found")
        return self._voices[params.voice][1]

    def prepare(self, text: str, params: SynthesisParams) -> list[Segment]:
        for name in params.extra:
            if name not in EXTRA:
                raise EngineError(f"unknown extra field {name!r} for gpt-sovits; known: {', '.join(EXTRA)}",
                                  param=f"extra.{name}")
        sampling_from_extra(params.extra, DEFAULT_SAMPLING)
        if not 0.25 <= params.speed <= 4.0:
            raise EngineError(f"speed must be between 0.25 and 4, got {params.speed}", "speed")
        voice = self._voice(params)
        if params.language and _language(params.language, "") != params.language.split("-")[0].lower() \
                and params.language.split("-")[0].lower() not in ("cmn", "zh"):
            raise EngineError(f"language {params.language!r} is not supported by gpt-sovits; supported: "
                              f"{', '.join(LANGUAGES)}", "language")
        language = _language(params.language, text)
        segments = []
        for sentence in _SENTENCE.split(text.strip()):
            if not sentence.strip():
                continue
            sentence = sentence.strip()
            spoken = sentence  # upstream ends every sentence with a stop before its G2P
            if spoken[-1] not in _STOPS:
                spoken += "。" if language in ("zh", "ja", "yue") else "."
            try:
                phonemes = self.text.phonemes(spoken, language)
            except ValueError as exc:
                raise EngineError(str(exc), "language") from exc
            if not phonemes.ids:
                continue
            if len(phonemes.ids) > int(self.opt["max_phonemes"]):
                raise EngineError(f"a sentence has {len(phonemes.ids)} phonemes, over this model's "
                                  f"{self.opt['max_phonemes']}; split it", "input")
            prefix = len(voice["phones"]) + len(voice["codes"]) + len(phonemes.ids)
            if prefix + int(self.opt["max_new_tokens"]) > int(self.opt["kv_budget_tokens"]):
                raise EngineError("a sentence is longer than this engine's KV-cache budget", "input")
            segments.append(Segment(sentence, {"ids": phonemes.ids, "bert": torch.from_numpy(phonemes.bert)},
                                    len(phonemes.ids)))
        if not segments:
            raise EngineError("input has nothing to speak", "input")
        return segments

    # -- budget ----------------------------------------------------------------------------------------
    def capacity(self) -> int:
        return int(self.opt["kv_budget_tokens"]) - self.pool.tokens

    def cost(self, item: WorkItem) -> int:
        ctx = _context(item)
        if ctx.id in self.pool:
            return 1
        voice = self._voice(item.params)
        out = ctx.state.get("out", ()) if ctx.state.get("index") == item.index else ()
        return len(voice["phones"]) + len(item.segment.tokens["ids"]) + len(voice["codes"]) + len(out) + 1

    def preempt(self, item: WorkItem) -> None:
        self.pool.drop(_context(item).id)  # tokens, sampler and stream stay: the next step rebuilds the cache

    def release(self, ctx: RequestContext, reason: FinishReason) -> None:
        self.pool.drop(ctx.id)
        self._live.discard(ctx.id)
        ctx.state.clear()

    # -- steps -------------------------------------------------------------------------------------------
    def step(self, items: list[WorkItem]) -> list[StepOutput]:
        ctxs = [_context(i) for i in items]
        voices = [self._voice(i.params) for i in items]
        for item, ctx, voice in zip(items, ctxs, voices, strict=True):
            self._start(item, ctx, voice)
        vocab = self.t2s.cfg.vocab
        logits = torch.empty(len(items), vocab, dtype=self.dtype, device=self.device)
        decode = [k for k, c in enumerate(ctxs) if c.id in self.pool]
        for k, (item, ctx, voice) in enumerate(zip(items, ctxs, voices, strict=True)):
            if ctx.id not in self.pool:
                logits[k] = self._prefill(item, ctx, voice)
        if decode:
            out = [ctxs[k].state["out"] for k in decode]
            positions = [len(voices[k]["codes"]) + len(o) - 1 for k, o in zip(decode, out, strict=True)]
            logits[decode] = self.pool.decode([ctxs[k].id for k in decode], [o[-1] for o in out], positions)
        picks, stops = sample(logits, [c.state["history"] for c in ctxs], [c.state["knobs"] for c in ctxs],
                              [c.state["generator"] for c in ctxs], self.t2s.cfg.eos,
                              [len(c.state["out"]) >= MIN_TOKENS for c in ctxs])
        finished = []
        for ctx, token, stop in zip(ctxs, picks, stops, strict=True):
            out = ctx.state["out"]
            if not stop:
                out.append(token)
                ctx.state["history"] = torch.cat([ctx.state["history"], torch.tensor([token])])
            done = stop or len(out) >= ctx.state["max_tokens"]
            if done:
                self.pool.drop(ctx.id)  # the segment is done: its cache goes now, not at release
            finished.append(done)
        return self._audio(items, ctxs, finished)

    def _start(self, item: WorkItem, ctx: RequestContext, voice: dict[str, Any]) -> None:
        if "generator" not in ctx.state:
            self._live.add(ctx.id)
            sampling = sampling_from_extra(item.params.extra, DEFAULT_SAMPLING)
            seed = secrets.randbits(63) if sampling.seed is None else sampling.seed
            ctx.state.update(generator=torch.Generator().manual_seed(seed), seed=seed, tokens_total=0,
                             knobs=RowSampling(sampling.temperature, sampling.top_p, sampling.top_k,
                                               sampling.repetition_penalty))
        if ctx.state.get("index") != item.index:  # a new segment: fresh cache, tokens and stream
            self.pool.drop(ctx.id)
            ctx.state["tokens_total"] += len(ctx.state.get("out", ()))
            limit = int(self.opt["max_new_tokens"])
            if item.params.max_audio_s:
                budget = math.ceil(item.params.max_audio_s * item.params.speed * TOKENS_PER_SECOND)
                limit = max(1, min(limit, budget - ctx.state["tokens_total"]))
            phones = torch.tensor(item.segment.tokens["ids"])
            # enough held-back codes to cover the crossfade at this speed (2 at speed 1)
            spc = self.decoder.samples_per_code
            holdback = max(2, math.ceil((self.decoder.cfg.hop + OVERLAP) * item.params.speed / spc))
            stream = self.decoder.stream(phones, voice["style"], speed=item.params.speed,
                                         noise_scale=float(self.opt["noise_scale"]), seed=ctx.state["seed"],
                                         holdback=holdback, context=max(24, holdback), overlap=OVERLAP)
            ctx.state.update(index=item.index, out=[], history=voice["codes"].clone(), stream=stream,
                             max_tokens=limit, chunks=0)

    def _prefill(self, item: WorkItem, ctx: RequestContext, voice: dict[str, Any]) -> torch.Tensor:
        dev = self.device
        phones = torch.tensor([*voice["phones"], *item.segment.tokens["ids"]], device=dev)
        bert = torch.cat([voice["bert"], item.segment.tokens["bert"]], dim=1).to(dev)
        semantic = torch.cat([voice["codes"], torch.tensor(ctx.state["out"], dtype=torch.long)]).to(dev)
        return self.pool.prefill(ctx.id, phones, bert, semantic)

    def _audio(self, items: list[WorkItem], ctxs: list[RequestContext], finished: list[bool]) -> list[StepOutput]:
        """Each request's next audio chunk when it has enough new tokens (or finished); every chunk of the
        step decoded by SoVITS in one call."""
        pending = []
        for k, (ctx, done) in enumerate(zip(ctxs, finished, strict=True)):
            stream: ChunkStream = ctx.state["stream"]
            out = ctx.state["out"]
            need = int(self.opt["first_chunk_tokens"] if ctx.state["chunks"] == 0 else self.opt["chunk_tokens"])
            if not out or (not done and len(out) - stream.done < need + stream.holdback):
                continue
            chunk = stream.item(torch.tensor(out), done)
            if chunk is not None:
                pending.append((k, chunk))
        wavs = self.decoder.decode([chunk for _, chunk in pending]) if pending else []
        audio: dict[int, np.ndarray] = {}
        emitted: dict[int, int] = {}
        for (k, _), wav in zip(pending, wavs, strict=True):
            stream = ctxs[k].state["stream"]
            before = stream.done
            audio[k] = np.clip(stream.accept(wav), -1.0, 1.0).astype(np.float32, copy=False)
            emitted[k] = stream.done - before
            ctxs[k].state["chunks"] += 1
        return [StepOutput(item, audio.get(k, _EMPTY), finished[k], tokens=emitted.get(k, 0))
                for k, item in enumerate(items)]


def _inside(root: Path, name: str, directory: bool = False) -> Path:
    """An operator-configured file of the model (relative to its directory, or absolute)."""
    path = Path(name) if Path(name).is_absolute() else root / name
    if not (path.is_dir() if directory else path.is_file()):
        raise ModelLoadError(f"gpt-sovits model file not found: {path}")
    return path


def _language(tag: str | None, text: str) -> str:
    """A request's or voice's language as zh/en/ja/ko/yue: the tag when supported, else the text's script
    (which never gives Cantonese: it is asked for as ``yue``, ``zh-yue`` or ``zh-HK``)."""
    base = (tag or "").split("-")[0].lower()
    if base == "zh" and (tag or "").lower().replace("_", "-") in ("zh-yue", "zh-hk"):
        base = "yue"
    if base == "cmn":
        base = "zh"
    if base in LANGUAGES:
        return base
    runs = split_by_script(text, "en")
    return next((lang for lang, _ in runs if lang != "en"), "en")


def _bcp47(language: str) -> str:
    return {"zh": "zh-CN", "en": "en-US", "ja": "ja-JP", "ko": "ko-KR", "yue": "yue-HK"}.get(language, language)


def _context(item: WorkItem) -> RequestContext:
    """The item's request context; an item made by hand (no scheduler) gets one of its own."""
    if item.context is None:
        item.context = RequestContext(item.request_id, item.params, [item.segment])
    return item.context
