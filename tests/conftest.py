"""Session-wide fixtures: tiny generated models that take seconds to make, made once and shared read-only."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tiny_models import script


@pytest.fixture(scope="session")
def tiny_gptsovits_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scripts/make_tiny_gptsovits.py's directory (about 4 s to write on CI), for the engine's unit tests and the
    served-model test alike; nobody writes into it (a test that needs a broken copy makes its own)."""
    return script("make_tiny_gptsovits").make_tiny_gptsovits(tmp_path_factory.mktemp("gptsovits") / "tiny")
