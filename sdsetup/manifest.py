"""Manifests: what an install consists of, as data (`manifests/*.toml`), loaded into frozen dataclasses.

A manifest names the web UI commit, the launch-time repositories with their pins, the pip steps in the
web UI's own order, the models and Hugging Face files, the launch settings and a disk budget. URLs are
the canonical upstream ones; the mirror layer rewrites them. Every problem is reported with the file,
the key and what is wrong (exit code USAGE). The schema is documented in docs/manifest.md.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.versions import requirement_name
from sdsetup.i18n import t

MANIFEST_SCHEMA = 1
DEFAULT_MANIFEST = "a1111"
BACKENDS = ("cuda", "rocm", "mps", "cpu")

_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_HF_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_TORCH_TAG = re.compile(r"^(cu\d{3}|rocm\d+(\.\d+)*|cpu)$")


@dataclass(frozen=True)
class RepoSpec:
    """A git repository at a pinned commit. `path` is relative to the install directory."""

    name: str
    path: str
    url: str  # canonical clone URL
    commit: str
    fallback_urls: tuple[str, ...] = ()  # other canonical sources of the same commit (forks)
    url_env: str | None = None  # the web UI's override variable, e.g. STABLE_DIFFUSION_REPO
    commit_env: str | None = None
    replaces: str | None = None  # the upstream URL this one stands in for (documentation, dry-run)
    ref: str | None = None  # the tag or branch the commit was taken from (shown, never fetched by name)
    markers: tuple[str, ...] = ()  # [webui] only: files every checkout of it tracks (recognises a clone from elsewhere)
    evidence: str | None = None  # where the pin was read, and when (docs/manifest.md, "Evidence")

    @property
    def urls(self) -> tuple[str, ...]:
        return (self.url, *self.fallback_urls)


@dataclass(frozen=True)
class TorchSpec:
    """How torch is installed for one backend."""

    backend: str
    packages: tuple[str, ...]
    index: str | None  # canonical index template with {tag}; None = the PyPI channel
    tags: tuple[str, ...] = ()  # wheel tags in order of preference (cu121, cu118, rocm5.6, cpu)
    max_compute_capability: str | None = None  # newest NVIDIA architecture these wheels support
    xformers: str | None = None  # installed when the launch flags ask for --xformers
    xformers_tags: tuple[str, ...] = ()  # the tags that xformers build matches (others: --opt-sdp-attention)
    download_bytes: int = 0
    installed_bytes: int = 0
    evidence: str | None = None

    @property
    def torch_version(self) -> str | None:
        """The version torch is pinned to (`torch==2.1.2` → 2.1.2), None when not pinned exactly."""
        for requirement in self.packages:
            match = re.match(r"^\s*torch\s*==\s*([0-9][^\s;,]*)", requirement)
            if match:
                return match.group(1)
        return None


@dataclass(frozen=True)
class PipStep:
    """One pip step after torch, in the web UI's order."""

    name: str
    packages: tuple[str, ...] = ()
    archives: tuple[str, ...] = ()  # canonical URLs of source archives (downloaded through the engine)
    requirements_file: str | None = None  # relative to the install directory (the web UI checkout)
    no_build_isolation: bool = False
    evidence: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    name: str
    path: str  # relative to the install directory
    url: str
    sha256: str
    size: int | None = None
    fallback_urls: tuple[str, ...] = ()
    # Other upstreams of the same bytes (ModelScope for SD 1.5): not rewritten by mirrors, tried after the
    # mirrors of `url` and before `url` itself when the routing sent its channel to a mirror.
    alternates: tuple[str, ...] = ()
    evidence: str | None = None

    @property
    def urls(self) -> tuple[str, ...]:
        return (self.url, *self.fallback_urls)


@dataclass(frozen=True)
class HubRepoSpec:
    """Files the web UI loads from the Hugging Face Hub at first model load, pre-seeded into HF_HOME."""

    repo_id: str
    revision: str  # a 40-hex commit, or a branch name resolved at install time (X-Repo-Commit)
    files: tuple[str, ...]
    # (file name, sha256) for the files whose bytes a public copy substantiates: a mirror serving other
    # bytes fails that source, and the next one is tried.
    hashes: tuple[tuple[str, str], ...] = ()
    sizes: tuple[tuple[str, int], ...] = ()  # (file name, bytes) where pinned with the hash
    evidence: str | None = None  # of the revision
    file_evidence: tuple[tuple[str, str], ...] = ()  # (file name, evidence) of each pinned file

    @property
    def pinned(self) -> bool:
        return bool(_COMMIT.match(self.revision))

    def sha256_of(self, name: str) -> str | None:
        return dict(self.hashes).get(name)

    def size_of(self, name: str) -> int | None:
        return dict(self.sizes).get(name)


