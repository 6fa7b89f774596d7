"""Decision tables: backend, CUDA wheel tag, driver minimums, VRAM tier and the web UI flags/env."""

from __future__ import annotations

import pytest

from sdsetup.detect import recommend
from sdsetup.detect.gpu import GpuInfo
from sdsetup.detect.machine import MachineFacts
from sdsetup.errors import SdsetupError

GIB = 1024**3
MIB = 1024**2


def nvidia(name="NVIDIA GeForce RTX 3060", vram=12 * GIB, cuda="12.4", cc="8.6", driver="550.54.14"):
    return GpuInfo("nvidia", name, vram, vram, driver, cuda, cc, "nvml")


def facts(system="Linux", machine="x86_64", gpus=()):
    return MachineFacts(os={"system": system, "machine": machine, "bits": 64, "wsl": False}, gpus=list(gpus), ram_total_bytes=16 * GIB)


@pytest.mark.parametrize(
    "cuda, cc, available, expected",
    [
        ("12.4", "8.6", recommend.ALL_CUDA_TAGS, "cu124"),
        ("12.8", "8.9", recommend.ALL_CUDA_TAGS, "cu128"),
        ("13.0", "8.9", recommend.ALL_CUDA_TAGS, "cu128"),  # newer than every tag: the highest
        ("12.6", "8.6", recommend.ALL_CUDA_TAGS, "cu126"),
        ("12.5", "8.6", recommend.ALL_CUDA_TAGS, "cu124"),
        ("12.1", "7.5", recommend.ALL_CUDA_TAGS, "cu121"),
        ("12.0", "7.5", recommend.ALL_CUDA_TAGS, "cu118"),  # 12.0 < 12.1: stay on the safe side
        ("11.8", "6.1", recommend.ALL_CUDA_TAGS, "cu118"),
        ("11.4", "6.1", recommend.ALL_CUDA_TAGS, "cu118"),  # older than all: the oldest (driver check warns)
        (None, "8.6", recommend.ALL_CUDA_TAGS, "cu121"),  # unknown driver: the default
        ("12.4", "12.0", recommend.ALL_CUDA_TAGS, "cu128"),  # Blackwell (RTX 50xx) needs cu128 whatever the driver says
        ("12.6", "12.0", recommend.ALL_CUDA_TAGS, "cu128"),
        ("12.8", "10.0", recommend.ALL_CUDA_TAGS, "cu128"),  # datacenter Blackwell
        ("12.4", "8.6", ("cu118", "cu121"), "cu121"),  # A1111 master: torch 2.1.2 only has cu118/cu121
        ("11.8", "8.6", ("cu118", "cu121"), "cu118"),
        ("12.4", "8.6", ("cu118", "cu126", "cu128"), "cu118"),  # dev manifest, 12.4 driver: cu126 is too new
        ("12.6", "8.6", ("cu118", "cu126", "cu128"), "cu126"),
    ],
)
def test_cuda_tag_for_driver(cuda, cc, available, expected):
    assert recommend.cuda_tag_for_driver(cuda, cc, available=available) == expected


