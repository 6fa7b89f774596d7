"""The smoke test's pure decisions, by table: precision per device, image verdicts, NaN diagnosis, tiny model spec."""

from __future__ import annotations

import json

import pytest

from runtime import smoke_checks as checks
from runtime import tiny_model


@pytest.mark.parametrize(
    "device, name, capability, flags, dtype, vae_dtype",
    [
        ("cpu", None, None, {}, "float32", "float32"),
        ("cpu", None, None, {"no_half_vae": True}, "float32", "float32"),
        ("cuda", "NVIDIA GeForce RTX 3060", (8, 6), {}, "float16", "float16"),
        ("cuda", "NVIDIA GeForce RTX 3060", (8, 6), {"no_half_vae": True}, "float16", "float32"),
        ("cuda", "NVIDIA GeForce RTX 3060", (8, 6), {"upcast_sampling": True}, "float32", "float16"),
        ("cuda", "NVIDIA GeForce RTX 3060", (8, 6), {"no_half": True}, "float32", "float32"),
        # GTX 16xx: the web UI's own test (Turing 7.5 and the GTX 16 name) -> float32
        ("cuda", "NVIDIA GeForce GTX 1660 SUPER", (7, 5), {}, "float32", "float32"),
        ("cuda", "NVIDIA GeForce GTX 1650", (7, 5), {}, "float32", "float32"),
        # an RTX 20xx is Turing 7.5 too, but fine in half precision
        ("cuda", "NVIDIA GeForce RTX 2060", (7, 5), {}, "float16", "float16"),
        # AMD through ROCm shows up as cuda with its own name
        ("cuda", "AMD Radeon RX 6700 XT", (10, 3), {}, "float16", "float16"),
        # macOS defaults: --upcast-sampling --no-half-vae
        ("mps", None, None, {}, "float16", "float32"),
        ("mps", None, None, {"no_half": True}, "float32", "float32"),
    ],
)
def test_precision_is_chosen_like_the_web_ui(device, name, capability, flags, dtype, vae_dtype):
    choice = checks.choose_precision(device, name, capability, **flags)
    assert (choice["dtype"], choice["vae_dtype"]) == (dtype, vae_dtype)
    assert choice["reason"]


@pytest.mark.parametrize(
    "stats, kind",
    [
        ({"nan_fraction": 0.0, "mean": 128, "std": 40, "min": 0, "max": 255}, None),
        ({"nan_fraction": 1.0, "mean": 0, "std": 0, "min": 0, "max": 0}, "nan_image"),
        ({"nan_fraction": 0.01, "mean": 120, "std": 40, "min": 0, "max": 255}, "nan_image"),
        ({"nan_fraction": 0.0, "mean": 1, "std": 0.5, "min": 0, "max": 3}, "black_image"),
        ({"nan_fraction": 0.0, "mean": 127, "std": 0.0, "min": 127, "max": 127}, "uniform_image"),
        ({"nan_fraction": 0.0, "mean": 200, "std": 0.4, "min": 199, "max": 201}, "uniform_image"),
        ({"nan_fraction": 0.0, "mean": 20, "std": 3, "min": 10, "max": 30}, None),  # dark, but an image
    ],
)
def test_image_verdicts(stats, kind):
    verdict = checks.image_verdict(stats)
    assert (verdict["kind"] if verdict else None) == kind


@pytest.mark.parametrize(
    "latents_nan, dtype, vae_dtype, retry_ok, flags, confirmed",
    [
        # fp16 VAE overflow, fp32 decode clean: exactly --no-half-vae, proven
        (False, "float16", "float16", True, ["--no-half-vae"], True),
        # fp16 VAE NaN, fp32 retry NaN too: everything, mildest first
        (False, "float16", "float16", False, ["--no-half-vae", "--upcast-sampling", "--no-half"], False),
        # the UNet already produced NaN in fp16: the VAE flag cannot help
        (True, "float16", "float16", None, ["--upcast-sampling", "--no-half"], False),
        # NaN with everything in fp32 (a forced or corrupt case): the full list, not confirmed
        (False, "float32", "float32", None, ["--no-half-vae", "--upcast-sampling", "--no-half"], False),
    ],
)
def test_half_precision_diagnosis(latents_nan, dtype, vae_dtype, retry_ok, flags, confirmed):
    diagnosis = checks.half_precision_diagnosis(latents_nan=latents_nan, dtype=dtype, vae_dtype=vae_dtype, fp32_vae_retry_ok=retry_ok)
    assert diagnosis["fix_flags"] == flags and diagnosis["confirmed"] is confirmed
    assert "half-precision" in diagnosis["message"]


def test_fix_text_names_the_flags_and_where_they_go():
    text = checks.fix_text(["--no-half-vae", "--upcast-sampling", "--no-half"])
    assert text.startswith("add --no-half-vae to COMMANDLINE_ARGS") and "--upcast-sampling, then --no-half" in text


def test_tiny_tokenizer_is_deterministic_and_well_formed():
    first, second = tiny_model.tokenizer_files(), tiny_model.tokenizer_files()
    assert first == second
    vocab = json.loads(first["vocab.json"])
    assert list(vocab.values()) == list(range(len(vocab)))
    assert vocab[tiny_model.BOS] == len(vocab) - 2 and vocab[tiny_model.EOS] == len(vocab) - 1
    merges = first["merges.txt"].splitlines()
    assert merges[0].startswith("#version") and 50 < len(merges) <= tiny_model.NUM_MERGES + 1
    for line in merges[1:]:  # every merge result is in the vocab, as a BPE tokenizer requires
        left, right = line.split(" ")
        assert left + right in vocab


def test_tiny_model_cache_is_content_addressed(monkeypatch):
    digest = tiny_model.spec_digest(tiny_model.spec())
    assert digest == tiny_model.spec_digest(tiny_model.spec())
    monkeypatch.setitem(tiny_model.UNET_CONFIG, "layers_per_block", 2)
    assert tiny_model.spec_digest(tiny_model.spec()) != digest


def test_shipped_sd15_configs_have_sd15s_exact_parameter_counts():
    """859,520,964 / 83,653,863 / 123,060,480: the published sizes of SD1.5's UNet, VAE and text encoder."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from sdsetup.verify import runtime_dir

    configs = runtime_dir() / "configs" / "sd15"
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(json.loads((configs / "unet" / "config.json").read_text()))
        vae = AutoencoderKL.from_config(json.loads((configs / "vae" / "config.json").read_text()))
        text = CLIPTextModel(CLIPTextConfig.from_json_file(str(configs / "text_encoder" / "config.json")))
    counts = [sum(p.numel() for p in model.parameters()) for model in (unet, vae, text)]
    assert counts == [859_520_964, 83_653_863, 123_060_480]
    index = json.loads((configs / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline" and index["scheduler"] == ["diffusers", "PNDMScheduler"]
    assert not (configs / "tokenizer" / "vocab.json").exists()  # the vocab comes from the HF cache