@dataclass(frozen=True)
class LaunchSpec:
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    hf_offline: bool = False  # HF_HUB_OFFLINE=1 (+ TRANSFORMERS_OFFLINE=1) once the Hub files are seeded


@dataclass(frozen=True)
class SmokeSpec:
    """What the smoke test needs in the web UI's venv beyond the web UI's own packages."""

    packages: tuple[str, ...] = ()


@dataclass(frozen=True)
class LauncherSpec:
    """Which adapter in sdsetup/launchers/ writes and checks this UI's launch configuration."""

    kind: str = "a1111"  # a1111 | forge | comfyui


@dataclass(frozen=True)
class PythonSpec:
    supported: tuple[str, ...] = ("3.10",)
    recommended: str = "3.10"
    pip_minimum: str = "25.1"


@dataclass(frozen=True)
class DiskSpec:
    """Estimates beyond what the manifest already sizes (torch per backend, models)."""

    repositories_bytes: int = 0  # the web UI checkout and the launch-time repositories
    packages_bytes: int = 0  # every pip step after torch: wheelhouse copy + installed
    tmp_bytes: int = 0  # pip's build and unpack space in the temp directory
    slack_bytes: int = 0  # kept free on every filesystem written to


@dataclass(frozen=True)
class Manifest:
    name: str
    title: str
    source: str  # where it was loaded from (file path)
    webui: RepoSpec
    python: PythonSpec
    torch: Mapping[str, TorchSpec]
    pip: tuple[PipStep, ...]
    repositories: tuple[RepoSpec, ...]
    models: tuple[ModelSpec, ...]
    hub: tuple[HubRepoSpec, ...]
    launch: LaunchSpec
    disk: DiskSpec
    smoke: SmokeSpec = SmokeSpec()
    schema: int = MANIFEST_SCHEMA
    launcher: LauncherSpec = LauncherSpec()
    held: tuple[str, ...] = ()  # packages kept at their installed version besides torch & co (`ext`, `update`, launch)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["torch"] = {name: asdict(spec) for name, spec in self.torch.items()}
        data["launch"]["env"] = dict(self.launch.env)
        return data


# --- validation -------------------------------------------------------------------------------------


