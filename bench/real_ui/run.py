"""bench/real_ui: install and launch the REAL web UIs (A1111 v1.10.1, Forge, ComfyUI) with sdsetup, then one
txt2img through each UI's own API, with no network at launch. Opt-in, not in CI: it downloads gigabytes
from PyPI and takes an hour or more on a small CPU.

    .venv/bin/python bench/real_ui/run.py [--ui a1111] [--ui forge] [--ui comfyui] [--out build/real_ui]
        [--manifests DIR] [--hub-builder FILE] [--steps install,checkpoint,launch,txt2img,verify,doctor] [--fresh]

What is real: the web UIs' code and every repository they clone (stored snapshots, served by a local
`git http-backend` under the upstream names at the manifests' pins), PyPI itself, the Hub files at their
proven bytes (the builder module), the UI's own first launch and API. What stands in: the torch build (the
one this disk holds, named in the report beside the manifest's), and the SD 1.5 checkpoint (full size, the
real tensor names and shapes from the UI's own config, random weights, fp16) — so the manifest's checkpoint
sha256 cannot match: the install runs with --skip-models and the bench places the file (sdsetup's own smoke
test, a tiny model through diffusers, runs as usual).

sdsetup sees only redirected sources: a config profile `realui` (pypi = PyPI, torch/github/huggingface = the
local servers) and --proxy through a counting proxy (bytes from off this machine). Output under --out
(ignored by git): one log per UI and step, the images, report.txt; one line per UI and step on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from tests.servers import httpbase  # noqa: E402
from tests.servers.fileserver import FileServer  # noqa: E402
from tests.servers.gitserver import GitHandler  # noqa: E402

import world  # noqa: E402
from offline import first_error  # noqa: E402

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore

UIS = ("a1111", "forge", "comfyui")
STEPS = ("install", "checkpoint", "launch", "txt2img", "verify", "doctor")
# The torch this disk can give in place of each manifest's: a torchvision that imports beside it is needed
# (A1111's ldm imports torchvision.utils), and only the 2.14.1 / 0.29.1 pair has one here (torch 2.13.0+cpu
# with PyPI's torchvision 0.28.0 fails: "operator torchvision::nms does not exist").
TORCH_SUBSTITUTE = {"torch": "2.14.1", "torchvision": "0.29.1", "torchaudio": None}
SERVE_PORT = {"a1111": 7860, "forge": 7860, "comfyui": 8188}


def human(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return str(n)


class CountingGitHandler(GitHandler):
    sent = [0]

    def _send(self, status, headers, body):
        super()._send(status, headers, body)
        if self.command != "HEAD":
            with self.lock:
                self.sent[0] += len(body)


def sdsetup_error(log: Path) -> str:
    """sdsetup's own first complaint: an `error:` line, a [FAIL] item, or doctor's most likely cause."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    for pattern in (r"^error: ", r"^\[FAIL\]", r"^1\. "):
        for line in lines:
            if re.match(pattern, line):
                return " ".join(line.split())[:300]
    return ""


# What the web UIs print when they go for the network at launch (pip, git, model downloads): in the
# network namespace these fail, often only as warnings, so a launch that "passed" may still have tried.
NETWORK_ATTEMPT = re.compile(r"^(Installing |Command: .* -m pip install|Cloning |Downloading[: ]|Fetching updates)")


def network_attempts(log: Path) -> list[str]:
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    return [" ".join(line.split())[:200] for line in lines if NETWORK_ATTEMPT.match(line)]


