"""`sdsetup install [DIR]`: from a bare machine to a web UI whose first launch needs no GitHub and no
Hugging Face. `--dry-run` prints the plan (steps, sizes, every URL after mirror rewriting) and writes
nothing. docs/install.md describes the steps, the journal and the JSON document."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from sdsetup.errors import ExitCode
from sdsetup.fsutil import human_bytes
from sdsetup.install.plan import InstallOptions
from sdsetup.output import Outcome

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


def _urls(step: Mapping[str, Any], key: str = "urls") -> list[str]:
    return list(step.get(key) or [])


def render_plan(data: Mapping[str, Any]) -> str:
    d = data["decisions"]
    m = data["manifest"]
    lines = [
        f"Plan for {data['install_dir']} (dry run: nothing is written)",
        f"  manifest  {m['name']}: {m['title']} ({m['source']})",
        f"  backend   {d['backend']}, torch {' '.join(d['torch_packages'])}"
        + (f" [{d['torch_tag']}]" if d["torch_tag"] else "") + f" - {d['reason']}",
        f"  mirrors   {data['mirror']['profile']}",
        f"  flags     {' '.join(d['launch_args']) or '(none)'}",
        "",
    ]
    for number, step in enumerate(data["steps"], 1):
        lines.append(f"{number:>2}. {step['title']}")
        if step.get("commit") and step["id"] != "webui":
            lines.append(f"      commit {step['commit']}" + (f" (replaces {step['replaces']})" if step.get("replaces") else ""))
        if step["id"] == "webui":
            lines.append(f"      commit {step['commit']}")
        for url in _urls(step)[:3]:
            lines.append(f"      <- {url}")
        if len(_urls(step)) > 3:
            lines.append(f"      … and {len(_urls(step)) - 3} more source(s)")
        if step.get("index_args"):
            lines.append(f"      pip {' '.join(step['index_args'])}")
        for archive in step.get("archives", []):
            lines.append(f"      archive <- {archive['urls'][0]}")
        for item in step.get("files", []) if isinstance(step.get("files"), list) else []:
            if isinstance(item, dict):
                lines.append(f"      {item['path']} ({human_bytes(item.get('size'))}, sha256 {str(item.get('sha256'))[:12]}…)")
                lines.append(f"        <- {item['urls'][0]}")
        for repo in step.get("repos", []):
            for item in repo["files"]:
                lines.append(f"      {repo['repo_id']}/{item['filename']} <- {item['urls'][0]}")
    lines.append("")
    disk = data["disk"]
    lines.append("Disk: " + ", ".join(f"{label.replace('_', ' ')} {value['human']}" for label, value in disk.items()))
    return "\n".join(lines)


def render_outcome(data: Mapping[str, Any]) -> str:
    ran = [s for s in data["steps"] if s["status"] == "ran" and s["id"] != "preflight"]
    lines = []
    if not ran:
        lines.append(f"Nothing to do: {data['install_dir']} is already installed (manifest {data['manifest']}).")
    else:
        lines.append(f"Installed {data['manifest']} into {data['install_dir']} in {data['seconds']:.0f}s "
                     f"({len(ran)} step(s) ran, backend {data['backend']}).")
    skipped = [s for s in data["steps"] if s["status"] == "skipped" and s["id"] != "preflight"]
    for step in skipped:
        lines.append(f"  skipped {step['id']}: {step.get('reason')}")
    if data.get("mirror"):
        from sdsetup.i18n import t
        from sdsetup.install.executor import source_lines

        lines.append(t("Sources:"))
        lines += [f"  {line}" for line in source_lines(data["mirror"])]
    lines.append("")
    lines.append("Start the web UI:")
    lines.append(f"  cd \"{data['install_dir']}\" && " + data.get("start", "./webui.sh        (Windows: webui-user.bat)"))
    if data.get("log"):
        lines.append(f"Log: {data['log']}")
    return "\n".join(lines)