class _Reader:
    """Reads typed values out of a parsed TOML table; errors name the file and the dotted key."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def fail(self, key: str, problem: str, hint: str | None = None) -> SdsetupError:
        return SdsetupError(
            t("manifest {origin}: key '{key}': {problem}", origin=self.origin, key=key, problem=problem),
            hint or t("fix the manifest (its schema is described in docs/manifest.md)"),
            ExitCode.USAGE,
        )

    def table(self, data: Any, key: str) -> Mapping[str, Any]:
        if not isinstance(data, Mapping):
            raise self.fail(key, f"expected a table, got {type(data).__name__}")
        return data

    def known(self, data: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> None:
        for name in data:
            if name not in allowed:
                where = f"{key}.{name}" if key else name
                raise self.fail(where, "unknown key", f"known keys here: {', '.join(allowed)}")

    def get(self, data: Mapping[str, Any], key: str, prefix: str, kind: type | tuple, *, required: bool = True, default: Any = None) -> Any:
        where = f"{prefix}.{key}" if prefix else key
        if key not in data:
            if required:
                raise self.fail(where, "missing")
            return default
        value = data[key]
        if kind is int and isinstance(value, bool):
            raise self.fail(where, f"expected a whole number, got {value!r}")
        if not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise self.fail(where, f"expected {_KIND_WORDS.get(names, names)}, got {type(value).__name__} {value!r}")
        return value

    def text(self, data, key, prefix, *, required=True, default=None, pattern: re.Pattern | None = None, what: str = "") -> str | None:
        value = self.get(data, key, prefix, str, required=required, default=default)
        if value is None:
            return None
        where = f"{prefix}.{key}" if prefix else key
        if not value.strip():
            raise self.fail(where, "is empty")
        if pattern is not None and not pattern.match(value):
            raise self.fail(where, f"'{value}' is not {what}")
        return value

    def strings(self, data, key, prefix, *, required=False) -> tuple[str, ...]:
        value = self.get(data, key, prefix, list, required=required, default=[])
        where = f"{prefix}.{key}" if prefix else key
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise self.fail(f"{where}[{index}]", f"expected a non-empty string, got {item!r}")
        return tuple(value)

    def count(self, data, key, prefix, *, required=False, default=0) -> int:
        value = self.get(data, key, prefix, int, required=required, default=default)
        if value is not None and value < 0:
            raise self.fail(f"{prefix}.{key}", "must not be negative")
        return value

    def url(self, data, key, prefix, *, required=True, git: bool = False) -> str | None:
        value = self.text(data, key, prefix, required=required)
        if value is None:
            return None
        self.check_url(value, f"{prefix}.{key}", git=git)
        return value

    def check_url(self, value: str, where: str, *, git: bool = False) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if parts.scheme not in ("https", "http", "file") or (parts.scheme != "file" and not parts.hostname):
            raise self.fail(where, f"'{value}' is not an http(s):// or file:// URL")
        if parts.username or parts.password:
            raise self.fail(where, "URLs in a manifest must not carry credentials", "put credentials in the proxy or mirror settings")

    def packages(self, data, key, prefix, *, required=False) -> tuple[str, ...]:
        values = self.strings(data, key, prefix, required=required)
        where = f"{prefix}.{key}" if prefix else key
        for index, item in enumerate(values):
            check_package(item, f"{where}[{index}]", self)
        return values

    def rel_path(self, data, key, prefix, *, required=True) -> str | None:
        value = self.text(data, key, prefix, required=required)
        if value is None:
            return None
        check_relative_path(value, f"{prefix}.{key}", self)
        return value


_KIND_WORDS = {"str": "a string", "int": "a whole number", "bool": "true or false", "list": "a list", "dict": "a table"}


# Names no manifest path may use as a component: git's own data (a checkout there would rewrite the
# repository's objects or hooks) and sdsetup's state folder (the install record, journal and lock).
_RESERVED_PARTS = {".git": ".git", ".sdsetup": ".sdsetup"}


def check_relative_path(value: str, where: str, reader: _Reader) -> None:
    """A manifest path must name something strictly inside the install directory, outside .git and .sdsetup.

    `fsutil.safe_join` checks containment again at use; this check refuses the manifest before anything
    is downloaded, naming the key.
    """
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise reader.fail(where, f"{value!r} contains a control character", "use a plain relative path")
    rel = value.replace("\\", "/")
    if rel.startswith("/") or (len(rel) > 1 and rel[1] == ":"):
        raise reader.fail(where, f"'{value}' must be relative to the install directory", "use a path like models/Stable-diffusion/x.safetensors")
    parts = [part for part in rel.split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts):
        raise reader.fail(where, f"'{value}' escapes the install directory", "remove '..' from the path")
    if not parts:
        raise reader.fail(where, f"'{value}' names the install directory itself", "name a folder or file inside it, e.g. repositories/name")
    for part in parts:
        # Windows and macOS file systems ignore case and trailing dots/spaces: `.GIT`, `.git.` are `.git` there.
        reserved = _RESERVED_PARTS.get(part.rstrip(". ").lower())
        if reserved:
            raise reader.fail(where, f"'{value}' lies inside {reserved}", f"{reserved} folders belong to git and sdsetup; choose another path")


def check_package(value: str, where: str, reader: _Reader) -> None:
    """A requirement string reaches pip as one argument: one that starts with '-' would be read as an option."""
    if value.lstrip().startswith("-"):
        raise reader.fail(where, f"'{value}' starts with '-' (pip would read it as an option)",
                          "give a requirement like name==1.2.3; index and build options are not manifest data")


_REF_CHARS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


def is_plain_ref(value: str) -> bool:
    """A branch/tag name or commit id by git's check-ref-format rules, safe to put in a URL path."""
    if _COMMIT.match(value):
        return True
    if not _REF_CHARS.match(value) or value.endswith(("/", ".", ".lock")) or "//" in value or ".." in value:
        return False
    return not any(part.startswith(".") or part.endswith(".lock") for part in value.split("/"))


