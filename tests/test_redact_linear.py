"""The redactor (sdsetup/redact.py, sdsetup/doctor/secrets.py) on hostile and ordinary input.

Issue 23 items 3, 12 and 13: every login of A1111's `user1:pass1,user2:pass2` form is masked; every
pattern runs in linear time on any input (a 160 KB log of long dash lines made `doctor --bundle` take
84 s); OpenAI/Anthropic keys, `Authorization` as a dict or JSON entry, `Cookie:` headers and a proxy
password holding a literal `@` are masked whole.

The time bound below is not a speed target: each input is 200 KB, which a linear pass reads in a few
milliseconds and a quadratic one in minutes, so the bound only tells the two shapes apart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from sdsetup.doctor.secrets import Redactor, assignment_secrets, url_secrets
from sdsetup.redact import redact_text

# Short units repeated to 200 KB: runs of the characters each pattern's repetitions accept, and the
# starts of every pattern (a scheme, a key name, a token prefix, a header, a login flag).
UNITS = ["-", "--", "_", "a-", "a_", "A_", "a.", "a", "KEY_", "_KEY", "TOKEN_", "key=", "token=", "a://", "a://b", "a://b:",
         "://", "x:", "@", "a@", "a:a@", ":a@", "hf_", "sk-", "sk-a", "sk-proj-", "ghp_", "glpat-", "github_pat_",
         "Authorization ", "Authorization: ", "'Authorization': '", '"Authorization": "', "Cookie: ", "Bearer ",
         "--gradio-auth ", "--gradio-auth u:p,", '"', "'", "=", "a=", '" ', "TOKEN=\"", "%", "\\", "/", " ", "a b",
         '"A_KEY": "', "A_KEY=", "u:p,", "x-api-key=", "-auth", "ngrok"]
SIZE = 200_000
BOUND_S = 5.0  # linear: ~0.05 s on a loaded 2-core machine; quadratic: minutes


@pytest.mark.parametrize("unit", UNITS)
def test_every_pattern_is_linear_on_hostile_input(unit):
    text = unit * (SIZE // len(unit))
    redactor = Redactor(secrets=["pa55word!"], home="/home/someone")
    for name, function in (("redact_text", redact_text), ("Redactor", redactor), ("assignment_secrets", assignment_secrets),
                           ("url_secrets", url_secrets)):
        started = time.perf_counter()
        function(text)
        took = time.perf_counter() - started
        assert took < BOUND_S, f"{name} took {took:.1f} s on {unit!r} x {SIZE // len(unit)}"


def test_doctor_bundle_of_a_log_of_long_dash_lines_finishes(tmp_path):
    """The report's case, end to end: 160 KB of long dash lines (a table border in a console log)."""
    log = tmp_path / "console.txt"
    log.write_text(("-" * 4000 + "\n") * 40 + "RuntimeError: Couldn't clone Stable Diffusion.\n", "utf-8")
    out = tmp_path / "report.zip"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SDSETUP_LANG")}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "sdsetup", "doctor", "--log", str(log), "--bundle", str(out)],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode in (0, 1), result.stderr
    assert zipfile.is_zipfile(out) and time.monotonic() - started < 60


@pytest.mark.parametrize("line", [
    "--gradio-auth admin:FirstPw11,guest:SecondPw22,third:ThirdPw33",
    "set COMMANDLINE_ARGS=--xformers --gradio-auth=admin:FirstPw11,guest:SecondPw22,third:ThirdPw33 --listen",
    'export COMMANDLINE_ARGS="--api-auth admin:FirstPw11,guest:SecondPw22,third:ThirdPw33"',
    '"Commandline": ["launch.py", "--gradio-auth", "admin:FirstPw11,guest:SecondPw22,third:ThirdPw33"]',
])
def test_every_login_pair_of_a_gradio_auth_list_is_masked(line):
    redactor = Redactor(home="/home/alice")
    out = redactor(line)
    for password in ("FirstPw11", "SecondPw22", "ThirdPw33"):
        assert password not in out, out
    # And each pair is learned, so a password seen later on its own is masked too.
    redactor.learn(assignment_secrets(line))
    assert "SecondPw22" not in redactor("guest logged in with SecondPw22")


SK_PROJ = "sk-proj-" + "AbC1_dEf2-" * 12
SK_ANT = "sk-ant-api03-" + "Zy9_xW8-vU7" * 8 + "AA"


