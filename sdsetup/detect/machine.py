"""MachineFacts: the hardware the recommendations are made for, probed or replayed from a file.

Replay: when `settings.machine_facts` (env SDSETUP_MACHINE_FACTS) names a JSON file, it is read
instead of probing — a user's `check --json` output (the whole envelope), its `data` object, or just
`data.machine`. The helpdesk uses it to see what sdsetup would do on that machine; tests use it as
recorded hardware. The JSON shape is a contract (docs/ARCHITECTURE.md, pinned by tests).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from sdsetup.detect.gpu import GpuInfo
from sdsetup.errors import usage_error
from sdsetup.i18n import t

if TYPE_CHECKING:  # types only: importing these here would slow start-up or make a circle
    from sdsetup.settings import Settings

OS_KEYS = ("system", "release", "version", "machine", "bits", "wsl")


@dataclass
class MachineFacts:
    os: dict[str, Any]  # {system, release, version, machine, bits, wsl}
    gpus: list[GpuInfo] = field(default_factory=list)
    ram_total_bytes: int | None = None
    ram_available_bytes: int | None = None
    replayed_from: str | None = None  # not part of the JSON: where replayed facts came from

    @property
    def system(self) -> str:
        return str(self.os.get("system") or "")

    @property
    def machine(self) -> str:
        return str(self.os.get("machine") or "")

    def to_json(self) -> dict[str, Any]:
        return {
            "os": {key: self.os.get(key) for key in OS_KEYS},
            "gpus": [gpu.to_json() for gpu in self.gpus],
            "ram_total_bytes": self.ram_total_bytes,
            "ram_available_bytes": self.ram_available_bytes,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "MachineFacts":
        """From the machine object; raises ValueError/TypeError/KeyError on a wrong shape."""
        os_data = data["os"]
        if not isinstance(os_data, Mapping):
            raise TypeError("'os' must be an object")
        gpus = data.get("gpus") or []
        if not isinstance(gpus, list) or not all(isinstance(gpu, Mapping) for gpu in gpus):
            raise TypeError("'gpus' must be a list of objects")
        os_facts = {key: os_data.get(key) for key in OS_KEYS}
        if not isinstance(os_facts.get("system"), str):
            raise TypeError("'os.system' must be a string (Linux, Windows, Darwin)")
        if os_facts["bits"] is not None:
            os_facts["bits"] = int(os_facts["bits"])
        os_facts["wsl"] = bool(os_facts.get("wsl"))
        return cls(
            os=os_facts,
            gpus=[GpuInfo.from_json(gpu) for gpu in gpus],
            ram_total_bytes=_int(data.get("ram_total_bytes")),
            ram_available_bytes=_int(data.get("ram_available_bytes")),
        )


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def machine_object(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """The machine object inside a `check --json` envelope, its data, or the object itself."""
    if isinstance(document.get("data"), Mapping):
        document = document["data"]
    if isinstance(document.get("machine"), Mapping):
        document = document["machine"]
    return document


def load_machine_facts(path: Path) -> MachineFacts:
    """Replayed facts, or a usage error naming the file and what is wrong with it."""
    hint = "SDSETUP_MACHINE_FACTS must name the output of `sdsetup check --json` (or its data.machine object)"
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except RecursionError:
        raise usage_error(t("SDSETUP_MACHINE_FACTS: {path} is nested too deeply to be machine facts", path=path), hint) from None
    except OSError as exc:
        raise usage_error(t("SDSETUP_MACHINE_FACTS: cannot read {path}: {strerror}", path=path, strerror=exc.strerror or exc), hint) from None
    except ValueError as exc:
        raise usage_error(t("SDSETUP_MACHINE_FACTS: {path} is not valid JSON ({exc})", path=path, exc=exc), hint) from None
    if not isinstance(document, Mapping):
        raise usage_error(t("SDSETUP_MACHINE_FACTS: {path} holds no JSON object", path=path), hint)
    if "error" in document and "data" not in document:
        raise usage_error(t("SDSETUP_MACHINE_FACTS: {path} is the output of a check that failed", path=path), hint)
    try:
        facts = MachineFacts.from_json(machine_object(document))
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:  # a wrong shape anywhere
        raise usage_error(t("SDSETUP_MACHINE_FACTS: {path} has no machine facts in the expected shape ({exc})", path=path, exc=exc), hint) from None
    facts.replayed_from = str(path)
    return facts


def probe_machine(settings: Settings) -> MachineFacts:
    """This machine's facts, or the replayed ones when settings.machine_facts is set."""
    replay = getattr(settings, "machine_facts", None)
    if replay:
        return load_machine_facts(Path(replay))
    from sdsetup.detect.gpu import probe_gpus
    from sdsetup.detect.memory import probe_memory
    from sdsetup.detect.os_info import probe_os

    os_facts = probe_os()
    ram_total, ram_available = probe_memory()
    gpus = probe_gpus(os_facts["system"] or "", os_facts["machine"] or "", ram_total, ram_available)
    return MachineFacts(os=os_facts, gpus=gpus, ram_total_bytes=ram_total, ram_available_bytes=ram_available)
