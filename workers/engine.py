"""The engine contract every model family implements.

An engine turns prepared text segments into audio. Two shapes fit the same runtime:

* single-pass models (Piper, Kokoro): one ``step`` turns each item's segment into its whole waveform;
* iterative models (Supertonic steps, autoregressive LMs): items keep state across ``step`` calls and may
  emit several chunks before they finish.

The scheduler decides which items run in each ``step``; the engine never sees queues or sockets. What an
autoregressive engine needs on top (docs/engines.md walks through it):

* a :class:`RequestContext` per request, alive from admission to release: its segments, its cursor and
  ``state``, the engine's own per-request memory (KV cache, sampler, voice features);
* :meth:`Engine.release`, called exactly once per request on every exit (finished, cancelled, expired,
  failed, drained, worker stopping), so whatever ``state`` holds outside Python's reach is freed;
* :meth:`Engine.capacity` / :meth:`Engine.cost` / :meth:`Engine.preempt`: a budget the scheduler admits by,
  and a way to give a running request's memory back when the budget runs out (it resumes later);
* typed :class:`StepOutput`: audio, finished, word timestamps, tokens emitted, and a per-item error.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from vtts.protocol import FinishReason

if TYPE_CHECKING:
    from .text.pipeline import TextFrontend


class EngineError(Exception):
    """A problem with a request an engine cannot serve (unknown voice, bad extra...): the client's fault."""

    def __init__(self, message: str, param: str | None = None, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class ModelLoadError(Exception):
    """The model reference cannot be loaded (missing files, wrong layout); the message says what and where."""


def check_option_names(engine: str, options: Iterable[str], known: Iterable[str]) -> None:
    """ModelLoadError naming the first option an engine does not know, with the known ones: a typo in a
    model entry's ``options`` fails the load instead of passing silently."""
    known = set(known)
    unknown = sorted(set(options) - known)
    if unknown:
        raise ModelLoadError(f"unknown {engine} option {unknown[0]!r} (known: {', '.join(sorted(known))})")


@dataclass(frozen=True)
class VoiceInfo:
    """A voice an engine offers; ``language`` is a BCP-47-ish code such as ``en-US``."""

    id: str
    language: str
    sample_rate: int
    description: str = ""


@dataclass(frozen=True)
class SynthesisParams:
    """Per-request knobs. ``None`` means the voice's own default (piper1's convention). ``extra`` holds the
    engine-specific ones, sampling included (see :func:`sampling_from_extra`); an engine refuses a name it
    does not know."""

    voice: str
    speed: float = 1.0
    language: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: the longest audio the request may produce, in seconds (0 = unbounded)
    max_audio_s: float = 0.0
    #: OpenAI's ``instructions`` (style, tone); an engine without them ignores them, as OpenAI's tts-1 does
    instructions: str | None = None
    #: a custom voice (engines with ``clones``): ``id``, ``version``, ``audio`` (float32 mono),
    #: ``sample_rate``, ``transcript``, ``language`` and ``features`` (what :meth:`Engine.voice_features`
    #: returned, cached per voice by the worker); None = one of the engine's own voices
    reference: dict[str, Any] | None = None


#: the sampling knobs an LM engine reads from ``extra``
SAMPLING_KNOBS = ("seed", "temperature", "top_p", "top_k", "repetition_penalty")


@dataclass(frozen=True)
class Sampling:
    """How an autoregressive engine picks its next token. ``seed`` None = a fresh random seed."""

    seed: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0


def sampling_from_extra(extra: dict[str, Any], default: Sampling | None = None) -> Sampling:
    """The sampling knobs of ``extra`` over ``default``, validated: EngineError naming ``extra.<knob>`` for a
    wrong type or range. Other names in ``extra`` are the engine's to check."""
    default = default or Sampling()

    def number(name: str, lo: float, hi: float, integer: bool = False) -> Any:
        value = extra.get(name, getattr(default, name))
        if value is None and name == "seed":
            return None
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok or not lo <= value <= hi:
            kind = "an integer" if integer else "a number"
            raise EngineError(f"extra.{name} must be {kind} between {lo:g} and {hi:g}, got {value!r}",
                              param=f"extra.{name}")
        return value

    return Sampling(seed=number("seed", 0, 2**63 - 1, integer=True), temperature=float(number("temperature", 0, 10)),
                    top_p=float(number("top_p", 0, 1)), top_k=number("top_k", 0, 1 << 20, integer=True),
                    repetition_penalty=float(number("repetition_penalty", 0.01, 10)))


@dataclass
class Segment:
    """One piece of a request's text, ready for the engine: ``tokens`` is whatever the engine consumes
    (phoneme ids, unicode ids, ...); ``num_tokens`` feeds the usage counts."""

    text: str
    tokens: Any
    num_tokens: int


@dataclass(eq=False)
class RequestContext:
    """A request inside a worker, from admission to :meth:`Engine.release`. ``cursor`` is the index of the
    next segment to start; ``state`` is the engine's own memory across the request's segments and steps
    (KV cache, sampler, voice features): keep there whatever ``release`` must free."""

    id: str
    params: SynthesisParams
    segments: list[Segment]
    cursor: int = 0
    state: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=False)