@pytest.mark.parametrize(
    "gpu, tag, system, problem_contains",
    [
        (nvidia(cuda="12.4"), "cu121", "Linux", None),
        (nvidia(cuda="12.0", driver="525.60.13"), "cu121", "Linux", None),  # minor-version compatibility
        (nvidia(cuda="11.4", driver="470.82.01"), "cu118", "Linux", None),
        (nvidia(cuda="11.4", driver="470.82.01"), "cu121", "Linux", "525.60.13"),
        (nvidia(cuda="11.4", driver="472.12"), "cu121", "Windows", "527.41"),
        (nvidia(cuda="10.2", driver="440.33"), "cu118", "Linux", "450.80.02"),
        (nvidia(cuda=None, driver="470.82.01"), "cu121", "Linux", "525.60.13"),  # nvidia-smi without a CUDA line
        (nvidia(cuda=None, driver="535.104.05"), "cu121", "Linux", None),
        (nvidia(cc="12.0", cuda="12.6", driver="560.35.03"), "cu128", "Linux", "570"),
        (nvidia(cc="12.0", cuda="12.8", driver="570.124.04"), "cu128", "Linux", None),
        (nvidia(cc="12.0", cuda=None, driver="566.36"), "cu128", "Windows", "570"),
        (GpuInfo("nvidia", "GA106 [GeForce RTX 3060]", source="lspci"), "cu121", "Linux", "no NVIDIA driver"),
        (GpuInfo("amd", "Navi 22"), "rocm5.6", "Linux", None),
    ],
)
def test_driver_problem(gpu, tag, system, problem_contains):
    problem = recommend.driver_problem(gpu, tag, system)
    if problem_contains is None:
        assert problem is None
    else:
        assert problem is not None and problem_contains in problem


@pytest.mark.parametrize(
    "system, machine, gpus, expected",
    [
        ("Linux", "x86_64", [], "cpu"),
        ("Windows", "AMD64", [nvidia()], "cuda"),
        ("Linux", "x86_64", [GpuInfo("intel", "AlderLake-S GT1"), nvidia()], "cuda"),  # iGPU + NVIDIA: NVIDIA
        ("Linux", "x86_64", [GpuInfo("amd", "Navi 22")], "rocm"),
        ("Windows", "AMD64", [GpuInfo("amd", "Radeon RX 6700 XT")], "cpu"),  # no ROCm torch on Windows
        ("Linux", "x86_64", [GpuInfo("intel", "Arc A770")], "cpu"),
        ("Darwin", "arm64", [GpuInfo("apple", "Apple M2")], "mps"),
        ("Darwin", "x86_64", [], "cpu"),
    ],
)
def test_choose_backend(system, machine, gpus, expected):
    assert recommend.choose_backend(facts(system, machine, gpus)) == expected


def test_requested_backend_wins_and_unknown_is_a_usage_error():
    machine = facts(gpus=[nvidia()])
    assert recommend.choose_backend(machine, "cpu") == "cpu"
    with pytest.raises(SdsetupError) as info:
        recommend.choose_backend(machine, "vulkan")
    assert info.value.exit_code == 2 and "vulkan" in info.value.message


@pytest.mark.parametrize(
    "vram, tier, flags",
    [
        (2 * GIB, "low", ("--lowvram",)),
        (3 * GIB, "low", ("--lowvram",)),
        (4096 * MIB, "medium", ("--medvram",)),
        (4000 * MIB, "medium", ("--medvram",)),  # a "4 GB" card reporting a little less
        (6 * GIB, "medium", ("--medvram",)),
        (8192 * MIB, "medium-sdxl", ("--medvram-sdxl",)),
        (8100 * MIB, "medium-sdxl", ("--medvram-sdxl",)),
        (11264 * MIB, "medium-sdxl", ("--medvram-sdxl",)),
        (12288 * MIB, "medium-sdxl", ("--medvram-sdxl",)),
        (16 * GIB, "high", ()),
        (24 * GIB, "high", ()),
    ],
)
def test_vram_tier(vram, tier, flags):
    result = recommend.vram_tier(nvidia(vram=vram))
    assert (result.name, result.flags) == (tier, flags)


def test_vram_tier_without_gpu_or_size():
    assert recommend.vram_tier(None).name == "none"
    assert recommend.vram_tier(GpuInfo("nvidia", "x")).name == "unknown"
    assert recommend.vram_tier(GpuInfo("apple", "Apple M2", 16 * GIB)).flags == ()


