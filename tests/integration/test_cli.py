"""``vtts speak`` and ``vtts voices`` as a user runs them (subprocesses, the bundled voice)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.audio import decode, rms


def vtts(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vtts", *args], input=stdin, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("fmt", ["mp3", "wav", "flac"])
def test_speak_writes_a_file_in_the_extension_format(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"out.{fmt}"
    result = vtts("speak", "Speaking straight to a file.", "-o", str(out))
    assert result.returncode == 0, result.stderr
    samples, rate = decode(out.read_bytes(), fmt)
    assert rate == 22050 and 0.8 < samples.size / rate < 5 and rms(samples) > 0.02


def test_speak_reads_stdin_with_explicit_format(tmp_path: Path) -> None:
    out = tmp_path / "out.bin"
    text = " ".join(f"Line {i} of a longer input." for i in range(8))
    result = vtts("speak", "-", "-o", str(out), "--format", "pcm", "--speed", "1.5", stdin=text)
    assert result.returncode == 0, result.stderr
    samples, _ = decode(out.read_bytes(), "pcm")
    assert samples.size / 24000 > 3 and rms(samples) > 0.02


def test_speak_errors_are_clear(tmp_path: Path) -> None:
    result = vtts("speak", "hi", "-o", str(tmp_path / "x.wav"), "--voice", "nobody")
    assert result.returncode == 1 and "nobody" in result.stderr and "Traceback" not in result.stderr


def test_voices_lists_the_bundled_voice() -> None:
    result = vtts("voices")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["piper-joe", "en_US-joe-medium", "en-US", "22050"]


def test_serve_rejects_an_unknown_model_reference() -> None:
    result = vtts("serve", "/no/such/model.onnx")
    assert result.returncode == 2 and "--engine" in result.stderr
