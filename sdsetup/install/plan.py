"""The install plan (pure): from a Manifest, MachineFacts, a MirrorPlan and the options, decide the
backend, torch build and launch flags, and lay out the ordered Steps.

Nothing here touches the network or the disk; `--dry-run` prints exactly this. Each Step knows how to
tell whether it is done and how to run itself (sdsetup/install/steps/), given an InstallContext.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdsetup.errors import ExitCode, SdsetupError, usage_error
from sdsetup.fsutil import human_bytes
from sdsetup.install.failover import failover_order  # noqa: F401 (re-exported; steps import it from failover)
from sdsetup.layout import HF_HOME_REL, WHEELHOUSE_REL  # noqa: F401 (re-exported for older importers)
from sdsetup.manifest import BACKENDS, Manifest, TorchSpec
from sdsetup.versions import version_tuple
from sdsetup.i18n import t


@dataclass(frozen=True)
class InstallOptions:
    manifest: str | None = None  # name or path; None = chosen for the machine (a1111, or a1111-dev for Blackwell)
    python: str | None = None
    backend: str = "auto"
    skip_models: bool = False
    skip_smoke: bool = False
    dry_run: bool = False
    yes: bool = False
    quiet: bool = False
    adopt_repo: bool = False  # DIR may be a git repository of something else (its HEAD and origin are recorded)


@dataclass(frozen=True)
class Decisions:
    """What was decided for this machine, and why (shown by --dry-run and in the outcome)."""

    backend: str
    torch: TorchSpec
    torch_tag: str | None  # None: torch from the PyPI channel (macOS)
    torch_reason: str
    launch_args: tuple[str, ...]
    launch_env: tuple[tuple[str, str], ...]
    xformers: str | None  # the xformers requirement when --xformers is among the launch flags
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "torch_tag": self.torch_tag,
            "torch_packages": list(self.torch.packages),
            "xformers": self.xformers,
            "reason": self.torch_reason,
            "launch_args": list(self.launch_args),
            "launch_env": dict(self.launch_env),
            "notes": list(self.notes),
        }


def pick_torch_tag(spec: TorchSpec, gpu: Any, *, manifest_name: str) -> tuple[str | None, str]:
    """The wheel tag from the manifest's list that this GPU and driver can run, and why (pure)."""
    from sdsetup.detect import recommend

    if spec.backend != "cuda":
        if spec.tags:
            return spec.tags[0], f"{spec.backend} build {spec.tags[0]}"
        return None, f"{spec.backend}: torch from the PyPI channel"
    capability = getattr(gpu, "compute_capability", None) if gpu is not None else None
    name = getattr(gpu, "name", None) or "this GPU"
    if capability and spec.max_compute_capability and version_tuple(capability) > version_tuple(spec.max_compute_capability):
        raise SdsetupError(
            t("{name} (compute capability {capability}) is newer than the torch in manifest '{manifest_name}' supports "
              "({packages}, up to {max_compute_capability})", name=name, capability=capability, manifest_name=manifest_name,
              packages=" ".join(spec.packages), max_compute_capability=spec.max_compute_capability),
            t("use --manifest a1111-dev (torch 2.7 with CUDA 12.8, needed for RTX 50xx)"),
            ExitCode.USAGE,
        )
    driver_cuda = getattr(gpu, "cuda_driver_version", None) if gpu is not None else None
    tag = recommend.cuda_tag_for_driver(driver_cuda, capability, available=spec.tags, default=spec.tags[0])
    if tag not in spec.tags:
        raise SdsetupError(
            t("{name} needs {tag} wheels, which manifest '{manifest_name}' does not offer (it has {tags})", name=name, tag=tag,
              manifest_name=manifest_name, tags=", ".join(spec.tags)),
            t("use --manifest a1111-dev (torch 2.7 with CUDA 12.8, needed for RTX 50xx)"),
            ExitCode.USAGE,
        )
    if driver_cuda:
        why = f"{name}: the driver runs CUDA {driver_cuda}; best build offered: {tag}"
    else:
        why = f"{name}: driver CUDA version unknown; the manifest's first build {tag}"
    return tag, why


