"""``GET /v1/audio/speech/stream``: text in over a WebSocket as an LLM writes it, audio out sentence by sentence.

vllm-omni's message shapes, so its clients work. Client → server (JSON text frames): ``session.config`` once
(``model``, ``voice``, ``response_format``, ``speed``, ``language``, ``instructions``, ``extra``), then any number
of ``input.text`` {``text``}, ``input.flush`` (speak what is buffered now) and finally ``input.done``. Server →
client: per sentence ``audio.start`` {``sentence_index``, ``sentence_text``, ``format``}, binary frames holding
that sentence's audio (one whole file of ``format`` per sentence), ``audio.done`` {``sentence_index``}; at the end
``session.done`` {``total_sentences``, ``usage``}; a failure is ``error`` {``error``: OpenAI's error object} and
ends the session.

Text is cut as it arrives (:class:`Segmenter`): a sentence goes to a worker as soon as it is complete in the
buffer, and the first one is cut at its earliest phrase boundary, as the worker does for one request. Each
sentence is one worker request, routed by :func:`.speech._start` like an HTTP request; they synthesize one at a
time, as one request's segments do (the next one while the previous one's audio goes out, at most
``MAX_IN_FLIGHT`` not yet relayed), and their audio is relayed strictly in order. Every session is bounded:
``ws_idle_timeout_s``, ``ws_max_session_s``, ``ws_max_buffered_chars`` (text not yet sent to a worker) and
``ws_max_buffered_bytes`` (audio a non-reading client leaves waiting: past it the client is disconnected). A
disconnect cancels everything in flight; a server shutdown ends every session with a ``shutting_down`` error.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import re
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web

from vtts import protocol as P
from vtts.workers.text.segment import (
    CJK_LANGUAGES,
    FIRST_SEGMENT_MODES,
    base_language,
    first_segment_chars,
    split_first_phrase,
    split_long,
    split_sentences,
)

from .captions import CAPTION_FORMATS, OffsetFinder
from .encoders import make_encoder
from .errors import APIError
from .speech import DEADLINE_MARGIN_S, _start
from .state import CATALOG, CONFIG, EXECUTOR, METRICS, POOL
from .validation import SpeechRequest, parse_speech

log = logging.getLogger("vtts.frontend.ws")

WS_PATH = "/v1/audio/speech/stream"
#: browsers cannot set headers on a WebSocket: they may offer this subprotocol with the key appended
#: (``new WebSocket(url, ["vtts", "openai-insecure-api-key." + key])``), as OpenAI's Realtime API takes it
KEY_PROTOCOL_PREFIX = "openai-insecure-api-key."
PROTOCOL = "vtts"
#: sentences started and not yet relayed: the one streaming and the next one synthesizing
MAX_IN_FLIGHT = 2
#: the format a session uses when its config names none (vllm-omni's default)
DEFAULT_FORMAT = "wav"
#: a sentence longer than this is cut at a clause mark or space (the worker's own segment limit)
MAX_SEGMENT_CHARS = 400
#: the ``clause`` first-segment mode cuts a first sentence longer than this (as the worker does)
FIRST_MAX_CHARS = 100
CONFIG_FIELDS = frozenset({"type", "model", "voice", "response_format", "speed", "language", "instructions", "extra"})
WATCH_PERIOD_S = 0.1
#: the sessions running in an app, told to end when it shuts down
SESSIONS = web.AppKey("ws_sessions", set)
CLOSE_TIMEOUT_S = 2.0
_PARAGRAPH_END = re.compile(r"\n[^\S\n]*\n\s*$")
_CLOSERS = "\"')]”’」』）】》〉"


class Segmenter:
    """Cuts text that arrives in pieces into the segments a worker should synthesize, as soon as each is
    complete: a sentence once its end is seen (by the same rules as :func:`split_sentences`, abbreviations and
    initials included), the first one at its earliest phrase boundary once enough words follow it, and an
    unfinished sentence longer than ``MAX_SEGMENT_CHARS`` at a clause mark or space. Pure; no I/O."""

    def __init__(self, language: str | None = None, first_segment: str = "phrase") -> None:
        self.language = language
        self.first_segment = first_segment if first_segment in FIRST_SEGMENT_MODES else "phrase"
        #: Chinese and Japanese write no spaces: their first bound is halved and pieces join without one
        self.cjk = base_language(language) in CJK_LANGUAGES
        self.first_max_chars = first_segment_chars(FIRST_MAX_CHARS, language)
        self.buffer = ""
        self.emitted = 0

    def feed(self, text: str) -> list[str]:
        """Add text; return the segments it completed."""
        self.buffer += text
        return self._take(final=False)

    def flush(self) -> list[str]:
        """Everything buffered, as segments (``input.flush`` and ``input.done``)."""
        return self._take(final=True)

    def _take(self, final: bool) -> list[str]:
        text = self.buffer
        pieces = split_sentences(text, self.language)
        rest = ""
        if pieces and not final and not _PARAGRAPH_END.search(text) and not self._ends_sentence(pieces[-1]):
            rest = pieces.pop()
        segments = [s for p in pieces for s in split_long(p, MAX_SEGMENT_CHARS)]
        if len(rest) > MAX_SEGMENT_CHARS:  # a run-on sentence: send what fills a segment, keep the tail
            *head, rest = split_long(rest, MAX_SEGMENT_CHARS)
            segments.extend(head)
        if self.emitted == 0 and segments:
            segments = self._first(segments[0]) + segments[1:]
        elif self.emitted == 0 and rest and self.first_segment == "phrase":
            head, rest = self._first_phrase(rest, text[-1:].isspace())
            segments = head
        if rest and text[-1:].isspace():
            rest += " "  # the next piece starts a new word
        self.buffer = rest
        segments = [s for s in segments if any(c.isalnum() for c in s)]  # "." or '"' alone says nothing
        self.emitted += len(segments)
        return segments

    def _ends_sentence(self, sentence: str) -> bool:
        """Whether a sentence at the end of the buffer is over: a following capitalized word would start a new
        one (so "Dr." and "J." wait), and a period after a digit waits for a possible decimal."""
        core = sentence.rstrip(_CLOSERS)
        if core.endswith(".") and core[-2:-1].isdigit():
            return False
        return len(split_sentences(sentence + " A", self.language)) > 1

    def _first(self, sentence: str) -> list[str]:
        """The first sentence, cut as the worker cuts a request's first one."""
        if self.first_segment == "phrase":
            cut = split_first_phrase(sentence, self.language)
            if cut is not None and len(cut[0]) <= self.first_max_chars:
                return list(cut)
        if self.first_segment != "sentence" and len(sentence) > self.first_max_chars:
            head, *tail = split_long(sentence, self.first_max_chars)
            return [head] + (["".join(tail) if self.cjk else " ".join(tail)] if tail else [])
        return [sentence]

    def _first_phrase(self, partial: str, ends_in_space: bool) -> tuple[list[str], str]:
        """Cut an unfinished first sentence at its earliest phrase boundary, looking only at whole words (the
        last one may still grow: "at" could become "attention"). Chinese and Japanese have no spaces: a clause
        mark is a boundary as soon as it arrives, with enough characters after it."""
        if self.cjk:
            cut = split_first_phrase(partial.strip(), self.language)
            if cut is None or len(cut[0]) > self.first_max_chars:
                return [], partial
            return [cut[0]], cut[1]
        words = partial.split(" ")
        whole = words if ends_in_space else words[:-1]
        cut = split_first_phrase(" ".join(whole), self.language) if whole else None
        if cut is None or len(cut[0]) > self.first_max_chars:
            return [], partial
        n = len(cut[0].split(" "))
        return [cut[0]], " ".join(words[n:])


