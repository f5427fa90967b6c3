"""The engine contract every model family implements.

An engine turns prepared text segments into audio. Two shapes fit the same runtime:

* single-pass models (Piper, Kokoro): one ``step`` turns each item's segment into its whole waveform;
* iterative models (Supertonic steps, autoregressive LMs): items keep state across ``step`` calls and may
  emit several chunks before they finish.

The scheduler decides which items run in each ``step``; the engine never sees requests, queues or sockets.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


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
    """Per-request knobs. ``None`` means the voice's own default (piper1's convention)."""

    voice: str
    speed: float = 1.0
    language: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: longest audio (seconds) the request may make, checked on the normalized text (0 = unbounded)
    max_audio_s: float = 0.0


@dataclass
class Segment:
    """One piece of a request's text, ready for the engine: ``tokens`` is whatever the engine consumes
    (phoneme ids, unicode ids, ...); ``num_tokens`` feeds the usage counts."""

    text: str
    tokens: Any
    num_tokens: int


@dataclass
class WorkItem:
    """A segment while the engine works on it. ``state`` is the engine's own per-item memory across
    steps (empty for single-pass engines)."""

    request_id: str
    index: int
    segment: Segment
    params: SynthesisParams
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepOutput:
    """What one ``step`` produced for one item: float32 mono PCM at the engine's rate (possibly empty),
    and whether the item is finished."""

    item: WorkItem
    audio: np.ndarray
    finished: bool


class Engine(ABC):
    """Base class of every engine. Subclasses are constructed by :meth:`load` inside a worker process."""

    #: registry id, e.g. "piper"
    name: str = ""
    #: how many items one ``step`` may take on this device (measured, per engine and device)
    max_batch: int = 1

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
        """Advance every item by one step; return one output per item, in any order."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (sessions, GPU memory)."""


class SinglePassEngine(Engine):
    """An engine whose items finish in one step: implement :meth:`synthesize` for a batch of segments."""

    @abstractmethod
    def synthesize(self, segments: list[Segment], params: list[SynthesisParams]) -> list[np.ndarray]:
        """Return one float32 waveform per segment."""

    def step(self, items: list[WorkItem]) -> list[StepOutput]:
        audios = self.synthesize([i.segment for i in items], [i.params for i in items])
        return [StepOutput(item, audio, True) for item, audio in zip(items, audios, strict=True)]
