"""Custom voices, OpenAI's contract: ``/v1/audio/voice_consents`` and ``/v1/audio/voices``, the admin view
``/admin/voices``, and the speech hook that turns ``voice: {"id": "voice_..."}`` into the reference a
cloning worker receives.

The store (:mod:`.voice_store`) is blocking; every call to it runs on the app's executor. Uploads are
multipart, read part by part with their own bound (10 MiB a file, OpenAI's), so the app's 1 MiB JSON body
limit is untouched. Another API key's consents and voices answer 404, as if absent.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import numpy as np
from aiohttp import BodyPartReader, web
from aiohttp.web_urldispatcher import _default_expect_handler

from vtts import protocol as P

from .admin import check_admin_access
from .auth import bearer_token
from .body import read_json
from .errors import APIError
from .state import API_KEY, CONFIG, EXECUTOR, METRICS, POOL
from .validation import LANGUAGE_RE
from .voice_store import (
    MAX_UPLOAD_BYTES,
    Decoded,
    StoreError,
    VoiceStore,
    default_data_dir,
    owner_of,
    read_sample,
)

log = logging.getLogger("vtts.frontend.voices")

STORE = web.AppKey("voice_store", VoiceStore)
TRANSCRIBER = web.AppKey("voice_transcriber", dict)
#: an upload's whole body: the file plus its small fields
MAX_MULTIPART_BYTES = MAX_UPLOAD_BYTES + 64 * 1024
MAX_FIELD_BYTES = 16 * 1024
MAX_NAME_CHARS = 256
MAX_TRANSCRIPT_CHARS = 4096
#: a custom voice id, whatever form the request names it in
CUSTOM_PREFIX = "voice_"
#: how long a delete waits for each worker to drop the voice's cached features
FORGET_TIMEOUT_S = 2.0
#: the longest stretch of a consent recording or sample compared (a consent recording may last 120 s)
MAX_VERIFY_S = 30.0

T = TypeVar("T")


async def _run(request: web.Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A store call on the executor; its refusals become OpenAI-shaped errors."""
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(request.app[EXECUTOR], partial(fn, *args, **kwargs))
    except StoreError as exc:
        raise APIError(exc.status, exc.message, param=exc.param, code=exc.code) from None


def owner(request: web.Request) -> str:
    """The caller's owner id: its API key's hash when keys are configured (auth has checked it), else local."""
    if not request.app[CONFIG].server.api_keys:
        return owner_of(None)
    # the key auth accepted (a header, or a WebSocket's query or subprotocol); admin routes carry no API key
    return owner_of(request.get(API_KEY) or bearer_token(request) or None)


def _too_large(what: str) -> APIError:
    return APIError(413, f"'{what}' is larger than {MAX_UPLOAD_BYTES} bytes (10 MiB)", param=what,
                    code="request_too_large")


async def upload_expect(request: web.Request) -> web.StreamResponse | None:
    """``Expect: 100-continue``: an upload declared over the bound gets its 413 before it is sent."""
    if request.content_length is not None and request.content_length > MAX_MULTIPART_BYTES:
        return APIError(413, f"the upload is larger than {MAX_UPLOAD_BYTES} bytes (10 MiB)",
                        code="request_too_large").response()
    return await _default_expect_handler(request)


