"""Under `--lang zh-CN` a person reads Chinese from every command, not Chinese labels over English values.

Each command runs as a user runs it (`python -m sdsetup --lang zh-CN …`, human output, on 127.0.0.1 test
worlds: tests/fixtures/verify for verify and doctor, tests/fixtures/install for install, fetch, mirrors and
bundle), and both report.html pages are rendered. What it prints must hold no English prose.

English prose, for this test: a run of three or more lowercase English words ("runs on the"), once the
text sdsetup shows verbatim is taken out. Verbatim means, and only means:
- names a person types or pastes: URLs, paths and file names, --flags, KEY=VALUE, pip requirement
  specifiers, hex hashes and commit ids, `code spans`, and a git/pip/python/sdsetup command line;
- text in quotes ('Torch is not able to use GPU', "…"): a message of another program, cited as it is;
- what another program printed, after sdsetup's "exit code N:" marker;
- text the user (here: the test world) wrote, such as a mirror profile's description in the config file,
  and lines quoted from the user's own log (the doctor's evidence).
Nothing in the allow-list names a message of sdsetup: one left untranslated fails this test
(test_a_planted_english_sentence_is_caught shows it does).
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

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "tests" / "fixtures" / "logs"

# -- the detector ---------------------------------------------------------------------------------
_VERBATIM = [
    re.compile(r"exit code -?\d+: .*"),  # another program's own output follows the marker, to the end of the line
    # a command line to paste: sdsetup's with its arguments (no plain words), git's, pip's and python's up to the Chinese
    re.compile(r"\bsdsetup (?:install|verify|check|doctor|fetch|mirrors (?:list|probe)|bundle (?:create|verify))"
               r"(?:\s+(?![a-z]+(?:\s|$))[^\s\u3000-\u9fff\uff00-\uffef]+)*"),
    re.compile(r"\b(?:git (?:-C|clone|checkout|stash|status|diff|fetch)|pip install|python3? -m)\b[^\u3000-\u9fff\uff00-\uffef]*"),
    re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+"),  # URLs
    re.compile(r"`[^`\n]*`"),  # code spans: commands to paste
    re.compile(r"(?<![A-Za-z])'[^'\n]+'(?![A-Za-z])"),  # quoted messages of other programs
    re.compile(r'"[^"\n]*"'),
    re.compile(r"“[^”\n]*”|「[^」\n]*」"),
    re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*(?:=\S*)?"),  # flags
    re.compile(r"\b[A-Z_][A-Z0-9_]*=\S*"),  # KEY=VALUE
    re.compile(r"[^\s,;()（）]*[/\\~][^\s,;()（）]*"),  # paths
    re.compile(r"[\w.+-]+\.[A-Za-z][A-Za-z0-9]{0,9}\b"),  # file names, host names, dotted versions
    re.compile(r"[\w.-]+(?:==|>=|<=|~=|!=)\S+"),  # requirement specifiers
    re.compile(r"\b[0-9a-f]{7,64}\b"),  # hashes, commit ids
]
# Three words or more, all lowercase but the first (a sentence starts with a capital; names such as
# "Stable Diffusion XL" or "web UI" do not make a run).
_PROSE = re.compile(r"\b[A-Za-z][a-z]*(?:'[a-z]+)?(?:\s+[a-z]+(?:'[a-z]+)?){2,}\b")
_KEPT_PREFIXES = ("warning: ", "error: ", "hint: ")  # stderr prefixes scripts grep for (`# i18n: keep`)


def english_prose(text: str, user_text: tuple[str, ...] = (), quoted_from: str = "") -> list[str]:
    """The runs of English prose in text, each with its line, after the verbatim parts are taken out.

    `user_text`: strings the user wrote, shown as they are; `quoted_from`: a log whose lines, whole or cut,
    may be quoted line by line."""
    found = []
    for line in text.splitlines():
        if quoted_from and len(line.strip()) > 20 and line.strip() in quoted_from:
            continue
        for prefix in _KEPT_PREFIXES:
            if line.startswith(prefix):
                line = line[len(prefix):]
        shown = line
        for given in user_text:
            line = line.replace(given, " ")
        for pattern in _VERBATIM:
            line = pattern.sub(" ", line)
        found += [f"{run!r} in: {shown.strip()}" for run in _PROSE.findall(line)]
    return found


def html_text(page: str) -> str:
    """What a person reads on a page: the text between the tags, alt texts and the title."""
    page = re.sub(r"(?s)<style>.*?</style>", "", page)
    alts = " ".join(re.findall(r'alt="([^"]*)"', page))
    text = re.sub(r"<[^>]+>", "\n", page)
    import html

    return html.unescape(text) + "\n" + html.unescape(alts)


def assert_chinese(name: str, text: str, *, user_text: tuple[str, ...] = (), quoted_from: str = "") -> None:
    assert re.search(r"[\u4e00-\u9fff]", text), f"{name}: no Chinese at all:\n{text[:2000]}"
    prose = english_prose(text, user_text, quoted_from)
    assert not prose, f"{name}: English prose under --lang zh-CN:\n" + "\n".join(prose) + f"\n--- output ---\n{text[:6000]}"


# -- running sdsetup as a user does ----------------------------------------------------------------
def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)  # isolated by tests/conftest.py (HOME, caches, git, pip)
    env.pop("SDSETUP_LANG", None)
    env.update({"PYTHONUNBUFFERED": "1", "SDSETUP_TIMEOUT": "10", "PYTHONPATH": str(ROOT)})
    # Only this interpreter and the system tools: check lists the Pythons on PATH, and a developer's broken
    # shims (pyenv) would make the output depend on the machine.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])
    env.update(extra)
    return env


def sdsetup(*args: str, env: dict[str, str], ok: tuple[int, ...] = (0,), timeout: int = 300) -> str:
    result = subprocess.run([sys.executable, "-m", "sdsetup", "--lang", "zh-CN", *args], env=env, capture_output=True,
                            text=True, encoding="utf-8", timeout=timeout, cwd=ROOT)
    assert result.returncode in ok, f"sdsetup {' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result.stdout + "\n" + result.stderr


# -- the detector itself ----------------------------------------------------------------------------
def test_the_detector_finds_prose_and_leaves_names_paths_flags_and_quotes_alone():
    assert english_prose("[ok  ] torch 后端   torch 2.13.0+cpu (CPU-only build) runs on the CPU")
    assert english_prose("出图测试：tiny model on cpu float32")
    assert english_prose("sdsetup doctor report was written")  # a command name does not hide the prose after it
    allowed = [
        "[ok  ] 启动参数  --use-cpu all --precision full --no-half --skip-torch-cuda-test（与 cpu 相符）",
        "请重新运行 `sdsetup install /tmp/my webui`：它会取回固定的提交",
        "sdsetup 可以自动处理：sdsetup doctor DIR --fix   （vram_flags）",
        "  (或者：sdsetup install DIR --offline \"/tmp/b\")",
        "web UI 会报错 'Torch is not able to use GPU' 停下",
        "来源：https://example.invalid/a/b/model file.safetensors?download=true",
        "git -C \"/tmp/x\" stash push -- webui-user.sh launch.py",
        "无法运行：exit code 127: pyenv: python3.10: command not found",
        "  COMMANDLINE_ARGS=--xformers PYTORCH_ENABLE_MPS_FALLBACK=1",
        "torch==2.1.2 torchvision==0.16.2 setuptools>=69 /home/me/stable diffusion/venv/bin/python",
        "在 9d1f3b24fc（固定版本）",
    ]
    for line in allowed:
        assert english_prose(line) == [], line
    assert english_prose("镜像方案 e2e：the test servers on this host", ("the test servers on this host",)) == []
    log = "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB\n"
    assert english_prose("     torch.cuda.OutOfMemoryError: CUDA out of memory. Tried", quoted_from=log) == []
    assert english_prose("原因：the model did not fit", quoted_from=log)


def test_a_planted_english_sentence_is_caught(monkeypatch):
    """The check's verdict rendered in Chinese passes; the same render with one message left out of the
    catalog (as a new, untranslated string would be) fails."""
    from sdsetup import i18n
    from sdsetup.commands import check

    data = {"items": [{"id": "os", "name": i18n.t("OS"), "status": "ok", "value": "Linux 6.1.0 x86_64", "fix": None}],
            "python": {"candidates": [], "chosen": {"path": "/usr/bin/python3"}},
            "recommendation": {"backend": "cpu", "torch_tag": "cpu", "manifest": "a1111", "launch_flags": ["--no-half"],
                               "env": {}, "notes": []}}
    monkeypatch.setattr(i18n, "_current", i18n.CHINESE)
    assert_chinese("check", check.render(data))
    catalog = dict(i18n.load_catalog(i18n.CHINESE))
    del catalog["Ready to install."]
    monkeypatch.setattr(i18n, "load_catalog", lambda lang: catalog)
    planted = check.render(data)
    assert "Ready to install." in planted
    with pytest.raises(AssertionError, match="Ready to install"):
        assert_chinese("check", planted)


# -- check and install --dry-run: the machine replayed -------------------------------------------------
@pytest.fixture
def machine(tmp_path):
    from tests.fixtures.install import fixture as fx

    path = tmp_path / "machine.json"
    path.write_text(json.dumps(fx.MACHINE), "utf-8")
    return str(path)


def test_check_speaks_chinese(machine, tmp_path):
    out = sdsetup("check", "--dir", str(tmp_path / "webui"), env=_env(SDSETUP_MACHINE_FACTS=machine))
    assert_chinese("check", out)


def test_install_dry_run_speaks_chinese(machine, tmp_path):
    out = sdsetup("install", str(tmp_path / "webui"), "--dry-run", "--yes", "--mirror", "official",
                  env=_env(SDSETUP_MACHINE_FACTS=machine))
    assert_chinese("install --dry-run", out, user_text=("AUTOMATIC1111 Stable Diffusion web UI",))


# -- verify (with its report.html) and doctor (with the support zip's report.html) ----------------------
@pytest.fixture(scope="module")
def damaged_install(tmp_path_factory):
    """tests/fixtures/verify's install with a missing model, a repository off its pin and changed files, and
    launch flags wrong for the machine: every kind of item, with fixes."""
    from tests.fixtures.verify import fixture_install
    from tests.fixtures.verify.fixture_install import CPU_MACHINE, git

    root = tmp_path_factory.mktemp("i18n-verify")
    install = fixture_install.build(root / "webui", launch_args="--use-cpu all --precision full --no-download-sd-model")
    install.model.unlink()
    kdiff = install.root / "repositories" / "k-diffusion"
    git("checkout", "-q", install.kdiff_commits[1], cwd=kdiff)
    (install.root / "launch.py").write_text("print('changed')\n")
    return install, install.machine_file(CPU_MACHINE)


@pytest.mark.slow
def test_verify_and_its_report_speak_chinese(damaged_install, tmp_path):
    install, machine = damaged_install
    report = tmp_path / "report.html"
    out = sdsetup("verify", str(install.root), "--report", str(report), env=_env(SDSETUP_MACHINE_FACTS=str(machine)), ok=(1,))
    assert "[FAIL]" in out and "->" in out  # failures with their fixes were rendered
    assert_chinese("verify", out)
    page = report.read_text("utf-8")
    assert '<html lang="zh-CN">' in page
    assert_chinese("verify --report", html_text(page))


@pytest.mark.slow
def test_doctor_and_its_report_speak_chinese(damaged_install, tmp_path):
    install, machine = damaged_install
    bundle = tmp_path / "support.zip"
    out = sdsetup("doctor", str(install.root), "--log", str(LOGS / "cuda-oom.log"), "--bundle", str(bundle),
                  env=_env(SDSETUP_MACHINE_FACTS=str(machine)), ok=(0, 1))
    log = (LOGS / "cuda-oom.log").read_text("utf-8")
    assert "torch.cuda.OutOfMemoryError" in out  # the evidence is quoted from the log, as it is
    assert_chinese("doctor", out, quoted_from=log)
    with zipfile.ZipFile(bundle) as archive:
        page = archive.read("report.html").decode("utf-8")
    assert_chinese("doctor report.html", html_text(page), quoted_from=log)


# -- install, fetch, mirrors and bundle in the install world --------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from tests.fixtures.install import fixture as fx
    from tests.servers.fileserver import FileServer
    from tests.servers.gitserver import serve_git

    if not fx.real_wheels():
        pytest.skip("needs real pip/setuptools/wheel wheels in build/test-wheels: run scripts/test.sh once (it downloads them)")
    root = tmp_path_factory.mktemp("i18n-world")
    with serve_git(root / "git") as git:
        built = fx.build_world(root, git)
        with FileServer(built.files_dir) as files:
            manifest = fx.write_manifest(built, root / "fixture.toml")
            config = fx.write_config(root / "config.toml", files.url("/"), git.prefix_base)
            facts = root / "machine.json"
            facts.write_text(json.dumps(fx.MACHINE), "utf-8")
            env = _env(SDSETUP_CONFIG=str(config), SDSETUP_MACHINE_FACTS=str(facts))
            user_text = tuple(re.findall(r'description = "([^"]*)"', config.read_text("utf-8")))
            yield {"world": built, "files": files, "manifest": manifest, "env": env, "root": root, "user_text": user_text}


@pytest.mark.slow
def test_a_real_install_and_its_rerun_speak_chinese(world, tmp_path):
    argv = ("install", str(tmp_path / "webui"), "--manifest", str(world["manifest"]), "--mirror", "e2e", "--python", sys.executable,
            "--yes", "--skip-smoke")
    assert_chinese("install", sdsetup(*argv, env=world["env"]), user_text=world["user_text"])
    assert_chinese("install (rerun)", sdsetup(*argv, env=world["env"]), user_text=world["user_text"])


@pytest.mark.slow
def test_fetch_speaks_chinese(world, tmp_path):
    url = world["files"].url("/hf/sdfixture/sd15/resolve/main/model.safetensors")
    out = sdsetup("fetch", url, "-o", str(tmp_path / "model.safetensors"), env=world["env"])
    assert_chinese("fetch", out)


@pytest.mark.slow
def test_mirrors_list_and_probe_speak_chinese(world):
    assert_chinese("mirrors list", sdsetup("mirrors", "list", "--mirror", "e2e", env=world["env"]), user_text=world["user_text"])
    # The world serves the install's files, not every probe URL: some candidates fail (exit 3), and their FAIL
    # lines are rendered too.
    probed = sdsetup("mirrors", "probe", "--mirror", "e2e", env=world["env"], ok=(0, 3))
    assert "local-torch" in probed
    assert_chinese("mirrors probe", probed, user_text=world["user_text"])


@pytest.mark.slow
def test_bundle_create_and_verify_speak_chinese(world, tmp_path):
    out_dir = tmp_path / "bundle"
    out = sdsetup("bundle", "create", str(out_dir), "--manifest", str(world["manifest"]), "--backend", "cpu", "--mirror", "e2e",
                  env=world["env"])
    assert_chinese("bundle create", out, user_text=world["user_text"])
    assert_chinese("bundle verify", sdsetup("bundle", "verify", str(out_dir), env=world["env"]))
