"""Pure decisions from MachineFacts: torch backend and wheel tag, VRAM tier, web UI flags and env.

No probing here: every function takes plain data and is tested by tables (tests/test_detect_recommend.py).
The sources for each rule are in ../shared/facts/a1111.md §3.5 (drivers), §3.6 (Blackwell) and §4 (flags).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from sdsetup.detect.gpu import GpuInfo
from sdsetup.errors import usage_error
from sdsetup.i18n import t
from sdsetup.versions import version_tuple

if TYPE_CHECKING:  # types only: importing these here would slow start-up or make a circle
    from sdsetup.detect.machine import MachineFacts
    from sdsetup.manifest import Manifest

GIB = 1024**3
BACKENDS = ("cuda", "rocm", "mps", "cpu")

# PyTorch CUDA wheel tags and the CUDA version each needs from the driver.
CUDA_TAGS: tuple[tuple[str, tuple[int, int]], ...] = (
    ("cu118", (11, 8)),
    ("cu121", (12, 1)),
    ("cu124", (12, 4)),
    ("cu126", (12, 6)),
    ("cu128", (12, 8)),
)
ALL_CUDA_TAGS = tuple(tag for tag, _ in CUDA_TAGS)


@dataclass(frozen=True)
class ManifestTorch:
    """What a manifest's torch section offers, as the recommendation needs it (read from the manifest:
    manifests/*.toml are the only place these facts live)."""

    torch: str
    cuda_tags: tuple[str, ...]  # the CUDA builds that exist for this torch version
    default_cuda_tag: str  # when the driver's CUDA version is unknown: the manifest's first cuda tag
    rocm_tag: str
    xformers_tags: tuple[str, ...]  # builds the pinned xformers wheel matches

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> "ManifestTorch":
        torch = manifest.torch
        cuda = torch.get("cuda")
        rocm = torch.get("rocm")
        some = cuda or rocm or next(iter(torch.values()))
        return cls(
            torch=(some.torch_version if some else None) or "?",
            cuda_tags=tuple(cuda.tags) if cuda else (),
            default_cuda_tag=cuda.tags[0] if cuda and cuda.tags else "cu121",
            rocm_tag=rocm.tags[0] if rocm and rocm.tags else "rocm",
            xformers_tags=tuple(cuda.xformers_tags) if cuda and cuda.xformers else (),
        )


@functools.lru_cache(maxsize=None)
def _builtin_torch(name: str) -> ManifestTorch | None:
    """A built-in manifest's torch facts, loaded once; None for a name that is not built in (or broken)."""
    from sdsetup.errors import SdsetupError
    from sdsetup.manifest import builtin_names, load_manifest

    if name not in builtin_names():
        return None
    try:
        return ManifestTorch.from_manifest(load_manifest(name))
    except SdsetupError:
        return None


def manifest_torch(manifest: Manifest | str | None) -> ManifestTorch:
    """The torch facts of a Manifest, or of a built-in manifest by name (an unknown name: a1111's)."""
    if manifest is not None and not isinstance(manifest, str):
        return ManifestTorch.from_manifest(manifest)
    return _builtin_torch(manifest or "a1111") or _builtin_torch("a1111")


def _manifest_name(manifest: Manifest | str | None) -> str | None:
    return manifest if manifest is None or isinstance(manifest, str) else manifest.name

# Minimum NVIDIA drivers (facts §3.5: NVIDIA minor-version compatibility): (Linux, Windows).
DRIVER_MINIMUMS = {
    11: ("450.80.02", "452.39"),
    12: ("525.60.13", "527.41"),
}
# cu128 builds, and any Blackwell card, want a 570-series driver (CUDA 12.8).
CU128_DRIVER = (570,)

# Drivers reserve a little memory, so a "4 GB" card may report 4095 MiB: tiers allow this much.
VRAM_TOLERANCE = 128 * 1024 * 1024


def _numbers(text: str | None) -> tuple[int, ...] | None:
    """A driver, CUDA or compute-capability version's numbers (sdsetup.versions); None when unknown."""
    return version_tuple(text) or None


def is_blackwell(compute_capability: str | None) -> bool:
    """sm_100/sm_120 (B200, RTX 50xx): no kernels before torch 2.7 + cu128 (facts §3.6)."""
    capability = _numbers(compute_capability)
    return bool(capability) and capability[0] >= 10


# ------------------------------------------------------------------------------------------ backend


def choose_backend(facts: MachineFacts, requested: str = "auto") -> str:
    """cuda for any NVIDIA card, rocm for AMD on Linux, mps on Apple silicon, else cpu."""
    requested = (requested or "auto").lower()
    if requested != "auto":
        if requested not in BACKENDS:
            raise usage_error(t("--backend {requested}: unknown backend", requested=requested), t("use auto or one of {backends}", backends=', '.join(BACKENDS)))
        return requested
    vendors = {gpu.vendor for gpu in facts.gpus}
    if "nvidia" in vendors:
        return "cuda"
    if "amd" in vendors and facts.system == "Linux":
        return "rocm"
    if "apple" in vendors and facts.system == "Darwin":
        return "mps"
    return "cpu"


def primary_gpu(facts: MachineFacts, backend: str) -> GpuInfo | None:
    """The GPU the web UI will use: of the backend's vendor, the one with the most VRAM."""
    vendor = {"cuda": "nvidia", "rocm": "amd", "mps": "apple"}.get(backend)
    matching = [gpu for gpu in facts.gpus if gpu.vendor == vendor]
    if not matching:
        return None
    return max(matching, key=lambda gpu: gpu.vram_total_bytes or 0)


def choose_manifest(facts: MachineFacts, backend: str) -> str:
    """a1111 (master) unless the card needs torch ≥ 2.7 + cu128, which only the dev branch installs."""
    gpu = primary_gpu(facts, backend)
    if backend == "cuda" and gpu is not None and is_blackwell(gpu.compute_capability):
        return "a1111-dev"
    return "a1111"


# ------------------------------------------------------------------------------------------ CUDA tag


def cuda_tag_for_driver(
    cuda_driver_version: str | None,
    compute_capability: str | None = None,
    *,
    available: Iterable[str] = ALL_CUDA_TAGS,
    default: str = "cu121",
) -> str:
    """The highest CUDA wheel tag in `available` the driver can run; Blackwell always gets cu128.

    Unknown driver version: `default`. A driver older than every tag: the oldest tag (the driver
    check then tells the user to update it).
    """
    if is_blackwell(compute_capability):
        return "cu128"
    offered = [(tag, need) for tag, need in CUDA_TAGS if tag in set(available)]
    driver = _numbers(cuda_driver_version)
    if driver is None or not offered:
        return default
    runnable = [tag for tag, need in offered if driver[:2] >= need]
    return runnable[-1] if runnable else offered[0][0]


def driver_problem(gpu: GpuInfo | None, tag: str, system: str) -> str | None:
    """Why this NVIDIA driver cannot run `tag` wheels (with what to install), or None when it can."""
    if gpu is None or gpu.vendor != "nvidia":
        return None
    if not gpu.driver_version and not gpu.cuda_driver_version:
        return "no NVIDIA driver answered (the card is only visible on the PCI bus): install the current NVIDIA driver"
    if tag == "cu128" or is_blackwell(gpu.compute_capability):
        cuda = _numbers(gpu.cuda_driver_version)
        driver = _numbers(gpu.driver_version)
        too_old = (cuda is not None and cuda[:2] < (12, 8)) or (cuda is None and driver is not None and driver[:1] < CU128_DRIVER)
        if too_old:
            return f"driver {gpu.driver_version or '?'} (CUDA {gpu.cuda_driver_version or '?'}) is too old for cu128 wheels: install a 570-series driver or newer"
        return None
    need = dict(CUDA_TAGS).get(tag)
    if need is None:
        return None
    cuda = _numbers(gpu.cuda_driver_version)
    if cuda is not None:
        # Minor-version compatibility: any driver of the same CUDA major runs the wheel.
        if cuda[0] < need[0]:
            minimum = _driver_minimum_text(need[0], system)
            return f"driver {gpu.driver_version or '?'} supports CUDA {gpu.cuda_driver_version} only; {tag} wheels need driver {minimum} or newer"
        return None
    driver = _numbers(gpu.driver_version)
    minimum = DRIVER_MINIMUMS.get(need[0])
    if driver is not None and minimum is not None:
        floor = minimum[1] if system == "Windows" else minimum[0]
        if driver < (_numbers(floor) or ()):
            return f"driver {gpu.driver_version} is older than {floor}, the minimum for {tag} wheels: update the NVIDIA driver"
    return None


def _driver_minimum_text(cuda_major: int, system: str) -> str:
    linux, windows = DRIVER_MINIMUMS.get(cuda_major, ("?", "?"))
    return windows if system == "Windows" else linux


# ------------------------------------------------------------------------------------------ torch


@dataclass(frozen=True)
class TorchChoice:
    backend: str  # cuda | rocm | mps | cpu
    tag: str  # cu118…cu128 | rocm5.6… | cpu (PyTorch's macOS wheels, MPS included, live on the cpu index)
    reason: str
    manifest: str = "a1111"


def torch_choice(facts: MachineFacts, requested: str = "auto", manifest: Manifest | str | None = None) -> TorchChoice:
    """`manifest`: a Manifest, a built-in manifest's name, or None (the one this machine gets)."""
    backend = choose_backend(facts, requested)
    spec = manifest_torch(manifest or choose_manifest(facts, backend))
    manifest = _manifest_name(manifest) or choose_manifest(facts, backend)
    gpu = primary_gpu(facts, backend)
    forced = "" if (requested or "auto") == "auto" else f" (--backend {backend})"
    if backend == "cuda":
        if gpu is None:
            return TorchChoice(backend, spec.default_cuda_tag, t("CUDA requested but no NVIDIA GPU found; torch {torch} {tag}", torch=spec.torch,
                                                                 tag=spec.default_cuda_tag) + forced, manifest)
        tag = cuda_tag_for_driver(gpu.cuda_driver_version, gpu.compute_capability, available=spec.cuda_tags, default=spec.default_cuda_tag)
        if is_blackwell(gpu.compute_capability):
            why = t("{gpu}: compute capability {capability} (Blackwell) needs torch ≥ 2.7 with cu128", gpu=gpu.name,
                    capability=gpu.compute_capability)
        elif gpu.cuda_driver_version:
            why = t("{gpu}: the driver supports CUDA {cuda}; torch {torch} builds: {tags}", gpu=gpu.name, cuda=gpu.cuda_driver_version,
                    torch=spec.torch, tags=", ".join(spec.cuda_tags))
        else:
            why = t("{gpu}: driver CUDA version unknown, torch {torch} default build", gpu=gpu.name, torch=spec.torch)
        return TorchChoice(backend, tag, why + forced, manifest)
    if backend == "rocm":
        name = gpu.name if gpu else t("no AMD GPU found")
        return TorchChoice(backend, spec.rocm_tag, t("{gpu}: AMD on Linux uses ROCm builds of torch {torch}", gpu=name, torch=spec.torch) + forced,
                           manifest)
    if backend == "mps":
        name = gpu.name if gpu else "Apple silicon"
        return TorchChoice(backend, "cpu", t("{gpu}: PyTorch's macOS wheels include Metal (MPS)", gpu=name) + forced, manifest)
    return TorchChoice(backend, "cpu", _cpu_reason(facts) + forced, manifest)


def _cpu_reason(facts: MachineFacts) -> str:
    vendors = {gpu.vendor for gpu in facts.gpus}
    if "amd" in vendors and facts.system == "Windows":
        return t("AMD GPU on Windows: torch has no ROCm build for Windows, so the web UI runs on the CPU")
    if "amd" in vendors and facts.system != "Linux":
        return t("AMD GPU outside Linux: no ROCm build of torch here, so the web UI runs on the CPU")
    if "intel" in vendors:
        return t("Intel GPU: the web UI's IPEX path is not set up by sdsetup, so it runs on the CPU")
    if "apple" in vendors:
        return t("Apple GPU outside macOS: running on the CPU")
    return t("no supported GPU found: the web UI runs on the CPU (slow: minutes per image)")


# ------------------------------------------------------------------------------------------ VRAM


@dataclass(frozen=True)
class VramTier:
    name: str  # none | unknown | unified | low | medium | medium-sdxl | high
    vram_bytes: int | None
    flags: tuple[str, ...]


def vram_tier(gpu: GpuInfo | None) -> VramTier:
    """--lowvram under 4 GiB, --medvram under 8 GiB, --medvram-sdxl for 8–12 GiB, nothing above (facts §4)."""
    if gpu is None:
        return VramTier("none", None, ())
    if gpu.vendor == "apple":
        return VramTier("unified", gpu.vram_total_bytes, ())
    total = gpu.vram_total_bytes
    if not total:
        return VramTier("unknown", None, ())
    if total + VRAM_TOLERANCE < 4 * GIB:
        return VramTier("low", total, ("--lowvram",))
    if total + VRAM_TOLERANCE < 8 * GIB:
        return VramTier("medium", total, ("--medvram",))
    if total <= 12 * GIB + VRAM_TOLERANCE:
        return VramTier("medium-sdxl", total, ("--medvram-sdxl",))
    return VramTier("high", total, ())


_GTX_10_16 = re.compile(r"\bGTX\s*1[06]\d\d\b", re.IGNORECASE)


def needs_upcast(gpu: GpuInfo | None) -> bool:
    """GTX 10xx/16xx (Pascal, and Turing without tensor cores): half precision gives NaNs/black images (facts §3.7)."""
    if gpu is None or gpu.vendor != "nvidia":
        return False
    name = gpu.name or ""
    if _GTX_10_16.search(name):
        return True
    capability = _numbers(gpu.compute_capability)
    if capability is None:
        return False
    if capability[0] == 6:
        return True
    return capability[:2] == (7, 5) and bool(re.search(r"\bGTX\s*16", name, re.IGNORECASE))


def hsa_override(gpu: GpuInfo | None) -> str | None:
    """HSA_OVERRIDE_GFX_VERSION as webui.sh sets it: Navi 1x/2x → 10.3.0, Renoir → 9.0.0 (facts §1.6)."""
    if gpu is None or gpu.vendor != "amd":
        return None
    name = gpu.name or ""
    if re.search(r"\bNavi\s*[12]\d\b", name) or re.search(r"\bRX\s*[56]\d{3}\b", name):
        return "10.3.0"
    if re.search(r"\bRenoir\b", name):
        return "9.0.0"
    return None


@dataclass(frozen=True)
class LaunchConfig:
    """What goes into webui-user: COMMANDLINE_ARGS flags and environment variables."""

    flags: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


CPU_FLAGS = ("--use-cpu", "all", "--precision", "full", "--no-half", "--skip-torch-cuda-test")
MACOS_FLAGS = ("--skip-torch-cuda-test", "--upcast-sampling", "--no-half-vae", "--use-cpu", "interrogate")


def launch_config(facts: MachineFacts, backend: str, torch_tag: str | None = None, manifest: Manifest | str | None = "a1111") -> LaunchConfig:
    """Flags and env vars for the web UI on this machine (facts §4; install writes both)."""
    gpu = primary_gpu(facts, backend)
    tier = vram_tier(gpu)
    if backend == "cpu":
        return LaunchConfig(CPU_FLAGS, {}, (t("CPU only: expect minutes per image"),))
    if backend == "mps":
        return LaunchConfig(MACOS_FLAGS, {"PYTORCH_ENABLE_MPS_FALLBACK": "1"}, (t("the web UI's macOS defaults (webui-macos-env.sh)"),))
    flags = list(tier.flags)
    env: dict[str, str] = {}
    notes = []
    if backend == "rocm":
        # AMD cards without working fp16 (facts §4): upcast, and the attention that works on ROCm.
        flags += ["--upcast-sampling", "--opt-sub-quad-attention"]
        override = hsa_override(gpu)
        if override:
            env["HSA_OVERRIDE_GFX_VERSION"] = override
        return LaunchConfig(tuple(flags), env, tuple(notes))
    # cuda
    if needs_upcast(gpu):
        flags.append("--upcast-sampling")
        notes.append(t("GTX 10xx/16xx: if images come out black, add --no-half-vae"))
    spec = manifest_torch(manifest)
    capability = _numbers(gpu.compute_capability) if gpu else None
    if torch_tag in spec.xformers_tags and (capability is None or capability >= (6, 0)):
        flags.append("--xformers")  # the pinned xformers build matches this torch + CUDA pair
    else:
        flags.append("--opt-sdp-attention")  # no matching xformers build: torch's own attention
    return LaunchConfig(tuple(flags), env, tuple(notes))


def launch_flags(facts: MachineFacts, backend: str, torch_tag: str | None = None, manifest: Manifest | str | None = "a1111") -> list[str]:
    return list(launch_config(facts, backend, torch_tag, manifest).flags)


def recommendation(facts: MachineFacts, requested: str = "auto", manifest: str | None = None) -> dict[str, Any]:
    """The `recommendation` object of `check --json`."""
    choice = torch_choice(facts, requested, manifest)
    gpu = primary_gpu(facts, choice.backend)
    tier = vram_tier(gpu)
    config = launch_config(facts, choice.backend, choice.tag, choice.manifest)
    return {
        "backend": choice.backend,
        "torch_tag": choice.tag,
        "manifest": choice.manifest,
        "reason": choice.reason,
        "gpu": gpu.name if gpu else None,
        "vram_tier": tier.name,
        "launch_flags": list(config.flags),
        "env": dict(config.env),
        "notes": list(config.notes),
    }
