"""Resolution with uv (`uv pip compile --format pylock.toml`) instead of pip's dry run.

pip's dry run reads a wheel's metadata, where the index serves no PEP 658 `.metadata` file, with
`fast-deps`: hundreds of small sequential range requests for a torch wheel (315 requests, 16 s on
loopback; each one costs a round trip on a long link). uv reads the zip's central directory in one or
two ranged requests and fetches index pages in parallel, so the same resolution costs a few round trips.
uv only resolves here: sdsetup's engine still downloads (segmented, resumable, verified) and pip still
installs, so the venv keeps the pip the web UI calls. Any doubt (no uv, an option uv cannot take, an
answer it cannot give) falls back to pip's dry run.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import unquote, urlsplit

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.i18n import t

# SDSETUP_UV: a path to the uv binary, or 0/off/no to never use uv (pip's dry run then).
ENV_UV = "SDSETUP_UV"
_OFF = {"0", "off", "no", "false", "pip"}


DIRECT = "(direct)"  # the version of a direct-URL pick until it is installed


class UvUnusable(Exception):
    """uv cannot answer this resolution; pip's dry run will (the reason goes to the log)."""


def find_uv(env: Mapping[str, str] | None = None) -> str | None:
    """The uv binary: $SDSETUP_UV, the `uv` package installed with sdsetup, or uv on PATH; None if none."""
    env = os.environ if env is None else env
    chosen = (env.get(ENV_UV) or "").strip()
    if chosen.lower() in _OFF:
        return None
    if chosen:
        return chosen if Path(chosen).is_file() else shutil.which(chosen)
    try:
        import uv  # the PyPI package ships the binary next to sdsetup

        found = uv.find_uv_bin()
        if found and Path(found).is_file():
            return str(found)
    except (ImportError, FileNotFoundError, OSError):
        pass
    return shutil.which("uv")


