"""The checks of `sdsetup install`'s own inputs (DIR and --python): a real run and --dry-run make the
same ones and fail the same way (a usage error naming the thing, with a hint)."""

from __future__ import annotations

from pathlib import Path

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
