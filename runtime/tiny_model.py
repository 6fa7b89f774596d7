"""A tiny Stable Diffusion pipeline built deterministically from configs, cached as safetensors.

The smoke test must prove the web UI's venv can load and run a diffusers pipeline without a 4 GB
download, so it builds one of a few MB: same component classes as SD1.5 (UNet2DConditionModel,
AutoencoderKL with an 8x VAE, CLIPTextModel, a byte-level BPE CLIP tokenizer), random weights from a
fixed seed. It is written once into a content-addressed folder and then always loaded back through
`StableDiffusionPipeline.from_pretrained`, the real loading code.

Runs inside the web UI venv: stdlib, torch, diffusers, transformers only; never imports sdsetup.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

# Bump when the build procedure changes in a way the configs below do not show.
BUILD_VERSION = 1
WEIGHT_SEED = 20240229

UNET_CONFIG = {
    "_class_name": "UNet2DConditionModel",
    "sample_size": 8,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 1,
    "block_out_channels": [32, 64],
    "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "cross_attention_dim": 32,
    "attention_head_dim": 4,
    "norm_num_groups": 8,
}

VAE_CONFIG = {
    "_class_name": "AutoencoderKL",
    "in_channels": 3,
    "out_channels": 3,
    # Four blocks give SD's 8x latent downscale, so a 64x64 image has an 8x8 latent.
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [8, 16, 16, 16],
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": 8,
    "sample_size": 64,
    "scaling_factor": 0.18215,
}

TEXT_ENCODER_BASE = {
    "architectures": ["CLIPTextModel"],
    "model_type": "clip_text_model",
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-05,
    "projection_dim": 32,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "pad_token_id": 1,
}

# SD1.5's scheduler (PNDM, scaled-linear betas), so the tiny run exercises the same sampler code.
SCHEDULER_CONFIG = {
    "_class_name": "PNDMScheduler",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "clip_sample": False,
}

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
# The corpus the tiny BPE is trained on: enough merges to tokenize the smoke prompt into words.
CORPUS = (
    "a photo of a cat sitting on a red chair in the garden at sunset, highly detailed, "
    "a painting of mountains and a lake, smoke test for stable diffusion, the quick brown fox"
)
NUM_MERGES = 96


def bytes_to_unicode() -> dict[int, str]:
    """CLIP's byte -> printable-character table (the same construction as GPT-2's)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes)))


def train_bpe(corpus: str, num_merges: int) -> list[tuple[str, str]]:
    """A deterministic byte-level BPE over `corpus` (ties broken by the pair itself)."""
    table = bytes_to_unicode()
    words: dict[tuple[str, ...], int] = {}
    for word in corpus.lower().replace(",", " ").split():
        symbols = [table[b] for b in word.encode("utf-8")]
        symbols[-1] = symbols[-1] + "</w>"
        key = tuple(symbols)
        words[key] = words.get(key, 0) + 1
    merges: list[tuple[str, str]] = []
    for _ in range(num_merges):
        pairs: dict[tuple[str, str], int] = {}
        for symbols, count in words.items():
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] = pairs.get(pair, 0) + count
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merges.append(best)
        merged: dict[tuple[str, ...], int] = {}
        for symbols, count in words.items():
            out: list[str] = []
            index = 0
            while index < len(symbols):
                if index + 1 < len(symbols) and (symbols[index], symbols[index + 1]) == best:
                    out.append(symbols[index] + symbols[index + 1])
                    index += 2
                else:
                    out.append(symbols[index])
                    index += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + count
        words = merged
    return merges


def tokenizer_files() -> dict[str, str]:
    """vocab.json, merges.txt and the tokenizer configs, laid out like openai/clip-vit-large-patch14's."""
    chars = list(bytes_to_unicode().values())
    merges = train_bpe(CORPUS, NUM_MERGES)
    vocab_list = chars + [c + "</w>" for c in chars] + ["".join(pair) for pair in merges] + [BOS, EOS]
    vocab = {token: index for index, token in enumerate(dict.fromkeys(vocab_list))}
    merges_txt = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)
    special = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}
    tokenizer_config = dict(special, model_max_length=77, do_lower_case=True, tokenizer_class="CLIPTokenizer")
    return {
        "vocab.json": json.dumps(vocab, ensure_ascii=False, sort_keys=False),
        "merges.txt": merges_txt,
        "special_tokens_map.json": json.dumps(special, indent=2),
        "tokenizer_config.json": json.dumps(tokenizer_config, indent=2),
    }


