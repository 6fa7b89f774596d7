"""`sdsetup install [DIR]`: from a bare machine to a web UI whose first launch needs no GitHub and no
Hugging Face. `--dry-run` prints the plan (steps, sizes, every URL after mirror rewriting) and writes
nothing. docs/install.md describes the steps, the journal and the JSON document."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from sdsetup.errors import ExitCode
from sdsetup.fsutil import human_bytes
from sdsetup.i18n import N_, t
from sdsetup.install.plan import InstallOptions
from sdsetup.output import Outcome, display_width

DEFAULT_DIR = "stable-diffusion-webui"
DEFAULT_DIRS = {"forge": "stable-diffusion-webui-forge", "comfyui": "ComfyUI"}  # the upstream checkout names


def choose_manifest_name(requested: str | None, install_dir: Path, facts: Any, backend: str) -> str:
    """--manifest wins; then the manifest an earlier install here used; then the machine's default."""
    if requested:
        return requested
    from sdsetup.install_record import load_record

    try:
        record = load_record(install_dir)
    except Exception:  # a damaged record is rewritten by this install
        record = None
    if record is not None and record.manifest:
        from sdsetup.manifest import builtin_names

        if record.manifest in builtin_names():
            return record.manifest
    from sdsetup.detect import recommend

    return recommend.choose_manifest(facts, recommend.choose_backend(facts, backend))


def prepare(settings: Any, install_dir: Path, options: InstallOptions):
    """Facts, manifest, mirrors and the plan: everything --dry-run shows (reads only)."""
    from sdsetup.detect.machine import probe_machine
    from sdsetup.install.plan import build_plan
    from sdsetup.manifest import load_manifest
    from sdsetup.net.mirrors import select_mirrors

    facts = probe_machine(settings)
    manifest = load_manifest(choose_manifest_name(options.manifest, install_dir, facts, options.backend))
    session = None
    if settings.mirror == "auto":
        from sdsetup.net.session import build_session

        session = build_session(settings)
    mirrors = select_mirrors(settings, session)
    return build_plan(manifest, facts, mirrors, options, install_dir)


def with_ui(options: InstallOptions, ui: str | None) -> InstallOptions:
    """`--ui NAME` is `--manifest NAME` for the built-in UIs (a1111, forge, comfyui)."""
    if not ui:
        return options
    from dataclasses import replace

    from sdsetup.errors import usage_error
    from sdsetup.i18n import t

    uis = ("a1111", "forge", "comfyui")
    if ui not in uis:
        raise usage_error(t("unknown web UI '{ui}'", ui=ui), t("use --ui with one of: {uis} (or --manifest FILE)", uis=", ".join(uis)))
    if options.manifest and options.manifest != ui:
        raise usage_error(t("--ui {ui} and --manifest {manifest} name different manifests", ui=ui, manifest=options.manifest),
                          t("give only one of them"))
    return replace(options, manifest=ui)


def run(settings: Any, install_dir: Path | str | None, options: InstallOptions) -> Outcome:
    from sdsetup.install.executor import execute
    from sdsetup.install.inputs import validate_inputs

    # The same input checks for --dry-run as for a real run (the dry run skips only the write probe).
    default = DEFAULT_DIRS.get(options.manifest or "", DEFAULT_DIR)
    target = validate_inputs(Path(install_dir or default), options.python, dry_run=options.dry_run)
    plan = prepare(settings, target, options)
    warnings = list(plan.mirrors.warnings)
    if options.dry_run:
        from sdsetup.install.steps.webui import refuse_foreign_repo

        refuse_foreign_repo(plan)
        return Outcome("install", plan.to_json(), ExitCode.OK, human=render_plan, warnings=warnings)
    data = execute(plan, settings)
    warnings += data.pop("warnings", [])
    import os

    from sdsetup.launchers import for_manifest
    from sdsetup.launchers.a1111 import root_start_hint

    launcher = for_manifest(plan.manifest)
    start = root_start_hint(launcher.start_hint, is_root=hasattr(os, "geteuid") and os.geteuid() == 0)
    if launcher.kind != "a1111" or start != launcher.start_hint:
        data["start"] = start
    return Outcome("install", data, ExitCode.OK, human=render_outcome, warnings=warnings)