@pytest.mark.parametrize(("line", "secret", "kept"), [
    (f"OPENAI key {SK_PROJ} set", SK_PROJ[8:], "OPENAI key"),
    (f"ANTHROPIC {SK_ANT}", SK_ANT[13:], "ANTHROPIC"),
    ("headers={'Authorization': 'Bearer eyJsecretDictValue123', 'Accept': 'x'}", "eyJsecretDictValue123", "'Accept': 'x'"),
    ('{"Authorization": "Bearer eyJsecretJsonValue456", "Accept": "x"}', "eyJsecretJsonValue456", '"Accept": "x"'),
    ('{"authorization":"Basic dXNlcjpzZWNyZXRKc29u"}', "dXNlcjpzZWNyZXRKc29u", "authorization"),
    ("Cookie: session=CookieSecret789; csrftoken=CsrfSecret012", "CookieSecret789", "Cookie:"),
    ("Cookie: session=CookieSecret789; csrftoken=CsrfSecret012", "CsrfSecret012", "Cookie:"),
    ("set-cookie: sid=SetCookieSecret345; Path=/", "SetCookieSecret345", "set-cookie"),
    ("proxy http://alice:p@ssW0rd@10.0.0.1:7890 used", "ssW0rd", "10.0.0.1:7890 used"),
    ("HTTPS_PROXY=http://bob:x@y@z@proxy.corp:3128/", "y@z", "proxy.corp:3128"),
])
def test_key_shapes_headers_and_passwords_with_at_are_masked_whole(line, secret, kept):
    for redact in (redact_text, Redactor(home="/home/alice")):
        out = redact(line)
        assert secret not in out and kept in out, out


def test_a_proxy_password_with_an_at_is_learned_whole():
    assert "p@ssW0rd" in url_secrets("using http://alice:p@ssW0rd@10.0.0.1:7890 now")


def test_json_stays_json_when_an_authorization_member_is_masked():
    doc = Redactor()('{"headers": {"Authorization": "Bearer abc.def.ghi", "Cookie": "a=1; b=2"}, "n": 1}')
    assert json.loads(doc) == {"headers": {"Authorization": "***", "Cookie": "***"}, "n": 1}


def test_the_support_zip_of_a_webui_user_file_with_several_logins_has_none(tmp_path):
    """Item 3 through the product: a copied webui-user file and a log, into the zip."""
    root = tmp_path / "webui"
    root.mkdir()
    (root / "webui-user.bat").write_text(
        "@echo off\r\nset COMMANDLINE_ARGS=--gradio-auth admin:FirstPw11,guest:SecondPw22 --listen\r\ncall webui.bat\r\n")
    (root / "webui-user.sh").write_text('export COMMANDLINE_ARGS="--api-auth a:FirstPw11,b:SecondPw22,c:ThirdPw33"\n')
    (root / "launch.py").write_text("print('launch')\n")
    log = tmp_path / "console.txt"
    log.write_text("Launching Web UI with arguments: --gradio-auth admin:FirstPw11,guest:SecondPw22\n"
                   "guest:SecondPw22 logged in; ThirdPw33 later\n")
    out = tmp_path / "report.zip"
    result = subprocess.run([sys.executable, "-m", "sdsetup", "doctor", str(root), "--log", str(log), "--bundle", str(out), "--json"],
                            capture_output=True, text=True, timeout=120)
    assert zipfile.is_zipfile(out), result.stderr
    with zipfile.ZipFile(out) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    assert any(name.endswith("webui-user.bat") for name in contents), sorted(contents)
    for password in ("FirstPw11", "SecondPw22", "ThirdPw33"):
        for name, data in contents.items():
            assert password.encode() not in data, f"{password} leaked into {name}"
        assert password not in result.stdout


def test_many_learned_secrets_are_masked_in_linear_time():
    """A log that shows 8,000 different logins teaches 24,000 secrets; each line is then checked
    against all of them (the zip's copy of the log). One compare per secret per line was minutes."""
    lines = [f"HF_TOKEN=secretvalue{i:06d} --gradio-auth u{i}:pw{i:06d} ok" for i in range(8000)]
    redactor = Redactor(home="/home/alice")
    for line in lines:
        redactor.learn(assignment_secrets(line))
    started = time.perf_counter()
    out = [redactor(f"later: secretvalue{i:06d} and pw{i:06d}") for i in range(8000)]
    assert time.perf_counter() - started < 20
    assert all(line == "later: *** and ***" for line in out), out[:3]


def test_known_secrets_mask_the_longest_first_and_any_character():
    redactor = Redactor(secrets=["abc", "abcdef", "a.c*(x)", "p@ss w0rd"], home="")
    assert redactor("abcdefg abc a.c*(x) abx p@ss w0rd") == "***g *** *** abx ***"