def uv_options(pip_args: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """pip's index options as uv options plus environment (pure); UvUnusable for one uv lacks.

    pip merges every index and picks the best version anywhere (a `+cpu` torch from the torch index
    over PyPI's); uv does so only with `--index-strategy unsafe-best-match`.
    """
    args = ["--index-strategy", "unsafe-best-match"]
    env: dict[str, str] = {}
    items = list(pip_args)
    i = 0
    while i < len(items):
        option = items[i]
        name, _, inline = option.partition("=")
        takes = {"--index-url": "--index-url", "-i": "--index-url", "--extra-index-url": "--extra-index-url",
                 "--find-links": "--find-links", "-f": "--find-links", "--trusted-host": "--allow-insecure-host",
                 "--proxy": None}
        if name not in takes:
            raise UvUnusable(f"pip option {option!r} has no uv equivalent here")
        if inline:
            value = inline
            i += 1
        else:
            if i + 1 >= len(items):
                raise UvUnusable(f"pip option {option!r} lacks its value")
            value = items[i + 1]
            i += 2
        if takes[name] is None:  # the proxy stays off argv (it may hold a password)
            env.update(proxy_env(value))
        else:
            args += [takes[name], value]
    return args, env


def proxy_env(proxy: str) -> dict[str, str]:
    return {"HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "ALL_PROXY": proxy}


def requirements_text(requirements: Sequence[str]) -> str:
    """pip's command-line requirements as a requirements file for `uv pip compile` (pure)."""
    lines = []
    items = list(requirements)
    i = 0
    while i < len(items):
        item = items[i]
        if item in ("-r", "--requirement", "-c", "--constraint") and i + 1 < len(items):
            lines.append(f"{item} {items[i + 1]}")
            i += 2
            continue
        if item.startswith("-"):
            raise UvUnusable(f"requirement option {item!r}")
        lines.append(item)
        i += 1
    return "".join(f"{line}\n" for line in lines)


def _wheel_tags(filename: str) -> set[str]:
    """`py3-none-any`-style tags a wheel's file name declares (compressed sets expanded)."""
    parts = filename[:-4].split("-")
    if len(parts) < 5:
        return set()
    pys, abis, plats = parts[-3].split("."), parts[-2].split("."), parts[-1].split(".")
    return {f"{p}-{a}-{pl}" for p in pys for a in abis for pl in plats}


def choose_wheel(wheels: Sequence[dict[str, Any]], tags: Sequence[str] | None) -> dict[str, Any] | None:
    """The wheel the venv would take: the one matching its most preferred tag (pure)."""
    if len(wheels) == 1 and not tags:
        return wheels[0]
    if not tags:
        return None
    rank = {tag: n for n, tag in enumerate(tags)}
    best, best_rank = None, None
    for wheel in wheels:
        name = wheel_filename(wheel)
        scores = [rank[t] for t in _wheel_tags(name) if t in rank]
        if scores and (best_rank is None or min(scores) < best_rank):
            best, best_rank = wheel, min(scores)
    return best


def wheel_filename(entry: dict[str, Any]) -> str:
    if entry.get("name"):
        return str(entry["name"])
    where = entry.get("url") or entry.get("path") or ""
    return unquote(urlsplit(str(where)).path.rsplit("/", 1)[-1])


def parse_pylock(doc: dict[str, Any], *, base: Path, tags: Sequence[str] | None, requested: Sequence[str] = ()) -> list[Any]:
    """The picks of a pylock.toml (PEP 751) written by `uv pip compile` (pure; relative paths from base)."""
    from sdsetup.install.picks import Pick

    if not isinstance(doc, dict) or str(doc.get("lock-version", "")).split(".")[0] != "1":
        raise UvUnusable(f"unexpected pylock version {doc.get('lock-version') if isinstance(doc, dict) else '?'}")
    wanted = {re.sub(r"[-_.]+", "-", r).lower() for r in requested}
    picks = []
    for package in doc.get("packages", []):
        name, version = str(package.get("name", "?")), str(package.get("version", "?"))
        if package.get("directory") or package.get("vcs"):
            raise UvUnusable(f"{name} comes from a directory or VCS")
        entry = None
        wheels = package.get("wheels") or []
        if wheels:
            entry = choose_wheel(wheels, tags)
            if entry is None:
                raise UvUnusable(f"{name} {version}: no wheel matches the venv's tags")
        else:
            entry = package.get("sdist") or package.get("archive")
        if not entry or not (entry.get("url") or entry.get("path")):
            raise UvUnusable(f"{name} {version}: no file in the lock")
        sha = (entry.get("hashes") or {}).get("sha256")
        local = None
        if entry.get("url"):
            url = str(entry["url"])
            if urlsplit(url).scheme == "file":
                local = unquote(urlsplit(url).path)
        else:
            local = str((base / str(entry["path"])).resolve())
            url = Path(local).as_uri()
        filename = wheel_filename(entry) if wheels else unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        picks.append(Pick(name=name, version=version, url=url, sha256=sha.lower() if sha else None,
                          filename=filename, local_path=local, is_wheel=filename.endswith(".whl"),
                          requested=re.sub(r"[-_.]+", "-", name).lower() in wanted))
    return picks


def requirement_names(requirements: Sequence[str]) -> list[str]:
    names = []
    for item in requirements:
        match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[|[=<>!~;]|$)", item)
        if match and not item.startswith("-"):
            names.append(match.group(1))
    return names


_NETWORK = re.compile(r"error sending request|failed to fetch|tcp connect error|connection refused|dns error|"
                      r"failed to lookup address|timed out|connection reset|operation timed out|proxy", re.IGNORECASE)


def looks_like_network(output: str) -> bool:
    return bool(_NETWORK.search(output or ""))


_PLUS = re.compile(r"^\s*\+\s+([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*(?:==\s*(\S+)|@\s*(\S+))\s*$")


def parse_dry_run(output: str) -> list[tuple[str, str | None, str | None]] | None:
    """(name, version, direct URL) for each ` + ` line of `uv pip install --dry-run` (pure); None when the
    output says nothing recognisable (then pip's dry run decides)."""
    rows = []
    for line in (output or "").splitlines():
        match = _PLUS.match(line)
        if match:
            rows.append((match.group(1), match.group(2), match.group(3)))
    if rows or re.search(r"would make no changes|would install 0 packages", output or "", re.IGNORECASE):
        return rows
    return None


def compile_picks(ctx: Any, uv: str, requirements: Sequence[str], *, index_args: Sequence[str], label: str,
                  no_build_isolation: bool, constraints: Path | None, env: Mapping[str, str],
                  secrets: Sequence[str], classify: Any = None) -> list[Any]:
    """The picks still to install, in two uv calls of a few round trips each:

    1. `uv pip install --dry-run` against the venv: what must be installed (what is installed and fits,
       torch held by the constraint file, stays; uv's compile alone would not know);
    2. `uv pip compile --no-deps --format pylock.toml` of exactly those pins: their URLs and sha256.
    """
    from sdsetup.install.pip_run import run_checked
    from sdsetup.install.picks import Pick
    from sdsetup.tomlcompat import loads_toml

    options, extra_env = uv_options(index_args)
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", label) or "step"
    source = ctx.state_dir / f"uv-requirements-{safe}.in"
    pins = ctx.state_dir / f"uv-pins-{safe}.in"
    out = ctx.state_dir / f"pylock.{safe}.toml"  # uv insists on this name for the format
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(requirements_text(requirements), "utf-8")
    uv_env = tool_env(ctx, env, extra_env)
    common = ["--python", str(ctx.python), *options]
    if no_build_isolation:
        common.append("--no-build-isolation")
    hint = "the log file has uv's full output"

    def call(argv: list[str], what: str):
        try:
            return run_checked(argv, env=uv_env, what=what, hint=hint, secrets=secrets, classify=classify)
        except SdsetupError as error:
            if error.exit_code == ExitCode.NETWORK:
                raise
            raise UvUnusable(error.message) from None

    try:
        dry = [uv, "pip", "install", "--dry-run", *common]
        if constraints is not None and constraints.is_file():
            dry += ["--constraint", str(constraints)]
        result = call([*dry, "-r", str(source)], f"resolving {label} (uv)")
        rows = parse_dry_run(f"{result.stdout}\n{result.stderr}")
        if rows is None:
            raise UvUnusable("uv's dry run listed nothing recognisable")
        direct = [(name, url) for name, version, url in rows if url]
        pinned = [(name, version) for name, version, url in rows if version]
        picks: dict[str, Any] = {}
        if pinned:
            pins.write_text("".join(f"{name}=={version}\n" for name, version in pinned), "utf-8")
            call([uv, "pip", "compile", "--quiet", "--no-deps", "--no-header", "--format", "pylock.toml",
                  "--output-file", str(out), *common, str(pins)], f"locating {label} (uv)")
            try:
                doc = loads_toml(out.read_text("utf-8"), "uv's lock")
            except (OSError, SdsetupError) as exc:
                raise UvUnusable(f"no readable lock ({exc})") from None
            multi = any(len(p.get("wheels") or []) > 1 for p in doc.get("packages", []))
            tags = venv_tags(ctx.python) if multi else None
            for pick in parse_pylock(doc, base=out.parent, tags=tags, requested=requirement_names(requirements)):
                picks[normalize(pick.name)] = pick
        for name, url in direct:
            parts = urlsplit(url)
            local = unquote(parts.path) if parts.scheme == "file" else None
            filename = unquote(parts.path.rsplit("/", 1)[-1])
            picks[normalize(name)] = Pick(name=name, version=DIRECT, url=url, sha256=None, filename=filename,
                                          local_path=local, is_wheel=filename.endswith(".whl"), requested=True)
    finally:
        for path in (source, pins, out):
            try:
                path.unlink()
            except OSError:
                pass
    ordered = []
    for name, _version, _url in rows:
        pick = picks.get(normalize(name))
        if pick is None:
            raise UvUnusable(f"{name} is missing from uv's lock")
        ordered.append(pick)
    return ordered


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def tool_env(ctx: Any, env: Mapping[str, str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """uv's environment: the same proxy and CA as pip, no user uv.toml (the plan names the indexes),
    never a Python download."""
    out = {**env, **(extra or {}), "UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never", "NO_COLOR": "1",
           "UV_NO_PROGRESS": "1"}
    if getattr(ctx.settings, "ca_bundle", None):
        from sdsetup.net.session import trust_store  # public CAs plus the user's (README: ca_bundle adds)

        out["SSL_CERT_FILE"] = str(trust_store(ctx.settings))
    if env.get("PIP_PROXY"):
        out.update(proxy_env(env["PIP_PROXY"]))
    return out


def install_files(ctx: Any, uv: str, files: Sequence[Path], *, label: str, no_build_isolation: bool,
                  index_args: Sequence[str] | None, env: Mapping[str, str], secrets: Sequence[str]) -> None:
    """`uv pip install --no-deps` of exactly these files into the venv (index_args None: offline).

    uv unpacks in parallel and starts in milliseconds, where pip takes seconds per step. It unpacks into
    a cache inside DIR/.sdsetup (same disk as the venv), hard-links from there and the cache is removed
    afterwards: no second copy of torch, and nothing in the venv shares an inode with a cache that
    another venv uses (uv copies where links do not work). The wheelhouse is the lasting cache.
    """
    from sdsetup.install.pip_run import run_checked

    options, extra_env = (["--offline", "--no-index"], {}) if index_args is None else uv_options(index_args)
    cache = ctx.state_dir / "uv-cache"
    argv = [uv, "pip", "install", "--quiet", "--python", str(ctx.python), "--no-deps", "--cache-dir", str(cache),
            "--link-mode", "hardlink", *options]
    if no_build_isolation:
        argv.append("--no-build-isolation")
    argv += [str(path) for path in files]
    try:
        run_checked(argv, env=tool_env(ctx, env, extra_env), what=f"installing {label} (uv)",
                    hint="the log file has uv's full output", secrets=secrets)
    except SdsetupError as error:
        raise UvUnusable(error.message) from None
    finally:
        shutil.rmtree(cache, ignore_errors=True)


_TAGS = "import json\nfrom pip._vendor.packaging.tags import sys_tags\nprint(json.dumps([str(t) for t in sys_tags()]))\n"


def venv_tags(python: Path) -> list[str] | None:
    """The venv's wheel tags, most preferred first (asked of its own pip's packaging)."""
    import json
    import subprocess

    try:
        result = subprocess.run([str(python), "-c", _TAGS], capture_output=True, text=True, timeout=60)
        return json.loads(result.stdout.strip().splitlines()[-1]) if result.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return None


def install_pip(ctx: Any, uv: str, requirement: str, *, index_args: Sequence[str], env: Mapping[str, str],
                secrets: Sequence[str]) -> None:
    """pip into a venv made with `python -m venv --without-pip`, through the mirror, in a second or two
    (ensurepip and then an upgrade over the network take 20 s and more). UvUnusable: use ensurepip."""
    from sdsetup.install.pip_run import run_checked

    options, extra_env = uv_options(index_args)
    cache = ctx.state_dir / "uv-cache"
    argv = [uv, "pip", "install", "--quiet", "--python", str(ctx.python), "--cache-dir", str(cache),
            "--link-mode", "hardlink", *options, requirement]
    try:
        run_checked(argv, env=tool_env(ctx, env, extra_env), what=t("installing pip into the venv (uv)"),
                    hint=t("the log file has uv's full output"), secrets=secrets)
    except SdsetupError as error:
        if error.exit_code == ExitCode.NETWORK:
            raise
        raise UvUnusable(error.message) from None
    finally:
        shutil.rmtree(cache, ignore_errors=True)
