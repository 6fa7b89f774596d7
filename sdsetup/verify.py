"""Verify an install against its record, and run the smoke test in the web UI's venv.

Two entry points (contract in docs/ARCHITECTURE.md, protocol in docs/verify.md):
- `run_smoke(python, ...) -> dict`: start runtime/smoke.py with that Python and return its JSON
  document (plus `exit_code`, `stderr_tail`, `argv`); never raises for a failed smoke test.
- `verify_install(settings, install_dir, ...) -> dict`: every check as an item
  `{id, name, status, value, fix}`, then the smoke test in the install's venv.

The decisions (is this torch right for this machine, are these launch flags right, what does this
smoke document mean) are pure functions below the effects, tested by tables.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.i18n import Msg, t
from sdsetup.layout import HASH_CACHE_REL  # shared with install, which remembers what it downloaded

SMOKE_TIMEOUT_TINY = 900.0  # first CUDA init and the one-time tiny-model build can be slow
SMOKE_TIMEOUT_CHECKPOINT = 3 * 3600.0  # 20 steps at 512x512 on a slow CPU takes a long while
CLIP_REPO = "openai/clip-vit-large-patch14"
WEBUI_PRECISION_FLAGS = ("--no-half", "--no-half-vae", "--upcast-sampling")
MEMORY_FLAGS = ("--lowvram", "--medvram")

# ----------------------------------------------------------------------------------------- runtime


def runtime_dir() -> Path:
    """Where runtime/smoke.py lives: `runtime/` in a checkout, `sdsetup/runtime/` in a wheel."""
    import importlib.util

    spec = importlib.util.find_spec("sdsetup.runtime")
    if spec is None or not spec.submodule_search_locations:
        raise SdsetupError(t("sdsetup's runtime files are missing (sdsetup.runtime)"), t("reinstall sdsetup"),
                           ExitCode.INTERNAL)
    return Path(list(spec.submodule_search_locations)[0])


def run_smoke(
    python: str | os.PathLike,
    *,
    checkpoint: Path | None = None,
    out: Path | None = None,
    hf_home: Path | None = None,
    cache_dir: Path | None = None,
    seed: int = 0,
    steps: int | None = None,
    size: int | None = None,
    device: str = "auto",
    webui_flags: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    progress: bool = False,
    info: bool = False,
) -> dict[str, Any]:
    """Run the smoke test with `python`; its JSON document with `exit_code`, `stderr_tail`, `argv`.

    A Python that does not start, a crash without JSON, or a timeout are reported in the same
    shape (`ok: false`, `error: {kind, message, fix}`), so callers handle one thing.
    `webui_flags`: the web UI's precision flags (--no-half, --no-half-vae, --upcast-sampling) to honour.
    `info`: only import torch and report what it sees (about a second; no image).
    """
    argv = [str(python), str(runtime_dir() / "smoke.py"), "--seed", str(seed), "--device", device]
    if info:
        argv.append("--info")
    for flag, value in (("--checkpoint", checkpoint), ("--out", out), ("--hf-home", hf_home), ("--cache-dir", cache_dir)):
        if value is not None:
            argv += [flag, str(Path(value).expanduser().absolute())]
    for flag, number in (("--steps", steps), ("--size", size)):
        if number is not None:
            argv += [flag, str(int(number))]
    argv += [flag for flag in webui_flags if flag in WEBUI_PRECISION_FLAGS]
    child_env = dict(os.environ if env is None else env)
    child_env.update({"PYTHONIOENCODING": "utf-8", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    timeout = timeout or (SMOKE_TIMEOUT_CHECKPOINT if checkpoint else SMOKE_TIMEOUT_TINY)
    started = time.perf_counter()
    try:
        from sdsetup import children

        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=child_env,
                                   **children.popen_kwargs())
        child_record = children.adopt(process, argv)
    except OSError as exc:
        return _smoke_failure(argv, "python_missing", t("cannot start {python}: {error}", python=python, error=exc.strerror or exc),
                              t("give the web UI venv's Python with --python, or rerun `sdsetup install DIR` to recreate the venv"))
    tail: deque[str] = deque(maxlen=40)

    def pump_stderr() -> None:
        for raw in iter(process.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            tail.append(line)
            if progress and line:
                sys.stderr.write(t("  smoke | {line}\n", line=line))
                sys.stderr.flush()

    chunks: list[bytes] = []

    def pump_stdout() -> None:
        chunks.append(process.stdout.read())

    # Both pipes are read by threads of ours: communicate() would also read stderr and race the pump.
    readers = [threading.Thread(target=pump_stderr, daemon=True), threading.Thread(target=pump_stdout, daemon=True)]
    for reader in readers:
        reader.start()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        children.stop(process)
        for reader in readers:
            reader.join(5)
        return _smoke_failure(argv, "timeout", t("the smoke test did not finish within {timeout:.0f} s", timeout=timeout),
                              t("run it again with --debug to watch its output; a first CUDA start can take minutes"), tail)
    except BaseException:  # Ctrl-C: the smoke child's group goes too
        children.stop(process)
        raise
    finally:
        children.release(child_record)
    for reader in readers:
        reader.join(5)
    stdout = b"".join(chunks)
    wall = time.perf_counter() - started
    try:
        document = json.loads(stdout.decode("utf-8", "replace"))
        if not isinstance(document, dict) or "ok" not in document:
            raise ValueError("not a smoke document")
    except ValueError:
        return _smoke_failure(
            argv, "crashed", t("the smoke test ended (exit code {returncode}) without its JSON answer: {line}",
                               returncode=process.returncode, line=_last_error_line(tail)),
            t("the Python or torch in this venv is broken; see the lines above, or `sdsetup doctor` with them"), tail,
            exit_code=process.returncode,
        )
    document["exit_code"] = process.returncode
    document["stderr_tail"] = list(tail)
    document["argv"] = argv
    document["wall_seconds"] = round(wall, 4)
    if process.returncode != 0 and document.get("ok"):
        document["ok"] = False  # an answer that says ok with a failing exit code is not ok
    return document


def _last_error_line(lines: Iterable[str]) -> str:
    kept = [line for line in lines if line.strip()]
    return kept[-1][:300] if kept else t("no output")


def _smoke_failure(argv, kind, message, fix, tail=(), exit_code=None) -> dict[str, Any]:
    return {"ok": False, "error": {"kind": kind, "message": message, "fix": fix}, "exit_code": exit_code,
            "stderr_tail": list(tail), "argv": argv}


# ------------------------------------------------------------------------ pure: smoke and torch


def torch_build(doc: Mapping[str, Any]) -> str | None:
    """cuda | rocm | mps | cpu for the torch the smoke test imported (None when it did not import)."""
    if not doc.get("torch"):
        return None
    if doc.get("torch_cuda"):
        return "cuda"
    if doc.get("torch_hip"):
        return "rocm"
    if doc.get("mps_available"):
        return "mps"
    return "cpu"


def smoke_item(doc: Mapping[str, Any], *, item_id: str = "smoke", name: str | None = None) -> dict[str, Any]:
    """One item from a smoke document: what ran where and how fast, or what failed and the fix."""
    name = name or t("smoke test")
    if doc.get("ok"):
        timings = doc.get("timings") or {}
        model = (doc.get("model") or {}).get("kind", "tiny")
        run = dict(device=doc.get("device_name") or doc.get("device"), dtype=doc.get("dtype"), steps=doc.get("steps"),
                   width=doc.get("width"), height=doc.get("height"), seconds=timings.get("steps", 0),
                   per_step=doc.get("seconds_per_step") or 0, total=doc.get("seconds_total", 0))
        if model == "tiny":
            value = t("tiny model on {device} {dtype}: {steps} steps {width}x{height} in {seconds:.2f} s "
                      "({per_step:.3f} s/step), {total:.1f} s in all", **run)
        else:
            value = t("{checkpoint} on {device} {dtype}: {steps} steps {width}x{height} in {seconds:.2f} s "
                      "({per_step:.3f} s/step), {total:.1f} s in all",
                      checkpoint=Path(str((doc.get("model") or {}).get("path", "checkpoint"))).name, **run)
        if doc.get("peak_vram_bytes"):
            from sdsetup.fsutil import human_bytes

            value = t("{summary}, peak VRAM {vram}", summary=value, vram=human_bytes(doc["peak_vram_bytes"]))
        if doc.get("image"):
            value = t("{summary}; image {image}", summary=value, image=doc["image"])
        return {"id": item_id, "name": name, "status": "ok", "value": value, "fix": None}
    error = doc.get("error") or {}
    fix = error.get("fix") or t("run `sdsetup doctor` with the output above")
    item = {"id": item_id, "name": name, "status": "fail", "value": error.get("message") or t("failed"), "fix": fix,
            "kind": error.get("kind")}
    if error.get("fix_flags"):
        item["fix_flags"] = list(error["fix_flags"])
    return item


def torch_item(
    doc: Mapping[str, Any],
    expected_backend: str | None,
    *,
    gpu_name: str | None = None,
    fix_command: str | None = None,
    driver_problem: str | None = None,
) -> dict[str, Any]:
    """Does the venv's torch match the hardware? `expected_backend` comes from the machine facts."""
    item = {"id": "torch", "name": t("torch backend"), "status": "ok", "value": "", "fix": None}
    build = torch_build(doc)
    reinstall = t("reinstall torch for this machine: {command}", command=fix_command) if fix_command \
        else t("rerun `sdsetup install DIR`")
    if build is None:
        error = (doc.get("error") or {}).get("message") or t("torch did not import")
        return dict(item, status="fail", value=error, fix=reinstall)
    version = doc["torch"]
    value = {"cuda": lambda: t("torch {version} (CUDA {cuda} build)", version=version, cuda=doc.get("torch_cuda")),
             "rocm": lambda: t("torch {version} (ROCm {rocm} build)", version=version, rocm=doc.get("torch_hip")),
             "mps": lambda: t("torch {version} (Metal build)", version=version),
             "cpu": lambda: t("torch {version} (CPU-only build)", version=version)}[build]()
    sees = doc.get("gpu", {}) or {}
    if expected_backend is None:
        return dict(item, status="info", value=t("{torch}; machine facts unknown, not compared", torch=value))
    if expected_backend in ("cuda", "rocm"):
        gpu = gpu_name or (t("an NVIDIA GPU") if expected_backend == "cuda" else t("an AMD GPU"))
        if build != expected_backend and build != "mps":
            return dict(item, status="fail",
                        value=t("{torch}, but this machine has {gpu}: the web UI would stop with 'Torch is not able to use GPU' "
                                "or run on the CPU", torch=value, gpu=gpu),
                        fix=reinstall)
        if not doc.get("cuda_available"):
            why = driver_problem or (doc.get("cuda_error") or t("the driver did not answer torch"))
            return dict(item, status="fail", value=t("{torch} cannot use {gpu}: {why}", torch=value, gpu=gpu, why=why),
                        fix=t("update the GPU driver (or install a torch build for an older CUDA: {command})",
                              command=fix_command or "sdsetup install DIR"))
        return dict(item, value=t("{torch} uses {gpu}", torch=value, gpu=sees.get("name") or gpu))
    if expected_backend == "mps":
        if not doc.get("mps_available"):
            return dict(item, status="fail", value=t("{torch} cannot use the Apple GPU (MPS)", torch=value), fix=reinstall)
        return dict(item, value=t("{torch} uses the Apple GPU (MPS)", torch=value))
    # expected cpu
    if build in ("cuda", "rocm") and not doc.get("cuda_available"):
        return dict(item, status="warn", value=t("{torch} on a machine without a usable GPU: it runs on the CPU", torch=value),
                    fix=t("fine to keep; a CPU build is ~2 GB smaller: {reinstall}", reinstall=reinstall))
    return dict(item, value=value)