@pytest.mark.parametrize(
    "name, cc, expected",
    [
        ("NVIDIA GeForce GTX 1650", "7.5", True),
        ("NVIDIA GeForce GTX 1660 SUPER", "7.5", True),
        ("NVIDIA GeForce GTX 1080 Ti", "6.1", True),
        ("GeForce GTX 1060 6GB", None, True),  # by name alone (nvidia-smi without compute_cap)
        ("NVIDIA GeForce MX150", "6.1", True),  # Pascal by compute capability
        ("NVIDIA GeForce RTX 2060", "7.5", False),  # Turing with tensor cores: fp16 works
        ("NVIDIA GeForce RTX 3060", "8.6", False),
        ("Tesla T4", "7.5", False),
    ],
)
def test_needs_upcast(name, cc, expected):
    assert recommend.needs_upcast(nvidia(name=name, cc=cc)) is expected


@pytest.mark.parametrize(
    "name, expected",
    [
        ("Navi 22 [Radeon RX 6700/6700 XT/6750 XT / 6800M/6850M XT]", "10.3.0"),
        ("Navi 10 [Radeon RX 5600 OEM/5600 XT / 5700/5700 XT]", "10.3.0"),
        ("AMD Radeon RX 6600", "10.3.0"),
        ("Renoir", "9.0.0"),
        ("Navi 31 [Radeon RX 7900 XT/7900 XTX]", None),  # RDNA3 is supported by ROCm as is
    ],
)
def test_hsa_override(name, expected):
    assert recommend.hsa_override(GpuInfo("amd", name)) == expected


@pytest.mark.parametrize(
    "gpus, system, machine, backend, flags, env",
    [
        ([], "Linux", "x86_64", "cpu", ["--use-cpu", "all", "--precision", "full", "--no-half", "--skip-torch-cuda-test"], {}),
        ([nvidia(vram=12 * GIB)], "Windows", "AMD64", "cuda", ["--medvram-sdxl", "--xformers"], {}),
        ([nvidia(vram=24 * GIB, name="NVIDIA GeForce RTX 4090", cc="8.9")], "Linux", "x86_64", "cuda", ["--xformers"], {}),
        ([nvidia(name="NVIDIA GeForce GTX 1650", vram=4 * GIB, cc="7.5", cuda="12.2")], "Windows", "AMD64", "cuda",
         ["--medvram", "--upcast-sampling", "--xformers"], {}),
        # cu118 (old driver): the pinned xformers is built for cu121, so torch's own attention instead
        ([nvidia(name="NVIDIA GeForce GTX 1080 Ti", vram=11 * GIB, cc="6.1", cuda="11.4")], "Linux", "x86_64", "cuda",
         ["--medvram-sdxl", "--upcast-sampling", "--opt-sdp-attention"], {}),
        ([nvidia(name="NVIDIA GeForce RTX 3050 Laptop GPU", vram=4 * GIB - 200 * MIB, cc="8.6")], "Windows", "AMD64", "cuda",
         ["--lowvram", "--xformers"], {}),
        ([GpuInfo("amd", "Navi 22 [Radeon RX 6700/6700 XT/6750 XT / 6800M/6850M XT]", 12 * GIB)], "Linux", "x86_64", "rocm",
         ["--medvram-sdxl", "--upcast-sampling", "--opt-sub-quad-attention"], {"HSA_OVERRIDE_GFX_VERSION": "10.3.0"}),
        ([GpuInfo("apple", "Apple M2", 16 * GIB)], "Darwin", "arm64", "mps",
         ["--skip-torch-cuda-test", "--upcast-sampling", "--no-half-vae", "--use-cpu", "interrogate"], {"PYTORCH_ENABLE_MPS_FALLBACK": "1"}),
    ],
)
def test_launch_config(gpus, system, machine, backend, flags, env):
    machine_facts = facts(system, machine, gpus)
    choice = recommend.torch_choice(machine_facts)
    assert choice.backend == backend
    config = recommend.launch_config(machine_facts, backend, choice.tag, choice.manifest)
    assert list(config.flags) == flags
    assert dict(config.env) == env
    assert recommend.launch_flags(machine_facts, backend, choice.tag, choice.manifest) == flags