def derive_manifest(src: Path, dest: Path) -> tuple[Path, list[str]]:
    """The real manifest with only [torch.cpu]'s packages replaced by what this disk holds; says so."""
    text = src.read_text(encoding="utf-8")
    notes = []

    def swap(match: re.Match) -> str:
        packages = json.loads(match.group(2).replace("'", '"'))
        new = []
        for spec in packages:
            name, _, version = spec.partition("==")
            if name in TORCH_SUBSTITUTE:
                if TORCH_SUBSTITUTE[name] is None:
                    notes.append(f"{spec} left out (no build for the substitute torch on this disk)")
                    continue
                notes.append(f"{spec} -> {name}=={TORCH_SUBSTITUTE[name]}")
                new.append(f"{name}=={TORCH_SUBSTITUTE[name]}")
            else:
                new.append(spec)
        return match.group(1) + json.dumps(new)

    text, n = re.subn(r'(\[torch\.cpu\][^\[]*?packages\s*=\s*)(\[[^\]]*\])', swap, text, count=1)
    if not n:
        raise SystemExit(f"{src}: no [torch.cpu] packages to substitute")
    if "evidence" not in (ROOT / "sdsetup" / "manifest.py").read_text(encoding="utf-8"):
        # a manifest from a branch ahead of this checkout (--manifests): its `evidence` notes are
        # documentation only, and this checkout's sdsetup refuses the unknown key
        text, dropped = re.subn(r',\s*evidence\s*=\s*"(?:[^"\\]|\\.)*"|^evidence\s*=\s*"(?:[^"\\]|\\.)*"\n', "", text, flags=re.M)
        if dropped:
            notes.append(f"{dropped} evidence note(s) dropped (unknown to this checkout's sdsetup)")
    header = ("# bench/real_ui: " + src.name + " with [torch.cpu] substituted by the torch this disk holds: "
              + "; ".join(notes) + "\n")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(header + text, encoding="utf-8")
    return dest, notes


