"""Pure decisions of the smoke test: which precision the web UI would use, and whether an image is good.

No torch import here: these take plain values so they can be tested by table anywhere.
Runs inside the web UI venv; never imports sdsetup.
"""

from __future__ import annotations

# Exit codes of runtime/smoke.py (documented in docs/verify.md).
EXIT_OK = 0
EXIT_BAD_IMAGE = 1  # generated, but NaN / black / uniform
EXIT_USAGE = 2  # bad arguments, missing checkpoint file, refused file
EXIT_IMPORT = 3  # torch / diffusers / transformers missing or broken in this Python
EXIT_LOAD = 4  # the model could not be built or loaded
EXIT_GENERATE = 5  # generation itself failed (out of memory, CUDA error, ...)
EXIT_INTERNAL = 70

# The web UI's own remedies for the half-precision failure, mildest first.
HALF_PRECISION_FLAGS = ["--no-half-vae", "--upcast-sampling", "--no-half"]

FLOAT16 = "float16"
FLOAT32 = "float32"


def is_gtx16(gpu_name: str | None, capability: tuple[int, int] | None) -> bool:
    """The web UI's own test (`devices.cuda_no_autocast`): Turing GTX 16xx cards break in fp16."""
    return bool(gpu_name) and tuple(capability or ()) == (7, 5) and str(gpu_name).startswith("NVIDIA GeForce GTX 16")


def choose_precision(
    device_type: str,
    gpu_name: str | None = None,
    capability: tuple[int, int] | None = None,
    *,
    no_half: bool = False,
    no_half_vae: bool = False,
    upcast_sampling: bool = False,
) -> dict:
    """(UNet/text-encoder dtype, VAE dtype, why) as the web UI would pick them on this device.

    CUDA/ROCm: fp16 everywhere; GTX 16xx: fp32 (the web UI upcasts there). MPS: the macOS defaults
    (`--upcast-sampling --no-half-vae`): fp16 weights, fp32 VAE. CPU: fp32. The web UI's flags are
    honoured so a user's webui-user settings are what gets tested; `--upcast-sampling` is
    approximated by running the UNet in fp32.
    """
    if device_type == "cpu":
        return {"dtype": FLOAT32, "vae_dtype": FLOAT32, "reason": "CPU runs in float32 (the web UI needs --no-half there)"}
    if no_half:
        return {"dtype": FLOAT32, "vae_dtype": FLOAT32, "reason": "--no-half"}
    if device_type == "cuda" and is_gtx16(gpu_name, capability):
        return {"dtype": FLOAT32, "vae_dtype": FLOAT32, "reason": f"{gpu_name}: GTX 16xx cards produce NaN in float16; the web UI upcasts"}
    dtype = FLOAT32 if upcast_sampling else FLOAT16
    if device_type == "mps":
        return {"dtype": dtype, "vae_dtype": FLOAT32, "reason": "macOS defaults: --upcast-sampling --no-half-vae"}
    vae_dtype = FLOAT32 if no_half_vae else FLOAT16
    flags = [f for f, on in (("--no-half-vae", no_half_vae), ("--upcast-sampling", upcast_sampling)) if on]
    return {"dtype": dtype, "vae_dtype": vae_dtype, "reason": "half precision on the GPU" + (f" with {' '.join(flags)}" if flags else "")}


def image_verdict(stats: dict) -> dict | None:
    """None when the image looks like an image; else {kind, message}.

    `stats` is over the decoded image before quantisation: nan_fraction, and over the 0..255 RGB
    pixels: mean, std, min, max.
    """
    if stats.get("nan_fraction", 0) > 0:
        share = stats["nan_fraction"] * 100
        return {"kind": "nan_image", "message": f"the generated image is NaN ({share:.0f}% of values): it would show as a black image"}
    if stats.get("max", 0) <= 8:
        return {"kind": "black_image", "message": f"the generated image is black (brightest value {stats.get('max')} of 255)"}
    if stats.get("std", 0) < 1.0 or stats.get("max", 0) - stats.get("min", 0) < 4:
        return {"kind": "uniform_image", "message": f"the generated image is one flat colour (mean {stats.get('mean', 0):.0f}, spread {stats.get('std', 0):.2f})"}
    return None


def half_precision_diagnosis(
    *, latents_nan: bool, dtype: str, vae_dtype: str, fp32_vae_retry_ok: bool | None
) -> dict:
    """What fixes a NaN image, from where the NaN appeared; {message, fix_flags, confirmed}.

    `fp32_vae_retry_ok` is the result of decoding the same latents again with a float32 VAE (None
    when that was not tried).
    """
    if latents_nan:
        flags = ["--upcast-sampling", "--no-half"] if dtype == FLOAT16 else HALF_PRECISION_FLAGS
        return {
            "message": f"the UNet produced NaN while sampling in {dtype}: the classic half-precision failure",
            "fix_flags": flags,
            "confirmed": False,
        }
    if vae_dtype == FLOAT16 and fp32_vae_retry_ok:
        return {
            "message": "the VAE produced NaN in float16 and a clean image in float32: the classic half-precision VAE failure",
            "fix_flags": ["--no-half-vae"],
            "confirmed": True,
        }
    note = "" if vae_dtype == FLOAT16 else f" (it happened with the VAE in {vae_dtype}, so also check the checkpoint's sha256)"
    return {
        "message": "the VAE produced NaN: the classic half-precision failure" + note,
        "fix_flags": list(HALF_PRECISION_FLAGS),
        "confirmed": False,
    }


def fix_text(fix_flags: list[str]) -> str:
    if not fix_flags:
        return ""
    first, rest = fix_flags[0], fix_flags[1:]
    text = f"add {first} to COMMANDLINE_ARGS in webui-user.sh / webui-user.bat"
    if rest:
        text += "; if images are still black, also add " + ", then ".join(rest)
    return text
