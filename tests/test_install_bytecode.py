"""The smoke test's first imports no longer compile bytecode on the install's clock (issue 21 item 5):
after a uv install, the venv's Python imports what the smoke test imports in the background, writing the
.pyc files, even where PYTHONDONTWRITEBYTECODE is set for sdsetup itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sdsetup.install import bytecode


def test_the_background_import_writes_the_bytecode_the_smoke_test_needs(tmp_path, monkeypatch):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    package = purelib / "PIL"  # a stand-in under a name the smoke test imports
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from PIL import image_ops\n")
    (package / "image_ops.py").write_text("VALUE = 1\n")
    (purelib / "unrelated.py").write_text("X = 1\n")
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    bytecode.start(python)
    bytecode.start(python)  # a second install while the first pass runs: one more pass, not two at once
    assert bytecode.wait(python, timeout=120)
    tag = sys.implementation.cache_tag
    assert (package / "__pycache__" / f"__init__.{tag}.pyc").is_file()
    assert (package / "__pycache__" / f"image_ops.{tag}.pyc").is_file()
    assert not (purelib / "__pycache__" / f"unrelated.{tag}.pyc").exists()  # only what the smoke test imports
    assert bytecode.wait(python, timeout=0)