async def read_form(request: web.Request, files: tuple[str, ...]) -> dict[str, Any]:
    """A multipart form: file parts as bytes (≤ 10 MiB each, else 413), text fields as str."""
    if request.content_type == "application/json":  # no file can come this way; fields are still checked
        body = await read_json(request)
        return {k: v for k, v in body.items() if isinstance(v, str)} if isinstance(body, dict) else {}
    if request.content_type == "application/x-www-form-urlencoded":
        try:
            return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        except web.HTTPRequestEntityTooLarge:
            raise APIError(413, "the form is larger than the request body limit", code="request_too_large") from None
    if request.content_type != "multipart/form-data":
        raise APIError(415, f"Content-Type must be multipart/form-data, got {request.content_type or 'none'!r}",
                       code="unsupported_media_type")
    if request.content_length is not None and request.content_length > MAX_MULTIPART_BYTES:
        raise APIError(413, f"the upload is larger than {MAX_UPLOAD_BYTES} bytes (10 MiB)", code="request_too_large")
    form: dict[str, Any] = {}
    total = 0
    try:
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader) or not part.name:
                continue
            limit = MAX_UPLOAD_BYTES if part.name in files else MAX_FIELD_BYTES
            data = bytearray()
            while chunk := await part.read_chunk(65536):
                data += chunk
                total += len(chunk)
                if total > MAX_MULTIPART_BYTES:  # a chunked body has no Content-Length to check first
                    raise APIError(413, f"the upload is larger than {MAX_UPLOAD_BYTES} bytes (10 MiB)",
                                   code="request_too_large")
                if len(data) > limit:
                    if part.name in files:
                        raise _too_large(part.name)
                    raise APIError(400, f"'{part.name}' is longer than {limit} bytes", param=part.name,
                                   code="invalid_value")
            if part.name in files:
                form[part.name] = bytes(data)
            else:
                try:
                    form[part.name] = data.decode("utf-8")
                except UnicodeDecodeError:
                    raise APIError(400, f"'{part.name}' is not UTF-8 text", param=part.name,
                                   code="invalid_value") from None
    except APIError:
        raise
    except (ValueError, AssertionError, web.HTTPException) as exc:
        raise APIError(400, f"the multipart body could not be read: {exc}", code="invalid_body") from None
    return form


def _field(form: dict[str, Any], name: str, required: bool = True, max_chars: int = MAX_NAME_CHARS) -> str | None:
    value = form.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise APIError(400, f"'{name}' is required", param=name, code="missing_required_parameter")
        return None
    if not isinstance(value, str):
        raise APIError(400, f"'{name}' must be a text field", param=name, code="invalid_type")
    if len(value) > max_chars:
        raise APIError(400, f"'{name}' is longer than {max_chars} characters", param=name, code="invalid_value")
    return value.strip()


def _file(form: dict[str, Any], name: str) -> bytes:
    value = form.get(name)
    if not isinstance(value, bytes) or not value:
        raise APIError(400, f"'{name}' is required (an audio file)", param=name, code="missing_required_parameter")
    return value


def _language(value: str | None, name: str = "language") -> str | None:
    if value is not None and not LANGUAGE_RE.fullmatch(value):
        raise APIError(400, f"'{name}' must be a BCP 47 tag such as 'en-US'; got {value[:40]!r}", param=name,
                       code="invalid_value")
    return value


# -- consents --------------------------------------------------------------------------------------------
async def create_consent(request: web.Request) -> web.Response:
    form = await read_form(request, ("recording",))
    name = _field(form, "name")
    language = _language(_field(form, "language"))
    recording = _file(form, "recording")
    obj = await _run(request, request.app[STORE].create_consent, owner(request), name, language, recording)
    return web.json_response(obj)


async def list_consents(request: web.Request) -> web.Response:
    raw = request.query.get("limit", "20")
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise APIError(400, f"'limit' must be an integer from 1 to 100; got {raw[:20]!r}", param="limit",
                       code="invalid_value")
    after = request.query.get("after") or None
    try:
        page = await _run(request, request.app[STORE].list_consents, owner(request), after, limit)
    except APIError as exc:
        if exc.code == "consent_not_found":
            raise APIError(400, f"'after' names no consent of yours: {after!r}", param="after",
                           code="invalid_value") from None
        raise
    return web.json_response(page)


async def retrieve_consent(request: web.Request) -> web.Response:
    obj = await _run(request, request.app[STORE].get_consent, owner(request), request.match_info["consent_id"])
    return web.json_response(obj)


async def rename_consent(request: web.Request) -> web.Response:
    body = await read_json(request)
    name = _field(body if isinstance(body, dict) else {}, "name")
    obj = await _run(request, request.app[STORE].rename_consent, owner(request), request.match_info["consent_id"],
                     name)
    return web.json_response(obj)


