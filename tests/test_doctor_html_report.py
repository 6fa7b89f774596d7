"""report.html: one self-contained page a person opens offline, checked by rendering it in Chromium."""

from __future__ import annotations

import base64
import json
import shutil
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sdsetup import cli
from sdsetup.doctor.html_report import render_report

FIXTURES = Path(__file__).parent / "fixtures" / "logs"
MAGENTA = (255, 0, 255)
TEAL = (0, 128, 128)


def png(width: int, height: int, colours: tuple[tuple[int, int, int], ...]) -> bytes:
    """A real PNG: vertical stripes of the given colours (written by hand: no image library needed)."""
    rows = b""
    for _ in range(height):
        rows += b"\x00" + b"".join(bytes(colours[x * len(colours) // width]) for x in range(width))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


FINDING = {
    "id": "sd-repo-gone-not-found", "title": "The Stable Diffusion repository is gone", "severity": "error",
    "explanation": "github.com/Stability-AI/stablediffusion was deleted <b>not bold</b>.",
    "fix": {"steps": ["Set STABLE_DIFFUSION_REPO to the fork."],
            "commands": {"windows": ["set STABLE_DIFFUSION_REPO=https://github.com/w-e-w/stablediffusion.git"]}},
    "evidence": ["fatal: repository 'https://github.com/Stability-AI/stablediffusion.git/' not found"],
    "source": "console.txt", "line": 12,
}


def page(image: bytes | None = None) -> str:
    return render_report(
        title="sdsetup doctor report", generated="sdsetup 0.1, 2026-11-29",
        environment={"sdsetup": "0.1", "python": "3.10.6", "os": {"system": "Windows", "release": "11"},
                     "gpus": [{"vendor": "nvidia", "name": "RTX 3060", "vram_total_bytes": 12 * 2**30, "driver_version": "551.86"}]},
        summary="1 problem found.", findings=[FINDING],
        install={"folder": "~/stable-diffusion-webui", "manifest": "a1111", "backend": "cuda"},
        checks=[{"name": "venv", "status": "ok", "value": "Python 3.10.6"},
                {"name": "torch", "status": "fail", "value": "2.1.2+cpu", "fix": "sdsetup install DIR"}],
        steps=[{"name": "clone", "status": "done", "seconds": 12.5}, {"name": "torch", "status": "done", "seconds": 301.0}],
        image_png=image, image_caption="the last smoke test's image")


def test_the_page_is_self_contained_and_escapes_what_it_shows():
    text = page(png(8, 8, (MAGENTA, TEAL)))
    lower = text.lower()
    assert "<script" not in lower and "@import" not in lower and "url(" not in lower
    assert 'src="http' not in lower and "href=" not in lower, "no external asset"
    assert "default-src 'none'" in text, "the CSP forbids loading anything"
    assert 'src="data:image/png;base64,' in text
    assert "&lt;b&gt;not bold&lt;/b&gt;" in text, "text is escaped, never markup"
    for needle in ("RTX 3060", "12.0 GiB", "a1111", "301.0 s", "Set STABLE_DIFFUSION_REPO to the fork.", "FAIL"):
        assert needle in text


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium; apt-get install -y chromium)")
    return found


def _headless(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
             "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}"]
    return subprocess.run([browser, *flags, *args], capture_output=True, timeout=120, stdin=subprocess.DEVNULL)


def test_chromium_renders_the_findings_and_the_image(tmp_path):
    browser = _chromium()
    from PIL import Image

    report = tmp_path / "report.html"
    report.write_text(page(png(64, 64, (MAGENTA, TEAL))), encoding="utf-8")
    dom = _headless(browser, tmp_path / "profile-dom", "--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = dom.stdout.decode("utf-8", "replace")
    assert "The Stable Diffusion repository is gone" in text and "Set STABLE_DIFFUSION_REPO to the fork." in text
    shot = tmp_path / "shot.png"
    result = _headless(browser, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1100,2600", report.as_uri())
    assert shot.is_file(), result.stderr[-2000:]
    pixels = {colour for _, colour in Image.open(shot).convert("RGB").getcolors(1 << 24)}
    assert MAGENTA in pixels and TEAL in pixels, "the smoke-test image is drawn"
    assert (207, 34, 46) in pixels, "the finding's red error bar is drawn"


def test_the_support_zip_holds_report_html_with_the_findings_and_the_image(tmp_path):
    root = tmp_path / "webui"
    (root / ".sdsetup").mkdir(parents=True)
    (root / ".sdsetup" / "smoke.png").write_bytes(png(8, 8, (MAGENTA,)))
    (root / ".sdsetup" / "journal.json").write_text(json.dumps(
        {"schema_version": 1, "steps": {"clone-webui": {"status": "done", "seconds": 4.25}}}))
    out = tmp_path / "r.zip"
    result = CliRunner().invoke(cli.app, ["doctor", str(root), "--log", str(FIXTURES / "sd-repo-gone-not-found.log"),
                                          "--bundle", str(out)])
    assert result.exit_code == 1, result.output
    with zipfile.ZipFile(out) as archive:
        html = archive.read("report.html").decode("utf-8")
    assert "The Stable Diffusion repository is gone" in html and "w-e-w/stablediffusion" in html
    assert "clone-webui" in html and "4.2 s" in html
    assert "data:image/png;base64," + base64.b64encode(png(8, 8, (MAGENTA,))).decode() in html


def test_verify_report_writes_one_page_with_the_smoke_image_it_just_made(tmp_path):
    import sys

    report = tmp_path / "verify-report.html"
    result = CliRunner().invoke(cli.app, ["verify", "--smoke", "--python", sys.executable, "--report", str(report), "--json"])
    assert result.exit_code == 0, result.output
    html = report.read_text("utf-8")
    assert "sdsetup verify report" in html and "smoke test" in html and "OK" in html
    assert 'src="data:image/png;base64,' in html, "the image generated just now is inside the page"
    assert "smoke: steps" in html, "the smoke test's timings are listed"
    assert "<script" not in html.lower()


def test_verify_report_into_a_folder_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli.app, ["verify", "--smoke", "--report", str(tmp_path)])
    assert result.exit_code == 2 and "--report" in result.stderr