def _use_cpu_targets(args: Sequence[str]) -> list[str]:
    targets: list[str] = []
    for index, arg in enumerate(args):
        if arg == "--use-cpu":
            for value in args[index + 1:]:
                if value.startswith("--"):
                    break
                targets.append(value.lower())
        elif arg.startswith("--use-cpu="):
            targets += arg.split("=", 1)[1].lower().split(",")
    return targets


def launch_args_item(
    args: Sequence[str],
    backend: str | None,
    *,
    source: str,
    gpu_name: str | None = None,
    vram_flags: Sequence[str] = (),
    upcast_card: bool = False,
) -> dict[str, Any]:
    """Are the web UI's COMMANDLINE_ARGS consistent with the machine? One item, worst finding first.

    `vram_flags`: the memory flag the machine's VRAM tier calls for (detect.recommend.vram_tier).
    """
    item = {"id": "webui-user", "name": t("launch flags"), "status": "ok", "fix": None}
    shown = " ".join(args) or t("(none)")
    fails: list[tuple[str, str]] = []
    warns: list[tuple[str, str]] = []
    cpu_targets = _use_cpu_targets(args)
    if backend is None:
        return dict(item, status="info", value=t("{flags} (machine facts unknown, not compared)", flags=shown))
    if backend in ("cuda", "rocm", "mps"):
        gpu = gpu_name or t("a GPU")
        if "all" in cpu_targets or "sd" in cpu_targets:
            fails.append((t("--use-cpu {targets} makes the web UI generate on the CPU although {gpu} is here",
                            targets=" ".join(cpu_targets), gpu=gpu),
                          t("edit COMMANDLINE_ARGS in {source}: remove --use-cpu (keep `--use-cpu interrogate` only on macOS)",
                            source=source)))
        if "--skip-torch-cuda-test" in args and backend == "cuda":
            warns.append((t("--skip-torch-cuda-test hides a torch that cannot use the GPU (the web UI then runs on the CPU)"),
                          t("edit COMMANDLINE_ARGS in {source}: remove --skip-torch-cuda-test once `sdsetup verify` passes",
                            source=source)))
        if backend == "cuda" and not upcast_card and ("--no-half" in args or _precision_full(args)):
            warns.append((t("--no-half / --precision full on this card doubles VRAM use and slows generation"),
                          t("edit COMMANDLINE_ARGS in {source}: remove --no-half and --precision full "
                            "(add --no-half-vae if images turn black)", source=source)))
        tier_flag = next((flag for flag in vram_flags if flag in MEMORY_FLAGS), None)
        present = [flag for flag in MEMORY_FLAGS if flag in args]
        if tier_flag == "--lowvram" and not present:
            fails.append((t("{gpu} has too little VRAM for SD without --lowvram: it will run out of memory", gpu=gpu),
                          t("edit COMMANDLINE_ARGS in {source}: add {flag}", source=source, flag="--lowvram")))
        elif tier_flag and tier_flag not in args and not (tier_flag == "--medvram" and "--lowvram" in args):
            warns.append((t("{gpu}'s VRAM calls for {flag}", gpu=gpu, flag=tier_flag),
                          t("edit COMMANDLINE_ARGS in {source}: add {flag}", source=source, flag=tier_flag)))
    elif backend == "cpu":
        if "--skip-torch-cuda-test" not in args:
            fails.append((t("no usable GPU and no --skip-torch-cuda-test: the web UI stops with 'Torch is not able to use GPU'"),
                          t("edit COMMANDLINE_ARGS in {source}: add --skip-torch-cuda-test "
                            "(CPU only: --use-cpu all --precision full --no-half --skip-torch-cuda-test)", source=source)))
        if "--no-half" not in args and not _precision_full(args):
            fails.append((t("no --no-half on a CPU-only machine: half precision fails on the CPU"),
                          t("edit COMMANDLINE_ARGS in {source}: add {flag}", source=source, flag="--no-half --precision full")))
    if fails:
        return dict(item, status="fail", value=t("{flags}: {problems}", flags=shown,
                                                 problems="; ".join(message for message, _ in fails + warns)),
                    fix="\n".join(fix for _, fix in fails + warns))
    if warns:
        return dict(item, status="warn", value=t("{flags}: {problems}", flags=shown, problems="; ".join(message for message, _ in warns)),
                    fix="\n".join(fix for _, fix in warns))
    return dict(item, value=t("{flags} (consistent with {machine})", flags=shown, machine=gpu_name or backend))