async def delete_consent(request: web.Request) -> web.Response:
    cascade = request.query.get("cascade", "").lower() in ("1", "true", "yes")
    obj, voices = await _run(request, request.app[STORE].delete_consent, owner(request),
                             request.match_info["consent_id"], cascade)
    for vid in voices:
        await forget_everywhere(request.app, vid)
    await update_gauges(request.app)
    return web.json_response(obj)


# -- voices ----------------------------------------------------------------------------------------------
async def create_voice(request: web.Request) -> web.Response:
    form = await read_form(request, ("audio_sample",))
    kind = _field(form, "type", required=False) or "audio_sample"
    if kind == "prompt":
        raise APIError(400, "no served model designs voices from a prompt; create a voice from an audio_sample",
                       param="type", code="voice_design_not_supported")
    if kind != "audio_sample":
        raise APIError(400, f"'type' must be 'audio_sample' or 'prompt'; got {kind[:40]!r}", param="type",
                       code="invalid_value")
    name = _field(form, "name")
    consent = _field(form, "consent")
    sample = _file(form, "audio_sample")
    transcript = _field(form, "transcript", required=False, max_chars=MAX_TRANSCRIPT_CHARS)
    language = _language(_field(form, "language", required=False))
    store = request.app[STORE]
    decoded, similarity = await verify_speaker(request, consent, sample)
    obj = await _run(request, store.create_voice, owner(request), name, consent, decoded or sample, transcript,
                     language, similarity)
    if transcript is None:
        heard = await transcribe(request, obj["id"])
        if heard:
            obj = await _run(request, store.update_voice, owner(request), obj["id"], transcript=heard, bump=False)
    await update_gauges(request.app)
    return web.json_response(obj)


async def update_voice(request: web.Request) -> web.Response:
    """Extension: ``{"name"?, "transcript"?}`` — a new transcript is a new version (features recomputed)."""
    body = await read_json(request)
    body = body if isinstance(body, dict) else {}
    name = _field(body, "name", required=False)
    transcript = _field(body, "transcript", required=False, max_chars=MAX_TRANSCRIPT_CHARS)
    vid = request.match_info["voice_id"]
    obj = await _run(request, request.app[STORE].update_voice, owner(request), vid, name, transcript)
    if transcript is not None:
        await forget_everywhere(request.app, vid)
    return web.json_response(obj)


async def retrieve_voice(request: web.Request) -> web.Response:
    obj = await _run(request, request.app[STORE].get_voice, owner(request), request.match_info["voice_id"])
    return web.json_response({**obj, "models": cloning_models(request.app)})


async def delete_voice(request: web.Request) -> web.Response:
    vid = request.match_info["voice_id"]
    obj = await _run(request, request.app[STORE].delete_voice, owner(request), vid)
    await forget_everywhere(request.app, vid)
    await update_gauges(request.app)
    return web.json_response(obj)


async def custom_voices(request: web.Request) -> list[dict[str, Any]]:
    """The caller's voices for ``GET /v1/audio/voices``, each with the models that can speak it."""
    voices = await _run(request, request.app[STORE].list_voices, owner(request))
    models = cloning_models(request.app)
    return [{**v, "models": models} for v in voices]


# -- admin -----------------------------------------------------------------------------------------------
async def admin_list_voices(request: web.Request) -> web.Response:
    check_admin_access(request)
    voices = await _run(request, request.app[STORE].list_voices, None)
    return web.json_response({"object": "list", "data": voices})


async def admin_delete_voice(request: web.Request) -> web.Response:
    check_admin_access(request)
    vid = request.match_info["voice_id"]
    obj = await _run(request, request.app[STORE].delete_voice, None, vid)
    await forget_everywhere(request.app, vid)
    await update_gauges(request.app)
    return web.json_response(obj)


