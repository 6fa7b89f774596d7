"""Dependencies the fast way: uv (or pip) resolves, sdsetup downloads, pip installs offline.

1. `uv pip compile --format pylock.toml` for the venv's interpreter (install/uv.py: a few round trips)
   or, without uv, `pip install --dry-run --report` against the chosen indexes names every
   distribution the resolver picked, with its URL and the index's sha256 (`--use-feature=fast-deps`
   where pip has it, so the resolver reads wheel metadata with range requests instead of downloading
   every wheel twice - the trap in facts/pip-and-downloads.md; but hundreds of them for torch);
2. the download engine fetches them in parallel, resumably, verified, into DIR/.sdsetup/wheelhouse;
3. `pip install --no-index --no-deps` installs exactly those files.
The result is the set the resolver chose, and a rerun finds every file already in the wheelhouse.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import unquote, urlsplit

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.i18n import t
from sdsetup.install.picks import Pick  # noqa: F401 (callers import it from here too)

REPORT_VERSION = "1"
_BAD_FEATURE = re.compile(r"invalid choice: .?fast-deps|no such option: --use-feature", re.IGNORECASE)


def filename_from_url(url: str) -> str:
    path = urlsplit(url).path
    return unquote(path.rsplit("/", 1)[-1])


def parse_report(report: dict[str, Any], origin: str = "pip report") -> list[Pick]:
    """The picks of a `pip install --dry-run --report` document (pure; format version 1)."""
    if not isinstance(report, dict) or str(report.get("version")) != REPORT_VERSION:
        raise SdsetupError(t("{origin}: unexpected format (version {version})", origin=origin,
                             version=report.get("version") if isinstance(report, dict) else "?"),
                           t("upgrade pip in the venv (python -m pip install -U pip) and run again"), ExitCode.STEP)
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
            raise SdsetupError(t("{origin}: {name} comes from a local directory ({url})", origin=origin, name=metadata.get("name"), url=url),
                               t("install steps take packages, archives or requirement files, not source trees"), ExitCode.USAGE)
        if "vcs_info" in info:
            raise SdsetupError(t("{origin}: {name} comes from a VCS URL ({url})", origin=origin, name=metadata.get("name"), url=url),
                               t("pin an archive URL (…/archive/COMMIT.zip) instead of git+https://"), ExitCode.USAGE)
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
    from sdsetup.versions import version_tuple

    return version_tuple(pip_version) >= (20, 2)


_PIP_NETWORK = re.compile(
    r"Retrying \(Retry\(|NewConnectionError|ConnectTimeoutError|ReadTimeoutError|ProxyError|Max retries exceeded|"
    r"Could not fetch URL|SSLError|Connection refused|Name or service not known|Temporary failure in name resolution|"
    r"RemoteDisconnected|ConnectionResetError", re.IGNORECASE)


def index_hosts(index_args: Sequence[str]) -> list[str]:
    """The hosts of the index URLs among pip's options (pure; host names only, never credentials)."""
    hosts = []
    for option, value in zip(index_args, list(index_args)[1:]):
        if option in ("--index-url", "-i", "--extra-index-url", "--find-links", "-f") and "://" in value:
            host = urlsplit(value).hostname
            if host and host not in hosts:
                hosts.append(host)
    return hosts


def network_failure(output: str, *, label: str, index_args: Sequence[str], proxy: bool, tool: str = "pip") -> SdsetupError | None:
    """The error for a resolution that failed because an index did not answer (pure), else None.

    pip words an unreachable index as "could not find a version" after its retries; that is a network
    failure (exit 3), not a missing package (exit 5).
    """
    from sdsetup.install.uv import looks_like_network

    if tool == "pip" and not _PIP_NETWORK.search(output or ""):
        return None
    if tool == "uv" and not looks_like_network(output):
        return None
    hosts = index_hosts(index_args) or [t("the package index")]
    lines = [line.strip() for line in (output or "").splitlines() if _PIP_NETWORK.search(line) or (tool == "uv" and looks_like_network(line))]
    cause = lines[-1][:200] if lines else t("no answer")
    return SdsetupError(
        t("resolving {label}: could not reach {hosts} through the proxy ({cause})", label=label, hosts=", ".join(hosts), cause=cause)
        if proxy else t("resolving {label}: could not reach {hosts} ({cause})", label=label, hosts=", ".join(hosts), cause=cause),
        t("check the proxy (--proxy URL) or run without it; the log file has the full output") if proxy else
        t("check the connection; behind a firewall use a mirror (--mirror cn) or a proxy (--proxy URL); "
          "`sdsetup mirrors probe` ranks the mirrors; the log file has the full output"),
        ExitCode.NETWORK,
        details={"hosts": hosts},
    )