def _repo(r: _Reader, data: Any, prefix: str, *, needs_path: bool) -> RepoSpec:
    data = r.table(data, prefix)
    keys = ("name", "path", "url", "commit", "ref", "fallback_urls", "url_env", "commit_env", "replaces", "evidence")
    r.known(data, prefix, keys if needs_path else (*keys, "markers"))
    markers = r.strings(data, "markers", prefix)
    for index, marker in enumerate(markers):
        check_relative_path(marker, f"{prefix}.markers[{index}]", r)
    fallbacks = r.strings(data, "fallback_urls", prefix)
    for index, url in enumerate(fallbacks):
        r.check_url(url, f"{prefix}.fallback_urls[{index}]", git=True)
    commit = r.text(data, "commit", prefix, pattern=_COMMIT, what="a full 40-character lowercase git commit id")
    return RepoSpec(
        name=r.text(data, "name", prefix, required=needs_path, default="webui") or "webui",
        path=r.rel_path(data, "path", prefix) if needs_path else ".",
        url=r.url(data, "url", prefix, git=True),
        commit=commit,
        fallback_urls=fallbacks,
        url_env=r.text(data, "url_env", prefix, required=False, pattern=_ENV_NAME, what="an environment variable name"),
        commit_env=r.text(data, "commit_env", prefix, required=False, pattern=_ENV_NAME, what="an environment variable name"),
        replaces=r.url(data, "replaces", prefix, required=False),
        ref=r.text(data, "ref", prefix, required=False),
        markers=tuple(m.replace("\\", "/").strip("/") for m in markers),
        evidence=r.text(data, "evidence", prefix, required=False),
    )


def _torch(r: _Reader, backend: str, data: Any) -> TorchSpec:
    prefix = f"torch.{backend}"
    data = r.table(data, prefix)
    r.known(data, prefix, ("packages", "index", "tags", "max_compute_capability", "xformers", "xformers_tags",
                              "download_bytes", "installed_bytes", "evidence"))
    packages = r.packages(data, "packages", prefix, required=True)
    if not packages:
        raise r.fail(f"{prefix}.packages", "is empty", "name at least torch, e.g. [\"torch==2.1.2\"]")
    if not any(requirement_name(p) == "torch" for p in packages):
        raise r.fail(f"{prefix}.packages", "does not name torch")
    tags = r.strings(data, "tags", prefix)
    for index, tag in enumerate(tags):
        if not _TORCH_TAG.match(tag):
            raise r.fail(f"{prefix}.tags[{index}]", f"'{tag}' is not a torch wheel tag", "use e.g. cu121, cu128, rocm5.6 or cpu")
    index = r.text(data, "index", prefix, required=False)
    if index is not None:
        r.check_url(index.replace("{tag}", "tag"), f"{prefix}.index")
        if "{tag}" in index and not tags:
            raise r.fail(f"{prefix}.tags", "missing (the index has a {tag} placeholder)")
    xformers_tags = r.strings(data, "xformers_tags", prefix)
    for position, tag in enumerate(xformers_tags):
        if tag not in tags:
            raise r.fail(f"{prefix}.xformers_tags[{position}]", f"'{tag}' is not one of this backend's tags ({', '.join(tags) or 'none'})")
    capability = r.text(data, "max_compute_capability", prefix, required=False, pattern=re.compile(r"^\d+\.\d+$"), what="a compute capability like 9.0")
    return TorchSpec(
        backend=backend,
        packages=packages,
        index=index,
        tags=tags,
        max_compute_capability=capability,
        xformers=_xformers(r, data, prefix),
        xformers_tags=xformers_tags,
        download_bytes=r.count(data, "download_bytes", prefix),
        installed_bytes=r.count(data, "installed_bytes", prefix),
        evidence=r.text(data, "evidence", prefix, required=False),
    )


def _xformers(r: _Reader, data: Mapping[str, Any], prefix: str) -> str | None:
    value = r.text(data, "xformers", prefix, required=False)
    if value is not None:
        check_package(value, f"{prefix}.xformers", r)
    return value