class WorkItem:
    """A segment while the engine works on it. ``state`` is the engine's own per-item memory across
    steps (empty for single-pass engines); ``context`` is the request it belongs to (None when an item is
    made by hand, outside a scheduler)."""

    request_id: str
    index: int
    segment: Segment
    params: SynthesisParams
    state: dict[str, Any] = field(default_factory=dict)
    context: RequestContext | None = None


@dataclass
class StepOutput:
    """What one ``step`` produced for one item: float32 mono PCM at the engine's rate (possibly empty),
    whether the item is finished, word ``timestamps`` of this chunk (``{"word", "start", "end"}``, seconds
    from the chunk's start), how many ``tokens`` it emitted (an LM's speech tokens; 0 = count audio
    frames), and ``error``: this item failed (the others of the batch go on)."""

    item: WorkItem
    audio: np.ndarray
    finished: bool
    timestamps: list[dict[str, Any]] = field(default_factory=list)
    tokens: int = 0
    error: Exception | None = None


class Engine(ABC):
    """Base class of every engine. Subclasses are constructed by :meth:`load` inside a worker process."""

    #: registry id, e.g. "piper"
    name: str = ""
    #: how many items one ``step`` may take on this device (measured, per engine and device)
    max_batch: int = 1
    #: threads the worker runs ``prepare`` on, beside the step thread; more than 1 only when ``prepare``
    #: is thread-safe
    prepare_threads: int = 1
    #: the text frontend (normalization, SSML, lexicon), for engines that have one: the worker's
    #: ``reload_lexicon`` operation reloads it
    text_frontend: TextFrontend | None = None
    #: the engine conditions on a reference sample (custom voices); ``needs_transcript``: it needs the
    #: sample's transcript too (a voice without one is refused for this model)
    clones: bool = False
    needs_transcript: bool = False
    #: the engine holds a speaker-verification model (:meth:`speaker_embedding`): the server compares a
    #: custom voice's consent recording with its sample through it
    verifies_speakers: bool = False
    #: the fewest tokens either part of a segment cut by :meth:`split` keeps
    min_cut_tokens: int = 1
    #: options that suit a process that loads the engine to synthesize once and exit (``vtts speak``,
    #: ``vtts voices``): e.g. no warm-up, which pays off only over many requests; a model entry's own
    #: options win over these
    one_shot_options: ClassVar[dict[str, Any]] = {}

    @classmethod
    @abstractmethod
    def load(cls, model_ref: str, device: str = "cpu", options: dict[str, Any] | None = None) -> Engine:
        """Load from a model reference (local path or hub id) onto ``device`` ("cpu", "cuda:0")."""

    @classmethod
    def detect(cls, model_ref: str) -> bool:
        """True when ``model_ref`` looks like this engine's files (used by ``vtts serve PATH``)."""
        return False

    @property
    @abstractmethod
    def sample_rate(self) -> int:
        """Native output rate in Hz."""

    @abstractmethod
    def voices(self) -> list[VoiceInfo]:
        """Every voice this instance serves; the first is the default."""

    @abstractmethod
    def prepare(self, text: str, params: SynthesisParams) -> list[Segment]:
        """Validate ``params`` (raise :class:`EngineError`) and split ``text`` into engine-ready segments,
        the first one short so the first audio comes early."""

    @abstractmethod
    def step(self, items: list[WorkItem]) -> list[StepOutput]:
        """Advance every item by one step; return one output per item, in any order. A failure of one
        item is reported in its output's ``error``; an exception escaping ``step`` fails every item of the
        batch (the engine's state for them is unknown), not the worker's other requests."""

    # -- request lifecycle and capacity (defaults fit single-pass engines) ---------------------------
    def release(self, ctx: RequestContext, reason: FinishReason) -> None:  # noqa: B027 - optional hook
        """The request left the worker (``reason``): free what it holds. Called exactly once per admitted
        request, between steps, whether it finished, was cancelled, expired, failed, drained or the worker
        is stopping."""

    def capacity(self) -> int | None:
        """Free capacity in the engine's units (e.g. free KV-cache tokens); None = no budget (only
        ``max_batch`` bounds a step)."""
        return None

    def cost(self, item: WorkItem) -> int:
        """Units of :meth:`capacity` the next step of ``item`` will take (e.g. 1 token to decode, the
        prompt's length to prefill or to recompute a preempted item)."""
        return 0

    def preempt(self, item: WorkItem) -> None:  # noqa: B027 - optional hook
        """Give back what ``item`` holds so others fit; it is stepped again later and must then produce
        exactly what it would have (e.g. recompute its KV cache from its tokens, same sampler state)."""

    def split(self, segment: Segment, max_tokens: int) -> tuple[Segment, Segment] | None:
        """Cut a segment no step has started at a clause boundary (the scheduler's segment sizing: a long
        single-pass step would block the streams waiting behind it). The head ends at the last boundary
        that keeps it within ``max_tokens``, else at the first; both parts keep at least
        :attr:`min_cut_tokens`; their audio together says every word the segment would have. None: no
        boundary qualifies, or the engine does not cut (the default)."""
        return None

    def voice_features(self, reference: dict[str, Any]) -> Any:
        """A cloning engine's features of a custom voice (speaker embedding, prompt tokens, prompt
        spectrogram...), from ``reference`` (``audio`` float32 mono, ``sample_rate``, ``transcript``,
        ``language``). Called once per voice version on a prepare thread; the worker caches the result and
        hands it to ``prepare`` as ``params.reference["features"]``. Raise :class:`EngineError` for a sample
        the engine cannot use."""
        return None

    def speaker_embedding(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Engines with ``verifies_speakers``: a speaker vector of ``audio`` (float32 mono at ``sample_rate``),
        compared by cosine similarity. Called on a prepare thread. Raise :class:`EngineError` for audio the
        model cannot use."""
        raise NotImplementedError(f"{type(self).__name__} has no speaker model")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (sessions, GPU memory)."""


class SinglePassEngine(Engine):
    """An engine whose items finish in one step: implement :meth:`synthesize` for a batch of segments."""

    @abstractmethod
    def synthesize(self, segments: list[Segment], params: list[SynthesisParams]) -> list[np.ndarray]:
        """Return one float32 waveform per segment."""

    def step(self, items: list[WorkItem]) -> list[StepOutput]:
        """One ``synthesize`` call; if it raises for a batch, each item alone, so a bad item fails only
        its own request (single-pass items hold no state, so trying again is safe)."""
        try:
            audios = self.synthesize([i.segment for i in items], [i.params for i in items])
        except Exception as exc:
            if len(items) == 1:
                return [StepOutput(items[0], _EMPTY, True, error=exc)]
            return [out for item in items for out in self.step([item])]
        return [StepOutput(item, audio, True) for item, audio in zip(items, audios, strict=True)]


_EMPTY = np.zeros(0, np.float32)
