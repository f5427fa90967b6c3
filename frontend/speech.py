"""``POST /v1/audio/speech``: validate, route to a worker, encode and stream what comes back.

The response headers wait for the worker's first message, so an error that happens before any audio
(unknown voice, full queue, deadline) is still a proper HTTP status. After the first byte, a failure ends
an SSE stream with an ``error`` event and cuts an audio stream (the client sees a truncated body, never a
hang). A client that goes away cancels its request in the worker, and so does one that stops reading: a
write that makes no progress for ``write_timeout_s``, or more than ``max_buffered_bytes`` of audio waiting
for it, disconnects it. HTTP/1.1 responses are chunked; HTTP/1.0 ones (nginx's default upstream protocol)
are close-delimited: the same stream, ended by closing the connection.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import uuid

import numpy as np
from aiohttp import web

from vtts import protocol as P

from .body import read_json
from .captions import CAPTION_FORMATS, OffsetFinder, caption_body
from .control import SupervisorUnavailable
from .encoders import make_encoder
from .errors import APIError
from .pool import TOO_SLOW, NoWorker, Overloaded, Stream, Unencodable
from .state import ADMISSION, CATALOG, CONFIG, CONTROL, EXECUTOR, METRICS, POOL
from .validation import SpeechRequest, parse_speech
from .voices import speech_reference

log = logging.getLogger("vtts.frontend.speech")

#: extra seconds the frontend waits beyond the worker-side deadline before giving up itself
DEADLINE_MARGIN_S = 5.0
RETRY_AFTER_S = 1.0
MAX_ATTEMPTS = 4


async def create_speech(request: web.Request) -> web.StreamResponse:
    app = request.app
    config = app[CONFIG]
    metrics = app[METRICS]
    body = await read_json(request)
    speech = parse_speech(body, config.server.max_input_chars)
    model_id = app[CATALOG].resolve_model(speech.model)
    arrival = time.monotonic()
    captions = speech.response_format in CAPTION_FORMATS
    try:
        stream, first = await _start(request, speech, model_id)
    except APIError as exc:  # every refusal before the first byte is counted here, once
        if captions and exc.param == "extra.timestamps" and "timestamps" not in (body.get("extra") or {}):
            exc = APIError(400, f"Model '{model_id}' cannot time words, which response_format "
                           f"'{speech.response_format}' is made of ({exc.message})", param="response_format",
                           code="unsupported_format")
        metrics.requests.labels(model_id, str(exc.status)).inc()
        exc.counted = True
        raise exc from None
    metrics.active.labels(model_id).inc()
    try:
        respond = _respond_captions if captions else _respond
        return await respond(request, speech, model_id, stream, first, arrival,
                             config.server.request_timeout_s + DEADLINE_MARGIN_S)
    except ConnectionResetError:
        log.info("client went away during request %s", stream.id)
        return web.Response(status=499)
    finally:
        metrics.active.labels(model_id).dec()
        if not stream.finished or stream.overflowed:  # overflowed: the pool already cancelled it
            metrics.cancelled.labels(model_id).inc()
            await app[POOL].cancel(stream)


async def _start(request: web.Request, speech: SpeechRequest, model_id: str) -> tuple[Stream, P.Message]:
    """Route the request and wait for its first message. Requests that have not started are retried on
    another worker when theirs drains or dies; a model that is not loaded is loaded on demand."""
    app = request.app
    config = app[CONFIG]
    metrics = app[METRICS]
    pool = app[POOL]
    deadline = time.monotonic() + max(config.server.request_timeout_s, config.server.load_timeout_s)
    for attempt in range(MAX_ATTEMPTS):
        if not pool.ready_workers(model_id):
            await _ensure_loaded(request, model_id, deadline)
        if not app[ADMISSION].admits(pool.ready_workers(model_id)):
            metrics.rejected.labels(model_id, "stream_capacity").inc()
            raise APIError(429, f"Model '{model_id}' is streaming all it can keep smooth; retry later",
                           code="rate_limit_exceeded", retry_after=RETRY_AFTER_S)
        reference = await speech_reference(request, model_id, speech.voice)
        voice = speech.voice if reference else app[CATALOG].resolve_voice(model_id, speech.voice)
        msg = P.Synthesize(
            id=uuid.uuid4().hex, text=speech.input, voice=voice, speed=speech.speed, language=speech.language,
            extra=speech.extra, deadline=time.time() + config.server.request_timeout_s,
            max_audio_s=config.server.max_audio_seconds,
            instructions=speech.instructions, reference=reference or {},
        )
        try:
            stream = await pool.submit(model_id, msg)
        except Overloaded:
            metrics.rejected.labels(model_id, "queue_full").inc()
            raise APIError(429, f"Model '{model_id}' is at capacity; retry later", code="rate_limit_exceeded",
                           retry_after=RETRY_AFTER_S) from None
        except NoWorker:
            continue
        except Unencodable as exc:
            raise APIError(400, f"the request cannot be sent to the model: {exc}", code="invalid_value") from None
        try:
            first = await stream.next(max(0.1, deadline - time.monotonic()) + DEADLINE_MARGIN_S)
        except asyncio.TimeoutError:
            await pool.cancel(stream)
            raise APIError(504, "the model did not start this request in time", code="timeout",
                           should_retry=False) from None
        except asyncio.CancelledError:  # the client went away while the request waited to start
            metrics.cancelled.labels(model_id).inc()
            await pool.cancel(stream)
            raise
        if isinstance(first, P.Error) and P.is_retryable(first.code) and time.monotonic() < deadline:
            log.info("request %s not started (%s); retrying (attempt %d)", msg.id, first.code, attempt + 2)
            metrics.retries.labels(model_id, first.code).inc()
            continue
        if isinstance(first, P.Error):
            if first.status == 429:
                metrics.rejected.labels(model_id, "queue_full").inc()
            retry = RETRY_AFTER_S if first.status in (429, 503) else None
            raise APIError(first.status, first.message, param=first.param, code=first.code, retry_after=retry)
        return stream, first
    raise APIError(503, f"Model '{model_id}' has no worker that could take the request; retry shortly",
                   code="model_not_ready", retry_after=RETRY_AFTER_S)


async def _ensure_loaded(request: web.Request, model_id: str, deadline: float) -> None:
    """Ask the supervisor to load ``model_id`` if needed and wait until a worker of it is ready."""
    app = request.app
    pool = app[POOL]
    metrics = app[METRICS]
    timeout = max(0.1, deadline - time.monotonic())
    try:
        reply = await app[CONTROL].request("ensure", model_id, timeout=timeout)
    except SupervisorUnavailable:
        reply = None
    if reply is not None and not reply.ok:
        metrics.rejected.labels(model_id, "no_worker").inc()
        raise APIError(503, f"Model '{model_id}' is not available: {reply.message}", code=reply.code or
                       "model_not_ready", retry_after=RETRY_AFTER_S,
                       should_retry=False if reply.code == "insufficient_memory" else None)
    while not pool.ready_workers(model_id):  # the worker's heartbeat can trail the supervisor's answer
        if time.monotonic() > deadline:
            metrics.rejected.labels(model_id, "no_worker").inc()
            raise APIError(503, f"Model '{model_id}' has no ready worker yet; retry shortly",
                           code="model_not_ready", retry_after=RETRY_AFTER_S)
        await asyncio.sleep(0.05)


async def _respond(
    request: web.Request, speech: SpeechRequest, model_id: str, stream: Stream, first: P.Message, arrival: float,
    timeout: float,
) -> web.StreamResponse:
    app = request.app
    metrics = app[METRICS]
    rate = first.sample_rate if isinstance(first, P.Audio) else stream.sample_rate
    encoder = make_encoder(speech.response_format, rate or 24000, speech.sample_rate)
    sse = speech.stream_format == "sse"
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream" if sse else encoder.content_type,
            "X-Sample-Rate": str(encoder.output_rate),
            "X-Request-Id": stream.id,
            "Cache-Control": "no-cache",
        }
    )
    # no Content-Length: aiohttp chunks an HTTP/1.1 response and ends an HTTP/1.0 one by closing
    write_timeout = app[CONFIG].server.write_timeout_s

    async def send(data: bytes | None) -> None:
        """Write (``None``: end the body) within ``write_timeout_s``."""
        try:
            await asyncio.wait_for(resp.write(data) if data is not None else resp.write_eof(), write_timeout)
        except asyncio.TimeoutError:
            raise ClientTooSlow from None

    await resp.prepare(request)
    metrics.requests.labels(model_id, "200").inc()
    loop = asyncio.get_running_loop()
    executor = app[EXECUTOR]
    sent_first = False
    offsets = OffsetFinder(speech.input)
    msg: P.Message = first
    try:
        while True:
            if isinstance(msg, P.Audio):
                pcm = np.frombuffer(msg.pcm, dtype="<i2")
                data = await loop.run_in_executor(executor, encoder.encode, pcm)
                if data:
                    await send(_delta(data) if sse else data)
                    if not sent_first:
                        sent_first = True
                        metrics.ttfa.labels(model_id).observe(time.monotonic() - arrival)
                if sse and msg.timestamps:
                    await send(_event({"type": "speech.audio.timestamps", "words": offsets.add(msg.timestamps)}))
            elif isinstance(msg, P.Done):
                tail = await loop.run_in_executor(executor, encoder.finish)
                if tail:
                    await send(_delta(tail) if sse else tail)
                if not sent_first:
                    metrics.ttfa.labels(model_id).observe(time.monotonic() - arrival)
                metrics.on_done(model_id, msg)
                if sse:
                    await send(_event({"type": "speech.audio.done", "usage": msg.usage}))
                await send(None)
                return resp
            elif isinstance(msg, P.Error):
                log.warning("request %s failed mid-stream: %s", stream.id, msg.message)
                if sse and msg.code != TOO_SLOW:
                    err = APIError(msg.status, msg.message, code=msg.code).body()
                    await send(_event({"type": "error", **err}))
                    await send(None)
                    return resp
                _cut(request)  # an audio stream cannot carry an error: the client sees a truncated transfer
                return resp
            try:
                msg = await stream.next(timeout)
            except asyncio.TimeoutError:
                log.warning("request %s: no audio for %.0f s; giving up", stream.id, timeout)
                _cut(request)
                return resp
    except ClientTooSlow:
        log.info("request %s: the client accepted no data for %.0f s; disconnecting", stream.id, write_timeout)
        _cut(request)
        return resp


async def _respond_captions(
    request: web.Request, speech: SpeechRequest, model_id: str, stream: Stream, first: P.Message, arrival: float,
    timeout: float,
) -> web.Response:
    """A ``json``, ``srt`` or ``vtt`` answer: the whole request's word timings (and, for ``json``, its audio,
    encoded as it arrives), sent once the worker is done — so an error at any point is still an HTTP error."""
    app = request.app
    metrics = app[METRICS]
    rate = first.sample_rate if isinstance(first, P.Audio) else stream.sample_rate
    encoder = make_encoder(speech.audio_format, rate or 24000, speech.sample_rate) \
        if speech.response_format == "json" else None
    loop = asyncio.get_running_loop()
    executor = app[EXECUTOR]
    offsets = OffsetFinder(speech.input)
    words: list[dict] = []
    audio: list[bytes] = []
    samples = 0
    msg = first
    while True:
        if isinstance(msg, P.Audio):
            pcm = np.frombuffer(msg.pcm, dtype="<i2")
            samples += pcm.size
            rate = msg.sample_rate or rate
            words += offsets.add(msg.timestamps)
            if encoder is not None:
                audio.append(await loop.run_in_executor(executor, encoder.encode, pcm))
            if samples == pcm.size:
                metrics.ttfa.labels(model_id).observe(time.monotonic() - arrival)
        elif isinstance(msg, P.Done):
            if encoder is not None:
                audio.append(await loop.run_in_executor(executor, encoder.finish))
            metrics.on_done(model_id, msg)
            body, content_type = caption_body(speech.response_format, words, speech.input,
                                              samples / (rate or 24000), b"".join(audio), speech.audio_format)
            metrics.requests.labels(model_id, "200").inc()
            return web.Response(body=body, headers={"Content-Type": content_type, "X-Request-Id": stream.id})
        elif isinstance(msg, P.Error):
            error = APIError(msg.status, msg.message, param=msg.param, code=msg.code)
            metrics.requests.labels(model_id, str(msg.status)).inc()
            error.counted = True
            raise error
        try:
            msg = await stream.next(timeout)
        except asyncio.TimeoutError:
            metrics.requests.labels(model_id, "504").inc()
            error = APIError(504, f"no audio for {timeout:.0f} s", code="timeout", should_retry=False)
            error.counted = True
            raise error from None


class ClientTooSlow(Exception):
    """A write made no progress for ``write_timeout_s``: the client stopped reading."""


def _cut(request: web.Request) -> None:
    """Close the connection mid-body, so the client cannot take a partial body for a whole one (for HTTP/1.1;
    an HTTP/1.0 body ends at the close either way)."""
    if request.transport is not None:
        request.transport.close()


def _delta(data: bytes) -> bytes:
    return _event({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode("ascii")})


def _event(payload: dict) -> bytes:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()
