"""The ``vtts`` command's own logic (the commands themselves run in tests/integration/test_cli.py)."""

import pytest

from vtts import config as cfg
from vtts.cli import exposure_warning


@pytest.mark.parametrize(("host", "keys", "warns"), [
    ("0.0.0.0", [], True),
    ("::", [], True),
    ("192.168.1.5", [], True),
    ("0.0.0.0", ["k"], False),
    ("127.0.0.1", [], False),
    ("localhost", [], False),
])
def test_binding_beyond_loopback_without_keys_warns(host: str, keys: list[str], warns: bool) -> None:
    message = exposure_warning(cfg.ServerConfig(host=host, api_keys=keys))
    assert bool(message) == warns
    if warns:
        assert host in message and "api_keys" in message
