"""The web UI's venv (DIR/venv, where webui.sh/webui.bat look for it) with a supported Python, and
pip upgraded through the mirror (>= 25.1: it resumes interrupted downloads)."""

from __future__ import annotations

from typing import Any

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.i18n import t
from sdsetup.install.steps.base import Step
from sdsetup.redact import redact_url
from sdsetup.versions import version_tuple  # noqa: F401 (wheelhouse imports it from here)
from sdsetup.i18n import t



def venv_state(probe: dict[str, Any] | None, spec: Any) -> str:
    """'missing', 'python-unsupported', 'pip-old' or 'ok' (pure; table-tested)."""
    if not probe:
        return "missing"
    minor = ".".join(probe.get("python", "").split(".")[:2])
    if minor not in spec.supported:
        return "python-unsupported"
    pip = (probe.get("packages") or {}).get("pip")
    if not pip or version_tuple(pip) < version_tuple(spec.pip_minimum):
        return "pip-old"
    return "ok"


class VenvStep(Step):
    id = "venv"

    def __init__(self, spec: Any, mirrors: Any, python: str | None) -> None:
        self.spec = spec
        self.mirrors = mirrors
        self.requested = python
        self.title = t("venv with Python {versions} and pip >= {pip_minimum}", versions="/".join(spec.supported), pip_minimum=spec.pip_minimum)

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "path": "venv", "python": self.requested or "(chosen by check)",
                "pip": f"pip>={self.spec.pip_minimum}", "index": redact_url(self.mirrors.primary("pypi").url)}

    def identity(self, ctx: Any) -> Any:
        return {"supported": list(self.spec.supported), "pip_minimum": self.spec.pip_minimum}

    def is_done(self, ctx: Any) -> bool:
        from sdsetup.install.pip_run import probe_venv

        return venv_state(probe_venv(ctx.python), self.spec) == "ok"

    def bytes_needed(self) -> dict[str, int]:
        return {"install_dir": 60 * 1024 * 1024}

    def _base_python(self, ctx: Any) -> str:
        chosen = ((ctx.preflight or {}).get("python") or {}).get("chosen") or {}
        base = chosen.get("path") or self.requested
        if not base:
            raise SdsetupError(t("no Python interpreter to create the venv with"),
                               t("install 64-bit Python 3.10 and pass it with --python PATH"), ExitCode.FAILED)
        return str(base)

    def run(self, ctx: Any) -> dict[str, Any]:
        from sdsetup.install.pip_run import probe_venv, proxy_secrets, run_checked, tool_env

        probe = probe_venv(ctx.python)
        state = venv_state(probe, self.spec)
        base = None
        marker = ctx.layout.venv_marker
        if ctx.venv_dir.exists() and state == "missing" and marker.exists():
            # Our own venv, interrupted while it was being created (the marker says so): start again.
            import shutil

            ctx.reporter.detail(t("removing the half-created {venv_dir}", venv_dir=ctx.venv_dir))
            shutil.rmtree(ctx.venv_dir)
        if ctx.venv_dir.exists() and state == "missing":
            raise SdsetupError(
                t("{venv_dir} exists but its Python does not run", venv_dir=ctx.venv_dir),
                t("move it away (sdsetup does not delete it), then run again: a fresh venv is created"),
                ExitCode.FAILED,
            )
        if state == "python-unsupported":
            raise SdsetupError(
                t("{venv_dir} uses Python {python}; manifest '{name}' needs {supported}", venv_dir=ctx.venv_dir,
                  python=probe["python"], name=ctx.manifest.name, supported=" or ".join(self.spec.supported)),
                t("move the venv folder away (sdsetup does not delete it) and rerun with --python pointing at Python {recommended}",
                  recommended=self.spec.recommended),
                ExitCode.FAILED,
            )
        if state == "missing":
            base = self._base_python(ctx)
            ctx.reporter.detail(t("creating venv with {base}", base=base))
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(base, "utf-8")
            from sdsetup.install import uv as uvmod

            uv = uvmod.find_uv()
            # With uv at hand, pip comes from the mirror in a second or two; ensurepip plus an upgrade over a
            # slow link cost 20-35 s (bench/install_link). ensurepip stays the fallback below.
            venv_args = [base, "-m", "venv", *(["--without-pip"] if uv else []), str(ctx.venv_dir)]
            run_checked(venv_args, env=tool_env(ctx.mirrors), what=t("creating the venv"),
                        hint=t("on Debian/Ubuntu install the venv module: sudo apt install python3-venv (or python3.10-venv)"))
            marker.unlink()  # the venv is whole; a missing pip is mended below (ensurepip) on any run
            if uv:
                try:
                    uvmod.install_pip(ctx, uv, f"pip>={self.spec.pip_minimum}", index_args=ctx.mirrors.pip_index_args(),
                                      env=tool_env(ctx.mirrors), secrets=proxy_secrets(ctx.settings))
                except uvmod.UvUnusable as reason:
                    ctx.reporter.detail(t("uv could not install pip ({reason}); using ensurepip", reason=str(reason)))
            probe = probe_venv(ctx.python)
            state = venv_state(probe, self.spec)
            if state == "python-unsupported":
                raise SdsetupError(t("{base} is Python {python}; manifest '{name}' needs {supported}", base=base,
                                     python=probe["python"], name=ctx.manifest.name, supported=" or ".join(self.spec.supported)),
                                   t("pass --python with a Python {recommended} interpreter", recommended=self.spec.recommended), ExitCode.FAILED)
        if state == "pip-old" and not ((probe or {}).get("packages") or {}).get("pip"):
            # pip itself is missing (venv interrupted before ensurepip finished, or made --without-pip).
            run_checked([str(ctx.python), "-m", "ensurepip", "--upgrade"], env=tool_env(ctx.mirrors),
                        what=t("installing pip into the venv"), hint=t("recreate the venv: move it away and run again"))
            probe = probe_venv(ctx.python)
        if state == "pip-old":
            old = ((probe or {}).get("packages") or {}).get("pip")
            ctx.reporter.detail(t("upgrading pip {old} -> >={pip_minimum}", old=old, pip_minimum=self.spec.pip_minimum))
            run_checked(
                [str(ctx.python), "-m", "pip", "install", "--upgrade", "--quiet", f"pip>={self.spec.pip_minimum}",
                 *ctx.mirrors.pip_index_args()],
                env=tool_env(ctx.mirrors), what=t("upgrading pip in the venv"), secrets=proxy_secrets(ctx.settings),
                hint=t("check the network, proxy and mirror (sdsetup check; sdsetup mirrors probe), then run again"),
            )
            probe = probe_venv(ctx.python)
        final = probe_venv(ctx.python) if probe is None else probe
        return {"base_python": base or (final or {}).get("executable"), "python": (final or {}).get("python"),
                "pip": ((final or {}).get("packages") or {}).get("pip")}
