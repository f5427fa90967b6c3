"""The CosyVoice3 engine: Qwen2 speech-token LM → flow-matching decoder → causal HiFT vocoder, many requests
per step, each streamed with its own state.

One ``step`` runs, for every item in it: one LM decoding step (all items in one ragged forward call, each with
its own KV cache and sampler: :mod:`.lm`); then, for the items whose next chunk is due, one batched flow call
(:mod:`.flow`, chunk-causal, caching each request's past so a chunk costs only its new frames) and one batched
vocoder call (:mod:`.hift`, streaming convolutions). A chunk is due once the LM has made its hop of tokens
plus the flow's 3 look-ahead tokens: 25 tokens first (1 s of audio), then hops growing by ``hop_scale`` up to
``max_hop_tokens`` (fewer, larger flow calls once the listener has a buffer); the last chunk when the LM stops.
All of that state lives in the request's context, never on the model, so requests never share a schedule.

Modes, from the request (prompt formats in :mod:`.text`):

* a custom voice with a transcript → zero-shot cloning (the LM continues the sample's speech tokens);
* a custom voice without one → cross-lingual (the LM gets no prompt; the flow decoder still clones the voice);
* ``instructions`` → instruct mode (the instruction is the LM's prompt text; the voice's tokens are not);
* a built-in speaker of ``spk2info.pt`` → zero-shot with its stored prompt.

KV budget: :meth:`capacity` is ``kv_budget_tokens`` less the LM tokens cached by live requests; :meth:`cost` is
what an item's next step adds; :meth:`preempt` drops an LM cache (the next step recomputes it, same tokens,
same sampler); :meth:`release` frees everything on every exit. The flow decoder's per-request cache is bounded
by the utterance (``flow_left_frames`` bounds it further, at some cost in exactness) and freed with the
request.

Options (model entry): ``allow_download``, ``revision``, ``dtype`` (float32, bfloat16, float16), ``max_batch``,
``kv_budget_tokens``, ``first_hop_tokens``, ``max_hop_tokens``, ``hop_scale``, ``max_segment_tokens`` (speech
tokens one text segment may make: 25 a second), ``max_chars``, ``first_max_chars``, ``streaming`` (false:
each segment is decoded whole, as upstream's non-streamed mode), ``flow_left_frames`` (0 = all),
``threads``, ``language``, and the text frontend's options. Request ``extra``: ``seed``, ``top_p``, ``top_k``
(the LM's repetition-aware sampling has no temperature or repetition penalty) and the text frontend's fields.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vtts.protocol import FinishReason

from ...engine import (
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
from ...text.pipeline import TEXT_OPTIONS, TextFrontend
from ..options import number
from . import files

#: what Fun-CosyVoice3 reads (its model card): a request without ``language`` is detected among these
LANGUAGES = ("zh", "en", "ja", "ko", "de", "es", "fr", "it", "ru")

if TYPE_CHECKING:
    import torch

    from .flow import CosyVoice3Flow, FlowPrompt, FlowStream
    from .hift import CosyVoice3Vocoder, VocoderState
    from .lm import CosyVoice3LM, LMRequest, LMSampling
    from .reference import ReferenceEncoder
    from .text import Tokenizer

log = logging.getLogger(__name__)

SAMPLE_RATE = 24000
TOKENS_PER_SECOND = 25
LANGUAGES = ("zh", "en", "ja", "ko", "de", "es", "fr", "it", "ru")
EXTRA = ("seed", "top_p", "top_k", *TEXT_OPTIONS)
MAX_INSTRUCTION_CHARS = 300
MAX_TRANSCRIPT_CHARS = 600
#: speech tokens of silence and breath in CosyVoice3's tokenizer (upstream's list): past MAX_SILENT_RUN of them
#: in a row, the LM's further ones are kept from the flow decoder (the LM still reads them), as upstream does
SILENT_TOKENS = frozenset({1, 2, 28, 29, 55, 248, 494, 2241, 2242, 2322, 2323})
MAX_SILENT_RUN = 5


@dataclass(frozen=True)
class Settings:
    """The model entry's options; every one has a default."""

    allow_download: bool = False
    revision: str = ""
    dtype: str = "float32"
    max_batch: int = 16
    kv_budget_tokens: int = 65536
    first_hop_tokens: int = 25
    max_hop_tokens: int = 100
    hop_scale: int = 2
    max_segment_tokens: int = 1500
    max_chars: int = 200
    first_max_chars: int = 60
    streaming: bool = True
    flow_left_frames: int = 0
    threads: int = 1
    language: str = "en"

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Settings:
        fields = cls.__dataclass_fields__
        check_option_names("cosyvoice3", options, [*fields, *TEXT_OPTIONS])
        values: dict[str, Any] = {}
        for name, value in options.items():
            if name in TEXT_OPTIONS:
                continue
            default = fields[name].default
            if isinstance(default, bool) or isinstance(default, str):
                if type(value) is not type(default):
                    raise ModelLoadError(f"cosyvoice3 option {name} must be {type(default).__name__}, not {value!r}")
                values[name] = value
            else:
                values[name] = int(number("cosyvoice3", name, value, *RANGES[name], integer=True))
        settings = cls(**values)
        if settings.dtype not in ("float32", "bfloat16", "float16"):
            raise ModelLoadError("cosyvoice3 option dtype must be float32, bfloat16 or float16")
        if settings.first_hop_tokens > settings.max_hop_tokens:
            raise ModelLoadError("cosyvoice3 option first_hop_tokens must not exceed max_hop_tokens")
        return settings