def resume_args(pip_version: str | None) -> list[str]:
    """`--resume-retries` where this pip has it (25.1 added it, off by default until 25.2)."""
    from sdsetup.versions import version_tuple

    return ["--resume-retries", "5"] if version_tuple(pip_version) >= (25, 1) else []


def resolve(ctx: Any, requirements: Sequence[str], *, index_args: Sequence[str], label: str,
            no_build_isolation: bool = False, constraints: Path | None = None) -> list[Pick]:
    """The picks still to install for `requirements`: uv's resolution where uv is at hand (a few round
    trips), else pip's dry run (`pip install --dry-run --report`)."""
    from sdsetup.install import uv as uvmod
    from sdsetup.install.pip_run import proxy_secrets, tool_env

    uv = uvmod.find_uv()
    if uv:
        proxy = bool(tool_env(ctx.mirrors).get("PIP_PROXY")) or "--proxy" in index_args
        try:
            picks = uvmod.compile_picks(
                ctx, uv, requirements, index_args=index_args, label=label, no_build_isolation=no_build_isolation,
                constraints=constraints, env=tool_env(ctx.mirrors), secrets=proxy_secrets(ctx.settings),
                classify=lambda out: network_failure(out, label=label, index_args=index_args, proxy=proxy, tool="uv"))
            ctx.reporter.log.info("resolved %s with uv (%s)", label, uv)
            return picks
        except uvmod.UvUnusable as why:
            ctx.reporter.log.warning("uv could not resolve %s (%s); using pip's dry run", label, why)
    return resolve_with_pip(ctx, requirements, index_args=index_args, label=label,
                            no_build_isolation=no_build_isolation, constraints=constraints)


