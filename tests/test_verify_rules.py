"""verify's pure decisions, by table: torch vs hardware, launch flags vs machine, files, repositories, smoke documents."""

from __future__ import annotations

import pytest

from sdsetup import verify

CPU_TORCH = {"ok": True, "torch": "2.1.2+cpu", "torch_cuda": None, "torch_hip": None, "cuda_available": False, "mps_available": False}
CUDA_TORCH = {"ok": True, "torch": "2.1.2+cu121", "torch_cuda": "12.1", "torch_hip": None, "cuda_available": True,
              "mps_available": False, "gpu": {"name": "NVIDIA GeForce RTX 3060"}}
CUDA_TORCH_NO_GPU = dict(CUDA_TORCH, cuda_available=False, gpu=None)
ROCM_TORCH = {"ok": True, "torch": "2.1.2+rocm5.6", "torch_cuda": None, "torch_hip": "5.6", "cuda_available": True, "mps_available": False}
MPS_TORCH = {"ok": True, "torch": "2.3.1", "torch_cuda": None, "torch_hip": None, "cuda_available": False, "mps_available": True}
NO_TORCH = {"ok": False, "error": {"kind": "import_torch", "message": "torch does not import in venv/bin/python: No module named 'torch'"}}
FIX = "venv/bin/python -m pip install --force-reinstall torch==2.1.2 torchvision==0.16.2 --extra-index-url https://download.pytorch.org/whl/cu121"


@pytest.mark.parametrize(
    "doc, expected, status, words",
    [
        (CPU_TORCH, "cuda", "fail", ["CPU-only build", "NVIDIA GeForce RTX 3060", "Torch is not able to use GPU"]),
        (CUDA_TORCH, "cuda", "ok", ["CUDA 12.1", "uses NVIDIA GeForce RTX 3060"]),
        (CUDA_TORCH_NO_GPU, "cuda", "fail", ["cannot use", "driver too old"]),
        (ROCM_TORCH, "cuda", "fail", ["ROCm"]),
        (CPU_TORCH, "rocm", "fail", ["CPU-only", "AMD"]),
        (ROCM_TORCH, "rocm", "ok", ["ROCm 5.6"]),
        (CPU_TORCH, "cpu", "ok", ["CPU-only"]),
        (CUDA_TORCH_NO_GPU, "cpu", "warn", ["runs on the CPU"]),
        (MPS_TORCH, "mps", "ok", ["Apple GPU"]),
        (CPU_TORCH, "mps", "fail", ["cannot use the Apple GPU"]),
        (NO_TORCH, "cuda", "fail", ["does not import"]),
        (CPU_TORCH, None, "info", ["not compared"]),
    ],
)
def test_torch_backend_against_the_machine(doc, expected, status, words):
    item = verify.torch_item(doc, expected, gpu_name="NVIDIA GeForce RTX 3060" if expected == "cuda" else ("AMD Radeon RX 6700 XT" if expected == "rocm" else None),
                             fix_command=FIX, driver_problem="driver too old")
    assert item["status"] == status, item
    for word in words:
        assert word in item["value"], (word, item["value"])
    if status == "fail" and doc is not CUDA_TORCH_NO_GPU:
        assert FIX in item["fix"]


@pytest.mark.parametrize(
    "args, backend, vram_flags, upcast, status, words",
    [
        ("--use-cpu all --precision full --no-half --skip-torch-cuda-test", "cpu", (), False, "ok", ["consistent"]),
        ("--no-half", "cpu", (), False, "fail", ["--skip-torch-cuda-test", "Torch is not able to use GPU"]),
        ("--skip-torch-cuda-test", "cpu", (), False, "fail", ["--no-half"]),
        # CPU flags on a GPU machine
        ("--use-cpu all --precision full --no-half --skip-torch-cuda-test", "cuda", (), False, "fail", ["--use-cpu all", "on the CPU"]),
        ("--xformers --skip-torch-cuda-test", "cuda", (), False, "warn", ["hides"]),
        ("--xformers", "cuda", (), False, "ok", ["consistent"]),
        ("--xformers --no-half", "cuda", (), False, "warn", ["doubles VRAM"]),
        ("--xformers --upcast-sampling --no-half", "cuda", (), True, "ok", []),  # GTX 16xx: --no-half is a remedy
        # VRAM tier flags (detect.recommend.vram_tier)
        ("--xformers", "cuda", ("--lowvram",), False, "fail", ["--lowvram", "run out of memory"]),
        ("--xformers --medvram", "cuda", ("--lowvram",), False, "warn", ["--lowvram"]),
        ("--xformers --lowvram", "cuda", ("--lowvram",), False, "ok", []),
        ("--xformers", "cuda", ("--medvram",), False, "warn", ["--medvram"]),
        ("--xformers --lowvram", "cuda", ("--medvram",), False, "ok", []),
        ("--xformers", "cuda", ("--medvram-sdxl",), False, "ok", []),
        ("--skip-torch-cuda-test --upcast-sampling --no-half-vae --use-cpu interrogate", "mps", (), False, "ok", []),
        ("", None, (), False, "info", ["not compared"]),
    ],
)
def test_launch_flags_against_the_machine(args, backend, vram_flags, upcast, status, words):
    item = verify.launch_args_item(args.split(), backend, source="webui-user.sh", gpu_name="the GPU", vram_flags=vram_flags, upcast_card=upcast)
    assert item["status"] == status, item
    for word in words:
        assert word in item["value"], (word, item["value"])
    if status in ("fail", "warn"):
        assert "webui-user.sh" in item["fix"]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--xformers"], {"webui_flags": []}),
        (["--no-half-vae", "--xformers"], {"webui_flags": ["--no-half-vae"]}),
        (["--use-cpu", "all", "--precision", "full", "--no-half"], {"webui_flags": ["--no-half"], "device": "cpu"}),
        (["--precision", "full"], {"webui_flags": ["--no-half"]}),
        (["--use-cpu", "interrogate", "--upcast-sampling"], {"webui_flags": ["--upcast-sampling"]}),
    ],
)
def test_smoke_runs_with_the_web_uis_precision_and_device_flags(args, expected):
    assert verify.smoke_options_from_args(args) == expected


