"""`sdsetup ext add URL`, `ext list`, `ext remove NAME` (A1111/Forge extensions, ComfyUI custom nodes).

Exit codes: 0 done; 1 the extension's requirements would move a held package (torch, torchvision,
xformers, the install's constraints) or cannot be resolved beside them, or its folder exists; 2 bad
input or no install; 3 network; 5 git or pip failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdsetup.errors import usage_error
from sdsetup.i18n import t
from sdsetup.output import Outcome
from sdsetup.settings import Settings


def _install(install_dir: Path | None):
    from sdsetup.commands.verify import find_install_dir
    from sdsetup.install_record import load_record

    root = find_install_dir(install_dir)
    record = load_record(root)
    if record is None:
        raise usage_error(t("{dir} holds no sdsetup install", dir=root),
                          t("give the install folder with --dir DIR, or install one with `sdsetup install`"))
    return root, record


def _check_commit(commit: str | None) -> str | None:
    if commit is None:
        return None
    value = commit.strip().lower()
    if len(value) != 40 or any(c not in "0123456789abcdef" for c in value):
        raise usage_error(t("--commit '{commit}' is not a full commit id", commit=commit), t("give the 40 hexadecimal digits of the commit"))
    return value


def add(settings: Settings, url: str, *, install_dir: Path | None = None, commit: str | None = None,
        skip_requirements: bool = False) -> Outcome:
    from sdsetup.ext.add import add_extension
    from sdsetup.ext.rules import check_repo_url
    from sdsetup.logs import start_run_log
    from sdsetup.venv_context import open_context

    check_repo_url(url)
    commit = _check_commit(commit)
    root, record = _install(install_dir)
    start_run_log(settings, "ext")
    ctx = open_context(settings, root)
    data = add_extension(ctx, record.launcher, url, commit=commit, skip_requirements=skip_requirements,
                         extra_held=record.held)
    warnings = [t("{name} was added without its requirements; it may fail at launch", name=data["name"])] if data.get("skipped_requirements") else []
    return Outcome("ext add", data, human=_human_add, warnings=warnings)


def _human_add(data: dict[str, Any]) -> str:
    if not data.get("changed"):
        return t("{name} is already at {commit} in {path}", name=data["name"], commit=data["commit"][:10], path=data["path"])
    lines = [t("{name} added at {commit} in {path}", name=data["name"], commit=data["commit"][:10], path=data["path"])]
    if data.get("requirements"):
        lines.append(t("installed into the venv (torch and the held packages unchanged): {packages}", packages=", ".join(data["requirements"])))
    return "\n".join(lines)


def list_ext(settings: Settings, install_dir: Path | None = None) -> Outcome:
    from sdsetup.ext.listing import list_extensions

    root, record = _install(install_dir)
    items = list_extensions(root, record.launcher)
    return Outcome("ext list", {"dir": str(root), "ui": record.launcher, "extensions": items}, human=_human_list)


def _human_list(data: dict[str, Any]) -> str:
    if not data["extensions"]:
        return t("no extensions in {dir}", dir=data["dir"])
    lines = []
    for item in data["extensions"]:
        notes = []
        if not item["present"]:
            notes.append(t("its folder is gone"))
        if item["moved"]:
            notes.append(t("moved from the recorded {commit}", commit=(item["recorded_commit"] or "")[:10]))
        if item["changed_files"]:
            notes.append(t("has local changes"))
        if not item["by_sdsetup"]:
            notes.append(t("not added by sdsetup"))
        commit = (item["commit"] or "-")[:10]
        lines.append(f"{item['name']:<32} {commit}  {', '.join(notes)}".rstrip())
    return "\n".join(lines)


def remove(settings: Settings, name: str, *, install_dir: Path | None = None) -> Outcome:
    from sdsetup.ext.remove import remove_extension
    from sdsetup.ext.rules import check_name

    check_name(name)
    root, record = _install(install_dir)
    data = remove_extension(root, record.launcher, name)
    return Outcome("ext remove", data, human=lambda d: t("{name} moved to {backup} (its packages stay in the venv)", name=d["name"], backup=d["backup"])
                   if d["removed"] else t("{name} was no longer there; dropped from the record", name=d["name"]))
