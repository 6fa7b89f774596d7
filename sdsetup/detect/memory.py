"""RAM: total and available (psutil; /proc/meminfo when psutil is missing)."""

from __future__ import annotations

import re

from sdsetup.detect._probe import read_text

_MEMINFO = re.compile(r"^(?P<key>\w+):\s+(?P<kib>\d+)\s*kB", re.MULTILINE)


def parse_meminfo(text: str | None) -> tuple[int | None, int | None]:
    """(MemTotal, MemAvailable) in bytes from /proc/meminfo."""
    values = {m.group("key"): int(m.group("kib")) * 1024 for m in _MEMINFO.finditer(text or "")}
    return values.get("MemTotal"), values.get("MemAvailable")


def probe_memory() -> tuple[int | None, int | None]:
    try:
        import psutil  # imported here: it must not slow down `sdsetup --help`

        memory = psutil.virtual_memory()
        return int(memory.total), int(memory.available)
    except Exception:
        return parse_meminfo(read_text("/proc/meminfo"))