def test_blackwell_gets_the_dev_manifest_with_cu128_and_xformers():
    machine = facts(gpus=[nvidia(name="NVIDIA GeForce RTX 5070 Ti", vram=16 * GIB, cc="12.0", cuda="12.8", driver="570.124.04")])
    choice = recommend.torch_choice(machine)
    assert (choice.backend, choice.tag, choice.manifest) == ("cuda", "cu128", "a1111-dev")
    assert "Blackwell" in choice.reason
    assert recommend.launch_flags(machine, "cuda", choice.tag, choice.manifest) == ["--xformers"]


def test_master_manifest_caps_the_tag_at_cu121_even_for_a_new_driver():
    choice = recommend.torch_choice(facts(gpus=[nvidia(cuda="12.6")]))
    assert (choice.tag, choice.manifest) == ("cu121", "a1111")


def test_primary_gpu_is_the_biggest_of_the_backends_vendor():
    small, big = nvidia(name="small", vram=4 * GIB), nvidia(name="big", vram=24 * GIB)
    machine = facts(gpus=[GpuInfo("intel", "iGPU"), small, big])
    assert recommend.primary_gpu(machine, "cuda").name == "big"
    assert recommend.primary_gpu(machine, "cpu") is None


def test_cpu_reason_names_why_a_gpu_is_not_used():
    assert "Windows" in recommend.torch_choice(facts("Windows", "AMD64", [GpuInfo("amd", "Radeon RX 6700 XT")])).reason
    assert "Intel" in recommend.torch_choice(facts(gpus=[GpuInfo("intel", "Arc A770")])).reason
    assert "no supported GPU" in recommend.torch_choice(facts()).reason


def test_recommendation_object_for_no_gpu():
    advice = recommend.recommendation(facts())
    assert advice["backend"] == "cpu" and advice["torch_tag"] == "cpu" and advice["gpu"] is None
    assert advice["vram_tier"] == "none" and advice["env"] == {}
    assert advice["launch_flags"] == list(recommend.CPU_FLAGS)


def test_the_torch_facts_come_from_the_manifests_torch_section():
    """Issue 12 item 1: default and ROCm tags, CUDA builds and xformers builds live only in manifests/*.toml."""
    from sdsetup.manifest import load_manifest

    for name in ("a1111", "a1111-dev"):
        cuda = load_manifest(name).torch["cuda"]
        rocm = load_manifest(name).torch["rocm"]
        spec = recommend.manifest_torch(name)
        assert spec.default_cuda_tag == cuda.tags[0] and set(spec.cuda_tags) == set(cuda.tags)
        assert spec.rocm_tag == rocm.tags[0] and spec.xformers_tags == cuda.xformers_tags and spec.torch == cuda.torch_version
    assert recommend.manifest_torch("a1111").xformers_tags == ("cu121",)


def test_a_manifest_of_ones_own_drives_the_choice():
    from dataclasses import replace

    from sdsetup.manifest import load_manifest

    manifest = load_manifest("a1111")
    cuda = replace(manifest.torch["cuda"], tags=("cu118",), xformers_tags=("cu118",))
    rocm = replace(manifest.torch["rocm"], tags=("rocm5.7",))
    mine = replace(manifest, name="mine", torch={**manifest.torch, "cuda": cuda, "rocm": rocm})
    old = facts(gpus=[nvidia(name="NVIDIA GeForce GTX 1080 Ti", vram=11 * GIB, cc="6.1", cuda="11.4")])
    choice = recommend.torch_choice(old, "auto", mine)
    assert (choice.tag, choice.manifest) == ("cu118", "mine")
    assert "--xformers" in recommend.launch_flags(old, "cuda", "cu118", mine)
    assert "--xformers" not in recommend.launch_flags(old, "cuda", "cu118", "a1111")
    amd = facts(gpus=[GpuInfo("amd", "Radeon RX 6700 XT", 12 * GIB)])
    assert recommend.torch_choice(amd, "rocm", mine).tag == "rocm5.7"
