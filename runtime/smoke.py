"""The smoke test: a seeded txt2img in the web UI's own venv, answered with one JSON document.

    python smoke.py [--checkpoint FILE] [--out PNG] [--seed N] [--steps N] [--size N]
                    [--device auto|cpu|cuda|mps] [--hf-home DIR] [--cache-dir DIR]
                    [--config DIR] [--prompt TEXT] [--no-half] [--no-half-vae] [--upcast-sampling] [--info]

Without --checkpoint it builds (once, cached) and runs a tiny model; with it, the installed SD1.5
single-file checkpoint is loaded offline with the SD1.5 configs shipped next to this file.

Protocol (docs/verify.md): stdout carries exactly one JSON document, `{"ok": true, ...}` or
`{"ok": false, "error": {"kind", "message", "fix", ...}, ...}` with a non-zero exit code; everything
else (library warnings, progress) goes to stderr. Runs with the venv's Python: stdlib, torch,
diffusers, transformers, safetensors, Pillow. Never imports sdsetup.

Test hook: SDSETUP_SMOKE_POISON=vae makes the VAE decoder output NaN (the half-precision failure).
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # siblings, also when started as `python path/to/smoke.py`

import smoke_checks as checks  # noqa: E402

PROTOCOL_VERSION = 1
DEFAULT_PROMPT = "a photo of a cat sitting on a red chair in the garden"
SD15_CONFIG_DIR = HERE / "configs" / "sd15"
CLIP_REPO = "openai/clip-vit-large-patch14"
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")


class SmokeFailure(Exception):
    def __init__(self, exit_code: int, kind: str, message: str, fix: str | None = None, **extra) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.error = {"kind": kind, "message": message, "fix": fix, **extra}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print usage and exit(2); we answer in JSON
        raise SmokeFailure(checks.EXIT_USAGE, "usage", f"smoke.py: {message}", "see `python smoke.py --help`")


def parse_args(argv):
    parser = _Parser(prog="smoke.py", description="sdsetup smoke test: one seeded txt2img, one JSON document on stdout.")
    parser.add_argument("--checkpoint", type=Path, help="single-file SD1.5 checkpoint (.safetensors); default: the tiny model")
    parser.add_argument("--out", type=Path, help="write the image here (PNG)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, help="sampling steps (default 10 for the tiny model, 20 for a checkpoint)")
    parser.add_argument("--size", type=int, help="image width and height (default 64 for the tiny model, 512 for a checkpoint)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    parser.add_argument("--hf-home", type=Path, help="Hugging Face cache holding openai/clip-vit-large-patch14 (checkpoint mode)")
    parser.add_argument("--cache-dir", type=Path, help="where the tiny model is built (default: a folder in the temp dir)")
    parser.add_argument("--config", type=Path, help="diffusers config folder for --checkpoint (default: the bundled SD1.5 configs)")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT)
    parser.add_argument("--no-half", action="store_true", help="as the web UI flag: everything in float32")
    parser.add_argument("--no-half-vae", action="store_true", help="as the web UI flag: the VAE in float32")
    parser.add_argument("--upcast-sampling", action="store_true", help="as the web UI flag (approximated: the UNet in float32)")
    parser.add_argument("--info", action="store_true", help="only report torch and the devices it sees")
    args = parser.parse_args(argv)
    for name in ("steps", "size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be at least 1")
    if args.size is not None and args.size % 8:
        parser.error("--size must be a multiple of 8")
    return args


def _offline_environment(args) -> None:
    """Before any Hugging Face import: never touch the network, read the given cache."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["DIFFUSERS_NO_ADVISORY_WARNINGS"] = "1"
    if args.hf_home:
        os.environ["HF_HOME"] = str(args.hf_home)
        os.environ.pop("HF_HUB_CACHE", None)
        os.environ.pop("TRANSFORMERS_CACHE", None)


def _cuda_driver_version() -> str | None:
    """The CUDA driver API version (e.g. 12.4), from the driver library torch already loaded."""
    import ctypes

    try:
        library = ctypes.WinDLL("nvcuda.dll") if os.name == "nt" else ctypes.CDLL("libcuda.so.1")
        version = ctypes.c_int()
        if library.cuDriverGetVersion(ctypes.byref(version)) != 0:
            return None
        return f"{version.value // 1000}.{(version.value % 1000) // 10}"
    except (OSError, AttributeError):
        return None


