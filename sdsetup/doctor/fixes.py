"""The fixes `sdsetup doctor DIR --fix` applies: plan them, show them, ask, apply them.

Planning probes the install (webui-user files, the venv, git config) and decides what each autofix
would change; a fix already in effect plans to nothing ("done"), so a second run is a no-op. Applying
backs up every file before it is edited (DIR/.sdsetup/backups/) and writes atomically; no fix
deletes anything the user made.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable
from urllib.parse import urlsplit

from sdsetup import children
from sdsetup.doctor import launch_files, webui_user
from sdsetup.doctor.kb import Autofix
from sdsetup.errors import SdsetupError
from sdsetup.fsutil import atomic_write_bytes
from sdsetup.gitops import GitRunner
from sdsetup.layout import InstallLayout

if TYPE_CHECKING:  # types only: importing these here would slow start-up or make a circle
    from sdsetup.detect.machine import MachineFacts
    from sdsetup.net.mirrors import MirrorPlan
    from sdsetup.settings import Settings

PIP_TIMEOUT = 3600  # torch is 2.5 GB
DEFAULT_HF_MIRROR = "https://hf-mirror.com"


# ------------------------------------------------------------------------------------------ manifest facts
# The CLIP archives, the setuptools pin and the torch/torchvision pairs are the manifests' (one source of
# truth): the install uses them, so the fix installs exactly what a fresh install would.


@dataclass(frozen=True)
class ManifestFacts:
    setuptools: str  # the build-tools step's setuptools requirement, e.g. setuptools==69.5.1
    clip: str  # CLIP's source archive URL
    open_clip: str
    torchvision_for: dict[str, str]  # torch version -> the torchvision every manifest pairs with it
    blackwell: tuple[str, str, str] | None  # (torch, torchvision, tag) of the manifest built for sm_120
    cuda_tags: dict[str, tuple[str, ...]]  # torch version -> its CUDA wheel tags, the manifest's default first


def _pins(packages: Iterable[str]) -> dict[str, str]:
    from packaging.requirements import Requirement

    pins = {}
    for text in packages:
        req = Requirement(text)
        exact = [spec.version for spec in req.specifier if spec.operator == "=="]
        if exact:
            pins[req.name.lower()] = exact[0]
    return pins


@functools.lru_cache(maxsize=8)
def manifest_facts(name: str | None = None) -> ManifestFacts:
    """What the fixes install, read from the install's manifest (default a1111) and the built-in ones."""
    from sdsetup.manifest import builtin_names, load_manifest

    main = load_manifest(name)
    steps = {step.name: step for step in main.pip}
    build = next((p for p in steps.get("build-tools", ()).packages if p.lower().startswith("setuptools")), None) \
        if "build-tools" in steps else None
    if not build or not steps.get("clip") or not steps.get("open_clip"):
        raise FixFailed(f"the manifest {main.name} names no setuptools pin or CLIP/open_clip archive")
    pairs: dict[str, str] = {}
    cuda_tags: dict[str, tuple[str, ...]] = {}
    blackwell = None
    for manifest in [main] + [load_manifest(n) for n in builtin_names() if n != main.name]:
        for torch in manifest.torch.values():
            pins = _pins(torch.packages)
            if "torch" in pins and torch.backend == "cuda" and torch.tags:
                cuda_tags.setdefault(pins["torch"], tuple(torch.tags))
            if "torch" in pins and "torchvision" in pins:
                pairs.setdefault(pins["torch"], pins["torchvision"])
                cc = torch.max_compute_capability
                if blackwell is None and cc and float(cc) >= 12.0 and torch.tags:
                    blackwell = (pins["torch"], pins["torchvision"], torch.tags[0])
    return ManifestFacts(build, steps["clip"].archives[0], steps["open_clip"].archives[0], pairs, blackwell, cuda_tags)


def _install_manifest(install_dir: Path) -> str | None:
    """The manifest the install was made from (its record), or None for the default."""
    try:
        from sdsetup.install_record import load_record

        record = load_record(install_dir)
    except Exception:  # no record, or a damaged one: the default manifest
        return None
    return getattr(record, "manifest", None) if record is not None else None