# -- workers ---------------------------------------------------------------------------------------------
def cloning_models(app: web.Application) -> list[str]:
    """Models with a ready worker whose engine clones."""
    return sorted({w.status.model for w in app[POOL].workers.values() if w.ready and w.status.clones})


async def forget_everywhere(app: web.Application, vid: str) -> None:
    """Every cloning worker drops the voice's cached features (best effort: a worker that does not answer
    holds an entry for an id no request can name again, and its LRU bound still holds)."""
    pool = app[POOL]
    workers = [w for w in pool.workers.values() if w.status.clones]
    replies = await asyncio.gather(*(pool.control(w, "forget_voice", FORGET_TIMEOUT_S, {"voice": vid})
                                     for w in workers))
    for w, reply in zip(workers, replies, strict=True):
        if not isinstance(reply, P.ControlReply) or not reply.ok:
            log.warning("worker %s did not confirm dropping voice %s", w.id, vid)


async def update_gauges(app: web.Application) -> None:
    loop = asyncio.get_running_loop()
    count, size = await loop.run_in_executor(app[EXECUTOR], app[STORE].count)
    app[METRICS].voices_stored.set(count)
    app[METRICS].voice_bytes.set(size)


async def speech_reference(request: web.Request, model_id: str, voice: str) -> dict[str, Any] | None:
    """For a custom voice id (``voice_...``): the reference the worker receives (its audio as 16-bit PCM,
    sent with every request: at most 30 s), after checking the caller owns it and the model clones.
    ``None`` for any other voice name."""
    if not voice.startswith(CUSTOM_PREFIX):
        return None
    app = request.app
    try:
        obj, pcm = await _run(request, app[STORE].voice_audio, owner(request), voice)
    except APIError as exc:
        if exc.status == 404:
            raise APIError(404, f"No voice with id '{voice}'", param="voice", code="voice_not_found") from None
        raise
    workers = app[POOL].ready_workers(model_id)
    if not any(w.status.clones for w in workers):
        raise APIError(400, f"model '{model_id}' cannot speak custom voices (its engine does not clone); "
                       f"models that can: {', '.join(cloning_models(app)) or 'none'}", param="voice",
                       code="voice_not_supported")
    if not obj.get("transcript") and all(w.status.needs_transcript for w in workers if w.status.clones):
        raise APIError(400, f"model '{model_id}' needs the voice's transcript; set one with POST "
                       f"/v1/audio/voices/{voice} {{\"transcript\": ...}}", param="voice",
                       code="voice_transcript_required")
    return {"id": obj["id"], "version": obj["version"], "pcm": pcm.tobytes(), "sample_rate": obj["sample_rate"],
            "transcript": obj.get("transcript"), "language": obj.get("language")}


# -- speaker verification -------------------------------------------------------------------------------
async def verify_speaker(request: web.Request, consent: str, sample: bytes) -> tuple[Decoded | None, float | None]:
    """When a ready worker has a speaker model: the sample (read and checked) and the cosine similarity of its
    speaker vector to the consent recording's; a similarity under ``speaker_match_threshold`` is a 400
    ``speaker_mismatch``. (None, None) when no served model verifies speakers. With the threshold at 0, a
    failed verification is logged and the voice is stored unverified; with one set, it refuses the voice."""
    app = request.app
    pool = app[POOL]
    verifiers = [w for w in pool.workers.values() if w.ready and w.status.verifies_speakers]
    if not verifiers:
        return None, None
    threshold = app[CONFIG].server.speaker_match_threshold
    decoded = await _run(request, read_sample, sample)
    recording = await _run(request, app[STORE].consent_audio, owner(request), consent)
    worker = min(verifiers, key=lambda w: w.status.active + w.status.queued)
    timeout = app[CONFIG].server.request_timeout_s
    replies = await asyncio.gather(*(pool.control(worker, "speaker_embedding", timeout, _pcm_args(d))
                                     for d in (recording, decoded)))
    vectors = [np.asarray(r.result.get("embedding") or [], np.float64)
               if isinstance(r, P.ControlReply) and r.ok else None for r in replies]
    why = next((r.message for r in replies if not (isinstance(r, P.ControlReply) and r.ok)), "")
    if not why and (vectors[0].shape != vectors[1].shape or not vectors[0].size):
        why = "the speaker vectors differ in size"
    if why:
        if not threshold:
            log.warning("voice sample not verified against its consent recording on %s: %s", worker.id, why)
            return decoded, None
        lost = any(isinstance(r, P.Error) for r in replies)  # the worker did not answer (not the audio's fault)
        raise APIError(503 if lost else 400, f"the sample's speaker could not be verified: {why}",
                       param="audio_sample", code="speaker_verification_failed")
    similarity = cosine(vectors[0], vectors[1])
    if threshold and similarity < threshold:
        raise APIError(400, f"the sample's speaker does not match the consent recording's (similarity "
                       f"{similarity:.3f}, at least {threshold:g} required)", param="audio_sample",
                       code="speaker_mismatch")
    return decoded, similarity