def _precision_full(args: Sequence[str]) -> bool:
    return "--precision=full" in args or any(a == "--precision" and b == "full" for a, b in zip(args, args[1:]))


def smoke_options_from_args(args: Sequence[str]) -> dict[str, Any]:
    """The smoke test runs as the web UI would: its precision flags, and the CPU when told to."""
    options: dict[str, Any] = {"webui_flags": [flag for flag in WEBUI_PRECISION_FLAGS if flag in args]}
    if _precision_full(args) and "--no-half" not in options["webui_flags"]:
        options["webui_flags"].append("--no-half")
    targets = _use_cpu_targets(args)
    if "all" in targets or "sd" in targets:
        options["device"] = "cpu"
    return options


def file_item(item_id: str, name: str, *, expected_size: int | None, expected_sha256: str | None,
              exists: bool, size: int | None, sha256: str | None, cached: bool, fix_missing: str, fix_bad: str) -> dict[str, Any]:
    """Present, complete, and the exact bytes the record names?"""
    from sdsetup.fsutil import human_bytes

    item = {"id": item_id, "name": name, "status": "ok", "fix": None}
    if not exists:
        return dict(item, status="fail", value=t("missing"), fix=fix_missing)
    if expected_size is not None and size != expected_size:
        return dict(item, status="fail", value=t("{size} ({bytes} bytes), expected {expected} bytes: incomplete or a different file",
                                                 size=human_bytes(size), bytes=size, expected=expected_size),
                    fix=fix_bad)
    if expected_sha256 and sha256 and sha256.lower() != expected_sha256.lower():
        return dict(item, status="fail", value=t("sha256 {sha256}…, expected {expected}…: damaged or a different file",
                                                 sha256=sha256[:12], expected=expected_sha256[:12]),
                    fix=fix_bad)
    if not expected_sha256:
        return dict(item, value=t("{size}, sha256 not recorded", size=human_bytes(size)))
    if cached:
        return dict(item, value=t("{size}, sha256 ok (hash from cache)", size=human_bytes(size)))
    return dict(item, value=t("{size}, sha256 ok (hashed)", size=human_bytes(size)))