def text_encoder_config(vocab_size: int) -> dict:
    config = dict(TEXT_ENCODER_BASE)
    config["vocab_size"] = vocab_size
    # The tokenizer pads with EOS (as SD1.5's does); keep the ids consistent with the vocab.
    config["bos_token_id"] = vocab_size - 2
    config["eos_token_id"] = vocab_size - 1
    config["pad_token_id"] = vocab_size - 1
    return config


def model_index() -> dict:
    return {
        "_class_name": "StableDiffusionPipeline",
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "PNDMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }


def spec() -> dict:
    """Everything that determines the built model; its hash names the cache folder."""
    tokenizer = tokenizer_files()
    vocab_size = len(json.loads(tokenizer["vocab.json"]))
    return {
        "build_version": BUILD_VERSION,
        "weight_seed": WEIGHT_SEED,
        "unet": UNET_CONFIG,
        "vae": VAE_CONFIG,
        "text_encoder": text_encoder_config(vocab_size),
        "scheduler": SCHEDULER_CONFIG,
        "tokenizer": tokenizer,
        "model_index": model_index(),
    }


def spec_digest(model_spec: dict) -> str:
    blob = json.dumps(model_spec, sort_keys=True, ensure_ascii=True).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def default_cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"sdsetup-smoke-{os.getuid() if hasattr(os, 'getuid') else 'user'}"


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def build(target: Path, model_spec: dict) -> None:
    """Create the pipeline folder at `target` (which must not exist yet)."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    target.mkdir(parents=True)
    _write_json(target / "model_index.json", model_spec["model_index"])
    _write_json(target / "scheduler" / "scheduler_config.json", model_spec["scheduler"])
    tokenizer_dir = target / "tokenizer"
    tokenizer_dir.mkdir()
    for name, text in model_spec["tokenizer"].items():
        (tokenizer_dir / name).write_text(text, encoding="utf-8")

    def config_only(config: dict) -> dict:
        return {k: v for k, v in config.items() if not k.startswith("_")}

    # Seed before each component so one component's config never shifts another's weights.
    torch.manual_seed(model_spec["weight_seed"])
    UNet2DConditionModel(**config_only(model_spec["unet"])).save_pretrained(target / "unet", safe_serialization=True)
    torch.manual_seed(model_spec["weight_seed"] + 1)
    AutoencoderKL(**config_only(model_spec["vae"])).save_pretrained(target / "vae", safe_serialization=True)
    torch.manual_seed(model_spec["weight_seed"] + 2)
    text_config = {k: v for k, v in model_spec["text_encoder"].items() if k not in ("architectures", "model_type")}
    CLIPTextModel(CLIPTextConfig(**text_config)).save_pretrained(target / "text_encoder", safe_serialization=True)
    _write_json(target / "sdsetup-tiny-model.json", {"digest": spec_digest(model_spec), "build_version": BUILD_VERSION})


def ensure_model(cache_dir: Path | None = None) -> tuple[Path, bool]:
    """The tiny pipeline's folder, built on first use. Returns (folder, built_now).

    Built in a temporary sibling and renamed into place, so a killed build never leaves a half
    model where a whole one is expected; two concurrent builders both succeed (the loser's copy is
    dropped).
    """
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    model_spec = spec()
    final = cache_dir / f"tiny-sd-{spec_digest(model_spec)}"
    if (final / "sdsetup-tiny-model.json").is_file():
        return final, False
    if final.exists():  # a folder without the completion marker is not ours to trust; rebuild it
        shutil.rmtree(final, ignore_errors=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-sd-build-", dir=cache_dir))
    try:
        build(staging / "model", model_spec)
        try:
            os.replace(staging / "model", final)
        except OSError:
            if not (final / "sdsetup-tiny-model.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final, True
