"""`sdsetup fetch URL [URL ...] -o PATH`: one file, from one or more mirrors, through the download engine.

Several URLs are mirrors of the same file. Exit 0 only when the file is at PATH (verified when a
sha256 was given); NETWORK 3, INTEGRITY 4, DISK 7, BUSY 6, USAGE 2, 130 on Ctrl-C otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sdsetup.errors import usage_error
from sdsetup.i18n import t
from sdsetup.output import Outcome
from sdsetup.settings import Settings


def check_url(url: str) -> str:
    """An http(s):// or file:// URL, or a usage error naming it."""
    from sdsetup.redact import redact_url

    text = url.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise usage_error(t("'{text}' is not a valid URL", text=redact_url(text)), t("give an http://, https:// or file:// URL")) from None
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise usage_error(t("'{text}' has no host name", text=redact_url(text)), t("give a full URL such as https://example.org/file.bin"))
        return text
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise usage_error(t("'{text}' is not a local file:// URL", text=text), t("use file:///absolute/path/to/file"))
        return text
    raise usage_error(
        t("'{text}' is not a URL sdsetup can download ({scheme} scheme)", text=redact_url(text), scheme=scheme or 'no'),
        t("use http://, https:// or file:// URLs"),
    )


def check_sha256(value: str | None) -> str | None:
    if value is None:
        return None
    digest = value.strip().lower()
    if digest.startswith("sha256:"):
        digest = digest[len("sha256:"):]
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise usage_error(t("--sha256 '{value}' is not a sha256", value=value), t("give the 64 hexadecimal digits of the file's sha256"))
    return digest


def file_name_from_url(url: str) -> str:
    name = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    if not name or name in (".", "..") or any(c in name for c in "/\\\0") or (os.name == "nt" and ":" in name):
        raise usage_error(t("cannot tell a file name from {url}", url=url), t("give the file's path with -o PATH"))
    return name


def output_path(output: str | Path | None, first_url: str) -> Path:
    """-o PATH as given; a folder (existing, or written with a trailing slash) gets the URL's name."""
    if output is None or str(output) == "":
        return Path.cwd() / file_name_from_url(first_url)
    text = str(output)
    path = Path(text).expanduser()
    try:
        is_dir = path.is_dir()
    except OSError:  # a name too long to look up: check_destination says so
        is_dir = False
    if is_dir or text.endswith(("/", os.sep)):
        return path / file_name_from_url(first_url)
    return path


def mirror_urls(settings: Settings, urls: list[str], session=None) -> tuple[tuple[str, ...], list[str]]:
    """Each URL through the mirror layer (`sdsetup.net.mirrors`: profiles, --mirror CHANNEL=URL,
    [[rewrite]] rules): mirrors first, the URL itself last; and the plan's warnings.
    Without that module, the URLs as given."""
    from sdsetup.net.localcopy import is_file_url

    try:
        from sdsetup.net.mirrors import select_mirrors
    except ImportError:
        return tuple(dict.fromkeys(urls)), []
    plan = select_mirrors(settings, session)
    expanded: list[str] = []
    for url in urls:
        expanded.extend([url] if is_file_url(url) else plan.file_urls(url))
    warnings = getattr(plan, "warnings", None) or []
    warnings = list(warnings() if callable(warnings) else warnings)
    return tuple(dict.fromkeys(expanded)), warnings


def run(
    settings: Settings,
    *,
    urls: list[str],
    output: str | Path | None = None,
    sha256: str | None = None,
    size: int | None = None,
    lock_timeout: float | None = None,
) -> Outcome:
    from sdsetup.logs import start_run_log

    if not urls:
        raise usage_error(t("no URL given"), t("sdsetup fetch URL [URL ...] -o PATH"))
    checked = [check_url(u) for u in urls]
    digest = check_sha256(sha256)
    if size is not None and size < 0:
        raise usage_error(t("--size {size} is negative", size=size), t("give the size in bytes, or leave it out"))
    if lock_timeout is not None and lock_timeout < 0:
        raise usage_error(t("--lock-timeout {lock_timeout} is negative", lock_timeout=lock_timeout), t("give seconds to wait, e.g. 60"))
    dest = output_path(output, checked[0])
    from sdsetup.fsutil import check_destination, file_in_the_way

    if file_in_the_way(dest) is None:
        check_destination(dest)  # before the run log: a device, FIFO, /proc, /sys, a long name, read-only
    if dest.is_dir():
        raise usage_error(t("{dest} is a folder", dest=dest), t("give the path of the file to write with -o"))

    start_run_log(settings, "fetch")
    from sdsetup.net.download import download
    from sdsetup.net.filespec import FileSpec
    from sdsetup.net.session import build_session

    session = build_session(settings)
    sources, warnings = mirror_urls(settings, checked, session)
    spec = FileSpec(urls=sources, dest=dest, sha256=digest, size=size)
    result = download(spec, session, settings, lock_timeout=lock_timeout)
    data = result.to_json()
    data["verified"] = digest is not None
    return Outcome("fetch", data, human=_human, warnings=warnings)


def _human(data: dict) -> str:
    from sdsetup.fsutil import human_bytes

    check = t("verified sha256") if data["verified"] else "sha256"
    if data["cached"]:
        return t("already there: {path} ({size}, {check} {sha256})", path=data["path"], size=human_bytes(data["size"]),
                 check=check, sha256=data["sha256"])
    seconds = max(data["seconds"], 1e-6)
    facts = dict(path=data["path"], size=human_bytes(data["size"]), seconds=f"{data['seconds']:.1f}",
                 rate=human_bytes(data["bytes_transferred"] / seconds))
    saved = (t("saved {path} ({size} in {seconds} s, {rate}/s, resumed)", **facts) if data["resumed"]
             else t("saved {path} ({size} in {seconds} s, {rate}/s)", **facts))
    return f"{saved}\n{check} {data['sha256']}"
