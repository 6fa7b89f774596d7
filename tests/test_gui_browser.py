"""`sdsetup gui` in a real browser: Debian's chromium driven by Playwright goes through this machine →
install (into the install end-to-end test world on 127.0.0.1) → verify → doctor → start the web UI, in
Chinese and in English, with the keyboard where a person would use it. Screenshots at 1280×800 (and a
narrow window) are kept in build/gui-screenshots/ for a person to look at.

Skips, saying why, where chromium or Playwright is missing (.ci/run installs chromium and fonts-noto-cjk).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import urljoin

import pytest

from tests.fixtures.install import fixture as fx

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "build" / "gui-screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MODEL_PATH = "/hf/sdfixture/sd15/resolve/main/model.safetensors"
SECRET = "hf_" + "Q" * 8 + "abcdefghij0123456789"  # a Hugging Face token shape, pasted with the log
OOM_LOG = f"""Loading weights [6ce0161689] from /home/user/webui/models/Stable-diffusion/model.safetensors
HF_TOKEN={SECRET}
Traceback (most recent call last):
  File "/home/user/webui/modules/processing.py", line 845, in process_images
torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 512.00 MiB (GPU 0; 4.00 GiB total capacity; 3.10 GiB already allocated)
"""

playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed (pip install -e '.[test]')")
if not Path(CHROMIUM).exists():
    pytest.skip("chromium is not installed (apt-get install chromium fonts-noto-cjk)", allow_module_level=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The install end-to-end test's world (tests/fixtures/install), the model served slowly enough to watch."""
    from tests.servers.fileserver import FileServer
    from tests.servers.gitserver import serve_git

    if not fx.real_wheels():
        pytest.skip("needs real pip/setuptools/wheel wheels in build/test-wheels: run scripts/test.sh once (it downloads them)")
    root = tmp_path_factory.mktemp("gui-world")
    with serve_git(root / "git") as git:
        built = fx.build_world(root, git)
        with FileServer(built.files_dir) as files:
            files.rule(MODEL_PATH, rate=300_000)  # per connection: a few seconds of live progress
            manifest = fx.write_manifest(built, root / "fixture.toml")
            config = fx.write_config(root / "config.toml", files.url("/"), git.prefix_base)
            facts = root / "machine.json"
            facts.write_text(json.dumps(fx.MACHINE), "utf-8")
            yield {"built": built, "files": files, "manifest": manifest, "config": config, "facts": facts, "root": root}


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


