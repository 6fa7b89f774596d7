"""Is this machine ready for the web UI: the facts `sdsetup check` shows and install's preflight
acts on, as one typed result (`Readiness`).

`assess` gathers the facts (probes run side by side; nothing touches the network) and turns them into
items `{id, name, status: ok|warn|fail, value, fix}`; `Readiness.failures` is what install's preflight
refuses to go on with, `Readiness.python` the interpreter the web UI's venv is made from. `data` is
`check --json`'s document (docs/check.md lists the items and the keys).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from sdsetup.errors import usage_error
from sdsetup.fsutil import human_bytes
from sdsetup.i18n import t

if TYPE_CHECKING:  # types only: importing these here would slow start-up or make a circle
    from sdsetup.detect.machine import MachineFacts
    from sdsetup.settings import Settings


@dataclass(frozen=True)
class PythonChoice:
    path: str
    version: str | None
    bits: int | None
    source: str | None
    status: str | None


@dataclass(frozen=True)
class Readiness:
    data: dict[str, Any]  # check --json's `data` (stable keys)

    @property
    def items(self) -> list[dict[str, Any]]:
        return list(self.data.get("items", []))

    @property
    def failures(self) -> list[dict[str, Any]]:
        return hard_failures(self.data)

    @property
    def warnings(self) -> list[dict[str, Any]]:
        return [item for item in self.items if item.get("status") == "warn"]

    @property
    def ready(self) -> bool:
        return not self.failures

    @property
    def python(self) -> PythonChoice | None:
        """The interpreter the web UI's venv is made from (None: no usable one)."""
        chosen = (self.data.get("python") or {}).get("chosen") or {}
        if not chosen.get("path"):
            return None
        return PythonChoice(str(chosen["path"]), chosen.get("version"), chosen.get("bits"), chosen.get("source"), chosen.get("status"))


def assess(
    settings: Settings,
    install_dir: Path | str,
    python: str | None = None,
    required_bytes: int | Mapping[str, int] | None = None,
    *,
    backend: str = "auto",
) -> Readiness:
    """Readiness of this machine for an install into `install_dir` (usage error for a bad --dir/--python)."""
    return Readiness(collect(settings, install_dir, python, required_bytes, backend=backend))


GIB = 1024**3
MIN_RAM = 4 * GIB  # loading the 4 GB SD1.5 checkpoint needs this much, before anything else runs
LOW_RAM = 8 * GIB  # below this the model loads but the machine swaps
LOW_RAM_CPU = 12 * GIB  # on the CPU the fp32 model and activations all live in RAM
LOW_AVAILABLE = 2 * GIB


def _item(item_id: str, name: str, status: str, value: str, fix: str | None = None) -> dict[str, Any]:
    return {"id": item_id, "name": name, "status": status, "value": value, "fix": fix if status != "ok" else None}