def torch_info(torch) -> dict:
    info = {
        "torch": torch.__version__,
        "torch_cuda": getattr(torch.version, "cuda", None),
        "torch_hip": getattr(torch.version, "hip", None),
        "cuda_available": False,
        "mps_available": False,
        "gpu": None,
        "cuda_driver": None,
        "cudnn": None,
    }
    try:
        info["cuda_available"] = bool(torch.cuda.is_available())
    except Exception as exc:  # a broken driver surfaces here; report it rather than crash
        info["cuda_error"] = str(exc)
    if info["cuda_available"]:
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = {
            "name": torch.cuda.get_device_name(0),
            "capability": list(torch.cuda.get_device_capability(0)),
            "total_memory_bytes": int(props.total_memory),
            "count": torch.cuda.device_count(),
        }
        info["cuda_driver"] = _cuda_driver_version() if info["torch_cuda"] else None
        try:
            info["cudnn"] = torch.backends.cudnn.version()
        except Exception:
            pass
    mps = getattr(torch.backends, "mps", None)
    if mps is not None:
        try:
            info["mps_available"] = bool(mps.is_available())
        except Exception:
            pass
    return info


def pick_device(requested: str, info: dict) -> str:
    """The web UI's order (`devices.get_optimal_device`): CUDA (also ROCm), then MPS, then CPU."""
    if requested == "auto":
        if info["cuda_available"]:
            return "cuda"
        if info["mps_available"]:
            return "mps"
        return "cpu"
    if requested == "cuda" and not info["cuda_available"]:
        build = info["torch_cuda"] and f"CUDA {info['torch_cuda']}" or info["torch_hip"] and f"ROCm {info['torch_hip']}" or "CPU-only"
        raise SmokeFailure(
            checks.EXIT_GENERATE,
            "no_cuda",
            f"--device cuda, but torch {info['torch']} ({build} build) cannot use a GPU here",
            "install the torch build for this GPU (sdsetup verify DIR prints the exact command), or update the GPU driver",
        )
    if requested == "mps" and not info["mps_available"]:
        raise SmokeFailure(checks.EXIT_GENERATE, "no_mps", "--device mps, but torch cannot use the Apple GPU (MPS) here", "use torch >= 2.1 on macOS 12.3+ on Apple silicon")
    return requested


