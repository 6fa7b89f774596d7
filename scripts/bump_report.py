#!/usr/bin/env python3
"""What changed upstream since a manifest's web UI pin: the routine for the next bump (needs the internet).

    python scripts/bump_report.py                 # every built-in manifest
    python scripts/bump_report.py --manifest comfyui

For each manifest: the pinned commit and ref; the tags upstream newer than the ref (by version) and the
head of its branch; then, between the pin and the newest release tag (or the branch head where the pin
follows a branch, or --to REF), the diff of the files the manifest's facts come from: its requirements
files and the launcher's fact files (launch_utils.py, webui.sh, README.md, version files). Read the diff,
update the manifest (with its evidence, docs/manifest.md), then run scripts/verify_pins.py.
Exit status: 0 when every pin is current, 1 when something moved, 2 on an error.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdsetup.manifest import Manifest, builtin_names, load_manifest  # noqa: E402

GITHUB = "https://github.com/"
# Where each launcher kind's facts live (docs/manifest.md, "Facts"), besides its requirements files.
FACT_FILES = {
    "a1111": ("modules/launch_utils.py", "webui.sh", "webui-macos-env.sh"),
    "forge": ("modules/launch_utils.py", "webui.sh", "webui-macos-env.sh", "backend/args.py"),
    "comfyui": ("comfyui_version.py", "pyproject.toml", "README.md"),
}


def _git(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})


def _version_key(tag: str) -> tuple:
    """v1.10.1 < v1.11.0-rc1 < v1.11.0: the release numbers first, a pre-release below its release."""
    match = re.match(r"^v?(\d+(?:\.\d+)*)(.*)$", tag)
    if not match:
        return ((), 0, ())
    base = tuple(int(n) for n in match.group(1).split("."))
    rest = match.group(2)
    return (base, 0 if rest else 1, tuple(int(n) for n in re.findall(r"\d+", rest)))


def upstream_refs(url: str) -> tuple[dict[str, str], dict[str, str]]:
    """({tag: commit}, {branch: commit}) from `git ls-remote` (annotated tags peeled)."""
    listed = _git("ls-remote", "--tags", "--heads", url, timeout=120)
    if listed.returncode != 0:
        raise RuntimeError(f"git ls-remote {url}: {listed.stderr.strip() or 'failed'}")
    tags: dict[str, str] = {}
    heads: dict[str, str] = {}
    for line in listed.stdout.splitlines():
        sha, _, name = line.partition("\t")
        if name.startswith("refs/tags/"):
            tag = name[len("refs/tags/"):]
            if tag.endswith("^{}"):
                tags[tag[:-3]] = sha
            else:
                tags.setdefault(tag, sha)
        elif name.startswith("refs/heads/"):
            heads[name[len("refs/heads/"):]] = sha
    return tags, heads


def report(manifest: Manifest, github: str = GITHUB, to: str | None = None) -> tuple[bool, str]:
    """(moved, text) for one manifest."""
    webui = manifest.webui
    url = github + webui.url[len(GITHUB):] if webui.url.startswith(GITHUB) else webui.url
    tags, heads = upstream_refs(url)
    lines = [f"== {manifest.name}: {webui.url} pinned at {webui.commit[:12]}" + (f" ({webui.ref})" if webui.ref else "")]
    ref = webui.ref or ""
    on_branch = ref in heads and ref not in tags
    newer = sorted((t for t in tags if _version_key(t) > _version_key(ref)), key=_version_key) if ref in tags or not on_branch else []
    if newer:
        lines.append(f"tags newer than {ref or 'the pin'}: " + ", ".join(newer[-15:]) + (f" (+{len(newer) - 15} older)" if len(newer) > 15 else ""))
    elif not on_branch:
        lines.append(f"no tag newer than {ref or 'the pin'}")
    if on_branch:
        head = heads[ref]
        lines.append(f"branch {ref} head: {head[:12]}" + (" = pin" if head == webui.commit else " (moved)"))
    target_name = to or (ref if on_branch else (newer[-1] if newer else None))
    if target_name is None:
        return False, "\n".join(lines + ["up to date"])
    target = tags.get(target_name) or heads.get(target_name) or (target_name if re.fullmatch(r"[0-9a-f]{40}", target_name) else None)
    if target is None:
        raise RuntimeError(f"{target_name} is neither a tag nor a branch upstream")
    if target == webui.commit:
        return False, "\n".join(lines + [f"{target_name} is the pin: up to date"])
    files = [s.requirements_file for s in manifest.pip if s.requirements_file] + list(FACT_FILES.get(manifest.launcher.kind, ()))
    with tempfile.TemporaryDirectory(prefix="bump-report-") as scratch:
        _git("init", "-q", "--bare", scratch)
        for commit in (webui.commit, target):
            fetched = _git("--git-dir", scratch, "fetch", "-q", "--depth=1", url, commit)
            if fetched.returncode != 0:
                raise RuntimeError(f"git fetch {commit[:12]} from {url}: {fetched.stderr.strip() or 'failed'}")
        lines.append(f"--- diff {webui.commit[:12]} .. {target_name} ({target[:12]}) of {', '.join(files)}")
        diff = _git("--git-dir", scratch, "diff", "--no-color", "-U0", webui.commit, target, "--", *files)
        lines.append(diff.stdout.rstrip() or "(those files did not change)")
    return True, "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", action="append", help="a built-in name or a .toml path (repeatable; default: all built-in)")
    parser.add_argument("--to", help="compare the pin with this tag, branch or commit instead of the newest release")
    parser.add_argument("--github", default=GITHUB, help="base URL standing in for https://github.com/")
    args = parser.parse_args(argv)
    moved = False
    for item in args.manifest or builtin_names():
        try:
            changed, text = report(load_manifest(item), args.github, args.to)
        except Exception as exc:  # noqa: BLE001 - one line naming the manifest, not a traceback
            print(f"bump_report: {item}: {getattr(exc, 'message', exc)}", file=sys.stderr)
            return 2
        print(text + "\n")
        moved = moved or changed
    return 1 if moved else 0


if __name__ == "__main__":
    sys.exit(main())
