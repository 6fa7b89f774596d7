"""`sdsetup check`: is this machine ready for the web UI, and what would be installed on it.

The facts and verdicts are sdsetup.detect.readiness's (install's preflight uses the same); this module
renders them. docs/check.md lists the items and the JSON keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from sdsetup.detect.readiness import collect, hard_failures  # noqa: F401  (doctor and tests call check.collect)
from sdsetup.errors import ExitCode
from sdsetup.i18n import N_, t, with_ids
from sdsetup.output import Outcome, status_lines


# Where a Python candidate was found (detect/python.py), said where it is shown.
CANDIDATE_SOURCES = {"current": N_("current"), "py launcher": N_("py launcher")}


def render(data: Mapping[str, Any]) -> str:
    """The human report: the items, the Python candidates, the recommendation, and a verdict."""
    lines = [status_lines(data["items"])]
    candidates = data["python"]["candidates"]
    if len(candidates) > 1 or data["python"]["chosen"] is None:
        lines.append("")
        lines.append(t("Python candidates:"))
        chosen = data["python"]["chosen"]
        for candidate in candidates:
            mark = "*" if chosen and candidate["path"] == chosen["path"] else " "
            version = candidate["version"] or "?"
            bits = " " + t("{bits}-bit", bits=candidate["bits"]) if candidate["bits"] else ""
            note = f" - {candidate['note']}" if candidate["note"] else ""
            source = t(CANDIDATE_SOURCES[candidate["source"]]) if candidate["source"] in CANDIDATE_SOURCES else candidate["source"]
            lines.append(f"  {mark} {version}{bits} {candidate['path']} ({source}){note}")
    advice = data["recommendation"]
    lines.append("")
    lines.append(t("Recommendation: {backend} backend, torch {torch_tag} wheels, manifest {manifest}",
                   backend=advice["backend"], torch_tag=advice["torch_tag"], manifest=advice["manifest"]))
    lines.append(f"  COMMANDLINE_ARGS: {' '.join(advice['launch_flags']) or t('(none)')}")
    for key, value in advice["env"].items():
        lines.append(f"  {key}={value}")
    for note in advice["notes"]:
        lines.append("  " + t("note: {note}", note=note))
    failed = hard_failures(data)
    warned = [item for item in data["items"] if item["status"] == "warn"]
    lines.append("")
    if failed:
        lines.append(t("Not ready: fix {names} first.", names=", ".join(i["name"] for i in failed)))
    elif len(warned) == 1:
        lines.append(t("Ready to install (1 warning)."))
    elif warned:
        lines.append(t("Ready to install ({count} warnings).", count=len(warned)))
    else:
        lines.append(t("Ready to install."))
    return "\n".join(lines)


def run(
    settings: Any,
    install_dir: Path | str,
    python: str | None = None,
    *,
    backend: str = "auto",
    required_bytes: int | Mapping[str, int] | None = None,
    network: bool = False,
) -> Outcome:
    data = collect(settings, install_dir, python, required_bytes, backend=backend)
    if network:  # opt-in: the proxy handshake and every channel's probes (sdsetup/net/netcheck.py)
        from sdsetup.net import netcheck

        data["network"] = netcheck.network_report(settings)
        data["items"] = [*data["items"], *netcheck.network_items(data["network"])]
    data["items"] = [with_ids(item) for item in data["items"]]  # name_id/value_id/fix_id: same keys in every language
    exit_code = ExitCode.FAILED if hard_failures(data) else ExitCode.OK
    return Outcome("check", data, exit_code, human=render)
