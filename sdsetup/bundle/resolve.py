"""What pip will pick for the install, step by step, for the bundle's target.

The install resolves each pip step in the web UI's venv after the earlier steps are installed
(`pip install --dry-run --report`, sdsetup/install/wheelhouse.py). The bundle asks the same pip the
same questions in a scratch venv that looks like that venv at that point:
- the build tools (pip, setuptools, wheel and their pure-Python dependencies) are really installed, so
  `--no-build-isolation` builds (CLIP, jsonmerge) prepare their metadata as in the install;
- everything else picked by earlier steps is present as a *stub*: a `.dist-info` with the picked
  metadata (name, version, Requires-Dist) and no code, which is all pip's resolver reads. Binary wheels
  for another platform cannot be installed here, and need not be.
So each step's report names exactly the files the install will download, for any target.

For another platform or Python, pip only takes wheels (`--only-binary=:all:`). A requirement that has
no wheel at all is taken as an sdist instead: resolved alone (`--no-deps --no-binary NAME`, pip builds
its metadata here), stubbed, and the step resolved again, now resolving that sdist's dependencies.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence
from urllib.parse import urlsplit, urlunsplit

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.versions import project_name, requirement_name, version_tuple
from sdsetup.i18n import t

if TYPE_CHECKING:  # types only: importing these here would slow start-up or make a circle
    from sdsetup.bundle.target import Target
    from sdsetup.net.mirrors import MirrorPlan
    from sdsetup.settings import Settings

BUILD_TOOLS = frozenset({"pip", "setuptools", "wheel"})
# pip reports (`--dry-run --report`) exist from 22.2; platform options with --dry-run (no --target) from 23.3.
PIP_FOR_REPORTS = (22, 2)
PIP_FOR_TARGETS = (23, 3)
STUB_INSTALLER = "sdsetup-bundle-stub"
MAX_SOURCE_ONLY = 25  # sdist-only requirements taken per step before giving up
_NO_MATCH = re.compile(r"No matching distribution found for ([^\s|()]+)")
DEFAULT_BUILD_REQUIRES = ("setuptools>=40.8.0", "wheel")


@dataclass(frozen=True)
class Resolved:
    """One distribution pip picked, with the metadata a stub needs."""

    name: str
    version: str
    url: str
    sha256: str | None
    filename: str
    local_path: str | None  # a file:// pick (a source archive already in the bundle)
    requested: bool
    requires_dist: tuple[str, ...] = ()
    requires_python: str | None = None
    provides_extra: tuple[str, ...] = ()

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    @property
    def is_pure(self) -> bool:
        return self.is_wheel and self.filename.endswith("-none-any.whl")

    def to_json(self) -> dict[str, Any]:
        """For the resume state: a credential in a mirror URL is not written down."""
        data = asdict(self)
        parts = urlsplit(self.url)
        if parts.username or parts.password:
            data["url"] = urlunsplit(parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")))
        data["requires_dist"] = list(self.requires_dist)
        data["provides_extra"] = list(self.provides_extra)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Resolved":
        return cls(**{**data, "requires_dist": tuple(data.get("requires_dist") or ()),
                      "provides_extra": tuple(data.get("provides_extra") or ())})


def parse_resolved(report: dict[str, Any], origin: str) -> list[Resolved]:
    """The picks of a pip report with their metadata (the picks themselves: wheelhouse.parse_report)."""
    from sdsetup.install.wheelhouse import parse_report

    picks = parse_report(report, origin)
    out = []
    for pick, item in zip(picks, report.get("install", [])):
        meta = item.get("metadata") or {}
        out.append(Resolved(
            name=pick.name, version=pick.version, url=pick.url, sha256=pick.sha256, filename=pick.filename,
            local_path=pick.local_path, requested=pick.requested,
            requires_dist=tuple(meta.get("requires_dist") or ()),
            requires_python=meta.get("requires_python"),
            provides_extra=tuple(meta.get("provides_extra") or ()),
        ))
    return out


def source_only_requirement(message: str) -> str | None:
    """The requirement pip found no distribution for (pure; pip's own words)."""
    match = _NO_MATCH.search(message or "")
    return match.group(1).rstrip(",;") if match else None


def stub_metadata(pick: Resolved) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {pick.name}", f"Version: {pick.version}"]
    if pick.requires_python:
        lines.append(f"Requires-Python: {pick.requires_python}")
    lines += [f"Provides-Extra: {extra}" for extra in pick.provides_extra]
    lines += [f"Requires-Dist: {req}" for req in pick.requires_dist]
    return "\n".join(lines) + "\n"


def build_requirements(archive: Path) -> tuple[str, ...]:
    """[build-system] requires of an sdist (zip or tar.gz): what an isolated build fetches from the
    index at install time. Legacy setup.py projects get pip's default."""
    import tarfile
    import zipfile

    from sdsetup.tomlcompat import loads_toml

    text = None
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                names = sorted((n for n in zf.namelist() if n.count("/") <= 1 and n.endswith("pyproject.toml")), key=len)
                if names:
                    text = zf.read(names[0]).decode("utf-8", "replace")
        else:
            with tarfile.open(archive) as tf:
                members = sorted((m for m in tf.getmembers() if m.name.count("/") <= 1 and m.name.endswith("pyproject.toml")),
                                 key=lambda m: len(m.name))
                if members:
                    handle = tf.extractfile(members[0])
                    text = handle.read().decode("utf-8", "replace") if handle else None
    except (OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
        raise SdsetupError(t("{name}: cannot read the source archive ({exc})",
                             name=archive.name, exc=exc), t("run the command again: it is fetched anew"),
                           ExitCode.INTEGRITY) from None
    if text:
        try:
            requires = (loads_toml(text, f"{archive.name}:pyproject.toml").get("build-system") or {}).get("requires")
        except SdsetupError:
            requires = None
        if isinstance(requires, list) and all(isinstance(r, str) for r in requires):
            return tuple(requires)
    return DEFAULT_BUILD_REQUIRES


class ScratchVenv:
    """A venv under the bundle's state folder standing in for the web UI's venv while resolving."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._purelib: Path | None = None

    @property
    def python(self) -> Path:
        from sdsetup.layout import VENV_REL, venv_python_rel

        return self.path / Path(venv_python_rel()).relative_to(VENV_REL)

    def ensure(self, env: dict[str, str]) -> None:
        from sdsetup.install.pip_run import run_checked

        if self.python.exists():
            return
        run_checked([sys.executable, "-m", "venv", str(self.path)], env=env, what=t("creating a scratch venv for pip"),
                    hint=t("on Debian/Ubuntu install the venv module: sudo apt install python3-venv"))

    def pip_version(self) -> tuple[int, ...]:
        from sdsetup.install.pip_run import probe_venv

        return version_tuple(((probe_venv(self.python) or {}).get("packages") or {}).get("pip"))

    def pip_argv(self, need: tuple[int, int]) -> list[str] | None:
        """How to run a pip at least `need` against this venv: its own, else this interpreter's pip
        pointed at it (`pip --python`, pip >= 22.3); None when neither is new enough."""

        if self.pip_version() >= need:
            return [str(self.python), "-m", "pip"]
        try:
            from importlib.metadata import version

            running = version_tuple(version("pip"))
        except Exception:  # no pip next to sdsetup (pipx can do that)
            running = ()
        if running >= max(need, (22, 3)):
            return [sys.executable, "-m", "pip", "--python", str(self.python)]
        return None

    @property
    def purelib(self) -> Path:
        if self._purelib is None:
            from sdsetup import children

            result = children.run([str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], timeout=60)
            if result.returncode != 0:
                raise SdsetupError(t("the scratch venv {path} does not run: {stderr}",
                                     path=self.path, stderr=result.stderr.strip()[-300:]),
                                   t("delete {path} and run again", path=self.path), ExitCode.STEP)
            self._purelib = Path(result.stdout.strip())
        return self._purelib

    def installed(self) -> dict[str, tuple[str, bool, Path]]:
        """{normalized name: (version, is_stub, dist-info dir)}."""
        out = {}
        for info in self.purelib.glob("*.dist-info"):
            try:
                meta = (info / "METADATA").read_text("utf-8", "replace")
            except OSError:
                continue
            name = re.search(r"(?m)^Name:\s*(.+)$", meta)
            version = re.search(r"(?m)^Version:\s*(.+)$", meta)
            if not name or not version:
                continue
            try:
                stub = (info / "INSTALLER").read_text("utf-8").strip() == STUB_INSTALLER
            except OSError:
                stub = False
            out[project_name(name.group(1).strip())] = (version.group(1).strip(), stub, info)
        return out

    def stub(self, pick: Resolved) -> None:
        """Make pip see `pick` installed (replacing a stub of another version)."""
        current = self.installed().get(project_name(pick.name))
        if current and current[0] == pick.version:
            return
        if current and current[1]:
            shutil.rmtree(current[2], ignore_errors=True)
        elif current:
            return  # really installed at another version: a later real install replaces it
        info = self.purelib / f"{re.sub(r'[-.]+', '_', pick.name)}-{pick.version}.dist-info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "METADATA").write_text(stub_metadata(pick), "utf-8")
        (info / "INSTALLER").write_text(STUB_INSTALLER + "\n", "utf-8")
        (info / "RECORD").write_text("", "utf-8")

    def install(self, wheels: Sequence[Path], env: dict[str, str]) -> None:
        """Really install pure-Python wheels (the build tools), without dependencies or an index."""
        from sdsetup.install.pip_run import run_checked

        if not wheels:
            return
        for name in {project_name(Path(w).name.split("-")[0]) for w in wheels}:
            current = self.installed().get(name)
            if current and current[1]:
                shutil.rmtree(current[2], ignore_errors=True)
        run_checked([str(self.python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--ignore-requires-python",
                     *[str(w) for w in wheels]], env=env, what=t("installing build tools into the scratch venv"),
                    hint=t("delete the bundle's .sdsetup-bundle/venv folder and run again"))


class Resolver:
    """Runs pip's resolver for one target in the scratch venv, through the build mirrors."""

    def __init__(self, venv: ScratchVenv, *, mirrors: MirrorPlan, settings: Settings, target: Target, work_dir: Path,
                 log: Callable[[str], None]) -> None:
        from sdsetup.install.pip_run import tool_env

        self.venv = venv
        self.mirrors = mirrors
        self.settings = settings
        self.target = target
        self.work_dir = Path(work_dir)
        self.log = log
        self.env = tool_env(mirrors)
        self._pip: dict[tuple[int, int], list[str]] = {}

    def pip(self, need: tuple[int, int]) -> list[str]:
        """The pip command for reports (need PIP_FOR_REPORTS) or target options (PIP_FOR_TARGETS).

        When neither the scratch venv nor sdsetup's own environment has one, the scratch venv's pip
        is upgraded from the index (pip is a pure-Python wheel, so the same file works anywhere)."""
        if need in self._pip:
            return self._pip[need]
        argv = self.venv.pip_argv(need)
        if argv is None:
            wanted = "pip>=" + ".".join(map(str, need))
            picks = self.report([wanted], self.mirrors.pip_index_args(), label="pip-upgrade", no_build_isolation=False,
                                constraints=None, pip=[str(self.venv.python), "-m", "pip"])
            self.upgrade_pip(picks)
            argv = self.venv.pip_argv(need)
            if argv is None:
                raise SdsetupError(t("pip {version} or newer is needed to resolve for {label}",
                                     version=".".join(map(str, need)), label=self.target.label),
                                   t("upgrade pip where sdsetup runs (python -m pip install -U pip) and run "
                                     "again"), ExitCode.STEP)
        self._pip[need] = argv
        return argv

    def upgrade_pip(self, picks: Sequence[Resolved]) -> None:
        """Install a picked pip wheel into the scratch venv (downloaded to the work folder)."""
        from sdsetup.net.download import download
        from sdsetup.net.filespec import FileSpec
        from sdsetup.net.session import build_session

        wheels = []
        for pick in picks:
            if project_name(pick.name) == "pip" and pick.is_pure:
                dest = self.work_dir / "pip-upgrade" / pick.filename
                download(FileSpec(urls=(pick.url,), dest=dest, sha256=pick.sha256, label=pick.filename), build_session(self.settings),
                         self.settings, progress=False)
                wheels.append(dest)
        self.venv.install(wheels, self.env)

    def report(self, requirements: Sequence[str], index_args: Sequence[str], *, label: str, no_build_isolation: bool,
               constraints: Path | None, extra: Sequence[str] = (), pip: Sequence[str] | None = None) -> list[Resolved]:
        """One `pip install --dry-run --report` in the scratch venv: pip's picks with their metadata."""
        from sdsetup.install.pip_run import proxy_secrets, run_checked

        self.work_dir.mkdir(parents=True, exist_ok=True)
        report_file = self.work_dir / f"pip-report-{re.sub(r'[^A-Za-z0-9_.-]', '_', label)}.json"
        if pip is None:
            pip = self.pip(PIP_FOR_TARGETS if "--platform" in extra or "--python-version" in extra else PIP_FOR_REPORTS)
        argv = [*pip, "install", "--dry-run", "--quiet", "--report", str(report_file),
                "--prefer-binary", *index_args, *extra]
        if no_build_isolation:
            argv.append("--no-build-isolation")
        if constraints is not None and constraints.is_file():
            argv += ["--constraint", str(constraints)]
        argv += list(requirements)
        try:
            run_checked(argv, env=self.env, what=f"resolving {label} for the bundle", secrets=proxy_secrets(self.settings),
                        hint="the index did not offer a matching set of packages for this target: check --platform, "
                             "--python-version and the mirror; the log file has pip's full output")
            report = json.loads(report_file.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise SdsetupError(t("resolving {label}: pip wrote no readable report ({exc})",
                                 label=label, exc=exc), t("run the command again"),
                               ExitCode.STEP) from None
        finally:
            try:
                report_file.unlink()
            except OSError:
                pass
        return parse_resolved(report, f"pip's report for {label}")

    def resolve(self, requirements: Sequence[str], index_args: Sequence[str], *, label: str,
                no_build_isolation: bool = False, constraints: Path | None = None, native: bool = False) -> list[Resolved]:
        """Everything pip would download for this step, on the target (sdist-only packages included).
        `native`: pure-Python only (pip itself), resolved without target options."""
        if self.target.native or native:
            return self.report(requirements, index_args, label=label, no_build_isolation=no_build_isolation,
                                constraints=constraints)
        self.pip(PIP_FOR_TARGETS)  # before the loop: a failure here is not a package without wheels
        sources: list[Resolved] = []
        tried: set[str] = set()
        for _ in range(MAX_SOURCE_ONLY):
            try:
                picks = self.report(requirements, index_args, label=label, no_build_isolation=no_build_isolation,
                                     constraints=constraints, extra=self.target.pip_args())
            except SdsetupError as error:
                wanted = source_only_requirement(error.message)
                if not wanted or requirement_name(wanted) in tried:
                    raise
                tried.add(requirement_name(wanted))
                sources.append(self._source_only(wanted, index_args, label=label, no_build_isolation=no_build_isolation,
                                                 constraints=constraints, cause=error))
                continue
            return [*sources, *picks]
        raise SdsetupError(t("resolving {label}: more than {max_source_only} packages have no wheel for {target}",
                             label=label, max_source_only=MAX_SOURCE_ONLY, target=self.target.label),
                           t("build the bundle on a machine like the target (no --platform)"), ExitCode.STEP)

    def _source_only(self, requirement: str, index_args: Sequence[str], *, label: str, no_build_isolation: bool,
                     constraints: Path | None, cause: SdsetupError) -> Resolved:
        name = requirement_name(requirement)
        try:
            picks = self.report([requirement], index_args, label=f"{label}-{name}-sdist", no_build_isolation=no_build_isolation,
                                 constraints=constraints, extra=["--no-deps", "--no-binary", name])
        except SdsetupError:
            picks = []
        sdist = next((p for p in picks if project_name(p.name) == name and not p.is_wheel), None)
        if sdist is None:
            raise SdsetupError(
                t("{requirement} has no wheel for {label} (Python {python_version}) and no source distribution on "
                  "the index ({message})", requirement=requirement, label=self.target.label,
                  python_version=self.target.python_version, message=cause.message),
                t("if the index did not answer, check the network and mirror (sdsetup mirrors probe); otherwise pick another "
                  "--platform/--python-version, or build the bundle on a machine like the target"),
                ExitCode.STEP,
            )
        self.log(f"{sdist.filename}: no wheel for the target, taking the source distribution")
        self.venv.stub(sdist)
        return sdist

    def absorb(self, picks: Sequence[Resolved], paths: dict[str, Path]) -> None:
        """Make the scratch venv look like the install's venv after this step: build tools and their
        pure-Python dependencies really installed, everything else stubbed."""
        real = any(project_name(p.name) in BUILD_TOOLS for p in picks)
        installed = self.venv.installed()
        wheels = []
        for pick in picks:
            current = installed.get(project_name(pick.name))
            if pick.is_pure and (real or (current and not current[1])):
                if not (current and not current[1] and current[0] == pick.version):
                    wheels.append(paths[pick.filename])
            else:
                self.venv.stub(pick)
        self.venv.install(wheels, self.env)

