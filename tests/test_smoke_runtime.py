"""runtime/smoke.py end to end on the CPU with the real stack (torch, diffusers, transformers).

The runtime protocol: arguments in, exactly one JSON document on stdout, a non-zero exit with a JSON
error. The runtime runs as a subprocess of this interpreter, as sdsetup runs it in the web UI venv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "runtime" / "smoke.py"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("smoke-model-cache")


def smoke(*args: str, env: dict | None = None, timeout: float = 300) -> tuple[int, dict, str]:
    child_env = dict(os.environ)
    child_env.update(env or {})
    result = subprocess.run([sys.executable, str(SMOKE), *args], capture_output=True, text=True, env=child_env, timeout=timeout)
    try:
        document = json.loads(result.stdout)  # the whole of stdout is one document
    except ValueError:
        pytest.fail(f"stdout is not one JSON document:\n{result.stdout[:2000]}\nstderr:\n{result.stderr[-2000:]}")
    return result.returncode, document, result.stderr


def png_pixels(path: Path) -> tuple[bytes, int]:
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        return image.tobytes(), len(set(zip(*[iter(image.tobytes())] * 3)))


def test_tiny_model_generates_the_same_non_blank_image_for_the_same_seed(tmp_path, model_cache):
    code, first, _ = smoke("--cache-dir", str(model_cache), "--out", str(tmp_path / "a.png"))
    assert code == 0, first
    code, second, _ = smoke("--cache-dir", str(model_cache), "--out", str(tmp_path / "b.png"))
    assert code == 0, second

    assert first["ok"] is True and first["device"] == "cpu" and first["dtype"] == "float32"
    assert first["torch"].startswith("2.") and first["diffusers"] and first["torch_cuda"] is None
    assert first["steps"] == 10 and first["width"] == first["height"] == 64
    assert first["image"] == str((tmp_path / "a.png").resolve())
    for part in ("imports", "import_torch", "import_diffusers", "load", "steps", "decode", "total"):
        assert first["timings"][part] >= 0, part
    assert 0 < first["seconds_per_step"] < first["timings"]["steps"]
    assert first["model"]["kind"] == "tiny" and Path(first["model"]["path"]).parent == model_cache
    assert second["model"]["built_now"] is False  # built once, then loaded from the cache

    pixels_a, colours = png_pixels(tmp_path / "a.png")
    pixels_b, _ = png_pixels(tmp_path / "b.png")
    assert colours > 500, "the image should not be blank or flat"
    assert pixels_a == pixels_b
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert first["image_stats"]["sha256"] == second["image_stats"]["sha256"]
    assert first["image_stats"]["std"] > 10 and first["image_stats"]["nan_fraction"] == 0


def test_another_seed_gives_another_image(tmp_path, model_cache):
    code, doc, _ = smoke("--cache-dir", str(model_cache), "--seed", "7", "--out", str(tmp_path / "c.png"))
    code0, doc0, _ = smoke("--cache-dir", str(model_cache), "--seed", "0")
    assert code == code0 == 0
    assert doc["image_stats"]["sha256"] != doc0["image_stats"]["sha256"]
    assert doc0["image"] is None  # without --out nothing is written


def test_nan_vae_output_is_reported_as_the_half_precision_failure_with_its_fix(tmp_path, model_cache):
    out = tmp_path / "nan.png"
    code, doc, _ = smoke("--cache-dir", str(model_cache), "--out", str(out), env={"SDSETUP_SMOKE_POISON": "vae"})
    assert code == 1
    assert doc["ok"] is False and doc["poisoned"] == "vae"
    error = doc["error"]
    assert error["kind"] == "nan_image"
    assert "half-precision" in error["message"] and "NaN" in error["message"]
    assert error["fix_flags"] == ["--no-half-vae", "--upcast-sampling", "--no-half"]
    assert "--no-half-vae" in error["fix"] and "COMMANDLINE_ARGS" in error["fix"]
    assert doc["image_stats"]["nan_fraction"] == 1.0
    assert not out.exists(), "a failed run leaves no image behind"


def test_bad_arguments_answer_in_json_with_exit_2():
    code, doc, _ = smoke("--steps", "0")
    assert code == 2 and doc["ok"] is False and doc["error"]["kind"] == "usage"
    assert "--steps" in doc["error"]["message"]


def test_info_reports_torch_without_generating():
    code, doc, _ = smoke("--info")
    assert code == 0 and doc["ok"] is True
    assert doc["torch"].startswith("2.") and doc["cuda_available"] is False and "device" not in doc


def test_missing_checkpoint_is_named(tmp_path):
    code, doc, _ = smoke("--checkpoint", str(tmp_path / "nope.safetensors"))
    assert code == 2 and doc["error"]["kind"] == "checkpoint_missing"
    assert "nope.safetensors" in doc["error"]["message"] and "sdsetup install" in doc["error"]["fix"]


class _RunsCode:
    """Unpickling this makes a directory: proof that the pickle's code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_pickle_checkpoint_with_code_is_refused_and_never_run(tmp_path):
    import torch

    marker = tmp_path / "pickle-code-ran"
    checkpoint = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "payload": _RunsCode(str(marker))}, checkpoint)
    code, doc, _ = smoke("--checkpoint", str(checkpoint))
    assert code == 2 and doc["error"]["kind"] == "pickle_refused"
    assert ".safetensors" in doc["error"]["fix"]
    assert not marker.exists()