# Tracked by the web UI, edited by its owner and by sdsetup (its managed block): launch settings, not local changes.
LAUNCHER_FILES = ("webui-user.sh", "webui-user.bat")


def repo_item(item_id: str, name: str, path: str, *, expected: str, head: str | None, exists: bool, dirty: bool,
              changed: Sequence[str] = ()) -> dict[str, Any]:
    item = {"id": item_id, "name": name, "status": "ok", "fix": None}
    if not exists:
        return dict(item, status="fail", value=t("{path}: missing", path=path),
                    fix=t("run `sdsetup install DIR` again: it fetches the pinned commit"))
    if head is None:
        return dict(item, status="fail", value=t("{path}: not a git checkout", path=path),
                    fix=t("move {path} away and run `sdsetup install DIR` again (the web UI refuses non-git folders there)", path=path))
    if head != expected:
        return dict(item, status="fail", value=t("at {head}, pinned {expected}", head=head[:10], expected=expected[:10]),
                    fix=t('git -C "{path}" checkout {expected}   (or run `sdsetup install DIR` again)', path=path, expected=expected))
    if dirty:
        if changed:
            shown = ", ".join(changed[:5]) if len(changed) <= 5 else \
                t("{files} and {more} more", files=", ".join(changed[:5]), more=len(changed) - 5)
            named = " ".join(_shell_quote(name) for name in changed)
            # Never a bare `git stash`: it would also take webui-user.sh/.bat and sdsetup's block in them.
            return dict(item, status="warn", value=t("at {commit} (pinned) with local changes to {files}", commit=expected[:10], files=shown),
                        fix=t('git -C "{path}" diff -- {named} shows them; `git -C "{path}" stash push -- {named}` sets them aside',
                              path=path, named=named))
        return dict(item, status="warn", value=t("at {commit} (pinned) with local changes", commit=expected[:10]),
                    fix=t('git -C "{path}" status shows them; set aside only the files you did not mean to change '
                          '(`git -C "{path}" stash push -- FILE`)', path=path))
    return dict(item, value=t("at {commit} (pinned)", commit=expected[:10]))


