"""The install record (DIR/.sdsetup/install.json): what is installed where, for verify/doctor/bundle.
Built from what is on disk; rewritten only when it would differ (a finished install reruns unchanged)."""

from __future__ import annotations

import json
from typing import Any

from sdsetup.install.steps.base import Step
from sdsetup.i18n import t


def record_secrets(mirrors: Any) -> list[str]:
    """What must not reach install.json: the proxy's password and every mirror login."""
    from sdsetup.redact import secrets_in_url

    return [*secrets_in_url(mirrors.proxy), *mirrors.secrets]


class RecordStep(Step):
    id = "record"

    @property
    def title(self) -> str:  # type: ignore[override]  # in the language of this run, not of the import
        return t("install record (.sdsetup/install.json)")

    def __init__(self, manifest: Any, decisions: Any, options: Any) -> None:
        self.manifest = manifest
        self.decisions = decisions
        self.options = options

    def build(self, ctx: Any):
        from sdsetup.hashing import sha256_file
        from sdsetup.install.steps.hub import hub_rel, seeded_commit
        from sdsetup.install.steps.webui import load_previous
        from sdsetup.launchers import for_manifest
        from sdsetup.install.webui_config import redact_env_for_record
        from sdsetup.install_record import FileRecord, HubFileRecord, InstallRecord, RepoRecord
        from sdsetup.layout import HF_HOME_REL, venv_python_rel
        m = self.manifest
        hub_files = []
        for spec in m.hub:
            commit = seeded_commit(ctx.install_dir, spec)
            if not commit:
                continue
            for name in spec.files:
                rel = hub_rel(spec.repo_id, "snapshots", commit, name)
                path = ctx.path(rel)
                hub_files.append(HubFileRecord(spec.repo_id, commit, name, rel, sha256_file(path), path.stat().st_size))
        models = [] if self.options.skip_models else [FileRecord(x.path, x.sha256, x.size, x.url) for x in m.models]
        launcher = for_manifest(m)
        env = launcher.config_step(m, self.decisions, ctx.mirrors).settings_for(ctx).env
        return InstallRecord(
            manifest=m.name,
            webui=RepoRecord("stable-diffusion-webui", ".", m.webui.url, m.webui.commit),
            python=venv_python_rel(),
            backend=self.decisions.backend,
            torch_tag=self.decisions.torch_tag,
            repositories=[RepoRecord(r.name, r.path, r.url, r.commit) for r in m.repositories],
            models=models,
            hub_files=hub_files,
            hf_home=HF_HOME_REL if m.hub else None,
            launch_args=list(self.decisions.launch_args),
            env=redact_env_for_record(env, record_secrets(ctx.mirrors)),
            finished=True,
            previous_checkout=load_previous(ctx.install_dir),
            launcher=launcher.kind,
            held=list(m.held),
        )

    def identity(self, ctx: Any) -> Any:
        return self.build(ctx).to_json()

    def is_done(self, ctx: Any) -> bool:
        from sdsetup.install_record import record_path

        try:
            current = json.loads(record_path(ctx.install_dir).read_text("utf-8"))
        except (OSError, ValueError):
            return False
        return current == json.loads(json.dumps(self.build(ctx).to_json(), default=str))

    def run(self, ctx: Any) -> dict[str, Any]:
        from sdsetup.install_record import save_record

        path = save_record(ctx.install_dir, self.build(ctx))
        return {"path": str(path.relative_to(ctx.install_dir))}