def _pip_step(r: _Reader, data: Any, prefix: str) -> PipStep:
    data = r.table(data, prefix)
    r.known(data, prefix, ("name", "packages", "archives", "requirements_file", "no_build_isolation", "evidence"))
    archives = r.strings(data, "archives", prefix)
    for index, url in enumerate(archives):
        r.check_url(url, f"{prefix}.archives[{index}]")
    step = PipStep(
        name=r.text(data, "name", prefix, pattern=_NAME, what="a short name (letters, digits, . _ -)"),
        packages=r.packages(data, "packages", prefix),
        archives=archives,
        requirements_file=r.rel_path(data, "requirements_file", prefix, required=False),
        no_build_isolation=r.get(data, "no_build_isolation", prefix, bool, required=False, default=False),
        evidence=r.text(data, "evidence", prefix, required=False),
    )
    if not (step.packages or step.archives or step.requirements_file):
        raise r.fail(prefix, "installs nothing", "give packages, archives or requirements_file")
    return step


def _model(r: _Reader, data: Any, prefix: str) -> ModelSpec:
    data = r.table(data, prefix)
    r.known(data, prefix, ("name", "path", "url", "sha256", "size", "fallback_urls", "alternates", "evidence"))
    fallbacks = r.strings(data, "fallback_urls", prefix)
    for index, url in enumerate(fallbacks):
        r.check_url(url, f"{prefix}.fallback_urls[{index}]")
    alternates = r.strings(data, "alternates", prefix)
    for index, url in enumerate(alternates):
        r.check_url(url, f"{prefix}.alternates[{index}]")
    sha = r.text(data, "sha256", prefix, pattern=_SHA256, what="a 64-character lowercase hex sha256")
    return ModelSpec(
        name=r.text(data, "name", prefix),
        path=r.rel_path(data, "path", prefix),
        url=r.url(data, "url", prefix),
        sha256=sha,
        size=r.count(data, "size", prefix, default=None),
        fallback_urls=fallbacks,
        alternates=alternates,
        evidence=r.text(data, "evidence", prefix, required=False),
    )


def _hub_files(r: _Reader, data: Mapping[str, Any], prefix: str) -> tuple[tuple[str, ...], tuple, tuple, tuple]:
    """`files`: names, or tables {name, sha256, size?, evidence?} for files whose bytes are pinned."""
    items = r.get(data, "files", prefix, list)
    if not items:
        raise r.fail(f"{prefix}.files", "is empty")
    names, hashes, sizes, evidence = [], [], [], []
    for index, item in enumerate(items):
        where = f"{prefix}.files[{index}]"
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict):
            r.known(item, where, ("name", "sha256", "size", "evidence"))
            names.append(r.text(item, "name", where))
            hashes.append((names[-1], r.text(item, "sha256", where, pattern=_SHA256, what="a 64-character lowercase hex sha256")))
            size = r.count(item, "size", where, default=None)
            if size is not None:
                sizes.append((names[-1], size))
            note = r.text(item, "evidence", where, required=False)
            if note is not None:
                evidence.append((names[-1], note))
        else:
            raise r.fail(where, "is neither a file name nor a table {name, sha256}")
        check_relative_path(names[-1], where, r)
    return tuple(names), tuple(hashes), tuple(sizes), tuple(evidence)


def _hub(r: _Reader, data: Any, prefix: str) -> HubRepoSpec:
    data = r.table(data, prefix)
    r.known(data, prefix, ("repo_id", "revision", "files", "evidence"))
    files, hashes, sizes, file_evidence = _hub_files(r, data, prefix)
    return HubRepoSpec(
        repo_id=r.text(data, "repo_id", prefix, pattern=_HF_REPO, what="a Hub repo id like org/name"),
        revision=_revision(r, data, prefix),
        files=files,
        hashes=hashes,
        sizes=sizes,
        evidence=r.text(data, "evidence", prefix, required=False),
        file_evidence=file_evidence,
    )


def _revision(r: _Reader, data: Mapping[str, Any], prefix: str) -> str:
    value = r.text(data, "revision", prefix, required=False, default="main")
    if not is_plain_ref(value):
        raise r.fail(f"{prefix}.revision", f"'{value}' is not a plain branch/tag name or commit id",
                     "use a branch such as main, a tag, or a 40-character commit id")
    return value


def _launch(r: _Reader, data: Any) -> LaunchSpec:
    data = r.table(data, "launch")
    r.known(data, "launch", ("args", "env", "hf_offline"))
    env = r.get(data, "env", "launch", Mapping, required=False, default={})
    pairs = []
    for name, value in env.items():
        if not _ENV_NAME.match(name):
            raise r.fail(f"launch.env.{name}", "is not an environment variable name")
        if not isinstance(value, str):
            raise r.fail(f"launch.env.{name}", f"expected a string, got {value!r}")
        pairs.append((name, value))
    return LaunchSpec(
        args=r.strings(data, "args", "launch"),
        env=tuple(pairs),
        hf_offline=r.get(data, "hf_offline", "launch", bool, required=False, default=False),
    )


