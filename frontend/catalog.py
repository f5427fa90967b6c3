"""Name resolution: the model and voice names clients send → the configured model id and engine voice.

OpenAI's model names alias the default model; OpenAI's voice names map to a model's voice through
``voice_aliases`` or else to its first voice. Voices are what the model's workers announce.
"""

from __future__ import annotations

from typing import Any

from vtts.config import OPENAI_MODELS, OPENAI_VOICES, Config

from .errors import APIError
from .pool import WorkerPool


class Catalog:
    """Resolves names against the config and the live workers."""

    def __init__(self, config: Config, pool: WorkerPool) -> None:
        self.config = config
        self.pool = pool

    def model_names(self) -> dict[str, str]:
        """Every name that routes somewhere → model id."""
        names = {name: self.config.default_model for name in OPENAI_MODELS if self.config.default_model}
        for m in self.config.models:
            names.update({alias: m.id for alias in m.aliases})
            names[m.id] = m.id
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
        aliases = self.config.model(model_id).voice_aliases
        if name in aliases:
            return aliases[name]
        folded = {i.casefold(): i for i in ids}
        if name.casefold() in folded:
            return folded[name.casefold()]
        if name in OPENAI_VOICES and ids:
            return ids[0]
        raise APIError(
            400,
            f"Unknown voice '{name}' for model '{model_id}'. Available: {', '.join(ids + list(OPENAI_VOICES))}",
            param="voice",
            code="voice_not_found",
        )
