"""A Locust load test for a vTTS (or any OpenAI-compatible) speech server, for your own load shapes.

``vtts bench`` is the reproducible benchmark (closed loop, ratios to the raw engine); this file is for
everything else Locust does well: ramps, many machines, its web UI. Locust is not a vTTS dependency:

    pip install locust
    locust -f bench/locustfile.py --host http://127.0.0.1:8000 --headless -u 32 -r 8 -t 2m \
        --tts-format pcm --tts-voice alloy

Each request is reported twice: ``speech`` (send to the end of the whole streamed answer; failed on a
non-200 status, a cut stream or an empty body) and ``speech TTFB`` (send to the first audio byte), so
Locust's percentiles show time to first audio beside total latency. The wait time is zero: every user is
a closed-loop client, sending its next request as soon as the previous one ends, like ``vtts bench``.
Texts mix 1–4 sentences of the same corpus ``vtts bench`` uses.
"""

from __future__ import annotations

import random
import time
from typing import Any

from locust import HttpUser, constant, events, task

try:
    from vtts.bench_texts import SENTENCES
except ImportError:  # vtts not installed where Locust runs: a few sentences are enough
    SENTENCES = (
        "The train leaves the station at half past seven every morning.",
        "Could you tell me where the nearest pharmacy is?",
        "Please remember to save your work before closing the application.",
        "Rain is expected in the afternoon, so bring an umbrella.",
    )

CHUNK_BYTES = 4096


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    parser.add_argument("--tts-model", default="tts-1", help="model name sent to the server")
    parser.add_argument("--tts-voice", default="alloy", help="voice name sent to the server")
    parser.add_argument("--tts-format", default="pcm", help="response_format (pcm, wav, mp3, opus, aac, flac)")
    parser.add_argument("--tts-api-key", default="", help="bearer key, if the server requires one")
    parser.add_argument("--tts-seed", type=int, default=0, help="seed of each user's text choice")


class SpeechUser(HttpUser):
    """One closed-loop client of ``POST /v1/audio/speech``."""

    wait_time = constant(0)

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.model = getattr(options, "tts_model", "tts-1")
        self.voice = getattr(options, "tts_voice", "alloy")
        self.format = getattr(options, "tts_format", "pcm")
        key = getattr(options, "tts_api_key", "")
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.rng = random.Random(getattr(options, "tts_seed", 0) * 100_003 + id(self))

    def text(self) -> str:
        return " ".join(self.rng.sample(SENTENCES, self.rng.randint(1, min(4, len(SENTENCES)))))

    @task
    def speech(self) -> None:
        body = {"model": self.model, "input": self.text(), "voice": self.voice, "response_format": self.format}
        start = time.perf_counter()
        first: float | None = None
        size = 0
        with self.client.post("/v1/audio/speech", json=body, headers=self.headers, stream=True,
                              catch_response=True, name="speech") as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {resp.text[:200]}")
                return
            try:
                for chunk in resp.iter_content(CHUNK_BYTES):
                    if chunk and first is None:
                        first = time.perf_counter() - start
                    size += len(chunk)
            except Exception as exc:  # a cut chunked stream surfaces as a requests/urllib3 error
                resp.failure(f"short read after {size} bytes: {exc}")
                return
            if not size:
                resp.failure("empty body")
                return
            # with stream=True Locust times the request up to its headers; report the whole answer instead
            resp.request_meta["response_time"] = (time.perf_counter() - start) * 1000
            resp.request_meta["response_length"] = size
            resp.success()
        self.environment.events.request.fire(
            request_type="POST",
            name="speech TTFB",
            response_time=(first or 0.0) * 1000,
            response_length=size,
            exception=None,
            context={},
        )
