"""Name resolution: the model and voice names clients send → the configured model id and engine voice.

OpenAI's model names alias the default model; OpenAI's voice names map to a model's voice through
``voice_aliases`` or else to its first voice. Voices are what the model's workers announce.
"""

from __future__ import annotations

import re
from typing import Any

from vtts.config import OPENAI_VOICES, Config, ConfigError, ModelConfig, parse_model

from .control import SupervisorLink
from .errors import APIError
from .pool import WorkerPool

#: a voice name with these is an expression (a blend: "a:0.7+b:0.3", "a(2)+b") that only the engine
#: understands: the catalog passes it through, the engine accepts or refuses it (400 naming the voice)
_EXPRESSION = re.compile(r"[+:()]")


class Catalog:
    """Resolves names against the config, the models added through the admin API, and the live workers."""

    def __init__(self, config: Config, pool: WorkerPool, link: SupervisorLink | None = None) -> None:
        self.config = config
        self.pool = pool
        self.link = link
        self._seen: list | None = None
        self._entries: dict[str, ModelConfig] = {m.id: m for m in config.models}

    def entries(self) -> dict[str, ModelConfig]:
        """Model id → entry: the config's, updated with what the supervisor last reported (swaps, loads)."""
        reported = self.link.models if self.link else None
        if reported and reported is not self._seen:
            entries = {m.id: m for m in self.config.models}
            for view in reported:
                try:
                    entries[view["id"]] = parse_model(view["entry"], max_replicas=self.config.server.max_replicas)
                except (ConfigError, KeyError, TypeError):
                    continue
            self._entries, self._seen = entries, reported
        return self._entries

    def model_names(self) -> dict[str, str]:
        """Every name that routes somewhere → model id. Names are unique (the config and the supervisor
        refuse clashes); should two ever meet anyway, a model id wins over OpenAI's names and aliases, and
        an earlier name over a later alias, so no entry can take over another's traffic."""
        default = self.config.default_model
        entries = self.entries().values()
        names = {m.id: m.id for m in entries}
        for name in self.config.server.openai_model_aliases:
            if default:
                names.setdefault(name, default)
        for m in entries:
            for alias in m.aliases:
                names.setdefault(alias, m.id)
        return names

    def resolve_model(self, name: str) -> str:
        model_id = self.model_names().get(name)
        if model_id is None:
            raise APIError(404, f"The model '{name}' does not exist", param="model", code="model_not_found")
        return model_id

    def voices(self, model_id: str) -> list[dict[str, Any]]:
        """Voices announced by the model's workers (empty while none has loaded)."""
        for w in self.pool.workers_of(model_id):
            if w.status.voices:
                return w.status.voices
        return []

    def resolve_voice(self, model_id: str, name: str) -> str:
        voices = self.voices(model_id)
        ids = [v["id"] for v in voices]
        if name in ids:
            return name
        entry = self.entries().get(model_id)
        aliases = entry.voice_aliases if entry else {}
        if name in aliases:
            return aliases[name]
        folded = {i.casefold(): i for i in ids}
        if name.casefold() in folded:
            return folded[name.casefold()]
        if name in OPENAI_VOICES and ids:
            return ids[0]
        if ids and _EXPRESSION.search(name):
            return name
        raise APIError(
            400,
            f"Unknown voice '{name}' for model '{model_id}'. Available: {', '.join(ids + list(OPENAI_VOICES))}",
            param="voice",
            code="voice_not_found",
        )
