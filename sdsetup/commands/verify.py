"""`sdsetup verify`: check an install against its record and prove it generates an image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdsetup.errors import ExitCode
from sdsetup.i18n import t, with_ids
from sdsetup.output import Outcome, progress_enabled, status_lines

DEFAULT_DIRS = (Path("."), Path("stable-diffusion-webui"))


def find_install_dir(install_dir: Path | None) -> Path:
    """DIR as given; without it, the current directory or ./stable-diffusion-webui if one holds a record."""
    if install_dir is not None:
        return Path(install_dir)
    from sdsetup.install_record import record_path

    for candidate in DEFAULT_DIRS:
        if record_path(candidate).is_file():
            return candidate
    return DEFAULT_DIRS[1]


def render(data: dict[str, Any]) -> str:
    lines = [status_lines(data["items"])]
    failed, warned = len(data["failed"]), len(data["warnings"])
    checks = data["checks"]
    if failed and warned:
        lines.append("\n" + t("verify: {failed} of {checks} checks failed, {warned} warnings (fixes under each FAIL)",
                              failed=failed, checks=checks, warned=warned))
    elif failed:
        lines.append("\n" + t("verify: {failed} of {checks} checks failed (fixes under each FAIL)", failed=failed, checks=checks))
    elif warned > 1:
        lines.append("\n" + t("verify: passed with {warned} warnings", warned=warned))
    elif warned:
        lines.append("\n" + t("verify: passed with 1 warning"))
    else:
        lines.append("\n" + t("verify: all {checks} checks passed", checks=checks))
    return "\n".join(lines)


def run(
    settings: Any,
    install_dir: Path | None,
    *,
    smoke: bool = False,
    full: bool = False,
    python: Path | None = None,
    out: Path | None = None,
    rehash: bool = False,
    report: Path | None = None,
) -> Outcome:
    from sdsetup import verify

    progress = progress_enabled(settings.quiet)
    from sdsetup.fsutil import check_output_file

    # Before the smoke test, which takes seconds (minutes with --full) to reach them.
    out = check_output_file(out, "--out") if out else None
    report = check_output_file(report, "--report") if report is not None else None
    report_image = None
    if report is not None:  # the page embeds the smoke image: keep it in a temporary file when --out is not given
        import tempfile

        report_image = Path(tempfile.mkdtemp(prefix="sdsetup-report-")) / "smoke.png"
        out = out or report_image
    if smoke:
        explicit = Path(install_dir) if install_dir is not None else None
        if explicit is None:
            guessed = find_install_dir(None)
            from sdsetup.install_record import record_path

            explicit = guessed if record_path(guessed).is_file() else None
        data = verify.verify_smoke_only(settings, explicit, python=python, out=out, full=full, progress=progress)
    else:
        data = verify.verify_install(settings, find_install_dir(install_dir), full=full, rehash=rehash, out=out,
                                     python=python, progress=progress)
    data["items"] = [with_ids(item) for item in data["items"]]  # name_id/value_id/fix_id: same keys in every language
    if report is not None:
        from sdsetup.doctor.html_report import write_verify_report

        write_verify_report(Path(report).expanduser(), data, out, report_image)
    return Outcome("verify", data, ExitCode.OK if data["ok"] else ExitCode.FAILED, human=render)