class SessionError(APIError):
    """Ends the session with an ``error`` event."""


class ClientGone(Exception):
    """The client closed the WebSocket or the connection dropped."""


class ClientTooSlow(Exception):
    """The client left more audio waiting than ``ws_max_buffered_bytes``, or accepted none for
    ``write_timeout_s``: it is disconnected without a goodbye (it is not reading one)."""


@dataclass
class Job:
    """One sentence: its worker request once started (``task`` resolves to the stream and its first message)."""

    index: int
    text: str
    ready_at: float
    task: asyncio.Task | None = None


def _made(job: Job) -> bool:
    """Whether a started sentence's audio is all made (its worker request ended)."""
    task = job.task
    return (task is not None and task.done() and not task.cancelled() and task.exception() is None
            and task.result()[0].finished)


def _protocols(request: web.Request) -> list[str]:
    """What the handshake may select: ``vtts``, or the key subprotocol when the client offered only that (a
    browser drops a connection whose answer names none of its offers)."""
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    return [PROTOCOL] + [p for p in offered if p.startswith(KEY_PROTOCOL_PREFIX)]


def protocol_key(request: web.Request) -> str:
    """The API key a browser passed as a subprotocol, or ""."""
    for p in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
        if p.strip().startswith(KEY_PROTOCOL_PREFIX):
            return p.strip()[len(KEY_PROTOCOL_PREFIX):]
    return ""


