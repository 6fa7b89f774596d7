"""Forge runs the install.py of its built-in extensions at every launch (launch_utils.run_extension_installer).
forge_legacy_preprocessors and sd_forge_controlnet read the requirement lines below and pip-install any that
their checks find missing; legacy_preprocessors then installs three GitHub-release wheels. The forge
manifest must put all of it in place, or every launch goes for the network (found by bench/real_ui: ~140 s
of retries offline; online, mediapipe/onnxruntime moved protobuf off 3.20.0 and the next launch reinstalled
Forge's requirements).

The requirement lines and wheel defaults are copied here as data (five short lines), read from
lllyasviel/stable-diffusion-webui-forge @ dfdcbab685e5; where a stored snapshot of the repository is at hand
($SDSETUP_STORED_REPOS, default /work/.mirror) the copy is checked against it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sdsetup.install.steps.pip_deps import archive_filename
from sdsetup.manifest import load_manifest
from sdsetup.versions import requirement_name

FORGE_COMMIT = "dfdcbab685e57677014f05a3309b48cc87383167"
# extensions-builtin/{forge_legacy_preprocessors,sd_forge_controlnet}/requirements.txt at FORGE_COMMIT
EXTENSION_REQUIREMENTS = ["fvcore", "mediapipe", "onnxruntime", "opencv-python>=4.8.0", "svglib"]
# forge_legacy_preprocessors/install.py: try_install_from_wheel(name, default URL, version=minimum or None)
EXTENSION_WHEELS = [
    ("handrefinerportable", "2024.2.12.0"),
    ("depth_anything", None),
    ("depth_anything_v2", None),
]


def comparable_version(version: str) -> tuple:
    """install.py's own comparison (int per dotted part)."""
    return tuple(map(int, version.split(".")))


def manifest_pins() -> dict[str, str | None]:
    """name -> pinned version (None: name only) over every pip step and archive wheel of the forge manifest."""
    manifest = load_manifest("forge")
    pins: dict[str, str | None] = {}
    for step in manifest.pip:
        for package in step.packages:
            name = requirement_name(package).lower().replace("_", "-")
            pins[name] = package.split("==", 1)[1] if "==" in package else None
        for url in step.archives:
            filename = archive_filename(url)
            if filename.endswith(".whl"):
                dist, version = filename.split("-")[:2]
                pins[dist.lower().replace("_", "-")] = version
    return pins


def test_every_extension_requirement_is_installed_by_the_manifest():
    pins = manifest_pins()
    for line in EXTENSION_REQUIREMENTS:
        if ">=" in line:
            name, minimum = line.split(">=")
            assert name in pins, f"{line}: not installed by the forge manifest"
            # pinned exactly, so install.py's comparable_version check passes (and never asks pip)
            assert pins[name] is not None and comparable_version(pins[name]) >= comparable_version(minimum), line
        else:
            assert line in pins, f"{line}: not installed by the forge manifest (launch.is_installed would run pip)"


def test_every_extension_wheel_is_an_archive_satisfying_the_check():
    pins = manifest_pins()
    for name, minimum in EXTENSION_WHEELS:
        key = name.replace("_", "-")
        assert key in pins, f"{name}: its release wheel is not among the forge manifest's archives"
        if minimum:
            assert comparable_version(pins[key]) >= comparable_version(minimum), name


def test_protobuf_stays_at_forges_pin_and_mediapipe_accepts_it():
    pins = manifest_pins()
    assert pins["protobuf"] == "3.20.0"  # requirements_versions.txt, checked by requirements_met at every launch
    # mediapipe 0.10.13 on requires protobuf>=4.25.3 (wheel METADATA); 0.10.11 asks <4,>=3.11
    assert pins["mediapipe"] is not None and comparable_version(pins["mediapipe"]) <= (0, 10, 11)


def _stored_forge() -> Path | None:
    root = Path(os.environ.get("SDSETUP_STORED_REPOS", "/work/.mirror"))
    repo = root / "lllyasviel+stable-diffusion-webui-forge" / "repo"
    return repo if repo.is_dir() else None


@pytest.mark.parametrize("extension", ["forge_legacy_preprocessors", "sd_forge_controlnet"])
def test_copied_requirements_match_the_stored_snapshot(extension):
    repo = _stored_forge()
    if repo is None:
        pytest.skip("no stored snapshot of lllyasviel/stable-diffusion-webui-forge")
    text = subprocess.run(["git", "--git-dir", str(repo), "show", f"{FORGE_COMMIT}:extensions-builtin/{extension}/requirements.txt"],
                          capture_output=True, text=True, check=True).stdout
    assert [line.strip() for line in text.splitlines() if line.strip()] == EXTENSION_REQUIREMENTS


def test_copied_wheel_defaults_match_the_stored_snapshot():
    repo = _stored_forge()
    if repo is None:
        pytest.skip("no stored snapshot of lllyasviel/stable-diffusion-webui-forge")
    text = subprocess.run(["git", "--git-dir", str(repo), "show",
                           f"{FORGE_COMMIT}:extensions-builtin/forge_legacy_preprocessors/install.py"],
                          capture_output=True, text=True, check=True).stdout
    urls = {url for step in load_manifest("forge").pip for url in step.archives}
    for url in urls:
        if url.endswith(".whl"):
            assert f'"{url}"' in text, url
    assert 'version="2024.2.12.0"' in text
