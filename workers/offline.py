"""The one offline path that drives an engine without a server: ``vtts speak``, ``vtts bench``'s engine
ceiling and ``vtts eval`` all go through :func:`generate`, so they batch, budget, preempt and release
exactly as a worker does (the scheduler is the worker's)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from vtts.protocol import FinishReason

from .engine import Engine, Segment, StepOutput, SynthesisParams
from .scheduler import Request, Scheduler


def generate(engine: Engine, requests: Sequence[tuple[SynthesisParams, list[Segment]]],
             max_batch: int | None = None) -> Iterator[tuple[int, StepOutput]]:
    """Run prepared requests to the end; yield ``(request index, output)`` as steps produce them (each
    request's outputs in order). An item's error is raised; whatever is left is released on the way out,
    also when the caller stops early."""
    sched = Scheduler(max_batch=max_batch or engine.max_batch, max_queue=max(1, len(requests)), engine=engine)
    for index, (params, segments) in enumerate(requests):
        if segments:
            sched.add(Request(str(index), params, segments, arrival=float(index)))
    try:
        while len(sched):
            outputs = engine.step(sched.schedule())
            for out in outputs:
                if out.error is not None:
                    raise out.error
                yield int(out.item.request_id), out
            sched.update(outputs)
    finally:
        sched.close(FinishReason.STOPPING)


def synthesize(engine: Engine, text: str, params: SynthesisParams) -> np.ndarray:
    """``text`` prepared and generated whole: float32 at the engine's rate."""
    chunks = [out.audio for _, out in generate(engine, [(params, engine.prepare(text, params))])]
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