def decide(manifest: Manifest, facts: Any, backend_request: str = "auto") -> Decisions:
    """Backend, torch tag, launch flags and env for this machine (pure over the facts)."""
    from sdsetup.detect import recommend

    backend = recommend.choose_backend(facts, backend_request)
    if backend not in manifest.torch:
        offered = ", ".join(b for b in BACKENDS if b in manifest.torch)
        raise usage_error(
            t("manifest '{name}' has no torch build for the {backend} backend", name=manifest.name, backend=backend),
            t("use --backend with one of: {offered}", offered=offered),
        )
    spec = manifest.torch[backend]
    gpu = recommend.primary_gpu(facts, backend)
    tag, reason = pick_torch_tag(spec, gpu, manifest_name=manifest.name)
    if backend != "cuda":
        reason = recommend.torch_choice(facts, backend, manifest).reason.replace(f" (--backend {backend})", "")
    if backend_request not in (None, "", "auto"):
        reason += f" (--backend {backend})"
    config = recommend.launch_config(facts, backend, tag, manifest)
    flags = list(config.flags)
    if "--xformers" in flags and not spec.xformers:
        flags[flags.index("--xformers")] = "--opt-sdp-attention"  # no xformers pin: torch's own attention
    from sdsetup.launchers import for_manifest

    xformers_wanted = "--xformers" in flags
    flags = for_manifest(manifest).translate_flags(flags, backend)  # in the UI's own words (A1111: unchanged)
    args: list[str] = []
    for flag in [*manifest.launch.args, *flags]:
        # Flags with values (--use-cpu all) are kept in order; only exact repeats of a lone flag are dropped.
        if flag.startswith("--") and flag in args:
            continue
        args.append(flag)
    env = dict(config.env)
    env.update(dict(manifest.launch.env))
    xformers = spec.xformers if "--xformers" in args or (xformers_wanted and spec.xformers) else None
    return Decisions(
        backend=backend,
        torch=spec,
        torch_tag=tag,
        torch_reason=reason,
        launch_args=tuple(args),
        launch_env=tuple(sorted(env.items())),
        xformers=xformers,
        notes=tuple(config.notes),
    )


@dataclass
class Plan:
    install_dir: Path
    manifest: Manifest
    decisions: Decisions
    mirrors: Any  # MirrorPlan
    options: InstallOptions
    steps: list = field(default_factory=list)

    def disk_needs(self, pending_ids: set[str] | None = None) -> dict[str, int]:
        """Bytes each location ('install_dir', 'temp') still needs for the pending steps."""
        needs = {"install_dir": 0, "temp": 0}
        for step in self.steps:
            if pending_ids is not None and step.id not in pending_ids:
                continue
            for label, count in step.bytes_needed().items():
                needs[label] = needs.get(label, 0) + count
        if needs["install_dir"]:
            needs["install_dir"] += self.manifest.disk.slack_bytes
        return needs

    def to_json(self) -> dict[str, Any]:
        m = self.manifest
        needs = self.disk_needs()
        return {
            "install_dir": str(self.install_dir),
            "dry_run": self.options.dry_run,
            "manifest": {
                "name": m.name,
                "title": m.title,
                "source": m.source,
                "webui": {"url": m.webui.url, "commit": m.webui.commit, "ref": m.webui.ref},
            },
            "decisions": self.decisions.to_json(),
            "mirror": self.mirrors.to_json(),
            "steps": [step.describe() for step in self.steps],
            "disk": {label: {"bytes": count, "human": human_bytes(count)} for label, count in needs.items()},
        }


def build_plan(manifest: Manifest, facts: Any, mirrors: Any, options: InstallOptions, install_dir: Path) -> Plan:
    """The ordered steps (pure: constructing a step reads nothing)."""
    from sdsetup.install.steps import hub, models, pip_deps, preflight, record, repos, smoke, torch, venv, webui

    from sdsetup.install import launch_overrides

    # what `sdsetup doctor --fix` changed in the launch flags stays changed (issue 23 item 17)
    decisions = launch_overrides.apply(decide(manifest, facts, options.backend), launch_overrides.load(Path(install_dir)))
    plan = Plan(install_dir=Path(install_dir), manifest=manifest, decisions=decisions, mirrors=mirrors, options=options)
    steps: list = [preflight.PreflightStep(manifest, decisions, options)]
    steps.append(webui.WebuiStep(manifest.webui, mirrors, manifest.disk.repositories_bytes // 2))
    steps.append(venv.VenvStep(manifest.python, mirrors, options.python))
    steps.append(torch.TorchStep(decisions, mirrors, manifest.disk.tmp_bytes))
    for pip_step in manifest.pip:
        steps.append(pip_deps.PipStep(pip_step, mirrors, manifest.disk.packages_bytes // max(1, len(manifest.pip))))
    share = manifest.disk.repositories_bytes // 2 // max(1, len(manifest.repositories))
    for repo in manifest.repositories:
        steps.append(repos.RepoStep(repo, mirrors, share))
    if manifest.models and not options.skip_models:
        steps.append(models.ModelsStep(manifest.models, mirrors))
    if manifest.hub:
        steps.append(hub.HubStep(manifest.hub, mirrors))
    from sdsetup.launchers import for_manifest

    steps.append(for_manifest(manifest).config_step(manifest, decisions, mirrors))
    steps.append(record.RecordStep(manifest, decisions, options))
    if not options.skip_smoke:
        steps.append(smoke.SmokeStep(manifest, options, mirrors, decisions.launch_args))
    plan.steps = steps
    return plan