def resolve_with_pip(ctx: Any, requirements: Sequence[str], *, index_args: Sequence[str], label: str,
                     no_build_isolation: bool = False, constraints: Path | None = None) -> list[Pick]:
    """The resolver's picks for `requirements` (pip install --dry-run --report)."""
    from sdsetup.install.pip_run import probe_venv, proxy_secrets, run_checked, tool_env

    report_file = ctx.state_dir / f"pip-report-{re.sub(r'[^A-Za-z0-9_.-]', '_', label)}.json"
    report_file.parent.mkdir(parents=True, exist_ok=True)
    probe = probe_venv(ctx.python) or {}
    pip_version = (probe.get("packages") or {}).get("pip")
    head = [str(ctx.python), "-m", "pip", "install", "--dry-run", "--quiet", "--report", str(report_file)]
    options = ["--prefer-binary", *resume_args(pip_version), *index_args]
    if no_build_isolation:
        options.append("--no-build-isolation")
    if constraints is not None and constraints.is_file():
        options += ["--constraint", str(constraints)]
    argv = [*head, *options, *requirements]
    fast = pip_supports_fast_deps(pip_version)
    env = tool_env(ctx.mirrors)
    proxy = bool(env.get("PIP_PROXY")) or "--proxy" in index_args
    hint = ("the indexes did not offer a matching set of packages: check the mirror (sdsetup mirrors probe) "
            "or the manifest's pins; the log file has pip's full output")

    def classify(output: str) -> SdsetupError | None:
        return network_failure(output, label=label, index_args=index_args, proxy=proxy)

    secrets = proxy_secrets(ctx.settings)
    try:
        if fast:
            fast_argv = [*head, "--use-feature=fast-deps", *options, *requirements]
            try:
                run_checked(fast_argv, env=env, what=f"resolving {label}", hint=hint, secrets=secrets, classify=classify)
            except SdsetupError as error:
                if error.exit_code == ExitCode.NETWORK:
                    raise
                if not _BAD_FEATURE.search(error.message):
                    # fast-deps is experimental: a range-request quirk on a mirror must not fail the install.
                    ctx.reporter.log.warning("fast-deps resolve failed (%s); retrying without it", error.message)
                run_checked(argv, env=env, what=f"resolving {label}", hint=hint, secrets=secrets, classify=classify)
        else:
            run_checked(argv, env=env, what=f"resolving {label}", hint=hint, secrets=secrets, classify=classify)
        report = json.loads(report_file.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise SdsetupError(t("resolving {label}: pip wrote no readable report ({exc})", label=label, exc=exc), hint,
                           ExitCode.STEP) from None
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
            raise SdsetupError(t("pip picked {name} from an odd URL: {url}", name=pick.name, url=pick.url),
                               t("report this manifest/mirror pair"), ExitCode.STEP)
        dest = ctx.wheelhouse / pick.filename
        paths[pick.filename] = dest
        # A wheel with its sha256 comes from every source that serves the same file (the index's mirror,
        # the other mirrors, the official host), the faster ones doing more; without a hash, from one.
        urls = ctx.mirrors.sources_for(pick.url) if pick.sha256 else (pick.url,)
        specs.append(FileSpec(urls=urls, dest=dest, sha256=pick.sha256, label=pick.filename,
                              source_caps=ctx.mirrors.source_caps(urls)))
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
    from sdsetup.install import uv as uvmod
    from sdsetup.install.pip_run import proxy_secrets, run_checked, tool_env

    if not files:
        return
    needs_build_env = not no_build_isolation and any(not str(path).endswith(".whl") for path in files)
    uv = uvmod.find_uv()
    if uv:
        try:
            uvmod.install_files(ctx, uv, files, label=label, no_build_isolation=no_build_isolation,
                                index_args=build_index_args if needs_build_env and build_index_args else None,
                                env=tool_env(ctx.mirrors), secrets=proxy_secrets(ctx.settings))
            if label != "smoke":  # the smoke test imports right after its own packages: nothing to overlap
                from sdsetup.install import bytecode

                bytecode.start(ctx.python)  # uv writes no .pyc: the smoke test's first imports would, on its clock
            return
        except uvmod.UvUnusable as why:
            ctx.reporter.log.warning("uv could not install %s (%s); using pip", label, why)
    argv = [str(ctx.python), "-m", "pip", "install", "--quiet", "--no-deps", "--find-links", str(ctx.wheelhouse)]
    if needs_build_env and build_index_args:
        # The isolated build fetches its build requirements: let an interrupted download resume.
        from sdsetup.install.pip_run import probe_venv

        argv += resume_args(((probe_venv(ctx.python) or {}).get("packages") or {}).get("pip")) + list(build_index_args)
    else:
        argv.append("--no-index")
    if no_build_isolation:
        argv.append("--no-build-isolation")
    argv += [str(path) for path in files]
    run_checked(argv, env=tool_env(ctx.mirrors), what=f"installing {label}", secrets=proxy_secrets(ctx.settings),
                hint="the log file has pip's full output; run the same command again to retry")


def already_in_wheelhouse(ctx: Any, pick: Pick) -> bool:
    """The pick's file is in the wheelhouse with its sha256 (the engine's hash cache makes a rerun cheap)."""
    if pick.local_path or not pick.sha256 or not pick.filename:
        return False
    path = ctx.wheelhouse / pick.filename
    if not path.is_file():
        return False
    from sdsetup.hashing import HashCache
    from sdsetup.net.filejob import HASH_CACHE

    try:
        digest, _ = HashCache(ctx.settings.cache_dir / HASH_CACHE).sha256(path)
    except OSError:
        return False
    return digest == pick.sha256


def download_summary(picks: Sequence[Pick], have: Sequence[bool]) -> str:
    """'N package(s) picked, M to download: …' counting only files not already at hand (pure)."""
    need = sum(1 for pick, there in zip(picks, have) if not pick.local_path and not there)
    names = ", ".join(f"{p.name}=={p.version}" for p in picks[:8]) + (" …" if len(picks) > 8 else "")
    return f"{len(picks)} package(s) picked, {need} to download: {names}"


def resolve_fetch_install(ctx: Any, requirements: Sequence[str], *, index_args: Sequence[str], label: str,
                          no_build_isolation: bool = False, constraints: Path | None = None) -> list[Pick]:
    picks = resolve(ctx, requirements, index_args=index_args, label=label, no_build_isolation=no_build_isolation,
                    constraints=constraints)
    if not picks:
        ctx.reporter.detail(t("already satisfied"))
        return []
    ctx.reporter.detail(download_summary(picks, [already_in_wheelhouse(ctx, p) for p in picks]))
    paths = fetch(ctx, picks)
    install(ctx, [paths[p.filename] for p in picks], label=label, no_build_isolation=no_build_isolation,
            build_index_args=index_args)
    return with_installed_versions(ctx, picks)


def with_installed_versions(ctx: Any, picks: list[Pick]) -> list[Pick]:
    """A direct pick (a source archive uv names without its version) gets the version now installed."""
    from dataclasses import replace

    from sdsetup.install.uv import DIRECT

    direct = [p.name for p in picks if p.version == DIRECT]
    if not direct:
        return picks
    from sdsetup.install.pip_run import probe_venv

    versions = (probe_venv(ctx.python, direct) or {}).get("packages") or {}
    return [replace(p, version=versions.get(p.name) or p.version) if p.version == DIRECT else p for p in picks]
