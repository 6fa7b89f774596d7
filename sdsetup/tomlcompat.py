"""tomllib on 3.11+, tomli on 3.10; one place that turns a TOML file that cannot be read as TOML (a
syntax error, bytes that are not UTF-8 text, nesting too deep to parse) into a usage error."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.i18n import N_, t


def not_text(data: bytes) -> str:
    """Why bytes that failed to decode as UTF-8 are not a text file sdsetup reads, in words."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return t("is UTF-16 text, not UTF-8")
    sample = data[:4096]
    if sample.count(0) * 3 >= len(sample):  # every other byte NUL: UTF-16 saved without its BOM
        for encoding in ("utf-16-le", "utf-16-be"):
            try:
                text = sample[: len(sample) // 2 * 2].decode(encoding)
            except UnicodeDecodeError:
                continue
            if text and sum(ch.isprintable() or ch.isspace() for ch in text) >= 0.95 * len(text):
                return t("is UTF-16 text, not UTF-8")
    return t("is not UTF-8 text (a binary file?)")


def text_hint(what: str) -> str:
    return t("check that the path names the {what}, and save it as UTF-8 text (most editors: 'Save with encoding')",
             what=t(what))


TOO_DEEP = N_("nests tables or arrays too deeply to read")
# the `what` of sdsetup's callers, for the catalog (an unknown one is shown as given)
WHATS = (N_("file"), N_("config file"), N_("manifest"), N_("known-errors file"), N_("log corpus index"))


def _parse(data: bytes, origin: str, what: str) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
        if "\x00" in text:  # valid UTF-8, but no text file holds NUL characters
            raise UnicodeDecodeError("utf-8", data, text.index("\x00"), text.index("\x00") + 1, "NUL character")
    except UnicodeDecodeError:
        raise SdsetupError(t("{origin} {problem}", origin=origin, problem=not_text(data)), text_hint(what),
                           ExitCode.USAGE) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SdsetupError(t("{origin} is not valid TOML: {exc}", origin=origin, exc=exc),
                           t("fix the line named above (TOML syntax)"), ExitCode.USAGE) from None
    except RecursionError:
        raise SdsetupError(t("{origin} {problem}", origin=origin, problem=t(TOO_DEEP)),
                           t("a {what} needs only a few levels of tables: fix the file", what=t(what)),
                           ExitCode.USAGE) from None


def load_toml(path: Path, what: str = "file") -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise SdsetupError(t("{what} not found: {path}", what=t(what), path=path), t("check the path and try again"),
                           ExitCode.USAGE) from None
    except IsADirectoryError:
        raise SdsetupError(t("{what} {path} is a folder", what=t(what), path=path),
                           t("give the path of the {what} itself", what=t(what)), ExitCode.USAGE) from None
    except OSError as exc:
        raise SdsetupError(t("cannot read {what} {path}: {reason}", what=t(what), path=path, reason=exc.strerror),
                           t("check its permissions"), ExitCode.USAGE) from None
    return _parse(data, f"{t(what)} {path}", what)


def loads_toml(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SdsetupError(t("{origin} is not valid TOML: {exc}", origin=origin, exc=exc), t("fix the line named above"),
                           ExitCode.USAGE) from None
    except RecursionError:
        raise SdsetupError(t("{origin} {problem}", origin=origin, problem=t(TOO_DEEP)), t("fix the file"),
                           ExitCode.USAGE) from None
