"""`sdsetup launch [DIR] [--open]`: start the web UI with the environment and flags of its launch files
(webui-user.sh/.bat for A1111 and Forge, run_comfyui.sh/.bat for ComfyUI; the install record where
they are gone), after checking its port is free; stream and keep its console; when it exits with an
error or prints a line after which it cannot come up, run the doctor on what it printed and show the top
finding and its fix. Exit codes: 0 the UI ran and exited cleanly; 1 its port is taken, or it failed
(the finding says why); 2 no install; 130 Ctrl-C (the UI is stopped).
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.i18n import t
from sdsetup.output import Outcome
from sdsetup.settings import Settings


def launch_settings(root: Path, record: Any) -> tuple[list[str], dict[str, str], str]:
    """(flags, variables, the file they came from): the launch file this OS runs, else the record."""
    from sdsetup.webui_user_file import effective_args, effective_env, flavour_of

    windows = os.name == "nt"
    if record.launcher == "comfyui":
        from sdsetup.launchers.comfyui import read_sh_args

        name = "run_comfyui.bat" if windows else "run_comfyui.sh"
        path = root / name
        if path.is_file() and not windows:
            text = path.read_text("utf-8", "replace")
            args = read_sh_args(text)
            if args is not None:
                return args, effective_env(text, "sh", str(root)), name
        return list(record.launch_args), dict(record.env), "install record"
    name = "webui-user.bat" if windows else "webui-user.sh"
    path = root / name
    if path.is_file():
        text = path.read_text("utf-8", "replace")
        flavour = flavour_of(name)
        return effective_args(text, flavour), effective_env(text, flavour, str(root)), name
    env = dict(record.env)
    env["COMMANDLINE_ARGS"] = shlex.join(record.launch_args)
    return list(record.launch_args), env, "install record"


def top_finding(settings: Settings, log_path: Path) -> dict[str, Any] | None:
    """The one place `launch` calls the doctor: a saved console log in, its first finding out
    ({id, title, severity, fix: [steps], line}), or None. The doctor's pipeline is moving inside
    sdsetup/doctor/; this calls the function the CLI calls, so only this import follows it."""
    from sdsetup.commands import doctor

    findings = doctor.run(settings, None, [str(log_path)]).data.get("findings") or []
    if not findings:
        return None
    first = findings[0]
    fix = first.get("fix") or {}
    steps = fix.get("steps") if isinstance(fix, dict) else None
    return {"id": first.get("id"), "title": first.get("title"), "severity": first.get("severity"),
            "fix": list(steps) if isinstance(steps, list) else ([str(fix)] if fix else []), "line": first.get("line")}


def port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def run(settings: Settings, install_dir: Path | None, *, open_browser: bool = False, as_json: bool = False) -> Outcome:
    from sdsetup.commands.ext import _install
    from sdsetup.launch.console import run_console
    from sdsetup.launch.plan import build
    from sdsetup.layout import InstallLayout

    root, record = _install(install_dir)
    layout = InstallLayout(root)
    python = root / record.python if record.python else layout.python
    if not python.exists():
        raise SdsetupError(t("the web UI's venv is missing ({python})", python=python), t("run `sdsetup install {dir}` to make it again", dir=root),
                           ExitCode.FAILED)
    args, env, source = launch_settings(root, record)
    from sdsetup.launch.held import held_env, write_held

    write_held(root, python, record.held)  # the venv as it is now: what pip at launch may not move
    for name, value in held_env(root):
        env.setdefault(name, value)  # launch files written before they named it hold it too
    # A1111 and Forge read COMMANDLINE_ARGS themselves (launch.py), as webui.sh leaves it; ComfyUI takes argv.
    plan = build(record.launcher, str(python), args if record.launcher == "comfyui" else [], env, source)
    if record.launcher != "comfyui":
        from sdsetup.launch.plan import port_of

        plan = type(plan)(plan.argv, plan.env, *port_of(args, record.launcher), plan.source)
    if not port_free(plan.host, plan.port):
        raise SdsetupError(t("port {port} is already in use: another web UI (or another program) is running there", port=plan.port),
                           t("stop it, or give this one another port (--port N in its launch flags)"), ExitCode.FAILED,
                           details={"port": plan.port})
    log_path = layout.logs / f"launch-{time.strftime('%Y%m%d-%H%M%S')}.log"
    echo = sys.stderr if as_json else sys.stdout

    def on_ready(url: str) -> None:
        sys.stderr.write(t("sdsetup: the web UI is ready at {url}", url=url) + "\n")
        if open_browser:
            import webbrowser

            webbrowser.open(url)

    sys.stderr.write(t("sdsetup: starting the web UI ({source}); its console is kept in {log}", source=source, log=log_path) + "\n")
    result = run_console(plan, root, log_path, echo=echo, on_ready=on_ready)
    data: dict[str, Any] = {"dir": str(root), "ui": record.launcher, "argv": list(plan.argv)[1:], "port": plan.port, "source": source,
                            "log": str(log_path), "ready": result.ready, "returncode": result.returncode, "fatal_line": result.fatal_line,
                            "finding": None}
    failed = bool(result.fatal_line) or (result.returncode not in (0, None))
    if failed:
        data["finding"] = top_finding(settings, log_path)
    return Outcome("launch", data, ExitCode.FAILED if failed else ExitCode.OK, human=_human)


def _human(data: dict[str, Any]) -> str:
    if data["finding"] is None and not data["fatal_line"] and data["returncode"] in (0, None):
        return t("the web UI exited normally; its console is in {log}", log=data["log"])
    lines = [t("the web UI stopped (exit {code}); its console is in {log}", code=data["returncode"], log=data["log"])]
    finding = data["finding"]
    if finding:
        lines.append(t("most likely: {title}", title=finding["title"]))
        for step in finding["fix"]:
            lines.append(f"  -> {step}")
    else:
        lines.append(t("the doctor found no known cause; `sdsetup doctor {dir}` reads it with the install", dir=data["dir"]))
    return "\n".join(lines)
