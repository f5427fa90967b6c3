"""The custom-voice library: consents and voices in SQLite (WAL) plus mono FLAC files under a data directory.

Blocking by design (sqlite3, file I/O, PyAV decoding): the HTTP handlers call it through the app's executor.
Writes are atomic: the audio goes to a temporary file in the same directory, is fsynced, and is renamed into
place inside the transaction that inserts its row; a process killed at any point leaves the row and its file
together or neither (a renamed file whose row never committed is an orphan, removed at the next start).
Everything belongs to an owner: the SHA-256 of the API key that created it (``local`` without keys).
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: OpenAI's bound on ``recording`` and ``audio_sample``
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MIN_SAMPLE_S, MAX_SAMPLE_S = 2.0, 30.0
#: a consent recording is refused past this (it only has to say the consent phrase)
MAX_CONSENT_S = 120.0
#: a frame (20 ms) quieter than this RMS is silence; a sample this much silent is refused
SILENCE_RMS = 10 ** (-50 / 20)
MAX_SILENT_FRACTION = 0.8
#: a sample at full scale this often is clipped beyond use
CLIP_LEVEL = 0.999
MAX_CLIPPED_FRACTION = 0.5
LOCAL_OWNER = "local"

SCHEMA = """
CREATE TABLE IF NOT EXISTS consents (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, language TEXT NOT NULL,
    created_at INTEGER NOT NULL, file TEXT NOT NULL, bytes INTEGER NOT NULL, seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS voices (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, consent TEXT NOT NULL,
    language TEXT, transcript TEXT, created_at INTEGER NOT NULL, file TEXT NOT NULL, bytes INTEGER NOT NULL,
    sample_rate INTEGER NOT NULL, duration REAL NOT NULL, version INTEGER NOT NULL DEFAULT 1,
    seq INTEGER NOT NULL, speaker_similarity REAL
);
CREATE INDEX IF NOT EXISTS consents_owner ON consents(owner, seq);
CREATE INDEX IF NOT EXISTS voices_owner ON voices(owner, seq);
"""


class StoreError(Exception):
    """A refusal the API turns into an OpenAI-shaped error: ``status``, ``code``, ``param``."""

    def __init__(self, status: int, message: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param


def owner_of(api_key: str | None) -> str:
    """The owner an API key stands for: its SHA-256 (the key itself is never stored)."""
    return hashlib.sha256(api_key.encode()).hexdigest() if api_key else LOCAL_OWNER


def default_data_dir() -> Path:
    """$XDG_DATA_HOME/vtts, else ~/.local/share/vtts."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "vtts"


@dataclass
class Decoded:
    """Mono float32 audio and its rate."""

    audio: np.ndarray
    sample_rate: int

    @property
    def duration(self) -> float:
        return self.audio.size / self.sample_rate if self.sample_rate else 0.0


def decode_audio(data: bytes, param: str) -> Decoded:
    """Decode any container/codec PyAV knows (whatever the declared type) to mono float32; 400 if it is not
    audio."""
    import av

    chunks: list[np.ndarray] = []
    rate = 0
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise StoreError(400, f"'{param}' holds no audio stream", "invalid_audio", param)
            stream = container.streams.audio[0]
            rate = stream.codec_context.sample_rate or stream.rate or 0
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate or None)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1).copy())
                    rate = out.sample_rate
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1).copy())
    except StoreError:
        raise
    except Exception as exc:  # PyAV raises many types for garbage input
        raise StoreError(400, f"'{param}' is not audio that can be decoded ({type(exc).__name__})", "invalid_audio",
                         param) from None
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if audio.size == 0 or rate <= 0:
        raise StoreError(400, f"'{param}' decodes to no audio", "invalid_audio", param)
    return Decoded(audio, int(rate))