def parse_manifest(data: Mapping[str, Any], origin: str) -> Manifest:
    """Validate a parsed TOML document into a Manifest (pure; `origin` names it in messages)."""
    r = _Reader(origin)
    top = ("schema", "name", "title", "webui", "python", "torch", "pip", "repositories", "models", "hub", "launch", "disk", "smoke", "launcher", "held")
    r.known(data, "", top)
    schema = r.get(data, "schema", "", int)
    if schema != MANIFEST_SCHEMA:
        raise r.fail("schema", f"version {schema} is not supported (this sdsetup reads version {MANIFEST_SCHEMA})",
                     "upgrade sdsetup or use a manifest written for this version")
    name = r.text(data, "name", "", pattern=_NAME, what="a short name (letters, digits, . _ -)")

    python_data = r.table(data.get("python", {}), "python")
    r.known(python_data, "python", ("supported", "recommended", "pip_minimum"))
    version = re.compile(r"^3\.\d+$")
    if "supported" in python_data and not python_data["supported"]:
        raise r.fail("python.supported", "is empty: no Python version would be accepted",
                     "list the versions the web UI runs on, e.g. supported = [\"3.10\"], or leave the key out")
    supported = r.strings(python_data, "supported", "python") or ("3.10",)
    for index, item in enumerate(supported):
        if not version.match(item):
            raise r.fail(f"python.supported[{index}]", f"'{item}' is not a Python version like 3.10")
    python = PythonSpec(
        supported=supported,
        recommended=r.text(python_data, "recommended", "python", required=False, default=supported[0], pattern=version, what="a Python version like 3.10"),
        pip_minimum=r.text(python_data, "pip_minimum", "python", required=False, default="25.1",
                           pattern=re.compile(r"^\d+(\.\d+)*$"), what="a version like 25.1"),
    )

    torch_data = r.table(r.get(data, "torch", "", Mapping), "torch")
    r.known(torch_data, "torch", BACKENDS)
    torch = {backend: _torch(r, backend, spec) for backend, spec in torch_data.items()}
    if not torch:
        raise r.fail("torch", "names no backend", f"add at least one of [torch.{'] [torch.'.join(BACKENDS)}]")

    def array(key: str) -> list:
        value = r.get(data, key, "", list, required=False, default=[])
        return [(f"{key}[{index}]", item) for index, item in enumerate(value)]

    pip_steps = tuple(_pip_step(r, item, where) for where, item in array("pip"))
    repositories = tuple(_repo(r, item, where, needs_path=True) for where, item in array("repositories"))
    models = tuple(_model(r, item, where) for where, item in array("models"))
    hub = tuple(_hub(r, item, where) for where, item in array("hub"))

    _unique(r, "pip", [s.name for s in pip_steps], "name")
    _unique(r, "repositories", [s.path for s in repositories], "path")
    _unique(r, "repositories", [s.name for s in repositories], "name")
    _unique(r, "models", [s.path for s in models], "path")

    disk_data = r.table(data.get("disk", {}), "disk")
    disk_keys = ("repositories_bytes", "packages_bytes", "tmp_bytes", "slack_bytes")
    r.known(disk_data, "disk", disk_keys)
    disk = DiskSpec(**{key: r.count(disk_data, key, "disk") for key in disk_keys})

    smoke_data = r.table(data.get("smoke", {}), "smoke")
    r.known(smoke_data, "smoke", ("packages",))
    smoke = SmokeSpec(packages=r.packages(smoke_data, "packages", "smoke"))

    from sdsetup.launchers import KINDS

    launcher_data = r.table(data.get("launcher", {}), "launcher")
    r.known(launcher_data, "launcher", ("kind",))
    kind = r.text(launcher_data, "kind", "launcher", required=False, default="a1111")
    if kind not in KINDS:
        raise r.fail("launcher.kind", f"'{kind}' is not a known launcher", f"use one of: {', '.join(KINDS)}")

    return Manifest(
        name=name,
        title=r.text(data, "title", "", required=False, default=name) or name,
        source=origin,
        webui=_repo(r, r.get(data, "webui", "", Mapping), "webui", needs_path=False),
        python=python,
        torch=torch,
        pip=pip_steps,
        repositories=repositories,
        models=models,
        hub=hub,
        launch=_launch(r, data.get("launch", {})),
        disk=disk,
        smoke=smoke,
        schema=schema,
        launcher=LauncherSpec(kind=kind),
        held=_held(r, data),
    )


