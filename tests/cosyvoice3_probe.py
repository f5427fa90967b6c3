"""The CosyVoice3 engine with a window for tests (a plugin engine: ``engine =
"tests.cosyvoice3_probe:ProbeEngine"``): after every step and release it writes its KV figures to the file
named by ``$VTTS_CV3_PROBE``, so a test of the real server can see that a cancelled stream freed its memory.
Nothing else differs from the registered engine."""

from __future__ import annotations

import json
import os
from typing import Any

from vtts.protocol import FinishReason
from vtts.workers.engine import RequestContext, StepOutput, WorkItem
from vtts.workers.engines.cosyvoice3.engine import CosyVoice3Engine


class ProbeEngine(CosyVoice3Engine):
    """Reports ``kv_tokens``, ``live_requests``, ``flow_kv_bytes`` and ``released`` to ``$VTTS_CV3_PROBE``."""

    released = 0

    def _report(self) -> None:
        path = os.environ.get("VTTS_CV3_PROBE")
        if not path:
            return
        figures: dict[str, Any] = {"kv_tokens": self.kv_tokens, "live_requests": self.live_requests,
                                   "flow_kv_bytes": self.flow_kv_bytes, "released": self.released,
                                   "capacity": self.capacity(), "budget": self.settings.kv_budget_tokens}
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(figures, f)
        os.replace(path + ".tmp", path)

    def step(self, items: list[WorkItem]) -> list[StepOutput]:
        out = super().step(items)
        self._report()
        return out

    def release(self, ctx: RequestContext, reason: FinishReason) -> None:
        super().release(ctx, reason)
        self.released += 1
        self._report()
