"""`sdsetup models add SOURCE` and `sdsetup models list [DIR]`.

add: SOURCE → what the source says (name, size, sha256) → one verified download through the mirror
plan and the engine → hard links into the right folder of every install beside DIR. Exit codes: 0 the
file is in place in every install, 2 bad input (no hash to check against: give --sha256), 3 network,
4 the file's sha256 did not match (nothing is left at the path), 6 another sdsetup holds the file,
7 disk full, 130 interrupted (run again: the download resumes).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sdsetup.errors import ExitCode, SdsetupError, usage_error
from sdsetup.i18n import t
from sdsetup.output import Outcome
from sdsetup.settings import Settings


def _check_type(value: str | None) -> str | None:
    from sdsetup.models.folders import TYPES

    if value is None:
        return None
    kind = value.strip().lower()
    if kind not in TYPES:
        raise usage_error(t("--type '{value}' is not a model type", value=value), t("use one of: {types}", types=", ".join(TYPES)))
    return kind


def _rewrite_targets(settings: Settings, base: str) -> list[str]:
    """The user's [[rewrite]] replacements for `base` (they stand for that host: Civitai's token may go there)."""
    try:
        from sdsetup.net.mirror_profiles import load_catalog

        rules = load_catalog(settings).rewrites
    except SdsetupError:
        return []
    return [rule.replace for rule in rules if base.startswith(rule.prefix) or rule.prefix.startswith(base)]


def add(
    settings: Settings,
    source_text: str,
    *,
    install_dir: Path | None = None,
    model_type: str | None = None,
    name: str | None = None,
    sha256: str | None = None,
    env: dict[str, str] | None = None,
) -> Outcome:
    from sdsetup.commands.fetch import check_sha256
    from sdsetup.commands.verify import find_install_dir
    from sdsetup.models.folders import guess_type
    from sdsetup.models.place import check_file_name, find_installs
    from sdsetup.models.source import CIVITAI_BASE, parse_source

    env = dict(os.environ if env is None else env)
    source = parse_source(source_text)
    wanted_type = _check_type(model_type)
    given_sha = check_sha256(sha256)
    if name is not None:
        check_file_name(name)
    installs = find_installs(find_install_dir(install_dir))
    if source.kind == "url":
        from sdsetup.commands.fetch import check_url

        check_url(source.url or "")
        if given_sha is None:
            raise usage_error(t("{url} is not a Hub, Civitai or ModelScope file, so nothing vouches for its bytes", url=source.text),
                              t("give the file's sha256 with --sha256 HEX (the publisher's page lists it)"))

    from sdsetup.logs import start_run_log
    from sdsetup.net.mirrors import select_mirrors
    from sdsetup.net.session import build_session, timeouts

    start_run_log(settings, "models")
    session = build_session(settings)
    if source.kind == "civitai":
        from sdsetup.models.token import CivitaiAuth, civitai_hosts, token_from_env

        token = token_from_env(env)
        if token:
            session.auth = CivitaiAuth(token, civitai_hosts(_rewrite_targets(settings, CIVITAI_BASE)))
    plan = select_mirrors(settings, session)
    from sdsetup.models.metadata import describe_file

    model_file = describe_file(source, session, plan.file_urls, timeouts(settings))
    expected = model_file.sha256
    if given_sha and expected and given_sha != expected:
        raise SdsetupError(t("--sha256 {given} differs from the {kind} source's sha256 {expected}", given=given_sha, kind=source.kind,
                             expected=expected),
                           t("check which file you meant; leave --sha256 out to trust the source"), ExitCode.INTEGRITY)
    expected = expected or given_sha
    if expected is None:
        raise usage_error(t("{source} gives no sha256 for {name}", source=source.text, name=model_file.file_name),
                          t("give the file's sha256 with --sha256 HEX"))
    file_name = check_file_name(name or model_file.file_name)
    kind = wanted_type or model_file.model_type or guess_type(file_name)
    return _place(settings, session, plan, installs, model_file, kind, file_name, expected)


def _place(settings, session, plan, installs, model_file, kind: str, file_name: str, expected: str) -> Outcome:
    from sdsetup.hashing import HashCache
    from sdsetup.layout import InstallLayout
    from sdsetup.model_store import link_into
    from sdsetup.models.place import copy_verified, entry_for, plan_placement, save_added
    from sdsetup.net.download import download
    from sdsetup.net.filespec import FileSpec

    caches = {i.root: HashCache(InstallLayout(i.root).hash_cache) for i in installs}

    def state_of(path: Path) -> str:
        if not path.exists():
            return "missing"
        root = next(i.root for i in installs if path.is_relative_to(i.root))
        return "same" if path.is_file() and caches[root].sha256(path)[0] == expected else "other"

    targets = plan_placement(installs, kind, file_name, state_of)
    theirs = [t_ for t_ in targets if t_.state == "other"]
    if theirs:  # before any byte moves: the user's own file under this name is never replaced
        raise SdsetupError(
            t("{path} exists and is another file (its sha256 differs)", path=theirs[0].path),
            t("move it away or choose another name with --name FILE, then run again"), ExitCode.INTEGRITY)
    have = next((t_ for t_ in targets if t_.state == "same"), None)
    how: dict[str, str] = {}
    result = None
    if have is None:
        first = targets[0]
        spec = FileSpec(urls=plan.file_urls(model_file.url), dest=first.path, sha256=expected, size=model_file.size, label=file_name)
        result = download(spec, session, settings)
        how[first.rel + str(first.install.root)] = "downloaded"
        source_path = first.path
    else:
        source_path = have.path
        how[have.rel + str(have.install.root)] = "present"
    warnings: list[str] = []
    size = source_path.stat().st_size
    for target in targets:
        key = target.rel + str(target.install.root)
        if key not in how:
            if target.state == "same":
                how[key] = "present"
            elif link_into(source_path, target.path):
                how[key] = "linked"
            else:
                copy_verified(source_path, target.path, expected)
                how[key] = "copied"
                warnings.append(t("{path}: a hard link was refused (another disk?), so this is a second copy", path=target.path))
        caches[target.install.root].remember(target.path, expected)
        save_added(target.install.root, entry_for(target, model_file, kind, expected, size, how[key]))
    data: dict[str, Any] = {
        "source": model_file.source.text,
        "kind": model_file.source.kind,
        "url": model_file.url,
        "revision": model_file.revision,
        "type": kind,
        "name": file_name,
        "sha256": expected,
        "size": size,
        "downloaded": result is not None,
        "resumed": bool(getattr(result, "resumed", False)),
        "installs": [{"dir": str(t_.install.root), "ui": t_.install.launcher, "path": t_.rel, "how": how[t_.rel + str(t_.install.root)]}
                     for t_ in targets],
    }
    return Outcome("models add", data, human=_human_add, warnings=warnings)


def _human_add(data: dict[str, Any]) -> str:
    from sdsetup.fsutil import human_bytes

    lines = [t("{name} ({type}, {size}), sha256 {sha256} verified", name=data["name"], type=data["type"],
               size=human_bytes(data["size"]), sha256=data["sha256"])]
    labels = {"downloaded": t("downloaded"), "linked": t("hard link, no second copy"), "copied": t("copied (no hard link possible)"),
              "present": t("already there")}
    for item in data["installs"]:
        lines.append(f"  {item['dir']}/{item['path']}: {labels.get(item['how'], item['how'])}")
    return "\n".join(lines)


def list_models(settings: Settings, install_dir: Path | None) -> Outcome:
    import json

    from sdsetup.commands.verify import find_install_dir
    from sdsetup.install_record import load_record
    from sdsetup.layout import InstallLayout
    from sdsetup.models.listing import list_models as scan
    from sdsetup.models.place import load_added

    root = find_install_dir(install_dir)
    record = load_record(root)
    if record is None:
        raise usage_error(t("{dir} holds no sdsetup install", dir=root), t("give the install folder: `sdsetup models list DIR`"))
    expected = {m.path: m.sha256 for m in record.models if m.sha256}
    expected.update({e["path"]: e["sha256"] for e in load_added(root) if e.get("path") and e.get("sha256")})
    try:
        cache = json.loads(InstallLayout(root).hash_cache.read_text("utf-8"))
    except (OSError, ValueError):
        cache = {}
    items = scan(root, record.launcher, expected, cache if isinstance(cache, dict) else {})
    return Outcome("models list", {"dir": str(root), "ui": record.launcher, "models": items}, human=_human_list)


def _human_list(data: dict[str, Any]) -> str:
    from sdsetup.fsutil import human_bytes

    if not data["models"]:
        return t("no model files in {dir}", dir=data["dir"])
    states = {"verified": t("verified"), "differs": t("DIFFERS from its recorded sha256"), "unchecked": t("not hashed yet (`sdsetup verify` hashes)"),
              "unrecorded": t("no recorded hash")}
    lines, last = [], None
    for item in data["models"]:
        if item["type"] != last:
            lines.append(f"{item['type']}:")
            last = item["type"]
        lines.append(f"  {item['path']}  {human_bytes(item['size'])}  {states.get(item['state'], item['state'])}")
    return "\n".join(lines)
