"""Dependencies the fast way: pip resolves, sdsetup downloads, pip installs offline.

1. `pip install --dry-run --report` against the chosen indexes names every distribution the resolver
   picked, with its URL and the index's sha256 (`--use-feature=fast-deps` where pip has it, so the
   resolver reads wheel metadata with range requests instead of downloading every wheel twice - the
   trap in facts/pip-and-downloads.md);
2. the download engine fetches them in parallel, resumably, verified, into DIR/.sdsetup/wheelhouse;
3. `pip install --no-index --no-deps` installs exactly those files.
The result is the set the resolver chose, and a rerun finds every file already in the wheelhouse.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import unquote, urlsplit

from sdsetup.errors import ExitCode, SdsetupError

REPORT_VERSION = "1"
_BAD_FEATURE = re.compile(r"invalid choice: .?fast-deps|no such option: --use-feature", re.IGNORECASE)


@dataclass(frozen=True)
class Pick:
    """One distribution the resolver picked."""

    name: str
    version: str
    url: str
    sha256: str | None
    filename: str
    local_path: str | None  # set for file:// URLs (an archive already on disk)
    is_wheel: bool
    requested: bool


def filename_from_url(url: str) -> str:
    path = urlsplit(url).path
    return unquote(path.rsplit("/", 1)[-1])


def parse_report(report: dict[str, Any], origin: str = "pip report") -> list[Pick]:
    """The picks of a `pip install --dry-run --report` document (pure; format version 1)."""
    if not isinstance(report, dict) or str(report.get("version")) != REPORT_VERSION:
        raise SdsetupError(f"{origin}: unexpected format (version {report.get('version') if isinstance(report, dict) else '?'})",
                           "upgrade pip in the venv (python -m pip install -U pip) and run again", ExitCode.STEP)
    picks = []
    for item in report.get("install", []):
        metadata = item.get("metadata") or {}
        info = item.get("download_info") or {}
        url = info.get("url") or ""
        archive = info.get("archive_info") or {}
        sha = (archive.get("hashes") or {}).get("sha256")
        if not sha and str(archive.get("hash", "")).startswith("sha256="):
            sha = archive["hash"].split("=", 1)[1]
        if "dir_info" in info:
            raise SdsetupError(f"{origin}: {metadata.get('name')} comes from a local directory ({url})",
                               "install steps take packages, archives or requirement files, not source trees", ExitCode.USAGE)
        if "vcs_info" in info:
            raise SdsetupError(f"{origin}: {metadata.get('name')} comes from a VCS URL ({url})",
                               "pin an archive URL (…/archive/COMMIT.zip) instead of git+https://", ExitCode.USAGE)
        parts = urlsplit(url)
        local = None
        if parts.scheme == "file":
            local = unquote(parts.path)
            if re.match(r"^/[A-Za-z]:/", local):  # file:///C:/… on Windows
                local = local[1:]
        filename = filename_from_url(url)
        picks.append(Pick(
            name=str(metadata.get("name", "?")),
            version=str(metadata.get("version", "?")),
            url=url,
            sha256=sha.lower() if sha else None,
            filename=filename,
            local_path=local,
            is_wheel=filename.endswith(".whl"),
            requested=bool(item.get("requested")),
        ))
    return picks


def pip_supports_fast_deps(pip_version: str | None) -> bool:
    """fast-deps exists from pip 20.2 on; it is tried and dropped if this pip refuses it."""
    from sdsetup.install.steps.venv import version_tuple

    return version_tuple(pip_version) >= (20, 2)


def resolve(ctx: Any, requirements: Sequence[str], *, index_args: Sequence[str], label: str,
            no_build_isolation: bool = False, constraints: Path | None = None) -> list[Pick]:
    """The resolver's picks for `requirements` (pip install --dry-run --report)."""
    from sdsetup.install.pip_run import probe_venv, proxy_secrets, run_checked, tool_env

    report_file = ctx.state_dir / f"pip-report-{re.sub(r'[^A-Za-z0-9_.-]', '_', label)}.json"
    report_file.parent.mkdir(parents=True, exist_ok=True)
    head = [str(ctx.python), "-m", "pip", "install", "--dry-run", "--quiet", "--report", str(report_file)]
    options = ["--prefer-binary", *index_args]
    if no_build_isolation:
        options.append("--no-build-isolation")
    if constraints is not None and constraints.is_file():
        options += ["--constraint", str(constraints)]
    argv = [*head, *options, *requirements]
    probe = probe_venv(ctx.python) or {}
    fast = pip_supports_fast_deps((probe.get("packages") or {}).get("pip"))
    env = tool_env(ctx.mirrors)
    hint = ("the indexes did not offer a matching set of packages: check the mirror (sdsetup mirrors test) "
            "or the manifest's pins; the log file has pip's full output")
    try:
        if fast:
            fast_argv = [*head, "--use-feature=fast-deps", *options, *requirements]
            try:
                run_checked(fast_argv, env=env, what=f"resolving {label}", hint=hint, secrets=proxy_secrets(ctx.settings))
            except SdsetupError as error:
                if not _BAD_FEATURE.search(error.message):
                    # fast-deps is experimental: a range-request quirk on a mirror must not fail the install.
                    ctx.reporter.log.warning("fast-deps resolve failed (%s); retrying without it", error.message)
                run_checked(argv, env=env, what=f"resolving {label}", hint=hint, secrets=proxy_secrets(ctx.settings))
        else:
            run_checked(argv, env=env, what=f"resolving {label}", hint=hint, secrets=proxy_secrets(ctx.settings))
        report = json.loads(report_file.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise SdsetupError(f"resolving {label}: pip wrote no readable report ({exc})", hint, ExitCode.STEP) from None
    finally:
        try:
            report_file.unlink()
        except OSError:
            pass
    return parse_report(report, f"pip's report for {label}")


def fetch(ctx: Any, picks: Sequence[Pick]) -> dict[str, Path]:
    """Download every pick that is not already local into the wheelhouse; {filename: path}."""
    from sdsetup.net.filespec import FileSpec

    ctx.wheelhouse.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    specs = []
    for pick in picks:
        if pick.local_path:
            paths[pick.filename] = Path(pick.local_path)
            continue
        if not pick.filename or "/" in pick.filename or pick.filename in (".", ".."):
            raise SdsetupError(f"pip picked {pick.name} from an odd URL: {pick.url}", "report this manifest/mirror pair", ExitCode.STEP)
        dest = ctx.wheelhouse / pick.filename
        paths[pick.filename] = dest
        specs.append(FileSpec(urls=(pick.url,), dest=dest, sha256=pick.sha256, label=pick.filename))
    if specs:
        download_specs(ctx, specs)
    return paths


def download_specs(ctx: Any, specs: Sequence[Any]) -> list[Any]:
    from sdsetup.net.download import download_many

    parallel = max(1, min(4, len(specs)))
    return download_many(list(specs), ctx.session, ctx.settings, parallel=parallel, progress=ctx.progress)


def install(ctx: Any, files: Sequence[Path], *, label: str, no_build_isolation: bool = False,
            build_index_args: Sequence[str] = ()) -> None:
    """Install exactly these files (the resolver already chose them and their dependencies).

    Offline (--no-index) unless a source archive must be built in an isolated environment: that
    build fetches its own build requirements, so it gets `build_index_args`.
    """
    from sdsetup.install.pip_run import proxy_secrets, run_checked, tool_env

    if not files:
        return
    argv = [str(ctx.python), "-m", "pip", "install", "--quiet", "--no-deps", "--find-links", str(ctx.wheelhouse)]
    needs_build_env = not no_build_isolation and any(not str(path).endswith(".whl") for path in files)
    if needs_build_env and build_index_args:
        argv += list(build_index_args)
    else:
        argv.append("--no-index")
    if no_build_isolation:
        argv.append("--no-build-isolation")
    argv += [str(path) for path in files]
    run_checked(argv, env=tool_env(ctx.mirrors), what=f"installing {label}", secrets=proxy_secrets(ctx.settings),
                hint="the log file has pip's full output; run the same command again to retry")


def resolve_fetch_install(ctx: Any, requirements: Sequence[str], *, index_args: Sequence[str], label: str,
                          no_build_isolation: bool = False, constraints: Path | None = None) -> list[Pick]:
    picks = resolve(ctx, requirements, index_args=index_args, label=label, no_build_isolation=no_build_isolation,
                    constraints=constraints)
    if not picks:
        ctx.reporter.detail("already satisfied")
        return []
    total = len([p for p in picks if not p.local_path])
    ctx.reporter.detail(f"{len(picks)} package(s) picked, {total} to download: "
                        + ", ".join(f"{p.name}=={p.version}" for p in picks[:8]) + (" …" if len(picks) > 8 else ""))
    paths = fetch(ctx, picks)
    install(ctx, [paths[p.filename] for p in picks], label=label, no_build_isolation=no_build_isolation,
            build_index_args=index_args)
    return picks