class FixFailed(Exception):
    pass


@dataclass
class Operation:
    summary: str
    kind: str  # edit | run | note
    path: Path | None = None
    old_text: str | None = None  # edit: what the file held when planned (None: it is created)
    new_text: str | None = None
    encoding: str = "utf-8"
    # edit: the webui-user change itself (webui_user.change's arguments), so a later fix in the same
    # run can make it on top of an earlier fix's edit of the same file
    flavour: str | None = None
    changes: dict[str, Any] | None = None
    argv: list[str] | None = None
    env: dict[str, str] | None = None
    timeout: float = PIP_TIMEOUT

    def to_json(self, redact: Callable[[str], str]) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "summary": redact(self.summary)}
        if self.path is not None:
            out["path"] = redact(str(self.path))
        if self.argv:
            out["command"] = [redact(a) for a in self.argv]
        return out


@dataclass
class PlannedFix:
    finding_ids: list[str]
    autofix: Autofix
    status: str  # ready | done | skip
    reason: str = ""
    operations: list[Operation] = field(default_factory=list)
    result: str | None = None  # applied | declined | failed (after apply)
    detail: str = ""
    backups: list[str] = field(default_factory=list)

    def to_json(self, redact: Callable[[str], str]) -> dict[str, Any]:
        return {
            "findings": self.finding_ids,
            "action": self.autofix.text,
            "status": self.status,
            "reason": redact(self.reason),
            "operations": [op.to_json(redact) for op in self.operations],
            "result": self.result,
            "detail": redact(self.detail),
            "backups": [redact(b) for b in self.backups],
        }


@dataclass
class FixContext:
    install_dir: Path
    settings: Settings
    system: str  # Windows | Linux | Darwin
    venv_python: Path | None
    facts: MachineFacts | None = None  # None when unknown
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    stamp: str = field(default_factory=lambda: time.strftime("%Y%m%d-%H%M%S"))
    written: dict[Path, str] = field(default_factory=dict)  # what this run wrote into each file


# ------------------------------------------------------------------------------------------ probes