def _pcm_args(d: Decoded) -> dict[str, Any]:
    """At most MAX_VERIFY_S of a recording as 16-bit PCM, what the worker's control operation takes."""
    audio = d.audio[: int(MAX_VERIFY_S * d.sample_rate)]
    return {"pcm": (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes(), "sample_rate": d.sample_rate}


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity, 0 for a zero vector."""
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / norm) if norm > 0 else 0.0


# -- transcription (the eval extra) ----------------------------------------------------------------------
async def transcribe(request: web.Request, vid: str) -> str | None:
    """Whisper's transcript of an English voice's sample when the ``eval`` extra is installed; else None."""
    from vtts.evaluate import eval_packages_missing

    if eval_packages_missing():
        return None
    holder = request.app[TRANSCRIBER]
    store = request.app[STORE]

    def hear() -> str | None:
        obj, pcm = store.voice_audio(None, vid)
        if obj.get("language") and not str(obj["language"]).lower().startswith("en"):
            return None  # Whisper tiny.en hears English only
        with holder["lock"]:
            if holder.get("listener") is None:
                from vtts.evaluate import Listener

                holder["listener"] = Listener()
            return holder["listener"].hear(pcm.astype("float32") / 32768.0, obj["sample_rate"]) or None

    try:
        return await asyncio.get_running_loop().run_in_executor(request.app[EXECUTOR], hear)
    except Exception:  # a transcript is a convenience: the voice stands without one
        log.exception("transcribing voice %s failed", vid)
        return None


def setup_voice_routes(app: web.Application) -> None:
    """Open the store (``server.data_dir``) and add the routes. ``GET /v1/audio/voices`` stays in app.py,
    which merges :func:`custom_voices` into it."""
    server = app[CONFIG].server
    app[STORE] = VoiceStore(server.data_dir or default_data_dir(), max_voices=server.max_voices_per_owner,
                            max_bytes=server.max_voice_bytes_per_owner)
    app[TRANSCRIBER] = {"lock": threading.Lock()}

    async def lifecycle(app: web.Application):
        await update_gauges(app)
        yield
        app[STORE].close()

    app.cleanup_ctx.append(lifecycle)
    r = app.router
    r.add_post("/v1/audio/voice_consents", create_consent, expect_handler=upload_expect)
    r.add_get("/v1/audio/voice_consents", list_consents)
    r.add_get("/v1/audio/voice_consents/{consent_id}", retrieve_consent)
    r.add_post("/v1/audio/voice_consents/{consent_id}", rename_consent)
    r.add_delete("/v1/audio/voice_consents/{consent_id}", delete_consent)
    r.add_post("/v1/audio/voices", create_voice, expect_handler=upload_expect)
    r.add_get("/v1/audio/voices/{voice_id}", retrieve_voice)
    r.add_post("/v1/audio/voices/{voice_id}", update_voice)
    r.add_delete("/v1/audio/voices/{voice_id}", delete_voice)
    r.add_get("/admin/voices", admin_list_voices)
    r.add_delete("/admin/voices/{voice_id}", admin_delete_voice)
