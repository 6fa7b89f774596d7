"""`sdsetup gui [--port N] [--no-browser]`: the local web page (sdsetup/gui/, docs/gui.md).

The first line on stdout is the page's address with its token; the browser opens it unless
--no-browser. The server listens on 127.0.0.1 only and runs until Ctrl-C; a web UI the page started
is stopped with it.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any

from sdsetup.errors import ExitCode, SdsetupError, usage_error
from sdsetup.i18n import t
from sdsetup.output import Outcome

HOST = "127.0.0.1"


def bind(port: int) -> socket.socket:
    """The listening socket, bound before anything is printed so the URL's port is the real one."""
    if not 0 <= port <= 65535:
        raise usage_error(t("--port {port} is not a port number", port=port), t("give a number from 1024 to 65535, or 0 for any free port"))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if sys.platform != "win32":  # on Windows SO_REUSEADDR would let two servers share the port
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise SdsetupError(t("cannot listen on {host}:{port}: {reason}", host=HOST, port=port, reason=exc.strerror or exc),
                           t("another program uses that port: choose another with --port, or leave --port out"),
                           ExitCode.USAGE) from None
    sock.listen(64)
    sock.set_inheritable(False)
    return sock


def _open_browser(url: str) -> None:
    import webbrowser

    webbrowser.open(url)


def page_url(port: int, token: str) -> str:
    return f"http://{HOST}:{port}/?token={token}"


def run(settings: Any, *, port: int = 0, open_browser: bool = True, config: Path | None = None, out: Any = None) -> Outcome:
    import threading

    import uvicorn

    from sdsetup.gui import security
    from sdsetup.gui.app import GuiState, create_app

    out = out or sys.stdout
    sock = bind(port)
    port = sock.getsockname()[1]
    token = security.new_token()
    state = GuiState(token=token, port=port, config=config, proxy=settings.proxy)
    state.remember_secrets(settings.proxy)
    app = create_app(state)
    url = page_url(port, token)
    try:  # from the first line on, Ctrl+C is how this command ends: not an interruption of work
        out.write(url + "\n")  # the first line: scripts and tests read it
        out.flush()
        sys.stderr.write(t("sdsetup gui: open {url} in a browser; Ctrl+C stops it", url=url) + "\n")
        sys.stderr.flush()
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                               timeout_graceful_shutdown=2))
        if open_browser:
            threading.Timer(0.5, _open_browser, args=(url,)).start()
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        state.webui.stop()
        state.jobs.close()
        sock.close()
    return Outcome("gui", {"url": f"http://{HOST}:{port}/"}, ExitCode.OK, human="")