def write_config(path: Path, files_base: str, git_base: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'''# bench/real_ui: only the sources are redirected
[profiles.realui]
description = "bench/real_ui: PyPI, local torch index, local git host, local Hub"
pypi = ["https://pypi.org/simple/"]
torch = [{{ url = "{files_base}torch/{{tag}}/", layout = "simple" }}]
github = [
  {{ name = "realui-git", url = "{git_base}", style = "host", serves = ["git"] }},
  {{ name = "realui-files", url = "{files_base}gh/", style = "host", serves = ["archive", "release", "raw"] }},
]
huggingface = ["{files_base}hf"]
''', encoding="utf-8")


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Path(args.out).resolve()
        self.world_dir = self.out / "world"
        # this run's servers' ports: one file per run, so two runs side by side do not redirect each other
        self.config = self.world_dir / f"config-{os.getpid()}.toml"
        self.www = self.world_dir / "www"
        self.git_root = self.world_dir / "git"
        self.lines: list[str] = []
        self.sdsetup = [str(ROOT / ".venv" / "bin" / "python"), "-m", "sdsetup"]
        # sdsetup's own cache (its logs, which doctor reads) kept apart from this machine's other runs
        # and pip as on a user's PC: this machine's pip settings add wheel folders on its disk (find-links,
        # file:// indexes), which would let a launch "without network" install packages after all
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("PIP_")},
                    "XDG_CACHE_HOME": str(self.out / "cache"), "PIP_CONFIG_FILE": os.devnull}

    # -- the world -------------------------------------------------------------------------------------
    def build_world(self, manifests: dict[str, dict]) -> list[str]:
        notes = []
        problems = world.make_git_root(self.git_root)
        for name, problem in problems.items():
            notes.append(f"git host: {name}: {problem}")
        for ui, manifest in manifests.items():
            for repo in [manifest["webui"], *manifest.get("repositories", [])]:
                name = re.sub(r"^https://github.com/|\.git$", "", repo["url"])
                if not world.has_commit(self.git_root, name, repo["commit"]):
                    notes.append(f"git host: {ui}: {name} has no commit {repo['commit'][:12]} in its snapshot")
            for step in manifest.get("pip", []):
                for url in step.get("archives", []):
                    m = re.match(r"https://github.com/([^/]+/[^/]+)/archive/([0-9a-f]{40})\.zip$", url)
                    if m:
                        world.make_archive(self.git_root, self.www, m.group(1), m.group(2))
        count = world.make_torch_index(self.www)
        notes.append(f"torch index: {count} files from this disk; the torch wheels' `Requires-Dist: setuptools` removed "
                     "(the web UIs pin setuptools 69.5.1; the manifests' torch asked for none)")
        builder = world.load_hub_builder(Path(self.args.hub_builder))
        names = sorted({f if isinstance(f, str) else f["name"] for m in manifests.values() for h in m.get("hub", []) for f in h["files"]})
        sizes = world.make_hub(self.www, builder, names)
        notes.append("hub: " + ", ".join(f"{k} {v} B" for k, v in sizes.items()) + f" (builder {self.args.hub_builder})")
        return notes

    def bytes_now(self) -> int:
        return self.proxy.counter.down + self.files.bytes_sent() + CountingGitHandler.sent[0]

    # -- one step ------------------------------------------------------------------------------------
    def step(self, ui: str, name: str, fn) -> bool:
        log = self.out / ui / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_bytes(b"")  # this run's output only
        before, off_before, started = self.bytes_now(), self.proxy.counter.down, time.monotonic()
        try:
            ok, error = fn(log)
        except Exception as exc:  # a bench bug or an environment problem: reported like a failed step
            ok, error = False, f"{type(exc).__name__}: {exc}"
        seconds, got, off = time.monotonic() - started, self.bytes_now() - before, self.proxy.counter.down - off_before
        status = "passed" if ok else "failed"
        line = f"{ui:8} {name:10} {status:6} {seconds:8.1f} s {human(got):>10} ({human(off)} off-machine)  log {log}"
        if not ok:
            line += f"\n{'':8} {'':10} first error: {error}"
        print(line, flush=True)
        self.lines.append(line)
        return ok

    def run_logged(self, cmd: list[str], log: Path, *, cwd: Path | None = None, env: dict | None = None,
                   timeout: float = 7200) -> tuple[bool, str]:
        with open(log, "ab") as f:
            f.write(("$ " + " ".join(cmd) + "\n").encode())
            f.flush()
            try:
                rc = subprocess.run(cmd, cwd=cwd, env=env or self.env, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    timeout=timeout).returncode
            except subprocess.TimeoutExpired:
                return False, f"timed out after {timeout:.0f} s"
        return rc == 0, "" if rc == 0 else f"exit code {rc}: {sdsetup_error(log) or first_error(str(log))}"

    def offline(self, mode: str, ui: str, cwd: Path, log: Path, cmd: list[str], **extra) -> tuple[bool, str]:
        argv = ["unshare", "-n", sys.executable, str(HERE / "offline.py"), mode, "--cwd", str(cwd), "--log", str(log),
                "--timeout", str(extra.pop("timeout", 3600)), "--kind", "comfyui" if ui == "comfyui" else "a1111"]
        for key, value in extra.items():
            argv += [f"--{key}", str(value)]
        argv += ["--", *cmd]
        result = subprocess.run(argv, capture_output=True, text=True, env=self.env)
        try:
            answer = json.loads(result.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return False, (result.stderr.strip().splitlines() or ["offline runner gave no answer"])[-1]
        if answer["ok"]:
            tried = network_attempts(log)
            if tried:
                return False, f"the launch went for the network {len(tried)} time(s), first: {tried[0]}"
        return bool(answer["ok"]), answer.get("error", "")

    # -- the UIs ---------------------------------------------------------------------------------------
    def run_ui(self, ui: str, manifest_path: Path, manifest: dict) -> None:
        d = self.out / ui / "webui"
        cfg = self.config
        steps = self.args.steps
        net = ["--config", str(cfg), "--mirror", "realui", "--proxy", self.proxy.url]
        if "install" in steps:
            if self.args.fresh and d.exists():
                shutil.rmtree(d)
            cmd = [*self.sdsetup, "install", str(d), "--manifest", str(manifest_path), *net, "--backend", "cpu",
                   "--skip-models", "-y"]
            ok = self.step(ui, "install", lambda log: self.install(cmd, d, manifest, log))
            if not ok:
                return
        if "checkpoint" in steps:
            self.step(ui, "checkpoint", lambda log: self.place_checkpoint(ui, d, manifest, log))
        if "launch" in steps:
            self.step(ui, "launch", lambda log: self.offline("launch", ui, d, log, self.launch_cmd(ui, d, first=True), timeout=3600))
        if "txt2img" in steps:
            image = self.out / ui / "txt2img.png"
            extra = {"port": SERVE_PORT[ui], "image": image, "timeout": 3600}
            if ui == "comfyui":
                extra["workflow"] = self.comfy_workflow(d, manifest)
            self.step(ui, "txt2img", lambda log: self.offline("txt2img", ui, d, log, self.launch_cmd(ui, d, first=False), **extra))
        if "verify" in steps:
            self.step(ui, "verify", lambda log: self.run_logged([*self.sdsetup, "verify", str(d), "--config", str(cfg)], log))
        if "doctor" in steps:
            logs = [str(p) for p in (self.out / ui / "launch.log", self.out / ui / "txt2img.log") if p.is_file()]
            self.step(ui, "doctor", lambda log: self.run_logged(
                [*self.sdsetup, "doctor", str(d), *[a for p in logs for a in ("--log", p)], *net], log))

    def incomplete_repositories(self, manifest: dict) -> list[tuple[str, str, str, list[str]]]:
        """(name, commit, path, missing files) of the launch-time repositories whose snapshot lacks files."""
        found = []
        for repo in manifest.get("repositories", []):
            name = re.sub(r"^https://github.com/|\.git$", "", repo["url"])
            if world.has_commit(self.git_root, name, repo["commit"]):
                missing = world.missing_paths(self.git_root, name, repo["commit"])
                if missing:
                    found.append((name, repo["commit"], repo["path"], missing))
        return found

    def install(self, cmd: list[str], d: Path, manifest: dict, log: Path) -> tuple[bool, str]:
        """sdsetup install; where a snapshot lacks files of a pinned commit (the stored Stability-AI
        stablediffusion has no sample PNGs), the git host cannot serve that commit whole: the bench then
        checks it out without those files (HEAD at the pin) and runs the install again, which continues."""
        ok, error = self.run_logged(cmd, log)
        incomplete = self.incomplete_repositories(manifest)
        if ok or not incomplete or not d.is_dir():
            return ok, error
        with open(log, "a", encoding="utf-8") as f:
            for name, commit, path, missing in incomplete:
                f.write(f"bench/real_ui: {name} @ {commit[:10]}: the snapshot lacks {', '.join(missing)}; "
                        f"checked out at the pin without them into {path}, then the install again\n")
                world.seed_partial_checkout(self.git_root, name, commit, d / path, missing)
        return self.run_logged(cmd, log)

    def launch_cmd(self, ui: str, d: Path, *, first: bool) -> list[str]:
        if ui == "comfyui":
            py = str(d / "venv" / "bin" / "python")
            return [py, "main.py", "--cpu", "--quick-test-for-ci"] if first else [py, "main.py", "--cpu", "--port", "8188"]
        # webui.sh sources webui-user.sh (sdsetup's flags and environment) and runs launch.py in venv;
        # -f: this bench runs as root, which webui.sh refuses otherwise.
        return ["bash", "webui.sh", "-f", "--exit"] if first else ["bash", "webui.sh", "-f", "--api", "--port", "7860"]

    def place_checkpoint(self, ui: str, d: Path, manifest: dict, log: Path) -> tuple[bool, str]:
        cache = self.world_dir / "ckpt" / "sd15-random-fp16.safetensors"
        if not cache.is_file():
            cache.parent.mkdir(parents=True, exist_ok=True)
            if ui != "a1111":
                return False, "the checkpoint is built in the a1111 install (its ldm code and config); run a1111 first"
            ok, error = self.run_logged([str(d / "venv" / "bin" / "python"), str(HERE / "make_checkpoint.py"),
                                         "--config", str(d / "configs" / "v1-inference.yaml"),
                                         "--ldm", str(d / "repositories" / "stable-diffusion-stability-ai"),
                                         "--hub", str(d), "--out", str(cache)], log, cwd=d)
            if not ok:
                return ok, error
        target = d / manifest["models"][0]["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target.unlink()
        os.link(cache, target)
        with open(log, "a") as f:
            f.write(f"linked {cache} ({cache.stat().st_size} B) -> {target}\n")
        return True, ""

    def comfy_workflow(self, d: Path, manifest: dict) -> Path:
        """ComfyUI's default workflow (the graph its page opens with) in API form, at 64x64 and 2 steps."""
        ckpt = Path(manifest["models"][0]["path"]).name
        graph = {
            "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
            "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
            "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "beautiful scenery nature glass bottle landscape, , purple galaxy bottle,", "clip": ["4", 1]}},
            "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark", "clip": ["4", 1]}},
            "3": {"class_type": "KSampler", "inputs": {"seed": 156680208700286, "steps": 2, "cfg": 8.0, "sampler_name": "euler",
                                                       "scheduler": "normal", "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0],
                                                       "negative": ["7", 0], "latent_image": ["5", 0]}},
            "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
            "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
        }
        path = self.out / "comfyui" / "workflow_api.json"
        path.write_text(json.dumps(graph, indent=1), encoding="utf-8")
        return path

    # -- all -------------------------------------------------------------------------------------------
    def main(self) -> int:
        manifests_dir = Path(self.args.manifests)
        manifests, derived, head = {}, {}, []
        for ui in self.args.ui:
            src = manifests_dir / f"{ui}.toml"
            path, notes = derive_manifest(src, self.world_dir / "manifests" / f"{ui}.toml")
            derived[ui] = path
            manifests[ui] = tomllib.loads(path.read_text(encoding="utf-8"))
            head.append(f"{ui}: manifest {src}; torch substitute: {'; '.join(notes)}")
        head += self.build_world(manifests)
        with FileServer(self.www) as files, world.CountingProxy() as proxy:
            self.files, self.proxy = files, proxy
            server, thread = httpbase.start(CountingGitHandler, project_root=str(self.git_root), log=[], lock=threading.Lock())
            try:
                for manifest in manifests.values():
                    for h in manifest.get("hub", []):
                        files.rule(f"/hf/{h['repo_id']}/*", headers={"X-Repo-Commit": world.load_hub_builder(Path(self.args.hub_builder)).REVISION})
                write_config(self.config, files.url("/"), server.url("/"))
                for line in head:
                    print(line, flush=True)
                self.lines += head
                for ui in self.args.ui:
                    self.run_ui(ui, derived[ui], manifests[ui])
            finally:
                httpbase.stop(server, thread)
            hosts = ", ".join(f"{h} {human(n)}" for h, n in sorted(proxy.counter.hosts.items()))
            self.lines.append(f"off this machine (through the proxy): {hosts or 'nothing'}")
            print(self.lines[-1])
        (self.out / "report.txt").write_text("\n".join(self.lines) + "\n", encoding="utf-8")
        return 0 if not any(" failed " in line for line in self.lines) else 1


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ui", action="append", choices=UIS, help="repeatable; default: all three, a1111 first")
    ap.add_argument("--out", default=str(ROOT / "build" / "real_ui"))
    ap.add_argument("--manifests", default=str(ROOT / "manifests"), help="the folder of the real manifests")
    ap.add_argument("--hub-builder", default=str(ROOT / "tests" / "fixtures" / "hub" / "clip_l14.py"),
                    help="the module rebuilding the Hub files at their proven bytes")
    ap.add_argument("--steps", default=",".join(STEPS))
    ap.add_argument("--fresh", action="store_true", help="remove the previous install of each UI first")
    args = ap.parse_args(argv)
    args.ui = args.ui or list(UIS)
    args.steps = set(args.steps.split(","))
    return args


if __name__ == "__main__":
    sys.exit(Bench(parse()).main())
