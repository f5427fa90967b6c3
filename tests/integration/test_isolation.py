"""A model whose workers run under another interpreter: its own virtual environment, made by the test,
holding a dependency the server's environment does not have."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from tests.integration.conftest import start_server

ENGINE = '''
import isolated_only_dependency  # exists only in this venv

from vtts.workers.engines.piper import PiperEngine


class IsolatedPiper(PiperEngine):
    """The bundled voice, loadable only where isolated_only_dependency is installed."""

    def voices(self):
        return [type(v)(v.id, v.language, v.sample_rate, isolated_only_dependency.MARK) for v in super().voices()]
'''


@pytest.fixture(scope="module")
def other_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("isolated") / "venv"
    venv.EnvBuilder(with_pip=False).create(root)
    python = root / "bin" / "python"
    query = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.check_output([str(python), "-c", query], text=True).strip())
    # reuse the server's packages (vtts, onnxruntime, ...) underneath this venv's own
    (site / "server_packages.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    (site / "isolated_only_dependency.py").write_text('MARK = "served from the isolated venv"\n')
    (site / "isolated_engine.py").write_text(ENGINE)
    return python


def test_dependency_is_absent_from_the_server_environment() -> None:
    with pytest.raises(ImportError):
        __import__("isolated_only_dependency")


def test_worker_runs_under_the_models_interpreter(other_venv: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "vtts.toml"
    cfg.write_text(
        '[[models]]\nid = "joe"\nengine = "piper"\nmodel = "en_US-joe-medium"\n'
        '[[models]]\nid = "isolated"\nengine = "isolated_engine:IsolatedPiper"\nmodel = "en_US-joe-medium"\n'
        f'python = "{other_venv}"\n'
    )
    srv = start_server(["--config", str(cfg)], tmp_path)
    try:
        voices = {v["model"]: v for v in json.loads(srv.get("/v1/audio/voices")[1])["data"]}
        assert voices["isolated"]["description"] == "served from the isolated venv"
        assert voices["joe"]["description"] != voices["isolated"]["description"]
        models = {m["id"]: m for m in json.loads(srv.get("/admin/models")[1])["data"]}
        assert models["isolated"]["replicas"][0]["python"] == str(other_venv)
        assert models["joe"]["replicas"][0]["python"] == sys.executable
        import openai

        with openai.OpenAI(base_url=srv.url + "/v1", api_key="x", max_retries=0) as client:
            audio = client.audio.speech.create(model="isolated", voice="alloy", input="Isolated.",
                                               response_format="wav")
        assert len(audio.content) > 10_000
    finally:
        _, left = srv.stop()
    assert not left
