"""The user-facing errors of a failed download, as pure functions of what happened (table-tested in
tests/test_download_decisions.py): one bounded `error:` line naming each source once with a one-line
reason, a hint with the next step, and every source in the JSON details (the run log has them too).
"""

from __future__ import annotations

from pathlib import Path

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.fsutil import human_bytes
from sdsetup.i18n import t

SHOWN_SOURCES = 3  # sources named in the error line; all of them are in details["sources"]
REASON_CHARS = 120


def one_line(reason: str, limit: int = REASON_CHARS) -> str:
    text = " ".join(str(reason).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summarize(reasons: list[tuple[str, str]], shown: int = SHOWN_SOURCES) -> str:
    """'URL: reason; URL: reason; and 2 more sources (see the log)' with each URL once."""
    unique: dict[str, str] = {}
    for label, reason in reasons:
        unique.setdefault(label, one_line(reason))
    items = [f"{label}: {reason}" for label, reason in unique.items()]
    text = "; ".join(items[:shown])
    if len(items) > shown:
        text += t("; and {count} more source(s) (all in the run log and in --json details)", count=len(items) - shown)
    return text


def _details(reasons: list[tuple[str, str]]) -> list[dict]:
    unique: dict[str, str] = {}
    for label, reason in reasons:
        unique.setdefault(label, one_line(reason, 500))
    return [{"url": label, "reason": reason} for label, reason in unique.items()]


def proxy_to_blame(reasons: list[tuple[str, str]]) -> bool:
    """Every source failed at the proxy: the hint is about the proxy, not the hosts."""
    return bool(reasons) and all("proxy" in reason for _, reason in reasons)


def no_source_error(name: str, reasons: list[tuple[str, str]], *, kept_bytes: int = 0) -> SdsetupError:
    """No source could deliver (network, status, size): exit 3, or 4 when every source offers
    another size than the expected one."""
    if reasons and all(reason.startswith("offers ") for _, reason in reasons):
        return SdsetupError(
            t("{name}: no source offers the expected size ({reasons})", name=name, reasons=summarize(reasons)),
            t("the expected size may be out of date, or the mirrors hold another version"),
            ExitCode.INTEGRITY,
            details={"sources": _details(reasons)},
        )
    if proxy_to_blame(reasons):
        hint = (t("the proxy did not answer for any source: check it (--proxy, HTTPS_PROXY) or run without it; "
                  "{kept} already downloaded is kept for the next run", kept=human_bytes(kept_bytes)) if kept_bytes
                else t("the proxy did not answer for any source: check it (--proxy, HTTPS_PROXY) or run without it"))
    elif kept_bytes:
        hint = t("check the network, a proxy (--proxy) or a mirror (--mirror cn, sdsetup mirrors probe), then run the "
                 "same command again; {kept} already downloaded is kept for the next run", kept=human_bytes(kept_bytes))
    else:
        hint = t("check the network, a proxy (--proxy) or a mirror (--mirror cn, sdsetup mirrors probe), then run the "
                 "same command again")
    return SdsetupError(
        t("could not download {name}: {reasons}", name=name, reasons=summarize(reasons) or t("no source answered")),
        hint,
        ExitCode.NETWORK,
        details={"sources": _details(reasons)},
    )


def source_failures(name: str, reasons: list[tuple[str, str]], *, expected_sha: str | None, actual_sha: str,
                    dest: Path) -> SdsetupError:
    """Every source failed after a sha256 mismatch: exit 4 naming both hashes and each source."""
    return SdsetupError(
        t("{name}: sha256 mismatch: expected {expected_sha}, got {actual_sha}; every source failed: {reasons}",
          name=name, expected_sha=expected_sha, actual_sha=actual_sha, reasons=summarize(reasons)),
        t("the sources send different bytes than expected; try another mirror (--mirror) or check the "
          "expected hash; nothing was written to {dest}", dest=dest),
        ExitCode.INTEGRITY,
        details={"expected": expected_sha, "actual": actual_sha, "sources": _details(reasons),
                 "urls": [label for label, _ in reasons]},
    )


def proxy_error(name: str, proxy: str, reasons: list[tuple[str, str]], *, seconds: float) -> SdsetupError:
    """Every source failed through one proxy without an answer: the proxy is named as the cause."""
    return SdsetupError(
        t("the proxy {proxy} did not answer for any source of {name} (no answer in {seconds} s; {reasons})",
          proxy=proxy, name=name, seconds=f"{seconds:g}", reasons=summarize(reasons, shown=2)),
        t("the proxy accepts connections but sends nothing back: check that it runs and reaches the internet, "
          "or run without it (--proxy, HTTPS_PROXY/HTTP_PROXY)"),
        ExitCode.NETWORK,
        details={"proxy": proxy, "sources": _details(reasons)},
    )


def file_url_folder_error(folders: list[str], name: str) -> SdsetupError:
    """Every local source names a folder: the user gave the wrong path, the network is not involved."""
    return SdsetupError(
        t("{folders}: a file:// URL must name a file", folders="; ".join(folders)),
        t("give the path of the file itself, e.g. {example}", example=f"file://{folders[0].rstrip('/')}/{name}"),
        ExitCode.USAGE,
    )


def local_copies_error(name: str, problems: list[str]) -> SdsetupError:
    """Only file:// sources, none usable: exit 4 when one had wrong bytes, else 3."""
    return SdsetupError(
        t("none of the local copies of {name} could be used: {problems}", name=name,
          problems="; ".join(one_line(p, 300) for p in problems)),
        t("check the offline bundle (sdsetup bundle verify) or give a URL to download from"),
        ExitCode.INTEGRITY if any("sha256" in p or "bytes" in p for p in problems) else ExitCode.NETWORK,
    )


def keeps_changing_error(name: str, reason: str, restarts: int) -> SdsetupError:
    return SdsetupError(
        t("{name}: {reason}, {restarts} times in a row", name=name, reason=reason, restarts=restarts),
        t("the file keeps changing on the server; try again later or use another mirror"),
        ExitCode.NETWORK,
    )


def not_enough_space_error(name: str, needed: int, free: int, folder: Path) -> SdsetupError:
    return SdsetupError(
        t("not enough free space for {name}: needs {needed} more, {free} free in {folder}",
          name=name, needed=human_bytes(needed), free=human_bytes(free), folder=folder),
        t("free up space there (or choose another folder) and run again"),
        ExitCode.DISK,
        details={"needed_bytes": needed, "free_bytes": free, "path": str(folder)},
    )


def disk_full_error(path: Path, folder: Path, free: int | None) -> SdsetupError:
    return SdsetupError(
        t("the disk filled up while writing {path} ({free} free in {folder})", path=path, free=human_bytes(free),
          folder=folder),
        t("free up space and run the same command again: the part already downloaded is kept"),
        ExitCode.DISK,
        details={"path": str(path), "free_bytes": free},
    )
