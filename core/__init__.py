"""vTTS: an OpenAI-compatible text-to-speech server (supervisor, frontend, workers)."""

__version__ = "0.1.0"
