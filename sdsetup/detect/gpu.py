"""GPUs: NVML first, then `nvidia-smi`, then (Linux) /sys/class/drm and `lspci`; Apple silicon → MPS.

Each source has a probe (touches the machine, never raises) and a parser (pure, fed recorded output
by the tests). No GPU at all is an empty list, which the recommendation turns into the CPU backend.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from sdsetup.detect._probe import call_with_timeout, read_text, run_text

MIB = 1024 * 1024

PCI_VENDORS = {"0x10de": "nvidia", "0x1002": "amd", "0x8086": "intel"}

NVML_TIMEOUT = 5.0


@dataclass
class GpuInfo:
    """One GPU in the stable MachineFacts JSON shape (docs/ARCHITECTURE.md); unknown values are None."""

    vendor: str  # nvidia | amd | intel | apple
    name: str | None = None
    vram_total_bytes: int | None = None
    vram_free_bytes: int | None = None
    driver_version: str | None = None
    cuda_driver_version: str | None = None  # highest CUDA the driver supports, "12.4"
    compute_capability: str | None = None  # "8.6"
    source: str | None = None  # nvml | nvidia-smi | sysfs | lspci | sysfs+lspci | apple

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "GpuInfo":
        known = {name: data.get(name) for name in cls.__dataclass_fields__}
        if not isinstance(known["vendor"], str):
            raise ValueError("gpu entry without a vendor")
        for key in ("vram_total_bytes", "vram_free_bytes"):
            if known[key] is not None:
                known[key] = int(known[key])
        for key in ("driver_version", "cuda_driver_version", "compute_capability", "name", "source"):
            if known[key] is not None:
                known[key] = str(known[key])
        return cls(**known)


# ---------------------------------------------------------------------------------------------- NVML


def format_cuda_version(value: int | None) -> str | None:
    """NVML's integer CUDA driver version (12040) as "12.4"."""
    if not value or value < 1000:
        return None
    return f"{value // 1000}.{(value % 1000) // 10}"


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def probe_nvml(nvml: Any = None) -> list[GpuInfo] | None:
    """NVIDIA GPUs through NVML; None when NVML is missing or has no driver (then try nvidia-smi).

    `nvml` is the `pynvml` module (from nvidia-ml-py); tests pass a stand-in with recorded values.
    """
    if nvml is None:
        try:
            import pynvml as nvml  # imported here: it must not slow down `sdsetup --help`
        except ImportError:
            return None
    try:
        nvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound / DriverNotLoaded: no NVIDIA driver
        return None
    try:
        driver = _optional(lambda: _text(nvml.nvmlSystemGetDriverVersion()))
        cuda = _optional(lambda: format_cuda_version(int(nvml.nvmlSystemGetCudaDriverVersion())))
        gpus = []
        for index in range(int(nvml.nvmlDeviceGetCount())):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            memory = _optional(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
            capability = _optional(lambda: nvml.nvmlDeviceGetCudaComputeCapability(handle))
            gpus.append(
                GpuInfo(
                    vendor="nvidia",
                    name=_optional(lambda: _text(nvml.nvmlDeviceGetName(handle))),
                    vram_total_bytes=int(memory.total) if memory is not None else None,
                    vram_free_bytes=int(memory.free) if memory is not None else None,
                    driver_version=driver,
                    cuda_driver_version=cuda,
                    compute_capability=f"{capability[0]}.{capability[1]}" if capability else None,
                    source="nvml",
                )
            )
        return gpus
    except Exception:
        return None
    finally:
        _optional(nvml.nvmlShutdown)


def _optional(func):
    try:
        return func()
    except Exception:
        return None


# ---------------------------------------------------------------------------------------- nvidia-smi

SMI_FIELDS = ("name", "memory.total", "memory.free", "driver_version", "compute_cap")
_CUDA_IN_HEADER = re.compile(r"CUDA Version:\s*(\d+\.\d+)")


def _smi_value(raw: str) -> str | None:
    value = raw.strip()
    if not value or value.strip("[]").lower() in ("n/a", "not supported", "unknown error", "insufficient permissions"):
        return None
    return value


def parse_nvidia_smi_csv(text: str | None, fields: tuple[str, ...] = SMI_FIELDS, cuda_version: str | None = None) -> list[GpuInfo]:
    """`nvidia-smi --query-gpu=<fields> --format=csv,noheader,nounits` output (memory in MiB)."""
    gpus = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        # The name comes first and is the only field that could hold a comma.
        parts = line.rsplit(",", len(fields) - 1)
        if len(parts) != len(fields):
            continue
        row = {field: _smi_value(part) for field, part in zip(fields, parts)}

        def mib(key: str) -> int | None:
            try:
                return int(float(row[key])) * MIB if row.get(key) else None
            except ValueError:
                return None

        gpus.append(
            GpuInfo(
                vendor="nvidia",
                name=row.get("name"),
                vram_total_bytes=mib("memory.total"),
                vram_free_bytes=mib("memory.free"),
                driver_version=row.get("driver_version"),
                cuda_driver_version=cuda_version,
                compute_capability=row.get("compute_cap"),
                source="nvidia-smi",
            )
        )
    return gpus


def parse_nvidia_smi_cuda_version(text: str | None) -> str | None:
    """The "CUDA Version: 12.4" in plain `nvidia-smi` output's header."""
    match = _CUDA_IN_HEADER.search(text or "")
    return match.group(1) if match else None


def _nvidia_smi_path() -> str | None:
    found = shutil.which("nvidia-smi")
    if found or os.name != "nt":
        return found
    # Older Windows drivers put it outside PATH.
    for candidate in (
        Path(os.environ.get("SystemRoot", r"C:\Windows")) / "System32" / "nvidia-smi.exe",
        Path(os.environ.get("ProgramFiles", r"C:\Program Files")) / "NVIDIA Corporation" / "NVSMI" / "nvidia-smi.exe",
    ):
        if candidate.is_file():
            return str(candidate)
    return None


def probe_nvidia_smi() -> list[GpuInfo] | None:
    exe = _nvidia_smi_path()
    if not exe:
        return None
    fields = SMI_FIELDS
    text = run_text([exe, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"])
    if text is None:  # drivers before ~510 do not know compute_cap
        fields = SMI_FIELDS[:-1]
        text = run_text([exe, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"])
    if text is None:
        return None
    cuda = parse_nvidia_smi_cuda_version(run_text([exe]))
    return parse_nvidia_smi_csv(text, fields, cuda) or None


# ------------------------------------------------------------------------------ Linux: sysfs + lspci

_CARD = re.compile(r"^card\d+$")


def read_drm(root: Path = Path("/sys/class/drm")) -> list[dict[str, Any]]:
    """PCI display devices under /sys/class/drm: slot, vendor/device ids and (amdgpu) VRAM."""
    devices = []
    try:
        entries = sorted(os.listdir(root))
    except OSError:
        return []
    for entry in entries:
        if not _CARD.match(entry):  # card0-DP-1 and friends are connectors
            continue
        device = Path(root) / entry / "device"
        vendor = (read_text(device / "vendor") or "").strip().lower()
        if not vendor:
            continue
        slot = None
        for line in (read_text(device / "uevent") or "").splitlines():
            if line.startswith("PCI_SLOT_NAME="):
                slot = line.split("=", 1)[1].strip().lower()
        total = _int_or_none(read_text(device / "mem_info_vram_total"))
        used = _int_or_none(read_text(device / "mem_info_vram_used"))
        devices.append(
            {
                "slot": slot,
                "vendor_id": vendor,
                "device_id": (read_text(device / "device") or "").strip().lower() or None,
                "vram_total_bytes": total,
                "vram_free_bytes": total - used if total is not None and used is not None else None,
            }
        )
    return devices


def _int_or_none(text: str | None) -> int | None:
    try:
        return int((text or "").strip())
    except ValueError:
        return None


_LSPCI_LINE = re.compile(
    r"^(?P<slot>[0-9a-fA-F:.]+)\s+(?P<cls>VGA compatible controller|3D controller|Display controller)"
    r"(?:\s*\[[0-9a-fA-F]{4}\])?:\s*(?P<desc>.*?)"
    r"(?:\s*\[(?P<vendor>[0-9a-fA-F]{4}):(?P<device>[0-9a-fA-F]{4})\])?(?:\s*\(rev [0-9a-fA-F]+\))?\s*$"
)
_VENDOR_PREFIXES = (
    ("nvidia", re.compile(r"^NVIDIA Corporation\s+")),
    ("amd", re.compile(r"^Advanced Micro Devices, Inc\.\s*(\[AMD/ATI\]\s*)?")),
    ("amd", re.compile(r"^(ATI Technologies Inc|AMD)\s+")),
    ("intel", re.compile(r"^Intel Corporation\s+")),
)


def parse_lspci(text: str | None) -> list[dict[str, Any]]:
    """Display controllers in `lspci -D -nn` (or plain `lspci`) output: slot, vendor, ids, name."""
    devices = []
    for line in (text or "").splitlines():
        match = _LSPCI_LINE.match(line.strip())
        if not match:
            continue
        slot = match.group("slot").lower()
        if slot.count(":") == 1:  # plain lspci leaves out the PCI domain
            slot = "0000:" + slot
        desc = match.group("desc").strip()
        vendor = PCI_VENDORS.get(f"0x{match.group('vendor').lower()}") if match.group("vendor") else None
        name = desc
        for prefix_vendor, prefix in _VENDOR_PREFIXES:
            if prefix.match(desc):
                vendor = vendor or prefix_vendor
                name = prefix.sub("", desc).strip()
                break
        devices.append(
            {
                "slot": slot,
                "vendor": vendor,
                "vendor_id": f"0x{match.group('vendor').lower()}" if match.group("vendor") else None,
                "device_id": f"0x{match.group('device').lower()}" if match.group("device") else None,
                "name": name or None,
            }
        )
    return devices


def merge_pci(drm: Iterable[Mapping[str, Any]], lspci: Iterable[Mapping[str, Any]]) -> list[GpuInfo]:
    """One GpuInfo per PCI display device known to sysfs and/or lspci (matched by PCI slot)."""
    by_slot: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for index, device in enumerate(drm):
        key = device.get("slot") or f"drm{index}"
        by_slot[key] = {**device, "source": "sysfs"}
        order.append(key)
    for index, device in enumerate(lspci):
        key = device.get("slot") or f"lspci{index}"
        if key in by_slot:
            merged = by_slot[key]
            merged["name"] = device.get("name")
            merged["source"] = "sysfs+lspci"
            merged.setdefault("vendor", device.get("vendor"))
        else:
            by_slot[key] = {**device, "source": "lspci"}
            order.append(key)
    gpus = []
    for key in order:
        device = by_slot[key]
        vendor = device.get("vendor") or PCI_VENDORS.get(str(device.get("vendor_id") or ""))
        if vendor not in ("nvidia", "amd", "intel"):
            continue  # e.g. a server's ASPEED BMC display: not a compute device
        name = device.get("name")
        if not name:
            ids = f"{(device.get('vendor_id') or '')[2:]}:{(device.get('device_id') or '')[2:]}"
            name = f"{vendor.upper() if vendor != 'intel' else 'Intel'} GPU [{ids}]"
        gpus.append(
            GpuInfo(
                vendor=vendor,
                name=name,
                vram_total_bytes=device.get("vram_total_bytes"),
                vram_free_bytes=device.get("vram_free_bytes"),
                source=device["source"],
            )
        )
    return gpus


def probe_pci_linux(drm_root: Path = Path("/sys/class/drm")) -> list[GpuInfo]:
    lspci = shutil.which("lspci")
    text = run_text([lspci, "-D", "-nn"]) if lspci else None
    return merge_pci(read_drm(drm_root), parse_lspci(text))


# ------------------------------------------------------------------------------------------- Apple


def apple_gpu(chip: str | None, ram_total: int | None, ram_available: int | None) -> GpuInfo:
    """Apple silicon: one GPU sharing the machine's (unified) memory, used through MPS."""
    return GpuInfo(
        vendor="apple",
        name=(chip or "").strip() or "Apple silicon",
        vram_total_bytes=ram_total,
        vram_free_bytes=ram_available,
        source="apple",
    )


def probe_apple(ram_total: int | None, ram_available: int | None) -> GpuInfo:
    chip = run_text(["sysctl", "-n", "machdep.cpu.brand_string"], timeout=3.0)
    return apple_gpu(chip, ram_total, ram_available)


# ------------------------------------------------------------------------------------------ together


def combine(nvidia: list[GpuInfo] | None, pci: list[GpuInfo]) -> list[GpuInfo]:
    """NVIDIA cards from the driver, plus what PCI shows; PCI's NVIDIA entries only when the driver saw none."""
    nvidia = list(nvidia or [])
    others = [gpu for gpu in pci if not (nvidia and gpu.vendor == "nvidia")]
    return nvidia + others


def probe_gpus(system: str, machine: str, ram_total: int | None = None, ram_available: int | None = None) -> list[GpuInfo]:
    if system == "Darwin":
        machine_name = (machine or "").lower()
        return [probe_apple(ram_total, ram_available)] if machine_name in ("arm64", "aarch64") else []
    nvidia = call_with_timeout(probe_nvml, NVML_TIMEOUT, None)
    if not nvidia:
        nvidia = probe_nvidia_smi()
    pci = probe_pci_linux() if system == "Linux" else []
    return combine(nvidia, pci)