# The plan's left column and its disk labels, translated where shown.
PLAN_LABELS = {"manifest": N_("manifest"), "backend": N_("backend"), "mirrors": N_("mirrors"), "flags": N_("flags")}
DISK_LABELS = {"install_dir": N_("install dir"), "temp": N_("temp")}


def _label(key: str, width: int = 10) -> str:
    text = t(PLAN_LABELS[key])
    return text + " " * max(1, width - display_width(text))


def _urls(step: Mapping[str, Any], key: str = "urls") -> list[str]:
    return list(step.get(key) or [])


def render_plan(data: Mapping[str, Any]) -> str:
    d = data["decisions"]
    m = data["manifest"]
    lines = [
        t("Plan for {install_dir} (dry run: nothing is written)", install_dir=data["install_dir"]),
        f"  {_label('manifest')}{m['name']}: {m['title']} ({m['source']})",
        f"  {_label('backend')}{d['backend']}, torch {' '.join(d['torch_packages'])}"
        + (f" [{d['torch_tag']}]" if d["torch_tag"] else "") + f" - {d['reason']}",
        f"  {_label('mirrors')}{data['mirror']['profile']}",
        f"  {_label('flags')}{' '.join(d['launch_args']) or t('(none)')}",
        "",
    ]
    for number, step in enumerate(data["steps"], 1):
        lines.append(f"{number:>2}. {step['title']}")
        if step.get("commit") and step["id"] != "webui":
            lines.append("      " + (t("commit {commit} (replaces {url})", commit=step["commit"], url=step["replaces"]) if step.get("replaces")
                                     else t("commit {commit}", commit=step["commit"])))
        if step["id"] == "webui":
            lines.append("      " + t("commit {commit}", commit=step["commit"]))
        for url in _urls(step)[:3]:
            lines.append(f"      <- {url}")
        if len(_urls(step)) > 3:
            lines.append("      " + t("… and {count} more source(s)", count=len(_urls(step)) - 3))
        if step.get("index_args"):
            lines.append(f"      pip {' '.join(step['index_args'])}")
        for archive in step.get("archives", []):
            lines.append("      " + t("archive <- {url}", url=archive["urls"][0]))
        for item in step.get("files", []) if isinstance(step.get("files"), list) else []:
            if isinstance(item, dict):
                lines.append(f"      {item['path']} ({human_bytes(item.get('size'))}, sha256 {str(item.get('sha256'))[:12]}…)")
                lines.append(f"        <- {item['urls'][0]}")
        for repo in step.get("repos", []):
            for item in repo["files"]:
                lines.append(f"      {repo['repo_id']}/{item['filename']} <- {item['urls'][0]}")
    lines.append("")
    disk = data["disk"]
    lines.append(t("Disk: {needs}", needs=", ".join(
        f"{t(DISK_LABELS[label]) if label in DISK_LABELS else label.replace('_', ' ')} {value['human']}" for label, value in disk.items())))
    return "\n".join(lines)


def render_outcome(data: Mapping[str, Any]) -> str:
    ran = [s for s in data["steps"] if s["status"] == "ran" and s["id"] != "preflight"]
    lines = []
    if not ran:
        lines.append(t("Nothing to do: {install_dir} is already installed (manifest {manifest}).", install_dir=data["install_dir"],
                       manifest=data["manifest"]))
    else:
        lines.append(t("Installed {manifest} into {install_dir} in {seconds:.0f}s ({count} step(s) ran, backend {backend}).",
                       manifest=data["manifest"], install_dir=data["install_dir"], seconds=data["seconds"], count=len(ran),
                       backend=data["backend"]))
    skipped = [s for s in data["steps"] if s["status"] == "skipped" and s["id"] != "preflight"]
    for step in skipped:
        lines.append("  " + t("skipped {step}: {reason}", step=step["id"], reason=step.get("reason")))
    if data.get("mirror"):
        from sdsetup.install.executor import source_lines

        lines.append(t("Sources:"))
        lines += [f"  {line}" for line in source_lines(data["mirror"])]
    lines.append("")
    lines.append(t("Start the web UI:"))
    lines.append(f"  cd \"{data['install_dir']}\" && " + data.get("start", "./webui.sh        (Windows: webui-user.bat)"))
    if data.get("log"):
        lines.append(t("Log: {log}", log=data["log"]))
    return "\n".join(lines)