def _read_text(path: Path) -> tuple[str | None, str]:
    """(text, encoding) of a webui-user file: UTF-8, else the Windows code pages people save it in."""
    if not path.is_file():
        return None, "utf-8"
    data = path.read_bytes()
    for encoding in ("utf-8", "gb18030", "cp1252", "latin-1"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"  # unreachable


def _targets(ctx: FixContext) -> list[tuple[Path, str, str | None, str]]:
    """The webui-user files to edit: the ones there are, else a new one for this OS."""
    found = []
    # A ComfyUI install starts from sdsetup's run_comfyui.sh/.bat: those are edited, never a webui-user
    # file ComfyUI would not read.
    comfy = launch_files.comfy_scripts(ctx.install_dir)
    for path in comfy or [ctx.install_dir / n for n in ("webui-user.bat", "webui-user.sh")]:
        name = path.name
        if path.is_file():
            text, encoding = _read_text(path)
            found.append((path, launch_files.flavour_of(name), text, encoding))
    if not found:
        name = "webui-user.bat" if ctx.system == "Windows" else "webui-user.sh"
        found.append((ctx.install_dir / name, webui_user.flavour_of(name), None, "utf-8"))
    return found


def _venv_run(python: Path, code: str, *args: str, timeout: float = 120) -> tuple[int, str]:
    try:
        result = children.run([str(python), "-c", code, *args], timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, str(exc)
    return result.returncode, result.stdout.strip() if result.returncode == 0 else (result.stderr.strip() or result.stdout.strip())


_VERSIONS = """
import json, sys
from importlib import metadata
out = {}
for name in sys.argv[1:]:
    try:
        out[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        out[name] = None
print(json.dumps(out))
"""

_IMPORTABLE = """
import importlib.util, json, sys
print(json.dumps({name: importlib.util.find_spec(name) is not None for name in sys.argv[1:]}))
"""


def _venv_json(python: Path, code: str, names: Iterable[str]) -> Any:
    """The JSON document `code` prints last in the venv, or None when it fails or prints none."""
    status, out = _venv_run(python, code, *names)
    if status != 0:
        return None
    try:
        return json.loads(out.splitlines()[-1])
    except (ValueError, IndexError):
        return None


def installed_versions(python: Path, names: Iterable[str]) -> dict[str, str | None] | None:
    return _venv_json(python, _VERSIONS, names)


def _importable(python: Path, names: Iterable[str]) -> dict[str, bool] | None:
    return _venv_json(python, _IMPORTABLE, names)


def _mirror_plan(settings: Settings) -> MirrorPlan:
    """The mirror plan from settings, or None when the mirrors module cannot give one."""
    try:
        from sdsetup.net.mirrors import select_mirrors

        return select_mirrors(settings)
    except Exception:  # a missing or broken mirror setup must not stop a local fix
        return None


def _pip_env(ctx: FixContext, plan, *, drop_socks: bool) -> dict[str, str]:
    env = dict(ctx.env)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    if plan is not None:
        env.update(plan.pip_env())
    if drop_socks:
        # pip itself cannot use a SOCKS proxy until PySocks is installed: install it without one.
        for name in ("ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "PIP_PROXY"):
            if env.get(name, "").lower().startswith("socks"):
                env.pop(name)
    return env


def _pip(ctx: FixContext, args: list[str], summary: str, *, drop_socks: bool = False, plan=None) -> Operation:
    assert ctx.venv_python is not None
    # Only a mirror replaces the index: otherwise pip keeps the user's own pip.ini / PIP_INDEX_URL.
    index = list(plan.pip_index_args()) if plan is not None and plan.mirrored("pypi") else []
    argv = [str(ctx.venv_python), "-m", "pip", "install", *args, *index]
    return Operation(summary, "run", argv=argv, env=_pip_env(ctx, plan, drop_socks=drop_socks))


# ------------------------------------------------------------------------------------------ planners


def _edits(ctx: FixContext, describe: str, **changes) -> list[Operation]:
    ops = []
    for path, flavour, text, encoding in _targets(ctx):
        try:
            new = launch_files.change(text, flavour, **changes)
        except ValueError as exc:  # a value a .bat file cannot hold
            raise FixFailed(str(exc)) from None
        if new != text:
            verb = "create" if text is None else "edit"
            ops.append(Operation(f"{verb} {path.name}: {describe}", "edit", path=path, old_text=text, new_text=new, encoding=encoding,
                                 flavour=flavour, changes=changes))
    return ops


def plan_set_env(ctx: FixContext, args: tuple[str, ...]) -> tuple[str, str, list[Operation]]:
    pairs = dict(arg.split("=", 1) for arg in args)
    ops = _edits(ctx, "set " + ", ".join(f"{k}={v}" for k, v in pairs.items()), set_env=pairs)
    return ("ready", "", ops) if ops else ("done", "already set in webui-user", [])


def plan_add_args(ctx: FixContext, args: tuple[str, ...]) -> tuple[str, str, list[Operation]]:
    ops = _edits(ctx, "add " + " ".join(args) + " to COMMANDLINE_ARGS", add_args=list(args))
    return ("ready", "", ops) if ops else ("done", f"{' '.join(args)} already in COMMANDLINE_ARGS", [])


def plan_swap_args(ctx: FixContext, args: tuple[str, ...]) -> tuple[str, str, list[Operation]]:
    old, new = args
    ops = []
    for path, flavour, text, encoding in _targets(ctx):
        if text is not None and old in launch_files.effective_args(text, flavour):
            swap = {"remove_args": [old], "add_args": [new]}
            changed = launch_files.change(text, flavour, **swap)
            ops.append(Operation(f"edit {path.name}: replace {old} with {new} in COMMANDLINE_ARGS", "edit", path=path,
                                 old_text=text, new_text=changed, encoding=encoding, flavour=flavour, changes=swap))
    if ops:
        return "ready", "", ops
    return "skip", f"{old} is not in webui-user's COMMANDLINE_ARGS; where you pass it, replace it with {new}", []


def plan_vram_flags(ctx: FixContext, args: tuple[str, ...]) -> tuple[str, str, list[Operation]]:
    ops = []
    for path, flavour, text, encoding in _targets(ctx):
        current = launch_files.effective_args(text, flavour) if text is not None else []
        if "--lowvram" in current:
            continue
        if "--medvram" in current:
            change = {"remove_args": ["--medvram"], "add_args": ["--lowvram"]}
            describe = "replace --medvram with --lowvram"
        else:
            change = {"add_args": ["--medvram"]}
            describe = "add --medvram"
        new = launch_files.change(text, flavour, **change)
        ops.append(Operation(f"{'create' if text is None else 'edit'} {path.name}: {describe}", "edit", path=path,
                             old_text=text, new_text=new, encoding=encoding, flavour=flavour, changes=change))
    if ops:
        return "ready", "", ops
    return "skip", "--lowvram is already set, the lowest setting: generate smaller images or use a smaller model", []


def plan_hf_mirror(ctx: FixContext, args: tuple[str, ...]) -> tuple[str, str, list[Operation]]:
    endpoint = DEFAULT_HF_MIRROR
    plan = _mirror_plan(ctx.settings)
    if plan is not None and plan.mirrored("huggingface"):
        endpoint = plan.hf_endpoint
    ops = _edits(ctx, f"set HF_ENDPOINT={endpoint}, HF_HUB_DISABLE_XET=1",
                 set_env={"HF_ENDPOINT": endpoint, "HF_HUB_DISABLE_XET": "1"})
    if ops:
        return "ready", "", ops
    return "skip", f"HF_ENDPOINT already points at {endpoint}; if it still fails, use a proxy or `sdsetup install DIR`", []


def _need_venv(ctx: FixContext) -> str | None:
    if ctx.venv_python is None or not ctx.venv_python.exists():
        return "the web UI's venv was not found (DIR/venv); launch the web UI once or run `sdsetup install DIR`"
    return None


def webui_pins(install_dir: Path) -> dict[str, str]:
    """The exact pins of the web UI's own requirements_versions.txt (what its launch.py installs), by name."""
    path = install_dir / "requirements_versions.txt"
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return {}
    from packaging.requirements import InvalidRequirement

    texts = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            texts.append(line)
    pins: dict[str, str] = {}
    for text in texts:
        try:
            pins.update(_pins([text]))
        except InvalidRequirement:
            continue
    return {_canonical(k): v for k, v in pins.items()}


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _follow_webui_pins(requirements: list, pins: dict[str, str]) -> list:
    """An entry's exact pin gives way to the checkout's own pin of the same package: the entry's version is
    the one that fixed the web UI of its thread, and installing it into a newer checkout (A1111 1.10 pins
    fastapi 0.94.0, the fix for old versions is 0.90.1) would downgrade what that checkout needs."""
    from packaging.requirements import Requirement

    out = []
    for req in requirements:
        exact = [spec.version for spec in req.specifier if spec.operator == "=="]
        pinned = pins.get(_canonical(req.name))
        if exact and pinned and pinned != exact[0]:
            req = Requirement(f"{req.name}=={pinned}")
        out.append(req)
    return out


def plan_pip_install(ctx: FixContext, args: tuple[str, ...]) -> tuple[str, str, list[Operation]]:
    from packaging.requirements import Requirement

    missing = _need_venv(ctx)
    if missing:
        return "skip", missing, []
    requirements = _follow_webui_pins([Requirement(a) for a in args], webui_pins(ctx.install_dir))
    versions = installed_versions(ctx.venv_python, [r.name for r in requirements]) or {}
    wanted = [str(r) for r in requirements if not versions.get(r.name) or not r.specifier.contains(versions[r.name], prereleases=True)]
    if not wanted:
        return "done", "already installed: " + ", ".join(f"{r.name} {versions[r.name]}" for r in requirements), []
    drop_socks = any(r.name.lower() in ("pysocks", "socksio") for r in requirements)
    return "ready", "", [_pip(ctx, wanted, f"pip install {' '.join(wanted)} into the web UI's venv", drop_socks=drop_socks,
                              plan=_mirror_plan(ctx.settings))]


def plan_reinstall_clip(ctx: FixContext, args: tuple[str, ...]) -> tuple[str, str, list[Operation]]:
    missing = _need_venv(ctx)
    if missing:
        return "skip", missing, []
    present = _importable(ctx.venv_python, ["clip", "open_clip"]) or {}
    if present.get("clip") and present.get("open_clip"):
        return "done", "CLIP and open_clip are installed in the venv", []
    env = {}
    for path, flavour, text, _ in _targets(ctx):
        if text is not None:
            env.update(launch_files.effective_env(text, flavour))
    plan = _mirror_plan(ctx.settings)
    facts = manifest_facts(_install_manifest(ctx.install_dir))
    ops = [_pip(ctx, [facts.setuptools, "wheel"], f"pip install {facts.setuptools} wheel (setuptools that still has pkg_resources)", plan=plan)]
    for module, variable, default in (("clip", "CLIP_PACKAGE", facts.clip), ("open_clip", "OPENCLIP_PACKAGE", facts.open_clip)):
        if not present.get(module):
            package = env.get(variable) or default
            if plan is not None and package.startswith("https://"):
                package = plan.file_urls(package)[0]
            ops.append(_pip(ctx, ["--no-build-isolation", package], f"pip install --no-build-isolation {module}", plan=plan))
    return "ready", "", ops


def choose_torch_build(installed_torch: str, installed_vision: str | None, cuda_driver_version: str | None,
                       compute_capability: str | None) -> tuple[str, str, str]:
    """(torch, torchvision, tag) to install for this NVIDIA card (pure; tested by table).

    Keeps the installed versions and changes only the build, except on Blackwell (sm_100/sm_120),
    which needs torch 2.7 with CUDA 12.8.
    """
    from sdsetup.detect.recommend import ALL_CUDA_TAGS, cuda_tag_for_driver, is_blackwell
    from sdsetup.versions import version_tuple

    facts = manifest_facts()
    base = installed_torch.split("+", 1)[0]
    vision = (installed_vision or "").split("+", 1)[0] or facts.torchvision_for.get(base, "")
    if is_blackwell(compute_capability) and facts.blackwell and (version_tuple(base) or (0,)) < version_tuple(facts.blackwell[0]):
        return facts.blackwell
    available = facts.cuda_tags.get(base) or ALL_CUDA_TAGS
    default = available[0] if base in facts.cuda_tags else facts.cuda_tags[next(iter(facts.cuda_tags))][0]
    return base, vision, cuda_tag_for_driver(cuda_driver_version, compute_capability, available=available, default=default)


def plan_torch_cuda(ctx: FixContext, args: tuple[str, ...]) -> tuple[str, str, list[Operation]]:
    missing = _need_venv(ctx)
    if missing:
        return "skip", missing, []
    if ctx.facts is None:
        return "skip", "the GPU could not be probed (see `sdsetup check`)", []
    nvidia = [gpu for gpu in ctx.facts.gpus if gpu.vendor == "nvidia"]
    if not nvidia:
        return ("skip", "no NVIDIA GPU found: the CUDA build cannot help; to run on the CPU add "
                "--use-cpu all --precision full --no-half --skip-torch-cuda-test", [])
    gpu = max(nvidia, key=lambda g: g.vram_total_bytes or 0)
    versions = installed_versions(ctx.venv_python, ["torch", "torchvision"]) or {}
    if not versions.get("torch"):
        return "skip", "torch is not installed in the venv; launching the web UI installs it", []
    torch_version, vision, tag = choose_torch_build(versions["torch"], versions.get("torchvision"), gpu.cuda_driver_version,
                                                    gpu.compute_capability)
    if versions["torch"] == f"{torch_version}+{tag}":
        return ("skip", f"torch {versions['torch']} is already the right CUDA build; update the NVIDIA driver "
                f"(yours: {gpu.driver_version or 'unknown'}) and check `nvidia-smi`", [])
    plan = _mirror_plan(ctx.settings)
    torch_index = list(plan.torch_index_args(tag)) if plan is not None else ["--extra-index-url", f"https://download.pytorch.org/whl/{tag}"]
    wanted = [f"torch=={torch_version}+{tag}"] + ([f"torchvision=={vision}+{tag}"] if vision else [])
    op = _pip(ctx, [*wanted, *torch_index], f"pip install {' '.join(wanted)} (CUDA build for {gpu.name})", plan=plan)
    command = "pip install " + " ".join([*wanted, *torch_index])
    ops = [op] + _edits(ctx, "set TORCH_COMMAND so a later --reinstall-torch keeps this build", set_env={"TORCH_COMMAND": command})
    return "ready", "", ops


def plan_git_safe_directory(ctx: FixContext, args: tuple[str, ...]) -> tuple[str, str, list[Operation]]:
    from sdsetup.doctor.repos import install_repo_states, safe_directory_owners, safe_directory_requests

    git = shutil.which("git")
    if not git:
        return "skip", "git is not installed", []
    states = install_repo_states(ctx.install_dir)
    paths = safe_directory_requests(states)
    if not paths:
        return "done", "git accepts every repository in the install", []
    owners = safe_directory_owners(states)
    ops, warnings = [], []
    for p in paths:
        summary = f"git config --global --add safe.directory {p}"
        if p in owners:
            # Trusting a repository another account controls lets its .git/config (fsmonitor, hooks,
            # aliases) run commands as this user: say whose it is before the user agrees.
            owner, user = owners[p]
            warning = (f"WARNING: {p} belongs to '{owner}', not to you ('{user}'); once trusted, git runs that "
                       f"account's repository settings and hooks as you. Agree only if you trust '{owner}', "
                       "or take ownership of the folder instead")
            summary += f"\n    {warning}"
            warnings.append(warning)
        ops.append(Operation(summary, "run", argv=[git, "config", "--global", "--add", "safe.directory", p],
                             env=dict(ctx.env), timeout=60))
    return "ready", "; ".join(warnings), ops


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def plan_unset_git_proxy(ctx: FixContext, args: tuple[str, ...]) -> tuple[str, str, list[Operation]]:
    git = shutil.which("git")
    if not git:
        return "skip", "git is not installed", []
    ops: list[Operation] = []
    answering = []
    for key in ("http.proxy", "https.proxy"):
        try:
            result = GitRunner(git=git, env=ctx.env).run(["config", "--global", "--get", key], check=False, timeout=30)
        except (OSError, SdsetupError):
            continue
        value = result.stdout.strip()
        if result.returncode != 0 or not value:
            continue
        parts = urlsplit(value if "://" in value else f"http://{value}")
        try:
            port = parts.port
        except ValueError:
            port = None
        if parts.hostname not in ("127.0.0.1", "localhost", "::1") or not port:
            continue
        if _port_open(parts.hostname, port):
            answering.append(f"{parts.hostname}:{port}")
            continue
        backup = InstallLayout(ctx.install_dir).backups / f"git-{key.replace('.', '-')}.{ctx.stamp}.txt"
        ops.append(Operation(f"save the old {key} value to {backup.name}", "note", path=backup,
                             new_text=f"# git config --global {key} before `sdsetup doctor --fix`; restore with:\n"
                                      f"# git config --global {key} <value below>\n{value}\n"))
        ops.append(Operation(f"git config --global --unset {key} (nothing answers on {parts.hostname}:{port})", "run",
                             argv=[git, "config", "--global", "--unset", key], env=dict(ctx.env), timeout=60))
    if ops:
        return "ready", "", ops
    if answering:
        return "skip", f"the proxy at {', '.join(answering)} answers now; start the run again", []
    return ("skip", "git's global config has no local proxy; check HTTP_PROXY/HTTPS_PROXY and that your proxy app is running", [])


PLANNERS: dict[str, Callable[[FixContext, tuple[str, ...]], tuple[str, str, list[Operation]]]] = {
    "set_env": plan_set_env,
    "add_args": plan_add_args,
    "swap_args": plan_swap_args,
    "vram_flags": plan_vram_flags,
    "pip_install": plan_pip_install,
    "reinstall_clip": plan_reinstall_clip,
    "torch_cuda": plan_torch_cuda,
    "hf_mirror": plan_hf_mirror,
    "git_safe_directory": plan_git_safe_directory,
    "unset_git_proxy": plan_unset_git_proxy,
}


def plan_fixes(ctx: FixContext, wanted: Iterable[tuple[str, Autofix]]) -> list[PlannedFix]:
    """One plan per distinct autofix, in the order of the findings that asked for it."""
    plans: dict[str, PlannedFix] = {}
    for finding_id, autofix in wanted:
        if autofix.text in plans:
            plans[autofix.text].finding_ids.append(finding_id)
            continue
        try:
            status, reason, ops = PLANNERS[autofix.action](ctx, autofix.args)
        except FixFailed as exc:
            status, reason, ops = "skip", str(exc), []
        plans[autofix.text] = PlannedFix([finding_id], autofix, status, reason, ops)
    return list(plans.values())


# ------------------------------------------------------------------------------------------ apply


def _backup(ctx: FixContext, path: Path) -> Path:
    folder = InstallLayout(ctx.install_dir).backups
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{path.name}.{ctx.stamp}"
    counter = 1
    while target.exists():
        target = folder / f"{path.name}.{ctx.stamp}-{counter}"
        counter += 1
    shutil.copy2(path, target)
    return target


def _apply(op: Operation, ctx: FixContext, plan: PlannedFix) -> None:
    if op.kind == "edit":
        assert op.path is not None and op.new_text is not None
        current, _ = _read_text(op.path)
        new_text = op.new_text
        if current != op.old_text:
            # An earlier fix of this run edited the file: make this change on top of that edit. Any
            # other change is the user's, made while the doctor ran: leave the file alone.
            if current is None or ctx.written.get(op.path) != current or op.changes is None or op.flavour is None:
                raise FixFailed(f"{op.path.name} changed while the doctor was running; run `sdsetup doctor --fix` again")
            new_text = launch_files.change(current, op.flavour, **op.changes)
            if new_text == current:
                return
        if op.path.exists():
            plan.backups.append(str(_backup(ctx, op.path)))
        atomic_write_bytes(op.path, new_text.encode(op.encoding))
        ctx.written[op.path] = new_text
        if op.changes:  # the next `sdsetup install` rewrites its block: it must keep this change
            from sdsetup.install import launch_overrides

            words = launch_files.comfy_flags if op.flavour and op.flavour.startswith("comfy-") else list  # the UI's own flags
            launch_overrides.record(ctx.install_dir, add_args=words(op.changes.get("add_args", ())),
                                    remove_args=words(op.changes.get("remove_args", ())), set_env=op.changes.get("set_env"))
    elif op.kind == "note":
        assert op.path is not None and op.new_text is not None
        atomic_write_bytes(op.path, op.new_text.encode("utf-8"))
        plan.backups.append(str(op.path))
    else:
        assert op.argv
        try:
            result = children.run(op.argv, env=op.env, timeout=op.timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise FixFailed(f"{op.summary}: {exc}") from None
        if result.returncode != 0:
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-6:])
            raise FixFailed(f"{op.summary}: exited with {result.returncode}\n{tail}")


def apply_fixes(plans: list[PlannedFix], ctx: FixContext, confirm: Callable[[PlannedFix], bool]) -> None:
    """Apply each ready plan the user confirms; record the result on the plan."""
    for plan in plans:
        if plan.status != "ready":
            continue
        if not confirm(plan):
            plan.result = "declined"
            continue
        try:
            for op in plan.operations:
                _apply(op, ctx, plan)
        except (FixFailed, OSError) as exc:
            plan.result = "failed"
            plan.detail = str(exc)
            continue
        plan.result = "applied"
