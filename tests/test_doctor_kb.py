"""The known-errors file: it loads, covers the facts, and a broken entry is named precisely."""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

import pytest

from sdsetup.doctor import fixes
from sdsetup.doctor.kb import AUTOFIX_ACTIONS, default_kb_path, load_kb, parse_kb
from sdsetup.errors import ExitCode, SdsetupError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FIXTURES = Path(__file__).parent / "fixtures" / "logs"


def _raw() -> dict:
    return tomllib.loads(default_kb_path().read_text("utf-8"))


def test_shipped_knowledge_base_loads_and_covers_the_known_failures():
    kb = load_kb()
    problems = [e for e in kb.entries if e.severity != "harmless"]
    assert len(problems) >= 20
    ids = set(kb.ids)
    # the failures people hit most (facts §3), each its own entry
    for expected in ("sd-repo-gone-prompt", "sd-repo-gone-not-found", "sd-repo-gone-no-username", "clip-pkg-resources",
                     "clip-backend-unavailable", "torch-no-wheel-python", "torch-no-wheel-32bit", "torch-no-gpu", "rtx50-sm120",
                     "nan-unet", "nan-vae", "git-dubious-ownership", "repo-hash-undetermined", "git-clone-network",
                     "local-proxy-dead", "pip-read-timeout", "ssl-cert-verify", "hf-unreachable", "socks-support-missing",
                     "no-checkpoint", "sd15-url-dead", "python-not-found", "xformers-mismatch", "httpx-socket-options",
                     "cuda-oom", "libgl-missing", "webui-sh-root", "python3-venv-missing", "repositories-missing",
                     "pkgutil-impimporter"):
        assert expected in ids, expected
    for entry in problems:
        assert entry.fix.steps, entry.id
        assert entry.explanation and entry.title


def test_every_autofix_action_has_an_implementation():
    assert set(fixes.PLANNERS) == set(AUTOFIX_ACTIONS)
    kb = load_kb()
    used = {e.autofix.action for e in kb.entries if e.autofix}
    assert {"set_env", "reinstall_clip", "torch_cuda", "hf_mirror"} <= used


def test_sd_repo_fix_points_at_the_fork_with_the_pinned_commit():
    entry = load_kb().get("sd-repo-gone-not-found")
    assert entry.autofix.action == "set_env"
    assert "STABLE_DIFFUSION_REPO=https://github.com/w-e-w/stablediffusion.git" in entry.autofix.args
    assert "STABLE_DIFFUSION_COMMIT_HASH=cf1d67a6fd5ea1aa600c4df58e5b47da45f6bdbf" in entry.autofix.args
    assert any("set STABLE_DIFFUSION_REPO=" in c for c in entry.fix.commands["windows"])
    assert any("export STABLE_DIFFUSION_REPO=" in c for c in entry.fix.commands["linux"])


def _broken(mutate):
    data = _raw()
    data = copy.deepcopy(data)
    mutate(data)
    with pytest.raises(SdsetupError) as caught:
        parse_kb(data, "known_errors.toml")
    assert caught.value.exit_code == ExitCode.USAGE
    return caught.value.message


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d["error"][2].pop("patterns"), ["known_errors.toml", "error[2]", "missing key 'patterns'"]),
        (lambda d: d["error"][0]["patterns"].append("([unclosed"), ["error[0] (id 'sd-repo-gone-prompt')", "patterns[2]", "regular expression"]),
        (lambda d: d["error"][1].update(severity="fatal"), ["error[1]", "severity"]),
        (lambda d: d["error"][3].update(id=d["error"][0]["id"]), ["error[3]", "used twice"]),
        (lambda d: d["error"][1].update(autofix="delete_everything"), ["error[1]", "unknown action 'delete_everything'"]),
        (lambda d: d["error"][1].update(autofix="set_env STABLE_DIFFUSION_REPO"), ["error[1]", "not NAME=VALUE"]),
        (lambda d: d["error"][1].update(autofix="pip_install 'httpx=='"), ["error[1]", "invalid"]),
        (lambda d: d["error"][1].update(supersedes=["no-such-entry"]), ["sd-repo-gone-not-found", "unknown id 'no-such-entry'"]),
        (lambda d: d["error"][1].update(specifity=5), ["error[1]", "unknown key(s) ['specifity']"]),
        (lambda d: d["error"][1].update(specificity=500), ["error[1]", "1 to 100"]),
        (lambda d: d["error"][1]["fix"].update(windwos=["x"]), ["error[1]", "fix has unknown key(s) ['windwos']"]),
        (lambda d: d.update(schema_version=2), ["top level", "schema_version must be 1"]),
        (lambda d: d["error"][0].pop("context"), ["error[0]", "context_lines"]),
    ],
)
def test_a_broken_entry_is_named_with_file_key_and_problem(mutate, expected):
    message = _broken(mutate)
    for part in expected:
        assert part in message, message


def test_invalid_toml_names_the_file(tmp_path):
    broken = tmp_path / "known_errors.toml"
    broken.write_text("schema_version = 1\n[[error]\nid = 'x'\n")
    with pytest.raises(SdsetupError) as caught:
        load_kb(broken)
    assert str(broken) in caught.value.message and caught.value.exit_code == ExitCode.USAGE


def test_every_entry_has_a_fixture_log():
    missing = [e.id for e in load_kb().entries if not (FIXTURES / f"{e.id}.log").is_file()]
    assert not missing, f"add tests/fixtures/logs/<id>.log for: {missing}"


# ------------------------------------------------------------------------------------ zh-CN beside the English

_CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("entry", load_kb().entries, ids=lambda e: e.id)
def test_every_entry_speaks_simplified_chinese_too(entry):
    zh = entry.text("zh_CN.UTF-8")
    assert zh.lang == "zh-CN" and _CJK.search(zh.title) and _CJK.search(zh.explanation)
    assert len(zh.steps) == len(entry.fix.steps) and all(_CJK.search(step) for step in zh.steps)
    en = entry.text("en_US.UTF-8")
    assert (en.title, en.explanation, en.steps) == (entry.title, entry.explanation, entry.fix.steps)
    # the commands are the same in every language: they are not translated
    assert entry.fix.commands == entry.fix.commands


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda e: e.pop("title_zh"), "missing key 'title_zh'"),
        (lambda e: e.pop("explanation_zh"), "missing key 'explanation_zh'"),
        (lambda e: e["fix"].pop("steps_zh"), "missing key 'fix.steps_zh'"),
        (lambda e: e["fix"].__setitem__("steps_zh", e["fix"]["steps_zh"][:1]), "translate each step"),
        # a translation that changes a command, a flag or a variable name is refused
        (lambda e: e.__setitem__("explanation_zh", e["explanation_zh"].replace("STABLE_DIFFUSION_REPO", "SD 仓库变量")),
         "key 'explanation_zh' must keep ['STABLE_DIFFUSION_REPO']"),
        (lambda e: e["fix"].__setitem__("steps_zh", [s.replace("safe.directory", "安全目录").replace("DIR --mirror cn", "DIR")
                                                      for s in e["fix"]["steps_zh"]]),
         "must keep ['`sdsetup install DIR --mirror cn`']"),
        (lambda e: e.__setitem__("explanation_zh", e["explanation_zh"].replace("https://github.com", "GitHub")),
         "key 'explanation_zh' must keep"),
    ],
)
def test_an_entry_without_its_chinese_or_with_a_changed_placeholder_is_refused(mutate, expected):
    data = _raw()
    entry_id = "git-clone-network" if "mirror cn" in expected else "sd-repo-gone-prompt"
    entry = next(e for e in data["error"] if e["id"] == entry_id)
    mutate(entry)
    with pytest.raises(SdsetupError) as caught:
        parse_kb(data, "known_errors.toml")
    assert expected in caught.value.message and entry_id in caught.value.message


def test_an_entry_names_one_version_of_each_package_it_pins():
    """Issue 20 item 7: the numpy entry said 1.26.2 in its text, 1.26.4 in its autofix and "<2" in its
    commands. A version an autofix installs is the one its steps and commands name."""
    import re

    for entry in load_kb().entries:
        if not entry.autofix or entry.autofix.action != "pip_install":
            continue
        pins = dict(a.split("==", 1) for a in entry.autofix.args if "==" in a)
        words = " ".join([*entry.fix.steps, *(c for cs in entry.fix.commands.values() for c in cs)])
        for package, version in pins.items():
            named = set(re.findall(rf"\b{re.escape(package)}(?:==|<|>=|\s+)([0-9]+\.[0-9.]*[0-9]|[0-9]+(?=\"))", words, re.IGNORECASE))
            assert named <= {version} and (named or version in words), (entry.id, package, version, named)


def test_the_nan_unet_fix_is_what_the_threads_confirmed():
    entry = load_kb().get("nan-unet")
    assert "Upcast cross attention layer to float32" in entry.fix.steps[0]
    assert entry.autofix.args == ("--no-half",) and "--no-half" in entry.fix.steps[1]


def test_windows_commands_never_pass_flags_to_webui_user_bat_or_use_hash_comments():
    # webui-user.bat ends in `call webui.bat` without %*: a flag after it is dropped, and cmd.exe has no
    # `#` comments (rtx50-sm120 once said `webui-user.bat --reinstall-torch    # once`).
    for entry in load_kb().entries:
        for line in entry.fix.commands.get("windows", ()):
            assert not re.match(r"(?i)^\s*(call\s+)?webui-user\.bat\s+\S", line), (entry.id, line)
            assert " # " not in line and not line.lstrip().startswith("#"), (entry.id, line)


def test_force_reinstall_commands_never_drag_in_new_dependencies():
    # `pip install --force-reinstall torch==2.1.2 …` alone reinstalls every dependency at its newest
    # version too (numpy 2 among them, which the release branch cannot load: see numpy-abi).
    for entry in load_kb().entries:
        for line in (c for cs in entry.fix.commands.values() for c in cs):
            if "--force-reinstall" in line:
                assert "--no-deps" in line, (entry.id, line)


def test_every_sdsetup_command_in_the_kb_uses_options_the_cli_has():
    # safetensors-header once said `sdsetup fetch URL --dest DIR`; fetch has no --dest (it is -o/--output)
    from typer.testing import CliRunner

    from sdsetup.cli import app

    lines = [c for e in load_kb().entries for cs in e.fix.commands.values() for c in cs]
    lines += [m for e in load_kb().entries for s in e.fix.steps for m in re.findall(r"`(sdsetup [^`]+)`", s)]
    checked = 0
    for line in lines:
        if not line.startswith("sdsetup "):
            continue
        words = line.split()
        sub = [w for w in words[1:3] if re.fullmatch(r"[a-z]+", w)]  # `ext remove`, `fetch`; not DIR/URL
        path = sub[:2] if sub and sub[0] in ("ext", "models", "mirrors", "bundle") else sub[:1]
        result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "300", "NO_COLOR": "1"})
        assert result.exit_code == 0, (line, result.output)
        for opt in (w.split("=", 1)[0] for w in words if w.startswith("-")):
            assert re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", result.stdout), (line, opt)
        checked += 1
    assert checked >= 5
