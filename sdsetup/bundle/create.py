"""`sdsetup bundle create OUT`: everything one install needs, written as a static tree (layout.py).

Order: repositories (the web UI's requirements file is read from its pinned commit), source archives,
pip's choices step by step (resolve.py) with their files, the build requirements of sdists built in
isolation, models and Hugging Face files, then the index pages, the mirror profile and the lock.

Resumable: downloads go through the engine (`.part` + sidecar, resumed on the next run); a file
already in the bundle with its recorded sha256 is not fetched again; a repository already holding its
pin is not fetched again; pip's answers and the Hub commits are kept in `.sdsetup-bundle/state.json`,
so a rerun of a finished bundle touches no network at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

from sdsetup.bundle import layout
from sdsetup.bundle.lockfile import BundleLock, LockedFile, LockedRepo, load_lock
from sdsetup.errors import ExitCode, SdsetupError, usage_error
from sdsetup.fsutil import atomic_write_json, atomic_write_text, human_bytes, safe_join
from sdsetup.i18n import t as _t

STATE_SCHEMA = 1


@dataclass(frozen=True)
class CreateOptions:
    manifest: str | None = None
    backend: str = "auto"
    torch_tag: str | None = None
    platforms: tuple[str, ...] = ()
    python_version: str | None = None
    base_url: str | None = None
    quiet: bool = False


@dataclass(frozen=True)
class PipJob:
    """One resolve the install will make, in its order."""

    name: str
    requirements: tuple[str, ...]  # requirement strings; archives and -r files filled in at run time
    archives: tuple[str, ...] = ()  # canonical archive URLs
    requirements_file: str | None = None
    no_build_isolation: bool = False
    torch: bool = False  # the torch step: its picks may come from the torch channel; it pins later steps
    native: bool = False  # pip itself: a pure-Python wheel, resolved without target options


# Install steps that run no pip: a step of another kind stops `bundle create` (see pip_jobs).
NO_PIP_STEPS = ("preflight", "webui", "repo:", "models", "hub", "webui-user", "record")


def pip_jobs(steps: Sequence[Any], decisions: Any) -> list[PipJob]:
    """The pip resolves of the install plan's steps, in their order (pure over the steps' descriptions).

    Derived from the plan (`install.plan.build_plan`) so that a pip step added to the install cannot be
    left out of bundles: a step this function does not know is an error, not a silent gap. xformers is
    added for a CUDA bundle even when this machine's launch flags leave it out: the target machines
    decide that for their own GPU."""
    jobs = []
    for step in steps:
        doc = step.describe()
        step_id = str(doc.get("id") or getattr(step, "id", ""))
        if step_id == "venv":
            jobs.append(PipJob("pip", (doc["pip"],), native=True))
        elif step_id == "torch":
            requirements = tuple(getattr(step, "requirements", ()))
            xformers = decisions.torch.xformers
            if xformers and decisions.backend == "cuda" and xformers not in requirements:
                requirements += (xformers,)
            jobs.append(PipJob("torch", requirements, torch=True))
        elif step_id.startswith("pip:"):
            spec = step.step
            jobs.append(PipJob(spec.name, tuple(spec.packages), tuple(spec.archives), spec.requirements_file, spec.no_build_isolation))
        elif step_id == "smoke":
            if doc.get("packages"):  # diffusers for the test, added last with torch held
                jobs.append(PipJob("smoke", tuple(doc["packages"])))
        elif not step_id.startswith(NO_PIP_STEPS):
            raise SdsetupError(_t("the install has a step '{step_id}' that bundle create does not know", step_id=step_id),
                               _t("report this: bundles would miss what that step installs"), ExitCode.INTERNAL)
    return jobs


def repo_groups(manifest: Any) -> list[tuple[str, list[Any], list[str]]]:
    """(bare repository path, manifest repos, commits) - several pins of one repository share it (pure)."""
    groups: dict[str, tuple[list[Any], list[str]]] = {}
    for repo in (manifest.webui, *manifest.repositories):
        rel = layout.repo_rel(repo.url)
        if rel is None:
            raise usage_error(_t("manifest: {name} is cloned from {url}, which a bundle cannot serve",
                                 name=repo.name, url=repo.url),
                              _t("a bundle serves GitHub repositories (https://github.com/OWNER/REPO)"))
        repos, commits = groups.setdefault(rel, ([], []))
        repos.append(repo)
        if repo.commit not in commits:
            commits.append(repo.commit)
    return [(rel, repos, commits) for rel, (repos, commits) in groups.items()]


def _fingerprint(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:16]


class BundleBuilder:
    def __init__(self, settings: Any, out: Path, options: CreateOptions) -> None:
        from sdsetup.install.context import Reporter

        self.settings = settings
        self.out = out
        self.options = options
        self.reporter = Reporter(options.quiet or settings.quiet)
        self.state_dir = out / layout.STATE_DIR
        self.state: dict[str, Any] = {}
        self.kinds: dict[str, str] = {}
        self.downloaded_bytes = 0
        self.warnings: list[str] = []
        self._resolver = None

    # -- plumbing ------------------------------------------------------------------------------------
    @cached_property
    def session(self):
        from sdsetup.net.session import build_session

        return build_session(self.settings)

    @cached_property
    def hashes(self):
        from sdsetup.hashing import HashCache

        return HashCache(self.state_dir / "hashes.json")

    def path(self, rel: str) -> Path:
        return safe_join(self.out, rel, "bundle path")

    def save_state(self) -> None:
        atomic_write_json(self.state_dir / "state.json", self.state)

    def git_runner(self):
        from sdsetup.gitops import GitRunner
        from sdsetup.redact import secrets_in_url

        return GitRunner(config_args=self.mirrors.git_config_args(insteadof=False), env=self.mirrors.git_env(),
                         secrets=secrets_in_url(self.settings.proxy))

    def have(self, rel: str, sha256: str | None = None) -> bool:
        """The file is in the bundle with the sha256 given, or the one recorded when it was fetched."""
        expected = sha256 or self.state.get("files", {}).get(rel)
        path = self.out / rel
        if not expected or not path.is_file():
            return False
        return self.hashes.sha256(path)[0] == expected

    def fetch(self, items: Sequence[tuple[str, Any]], kind: str) -> dict[str, str]:
        """Download (rel, FileSpec) pairs not already in the bundle; {rel: sha256} of all of them."""
        from sdsetup.net.download import download_many

        shas: dict[str, str] = {}
        pending = []
        for rel, spec in items:
            self.kinds[rel] = kind
            if self.have(rel, spec.sha256):
                shas[rel] = spec.sha256 or self.state["files"][rel]
            else:
                pending.append((rel, spec))
        if pending:
            from sdsetup.output import progress_enabled

            results = download_many([spec for _rel, spec in pending], self.session, self.settings,
                                    parallel=max(1, min(4, len(pending))), progress=progress_enabled(self.options.quiet or self.settings.quiet))
            files = self.state.setdefault("files", {})
            for (rel, spec), result in zip(pending, results):
                self.hashes.remember(spec.dest, result.sha256)
                files[rel] = shas[rel] = result.sha256
                self.downloaded_bytes += result.bytes_transferred
            self.save_state()
        return shas

    # -- the run -------------------------------------------------------------------------------------
    def prepare(self) -> None:
        import sys

        from sdsetup.bundle.target import choose_target
        from sdsetup.detect.machine import probe_machine
        from sdsetup.install.plan import decide
        from sdsetup.manifest import load_manifest
        from sdsetup.net.mirrors import select_mirrors

        self.manifest = load_manifest(self.options.manifest)
        facts = probe_machine(self.settings)
        self.facts = facts
        decisions = decide(self.manifest, facts, self.options.backend)
        tag = decisions.torch_tag
        if self.options.torch_tag:
            if self.options.torch_tag not in decisions.torch.tags:
                raise usage_error(_t("--torch-tag {torch_tag}: manifest '{name}' offers {tags} for {backend}",
                                     torch_tag=self.options.torch_tag, name=self.manifest.name,
                                     tags=', '.join(decisions.torch.tags) or 'no tag', backend=decisions.backend),
                                  _t("pick one of those, or leave --torch-tag out"))
            tag = self.options.torch_tag
        self.decisions = decisions
        self.tag = tag
        running = f"{sys.version_info[0]}.{sys.version_info[1]}"
        self.target = choose_target(self.options.platforms, self.options.python_version, supported=self.manifest.python.supported,
                                    recommended=self.manifest.python.recommended, running=running)
        session = self.session if self.settings.mirror == "auto" else None
        self.mirrors = select_mirrors(self.settings, session)
        self.warnings += list(self.mirrors.warnings)
        source_sha = hashlib.sha256(Path(self.manifest.source).read_bytes()).hexdigest()
        self.identity = {"manifest": self.manifest.name, "manifest_sha256": source_sha, "target": self.target.to_json(),
                         "backend": decisions.backend, "torch_tag": tag}

    def refuse_foreign_folder(self) -> None:
        """OUT is new, empty, or a bundle: sdsetup never writes into someone else's folder."""
        out = self.out
        if out.exists() and not out.is_dir():
            raise usage_error(_t("{out} is a file", out=out), _t("give a folder for the bundle"))
        from sdsetup.fsutil import file_in_the_way

        blocking = file_in_the_way(out)
        if blocking is not None:
            raise usage_error(_t("{out} cannot be created: {blocking} is a file",
                                 out=out, blocking=blocking), _t("give a folder for the bundle whose parents are folders"))
        if out.is_dir() and not (self.state_dir.is_dir() or (out / layout.LOCK_NAME).is_file()) and any(out.iterdir()):
            raise usage_error(_t("{out} is not empty and holds no bundle",
                                 out=out), _t("give a new or empty folder (sdsetup does not write into yours)"))

    def check_out_dir(self) -> None:
        """A bundle already in OUT must be for the same manifest and target: two bundles never mix."""
        out = self.out
        state_file = self.state_dir / "state.json"
        try:
            self.state = json.loads(state_file.read_text("utf-8"))
        except FileNotFoundError:
            self.state = {}
        except (OSError, ValueError, RecursionError):
            self.state = None
        if not isinstance(self.state, dict):
            self.state = {}
            self.warnings.append(_t("{state_file} was unreadable; starting its record afresh (files already there are kept)",
                                    state_file=state_file))
        lock = load_lock(out) if (out / layout.LOCK_NAME).exists() else None
        previous = self.state.get("identity") or (
            {"manifest": lock.manifest.get("name"), "manifest_sha256": lock.manifest.get("sha256"), "target": lock.target,
             "backend": lock.backend, "torch_tag": lock.torch_tag} if lock else None)
        if previous and previous != self.identity:
            def show(ident):
                t = ident.get("target") or {}
                return (f"manifest {ident.get('manifest')}, {ident.get('backend')} {ident.get('torch_tag') or ''}, "
                        f"{t.get('label')} Python {t.get('python_version')}").replace("  ", " ")
            raise usage_error(_t("{out} holds a bundle for {previous}, not {identity}",
                                 out=out, previous=show(previous), identity=show(self.identity)),
                              _t("use another folder for this bundle (sdsetup does not mix two bundles)"))
        if self.state.get("schema") not in (None, STATE_SCHEMA):
            self.state = {}
        self.state.update({"schema": STATE_SCHEMA, "identity": self.identity})

    def run(self) -> dict[str, Any]:
        from filelock import FileLock, Timeout

        from sdsetup.logs import start_run_log

        self.prepare()
        self.refuse_foreign_folder()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        guard = FileLock(str(self.state_dir / "lock"), timeout=0)
        try:
            guard.acquire()
        except Timeout:
            raise SdsetupError(_t("{out} is busy: another `sdsetup bundle create` is writing it", out=self.out),
                               _t("wait for it to finish, then run again"), ExitCode.BUSY) from None
        try:
            self.check_out_dir()
            self.log_path = start_run_log(self.settings, "bundle-create")
            self.save_state()
            self.reporter.say(_t("Bundle {name} for {backend}{tag}, {label}, Python {python_version} -> {out}",
                                 name=self.manifest.name, backend=self.decisions.backend,
                                 tag=" " + self.tag if self.tag else "",
                                 label=self.target.label if self.target.platforms else _t("this machine's platform"),
                                 python_version=self.target.python_version, out=self.out))
            repos = self.build_repos()
            archives = self.fetch_archives()
            index_entries = self.resolve_packages(archives)
            self.fetch_models()
            hub = self.fetch_hub()
            self.write_pages(index_entries)
            lock = self.write_lock(repos, hub)
            shutil.rmtree(self.state_dir / "venv", ignore_errors=True)  # only needed while resolving
            return self.summary(lock)
        finally:
            guard.release()

    # -- repositories --------------------------------------------------------------------------------
    def build_repos(self) -> list[LockedRepo]:
        from sdsetup.bundle.repos import build_bare_repo

        runner = self.git_runner()
        locked = []
        self.reporter.say(_t("Repositories at their pins (bare, for git's dumb HTTP protocol)"))
        for rel, repos, commits in repo_groups(self.manifest):
            urls = tuple(dict.fromkeys(u for repo in repos for url in repo.urls for u in self.mirrors.git_urls(url)))
            result = build_bare_repo(self.path(rel), urls, commits, runner=runner, name=repos[0].name, log=self.reporter.log.info)
            self.reporter.detail(f"{rel} @ {', '.join(c[:10] for c in commits)}" + (" (already there)" if result["already"] else ""))
            locked += [LockedRepo(repo.name, rel, repo.url, repo.commit) for repo in repos]
        self.webui_bare = self.path(layout.repo_rel(self.manifest.webui.url))
        return locked

    # -- source archives (pip builds them: CLIP, open_clip) -------------------------------------------
    def fetch_archives(self) -> dict[str, Path]:
        from sdsetup.net.filespec import FileSpec

        items = []
        paths = {}
        for step in self.manifest.pip:
            for url in step.archives:
                rel = layout.file_rel(url)
                if rel is None:
                    raise usage_error(_t("manifest: pip step {name}: {url} cannot be served by a bundle",
                                         name=step.name, url=url),
                                      _t("use a GitHub archive URL (https://github.com/OWNER/REPO/archive/REF.zip)"))
                paths[url] = self.path(rel)
                items.append((rel, FileSpec(urls=self.mirrors.file_urls(url), dest=paths[url], label=rel.rsplit("/", 1)[-1])))
        if items:
            self.reporter.say(_t("Source archives: {count}", count=len(items)))
            self.fetch(items, "archive")
        return paths

    # -- pip -----------------------------------------------------------------------------------------
    def resolver(self):
        if self._resolver is None:
            from sdsetup.bundle.resolve import Resolver, ScratchVenv
            from sdsetup.install.pip_run import tool_env

            venv = ScratchVenv(self.state_dir / "venv")
            venv.ensure(tool_env(self.mirrors))
            self._resolver = Resolver(venv, mirrors=self.mirrors, settings=self.settings, target=self.target,
                                      work_dir=self.state_dir, log=self.reporter.detail)
        return self._resolver

    def pip_jobs(self) -> list[PipJob]:
        """What the install's plan would run through pip on a target machine (models and smoke test included)."""
        from sdsetup.install.plan import InstallOptions, build_plan

        plan = build_plan(self.manifest, self.facts, self.mirrors, InstallOptions(backend=self.options.backend),
                          self.state_dir / "plan")
        return pip_jobs(plan.steps, self.decisions)

    def index_args(self, job: PipJob) -> list[str]:
        args = list(self.mirrors.pip_index_args())
        if job.torch and self.tag and self.decisions.torch.index:
            args += self.mirrors.torch_index_args(self.tag)
        return args

    def job_requirements(self, job: PipJob, archives: dict[str, Path]) -> tuple[list[str], str | None]:
        from sdsetup.bundle.repos import show_file

        requirements = list(job.requirements) + [str(archives[url]) for url in job.archives]
        text = None
        if job.requirements_file:
            text = show_file(self.webui_bare, self.manifest.webui.commit, job.requirements_file, self.git_runner())
            if text is None:
                raise usage_error(_t("manifest: pip step {name}: {requirements_file} is not in the web UI at {commit}",
                                     name=job.name, requirements_file=job.requirements_file,
                                     commit=self.manifest.webui.commit[:10]), _t("fix the manifest's requirements_file"))
            req_file = self.state_dir / "requirements" / f"{job.name}.txt"
            atomic_write_text(req_file, text)
            requirements += ["-r", str(req_file)]
        return requirements, text

    def resolve_packages(self, archives: dict[str, Path]) -> list[Any]:
        from sdsetup.bundle.pages import IndexEntry
        from sdsetup.bundle.resolve import Resolved
        from sdsetup.versions import project_name, requirement_name
        from sdsetup.net.filespec import FileSpec

        constraints = self.state_dir / "constraints.txt"
        try:
            constraints.unlink()  # written again by the torch step; the steps before it run without one
        except FileNotFoundError:
            pass
        prefixes = layout.torch_prefixes(self.mirrors)
        stored = self.state.setdefault("steps", {})
        entries: list[IndexEntry] = []
        placed: dict[str, str] = {}  # rel -> sha256 (two different files must not share a place)
        replay: list[tuple[list[Resolved], dict[str, Path]]] = []  # earlier steps, for a fresh scratch venv
        venv_ready = False
        isolated_sources: list[Path] = []
        self.reporter.say(_t("Python packages (pip's own choices for the target)"))
        jobs = self.pip_jobs()
        for job in jobs:
            requirements, req_text = self.job_requirements(job, archives)
            constraint_text = constraints.read_text("utf-8") if constraints.is_file() else None
            fingerprint = _fingerprint({
                "requirements": list(job.requirements), "archives": list(job.archives), "file": req_text,
                "no_build_isolation": job.no_build_isolation, "constraints": None if job.torch else constraint_text,
                "target": self.target.to_json(), "tag": self.tag if job.torch else None,
            })
            record = stored.get(job.name)
            if record and record.get("fingerprint") == fingerprint:
                picks = [Resolved.from_json(p) for p in record["picks"]]
                channels = dict(record.get("channels") or {})
            else:
                resolver = self.resolver()
                if not venv_ready:
                    for earlier, earlier_paths in replay:
                        resolver.absorb(earlier, earlier_paths)
                    venv_ready = True
                picks = resolver.resolve(requirements, self.index_args(job), label=job.name,
                                         no_build_isolation=job.no_build_isolation,
                                         constraints=None if job.torch else constraints, native=job.native)
                # Which index served each file is decided now, against the mirrors that answered (a rerun
                # through other mirrors must put the files in the same places).
                channels = {p.filename: layout.channel_of_pick(p.url, prefixes) if job.torch else "pypi" for p in picks}
                stored[job.name] = {"fingerprint": fingerprint, "picks": [p.to_json() for p in picks], "channels": channels}
                # A changed step invalidates what came after it (their fingerprints include the constraints
                # and the scratch venv they were resolved in).
                names = [j.name for j in jobs]
                for later in names[names.index(job.name) + 1:]:
                    stored.pop(later, None)
                self.save_state()
            items, paths = [], {}
            for pick in picks:
                if pick.local_path:
                    paths[pick.filename] = Path(pick.local_path)
                    continue
                channel = channels.get(pick.filename, "pypi")
                rel = layout.wheel_rel(pick.url, pick.filename, channel=channel, tag=self.tag)
                if not layout.is_safe_rel(rel):
                    raise SdsetupError(_t("pip picked {name} from an odd URL: {url}",
                                          name=pick.name, url=pick.url), _t("report this manifest/mirror pair"), ExitCode.STEP)
                paths[pick.filename] = self.path(rel)
                items.append((rel, FileSpec(urls=(pick.url,), dest=paths[pick.filename], sha256=pick.sha256, label=pick.filename)))
            shas = self.fetch(items, "package")
            for (rel, _spec), pick in zip(items, [p for p in picks if not p.local_path]):
                if placed.get(rel, shas[rel]) != shas[rel]:
                    raise SdsetupError(_t("two different files would both be {rel}",
                                          rel=rel), _t("report this manifest/mirror pair"), ExitCode.STEP)
                placed[rel] = shas[rel]
                root = layout.index_root("torch" if rel.startswith("torch/") else "pypi", self.tag)
                entries.append(IndexEntry(root, pick.name, rel, shas[rel], pick.requires_python))
            if venv_ready:
                self.resolver().absorb(picks, paths)
            replay.append((picks, paths))
            if job.torch:
                names = {requirement_name(r) for r in job.requirements}
                pinned = sorted({project_name(p.name): f"{project_name(p.name)}=={p.version}" for p in picks if project_name(p.name) in names}.values())
                atomic_write_text(constraints, "".join(line + "\n" for line in pinned))
            if not job.no_build_isolation:
                isolated_sources += [paths[p.filename] for p in picks if not p.is_wheel]
            self.reporter.detail(_t("{name}: {count} package(s)", name=job.name, count=len(picks)))
        entries += self.build_requirements(isolated_sources, placed)
        return entries

    def build_requirements(self, sources: list[Path], placed: dict[str, str]) -> list[Any]:
        """Sdists built in an isolated environment fetch their build requirements from the index at
        install time: the bundle's index must offer them."""
        from sdsetup.bundle.pages import IndexEntry
        from sdsetup.bundle.resolve import Resolved, build_requirements
        from sdsetup.net.filespec import FileSpec

        if not sources:
            return []
        wanted = sorted({req for source in sources for req in build_requirements(source)})
        stored = self.state.setdefault("steps", {})
        fingerprint = _fingerprint({"build": wanted, "target": self.target.to_json()})
        record = stored.get("(build requirements)")
        if record and record.get("fingerprint") == fingerprint:
            picks = [Resolved.from_json(p) for p in record["picks"]]
        else:
            resolver = self.resolver()
            extra = ["--ignore-installed"]  # an isolated build starts from an empty environment
            picks = resolver.report(wanted, self.mirrors.pip_index_args(), label="build-requirements", no_build_isolation=False,
                                     constraints=None, extra=[*extra, *self.target.pip_args()])
            stored["(build requirements)"] = {"fingerprint": fingerprint, "picks": [p.to_json() for p in picks]}
            self.save_state()
        items = []
        for pick in picks:
            rel = layout.wheel_rel(pick.url, pick.filename, channel="pypi", tag=None)
            items.append((rel, FileSpec(urls=(pick.url,), dest=self.path(rel), sha256=pick.sha256, label=pick.filename)))
        shas = self.fetch(items, "package")
        self.reporter.detail(_t("build requirements of {sources} source package(s): {picks} package(s)",
                                sources=len(sources), picks=len(picks)))
        entries = []
        for (rel, _spec), pick in zip(items, picks):
            if placed.get(rel, shas[rel]) != shas[rel]:
                raise SdsetupError(_t("two different files would both be {rel}",
                                      rel=rel), _t("report this manifest/mirror pair"), ExitCode.STEP)
            placed[rel] = shas[rel]
            entries.append(IndexEntry("pypi/simple", pick.name, rel, shas[rel], pick.requires_python))
        return entries

    # -- models and Hugging Face files ---------------------------------------------------------------
    def fetch_models(self) -> None:
        from sdsetup.install.failover import model_sources
        from sdsetup.net.filespec import FileSpec

        items = []
        for model in self.manifest.models:
            rel = next((r for r in (layout.file_rel(u) for u in model.urls) if r), None)
            if rel is None:
                self.warnings.append(_t("model {name}: {url} is on a host a bundle does not serve; installs from "
                                        "this bundle fetch it from there (or use "
                                        "--skip-models)", name=model.name, url=model.url))
                continue
            # The same sources an install tries, ModelScope-like alternates included (one sha256 checks them all).
            urls = model_sources([self.mirrors.file_urls(url) for url in model.urls], model.alternates)
            items.append((rel, FileSpec(urls=urls, dest=self.path(rel), sha256=model.sha256, size=model.size, label=model.name)))
        if items:
            self.reporter.say(_t("Models: {count} file(s), {size}",
                                 count=len(items), size=human_bytes(sum(s.size or 0 for _r, s in items))))
            self.fetch(items, "model")

    def fetch_hub(self) -> list[dict[str, str]]:
        from sdsetup.bundle.pages import revision_document
        from sdsetup.install.steps.hub import resolve_commit
        from sdsetup.net.filespec import FileSpec

        if not self.manifest.hub:
            return []
        self.reporter.say(_t("Hugging Face files"))
        commits = self.state.setdefault("hub", {})
        out = []
        for spec in self.manifest.hub:
            key = f"{spec.repo_id}@{spec.revision}"
            commit = spec.revision if spec.pinned else commits.get(key)
            if not commit:
                commit = resolve_commit(self.session, self.settings, self.mirrors, spec)
                commits[key] = commit
                self.save_state()
            items = []
            for name in spec.files:
                canonical = layout.hf_resolve_url(spec.repo_id, commit, name)
                rel = layout.file_rel(canonical)
                items.append((rel, FileSpec(urls=self.mirrors.file_urls(canonical), dest=self.path(rel), sha256=spec.sha256_of(name),
                                            size=spec.size_of(name), label=f"{spec.repo_id}/{name}")))
            self.fetch(items, "hub-file")
            if not spec.pinned:
                rel = layout.file_rel(layout.hf_revision_url(spec.repo_id, spec.revision))
                self.write_file(rel, revision_document(spec.repo_id, spec.revision, commit), "hub-revision")
            self.reporter.detail(_t("{repo_id} @ {commit}: {files} file(s)",
                                    repo_id=spec.repo_id, commit=commit[:10], files=len(spec.files)))
            out.append({"repo_id": spec.repo_id, "revision": spec.revision, "commit": commit})
        return out

    # -- generated files and the lock ----------------------------------------------------------------
    def write_file(self, rel: str, text: str, kind: str) -> None:
        path = self.path(rel)
        self.kinds[rel] = kind
        try:
            if path.read_text("utf-8") == text:
                return
        except (OSError, UnicodeDecodeError):
            pass
        atomic_write_text(path, text)

    def write_pages(self, entries: list[Any]) -> None:
        from sdsetup.bundle.pages import index_pages, profile_text

        for rel, text in index_pages(entries).items():
            self.write_file(rel, text, "index")
        self.base_url = (self.options.base_url or self.out.as_uri()).rstrip("/") + "/"
        description = f"offline bundle: {self.manifest.title} ({self.decisions.backend}{' ' + self.tag if self.tag else ''})"
        self.write_file(layout.PROFILE_NAME, profile_text(self.base_url, description), "meta")

    def tree_files(self) -> list[str]:
        """Every file a static server would serve (the lock, the state folder and partial downloads aside)."""
        found = []
        for dirpath, dirnames, filenames in os.walk(self.out):
            rel_dir = Path(dirpath).relative_to(self.out).as_posix()
            if rel_dir == ".":
                dirnames[:] = [d for d in dirnames if d != layout.STATE_DIR]
            for name in filenames:
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                if rel == layout.LOCK_NAME or layout.is_transient(rel) or Path(dirpath, name).is_symlink():
                    continue
                found.append(rel)
        return sorted(found)

    def write_lock(self, repos: list[LockedRepo], hub: list[dict[str, str]]) -> BundleLock:
        from sdsetup import __version__

        files = []
        for rel in self.tree_files():
            path = self.out / rel
            digest, _cached = self.hashes.sha256(path)
            files.append(LockedFile(rel, digest, path.stat().st_size, self.kinds.get(rel) or layout.kind_of(rel)))
        lock = BundleLock(
            manifest={"name": self.manifest.name, "title": self.manifest.title, "sha256": self.identity["manifest_sha256"],
                      "webui_commit": self.manifest.webui.commit},
            target=self.target.to_json(), backend=self.decisions.backend, torch_tag=self.tag,
            files=tuple(files), repos=tuple(repos), hub=tuple(hub), created_by=f"sdsetup {__version__}",
        )
        atomic_write_json(self.out / layout.LOCK_NAME, lock.to_json())
        return lock

    def summary(self, lock: BundleLock) -> dict[str, Any]:
        by_kind: dict[str, dict[str, int]] = {}
        for item in lock.files:
            entry = by_kind.setdefault(item.kind, {"files": 0, "bytes": 0})
            entry["files"] += 1
            entry["bytes"] += item.size
        return {
            "out": str(self.out),
            "manifest": self.manifest.name,
            "backend": self.decisions.backend,
            "torch_tag": self.tag,
            "target": self.target.to_json(),
            "mirror": self.mirrors.to_json(),
            "files": len(lock.files),
            "bytes": lock.total_bytes,
            "by_kind": by_kind,
            "repos": [{"name": r.name, "path": r.path, "commit": r.commit} for r in lock.repos],
            "hub": list(lock.hub),
            "downloaded_bytes": self.downloaded_bytes,
            "lock": str(self.out / layout.LOCK_NAME),
            "profile": str(self.out / layout.PROFILE_NAME),
            "base_url": self.base_url,
            "log": str(self.log_path) if self.log_path else None,
            "warnings": list(self.warnings),
        }


def create_bundle(settings: Any, out: Path, options: CreateOptions) -> dict[str, Any]:
    return BundleBuilder(settings, Path(out).expanduser().absolute(), options).run()