def _file(**overrides):
    values = dict(expected_size=100, expected_sha256="ab" * 32, exists=True, size=100, sha256="ab" * 32, cached=True,
                  fix_missing="download it", fix_bad="move it aside")
    values.update(overrides)
    return verify.file_item("model:m", "m", **values)


def test_file_checks():
    assert _file()["status"] == "ok" and "from cache" in _file()["value"]
    missing = _file(exists=False, size=None, sha256=None)
    assert missing["status"] == "fail" and missing["value"] == "missing" and missing["fix"] == "download it"
    short = _file(size=40, sha256=None)
    assert short["status"] == "fail" and "expected 100 bytes" in short["value"] and short["fix"] == "move it aside"
    wrong = _file(sha256="cd" * 32)
    assert wrong["status"] == "fail" and "sha256 cdcdcdcdcdcd" in wrong["value"] and "expected abababababab" in wrong["value"]
    assert _file(expected_sha256=None, sha256=None)["status"] == "ok"


def test_repository_checks():
    pin, other = "a" * 40, "b" * 40
    assert verify.repo_item("r", "R", "/x", expected=pin, head=pin, exists=True, dirty=False)["status"] == "ok"
    moved = verify.repo_item("r", "R", "/x", expected=pin, head=other, exists=True, dirty=False)
    assert moved["status"] == "fail" and "bbbbbbbbbb" in moved["value"] and f"checkout {pin}" in moved["fix"]
    assert verify.repo_item("r", "R", "/x", expected=pin, head=None, exists=False, dirty=False)["value"].endswith("missing")
    assert "not a git checkout" in verify.repo_item("r", "R", "/x", expected=pin, head=None, exists=True, dirty=False)["value"]
    assert verify.repo_item("r", "R", "/x", expected=pin, head=pin, exists=True, dirty=True)["status"] == "warn"


def test_smoke_documents_become_items():
    ok = {"ok": True, "device": "cuda", "device_name": "NVIDIA GeForce RTX 3060", "dtype": "float16", "steps": 20, "width": 512,
          "height": 512, "timings": {"steps": 3.2}, "seconds_per_step": 0.16, "seconds_total": 9.5, "peak_vram_bytes": 3 * 2**30,
          "image": "/tmp/a.png", "model": {"kind": "checkpoint", "path": "/m/v1-5-pruned-emaonly.safetensors"}}
    item = verify.smoke_item(ok)
    assert item["status"] == "ok"
    for word in ("v1-5-pruned-emaonly.safetensors", "NVIDIA GeForce RTX 3060 float16", "20 steps 512x512", "0.160 s/step", "3.0 GiB", "/tmp/a.png"):
        assert word in item["value"], word
    nan = {"ok": False, "error": {"kind": "nan_image", "message": "NaN", "fix": "add --no-half-vae", "fix_flags": ["--no-half-vae"]}}
    failed = verify.smoke_item(nan)
    assert failed["status"] == "fail" and failed["fix"] == "add --no-half-vae" and failed["fix_flags"] == ["--no-half-vae"]


def test_summary_fails_on_any_failed_item_only():
    items = [{"id": "a", "status": "ok"}, {"id": "b", "status": "warn"}, {"id": "c", "status": "info"}]
    assert verify.summarize(items) == {"ok": True, "failed": [], "warnings": ["b"], "checks": 3}
    assert verify.summarize(items + [{"id": "d", "status": "fail"}])["failed"] == ["d"]
