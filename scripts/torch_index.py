"""Prints the pip options that let the test environment find a CPU-only torch, one per line.

scripts/test.sh runs it with the new venv's python (standard library only) before `pip install`.
tests/constraints.txt pins torch to the CPU build (`2.13.0+cpu` on x86-64 Linux/Windows). PyPI carries
only the CUDA build under that version, so on a fresh machine the pin is met by the PyTorch CPU index,
added here as an *extra* index for the test environment only (never in the package's requirements).

The index is looked at once, briefly, before pip sees it: pip retries an unreachable index five times
for every project it resolves (about 13 s each when the name does not resolve; PIP_DEFAULT_TIMEOUT per
try when packets are dropped), which would make a machine without that host wait minutes or hang.
When it cannot be reached nothing is printed: torch must then come from a local wheel pip already
knows (find-links, a local index), and the `+cpu` pin makes pip refuse rather than fetch the CUDA build.
Nothing is probed when the pinned torch is already installed.

Environment: SDSETUP_TEST_TORCH_INDEX overrides the index URL; empty turns it off.
"""

from __future__ import annotations

import os
import re
import sys
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path

DEFAULT_INDEX = "https://download.pytorch.org/whl/cpu"
CONSTRAINTS = Path(__file__).resolve().parent.parent / "tests" / "constraints.txt"
TIMEOUT_S = 8.0


def _applies(marker: str) -> bool:
    if not marker.strip():
        return True
    try:  # pip's own copy of `packaging`: the venv has nothing else yet
        from pip._vendor.packaging.markers import Marker
    except ImportError:
        return True  # cannot tell: keep the pin, which at worst costs one look at the index
    return Marker(marker).evaluate()


def pinned_torch(constraints: Path = CONSTRAINTS) -> set[str]:
    """The torch versions tests/constraints.txt pins for this platform."""
    pins = set()
    for line in constraints.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\s*torch\s*==\s*([^\s;#]+)\s*(?:;([^#]*))?", line)
        if match and _applies(match.group(2) or ""):
            pins.add(match.group(1))
    return pins


def torch_installed() -> str | None:
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


def reachable(index_url: str, timeout: float = TIMEOUT_S) -> bool:
    """Whether the index answers for the torch project page within `timeout` (proxies from the
    environment apply, as they do for pip)."""
    url = index_url.rstrip("/") + "/torch/"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http(s) index URL
            response.read(1)
            return 200 <= response.status < 300
    except (OSError, ValueError):  # URLError, timeouts, TLS and HTTP errors are all OSError
        return False


def pip_options(index_url: str, installed: str | None, pins: set[str], timeout: float = TIMEOUT_S) -> list[str]:
    if not index_url or (installed is not None and installed in pins):
        return []
    if reachable(index_url, timeout):
        return ["--extra-index-url", index_url]
    print(f"note: the PyTorch CPU index {index_url} cannot be reached; torch {'/'.join(sorted(pins))} "
          "must come from a local wheel (pip find-links or a local index)", file=sys.stderr)
    return []


def main() -> int:
    index_url = os.environ.get("SDSETUP_TEST_TORCH_INDEX", DEFAULT_INDEX)
    for option in pip_options(index_url, torch_installed(), pinned_torch()):
        print(option)
    return 0


if __name__ == "__main__":
    sys.exit(main())
