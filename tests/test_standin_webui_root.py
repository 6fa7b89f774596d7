"""Found with bench/real_ui: the real webui.sh (A1111 v1.10.1 and Forge) refuses to run as root unless
given -f ("ERROR: This script must not be launched as root, aborting..."), and it resets that switch after
sourcing webui-user.sh, so no setting there helps. As root (rented cloud machines, containers) the start
command sdsetup prints must carry -f; the stand-in webui.sh does not check, so the e2e tests cannot see it."""

from __future__ import annotations

from sdsetup.commands.install import render_outcome
from sdsetup.launchers.a1111 import A1111Launcher, root_start_hint
from sdsetup.launchers.comfyui import ComfyLauncher
from sdsetup.launchers.forge import ForgeLauncher

A1111_HINT = A1111Launcher.start_hint


def test_root_gets_webui_sh_with_f_and_others_unchanged():
    assert root_start_hint(A1111_HINT, is_root=True).startswith("./webui.sh -f ")
    assert "(Windows: webui-user.bat)" in root_start_hint(A1111_HINT, is_root=True)
    assert root_start_hint(A1111_HINT, is_root=False) == A1111_HINT
    assert root_start_hint(ForgeLauncher.start_hint, is_root=True).startswith("./webui.sh -f ")  # Forge's webui.sh too
    # ComfyUI's script has no such check
    assert root_start_hint(ComfyLauncher.start_hint, is_root=True) == ComfyLauncher.start_hint


def test_the_install_outcome_prints_the_root_command():
    data = {"steps": [{"id": "webui", "status": "ran"}], "install_dir": "/root/sd", "manifest": "a1111", "seconds": 1,
            "backend": "cpu", "start": root_start_hint(A1111_HINT, is_root=True)}
    assert 'cd "/root/sd" && ./webui.sh -f ' in render_outcome(data)
