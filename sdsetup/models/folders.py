"""Where each model type goes in each web UI (pure).

A1111 and Forge: `a1111.md` ("Where models go": models/Stable-diffusion, models/Lora, models/VAE,
embeddings/ under the data dir, models/ControlNet, models/ESRGAN). ComfyUI: its folder_paths.py names
models/checkpoints, loras, vae, embeddings, controlnet, upscale_models (comfyanonymous/ComfyUI
`folder_paths.py`, read for this table).
"""

from __future__ import annotations

TYPES = ("checkpoint", "lora", "vae", "embedding", "controlnet", "upscaler")

_A1111 = {
    "checkpoint": "models/Stable-diffusion",
    "lora": "models/Lora",
    "vae": "models/VAE",
    "embedding": "embeddings",
    "controlnet": "models/ControlNet",
    "upscaler": "models/ESRGAN",
}
_COMFYUI = {
    "checkpoint": "models/checkpoints",
    "lora": "models/loras",
    "vae": "models/vae",
    "embedding": "models/embeddings",
    "controlnet": "models/controlnet",
    "upscaler": "models/upscale_models",
}
FOLDERS = {"a1111": _A1111, "forge": _A1111, "comfyui": _COMFYUI}

# Civitai's model `type` → ours (the API's values as listed in its REST docs: Checkpoint, TextualInversion,
# Hypernetwork, AestheticGradient, LORA, LoCon, DoRA, Controlnet, Upscaler, VAE, …).
_CIVITAI = {"checkpoint": "checkpoint", "lora": "lora", "locon": "lora", "dora": "lora", "lycoris": "lora",
            "textualinversion": "embedding", "vae": "vae", "controlnet": "controlnet", "upscaler": "upscaler"}

MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".onnx")


def folder_for(launcher: str | None, model_type: str) -> str:
    """The folder (relative to the install) for this type in this UI."""
    return FOLDERS.get(launcher or "a1111", _A1111)[model_type]


def type_from_civitai(kind: str | None) -> str | None:
    return _CIVITAI.get((kind or "").replace(" ", "").lower())


def guess_type(file_name: str) -> str:
    """Without --type and without a type from the source: a checkpoint (the file users add most),
    except where the name says otherwise."""
    lowered = file_name.lower()
    for needle, kind in (("lora", "lora"), ("vae", "vae"), ("controlnet", "controlnet"), ("control_", "controlnet"),
                         ("esrgan", "upscaler"), ("upscal", "upscaler")):
        if needle in lowered:
            return kind
    return "checkpoint"


def type_of_folder(launcher: str | None, rel_folder: str) -> str | None:
    for kind, folder in FOLDERS.get(launcher or "a1111", _A1111).items():
        if rel_folder == folder:
            return kind
    return None
