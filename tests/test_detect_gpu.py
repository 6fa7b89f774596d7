"""GPU probes at their boundary: NVML values, nvidia-smi CSV, lspci text, a /sys/class/drm tree."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from sdsetup.detect import gpu as gpus
from sdsetup.detect.gpu import GpuInfo

FIXTURES = Path(__file__).parent / "fixtures" / "detect"
MIB = 1024**2
GIB = 1024**3


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


class NvmlError(Exception):
    pass


class FakeNvml:
    """The pynvml calls probe_nvml makes, answering with values recorded from real cards."""

    def __init__(self, devices, driver=b"550.54.14", cuda=12040, init_error=False):
        self.devices = devices
        self.driver = driver
        self.cuda = cuda
        self.init_error = init_error
        self.shutdown_calls = 0

    def nvmlInit(self):
        if self.init_error:
            raise NvmlError("NVML Shared Library Not Found")

    def nvmlShutdown(self):
        self.shutdown_calls += 1

    def nvmlSystemGetDriverVersion(self):
        return self.driver

    def nvmlSystemGetCudaDriverVersion(self):
        return self.cuda

    def nvmlDeviceGetCount(self):
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index):
        return self.devices[index]

    def nvmlDeviceGetName(self, handle):
        return handle["name"]

    def nvmlDeviceGetMemoryInfo(self, handle):
        return SimpleNamespace(total=handle["total"], free=handle["free"], used=handle["total"] - handle["free"])

    def nvmlDeviceGetCudaComputeCapability(self, handle):
        if handle.get("cc") is None:
            raise NvmlError("Not Supported")
        return handle["cc"]


def test_nvml_reports_name_vram_driver_cuda_and_capability():
    fake = FakeNvml([{"name": b"NVIDIA GeForce RTX 3060", "total": 12884901888, "free": 12115247104, "cc": (8, 6)}])
    found = gpus.probe_nvml(fake)
    assert found == [
        GpuInfo("nvidia", "NVIDIA GeForce RTX 3060", 12884901888, 12115247104, "550.54.14", "12.4", "8.6", "nvml")
    ]
    assert fake.shutdown_calls == 1


def test_nvml_str_names_several_cards_and_missing_capability():
    fake = FakeNvml(
        [
            {"name": "NVIDIA GeForce RTX 5090", "total": 34190917632, "free": 33554432000, "cc": (12, 0)},
            {"name": "Tesla K80", "total": 12 * GIB, "free": 12 * GIB, "cc": None},
        ],
        driver="570.124.04",
        cuda=12080,
    )
    found = gpus.probe_nvml(fake)
    assert [(g.name, g.compute_capability, g.cuda_driver_version) for g in found] == [
        ("NVIDIA GeForce RTX 5090", "12.0", "12.8"),
        ("Tesla K80", None, "12.8"),
    ]


def test_nvml_without_driver_is_none_so_the_fallbacks_run():
    assert gpus.probe_nvml(FakeNvml([], init_error=True)) is None


def test_the_real_pynvml_module_has_every_call_we_make():
    import pynvml

    for name in [n for n in vars(FakeNvml) if n.startswith("nvml")]:
        assert callable(getattr(pynvml, name)), name


@pytest.mark.parametrize("value, expected", [(12040, "12.4"), (12080, "12.8"), (11080, "11.8"), (13000, "13.0"), (0, None), (None, None)])
def test_format_cuda_version(value, expected):
    assert gpus.format_cuda_version(value) == expected


def test_nvidia_smi_csv_one_card():
    header = fixture("nvidia-smi-header.txt")
    found = gpus.parse_nvidia_smi_csv(fixture("nvidia-smi-rtx3060.csv"), cuda_version=gpus.parse_nvidia_smi_cuda_version(header))
    assert found == [GpuInfo("nvidia", "NVIDIA GeForce RTX 3060", 12288 * MIB, 11554 * MIB, "550.54.14", "12.4", "8.6", "nvidia-smi")]


def test_nvidia_smi_csv_not_available_values_are_none():
    found = gpus.parse_nvidia_smi_csv(fixture("nvidia-smi-two-gpus.csv"))
    assert [(g.name, g.vram_total_bytes, g.vram_free_bytes, g.compute_capability) for g in found] == [
        ("NVIDIA GeForce RTX 4090", 24564 * MIB, 23817 * MIB, "8.9"),
        ("Tesla T4", 15360 * MIB, None, None),
    ]


def test_nvidia_smi_csv_from_a_driver_without_compute_cap():
    found = gpus.parse_nvidia_smi_csv(fixture("nvidia-smi-old-driver.csv"), gpus.SMI_FIELDS[:-1])
    assert found[0].name == "GeForce GTX 1060 6GB" and found[0].driver_version == "470.82.01"
    assert found[0].compute_capability is None and found[0].vram_total_bytes == 6144 * MIB
    # the same text read as if it had five fields is not misread
    assert gpus.parse_nvidia_smi_csv(fixture("nvidia-smi-old-driver.csv")) == []


def test_lspci_desktop_keeps_display_controllers_only():
    found = gpus.parse_lspci(fixture("lspci-desktop-intel-nvidia.txt"))
    assert [(d["slot"], d["vendor"], d["device_id"], d["name"]) for d in found] == [
        ("0000:00:02.0", "intel", "0x4680", "AlderLake-S GT1"),
        ("0000:01:00.0", "nvidia", "0x2504", "GA106 [GeForce RTX 3060 Lite Hash Rate]"),
    ]


def test_lspci_amd_name_keeps_the_navi_generation():
    (found,) = gpus.parse_lspci(fixture("lspci-amd-navi22.txt"))
    assert found["vendor"] == "amd" and found["vendor_id"] == "0x1002"
    assert found["name"] == "Navi 22 [Radeon RX 6700/6700 XT/6750 XT / 6800M/6850M XT]"


def test_plain_lspci_without_ids_and_a_bmc_display():
    found = gpus.parse_lspci(fixture("lspci-plain-server.txt"))
    assert [(d["slot"], d["vendor"]) for d in found] == [("0000:02:00.0", None), ("0000:3b:00.0", "nvidia")]
    merged = gpus.merge_pci([], found)
    assert [(g.vendor, g.name, g.source) for g in merged] == [("nvidia", "GA100 [A100 PCIe 40GB]", "lspci")]


def make_card(root: Path, name: str, vendor: str, device: str, slot: str, vram_total=None, vram_used=None) -> None:
    folder = root / name / "device"
    folder.mkdir(parents=True)
    (folder / "vendor").write_text(vendor + "\n")
    (folder / "device").write_text(device + "\n")
    (folder / "uevent").write_text(f"DRIVER=amdgpu\nPCI_CLASS=30000\nPCI_ID={vendor[2:].upper()}:{device[2:].upper()}\nPCI_SLOT_NAME={slot}\n")
    if vram_total is not None:
        (folder / "mem_info_vram_total").write_text(f"{vram_total}\n")
    if vram_used is not None:
        (folder / "mem_info_vram_used").write_text(f"{vram_used}\n")


def test_sysfs_tree_gives_amd_vram_and_lspci_the_name(tmp_path):
    drm = tmp_path / "class" / "drm"
    make_card(drm, "card0", "0x8086", "0x4680", "0000:00:02.0")
    make_card(drm, "card1", "0x1002", "0x73df", "0000:03:00.0", vram_total=12868124672, vram_used=368124672)
    (drm / "card1-DP-1").mkdir()  # a connector, not a card
    (drm / "renderD128").mkdir()
    (drm / "version").write_text("drm 1.1.0 20060810\n")
    devices = gpus.read_drm(drm)
    assert [(d["slot"], d["vendor_id"], d["vram_total_bytes"]) for d in devices] == [
        ("0000:00:02.0", "0x8086", None),
        ("0000:03:00.0", "0x1002", 12868124672),
    ]
    merged = gpus.merge_pci(devices, gpus.parse_lspci(fixture("lspci-amd-navi22.txt")))
    amd = [g for g in merged if g.vendor == "amd"]
    assert amd == [
        GpuInfo("amd", "Navi 22 [Radeon RX 6700/6700 XT/6750 XT / 6800M/6850M XT]", 12868124672, 12500000000, source="sysfs+lspci")
    ]
    intel = [g for g in merged if g.vendor == "intel"]
    assert intel[0].name == "Intel GPU [8086:4680]" and intel[0].source == "sysfs"


def test_missing_sysfs_is_an_empty_list(tmp_path):
    assert gpus.read_drm(tmp_path / "nope") == []


def test_driver_cards_replace_pci_nvidia_entries():
    pci = gpus.merge_pci([], gpus.parse_lspci(fixture("lspci-desktop-intel-nvidia.txt")))
    nvml = [GpuInfo("nvidia", "NVIDIA GeForce RTX 3060", 12 * GIB, 11 * GIB, "550.54.14", "12.4", "8.6", "nvml")]
    assert [(g.vendor, g.source) for g in gpus.combine(nvml, pci)] == [("nvidia", "nvml"), ("intel", "lspci")]
    # no driver: the NVIDIA card stays visible (from PCI), so check can say "install the driver"
    assert [(g.vendor, g.driver_version) for g in gpus.combine(None, pci)] == [("intel", None), ("nvidia", None)]


def test_apple_silicon_is_one_gpu_with_unified_memory():
    gpu = gpus.apple_gpu("Apple M2 Pro\n", 32 * GIB, 20 * GIB)
    assert gpu == GpuInfo("apple", "Apple M2 Pro", 32 * GIB, 20 * GIB, source="apple")
    assert gpus.apple_gpu(None, None, None).name == "Apple silicon"


def test_probe_gpus_on_an_intel_mac_is_empty():
    assert gpus.probe_gpus("Darwin", "x86_64") == []


def test_gpu_json_round_trip_and_shape():
    gpu = GpuInfo("nvidia", "NVIDIA GeForce RTX 3060", 12884901888, 12000000000, "550.54.14", "12.4", "8.6", "nvml")
    data = gpu.to_json()
    assert list(data) == [
        "vendor", "name", "vram_total_bytes", "vram_free_bytes", "driver_version", "cuda_driver_version", "compute_capability", "source",
    ]
    assert GpuInfo.from_json(data) == gpu
    with pytest.raises(ValueError):
        GpuInfo.from_json({"name": "no vendor"})