RANGES = {"max_batch": (1, 256), "kv_budget_tokens": (256, 1 << 24), "first_hop_tokens": (1, 1000),
          "max_hop_tokens": (1, 1000), "hop_scale": (1, 8), "max_segment_tokens": (25, 7500),
          "max_chars": (20, 2000), "first_max_chars": (0, 2000), "flow_left_frames": (0, 15000), "threads": (0, 256)}


@dataclass(frozen=True)
class Plan:
    """What ``prepare`` decided for one segment: the LM's prompt text, its text and its prompt speech tokens
    (ids), and the bound on the tokens it may make."""

    prompt_text: list[int]
    text: list[int]
    prompt_speech: list[int]
    max_tokens: int


@dataclass(frozen=True)
class Voice:
    """A voice's flow-side prompt: speech tokens [N], mel [2N, 80], speaker vector [192]; and, for built-in
    speakers, the zero-shot prompt text ids stored with it."""

    tokens: np.ndarray
    mel: np.ndarray
    embedding: np.ndarray
    prompt_text: list[int] = field(default_factory=list)


@dataclass
class SilenceFilter:
    """Upstream's cap on runs of silent tokens, one LM request's worth: :meth:`feed` takes the LM's tokens as
    they come and returns those the flow decoder gets."""

    run: int = 0
    seen: int = 0

    def feed(self, tokens: list[int]) -> list[int]:
        """The tokens of ``tokens[self.seen:]`` (the LM's whole list so far) that are heard."""
        out = []
        for token in tokens[self.seen:]:
            if token in SILENT_TOKENS:
                self.run += 1
                if self.run > MAX_SILENT_RUN:
                    continue
            else:
                self.run = 0
            out.append(token)
        self.seen = len(tokens)
        return out


@dataclass(eq=False)
class _Seg:
    """One segment in flight: the LM request, the flow and vocoder streams, and this request's own hop
    schedule."""

    index: int
    lm: LMRequest
    flow: FlowStream | None
    vocoder: VocoderState
    hop: int
    streaming: bool
    speed: float
    fed: int = 0  # heard tokens handed to the flow decoder
    sent_tokens: int = 0  # heard tokens whose audio has gone out (usage counts)
    heard: list[int] = field(default_factory=list)  # the LM's tokens the flow decoder gets
    silence: SilenceFilter = field(default_factory=SilenceFilter)


