"""Issue 23 item 5: every JSON document sdsetup prints goes through one redaction pass (output.py), so a
field a command adds later cannot leak a password: `doctor --json` printed the mirror URL's password in
data.environment.mirror, `install --dry-run --json` in the Hub step's endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sdsetup.errors import SdsetupError
from sdsetup.output import Outcome, error_envelope

PASSWORD = "MirrorPw4417"
MIRROR = f"http://helpdesk:{PASSWORD}@127.0.0.1:9/bundle/"
MACHINE = {"os": {"system": "Linux", "release": "6.1", "version": "#1", "machine": "x86_64", "bits": 64, "wsl": False},
           "gpus": [], "ram_total_bytes": 16 << 30, "ram_available_bytes": 12 << 30}


def _run(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    facts = tmp_path / "machine.json"
    facts.write_text(json.dumps(MACHINE))
    env = dict(os.environ, SDSETUP_MIRROR=MIRROR, SDSETUP_MACHINE_FACTS=str(facts),
               HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    return subprocess.run([sys.executable, "-m", "sdsetup", *argv], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("argv", [("doctor", "--json"), ("install", "{dir}", "--dry-run", "--json"), ("mirrors", "list", "--json")])
def test_no_json_document_shows_the_mirror_password(tmp_path, argv):
    result = _run(tmp_path, *(a.replace("{dir}", str(tmp_path / "webui")) for a in argv))
    doc = json.loads(result.stdout)
    assert PASSWORD not in result.stdout and PASSWORD not in result.stderr, [
        line for line in result.stdout.splitlines() if PASSWORD in line][:3]
    assert "helpdesk:***@127.0.0.1:9" in result.stdout, "the user name and host stay: the helpdesk needs them"
    assert doc["command"]


def test_the_envelopes_redact_every_string_keys_included():
    data = {"environment": {"mirror": MIRROR}, "steps": [{"endpoint": MIRROR + "hf", "n": 3}], MIRROR: True,
            "fine": "https://pypi.org/simple/"}
    doc = Outcome("x", data).envelope()
    text = json.dumps(doc)
    assert PASSWORD not in text and doc["data"]["fine"] == "https://pypi.org/simple/" and doc["data"]["steps"][0]["n"] == 3
    error = SdsetupError(f"cannot reach {MIRROR}", f"check {MIRROR}", details={"url": MIRROR})
    assert PASSWORD not in json.dumps(error_envelope("x", error))
