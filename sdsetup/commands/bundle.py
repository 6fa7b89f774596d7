"""`sdsetup bundle create OUT` / `sdsetup bundle verify OUT`. docs/bundle.md describes bundles and serving
them; how `install --mirror-url` / `--offline` turn into settings is sdsetup/install/inputs.py's."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from sdsetup.errors import ExitCode, usage_error
from sdsetup.fsutil import human_bytes
from sdsetup.output import Outcome, status_lines
from sdsetup.i18n import t


def create(settings: Any, out: Path, *, manifest: str | None = None, backend: str = "auto", torch_tag: str | None = None,
           platforms: Sequence[str] = (), python_version: str | None = None, base_url: str | None = None,
           quiet: bool = False) -> Outcome:
    from sdsetup.bundle.create import CreateOptions, create_bundle

    if base_url is not None:
        from sdsetup.net.mirror_profiles import check_url

        from urllib.parse import urlsplit

        base_url = check_url(base_url, "--base-url", "URL")
        if urlsplit(base_url).username or urlsplit(base_url).password:
            raise usage_error(t("--base-url carries a user name or password"), t("the profile file is for every machine: give the URL without credentials"))
    options = CreateOptions(manifest=manifest, backend=(backend or "auto").lower(), torch_tag=torch_tag,
                            platforms=tuple(platforms or ()), python_version=python_version, base_url=base_url, quiet=quiet)
    data = create_bundle(settings, out, options)
    warnings = data.pop("warnings", [])
    return Outcome("bundle create", data, ExitCode.OK, human=render_create, warnings=warnings)


def verify(settings: Any, out: Path) -> Outcome:
    from sdsetup.bundle.check import verify_bundle

    data = verify_bundle(out)
    return Outcome("bundle verify", data, ExitCode.OK if data["ok"] else ExitCode.INTEGRITY, human=render_verify)


def render_create(data: Mapping[str, Any]) -> str:
    target = data["target"]
    label = target["label"] if target.get("platforms") else t("this machine's platform")  # the lock keeps the English label
    lines = [
        t("Bundle written: {out}", out=data["out"]),
        "  " + t("{manifest} for {backend}{tag}, {label}, Python {python_version}", manifest=data["manifest"], backend=data["backend"],
                 tag=" " + data["torch_tag"] if data["torch_tag"] else "", label=label, python_version=target["python_version"]),
        "  " + t("{files} files, {size} ({downloaded} downloaded this run)", files=data["files"], size=human_bytes(data["bytes"]),
                 downloaded=human_bytes(data["downloaded_bytes"])),
    ]
    for kind, entry in sorted(data["by_kind"].items()):
        lines.append(f"    {kind:<13} " + t("{files:>6} file(s)  {size}", files=entry["files"], size=human_bytes(entry["bytes"])))
    lines += [
        "  " + t("lock     {path}", path=data["lock"]),
        "  " + t("profile  {path} (base {base_url})", path=data["profile"], base_url=data["base_url"]),
        "",
        t("Serve it with any static web server, e.g.:"),
        f"  cd \"{data['out']}\" && python3 -m http.server 8000",
        t("Install on each machine from it:"),
        "  sdsetup install DIR --mirror-url http://THIS-HOST:8000/",
        "  " + t("(or, with the folder at hand: {command})", command=f"sdsetup install DIR --offline \"{data['out']}\""),
    ]
    return "\n".join(lines)


def render_verify(data: Mapping[str, Any]) -> str:
    from sdsetup.bundle.check import describe

    items = []
    for problem in data["problems"]:
        items.append({"status": "fail", "name": problem["path"], "value": describe(problem),
                      "fix": t("run `sdsetup bundle create` again with the same options: it fetches what is missing or "
                               "wrong")})
    lines = [status_lines(items, label_width=40)] if items else []
    if data["extra_files"]:
        extra = data["extra_files"]
        shown = (t("{files} and {count} more", files=", ".join(extra[:5]), count=len(extra) - 5) if len(extra) > 5
                 else ", ".join(extra))
        lines.append(t("[info] not in the lock (served as they are): {files}", files=shown))
    checked = dict(files=data["files_checked"], size=human_bytes(data["bytes_checked"]), repos=data["repos_checked"],
                   out=data["out"])
    lines.append(t("OK: {files} files ({size}) and {repos} repositories checked in {out}", **checked) if data["ok"] else
                 t("{problems} problem(s): {files} files ({size}) and {repos} repositories checked in {out}",
                   problems=len(data["problems"]), **checked))
    return "\n".join(lines)
