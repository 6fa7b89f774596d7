"""The command line: declarations only. Each command calls one plain function that returns an Outcome.

Heavy modules (requests, psutil, pynvml, torch) are imported inside those functions, never here, so
`sdsetup --help` starts as fast as a bare Typer app (bench/startup measures it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, List, Optional

import typer
from typing_extensions import Annotated

from sdsetup import __version__
from sdsetup.i18n import t

app = typer.Typer(
    name="sdsetup",
    help="Install a Stable Diffusion web UI, prove it generates an image, and diagnose it when it does not.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: Rich's panels showed every flag as taking a value (`--json <bool>`) and kept the source's
    # line breaks in the middle of sentences (issue 11, item 17).
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state = {"debug": False}

# Options shared by several commands.
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout (progress stays on stderr).")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks and log more.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
ProxyOpt = Annotated[
    Optional[str], typer.Option("--proxy", help="Proxy for every network call: http://, https://, socks5:// or socks5h://host:port (user:pass@host:port when it needs a login).")
]
MirrorOpt = Annotated[
    Optional[List[str]],
    typer.Option("--mirror", help="Mirror profile (official, cn, auto, or your own), or CHANNEL=URL to override one channel. Repeatable."),
]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="Config file (default: SDSETUP_CONFIG or the platform config dir).")]
ConnectionsOpt = Annotated[Optional[int], typer.Option("--connections", help="Connections per download (default 8).")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sdsetup {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: DebugOpt = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")] = False,
    lang: Annotated[Optional[str], typer.Option("--lang", help="Language of messages: en or zh-CN (default: SDSETUP_LANG, the config file's lang, else the system's).")] = None,
) -> None:
    _state["debug"] = debug
    if lang:  # main() takes --lang out of argv before Typer sees it; this serves in-process callers
        from sdsetup import i18n

        i18n.set_lang(lang)


def _settings(**flags):
    from sdsetup.settings import load_settings

    flags["debug"] = flags.get("debug") or _state["debug"]
    return load_settings(flags)


def run_command(name: str, func: Callable, *, as_json: bool, debug: bool = False) -> None:
    """Run a command function and render its Outcome; the one place errors become exit codes."""
    from sdsetup.errors import ExitCode, SdsetupError
    from sdsetup.output import emit, emit_error

    debug = debug or _state["debug"] or os.environ.get("SDSETUP_DEBUG", "") not in ("", "0")
    try:
        outcome = func()
    except SdsetupError as error:
        if debug:
            import traceback

            traceback.print_exc(file=sys.stderr)
        emit_error(name, error, as_json)
        raise typer.Exit(int(error.exit_code)) from None
    except KeyboardInterrupt:
        interrupted, kept = t("interrupted"), t("partial work is kept; run the same command again to continue")
        sys.stderr.write(f"\n{interrupted}: {kept}\n")
        if as_json:  # the --json contract holds on Ctrl-C too: one document on stdout
            import json

            from sdsetup.output import error_envelope

            error = SdsetupError(interrupted, kept, ExitCode.INTERRUPTED)
            sys.stdout.write(json.dumps(error_envelope(name, error), indent=2, ensure_ascii=False) + "\n")
            sys.stdout.flush()
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    except typer.Exit:
        raise
    except Exception as exc:  # a bug: say so, keep the traceback reachable
        if debug:
            raise
        error = SdsetupError(
            t("internal error in sdsetup ({name}: {exc})", name=type(exc).__name__, exc=exc),
            t("this is a bug; rerun with --debug to see the traceback and report it with `sdsetup doctor --bundle report.zip`"),
            ExitCode.INTERNAL,
        )
        emit_error(name, error, as_json)
        raise typer.Exit(int(ExitCode.INTERNAL)) from None
    emit(outcome, as_json)
    raise typer.Exit(int(outcome.exit_code))


@app.command()
def check(
    dir: Annotated[Path, typer.Option("--dir", help="Where the web UI will be installed (disk and path checks).")] = Path("stable-diffusion-webui"),
    python: Annotated[Optional[str], typer.Option("--python", help="Python interpreter to use for the web UI (path or command name).")] = None,
    backend: Annotated[str, typer.Option("--backend", help="Torch backend to plan for: auto, cuda, rocm, mps or cpu.")] = "auto",
    network: Annotated[bool, typer.Option("--network", help="Also probe the proxy and every channel (official hosts and cn mirrors), a few seconds.")] = False,
    proxy: ProxyOpt = None,
    config: ConfigOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Check this machine: OS, git, Python, GPU and VRAM, RAM, disk, paths, proxies; verdicts with fixes.

    Exit code 0 when nothing fails, 1 when a hard requirement fails. Nothing goes over the network unless --network.
    """
    from sdsetup.commands import check as command

    run_command(
        "check",
        lambda: command.run(_settings(proxy=proxy, config=config, debug=debug), install_dir=dir, python=python, backend=backend.lower(),
                            network=network),
        as_json=json,
        debug=debug,
    )