def hard_failures(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The items that stop an install (install's preflight shows them and stops)."""
    return [item for item in data.get("items", []) if item.get("status") == "fail"]


def collect(
    settings: Settings,
    install_dir: Path | str,
    python: str | None = None,
    required_bytes: int | Mapping[str, int] | None = None,
    *,
    backend: str = "auto",
) -> dict[str, Any]:
    """The `data` of `check --json`. Raises a usage error for a --dir or --python that cannot be used."""
    from sdsetup.detect import disk, git, paths, proxy, recommend
    from sdsetup.detect import python as pythons
    from sdsetup.detect.machine import probe_machine
    from sdsetup.detect.os_info import probe_os

    target = paths.validate_install_dir(Path(install_dir))
    requested_path = None
    if python:
        requested_path = pythons.require_requested(python)
    if backend not in ("auto", *recommend.BACKENDS):
        raise usage_error(t("--backend {backend}: unknown backend", backend=backend), t("use auto or one of {backends}", backends=', '.join(recommend.BACKENDS)))

    local_os = probe_os()  # the real OS, for paths and interpreters even when machine facts are replayed
    system = local_os["system"] or ""
    env = os.environ
    with ThreadPoolExecutor(max_workers=6) as pool:
        machine_job = pool.submit(probe_machine, settings)
        git_job = pool.submit(git.probe_git)
        python_job = pool.submit(pythons.probe_pythons, system, requested_path)
        disk_job = pool.submit(disk.probe_disk, target, env=env, system=system, required_bytes=required_bytes)
        git_proxy_job = pool.submit(proxy.probe_git_proxies)
        fs_job = pool.submit(paths.probe_fs_type, disk.nearest_existing(target), system)
        long_paths = paths.windows_long_paths_enabled() if system == "Windows" else None
        facts = machine_job.result()
        git_info = git_job.result()
        candidates = python_job.result()
        disk_groups = disk_job.result()
        git_proxies = git_proxy_job.result()
        fs_type = fs_job.result()

    items: list[dict[str, Any]] = []
    items.append(_os_item(facts))
    items.append(_item("git", t("git"), *git.assess_git(git_info)))
    python_section = pythons.python_section(candidates, python)
    items.append(_item("python", t("python for the web UI"), *pythons.assess_python(python_section)))

    advice = recommend.recommendation(facts, backend)
    items.append(_gpu_item(facts, advice))
    gpu = recommend.primary_gpu(facts, advice["backend"])
    if advice["backend"] == "cuda":
        problem = recommend.driver_problem(gpu, advice["torch_tag"], facts.system)
        if gpu is None:
            items.append(_item("nvidia_driver", t("NVIDIA driver"), "fail", t("no NVIDIA GPU found"),
                               t("leave --backend out, or use --backend cpu")))
        elif problem:
            items.append(_item("nvidia_driver", t("NVIDIA driver"), "fail", f"{gpu.driver_version or 'none'}", problem))
        else:
            items.append(_item("nvidia_driver", t("NVIDIA driver"), "ok",
                               t("{driver} (CUDA {cuda}): runs {torch_tag} wheels", driver=gpu.driver_version,
                                 cuda=gpu.cuda_driver_version or "?", torch_tag=advice["torch_tag"])))
    items.append(
        _item(
            "torch",
            t("torch build"),
            "ok",
            t("{backend} / {torch_tag} (manifest {manifest}): {reason}", backend=advice["backend"], torch_tag=advice["torch_tag"],
              manifest=advice["manifest"], reason=advice["reason"]),
        )
    )
    env_text = " ".join(f"{k}={v}" for k, v in advice["env"].items())
    items.append(_item("launch_flags", t("web UI flags"), "ok", " ".join(advice["launch_flags"]) + (f"  env: {env_text}" if env_text else "")))
    items.append(_ram_item(facts, advice["backend"]))

    for group in disk_groups:
        status, value, fix = disk.assess_filesystem(group)
        group.update(status=status)
        items.append(_item(disk.group_id(group), disk.group_name(group), status, value, fix))

    pitfalls = paths.path_pitfalls(
        str(target), system=system, fs_type=fs_type, wsl=bool(local_os.get("wsl")), env=env, long_paths_enabled=long_paths
    )
    items.append(_item("path", t("install path"), *paths.assess_paths(str(target), pitfalls, fs_type)))

    items.append(_item("proxy", t("proxy"), *proxy.assess_proxy(proxy.env_proxies(env) + git_proxies, settings.proxy)))

    return {
        "install_dir": str(target),
        "items": items,
        "machine": facts.to_json(),
        "machine_replayed_from": facts.replayed_from,
        "recommendation": advice,
        "python": python_section,
        "git": git_info,
        "disk": [
            {
                "labels": g["labels"],
                "paths": g["paths"],
                "free_bytes": g["free_bytes"],
                "required_bytes": g["required_bytes"],
                "status": g["status"],
            }
            for g in disk_groups
        ],
        "paths": {"fs_type": fs_type, "pitfalls": [{"status": s, "problem": p, "fix": f} for s, p, f in pitfalls]},
        "proxy": proxy.proxy_section(env, git_proxies, settings.proxy),
    }


def _os_item(facts: MachineFacts) -> dict[str, Any]:
    os_facts = facts.os
    value = " ".join(str(v) for v in (os_facts.get("system"), os_facts.get("release"), os_facts.get("machine")) if v)
    value += f" ({os_facts.get('bits')}-bit{', WSL' if os_facts.get('wsl') else ''})"
    if facts.replayed_from:
        value = t("{os} [replayed from {source}]", os=value, source=facts.replayed_from)
    if os_facts.get("bits") == 32:
        return _item("os", t("operating system"), "fail", value, t("a 32-bit OS has no torch builds: install a 64-bit OS"))
    if facts.system not in ("Linux", "Windows", "Darwin"):
        return _item("os", t("operating system"), "warn", value, t("the web UI is tested on Windows, Linux and macOS only"))
    if facts.system == "Darwin" and facts.machine.lower() in ("x86_64", "amd64"):
        return _item("os", t("operating system"), "warn", value,
                     t("an Intel Mac has no GPU acceleration for the web UI: it runs on the CPU"))
    return _item("os", t("operating system"), "ok", value)


def _describe_gpu(gpu: Any) -> str:
    parts = [gpu.name or gpu.vendor]
    if gpu.vram_total_bytes:
        memory = human_bytes(gpu.vram_total_bytes)
        if gpu.vram_free_bytes is not None:
            memory += f" ({human_bytes(gpu.vram_free_bytes)} free)"
        parts.append(("unified memory " if gpu.vendor == "apple" else "") + memory)
    if gpu.driver_version:
        parts.append(f"driver {gpu.driver_version}")
    if gpu.cuda_driver_version:
        parts.append(f"CUDA {gpu.cuda_driver_version}")
    if gpu.compute_capability:
        parts.append(f"compute {gpu.compute_capability}")
    return ", ".join(parts) + f" [{gpu.source}]"


def _gpu_item(facts: MachineFacts, advice: Mapping[str, Any]) -> dict[str, Any]:
    if not facts.gpus:
        return _item(
            "gpu",
            t("GPU"),
            "warn",
            t("none found: the web UI will run on the CPU"),
            t("CPU works but takes minutes per image; an NVIDIA card (or AMD on Linux, or a Mac with Apple silicon) is far "
              "faster"),
        )
    value = "; ".join(_describe_gpu(gpu) for gpu in facts.gpus)
    if advice["backend"] == "cpu":
        return _item("gpu", t("GPU"), "warn", value, advice["reason"])
    tier = advice["vram_tier"]
    if tier == "low":
        return _item("gpu", t("GPU"), "warn", value,
                     t("under 4 GiB of VRAM: the web UI runs with --lowvram, slowly; SDXL will not fit"))
    return _item("gpu", t("GPU"), "ok", value)


def _ram_item(facts: MachineFacts, backend: str) -> dict[str, Any]:
    total, available = facts.ram_total_bytes, facts.ram_available_bytes
    if total is None:
        return _item("ram", t("RAM"), "warn", t("unknown"),
                     t("could not read the amount of memory; the web UI needs 8 GiB or more"))
    value = t("{total} total, {available} available", total=human_bytes(total), available=human_bytes(available))
    if total < MIN_RAM:
        return _item("ram", t("RAM"), "fail", value,
                     t("the web UI needs at least 4 GiB of RAM (8 GiB or more to run smoothly)"))
    if total < LOW_RAM:
        return _item("ram", t("RAM"), "warn", value, t("under 8 GiB: loading the model will swap; close other programs"))
    if backend == "cpu" and total < LOW_RAM_CPU:
        return _item("ram", t("RAM"), "warn", value,
                     t("on the CPU the whole model runs in RAM: 12 GiB or more recommended"))
    if available is not None and available < LOW_AVAILABLE:
        return _item("ram", t("RAM"), "warn", value,
                     t("little memory is free: close other programs before generating"))
    return _item("ram", t("RAM"), "ok", value)