_PROJECT = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")


def _held(r: _Reader, data: Mapping[str, Any]) -> tuple[str, ...]:
    """`held = ["gradio", ...]`: project names only; each is held at the version the venv has."""
    values = r.strings(data, "held", "")
    seen: set[str] = set()
    for index, value in enumerate(values):
        if not _PROJECT.match(value):
            raise r.fail(f"held[{index}]", f"'{value}' is not a package name",
                         "give only the name, e.g. held = [\"gradio\"]: it is held at the version the install put in the venv")
        name = re.sub(r"[-_.]+", "-", value).lower()
        if name in seen:
            raise r.fail(f"held[{index}]", f"'{value}' appears twice")
        seen.add(name)
    return values


def _unique(r: _Reader, key: str, values: list[str], field_name: str) -> None:
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise r.fail(f"{key}[{index}].{field_name}", f"'{value}' appears twice")
        seen.add(value)


# --- finding and loading ----------------------------------------------------------------------------


def builtin_manifest_dir() -> Path:
    import sdsetup.manifests as package  # the top-level manifests/ directory, shipped inside the package

    return Path(package.__file__).resolve().parent


def builtin_names() -> list[str]:
    directory = builtin_manifest_dir()
    names = []
    for path in sorted(directory.glob("*.toml")):
        try:
            text = path.read_text("utf-8")
        except OSError:
            continue
        if re.search(r"(?m)^\s*\[webui\]", text):  # mirrors.toml, known_errors.toml … are not install manifests
            names.append(path.stem)
    return names


def resolve_manifest_path(name_or_path: str | None) -> Path:
    """A built-in name (a1111, a1111-dev) or a path to a .toml file."""
    value = (name_or_path or DEFAULT_MANIFEST).strip()
    if not value:
        value = DEFAULT_MANIFEST
    candidate = Path(value).expanduser()
    looks_like_path = value.endswith(".toml") or "/" in value or "\\" in value
    if looks_like_path:
        if not candidate.is_file():
            raise SdsetupError(t("manifest file not found: {path}", path=candidate), t("check the --manifest path"),
                               ExitCode.USAGE)
        return candidate
    if not _NAME.match(value) or value not in builtin_names():
        known = ", ".join(builtin_names())
        raise SdsetupError(t("unknown manifest '{name}'", name=value), t("use one of: {known}, or the path of a .toml file", known=known),
                       ExitCode.USAGE)
    return builtin_manifest_dir() / f"{value}.toml"


def load_manifest(name_or_path: str | None = None) -> Manifest:
    from sdsetup.tomlcompat import load_toml

    path = resolve_manifest_path(name_or_path)
    data = load_toml(path, "manifest")
    return parse_manifest(data, str(path))


# --- evidence ---------------------------------------------------------------------------------------

# A table holding any of these pins something upstream: its `evidence` says where that was read, and when.
PIN_KEYS = ("commit", "revision", "sha256", "size", "url", "index", "archives", "alternates", "fallback_urls")
_READ_DATE = re.compile(r"\b20\d\d-[01]\d-[0-3]\d\b")


def pins_without_evidence(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    """'key: problem' for every table of a parsed manifest that pins a commit, revision, sha256, size or URL
    without an `evidence` note naming a source and the date it was read (YYYY-MM-DD).

    Built-in manifests must pass this (tests/test_pins_evidence.py); a user's own manifest need not.
    """
    problems: list[str] = []
    if any(key in data for key in PIN_KEYS):
        note = data.get("evidence")
        where = prefix or "(top level)"
        if not isinstance(note, str) or not note.strip():
            problems.append(f"{where}: pins {', '.join(k for k in PIN_KEYS if k in data)} without evidence")
        elif not _READ_DATE.search(note):
            problems.append(f"{where}: evidence names no date it was read (YYYY-MM-DD)")
        elif len(_READ_DATE.sub("", note).strip(" ;,.")) < 12:
            problems.append(f"{where}: evidence names no source")
    for key, value in data.items():
        where = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            problems += pins_without_evidence(value, where)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    problems += pins_without_evidence(item, f"{where}[{index}]")
    return problems
