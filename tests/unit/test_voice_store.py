"""The voice library: decoding and checks, ownership, limits, pagination, atomic writes."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vtts.frontend import voice_store as vs
from vtts.frontend.voice_store import StoreError, VoiceStore, owner_of

RATE = 16000


def wav(seconds: float = 3.0, hz: float = 440.0, amp: float = 0.3, fmt: str = "WAV") -> bytes:
    t = np.arange(int(RATE * seconds)) / RATE
    buf = io.BytesIO()
    sf.write(buf, (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32), RATE, format=fmt)
    return buf.getvalue()


@pytest.fixture
def store(tmp_path: Path) -> VoiceStore:
    s = VoiceStore(tmp_path, max_voices=3, max_bytes=10 << 20)
    yield s
    s.close()


def test_owner_is_a_hash_never_the_key() -> None:
    assert owner_of("sk-secret") != "sk-secret" and len(owner_of("sk-secret")) == 64
    assert owner_of(None) == vs.LOCAL_OWNER


def test_voice_round_trip_and_survives_reopen(tmp_path: Path) -> None:
    s = VoiceStore(tmp_path)
    c = s.create_consent("a", "me", "en-US", wav(fmt="FLAC"))
    v = s.create_voice("a", "v1", c["id"], wav(hz=300), transcript="hello")
    s.close()
    s = VoiceStore(tmp_path)  # a restart serves what was created before it
    obj, pcm = s.voice_audio("a", v["id"])
    assert obj["transcript"] == "hello" and obj["sample_rate"] == RATE and pcm.dtype == np.int16
    peak = np.argmax(np.abs(np.fft.rfft(pcm.astype(float)))) * RATE / pcm.size
    assert abs(peak - 300) < 2
    assert sf.info(tmp_path / "audio" / f"{v['id']}.flac").format == "FLAC"


def test_other_owner_sees_nothing(store: VoiceStore) -> None:
    c = store.create_consent("a", "me", "en", wav())
    v = store.create_voice("a", "v", c["id"], wav())
    for call in (lambda: store.get_consent("b", c["id"]), lambda: store.get_voice("b", v["id"]),
                 lambda: store.delete_voice("b", v["id"]), lambda: store.delete_consent("b", c["id"])):
        with pytest.raises(StoreError) as e:
            call()
        assert e.value.status == 404
    with pytest.raises(StoreError) as e:
        store.create_voice("b", "v", c["id"], wav())
    assert e.value.status == 400 and e.value.param == "consent"
    assert store.list_voices("b") == [] and store.list_consents("b", None, 20)["data"] == []
    assert [x["owner"] for x in store.list_voices(None)] == ["a"]


@pytest.mark.parametrize(("data", "code"), [
    (b"not audio at all" * 100, "invalid_audio"),
    (wav(seconds=1.0), "invalid_audio_length"),
    (wav(seconds=31.0), "invalid_audio_length"),
    (wav(amp=0.0), "audio_silent"),
    (wav(amp=4.0), "audio_clipped"),
])
def test_bad_samples_refused(store: VoiceStore, data: bytes, code: str) -> None:
    c = store.create_consent("a", "me", "en", wav())
    with pytest.raises(StoreError) as e:
        store.create_voice("a", "v", c["id"], data)
    assert e.value.status == 400 and e.value.code == code
    if code == "invalid_audio_length":
        assert " s long" in e.value.message
    assert store.list_voices("a") == []
    assert sorted(p.name for p in store.audio_dir.iterdir()) == [f"{c['id']}.flac"]


def test_limits(tmp_path: Path) -> None:
    s = VoiceStore(tmp_path, max_voices=1, max_bytes=10 << 20)
    c = s.create_consent("a", "me", "en", wav())
    s.create_voice("a", "v", c["id"], wav())
    with pytest.raises(StoreError) as e:
        s.create_voice("a", "v2", c["id"], wav())
    assert e.value.status == 429 and "1 voices" in e.value.message
    s2 = VoiceStore(tmp_path / "b", max_voices=5, max_bytes=1000)
    c = s2.create_consent("a", "me", "en", wav())
    with pytest.raises(StoreError) as e:
        s2.create_voice("a", "v", c["id"], wav())
    assert e.value.status == 400 and "1000 bytes" in e.value.message
    assert not [p for p in s2.audio_dir.iterdir() if p.name.startswith("voice_")]


def test_pagination(store: VoiceStore) -> None:
    ids = [store.create_consent("a", f"c{i}", "en", wav(seconds=0.5))["id"] for i in range(5)]
    page = store.list_consents("a", None, 2)
    assert [c["id"] for c in page["data"]] == ids[:2] and page["has_more"]
    assert page["first_id"] == ids[0] and page["last_id"] == ids[1]
    page = store.list_consents("a", ids[3], 2)
    assert [c["id"] for c in page["data"]] == ids[4:] and not page["has_more"]


def test_consent_in_use_then_cascade(store: VoiceStore) -> None:
    c = store.create_consent("a", "me", "en", wav())
    v = store.create_voice("a", "v", c["id"], wav())
    with pytest.raises(StoreError) as e:
        store.delete_consent("a", c["id"])
    assert e.value.status == 409 and v["id"] in e.value.message
    _, gone = store.delete_consent("a", c["id"], cascade=True)
    assert gone == [v["id"]] and list(store.audio_dir.iterdir()) == []


def test_transcript_update_bumps_version(store: VoiceStore) -> None:
    c = store.create_consent("a", "me", "en", wav())
    v = store.create_voice("a", "v", c["id"], wav())
    assert store.update_voice("a", v["id"], transcript="new")["version"] == v["version"] + 1


def test_a_write_that_fails_leaves_nothing(store: VoiceStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure between the rename and the commit rolls back both the row and the file."""
    c = store.create_consent("a", "me", "en", wav())

    def boom(*a: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(store, "_fsync_dir", boom)
    with pytest.raises(OSError):
        store.create_voice("a", "v", c["id"], wav())
    assert store.list_voices("a") == []
    assert sorted(p.name for p in store.audio_dir.iterdir()) == [f"{c['id']}.flac"]


def test_leftovers_of_a_killed_upload_are_swept(tmp_path: Path) -> None:
    s = VoiceStore(tmp_path)
    c = s.create_consent("a", "me", "en", wav())
    s.close()
    (tmp_path / "audio" / ".voice_x.flac.ab.tmp").write_bytes(b"half")
    (tmp_path / "audio" / "voice_orphan.flac").write_bytes(b"renamed, never committed")
    s = VoiceStore(tmp_path)
    assert s.get_consent("a", c["id"])["name"] == "me"  # the first use opens the store and sweeps
    assert sorted(os.listdir(tmp_path / "audio")) == [f"{c['id']}.flac"]


def test_an_unused_store_creates_nothing(tmp_path: Path) -> None:
    s = VoiceStore(tmp_path / "data")
    assert s.list_voices("a") == [] and s.count() == (0, 0) and s.list_consents("a", None, 5)["data"] == []
    with pytest.raises(StoreError):
        s.get_voice("a", "voice_x")
    assert not (tmp_path / "data").exists()


def test_an_unwritable_data_dir_is_a_503(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    s = VoiceStore(tmp_path / "file" / "data")
    with pytest.raises(StoreError) as e:
        s.create_consent("a", "me", "en", wav())
    assert e.value.status == 503


def test_speaker_similarity_is_stored_shown_and_consent_audio_read_back(store: VoiceStore) -> None:
    c = store.create_consent("a", "me", "en-US", wav(hz=300))
    heard = store.consent_audio("a", c["id"])
    assert heard.sample_rate == RATE and abs(heard.duration - 3.0) < 0.01
    assert np.max(np.abs(heard.audio)) == pytest.approx(0.3, abs=0.01)
    with pytest.raises(StoreError) as err:
        store.consent_audio("b", c["id"])  # another owner's consent is no consent of theirs
    assert (err.value.status, err.value.code) == (400, "consent_not_found")
    checked = vs.read_sample(wav())
    v = store.create_voice("a", "v", c["id"], checked, speaker_similarity=0.81234567)
    assert v["speaker_similarity"] == 0.8123 and v["duration"] == 3.0
    unverified = store.create_voice("a", "u", c["id"], wav())
    assert unverified["speaker_similarity"] is None
    assert [x["speaker_similarity"] for x in store.list_voices("a")] == [0.8123, None]


def test_a_library_from_before_speaker_similarity_gains_the_column(tmp_path: Path) -> None:
    import sqlite3

    old_schema = vs.SCHEMA.replace(", speaker_similarity REAL", "")
    assert old_schema != vs.SCHEMA
    db = sqlite3.connect(tmp_path / "voices.sqlite3")
    db.executescript(old_schema)
    db.execute("INSERT INTO voices (id, owner, name, consent, created_at, file, bytes, sample_rate, duration, seq) "
               "VALUES ('voice_old', 'a', 'old', 'cons_x', 1, 'voice_old.flac', 1, 16000, 3.0, 1)")
    db.commit()
    db.close()
    s = VoiceStore(tmp_path)
    try:
        assert s.get_voice("a", "voice_old")["speaker_similarity"] is None
        c = s.create_consent("a", "me", "en-US", wav())
        assert s.create_voice("a", "new", c["id"], wav(), speaker_similarity=0.5)["speaker_similarity"] == 0.5
    finally:
        s.close()