def _check_checkpoint_file(path: Path, torch) -> None:
    if not path.is_file():
        raise SmokeFailure(checks.EXIT_USAGE, "checkpoint_missing", f"checkpoint not found: {path}", "run `sdsetup verify DIR` to see what is missing; `sdsetup install DIR` downloads it")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return
    if suffix not in PICKLE_SUFFIXES:
        raise SmokeFailure(checks.EXIT_USAGE, "checkpoint_format", f"{path.name}: not a .safetensors or .ckpt checkpoint", "give a .safetensors file")
    # A pickle can run code when loaded: only ever with weights_only=True, which rejects anything but tensors.
    import zipfile

    try:
        # mmap (no 4 GB copy in RAM) works only for the zip format torch.save has written since 1.6.
        torch.load(str(path), map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except TypeError:
        raise SmokeFailure(
            checks.EXIT_USAGE, "pickle_refused", f"{path.name}: this torch ({torch.__version__}) cannot load a pickle safely (no weights_only)",
            "use the .safetensors version of the model",
        ) from None
    except Exception as exc:
        raise SmokeFailure(
            checks.EXIT_USAGE, "pickle_refused",
            f"{path.name}: refused to load this pickle checkpoint: it holds more than plain tensors ({type(exc).__name__}: {str(exc)[:200]})",
            "use the .safetensors version of the model; a .ckpt that needs full unpickling can run code",
        ) from None


def load_pipeline(args, torch, dtype, timings: dict, report: dict):
    """Import the pipeline class, get the model folder, load it through diffusers' real loaders."""
    started = time.perf_counter()
    try:
        from diffusers import StableDiffusionPipeline
    except Exception as exc:  # not only ImportError: a torch/diffusers mismatch raises RuntimeError here
        raise SmokeFailure(
            checks.EXIT_IMPORT, "import_diffusers", f"diffusers does not import in {sys.executable}: {type(exc).__name__}: {exc}",
            "rerun `sdsetup install DIR` (it installs the smoke test's packages into the venv), "
            f'or: "{sys.executable}" -m pip install diffusers safetensors',
        ) from exc
    timings["import_diffusers"] = time.perf_counter() - started
    import diffusers

    report["diffusers"] = diffusers.__version__
    try:
        import transformers

        report["transformers"] = transformers.__version__
    except Exception:
        pass

    torch_dtype = getattr(torch, dtype)
    if args.checkpoint is None:
        import tiny_model

        started = time.perf_counter()
        try:
            model_dir, built = tiny_model.ensure_model(args.cache_dir)
        except Exception as exc:
            raise SmokeFailure(checks.EXIT_LOAD, "tiny_model_build", f"could not build the tiny test model: {type(exc).__name__}: {exc}",
                               "check that the cache folder is writable (--cache-dir) and diffusers/transformers import cleanly") from exc
        timings["build"] = time.perf_counter() - started
        report["model"] = {"kind": "tiny", "path": str(model_dir), "built_now": built}
        started = time.perf_counter()
        try:
            pipe = StableDiffusionPipeline.from_pretrained(
                str(model_dir), torch_dtype=torch_dtype, local_files_only=True, safety_checker=None, requires_safety_checker=False
            )
        except Exception as exc:
            raise SmokeFailure(checks.EXIT_LOAD, "load_failed", f"diffusers could not load the tiny model: {type(exc).__name__}: {exc}",
                               "the diffusers/transformers versions in this venv may be incompatible; reinstall the runtime extra") from exc
        timings["load"] = time.perf_counter() - started
        return pipe

    checkpoint = args.checkpoint.expanduser().resolve()
    config_dir = (args.config or SD15_CONFIG_DIR).resolve()
    report["model"] = {"kind": "checkpoint", "path": str(checkpoint), "config": str(config_dir)}
    _check_checkpoint_file(checkpoint, torch)
    started = time.perf_counter()
    from huggingface_hub import try_to_load_from_cache
    from transformers import CLIPTokenizer

    # Resolve the files ourselves: transformers 5 quietly builds an empty tokenizer when they are missing.
    found = {name: try_to_load_from_cache(CLIP_REPO, name) for name in ("vocab.json", "merges.txt")}
    missing = [name for name, path in found.items() if not isinstance(path, str)]
    where = os.environ.get("HF_HOME", "~/.cache/huggingface")
    fix = "rerun `sdsetup install DIR` (it pre-seeds the cache), or pass --hf-home with the install's .cache/huggingface"
    if missing:
        raise SmokeFailure(checks.EXIT_LOAD, "tokenizer_missing",
                           f"the CLIP tokenizer ({CLIP_REPO}: {', '.join(missing)}) is not in the Hugging Face cache at {where}", fix)
    try:
        tokenizer = CLIPTokenizer.from_pretrained(str(Path(found["vocab.json"]).parent))
    except Exception as exc:
        raise SmokeFailure(checks.EXIT_LOAD, "tokenizer_missing",
                           f"the CLIP tokenizer ({CLIP_REPO}) in the Hugging Face cache at {where} does not load: {type(exc).__name__}: {exc}",
                           fix) from exc
    try:
        pipe = StableDiffusionPipeline.from_single_file(
            str(checkpoint), config=str(config_dir), local_files_only=True, tokenizer=tokenizer,
            safety_checker=None, feature_extractor=None, requires_safety_checker=False, torch_dtype=torch_dtype,
        )
    except Exception as exc:
        raise SmokeFailure(
            checks.EXIT_LOAD, "load_failed", f"diffusers could not load {checkpoint.name}: {type(exc).__name__}: {str(exc)[:400]}",
            "check the file's sha256 with `sdsetup verify DIR --rehash`; a truncated or wrong file fails here",
        ) from exc
    timings["load"] = time.perf_counter() - started
    return pipe


def image_stats(torch, decoded) -> tuple[dict, object]:
    """Stats over the decoded image (batch 1, -1..1) and its 0..255 RGB pixels (H, W, 3 uint8 tensor)."""
    image = decoded[0].float()
    nan_fraction = float(torch.isnan(image).float().mean())
    pixels = ((torch.nan_to_num(image, nan=-1.0) / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
    pixels = pixels.permute(1, 2, 0).contiguous().cpu()
    values = pixels.float()
    stats = {
        "nan_fraction": round(nan_fraction, 6),
        "mean": round(float(values.mean()), 3),
        "std": round(float(values.std()), 3),
        "min": int(values.min()),
        "max": int(values.max()),
        "width": int(pixels.shape[1]),
        "height": int(pixels.shape[0]),
        "sha256": hashlib.sha256(pixels.numpy().tobytes()).hexdigest(),
    }
    return stats, pixels


def save_png(pixels, path: Path, parameters: str) -> None:
    """Write via a temp file and rename, so a failed run never leaves half a PNG at `path`."""
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", parameters)
    path = path.expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        Image.fromarray(pixels.numpy(), "RGB").save(tmp, format="PNG", pnginfo=info)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _generation_failure(exc: BaseException, device: str) -> SmokeFailure:
    text = f"{type(exc).__name__}: {exc}"
    if "out of memory" in text.lower():
        return SmokeFailure(checks.EXIT_GENERATE, "out_of_memory", f"the GPU ran out of memory: {text[:300]}",
                            "add --medvram (or --lowvram on 4 GB cards) to COMMANDLINE_ARGS; close other programs using the GPU")
    if "no kernel image" in text:
        return SmokeFailure(checks.EXIT_GENERATE, "cuda_arch", f"this torch build has no kernels for the GPU: {text[:300]}",
                            "install a torch build that supports this GPU (RTX 50xx needs cu128, torch >= 2.7)")
    return SmokeFailure(checks.EXIT_GENERATE, "generation_failed", f"generation failed on {device}: {text[:500]}",
                        "run `sdsetup doctor` on the web UI's log, or retry with --device cpu to tell a GPU problem from a model problem")


def generate(args, torch, pipe, device: str, precision: dict, timings: dict, report: dict) -> None:
    steps = args.steps or (10 if args.checkpoint is None else 20)
    size = args.size or (64 if args.checkpoint is None else 512)
    dtype = getattr(torch, precision["dtype"])
    vae_dtype = getattr(torch, precision["vae_dtype"])
    started = time.perf_counter()
    pipe.to(device)
    if vae_dtype != dtype:
        pipe.vae.to(dtype=vae_dtype)
    pipe.set_progress_bar_config(disable=True)
    if os.environ.get("SDSETUP_SMOKE_POISON", "").lower() == "vae":
        # Test hook: what a float16 VAE overflow looks like from outside.
        pipe.vae.decoder.register_forward_hook(lambda module, inputs, output: output * float("nan"))
        report["poisoned"] = "vae"
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    timings["to_device"] = time.perf_counter() - started

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()
        elif device == "mps":
            torch.mps.synchronize()

    step_times: list[float] = []

    def on_step_end(pipeline, step, timestep, callback_kwargs):
        sync()
        step_times.append(time.perf_counter())
        return callback_kwargs

    # Noise from a CPU generator: the same seed gives the same image on every device type.
    generator = torch.Generator("cpu").manual_seed(args.seed)
    report.update({"seed": args.seed, "steps": steps, "width": size, "height": size, "prompt": args.prompt, "sampler": type(pipe.scheduler).__name__})
    started = time.perf_counter()
    try:
        with torch.inference_mode():
            latents = pipe(
                args.prompt, num_inference_steps=steps, guidance_scale=7.0, height=size, width=size,
                generator=generator, output_type="latent", callback_on_step_end=on_step_end,
            ).images
            sync()
            sampled = time.perf_counter()
            timings["steps"] = sampled - started
            latents_nan = bool(torch.isnan(latents).any())

            def decode(vae_dtype_now):
                vae = pipe.vae if pipe.vae.dtype == vae_dtype_now else pipe.vae.to(dtype=vae_dtype_now)
                return vae.decode(latents.to(vae_dtype_now) / vae.config.scaling_factor, return_dict=False)[0]

            decoded = decode(vae_dtype)
            sync()
            timings["decode"] = time.perf_counter() - sampled
    except SmokeFailure:
        raise
    except Exception as exc:
        raise _generation_failure(exc, device) from exc

    durations = [b - a for a, b in zip([started] + step_times, step_times)]
    report["seconds_per_step"] = round(sorted(durations)[len(durations) // 2], 4) if durations else None
    report["first_step_seconds"] = round(durations[0], 4) if durations else None
    if device == "cuda":
        report["peak_vram_bytes"] = int(torch.cuda.max_memory_allocated())

    stats, pixels = image_stats(torch, decoded)
    report["image_stats"] = stats
    verdict = checks.image_verdict(stats)
    if verdict is not None and verdict["kind"] == "nan_image":
        retry_ok = None
        if not latents_nan and precision["vae_dtype"] == checks.FLOAT16:
            with torch.inference_mode():
                retry_stats, _ = image_stats(torch, decode(torch.float32))
            retry_ok = checks.image_verdict(retry_stats) is None
        diagnosis = checks.half_precision_diagnosis(
            latents_nan=latents_nan, dtype=precision["dtype"], vae_dtype=precision["vae_dtype"], fp32_vae_retry_ok=retry_ok
        )
        raise SmokeFailure(
            checks.EXIT_BAD_IMAGE, "nan_image", f"{verdict['message']}; {diagnosis['message']}",
            checks.fix_text(diagnosis["fix_flags"]), fix_flags=diagnosis["fix_flags"], fix_confirmed=diagnosis["confirmed"],
        )

    if args.out:
        started = time.perf_counter()
        model = "sdsetup-tiny" if args.checkpoint is None else args.checkpoint.name
        parameters = f"{args.prompt}\nSteps: {steps}, Sampler: {report['sampler']}, CFG scale: 7, Seed: {args.seed}, Size: {size}x{size}, Model: {model}"
        save_png(pixels, args.out, parameters)
        report["image"] = str(args.out.expanduser().resolve())
        timings["save"] = time.perf_counter() - started
    if verdict is not None:
        raise SmokeFailure(
            checks.EXIT_BAD_IMAGE, verdict["kind"], verdict["message"],
            "check the checkpoint's sha256 (`sdsetup verify DIR --rehash`); if it is right, try " + checks.fix_text(checks.HALF_PRECISION_FLAGS),
            fix_flags=list(checks.HALF_PRECISION_FLAGS), fix_confirmed=False,
        )


def run(argv, report: dict, timings: dict) -> int:
    args = parse_args(argv)
    _offline_environment(args)
    started = time.perf_counter()
    try:
        import torch
    except Exception as exc:
        raise SmokeFailure(checks.EXIT_IMPORT, "import_torch", f"torch does not import in {sys.executable}: {type(exc).__name__}: {exc}",
                           "reinstall torch into this venv (sdsetup verify DIR prints the command)") from exc
    timings["import_torch"] = time.perf_counter() - started
    info = torch_info(torch)
    report.update(info)
    if args.info:
        return checks.EXIT_OK
    device = pick_device(args.device, info)
    gpu = info.get("gpu") or {}
    precision = checks.choose_precision(
        device, gpu.get("name"), tuple(gpu.get("capability") or ()) or None,
        no_half=args.no_half, no_half_vae=args.no_half_vae, upcast_sampling=args.upcast_sampling,
    )
    report.update({"device": device, "device_name": gpu.get("name") if device == "cuda" else device,
                   "dtype": precision["dtype"], "vae_dtype": precision["vae_dtype"], "precision_reason": precision["reason"]})
    pipe = load_pipeline(args, torch, precision["dtype"], timings, report)
    generate(args, torch, pipe, device, precision, timings, report)
    return checks.EXIT_OK


def main(argv=None) -> int:
    # Libraries print to stdout now and then; keep the real stdout for the one JSON document.
    sys.stdout.flush()
    json_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    timings: dict = {}
    report: dict = {"ok": False, "protocol": PROTOCOL_VERSION, "python": sys.version.split()[0], "executable": sys.executable,
                    "platform": platform.platform(), "image": None}
    try:
        code = run(sys.argv[1:] if argv is None else argv, report, timings)
        report["ok"] = True
    except SmokeFailure as failure:
        code = failure.exit_code
        report["error"] = failure.error
    except Exception as exc:  # a bug or an unforeseen library failure: still answer in JSON
        import traceback

        traceback.print_exc()
        code = checks.EXIT_INTERNAL
        report["error"] = {"kind": "internal", "message": f"{type(exc).__name__}: {exc}", "fix": "report this with the stderr output"}
    timings["total"] = time.perf_counter() - _STARTED
    timings["imports"] = timings.get("import_torch", 0) + timings.get("import_diffusers", 0)
    report["timings"] = {k: round(v, 4) for k, v in timings.items()}
    report["seconds_total"] = report["timings"]["total"]
    json_out.write(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
    json_out.flush()
    return code


if __name__ == "__main__":
    exit_code = main()
    sys.stderr.flush()
    # Skip interpreter teardown (torch's takes ~0.7 s); the JSON and the PNG are already written.
    os._exit(exit_code)
