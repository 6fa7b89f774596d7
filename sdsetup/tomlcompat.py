"""tomllib on 3.11+, tomli on 3.10; one place that turns a TOML syntax error into a usage error."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from sdsetup.errors import ExitCode, SdsetupError


def load_toml(path: Path, what: str = "file") -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise SdsetupError(f"{what} not found: {path}", "check the path and try again", ExitCode.USAGE) from None
    except tomllib.TOMLDecodeError as exc:
        raise SdsetupError(
            f"{what} {path} is not valid TOML: {exc}", "fix the line named above (TOML syntax)", ExitCode.USAGE
        ) from None
    except OSError as exc:
        raise SdsetupError(f"cannot read {what} {path}: {exc.strerror}", "check its permissions", ExitCode.USAGE) from None


def loads_toml(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SdsetupError(f"{origin} is not valid TOML: {exc}", "fix the line named above", ExitCode.USAGE) from None
