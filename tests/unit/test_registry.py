"""The engine registry: lazy imports keep each process to its own dependencies."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vtts.workers.registry import ENGINES, NOT_DETECTED, detect_engine, engine_class


def test_torch_stays_out_of_the_frontend_supervisor_and_scheduler() -> None:
    """torch takes seconds and hundreds of MB to import: only a torch engine's worker may pay for it."""
    code = (
        "import sys\n"
        "import vtts.frontend.app, vtts.frontend.server, vtts.supervisor.supervisor, vtts.cli\n"
        "import vtts.workers.scheduler, vtts.workers.worker, vtts.workers.registry, vtts.workers.offline\n"
        "from vtts.workers.registry import detect_engine\n"
        "detect_engine('/nonexistent/model.onnx')\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_the_reference_engine_is_registered_but_never_detected() -> None:
    pytest.importorskip("torch")
    assert "reference-lm" in ENGINES and "reference-lm" in NOT_DETECTED
    assert engine_class("reference-lm").name == "reference-lm"
    assert detect_engine("/nonexistent/tiny") is None


def test_unknown_engines_name_the_known_ones() -> None:
    with pytest.raises(KeyError, match="piper"):
        engine_class("nope")