def check_sample(d: Decoded, param: str = "audio_sample") -> None:
    """Length within 2–30 s, not mostly silence, not mostly clipped."""
    if not MIN_SAMPLE_S <= d.duration <= MAX_SAMPLE_S:
        raise StoreError(400, f"'{param}' is {d.duration:.2f} s long; a voice sample must be between "
                         f"{MIN_SAMPLE_S:g} and {MAX_SAMPLE_S:g} s", "invalid_audio_length", param)
    frame = max(1, d.sample_rate // 50)
    n = d.audio.size // frame
    if n:
        rms = np.sqrt(np.mean(d.audio[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1))
        silent = float(np.mean(rms < SILENCE_RMS))
        if silent > MAX_SILENT_FRACTION:
            raise StoreError(400, f"'{param}' is silent over {silent:.0%} of its length", "audio_silent", param)
    clipped = float(np.mean(np.abs(d.audio) >= CLIP_LEVEL))
    if clipped > MAX_CLIPPED_FRACTION:
        raise StoreError(400, f"'{param}' is clipped over {clipped:.0%} of its samples", "audio_clipped", param)


def read_sample(data: bytes) -> Decoded:
    """A voice sample decoded and checked (:func:`check_sample`)."""
    decoded = decode_audio(data, "audio_sample")
    check_sample(decoded)
    return decoded


def _migrate(db: sqlite3.Connection) -> None:
    """Columns added since a library was created (a library outlives upgrades)."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(voices)")}
    if "speaker_similarity" not in columns:
        db.execute("ALTER TABLE voices ADD COLUMN speaker_similarity REAL")


def flac_bytes(d: Decoded) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, d.audio, d.sample_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class VoiceStore:
    """Consents and voices per owner. Thread-safe (one connection behind a lock)."""

    def __init__(self, data_dir: str | os.PathLike[str], max_voices: int = 100, max_bytes: int = 256 << 20) -> None:
        self.root = Path(data_dir)
        self.audio_dir = self.root / "audio"
        self.max_voices = max_voices
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._open_lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    @property
    def _db(self) -> sqlite3.Connection:
        """The connection, opened (directory, schema, sweep) on first use: a server nobody asks for voices
        never creates its data directory."""
        with self._open_lock:
            if self._conn is None:
                try:
                    self.audio_dir.mkdir(parents=True, exist_ok=True)
                    db = sqlite3.connect(self.root / "voices.sqlite3", check_same_thread=False, isolation_level=None)
                except (OSError, sqlite3.Error) as exc:
                    raise StoreError(503, f"the voice library at {self.root} cannot be opened: {exc}",
                                     "voice_store_unavailable") from None
                db.row_factory = sqlite3.Row
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.executescript(SCHEMA)
                _migrate(db)
                self._sweep(db)
                self._conn = db
            return self._conn

    def _empty(self) -> bool:
        """Nothing was ever stored here (and the store is not open): reads answer empty without creating it."""
        return self._conn is None and not (self.root / "voices.sqlite3").exists()

    def close(self) -> None:
        with self._lock, self._open_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- files ---------------------------------------------------------------------------------------
    def _sweep(self, db: sqlite3.Connection) -> None:
        """Remove temporary files and files no row names: what a killed upload left behind."""
        names = {r[0] for r in db.execute("SELECT file FROM consents UNION SELECT file FROM voices")}
        for path in self.audio_dir.iterdir():
            if path.name not in names:
                path.unlink(missing_ok=True)

    def _insert(self, table: str, row: dict[str, Any], data: bytes) -> None:
        """Write ``data`` to a temp file, then insert ``row`` and rename the file into place in one
        transaction (the rename happens before the commit; a failure rolls both back)."""
        self._db  # noqa: B018 - opened (directory made) before the temporary file is written
        final = self.audio_dir / row["file"]
        tmp = self.audio_dir / f".{row['file']}.{secrets.token_hex(4)}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._check_limits(table, row)
                    seq = self._db.execute(f"SELECT COALESCE(MAX(seq), 0) + 1 FROM {table}").fetchone()[0]
                    cols = {**row, "seq": seq}
                    self._db.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                                     list(cols.values()))
                    os.replace(tmp, final)
                    self._fsync_dir()
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    final.unlink(missing_ok=True)
                    raise
        finally:
            tmp.unlink(missing_ok=True)

    def _fsync_dir(self) -> None:
        fd = os.open(self.audio_dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _check_limits(self, table: str, row: dict[str, Any]) -> None:
        if table != "voices":
            return
        count, used = self._db.execute("SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM voices WHERE owner = ?",
                                       (row["owner"],)).fetchone()
        if count >= self.max_voices:
            raise StoreError(429, f"voice limit reached: {self.max_voices} voices per owner; delete one first",
                             "voice_limit_exceeded")
        if used + row["bytes"] > self.max_bytes:
            raise StoreError(400, f"voice storage limit reached: {self.max_bytes} bytes per owner "
                             f"({used} used, this sample needs {row['bytes']})", "voice_storage_exceeded")

    # -- consents ------------------------------------------------------------------------------------
    def create_consent(self, owner: str, name: str, language: str, recording: bytes) -> dict[str, Any]:
        decoded = decode_audio(recording, "recording")
        if decoded.duration > MAX_CONSENT_S:
            raise StoreError(400, f"'recording' is {decoded.duration:.1f} s long; at most {MAX_CONSENT_S:g} s",
                             "invalid_audio_length", "recording")
        cid = _new_id("cons")
        data = flac_bytes(decoded)
        row = {"id": cid, "owner": owner, "name": name, "language": language, "created_at": int(time.time()),
               "file": f"{cid}.flac", "bytes": len(data)}
        self._insert("consents", row, data)
        return self.get_consent(owner, cid)

    def _consent_row(self, owner: str | None, cid: str) -> sqlite3.Row:
        with self._lock:
            row = None if self._empty() else self._db.execute("SELECT * FROM consents WHERE id = ?", (cid,)).fetchone()
        if row is None or (owner is not None and row["owner"] != owner):
            raise StoreError(404, f"No consent with id '{cid}'", "consent_not_found", "consent_id")
        return row

    @staticmethod
    def consent_object(row: sqlite3.Row) -> dict[str, Any]:
        return {"object": "audio.voice_consent", "id": row["id"], "name": row["name"], "language": row["language"],
                "created_at": row["created_at"]}

    def get_consent(self, owner: str | None, cid: str) -> dict[str, Any]:
        return self.consent_object(self._consent_row(owner, cid))

    def rename_consent(self, owner: str, cid: str, name: str) -> dict[str, Any]:
        self._consent_row(owner, cid)
        with self._lock:
            self._db.execute("UPDATE consents SET name = ? WHERE id = ?", (name, cid))
        return self.get_consent(owner, cid)

    def list_consents(self, owner: str, after: str | None, limit: int) -> dict[str, Any]:
        if self._empty():
            return {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}
        start = 0
        if after:
            start = self._consent_row(owner, after)["seq"]
        with self._lock:
            rows = self._db.execute("SELECT * FROM consents WHERE owner = ? AND seq > ? ORDER BY seq LIMIT ?",
                                    (owner, start, limit + 1)).fetchall()
        data = [self.consent_object(r) for r in rows[:limit]]
        return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None, "has_more": len(rows) > limit}

    def delete_consent(self, owner: str | None, cid: str, cascade: bool = False) -> tuple[dict[str, Any], list[str]]:
        """Delete a consent; its voices block it (409 naming them) unless ``cascade``. Returns the deleted
        object and the ids of voices deleted with it."""
        row = self._consent_row(owner, cid)
        with self._lock:
            users = [r[0] for r in self._db.execute("SELECT id FROM voices WHERE consent = ? ORDER BY seq", (cid,))]
        if users and not cascade:
            raise StoreError(409, f"consent '{cid}' is used by voices {', '.join(users)}; delete them first or "
                             "pass ?cascade=true", "consent_in_use", "consent_id")
        for vid in users:
            self.delete_voice(None, vid)
        with self._lock:
            self._db.execute("DELETE FROM consents WHERE id = ?", (cid,))
        (self.audio_dir / row["file"]).unlink(missing_ok=True)
        return {"id": cid, "object": "audio.voice_consent", "deleted": True}, users

    # -- voices --------------------------------------------------------------------------------------
    def create_voice(self, owner: str, name: str, consent: str, sample: bytes | Decoded,
                     transcript: str | None = None, language: str | None = None,
                     speaker_similarity: float | None = None) -> dict[str, Any]:
        """Store a voice; ``sample`` as uploaded, or already read by :func:`read_sample`."""
        cons = self._own_consent(owner, consent)
        decoded = sample if isinstance(sample, Decoded) else read_sample(sample)
        vid = _new_id("voice")
        data = flac_bytes(decoded)
        row = {"id": vid, "owner": owner, "name": name, "consent": consent, "language": language or cons["language"],
               "transcript": transcript, "created_at": int(time.time()), "file": f"{vid}.flac", "bytes": len(data),
               "sample_rate": decoded.sample_rate, "duration": round(decoded.duration, 3),
               "speaker_similarity": None if speaker_similarity is None else round(float(speaker_similarity), 4)}
        self._insert("voices", row, data)
        return self.get_voice(owner, vid)

    def _own_consent(self, owner: str, consent: str) -> sqlite3.Row:
        """The consent a new voice names: the caller's own, else 400 (the field is wrong, not the URL)."""
        try:
            return self._consent_row(owner, consent)
        except StoreError:
            raise StoreError(400, f"'consent' names no consent of yours: '{consent}'", "consent_not_found",
                             "consent") from None

    def consent_audio(self, owner: str, consent: str) -> Decoded:
        """A consent recording's audio (for speaker verification)."""
        import soundfile as sf

        row = self._own_consent(owner, consent)
        audio, rate = sf.read(self.audio_dir / row["file"], dtype="float32")
        return Decoded(np.asarray(audio, np.float32).reshape(-1), int(rate))

    def _voice_row(self, owner: str | None, vid: str) -> sqlite3.Row:
        with self._lock:
            row = None if self._empty() else self._db.execute("SELECT * FROM voices WHERE id = ?", (vid,)).fetchone()
        if row is None or (owner is not None and row["owner"] != owner):
            raise StoreError(404, f"No voice with id '{vid}'", "voice_not_found", "voice_id")
        return row

    @staticmethod
    def voice_object(row: sqlite3.Row, admin: bool = False) -> dict[str, Any]:
        obj = {"object": "audio.voice", "id": row["id"], "name": row["name"], "type": "audio_sample",
               "created_at": row["created_at"], "consent": row["consent"], "language": row["language"],
               "transcript": row["transcript"], "duration": row["duration"], "sample_rate": row["sample_rate"],
               "version": row["version"], "speaker_similarity": row["speaker_similarity"]}
        if admin:
            obj["owner"] = row["owner"]
            obj["bytes"] = row["bytes"]
        return obj

    def get_voice(self, owner: str | None, vid: str) -> dict[str, Any]:
        return self.voice_object(self._voice_row(owner, vid))

    def list_voices(self, owner: str | None) -> list[dict[str, Any]]:
        """An owner's voices (``None``: everyone's, with owner and size, for the admin API)."""
        if self._empty():
            return []
        with self._lock:
            if owner is None:
                rows = self._db.execute("SELECT * FROM voices ORDER BY seq").fetchall()
            else:
                rows = self._db.execute("SELECT * FROM voices WHERE owner = ? ORDER BY seq", (owner,)).fetchall()
        return [self.voice_object(r, admin=owner is None) for r in rows]

    def update_voice(self, owner: str, vid: str, name: str | None = None, transcript: str | None = None,
                     bump: bool = True) -> dict[str, Any]:
        """Rename or replace the transcript; a new transcript bumps the version (workers' cached features
        for the old one are no longer used) unless ``bump`` is False (the first transcript of a new voice,
        which no request has used yet)."""
        self._voice_row(owner, vid)
        with self._lock:
            if name is not None:
                self._db.execute("UPDATE voices SET name = ? WHERE id = ?", (name, vid))
            if transcript is not None:
                self._db.execute("UPDATE voices SET transcript = ?, version = version + ? WHERE id = ?",
                                 (transcript, int(bump), vid))
        return self.get_voice(owner, vid)

    def voice_audio(self, owner: str | None, vid: str) -> tuple[dict[str, Any], np.ndarray]:
        """The voice's object and its samples as 16-bit PCM (what workers receive)."""
        import soundfile as sf

        row = self._voice_row(owner, vid)
        pcm, _ = sf.read(self.audio_dir / row["file"], dtype="int16")
        return self.voice_object(row), pcm

    def delete_voice(self, owner: str | None, vid: str) -> dict[str, Any]:
        row = self._voice_row(owner, vid)
        with self._lock:
            self._db.execute("DELETE FROM voices WHERE id = ?", (vid,))
        (self.audio_dir / row["file"]).unlink(missing_ok=True)
        return {"id": vid, "object": "audio.voice.deleted", "deleted": True}

    def count(self) -> tuple[int, int]:
        """(voices, bytes) stored across owners."""
        if self._empty():
            return 0, 0
        with self._lock:
            n, b = self._db.execute("SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM voices").fetchone()
        return int(n), int(b)