def start_gui(world, lang: str, cwd: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "SDSETUP_CONFIG": str(world["config"]), "SDSETUP_MACHINE_FACTS": str(world["facts"]),
           "SDSETUP_TIMEOUT": "10", "SDSETUP_LANG": lang, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "sdsetup", "gui", "--no-browser"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, env=env, cwd=cwd)
    url = process.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:"), url
    return process, url


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def go(page, name: str) -> None:
    """Open a page from the navigation with the keyboard: Tab to its link, Enter."""
    page.locator("#lang").focus()
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.page") == name:
            break
    else:
        raise AssertionError(f"the {name} link cannot be reached with Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "the focused link shows no focus ring"
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#page-{name}:not([hidden])")
    assert page.evaluate("document.activeElement.id") == f"h-{name}"  # focus moves to the page's heading


WORDS = {  # what a person reads, per language (from the catalog, not from the page's code)
    "zh-CN": {"machine": "本机", "install": "安装", "finished_item": "操作系统", "ready": "可以安装", "doctor_title": "显存",
              "exited": "已停止（退出码 0）"},
    "en": {"machine": "This machine", "install": "Install", "finished_item": "operating system", "ready": "Ready to install",
           "doctor_title": "out of", "exited": "Stopped (exit code 0)"},
}


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_check_install_verify_doctor_and_start_in_a_real_browser(world, browser, tmp_path, lang):
    words = WORDS[lang]
    tag = lang.lower()
    target = tmp_path / "webui"
    process, url = start_gui(world, lang, tmp_path)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        assert page.evaluate("document.documentElement.lang") == lang
        assert page.locator("#h-machine").inner_text() == words["machine"]

        # this machine: check's items and verdict, as `sdsetup check` gives them
        page.fill("#folder", str(target))
        page.dispatch_event("#folder", "change")
        page.click("#check-run")
        page.wait_for_selector("#check-out table.items")
        assert words["finished_item"] in page.locator("#check-out").inner_text().lower()
        assert words["ready"].lower() in page.locator("#check-out .banner").inner_text().lower()
        shot(page, f"{tag}-1-machine")

        # install: the e2e profile from the config file, the fixture manifest, live progress per step
        go(page, "install")
        page.locator("#install-form details summary").click()
        page.fill("#manifest", str(world["manifest"]))
        page.fill("#install-python", sys.executable)
        page.check("#skip-smoke")  # the world's torch is a stand-in that cannot draw
        page.check("input[name='mirror'][value='e2e']")
        page.click("#install-run")
        page.wait_for_selector("#install-out .file", state="attached", timeout=180_000)  # a download began (li.closed .files is display:none once a step ends, so not "visible")
        checkpoint = page.locator("#install-out .file[data-file*='checkpoint']")
        checkpoint.wait_for(timeout=240_000)  # the slow one: caught while its bytes arrive
        page.wait_for_selector("#install-out .file[data-file*='checkpoint'] .rate:not(:empty)", timeout=30_000)
        page.evaluate("window.scrollTo(0, 0)")
        shot(page, f"{tag}-2-install-progress")
        page.evaluate("document.querySelector('#install-out li:last-child').scrollIntoView({block: 'end'})")
        shot(page, f"{tag}-2-install-download")
        page.wait_for_selector("#install-out .banner", timeout=300_000)
        out = page.locator("#install-out")
        assert "ok" in out.locator(".banner").get_attribute("class"), out.inner_text()
        statuses = page.eval_on_selector_all("#install-out li[data-step] .badge", "els => els.map(e => e.className)")
        assert statuses and all(re.search(r"\b(done|skipped|done-before)\b", s) for s in statuses), statuses
        names = page.eval_on_selector_all("#install-out .file", "els => els.map(e => e.dataset.file)")
        model = page.locator("#install-out .file[data-file*='checkpoint']")
        assert model.count() == 1, "\n".join(names)
        meta = model.locator(".meta").text_content()  # the finished step shows one line; its rows are kept
        assert page.locator("#install-out li.closed .files-summary").count() >= 3
        assert "3.0 MiB / 3.0 MiB" in meta and f"127.0.0.1:{world['files'].port}" in meta
        assert json.loads((target / ".sdsetup" / "install.json").read_text("utf-8"))["finished"] is True
        shot(page, f"{tag}-3-install-done")

        # verify: the install's checks (its stand-in torch fails the smoke test: shown with the fix), the report
        go(page, "verify")
        page.click("#verify-run")
        page.wait_for_selector("#verify-out .banner", timeout=300_000)
        verify_text = page.locator("#verify-out").inner_text()
        assert page.locator("#verify-out table.items tr[data-status='ok']").count() >= 3, verify_text
        report = page.locator("#verify-out a[href*='report.html']")
        assert report.count() == 1
        response = page.request.get(urljoin(page.url, report.get_attribute("href")))
        assert response.status == 200 and "<html" in response.text().lower()
        shot(page, f"{tag}-4-verify")
        if lang == "zh-CN":  # the smoke test alone with this Python (real CPU torch): the picture appears
            page.check("#smoke-only")
            page.fill("#verify-python", sys.executable)
            page.click("#verify-run")
            page.wait_for_selector("#verify-out .banner", timeout=300_000)
            image = page.locator("#verify-out .smoke img")
            assert image.count() == 1, page.locator("#verify-out").inner_text()
            page.wait_for_function("document.querySelector('#verify-out .smoke img').naturalWidth > 0")
            shot(page, f"{tag}-5-verify-image")
            page.uncheck("#smoke-only")
            page.fill("#verify-python", "")

        # models and extensions: `models list` / `ext list` as the terminal shows them; a model added from a URL
        # with its sha256 arrives (through the same download engine: bytes, rate, source) and is listed
        go(page, "models")
        page.wait_for_selector("#models-out pre.listing, #models-out .banner")
        assert "model.safetensors" in page.locator("#models-out").inner_text()
        page.wait_for_selector("#ext-out pre.listing, #ext-out .banner")
        if lang == "zh-CN":
            page.fill("#model-source", world["files"].url(MODEL_PATH))
            page.select_option("#model-type", "lora")
            page.fill("#model-name", "extra.safetensors")
            page.fill("#model-sha256", world["built"].model_sha256)
            page.click("#model-add")
            page.wait_for_selector("#models-out .banner", timeout=120_000)
            models_text = page.locator("#models-out").inner_text()
            assert "ok" in page.locator("#models-out .banner").get_attribute("class"), models_text
            assert "extra.safetensors" in page.locator("#models-out pre.listing").inner_text(), models_text
            shot(page, f"{tag}-5b-models")

        # start the web UI: the fixture's launch.py checks what it needs and exits; its console is kept
        go(page, "webui")
        page.click("#webui-start")
        for _ in range(60):
            if words["exited"] in page.locator("#webui-out").inner_text():
                break
            page.wait_for_timeout(1000)
            page.click("#webui-refresh")
        assert words["exited"] in page.locator("#webui-out").inner_text()
        console = page.locator("#webui-out pre.console").inner_text()
        assert '"ok": true' in console.replace('"ok":true', '"ok": true'), console
        shot(page, f"{tag}-6-webui")

        # doctor: a pasted log names the cause with its fix; the pasted token never shows; the console log is offered
        go(page, "doctor")
        page.wait_for_selector("#log-pick option[value='webui-console.log']", state="attached")
        page.fill("#log-text", OOM_LOG)
        page.uncheck("#with-folder")
        page.click("#doctor-run")
        page.wait_for_selector("#doctor-out .banner", timeout=120_000)
        findings = page.locator("#doctor-out .finding")
        assert findings.count() >= 1
        first = findings.first
        assert first.get_attribute("data-finding") and first.locator("ol li").count() >= 1  # a fix, step by step
        assert words["doctor_title"].lower() in first.locator("h4").inner_text().lower()
        assert SECRET not in page.content()
        shot(page, f"{tag}-7-doctor")
        with page.expect_download() as download_info:
            page.click("#doctor-zip")
            page.wait_for_selector("#doctor-out a.download", timeout=120_000)
            page.click("#doctor-out a.download")
        zipped = download_info.value.path()
        with zipfile.ZipFile(zipped) as archive:
            names = archive.namelist()
            assert names and all(SECRET.encode() not in archive.read(name) for name in names)
        page.fill("#log-text", "")
        page.check("#with-folder")
        page.click("#doctor-fix")  # the install's own state: nothing to fix is an answer too
        page.wait_for_selector("#doctor-out .banner", timeout=120_000)

        # a narrow window: nothing is cut off sideways
        page.set_viewport_size({"width": 390, "height": 800})
        go(page, "machine")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        shot(page, f"{tag}-8-narrow")
        page.close()
    finally:
        process.send_signal(2)
        process.wait(20)


def test_the_language_switch_reloads_the_page_in_the_other_language(world, browser, tmp_path):
    process, url = start_gui(world, "en", tmp_path)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        assert page.locator("#h-machine").inner_text() == "This machine"
        with page.expect_navigation():
            page.select_option("#lang", "zh-CN")
        page.wait_for_selector("body[data-ready='1']")
        assert page.locator("#h-machine").inner_text() == "本机"
        page.wait_for_selector("#check-out table.items")
        assert "操作系统" in page.locator("#check-out").inner_text()  # check's own items follow the language
        page.close()
    finally:
        process.send_signal(2)
        process.wait(20)