class CosyVoice3Engine(Engine):
    """See the module docstring."""

    name = "cosyvoice3"
    clones = True
    needs_transcript = False
    #: CAM++ (``campplus.onnx``) embeds speakers: the server verifies custom voices with it
    verifies_speakers = True
    prepare_threads = 1

    def __init__(self, settings: Settings, lm: CosyVoice3LM, flow: CosyVoice3Flow, vocoder: CosyVoice3Vocoder,
                 encoder: ReferenceEncoder, tokenizer: Tokenizer, speakers: dict[str, Voice],
                 sampling: LMSampling, text: TextFrontend, origin: str = "") -> None:
        self.settings = settings
        self.max_batch = settings.max_batch
        self.lm, self.flow, self.vocoder = lm, flow, vocoder
        self.encoder, self.tokenizer = encoder, tokenizer
        self.speakers = speakers
        self.sampling = sampling
        self.text_frontend = text
        self.origin = origin
        self._live: dict[str, _Seg] = {}  # request id -> its segment in flight
        self._prompts: dict[str, FlowPrompt] = {}  # request id -> its voice's flow prompt
        #: LM forward calls made (tests check a batch decodes in one)
        self.lm_calls = 0

    # ------------------------------------------------------------------ loading

    @classmethod
    def detect(cls, model_ref: str) -> bool:
        path = Path(model_ref).expanduser()
        return files.looks_like_model(path) if path.is_dir() else files.is_hub_id(model_ref)

    @classmethod
    def load(cls, model_ref: str, device: str = "cpu", options: dict[str, Any] | None = None) -> CosyVoice3Engine:
        import torch

        from .flow import CosyVoice3Flow
        from .hift import CosyVoice3Vocoder
        from .lm import CosyVoice3LM, LMSampling
        from .reference import ReferenceEncoder
        from .text import Tokenizer

        options = dict(options or {})
        settings = Settings.from_options(options)
        try:
            text = TextFrontend.from_options({k: v for k, v in options.items() if k in TEXT_OPTIONS},
                                             settings.language, multilingual=True, languages=LANGUAGES,
                                             phonemes=False,
                                             max_chars=settings.max_chars, first_max_chars=settings.first_max_chars)
        except ValueError as exc:
            raise ModelLoadError(f"bad cosyvoice3 option: {exc}") from exc
        if settings.threads:
            torch.set_num_threads(settings.threads)
        found = files.resolve(model_ref, {"revision": settings.revision, "allow_download": settings.allow_download})
        cfg = files.read_config(found)
        dtype = getattr(torch, settings.dtype)
        try:
            chunk_frames = int(cfg.get("chunk_size", 25)) * int(cfg.get("token_mel_ratio", 2))
            ras = (cfg.get("llm") or {}).get("sampling") or {}
            sampling = LMSampling(top_p=float(ras.get("top_p", 0.8)), top_k=int(ras.get("top_k", 25)),
                                  window=int(ras.get("win_size", 10)), tau=float(ras.get("tau_r", 0.1)))
            lm = CosyVoice3LM.load(found.path("llm.pt"), found.qwen, device=device, dtype=dtype)
            flow = CosyVoice3Flow.load(found.path("flow.pt"), device=device, dtype=dtype, chunk_frames=chunk_frames,
                                       left_frames=settings.flow_left_frames or None)
            vocoder = CosyVoice3Vocoder.load(found.path("hift.pt"), device=device, dtype=dtype)
        except (ValueError, KeyError, TypeError, RuntimeError, OSError) as exc:
            raise ModelLoadError(f"cannot load the CosyVoice3 model at {found.origin}: {exc}") from exc
        encoder = ReferenceEncoder(found.path("campplus.onnx"), found.path("speech_tokenizer_v3.onnx"))
        speakers = _load_speakers(found.speakers) if found.speakers else {}
        log.info("CosyVoice3 from %s on %s (%s): %d built-in speakers", found.origin, device, settings.dtype,
                 len(speakers))
        return cls(settings, lm, flow, vocoder, encoder, Tokenizer(), speakers, sampling, text, found.origin)

    # ------------------------------------------------------------------ what the worker reads

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo(name, self.settings.language, SAMPLE_RATE, "CosyVoice3 built-in speaker")
                for name in self.speakers]

    @property
    def live_requests(self) -> int:
        return len(self._live)

    @property
    def kv_tokens(self) -> int:
        """LM tokens cached by live requests (what the budget counts)."""
        return sum(seg.lm.kv_tokens for seg in self._live.values())

    @property
    def flow_kv_bytes(self) -> int:
        return sum(seg.flow.kv_bytes for seg in self._live.values() if seg.flow is not None)

    def voice_features(self, reference: dict[str, Any]) -> Any:
        prompt = self.encoder.encode(reference["audio"], int(reference.get("sample_rate") or 0))
        return prompt.as_dict()

    def speaker_embedding(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        return self.encoder.speaker_embedding(audio, sample_rate)

    # ------------------------------------------------------------------ prepare

    def prepare(self, text: str, params: SynthesisParams) -> list[Segment]:
        for name in params.extra:
            if name not in EXTRA:
                raise EngineError(f"unknown extra field {name!r} for cosyvoice3; known: {', '.join(EXTRA)}",
                                  param=f"extra.{name}")
        self._lm_sampling(params, 1)  # 400 now rather than mid-stream
        if params.speed != 1.0 and not 0.5 <= params.speed <= 2.0:
            raise EngineError("speed must be between 0.5 and 2.0 for cosyvoice3", param="speed")
        voice = self._voice(params)
        prompt_text: list[int] = []
        prompt_speech: list[int] = []
        cross_lingual = False
        from .text import cross_lingual_text, instruct_prompt, zero_shot_prompt

        if params.instructions and params.instructions.strip():
            if len(params.instructions) > MAX_INSTRUCTION_CHARS:
                raise EngineError(f"instructions are limited to {MAX_INSTRUCTION_CHARS} characters for cosyvoice3",
                                  param="instructions")
            prompt_text = self.tokenizer.encode(instruct_prompt(params.instructions))
        elif params.reference is not None:
            transcript = (params.reference.get("transcript") or "").strip()
            if transcript:
                if len(transcript) > MAX_TRANSCRIPT_CHARS:
                    raise EngineError("the voice's transcript is too long for cosyvoice3", param="voice")
                prompt_text = self.tokenizer.encode(zero_shot_prompt(self._spoken(transcript, params.reference)))
                prompt_speech = voice.tokens.tolist()
            else:
                cross_lingual = True
        elif voice.prompt_text:
            prompt_text = list(voice.prompt_text)
            prompt_speech = voice.tokens.tolist()
        else:
            cross_lingual = True
        lang = params.language or None
        text_extra = {k: v for k, v in params.extra.items() if k in TEXT_OPTIONS}
        cap = self.settings.max_segment_tokens
        if params.max_audio_s:
            cap = max(1, min(cap, int(params.max_audio_s * TOKENS_PER_SECOND)))
        segments: list[Segment] = []
        for chunk in self.text_frontend.process(text, language=lang, extra=text_extra, speed=params.speed,
                                                max_audio_s=params.max_audio_s):
            words = chunk.text.strip()
            if not any(c.isalnum() for c in words):
                continue
            ids = self.tokenizer.encode(cross_lingual_text(words) if cross_lingual else words)
            if len(prompt_text) + len(ids) + len(prompt_speech) + cap + 2 > self.settings.kv_budget_tokens:
                raise EngineError("a sentence and its voice prompt exceed this model's KV-cache budget",
                                  param="input")
            segments.append(Segment(words, Plan(prompt_text, ids, prompt_speech, cap), len(ids)))
        if not segments:
            raise EngineError("input has nothing to speak", param="input")
        return segments

    def _spoken(self, transcript: str, reference: dict[str, Any]) -> str:
        """The transcript normalized as the text to speak is (upstream normalizes its prompt text too), so
        the LM sees both written alike; the transcript as written when the frontend refuses it."""
        try:
            segments = self.text_frontend.process(transcript, language=reference.get("language") or None,
                                                  max_chars=MAX_TRANSCRIPT_CHARS * 4, first_max_chars=0)
        except EngineError:
            return transcript
        return " ".join(s.text.strip() for s in segments if s.text.strip()) or transcript

    def _voice(self, params: SynthesisParams) -> Voice:
        if params.reference is not None:
            features = params.reference.get("features")
            if not isinstance(features, dict) or "tokens" not in features:
                raise EngineError("the custom voice has no CosyVoice3 features", param="voice")
            return Voice(np.asarray(features["tokens"]), np.asarray(features["mel"]),
                         np.asarray(features["embedding"]))
        voice = self.speakers.get(params.voice)
        if voice is None:
            known = ", ".join(self.speakers) or "none: use a custom voice"
            raise EngineError(f"unknown voice {params.voice!r} for cosyvoice3; built-in speakers: {known}",
                              param="voice", code="voice_not_found")
        return voice

    def _lm_sampling(self, params: SynthesisParams, max_tokens: int) -> LMSampling:
        from .lm import LMSampling

        default = Sampling(top_p=self.sampling.top_p, top_k=self.sampling.top_k)
        knobs = sampling_from_extra({k: v for k, v in params.extra.items() if k in ("seed", "top_p", "top_k")},
                                    default)
        if knobs.top_p <= 0 or knobs.top_k < 1:
            raise EngineError("extra.top_p must be above 0 and extra.top_k at least 1 for cosyvoice3",
                              param="extra.top_p" if knobs.top_p <= 0 else "extra.top_k")
        return LMSampling(top_p=knobs.top_p, top_k=knobs.top_k, window=self.sampling.window, tau=self.sampling.tau,
                          min_token_text_ratio=self.sampling.min_token_text_ratio,
                          max_token_text_ratio=self.sampling.max_token_text_ratio, max_tokens=max_tokens)

    # ------------------------------------------------------------------ budget

    def capacity(self) -> int:
        return self.settings.kv_budget_tokens - self.kv_tokens

    def cost(self, item: WorkItem) -> int:
        seg = self._live.get(_context(item).id)
        if seg is None or seg.index != item.index:
            plan: Plan = item.segment.tokens
            return 2 + len(plan.prompt_text) + len(plan.text) + len(plan.prompt_speech)
        return 0 if seg.lm.finished else seg.lm.next_cost

    def preempt(self, item: WorkItem) -> None:
        seg = self._live.get(_context(item).id)
        if seg is not None:
            seg.lm.drop_cache()

    def release(self, ctx: RequestContext, reason: FinishReason) -> None:
        seg = self._live.pop(ctx.id, None)
        if seg is not None:
            self._drop(seg)
        self._prompts.pop(ctx.id, None)
        ctx.state.clear()

    # ------------------------------------------------------------------ step

    def step(self, items: list[WorkItem]) -> list[StepOutput]:
        outputs: dict[int, StepOutput] = {}
        segs: dict[int, _Seg] = {}
        for k, item in enumerate(items):
            try:
                segs[k] = self._segment(item)
            except (EngineError, ValueError) as exc:
                err = exc if isinstance(exc, EngineError) else EngineError(str(exc), param="input")
                outputs[k] = StepOutput(item, _EMPTY, True, error=err)
        decoding = [k for k in segs if not segs[k].lm.finished]
        if decoding:
            self.lm_calls += 1
            self.lm.step([segs[k].lm for k in decoding])
            for k in decoding:
                segs[k].heard.extend(segs[k].silence.feed(segs[k].lm.tokens))
        audio = self._token2wav(segs, items)
        for k, seg in segs.items():
            finished = seg.lm.finished and (seg.flow is None or seg.flow.finished or not seg.streaming)
            wav = audio.get(k, _EMPTY)
            emitted = 0
            if wav.size or finished:  # the tokens whose audio this output carries (look-ahead ones wait)
                done = seg.fed if finished or not seg.streaming else max(0, seg.fed - self.flow.dims.lookahead)
                emitted = done - seg.sent_tokens
                seg.sent_tokens = done
            if finished:
                self._finish_segment(items[k], seg)
            outputs[k] = StepOutput(items[k], np.asarray(wav, np.float32), finished, tokens=max(emitted, 0))
        return [outputs[k] for k in range(len(items))]

    def _segment(self, item: WorkItem) -> _Seg:
        """The item's segment state, started on its first step."""
        ctx = _context(item)
        seg = self._live.get(ctx.id)
        if seg is not None and seg.index == item.index:
            return seg
        if seg is not None:
            self._drop(seg)
        plan: Plan = item.segment.tokens
        params = item.params
        if "seed" not in ctx.state:
            seed = params.extra.get("seed")
            ctx.state["seed"] = secrets.randbits(62) if seed is None else int(seed)
        prompt = self._prompts.get(ctx.id)
        if prompt is None:
            voice = self._voice(params)
            prompt = self.flow.prompt(_tensor(voice.tokens), _tensor(voice.mel), _tensor(voice.embedding))
            self._prompts[ctx.id] = prompt
        sampling = self._lm_sampling(params, plan.max_tokens)
        seed = (ctx.state["seed"] + 7919 * item.index) % (1 << 63)
        request = self.lm.start(plan.prompt_text, plan.text, plan.prompt_speech, sampling=sampling, seed=seed)
        streaming = self.settings.streaming and params.speed == 1.0
        seg = _Seg(item.index, request, self.flow.start(prompt) if streaming else None, self.vocoder.new_stream(),
                   self.settings.first_hop_tokens, streaming, params.speed)
        self._live[ctx.id] = seg
        ctx.state["segment"] = item.index
        return seg

    def _due(self, seg: _Seg) -> tuple[Any, bool] | None:
        """(new tokens, finalize) when this segment's next flow chunk is due, else None."""
        import torch

        tokens = seg.heard
        if seg.lm.finished:
            new = tokens[seg.fed:]
            seg.fed = len(tokens)
            return torch.tensor(new, dtype=torch.long), True
        need = seg.hop + (self.flow.dims.lookahead if seg.fed == 0 else 0)
        if len(tokens) - seg.fed < need:
            return None
        new = tokens[seg.fed:seg.fed + need]
        seg.fed += need
        seg.hop = min(self.settings.max_hop_tokens, seg.hop * self.settings.hop_scale)
        return torch.tensor(new, dtype=torch.long), False

    def _token2wav(self, segs: dict[int, _Seg], items: list[WorkItem]) -> dict[int, np.ndarray]:
        """The flow decoder and the vocoder, one batched call each, for every segment with audio due: a
        streamed segment's next chunk, or a whole segment (non-streamed, or ``speed`` != 1: upstream's offline
        decode, the mel stretched by the speed) once its LM has finished."""
        import torch
        import torch.nn.functional as F

        batch: list[Any] = []
        keys: list[tuple[int, bool]] = []
        for k, seg in segs.items():
            if seg.streaming:
                due = self._due(seg)
                if due is not None:
                    batch.append((seg.flow, *due))
                    keys.append((k, due[1]))
            elif seg.lm.finished:
                prompt = self._prompts[_context(items[k]).id]
                batch.append((prompt, torch.tensor(seg.heard, dtype=torch.long)))
                keys.append((k, True))
                seg.fed = len(seg.heard)
        if not batch:
            return {}
        voc, owners = [], []
        for (k, final), mel in zip(keys, self.flow.decode(batch), strict=True):
            seg = segs[k]
            if not seg.streaming and seg.speed != 1.0 and mel.shape[1]:
                size = max(1, int(mel.shape[1] / seg.speed))
                mel = F.interpolate(mel[None].float(), size=size, mode="linear")[0].to(mel.dtype)
            if mel.shape[1] or final:
                voc.append((seg.vocoder, mel, final))
                owners.append(k)
        return dict(zip(owners, self.vocoder.vocode(voc), strict=True)) if voc else {}

    def _finish_segment(self, item: WorkItem, seg: _Seg) -> None:
        """The segment is done: its LM request and streams go now, not at release."""
        self._drop(seg)
        ctx = _context(item)
        if self._live.get(ctx.id) is seg:
            del self._live[ctx.id]

    def _drop(self, seg: _Seg) -> None:
        """Free a segment's LM cache and flow cache now."""
        seg.lm.release()
        if seg.flow is not None and not seg.flow.finished:
            self.flow.release(seg.flow)
        seg.flow = None


_EMPTY = np.zeros(0, np.float32)


def _tensor(array: np.ndarray) -> torch.Tensor:
    import torch

    return torch.from_numpy(np.ascontiguousarray(array))


def _context(item: WorkItem) -> RequestContext:
    """The item's request context; an item made by hand (no scheduler) gets one of its own."""
    if item.context is None:
        item.context = RequestContext(item.request_id, item.params, [item.segment])
    return item.context


def _load_speakers(path: Path) -> dict[str, Voice]:
    """Built-in speakers of ``spk2info.pt`` in upstream's zero-shot layout (``flow_prompt_speech_token``,
    ``prompt_speech_feat``, ``flow_embedding``, ``prompt_text``); entries without a prompt are skipped: the
    CosyVoice3 flow decoder needs one."""
    import torch

    try:
        raw = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickle torch refuses, a truncated file
        raise ModelLoadError(f"cannot read {path}: {exc}") from exc
    speakers: dict[str, Voice] = {}
    for name, entry in (raw or {}).items():
        try:
            tokens = entry["flow_prompt_speech_token"].reshape(-1).long().numpy()
            mel = entry["prompt_speech_feat"].reshape(-1, 80).float().numpy()
            embedding = entry["flow_embedding"].reshape(-1).float().numpy()
            prompt_text = entry["prompt_text"].reshape(-1).tolist() if "prompt_text" in entry else []
        except (KeyError, AttributeError, RuntimeError):
            log.warning("%s: speaker %r has no zero-shot prompt; skipped", path, name)
            continue
        n = min(tokens.size, mel.shape[0] // 2)
        speakers[str(name)] = Voice(tokens[:n], mel[:2 * n], embedding, prompt_text)
    return speakers