def summarize(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    failed = [item["id"] for item in items if item.get("status") == "fail"]
    warned = [item["id"] for item in items if item.get("status") == "warn"]
    return {"ok": not failed, "failed": failed, "warnings": warned, "checks": len(items)}


# ----------------------------------------------------------------------------------------- effects


def record_path_in(install_dir: Path, relative: str, what: str) -> Path:
    """A path from the install record, inside DIR by its spelling (no absolute paths, no '..').

    Unlike fsutil.safe_join, symlinks are not resolved: verify only reads, and a venv's python is a
    symlink to the base interpreter, as a models folder is often a symlink to a bigger disk.
    """
    text = str(relative).replace("\\", "/")
    parts = [part for part in text.split("/") if part not in ("", ".")]
    if not text or text.startswith("/") or (len(text) > 1 and text[1] == ":") or ".." in parts:
        raise SdsetupError(
            t("{what} '{relative}' in the install record escapes the install directory", what=what,
              relative=relative),
            t("the record is damaged or was edited; rerun `sdsetup install DIR`, it rewrites the record"),
            ExitCode.FAILED,
        )
    from sdsetup.fsutil import linked_into_system

    refusal = linked_into_system(install_dir, text, what)  # the install's own rule (issue 23 item 8)
    if refusal is not None:
        raise refusal
    return Path(install_dir).joinpath(*parts)


def _python_item(python: Path) -> tuple[dict[str, Any], bool]:
    item = {"id": "python", "name": t("venv python"), "status": "ok", "fix": None}
    fix = t("run `sdsetup install DIR` again: it recreates the venv")
    if not python.exists():
        return dict(item, status="fail", value=t("{path}: missing", path=python), fix=fix), False
    try:
        from sdsetup import children

        result = children.run([str(python), "-c", "import sys; print(sys.version.split()[0]); print(sys.prefix != sys.base_prefix)"],
                              timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return dict(item, status="fail", value=t("{python} does not run: {error}", python=python, error=exc), fix=fix), False
    if result.returncode != 0:
        return dict(item, status="fail", value=t("{python} does not run: {error}", python=python,
                                                 error=_last_error_line(result.stderr.splitlines())), fix=fix), False
    version, in_venv = (result.stdout.split() + ["", ""])[:2]
    if in_venv != "True":
        return dict(item, value=t("Python {version} at {python} (not a venv)", version=version, python=python)), True
    return dict(item, value=t("Python {version} at {python}", version=version, python=python)), True


def _shell_quote(text: str) -> str:
    return subprocess.list2cmdline([text]) if os.name == "nt" else shlex.quote(text)


def _git_state(path: Path, *, launcher: bool = False) -> tuple[bool, str | None, list[str]]:
    """(exists, HEAD, changed tracked files). With `launcher` (the web UI itself), webui-user.sh/.bat do
    not count: sdsetup's own block is in them on every install, and their owner is meant to edit them."""
    from sdsetup.gitops import changed_files, head_commit

    if not path.exists():
        return False, None, []
    head = head_commit(path)
    if not head:
        return True, head, []
    changed = changed_files(path)
    if launcher:
        changed = [name for name in changed if name.strip('"') not in LAUNCHER_FILES]
    return True, head, changed


def read_launch_args(install_dir: Path, record, system: str) -> tuple[list[str], str, dict[str, Any] | None]:
    """COMMANDLINE_ARGS from this OS's webui-user file, else the record's (with a warning item)."""
    from sdsetup.webui_user_file import commandline_args

    name, flavour = ("webui-user.bat", "bat") if system == "Windows" else ("webui-user.sh", "sh")
    path = install_dir / name
    try:
        args = commandline_args(path.read_text("utf-8", "replace"), flavour)
    except OSError:
        item = {"id": "webui-user-file", "name": name, "status": "warn", "value": t("missing"),
                "fix": t("run `sdsetup install DIR` again: it writes webui-user with the flags for this machine")}
        return list(record.launch_args), t("the install record (no {name})", name=name), item
    return (args if args is not None else []), name, None


def check_launch_flags(install_dir: Path, record, facts) -> tuple[list[str], list[dict[str, Any]]]:
    """The flags this OS's webui-user file gives the web UI, and the items that judge them against
    the machine (`facts` None: not compared)."""
    import platform

    backend = gpu = None
    vram_flags: tuple[str, ...] = ()
    upcast_card = False
    if facts is not None:
        from sdsetup.detect.recommend import choose_backend, needs_upcast, primary_gpu, vram_tier

        backend = choose_backend(facts)
        gpu = primary_gpu(facts, backend)
        vram_flags = vram_tier(gpu).flags if gpu else ()
        upcast_card = needs_upcast(gpu)
    args, source, file_warning = read_launch_args(install_dir, record, facts.system if facts else platform.system())
    item = launch_args_item(args, backend, source=source, gpu_name=gpu.name if gpu else None, vram_flags=vram_flags,
                            upcast_card=upcast_card)
    return args, ([file_warning] if file_warning else []) + [item]


def _torch_fix_command(settings, record, python: Path, backend: str, facts) -> str | None:
    """The pip command that puts the right torch into the venv (mirrored like install would)."""
    try:
        from sdsetup.detect.recommend import torch_choice
        from sdsetup.manifest import load_manifest

        manifest = load_manifest(record.manifest)
        spec = manifest.torch.get(backend)
        if spec is None:
            return None
        choice = torch_choice(facts, backend, manifest.name)
        tag = choice.tag if not spec.tags or choice.tag in spec.tags else spec.tags[0]
        argv = [str(python), "-m", "pip", "install", "--force-reinstall", *spec.packages]
        if spec.index:
            index_args = ["--extra-index-url", spec.index.format(tag=tag)]
            # Only a chosen mirror: with none (or auto), select_mirrors would probe every channel first.
            if settings is not None and settings.mirror and settings.mirror != "auto":
                try:
                    from sdsetup.net.mirrors import select_mirrors

                    index_args = select_mirrors(settings).torch_index_args(tag)
                except Exception:
                    pass  # the canonical index is still right
            argv += index_args
    except Exception:
        return None
    return subprocess.list2cmdline(argv) if os.name == "nt" else shlex.join(argv)


def verify_install(
    settings,
    install_dir: Path,
    *,
    full: bool = False,
    rehash: bool = False,
    out: Path | None = None,
    python: Path | None = None,
    progress: bool = False,
    smoke: bool = True,
) -> dict[str, Any]:
    """Check the install in `install_dir` against its record, then run the smoke test in its venv.

    `smoke=False` skips the generation and only asks the venv's torch what it is (for quick checks).
    """
    from sdsetup.hashing import HashCache
    from sdsetup.install_record import load_record

    install_dir = Path(install_dir)
    record = require_record(install_dir)
    items: list[dict[str, Any]] = []
    items.append({"id": "record", "name": t("install record"), "status": "ok" if record.finished else "warn",
                  "value": t("{manifest}, backend {backend}", manifest=record.manifest, backend=record.backend)
                  if record.finished else t("{manifest}, backend {backend}: the install did not finish",
                                            manifest=record.manifest, backend=record.backend),
                  "fix": None if record.finished else t("run `sdsetup install DIR` again: it continues where it stopped")})

    # Repositories at their pins.
    for index, repo in enumerate([record.webui, *record.repositories]):
        path = install_dir if repo.path in (".", "") else record_path_in(install_dir, repo.path, "repository path")
        exists, head, changed = _git_state(path, launcher=index == 0)
        item_id = "webui" if index == 0 else f"repo:{repo.name}"
        items.append(repo_item(item_id, repo.name if index else "web UI", str(path), expected=repo.commit, head=head, exists=exists,
                               dirty=bool(changed), changed=changed))

    # Models and Hugging Face files: present, complete, the exact bytes.
    cache = HashCache(install_dir / HASH_CACHE_REL)
    from sdsetup.model_store import load_shared

    shared = load_shared(install_dir)  # models used where another install keeps them (another file system)
    for model in record.models:
        if model.path in shared and not (install_dir / model.path).exists():
            source = Path(shared[model.path])
            item = _file_check(source.parent, cache, rehash, f"model:{model.path}", Path(model.path).name, source.name,
                               model.size, model.sha256, url=model.url)
            item["value"] = t("{value} (shared: {source})", value=item.get("value"), source=source)
            items.append(item)
            continue
        items.append(_file_check(install_dir, cache, rehash, f"model:{model.path}", Path(model.path).name, model.path,
                                 model.size, model.sha256, url=model.url))
    for hub in record.hub_files:
        items.append(_file_check(install_dir, cache, rehash, f"hub:{hub.repo_id}/{hub.filename}", f"{hub.repo_id}/{hub.filename}",
                                 hub.path, hub.size, hub.sha256, url=None))

    # The machine, for the torch build and the launch flags.
    facts, facts_item = _machine_facts(settings)
    if facts_item:
        items.append(facts_item)
    expected_backend = gpu = None
    if facts is not None:
        from sdsetup.detect.recommend import choose_backend, primary_gpu

        expected_backend = choose_backend(facts)
        gpu = primary_gpu(facts, expected_backend)
    from sdsetup.launchers import for_record

    launcher = for_record(record)
    launch_args, launch_items = launcher.check_launch(install_dir, record, facts)
    items += launch_items

    # The venv: it runs, torch matches the hardware, and it generates an image.
    venv_python = Path(python) if python else record_path_in(install_dir, record.python, "venv python")
    py_item, runs = _python_item(venv_python)
    items.append(py_item)
    hf_home = record_path_in(install_dir, record.hf_home, "HF_HOME") if record.hf_home else None
    smoke_options = launcher.smoke_options(launch_args)
    tiny = full_doc = None
    if runs:
        if smoke:
            tiny = run_smoke(venv_python, out=None if full else out, cache_dir=_tiny_cache(settings), progress=progress, **smoke_options)
        else:
            tiny = run_smoke(venv_python, info=True)
        fix_command = _torch_fix_command(settings, record, venv_python, expected_backend, facts) if expected_backend else None
        driver = None
        if facts is not None and gpu is not None and expected_backend == "cuda":
            from sdsetup.detect.recommend import driver_problem

            tag = f"cu{(tiny.get('torch_cuda') or '').replace('.', '')}" if tiny.get("torch_cuda") else (record.torch_tag or "cu121")
            driver = driver_problem(gpu, tag, facts.system)
        items.append(torch_item(tiny, expected_backend, gpu_name=gpu.name if gpu else None, fix_command=fix_command, driver_problem=driver))
        if smoke and torch_build(tiny) is not None:
            items.append(smoke_item(tiny))
        if smoke and full:
            items.append(_full_smoke(install_dir, record, items, venv_python, hf_home, out, smoke_options, progress, holder := {}))
            full_doc = holder.get("doc")
    else:
        items.append({"id": "smoke", "name": t("smoke test"), "status": "skip", "value": t("the venv's Python does not run"),
                      "fix": None})
    _name_the_dir(items, install_dir)
    summary = summarize(items)
    return {"mode": "install", "install_dir": str(install_dir.resolve()), "python": str(venv_python), "items": items,
            "smoke": tiny, "full": full_doc, "machine": facts.to_json() if facts is not None else None, **summary}


def _name_the_dir(items: list[dict[str, Any]], install_dir: Path) -> None:
    """Fixes say `sdsetup install DIR`; put the user's own directory there, ready to paste."""
    shown = subprocess.list2cmdline([str(install_dir)]) if os.name == "nt" else shlex.quote(str(install_dir))
    for item in items:
        fix = item.get("fix")
        if fix:
            named = fix
            for word in ("DIR", "目录"):  # the zh-CN catalog writes DIR as 目录
                named = named.replace(f"sdsetup install {word}", f"sdsetup install {shown}").replace(
                    f"sdsetup verify {word}", f"sdsetup verify {shown}")
            item["fix"] = _same_id(fix, named)


def _same_id(fix, text: str):
    """`text` keeping the message id of `fix` (a Msg), so --json's fix_id survives naming the directory."""
    if text == fix:
        return fix
    if not isinstance(fix, Msg):
        return text
    named = str.__new__(Msg, text)
    named.msgid, named.msgctxt, named.args = fix.msgid, fix.msgctxt, fix.args
    return named


def _full_smoke(install_dir, record, items, python, hf_home, out, smoke_options, progress, holder) -> dict[str, Any]:

    checkpoints = [m for m in record.models if m.path.lower().endswith((".safetensors", ".ckpt"))]
    if not checkpoints:
        return {"id": "smoke-full", "name": t("smoke test (checkpoint)"), "status": "fail",
                "value": t("the record names no checkpoint"), "fix": t("run `sdsetup install DIR` again")}
    model = checkpoints[0]
    if any(item["id"] == f"model:{model.path}" and item["status"] == "fail" for item in items):
        return {"id": "smoke-full", "name": t("smoke test (checkpoint)"), "status": "skip",
                "value": t("{name} failed its check above", name=Path(model.path).name), "fix": None}
    from sdsetup.model_store import load_shared

    shared = load_shared(install_dir)
    checkpoint = Path(shared[model.path]) if model.path in shared and not (install_dir / model.path).exists() \
        else record_path_in(install_dir, model.path, "model path")
    doc = run_smoke(python, checkpoint=checkpoint, out=out, hf_home=hf_home,
                    progress=progress, **smoke_options)
    holder["doc"] = doc
    return smoke_item(doc, item_id="smoke-full", name=t("smoke test (checkpoint)"))


def _file_check(install_dir, cache, rehash, item_id, name, rel_path, size, sha256, *, url) -> dict[str, Any]:

    path = record_path_in(install_dir, rel_path, "model path")
    fix_missing = t("run `sdsetup install DIR` again: it downloads it (resuming a partial download)")
    fix_bad = t("move {path} aside and run `sdsetup install DIR` again to download it afresh", path=path)
    if url:
        from sdsetup.redact import redact_url

        fix_missing = t("run `sdsetup install DIR` again: it downloads it (resuming a partial download); source: {url}",
                        url=redact_url(url))
    exists = path.is_file()
    actual_size = actual_sha = None
    cached = False
    if exists:
        actual_size = path.stat().st_size
        if sha256 and (size is None or actual_size == size):
            actual_sha, cached = cache.sha256(path, rehash=rehash)
    return file_item(item_id, name, expected_size=size, expected_sha256=sha256, exists=exists, size=actual_size,
                     sha256=actual_sha, cached=cached, fix_missing=fix_missing, fix_bad=fix_bad)


def _machine_facts(settings):
    try:
        from sdsetup.detect.machine import probe_machine

        facts = probe_machine(settings)
    except SdsetupError:
        raise  # a replay file that cannot be read is the user's to fix
    except Exception as exc:  # a probe that breaks must not hide the rest of the report
        return None, {"id": "machine", "name": t("machine"), "status": "warn",
                      "value": t("could not probe the hardware: {exc}", exc=exc), "fix": t("run `sdsetup check` to see what fails")}
    gpus = ", ".join(g.name or g.vendor for g in facts.gpus) or t("no GPU")
    if facts.replayed_from:
        value = t("{system} {machine}, {gpus} (replayed from {source})", system=facts.system, machine=facts.machine, gpus=gpus,
                  source=facts.replayed_from)
    else:
        value = t("{system} {machine}, {gpus}", system=facts.system, machine=facts.machine, gpus=gpus)
    return facts, {"id": "machine", "name": t("machine"), "status": "info", "value": value, "fix": None}


def _tiny_cache(settings) -> Path | None:
    return Path(settings.cache_dir) / "smoke-model" if settings is not None else None


def require_record(install_dir: Path):
    from sdsetup.install_record import load_record, record_path

    if not install_dir.is_dir():
        problem = t("{install_dir} is a file, not a folder", install_dir=install_dir) if install_dir.exists() \
            else t("{install_dir} does not exist", install_dir=install_dir)
        raise SdsetupError(problem, t("give the directory `sdsetup install` installed into"), ExitCode.USAGE)
    record = load_record(install_dir)
    if record is None:
        raise SdsetupError(
            t("{install_dir} has no install record ({record_file}): it was not installed by sdsetup",
              install_dir=install_dir, record_file=record_path(install_dir)),
            t("run `sdsetup install {install_dir}` first, or `sdsetup verify --smoke --python PATH` to test any Python with torch",
              install_dir=install_dir),
            ExitCode.USAGE,
        )
    return record


def verify_smoke_only(settings, install_dir: Path | None, *, python: Path | None, out: Path | None, full: bool = False,
                      progress: bool = False) -> dict[str, Any]:
    """`verify --smoke`: only the smoke test, in --python, else DIR's venv, else this interpreter."""
    from sdsetup.install_record import load_record

    record = load_record(install_dir) if install_dir is not None and install_dir.is_dir() else None
    if install_dir is not None and record is None and python is None:
        require_record(install_dir)  # says what is wrong with DIR
    if python is None:
        python = record_path_in(install_dir, record.python, "venv python") if record else Path(sys.executable)
    options = smoke_options_from_args(record.launch_args if record else [])
    items = []
    doc = run_smoke(python, out=None if full else out, cache_dir=_tiny_cache(settings), progress=progress, **options)
    items.append(smoke_item(doc))
    full_doc = None
    if full:
        if record is None:
            raise SdsetupError(t("--full needs an install directory with a checkpoint"),
                               t("give DIR: `sdsetup verify DIR --smoke --full`"), ExitCode.USAGE)
        hf_home = record_path_in(install_dir, record.hf_home, "HF_HOME") if record.hf_home else None
        items.append(_full_smoke(install_dir, record, items, python, hf_home, out, options, progress, holder := {}))
        full_doc = holder.get("doc")
    if install_dir is not None:
        _name_the_dir(items, install_dir)
    return {"mode": "smoke", "install_dir": str(install_dir.resolve()) if install_dir else None, "python": str(python),
            "items": items, "smoke": doc, "full": full_doc, **summarize(items)}