# --- install (issue 5) ---------------------------------------------------------------------------
@app.command()
def install(
    dir: Annotated[Optional[Path], typer.Argument(help="Where the web UI goes (default: ./stable-diffusion-webui). DIR becomes the web UI checkout.")] = None,
    manifest: Annotated[Optional[str], typer.Option("--manifest", help="a1111 (default), a1111-dev (RTX 50xx), or the path of your own .toml.")] = None,
    ui: Annotated[Optional[str], typer.Option("--ui", help="The web UI: a1111 (default), forge or comfyui (the built-in manifest of that name).")] = None,
    mirror: MirrorOpt = None,
    proxy: ProxyOpt = None,
    python: Annotated[Optional[str], typer.Option("--python", help="Python for the web UI's venv (default: the one `sdsetup check` picks).")] = None,
    backend: Annotated[str, typer.Option("--backend", help="auto, cuda, rocm, mps or cpu.")] = "auto",
    skip_models: Annotated[bool, typer.Option("--skip-models", help="Do not download the checkpoint.")] = False,
    skip_smoke: Annotated[bool, typer.Option("--skip-smoke", help="Do not run the txt2img smoke test at the end.")] = False,
    mirror_url: Annotated[Optional[str], typer.Option("--mirror-url", help="One base URL serving every channel: a served offline bundle (docs/bundle.md).")] = None,
    offline: Annotated[Optional[Path], typer.Option("--offline", help="Install from an offline bundle folder (`sdsetup bundle create`): no network at all.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan (steps, sizes, every URL after mirror rewriting); write nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask (e.g. before moving an existing checkout to the pinned commit).")] = False,
    adopt_repo: Annotated[bool, typer.Option("--adopt-repo", help="DIR is a git repository of something else: check the web UI out there anyway (its HEAD and origin are recorded first).")] = False,
    connections: ConnectionsOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Install the web UI at pinned commits with torch for this machine, the models and Hub files, so its first launch needs no GitHub or Hugging Face.

    Reruns continue where the last run stopped; a finished install reruns as a no-op.
    """
    from sdsetup.commands import install as command
    from sdsetup.install.inputs import install_settings
    from sdsetup.install.plan import InstallOptions

    options = InstallOptions(manifest=manifest, python=python, backend=backend, skip_models=skip_models,
                             skip_smoke=skip_smoke, dry_run=dry_run, yes=yes, quiet=quiet, adopt_repo=adopt_repo)
    run_command(
        "install",
        lambda: command.run(
            install_settings(_settings(mirror=mirror, proxy=proxy, connections=connections, config=config, quiet=quiet, debug=debug),
                             mirror_url=mirror_url, offline=offline), dir, command.with_ui(options, ui)
        ),
        as_json=json,
        debug=debug,
    )


# --- verify (issue 6) ----------------------------------------------------------------------------
@app.command()
def verify(
    dir: Annotated[Optional[Path], typer.Argument(help="The install directory (default: . or ./stable-diffusion-webui, whichever holds an install).")] = None,
    smoke: Annotated[bool, typer.Option("--smoke", help="Only run the smoke test (tiny model), in --python or DIR's venv or this Python.")] = False,
    full: Annotated[bool, typer.Option("--full", help="Also generate with the installed checkpoint at 512x512 (slow on a CPU).")] = False,
    python: Annotated[Optional[Path], typer.Option("--python", help="The Python to test (default: the install's venv).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Keep the generated image at this path (PNG).")] = None,
    rehash: Annotated[bool, typer.Option("--rehash", help="Hash every model again instead of trusting the hash cache.")] = False,
    report: Annotated[Optional[Path], typer.Option("--report", help="Also write one self-contained report.html (results, timings, the image) to this path.")] = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Check an install against its record (pins, venv, torch vs hardware, model hashes, launch flags) and generate an image.

    Exit code 0 only when every check passed, 1 when one failed, 2 when DIR holds no install.
    """
    from sdsetup.commands import verify as command

    run_command(
        "verify",
        lambda: command.run(_settings(config=config, quiet=quiet, debug=debug), dir, smoke=smoke, full=full, python=python, out=out, rehash=rehash,
                            report=report),
        as_json=json,
        debug=debug,
    )


# --- doctor (issue 7) ----------------------------------------------------------------------------
@app.command()
def doctor(
    dir: Annotated[Optional[Path], typer.Argument(help="The web UI folder: also run the install checks and read its repositories.")] = None,
    log: Annotated[Optional[List[str]], typer.Option("--log", help="A saved console log to read; - reads stdin. Repeatable.")] = None,
    fix: Annotated[bool, typer.Option("--fix", help="Apply the fixes sdsetup can make safely (shown first; asks unless --yes; backs up what it edits).")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="With --fix: do not ask.")] = False,
    bundle: Annotated[Optional[Path], typer.Option("--bundle", help="Write a support zip (report, logs, pip freeze, repository state) with secrets removed.")] = None,
    proxy: ProxyOpt = None,
    mirror: MirrorOpt = None,
    config: ConfigOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Read console logs and the install, name the most likely cause first, and give the fix.

    Exit codes: 0 no problem found (or all fixed by --fix), 1 a problem found, 2 bad input, 5 a fix failed.
    """
    from sdsetup.commands import doctor as command

    def confirm(question: str) -> bool:
        # Not typer.confirm: it turns "no answer" (stdin empty: a script, CI) into Abort, an internal
        # error here, and writes its prompt's trailing space to stdout, ahead of the --json document.
        sys.stderr.write(f"{question} [y/N]: ")
        sys.stderr.flush()
        answer = sys.stdin.readline()
        if not answer:
            sys.stderr.write("\n" + t("(no answer: not applied; use --yes to apply without asking)") + "\n")
        return answer.strip().lower() in ("y", "yes")

    run_command(
        "doctor",
        lambda: command.run(
            _settings(proxy=proxy, mirror=mirror, config=config, debug=debug), dir, log or [],
            as_json=json, fix=fix, yes=yes, bundle=bundle, confirm=confirm,
        ),
        as_json=json,
        debug=debug,
    )


# --- fetch (issue 3) -----------------------------------------------------------------------------
@app.command()
def fetch(
    urls: Annotated[List[str], typer.Argument(help="URL of the file (http, https or file); several URLs are mirrors of the same file.", show_default=False)],
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Where to write the file; a folder (or a path ending in /) gets the URL's file name. Default: the current folder.")] = None,
    sha256: Annotated[Optional[str], typer.Option("--sha256", help="Expected sha256 (64 hex digits): the file is verified, and fetched again once if it does not match.")] = None,
    size: Annotated[Optional[int], typer.Option("--size", help="Expected size in bytes.")] = None,
    connections: ConnectionsOpt = None,
    timeout: Annotated[Optional[float], typer.Option("--timeout", help="Seconds without a byte before a connection is dropped and retried (default 30).")] = None,
    lock_timeout: Annotated[Optional[float], typer.Option("--lock-timeout", help="Seconds to wait for another sdsetup fetching the same file (default: wait until it is done).")] = None,
    proxy: ProxyOpt = None,
    mirror: MirrorOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Download one file with several connections, resumable across runs, verified; URLs after the first are mirrors.

    Exit codes: 0 the file is at PATH (verified when --sha256 is given), 2 bad input, 3 network,
    4 size or sha256 mismatch, 6 another sdsetup holds the file, 7 disk full, 130 interrupted (rerun to continue).
    """
    from sdsetup.commands import fetch as command

    run_command(
        "fetch",
        lambda: command.run(
            _settings(proxy=proxy, mirror=mirror, config=config, connections=connections, timeout=timeout, quiet=quiet, debug=debug),
            urls=urls, output=output, sha256=sha256, size=size, lock_timeout=lock_timeout,
        ),
        as_json=json,
        debug=debug,
    )


# --- mirrors (issue 4) ---------------------------------------------------------------------------
mirrors_app = typer.Typer(help="Mirror profiles for PyPI, PyTorch wheels, GitHub and Hugging Face: list and probe them.", no_args_is_help=True)
app.add_typer(mirrors_app, name="mirrors")


@mirrors_app.command("list")
def mirrors_list(
    mirror: MirrorOpt = None,
    config: ConfigOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Show every mirror profile and what each channel resolves to now."""
    from sdsetup.commands import mirrors as command

    run_command("mirrors list", lambda: command.list_profiles(_settings(mirror=mirror, config=config, debug=debug)), as_json=json, debug=debug)


@mirrors_app.command("probe")
def mirrors_probe(
    mirror: MirrorOpt = None,
    proxy: ProxyOpt = None,
    channel: Annotated[Optional[List[str]], typer.Option("--channel", help="Only this channel (pypi, torch, github, huggingface). Repeatable.")] = None,
    config: ConfigOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Probe every mirror candidate at once (short timeouts) and rank them by speed."""
    from sdsetup.commands import mirrors as command

    run_command(
        "mirrors probe",
        lambda: command.probe(_settings(mirror=mirror, proxy=proxy, config=config, debug=debug), channel),
        as_json=json,
        debug=debug,
    )


# --- bundle (issue 8) ----------------------------------------------------------------------------
bundle_app = typer.Typer(help="Offline bundles: download an install once, serve it on a LAN or carry it on a disk.", no_args_is_help=True)
app.add_typer(bundle_app, name="bundle")


@bundle_app.command("create")
def bundle_create(
    out: Annotated[Path, typer.Argument(help="The folder to write (new, empty, or a bundle to resume).", show_default=False)],
    manifest: Annotated[Optional[str], typer.Option("--manifest", help="a1111 (default), a1111-dev, or the path of your own .toml.")] = None,
    backend: Annotated[str, typer.Option("--backend", help="auto (this machine), cuda, rocm, mps or cpu.")] = "auto",
    torch_tag: Annotated[Optional[str], typer.Option("--torch-tag", help="The torch build, e.g. cu118 (default: the backend's first in the manifest).")] = None,
    platform: Annotated[Optional[List[str]], typer.Option("--platform", help="Target platform: linux, windows, macos, linux-aarch64, macos-x86_64, or a pip tag (win_amd64). Default: this machine's.")] = None,
    python_version: Annotated[Optional[str], typer.Option("--python-version", help="Target Python, e.g. 3.10 (default: the manifest's recommended).")] = None,
    base_url: Annotated[Optional[str], typer.Option("--base-url", help="Where the bundle will be served, for its mirror profile file (default: its file:// URL).")] = None,
    mirror: MirrorOpt = None,
    proxy: ProxyOpt = None,
    connections: ConnectionsOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Download everything one install needs into a static tree (PEP 503 index, bare git repositories, Hub files, lock).

    Rerun to resume. Exit codes: 0 done, 2 bad input, 3 network, 4 a file did not match its sha256,
    5 pip or git failed, 6 another run holds OUT, 7 disk full.
    """
    from sdsetup.commands import bundle as command

    run_command(
        "bundle create",
        lambda: command.create(
            _settings(mirror=mirror, proxy=proxy, connections=connections, config=config, quiet=quiet, debug=debug), out,
            manifest=manifest, backend=backend, torch_tag=torch_tag, platforms=platform or (), python_version=python_version,
            base_url=base_url, quiet=quiet,
        ),
        as_json=json,
        debug=debug,
    )


@bundle_app.command("verify")
def bundle_verify(
    out: Annotated[Path, typer.Argument(help="The bundle folder.", show_default=False)],
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Check every file of a bundle against its lock (sha256 and size) and every repository's pin.

    Exit codes: 0 all good, 2 not a bundle, 4 something is missing or differs (each listed).
    """
    from sdsetup.commands import bundle as command

    run_command("bundle verify", lambda: command.verify(_settings(debug=debug), out), as_json=json, debug=debug)


# --- models (issue 24) ----------------------------------------------------------------------------
models_app = typer.Typer(help="Models after the install: add one from the Hub, Civitai, ModelScope or any URL (verified, into every installed UI), list them.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("add")
def models_add(
    source: Annotated[str, typer.Argument(help="hf:OWNER/REPO/PATH[@REV], a Hugging Face, Civitai or ModelScope URL, civitai:VERSION_ID, or any URL with --sha256.", show_default=False)],
    dir: Annotated[Optional[Path], typer.Option("--dir", help="The install (default: . or ./stable-diffusion-webui); the installs beside it get the file too.")] = None,
    type: Annotated[Optional[str], typer.Option("--type", help="checkpoint, lora, vae, embedding, controlnet or upscaler (default: what the source says, else from the name).")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="The file name to save it under (default: the source's).")] = None,
    sha256: Annotated[Optional[str], typer.Option("--sha256", help="Expected sha256; required for a URL that is not on the Hub, Civitai or ModelScope.")] = None,
    mirror: MirrorOpt = None,
    proxy: ProxyOpt = None,
    connections: ConnectionsOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Download a model once through the mirrors, verify its sha256, and put it into the right folder of every installed UI (hard links).

    A Civitai token is read from CIVITAI_API_TOKEN and sent to Civitai only. Exit codes: 0 done, 2 bad input,
    3 network, 4 sha256 mismatch (nothing is left behind), 6 busy, 7 disk full, 130 interrupted (rerun to resume).
    """
    from sdsetup.commands import models as command

    run_command(
        "models add",
        lambda: command.add(_settings(mirror=mirror, proxy=proxy, connections=connections, config=config, quiet=quiet, debug=debug),
                            source, install_dir=dir, model_type=type, name=name, sha256=sha256),
        as_json=json,
        debug=debug,
    )


@models_app.command("list")
def models_list(
    dir: Annotated[Optional[Path], typer.Argument(help="The install (default: . or ./stable-diffusion-webui).")] = None,
    config: ConfigOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """List an install's model files by type, with size and hash state (from the hash cache: no hashing)."""
    from sdsetup.commands import models as command

    run_command("models list", lambda: command.list_models(_settings(config=config, debug=debug), dir), as_json=json, debug=debug)


# --- ext (issue 24) -------------------------------------------------------------------------------
ext_app = typer.Typer(help="Extensions and ComfyUI custom nodes: add one at a recorded commit with torch held, list, remove.", no_args_is_help=True)
app.add_typer(ext_app, name="ext")
ExtDirOpt = Annotated[Optional[Path], typer.Option("--dir", help="The install (default: . or ./stable-diffusion-webui).")]


@ext_app.command("add")
def ext_add(
    url: Annotated[str, typer.Argument(help="The extension's git URL, e.g. https://github.com/OWNER/REPO.", show_default=False)],
    dir: ExtDirOpt = None,
    commit: Annotated[Optional[str], typer.Option("--commit", help="The commit to check out (default: the newest, recorded).")] = None,
    skip_requirements: Annotated[bool, typer.Option("--skip-requirements", help="Add it without installing its requirements (when they conflict with the held packages).")] = False,
    mirror: MirrorOpt = None,
    proxy: ProxyOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Clone an extension through the github mirror at a recorded commit and install its requirements with torch, torchvision, xformers held.

    A requirement that would move a held package is reported before anything changes. Exit codes: 0 done,
    1 a conflict (nothing changed) or the folder exists, 2 bad input, 3 network, 5 git or pip failed.
    """
    from sdsetup.commands import ext as command

    run_command(
        "ext add",
        lambda: command.add(_settings(mirror=mirror, proxy=proxy, config=config, quiet=quiet, debug=debug), url, install_dir=dir,
                            commit=commit, skip_requirements=skip_requirements),
        as_json=json,
        debug=debug,
    )


@ext_app.command("list")
def ext_list(dir: ExtDirOpt = None, config: ConfigOpt = None, json: JsonOpt = False, debug: DebugOpt = False) -> None:
    """List the extensions (custom nodes) with their commits, and which sdsetup added."""
    from sdsetup.commands import ext as command

    run_command("ext list", lambda: command.list_ext(_settings(config=config, debug=debug), dir), as_json=json, debug=debug)


@ext_app.command("remove")
def ext_remove(
    name: Annotated[str, typer.Argument(help="The extension's folder name (see `sdsetup ext list`).", show_default=False)],
    dir: ExtDirOpt = None,
    config: ConfigOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Move an extension out of the web UI into .sdsetup/backups (its packages stay)."""
    from sdsetup.commands import ext as command

    run_command("ext remove", lambda: command.remove(_settings(config=config, debug=debug), name, install_dir=dir), as_json=json, debug=debug)


# --- update / rollback (issue 24) -------------------------------------------------------------------
@app.command()
def update(
    dir: Annotated[Optional[Path], typer.Argument(help="The install (default: . or ./stable-diffusion-webui).")] = None,
    to: Annotated[Optional[str], typer.Option("--to", help="Move the web UI to this branch, tag or commit.")] = None,
    manifest: Annotated[Optional[str], typer.Option("--manifest", help="Move the whole install to this manifest's pins (runs the install).")] = None,
    mirror: MirrorOpt = None,
    proxy: ProxyOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Snapshot the install (web UI commit, venv packages, extensions, launch block), then move it to a newer pin.

    Run it again after an interruption to continue. Exit codes: 0 done, 1 the new pin's requirements would move
    a held package (nothing changed), 2 bad input, 3 network, 5 git or pip failed, 6 busy.
    """
    from sdsetup.commands import update as command

    run_command("update", lambda: command.update(_settings(mirror=mirror, proxy=proxy, config=config, quiet=quiet, debug=debug), dir,
                                                 to=to, manifest=manifest), as_json=json, debug=debug)


@app.command()
def rollback(
    dir: Annotated[Optional[Path], typer.Argument(help="The install (default: . or ./stable-diffusion-webui).")] = None,
    snapshot: Annotated[Optional[str], typer.Argument(help="The snapshot to restore (default: the newest).")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the snapshots.")] = False,
    mirror: MirrorOpt = None,
    proxy: ProxyOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Restore a snapshot exactly: web UI commit, extensions, the venv's package set (from the local wheel cache where it can), launch block.

    Run it again after an interruption to continue. Exit codes: 0 done, 2 no such snapshot, 3 network, 5 git or pip failed, 6 busy.
    """
    from sdsetup.commands import update as command

    run_command("rollback", lambda: command.rollback(_settings(mirror=mirror, proxy=proxy, config=config, quiet=quiet, debug=debug), dir,
                                                     snapshot, list_only=list_), as_json=json, debug=debug)


# --- launch (issue 24) ----------------------------------------------------------------------------
@app.command()
def launch(
    dir: Annotated[Optional[Path], typer.Argument(help="The install (default: . or ./stable-diffusion-webui).")] = None,
    open_: Annotated[bool, typer.Option("--open", help="Open the browser when the web UI says it is ready.")] = False,
    config: ConfigOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Start the web UI with its launch files' environment, keep its console, and name the cause when it fails.

    Checks the port first. When the UI exits with an error or prints a fatal line, the doctor reads what it printed and
    the top finding and its fix are shown. Exit codes: 0 the UI exited cleanly, 1 port taken or the UI failed, 2 no install, 130 Ctrl-C.
    """
    from sdsetup.commands import launch as command

    run_command("launch", lambda: command.run(_settings(config=config, debug=debug), dir, open_browser=open_, as_json=json),
                as_json=json, debug=debug)


# --- gui (issue 25) ------------------------------------------------------------------------------
@app.command()
def gui(
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1 (default: any free one).")] = 0,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open the browser; just print the address.")] = False,
    proxy: ProxyOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Open a local web page with the same checks, install, verify and doctor as these commands.

    Listens on 127.0.0.1 only; the first line printed is the page's address with its secret token. Ctrl+C stops it.
    """
    from sdsetup.commands import gui as command

    run_command(
        "gui",
        lambda: command.run(_settings(proxy=proxy, config=config, debug=debug), port=port, open_browser=not no_browser, config=config),
        as_json=False,
        debug=debug,
    )


def _whole_summaries(typer_app: typer.Typer) -> None:
    """Plain help cuts a summary in a command list at the terminal's width ("RAM, disk,..."): give every
    command and group its whole first paragraph, which the help then wraps."""
    for info in typer_app.registered_commands:
        if info.short_help is None and info.callback is not None and info.callback.__doc__:
            info.short_help = " ".join(info.callback.__doc__.strip().split("\n\n")[0].split())
    for group in typer_app.registered_groups:
        group.short_help = group.typer_instance.info.help
        _whole_summaries(group.typer_instance)


_whole_summaries(app)


def main() -> None:
    # Typer rejects some mistakes before any command runs (a missing argument, an unknown option, a
    # value of the wrong type). They get the same `error:` + `hint:` lines as every other user mistake,
    # and with --json the one JSON document too.
    from sdsetup import i18n

    i18n.setup_console()  # a GBK or cp437 pipe must not crash on a character it lacks
    as_json = "--json" in sys.argv[1:]
    try:
        from sdsetup.settings import config_lang

        args = i18n.setup(sys.argv[1:], config_lang=config_lang)  # the language, before any help text is shown
    except Exception as exc:  # an unknown --lang: a usage error like any other
        from sdsetup.errors import SdsetupError
        from sdsetup.output import emit_error

        if not isinstance(exc, SdsetupError):
            raise
        emit_error("sdsetup", exc, as_json)
        sys.exit(2)
    try:
        if i18n.current() == i18n.ENGLISH:
            code = app(args=args, prog_name="sdsetup", standalone_mode=False)
        else:  # the same command tree with its help texts from the catalog
            command = typer.main.get_command(app)
            i18n.translate_help(command)
            code = command.main(args=args, prog_name="sdsetup", standalone_mode=False)
    except typer.TyperException as exc:  # Typer's usage errors; their message names the flag
        from sdsetup.errors import usage_error
        from sdsetup.output import emit_error

        if type(exc).__name__ == "NoArgsIsHelpError":  # `sdsetup` alone: the help is already printed
            sys.exit(2)
        path = getattr(getattr(exc, "ctx", None), "command_path", None) or "sdsetup"
        command = path.split(" ", 1)[1] if " " in path else path
        emit_error(command, usage_error(i18n.from_english(exc.format_message()), t("see `{path} --help`", path=path)), as_json)
        sys.exit(2)
    except typer.Abort:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
