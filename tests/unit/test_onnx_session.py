from pathlib import Path

import onnxruntime as ort
import pytest

from vtts.workers.engine import ModelLoadError
from vtts.workers.onnx_session import open_session, providers


def test_cpu_asks_for_the_cpu_provider_only() -> None:
    assert providers("cpu") == ["CPUExecutionProvider"]


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "gpu:0"])
def test_unknown_devices_are_refused(device: str) -> None:
    with pytest.raises(ModelLoadError, match="unsupported device"):
        providers(device)


def test_cuda_needs_the_gpu_package(monkeypatch: pytest.MonkeyPatch) -> None:
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(ModelLoadError, match="onnxruntime-gpu"):
            providers("cuda")
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    cuda, cpu = providers("cuda:1")
    assert cuda == ("CUDAExecutionProvider", {"device_id": 1, "cudnn_conv_algo_search": "HEURISTIC"})
    assert cpu == "CPUExecutionProvider"


def test_a_bad_file_is_a_load_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a graph")
    with pytest.raises(ModelLoadError, match="broken.onnx"):
        open_session(bad, "cpu", intra_op_threads=1)