async def speech_stream(request: web.Request) -> web.StreamResponse:
    """The WebSocket route; a plain GET gets a 400 in OpenAI's shape."""
    server = request.app[CONFIG].server
    ws = web.WebSocketResponse(protocols=_protocols(request), compress=False, autoping=True,
                               timeout=CLOSE_TIMEOUT_S,
                               # a JSON string may spell a character as a 6-byte \uXXXX escape
                               max_msg_size=6 * server.ws_max_buffered_chars + 4096)
    if not ws.can_prepare(request).ok:
        raise APIError(400, f"{WS_PATH} takes a WebSocket upgrade (GET with 'Upgrade: websocket')",
                       code="websocket_required")
    await ws.prepare(request)
    session = Session(request, ws)
    sessions = request.app[SESSIONS]
    sessions.add(session)
    try:
        await session.run()
    finally:
        sessions.discard(session)
    return ws


async def shutdown_sessions(app: web.Application) -> None:
    """``on_shutdown``: every open session ends with a 503 ``shutting_down`` error and close code 1001, so a
    stop is not held up by clients that keep their WebSocket open."""
    for session in list(app.get(SESSIONS, ())):
        session.stopping.set()


class Session:
    """One WebSocket session: a reader (client messages → segments → jobs), a writer (jobs' audio, in order)
    and a watchdog (timeouts and the buffered-audio bound); the first of them to end ends the session."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self.request = request
        self.ws = ws
        self.app = request.app
        self.server = self.app[CONFIG].server
        self.metrics = self.app[METRICS]
        self.started = self.last_activity = time.monotonic()
        self.jobs: deque[Job] = deque()
        self.wake = asyncio.Event()
        self.stopping = asyncio.Event()
        self.input_done = False
        self.count = 0
        self.usage: dict[str, int] = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
        self.speech: SpeechRequest | None = None
        self.model_id = ""
        self.segmenter = Segmenter()

    # -- the session -----------------------------------------------------------------------------------
    async def run(self) -> None:
        tasks: list[asyncio.Task] = []
        try:
            await self._configure()
            tasks = [asyncio.create_task(c) for c in (self._reader(), self._writer(), self._watchdog())]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
            await self._close(1000)
        except SessionError as exc:
            log.info("stream session ends with an error: %s", exc.message)
            await self._stop(tasks)
            await self._send_error(exc)
            await self._close(1001 if exc.code == "shutting_down" else 1008 if exc.status < 500 else 1011)
        except ClientTooSlow as exc:
            log.info("stream session: %s; disconnecting", exc)
            if self.request.transport is not None:
                self.request.transport.abort()
        except ClientGone:
            log.info("stream session: the client went away")
        finally:
            await self._stop(tasks)
            await self._cancel_jobs()

    async def _stop(self, tasks: list[asyncio.Task]) -> None:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t

    async def _cancel_jobs(self) -> None:
        """Cancel every started sentence not yet relayed (a disconnect, an error, a timeout)."""
        while self.jobs:
            job = self.jobs.popleft()
            if job.task is None:
                continue
            if not job.task.done():
                job.task.cancel()  # _start cancels the worker request and counts it
                with contextlib.suppress(BaseException):
                    await job.task
                continue
            if job.task.cancelled() or job.task.exception() is not None:
                continue
            # counted even when its audio was all made: the client never got it
            self.metrics.cancelled.labels(self.model_id).inc()
            await self.app[POOL].cancel(job.task.result()[0])  # a no-op for a finished stream

    async def _close(self, code: int) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(code=code), self.server.write_timeout_s)

    async def _send_error(self, exc: APIError) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.send_str(json.dumps({"type": "error", **exc.body()})), CLOSE_TIMEOUT_S)

    async def _send(self, data: str | bytes) -> None:
        try:
            if isinstance(data, str):
                await asyncio.wait_for(self.ws.send_str(data), self.server.write_timeout_s)
            else:
                await asyncio.wait_for(self.ws.send_bytes(data), self.server.write_timeout_s)
        except asyncio.TimeoutError:
            raise ClientTooSlow(f"the client accepted no data for {self.server.write_timeout_s:.0f} s") from None
        except ConnectionError:
            raise ClientGone from None

    # -- client messages -------------------------------------------------------------------------------
    async def _message(self, timeout: float | None) -> dict[str, Any]:
        receive = asyncio.ensure_future(self.ws.receive(timeout))
        stop = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait({receive, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not receive.done():
                receive.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await receive
        if self.stopping.is_set():
            raise SessionError(503, "the server is shutting down; reconnect", code="shutting_down")
        try:
            msg = receive.result()
        except asyncio.TimeoutError:
            raise SessionError(408, f"no session.config within {self.server.ws_idle_timeout_s:g} s",
                               code="idle_timeout") from None
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            raise ClientGone
        self.last_activity = time.monotonic()
        if msg.type != WSMsgType.TEXT:
            raise SessionError(400, "send JSON text messages; binary frames are not accepted", code="invalid_message")
        try:
            data = json.loads(msg.data)
        except ValueError:
            raise SessionError(400, "a message is not valid JSON", code="invalid_json") from None
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            raise SessionError(400, "a message must be a JSON object with a string 'type'", param="type",
                               code="invalid_message")
        return data

    async def _configure(self) -> None:
        """Read and check ``session.config``: fields as ``POST /v1/audio/speech`` takes them (no ``input``), the
        model known, and the voice too when the model's workers have announced theirs."""
        data = await self._message(self.server.ws_idle_timeout_s)
        if data["type"] != "session.config":
            raise SessionError(400, f"the first message must be session.config, got {data['type'][:40]!r}",
                               param="type", code="invalid_message")
        unknown = sorted(set(data) - CONFIG_FIELDS)
        if unknown:
            raise SessionError(400, f"unrecognized session.config field: {unknown[0]!r}", param=unknown[0],
                               code="unknown_parameter")
        body = {k: v for k, v in data.items() if k != "type" and v is not None}
        body.setdefault("model", self.app[CONFIG].default_model)
        body.setdefault("voice", "alloy")
        body.setdefault("response_format", DEFAULT_FORMAT)
        try:
            speech = parse_speech({**body, "input": "-"}, self.server.max_input_chars)
            self.model_id = self.app[CATALOG].resolve_model(speech.model)
            # a custom voice (voice_...) is checked per sentence, where its reference is read
            if self.app[POOL].ready_workers(self.model_id) and not speech.voice.startswith("voice_"):
                self.app[CATALOG].resolve_voice(self.model_id, speech.voice)
        except APIError as exc:
            raise SessionError(exc.status, exc.message, param=exc.param, code=exc.code) from None
        if speech.response_format in CAPTION_FORMATS:
            raise SessionError(400, f"response_format '{speech.response_format}' is a whole answer, not "
                               "an audio stream a session can send",
                               param="response_format", code="invalid_value")
        mode = speech.extra.get("first_segment", "phrase")
        if mode not in FIRST_SEGMENT_MODES:
            raise SessionError(400, f"'extra.first_segment' must be one of {', '.join(FIRST_SEGMENT_MODES)}",
                               param="extra", code="invalid_value")
        # the session cuts its sentences itself; the worker must not cut each one again
        self.speech = dataclasses.replace(speech, extra={**speech.extra, "first_segment": "sentence"})
        self.segmenter = Segmenter(speech.language, mode)

    async def _reader(self) -> None:
        while True:
            data = await self._message(None)
            kind = data["type"]
            if self.input_done:
                raise SessionError(400, f"{kind} after input.done", param="type", code="invalid_message")
            if kind == "input.text":
                text = data.get("text")
                if not isinstance(text, str):
                    raise SessionError(400, "'text' must be a string", param="text", code="invalid_type")
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    raise SessionError(400, "'text' holds an unpaired surrogate; send valid Unicode", param="text",
                                       code="invalid_unicode") from None
                self._add(self.segmenter.feed(text))
            elif kind == "input.flush":
                self._add(self.segmenter.flush())
            elif kind == "input.done":
                self._add(self.segmenter.flush())
                self.input_done = True
                self.wake.set()
            elif kind == "session.config":
                raise SessionError(400, "session.config may be sent only once", param="type", code="invalid_message")
            else:
                raise SessionError(400, f"unknown message type {kind[:40]!r} (input.text, input.flush, input.done)",
                                   param="type", code="invalid_message")
            waiting = len(self.segmenter.buffer) + sum(len(j.text) for j in self.jobs if j.task is None)
            if waiting > self.server.ws_max_buffered_chars:
                raise SessionError(400, f"{waiting} characters are waiting to be spoken; the limit is "
                                   f"{self.server.ws_max_buffered_chars} (send text about as fast as it is spoken)",
                                   param="text", code="buffer_full")

    def _add(self, segments: list[str]) -> None:
        now = time.monotonic()
        for text in segments:
            self.jobs.append(Job(self.count, text, now))
            self.count += 1
        self._pump()
        self.wake.set()

    def _pump(self) -> None:
        """Start the next sentence once the one before it is fully synthesized (a request's segments run one
        after another in the worker too), with at most ``MAX_IN_FLIGHT`` sentences not yet relayed."""
        assert self.speech is not None
        started = [j for j in self.jobs if j.task is not None]
        if len(started) >= MAX_IN_FLIGHT or not all(_made(j) for j in started):
            return
        for job in self.jobs:
            if job.task is None:
                speech = dataclasses.replace(self.speech, input=job.text)
                job.task = asyncio.create_task(_start(self.request, speech, self.model_id))
                return

    # -- audio out -------------------------------------------------------------------------------------
    async def _writer(self) -> None:
        while self.jobs or not self.input_done:
            if not self.jobs:
                self.wake.clear()
                await self.wake.wait()
                continue
            await self._relay(self.jobs[0])
            self.jobs.popleft()
            self.last_activity = time.monotonic()
            self._pump()
        await self._send(json.dumps({"type": "session.done", "total_sentences": self.count, "usage": self.usage}))

    async def _relay(self, job: Job) -> None:
        assert job.task is not None and self.speech is not None
        try:
            stream, first = await job.task
        except APIError as exc:
            if not exc.counted:
                self.metrics.requests.labels(self.model_id, str(exc.status)).inc()
            raise SessionError(exc.status, f"sentence {job.index}: {exc.message}", param=exc.param,
                               code=exc.code) from None
        self.metrics.requests.labels(self.model_id, "200").inc()
        rate = first.sample_rate if isinstance(first, P.Audio) else stream.sample_rate
        encoder = make_encoder(self.speech.response_format, rate or 24000, self.speech.sample_rate)
        await self._send(json.dumps({"type": "audio.start", "sentence_index": job.index, "sentence_text": job.text,
                                     "format": self.speech.response_format}))
        loop = asyncio.get_running_loop()
        executor = self.app[EXECUTOR]
        timeout = self.server.request_timeout_s + DEADLINE_MARGIN_S
        sent_first = False
        offsets = OffsetFinder(job.text)
        msg: P.Message = first
        self.metrics.active.labels(self.model_id).inc()
        try:
            while True:
                if isinstance(msg, P.Audio):
                    data = await loop.run_in_executor(executor, encoder.encode, np.frombuffer(msg.pcm, dtype="<i2"))
                    if data:
                        await self._send(data)
                        if not sent_first:
                            sent_first = True
                            self.metrics.ttfa.labels(self.model_id).observe(time.monotonic() - job.ready_at)
                    if msg.timestamps:  # asked for with extra.timestamps; after the audio they time
                        await self._send(json.dumps({"type": "audio.timestamps", "sentence_index": job.index,
                                                     "words": offsets.add(msg.timestamps)}))
                elif isinstance(msg, P.Done):
                    self._pump()  # the next sentence synthesizes while this one's tail goes out
                    tail = await loop.run_in_executor(executor, encoder.finish)
                    if tail:
                        await self._send(tail)
                    self.metrics.on_done(self.model_id, msg)
                    for k in self.usage:
                        self.usage[k] += int(msg.usage.get(k, 0))
                    await self._send(json.dumps({"type": "audio.done", "sentence_index": job.index}))
                    return
                elif isinstance(msg, P.Error):
                    if stream.overflowed:
                        raise ClientTooSlow("the client did not read the audio in time")
                    raise SessionError(msg.status, f"sentence {job.index}: {msg.message}", param=msg.param,
                                       code=msg.code)
                try:
                    msg = await stream.next(timeout)
                except asyncio.TimeoutError:
                    raise SessionError(504, f"sentence {job.index}: no audio for {timeout:.0f} s",
                                       code="timeout") from None
        finally:
            self.metrics.active.labels(self.model_id).dec()

    async def _watchdog(self) -> None:
        """Session length, idleness (no client message and nothing to send), and the audio a client leaves
        waiting: PCM queued in this session's worker streams plus encoded bytes the socket has not taken."""
        s = self.server
        while True:
            await asyncio.sleep(WATCH_PERIOD_S)
            now = time.monotonic()
            if self.stopping.is_set():
                raise SessionError(503, "the server is shutting down; reconnect", code="shutting_down")
            if now - self.started > s.ws_max_session_s:
                raise SessionError(408, f"the session is longer than {s.ws_max_session_s:g} s", code="session_timeout")
            if not self.jobs and now - self.last_activity > s.ws_idle_timeout_s:
                raise SessionError(408, f"no message for {s.ws_idle_timeout_s:g} s", code="idle_timeout")
            transport = self.request.transport
            waiting = transport.get_write_buffer_size() if transport is not None else 0
            for job in self.jobs:
                if job.task is not None and job.task.done() and not job.task.cancelled() \
                        and job.task.exception() is None:
                    waiting += job.task.result()[0].buffered
            if waiting > s.ws_max_buffered_bytes:
                raise ClientTooSlow(f"{waiting} bytes of audio wait for the client (limit {s.ws_max_buffered_bytes})")
