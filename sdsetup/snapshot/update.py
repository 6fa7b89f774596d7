"""Moving the web UI to a newer pin (`update --to REF`) after a snapshot (effects).

The new commit is fetched through the github routing; the web UI's requirements file at that commit
(A1111/Forge `requirements_versions.txt`, ComfyUI `requirements.txt`) is checked against the held
packages and resolved under them *before* anything changes; then the checkout moves and the packages
are installed from the wheelhouse (so a rollback can put the old ones back without the network)."""

from __future__ import annotations

import re
from typing import Any

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.i18n import t

_SHA = re.compile(r"^[0-9a-f]{40}$")
REQUIREMENTS = {"a1111": "requirements_versions.txt", "forge": "requirements_versions.txt", "comfyui": "requirements.txt"}


def resolve_ref(runner: Any, urls: tuple[str, ...], ref: str) -> str:
    if _SHA.match(ref.lower()):
        return ref.lower()
    errors = []
    for url in urls:
        result = runner.run(["ls-remote", url, ref, f"refs/tags/{ref}^{{}}"], check=False, timeout=120)
        rows = [line.split() for line in result.stdout.splitlines() if line.strip()]
        peeled = [r[0] for r in rows if len(r) == 2 and r[1].endswith("^{}")]
        plain = [r[0] for r in rows if len(r) == 2 and not r[1].endswith("^{}")]
        found = (peeled or plain or [""])[0]
        if result.returncode == 0 and _SHA.match(found):
            return found
        errors.append(runner.tail(result.stderr, 1) if result.returncode else t("no such branch or tag"))
    raise SdsetupError(t("could not find {ref} in {url} ({errors})", ref=ref, url=urls[-1], errors="; ".join(errors)),
                       t("give a branch, a tag or a full commit id of the web UI's repository"), ExitCode.USAGE)


def update_to(ctx: Any, record: Any, ref: str) -> dict[str, Any]:
    from sdsetup.ext.held import held_for
    from sdsetup.ext.rules import conflicts, requirement_lines
    from sdsetup.fsutil import atomic_write_text
    from sdsetup.gitops import head_commit
    from sdsetup.install import wheelhouse
    from sdsetup.snapshot.restore import move_webui
    from sdsetup.install_record import save_record

    root = ctx.install_dir
    runner = ctx.git_runner()
    urls = ctx.mirrors.git_urls(record.webui.url)
    commit = resolve_ref(runner, urls, ref)
    before = head_commit(root, runner)
    if before != commit:
        ctx.reporter.say(t("web UI: {old} -> {new}", old=(before or "-")[:10], new=commit[:10]))
        move_webui(ctx, runner, urls, commit, record.webui.url)
    req_file = root / REQUIREMENTS.get(record.launcher, "requirements.txt")
    lines = requirement_lines(req_file.read_text("utf-8", "replace")) if req_file.is_file() else []
    picks: list[Any] = []
    if lines:
        held = held_for(ctx, record)
        found = conflicts(lines, held)

        def back(error: SdsetupError) -> SdsetupError:
            if before and before != commit:
                move_webui(ctx, runner, urls, before, record.webui.url)
            return error

        if found:
            raise back(SdsetupError(
                t("the web UI at {commit} asks for {wanted} but this install holds {package}=={held}; it stays at {old}",
                  commit=commit[:10], wanted=found[0].wanted, package=found[0].package, held=found[0].held, old=(before or "-")[:10]),
                t("update with a manifest that moves torch too: `sdsetup update DIR --manifest M`"), ExitCode.FAILED,
                details={"conflicts": [c.to_json() for c in found]}))
        held_file = ctx.state_dir / "update-constraints.txt"
        atomic_write_text(held_file, "".join(f"{k}=={v}\n" for k, v in sorted(held.items())))
        index_args = ctx.mirrors.pip_index_args()
        try:
            picks = wheelhouse.resolve(ctx, lines, index_args=index_args, label="update", constraints=held_file)
        except SdsetupError as error:
            raise back(error) from None
        if picks:
            ctx.reporter.detail(wheelhouse.download_summary(picks, [wheelhouse.already_in_wheelhouse(ctx, p) for p in picks]))
            paths = wheelhouse.fetch(ctx, picks)
            wheelhouse.install(ctx, [paths[p.filename] for p in picks], label="update", build_index_args=index_args)
    record.webui.commit = commit
    save_record(root, record)
    from sdsetup.launch.held import write_held

    write_held(root, ctx.python, record.held)
    return {"from": before, "to": commit, "packages": [f"{p.name}=={p.version}" for p in picks]}