def test_single_file_checkpoint_loads_offline_with_configs_and_the_cached_tokenizer(tmp_path):
    """The --checkpoint path: an LDM-layout file (as v1-5-pruned-emaonly), the SD1 configs, the HF cache."""
    from runtime import tiny_model
    from tests.fixtures.verify import ldm_checkpoint

    tokenizer = tiny_model.tokenizer_files()
    config = ldm_checkpoint.tiny_sd1_config(ROOT / "runtime" / "configs" / "sd15", tmp_path / "cfg", len(json.loads(tokenizer["vocab.json"])))
    hf_home = tmp_path / "hf"
    ldm_checkpoint.seed_hf_cache(hf_home, tokenizer)
    checkpoint = tmp_path / "tiny-sd1.safetensors"
    subprocess.run([sys.executable, str(ROOT / "tests" / "fixtures" / "verify" / "ldm_checkpoint.py"), str(config), str(checkpoint)],
                   check=True, capture_output=True, timeout=300)

    out = tmp_path / "full.png"
    code, doc, stderr = smoke("--checkpoint", str(checkpoint), "--config", str(config), "--hf-home", str(hf_home),
                              "--size", "64", "--steps", "3", "--out", str(out))
    assert code == 0, (doc, stderr[-2000:])
    assert doc["model"]["kind"] == "checkpoint" and doc["steps"] == 3 and doc["width"] == 64
    assert png_pixels(out)[1] > 100

    # Without the pre-seeded tokenizer the failure says where it looked and what to do.
    code, doc, _ = smoke("--checkpoint", str(checkpoint), "--config", str(config), "--hf-home", str(tmp_path / "empty-hf"), "--size", "64")
    assert code == 4 and doc["error"]["kind"] == "tokenizer_missing"
    assert "openai/clip-vit-large-patch14" in doc["error"]["message"] and "sdsetup install" in doc["error"]["fix"]


def test_a_broken_diffusers_is_an_import_failure_that_still_reports_torch(tmp_path):
    fake = tmp_path / "fake-site"
    fake.mkdir()
    (fake / "diffusers.py").write_text("raise RuntimeError('operator torchvision::nms does not exist')\n")
    code, doc, _ = smoke(env={"PYTHONPATH": str(fake)})
    assert code == 3 and doc["error"]["kind"] == "import_diffusers"
    assert "torchvision::nms" in doc["error"]["message"] and "sdsetup install" in doc["error"]["fix"]
    assert doc["torch"].startswith("2.") and doc["device"] == "cpu"  # what was learnt before the failure stays
