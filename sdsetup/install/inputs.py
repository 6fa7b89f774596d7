"""The checks of `sdsetup install`'s own inputs (DIR, --python, --mirror-url/--offline): a real run and
--dry-run make the same ones and fail the same way (a usage error naming the thing, with a hint)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdsetup.errors import usage_error
from sdsetup.i18n import t

EXAMPLE = "sdsetup install ~/stable-diffusion-webui"


def validate_install_dir(install_dir: Path, *, probe_write: bool) -> Path:
    """The absolute DIR, or a usage error: a file, a path under a file, or (probe_write) not writable.

    The dry run passes probe_write=False: the writability test creates a file, and a dry run writes nothing.
    """
    from sdsetup.detect.paths import validate_install_dir as validate

    return validate(Path(install_dir), label="install directory", example=EXAMPLE, probe_write=probe_write)


def validate_inputs(install_dir: Path, python: str | None, *, dry_run: bool) -> Path:
    """DIR checked as above, and --python (when given) names an existing file or command."""
    target = validate_install_dir(install_dir, probe_write=not dry_run)
    if python:
        from sdsetup.detect.python import require_requested

        require_requested(python)
    return target


def install_settings(settings: Any, *, mirror_url: str | None, offline: Path | None) -> Any:
    """`install --mirror-url URL` (every channel under one base) or `--offline DIR` (a bundle folder,
    read through file:// - no network at all) as the settings' mirror."""
    from sdsetup.bundle.layout import LOCK_NAME
    from sdsetup.net.mirror_profiles import check_url

    if mirror_url is None and offline is None:
        return settings
    if mirror_url is not None and offline is not None:
        raise usage_error(t("--mirror-url and --offline both given"), t("pick one: --offline DIR for a local bundle, --mirror-url URL for a served one"))
    if settings.mirror or settings.mirror_overrides:
        raise usage_error(t("--mirror together with --mirror-url/--offline"), t("a bundle serves every channel: drop --mirror"))
    if offline is not None:
        folder = Path(offline).expanduser().absolute()
        if not (folder / LOCK_NAME).is_file():
            raise usage_error(t("--offline {offline}: no {lock_name} there, so it is not a finished bundle", offline=offline, lock_name=LOCK_NAME),
                              t("give the folder `sdsetup bundle create` wrote (check it with `sdsetup bundle verify`)"))
        from sdsetup.bundle.check import check_for_install

        # A damaged file would send the install to the file's canonical URL: check first, offline means no network.
        check_for_install(folder, settings.cache_dir / "bundle-hashes.json")
        url = folder.as_uri()
    else:
        url = check_url(mirror_url, "--mirror-url", "URL")
        if not url.startswith(("http://", "https://", "file://")):
            raise usage_error(t("--mirror-url {mirror_url}: not an http(s):// or file:// URL", mirror_url=mirror_url), t("e.g. --mirror-url http://192.168.1.5:8000/"))
    return settings.with_(mirror=url.rstrip("/") + "/", mirror_overrides=())
