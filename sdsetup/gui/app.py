"""The local server: the page, and one small JSON API over the same functions the CLI calls.

Every answer goes through the redaction the logs and the support zip use (sdsetup/redact.py), so a
proxy password or a token in an error, a log line or a path never reaches the page. Every request is
checked first (security.py): the token, the Host and the Origin.
"""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from sdsetup.gui import security
from sdsetup.gui.jobs import Job, Jobs
from sdsetup.gui.webui import WebUI, console_logs
from sdsetup.i18n import t

STATIC = Path(__file__).resolve().parent / "static"
STATIC_FILES = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
JOB_FILES = {"smoke.png": "image/png", "report.html": "text/html; charset=utf-8", "sdsetup-support.zip": "application/zip"}
MAX_BODY = 8 * 1024 * 1024  # a pasted console log is large; more than this is not a paste
UIS = ("a1111", "forge", "comfyui")
BUILTIN_MIRRORS = ("auto", "cn", "official")
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in the page's address: never send it elsewhere
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
}


@dataclass
class GuiState:
    token: str
    port: int
    config: Path | None = None  # --config of `sdsetup gui`
    proxy: str | None = None  # --proxy of `sdsetup gui`: the default for every command
    default_dir: Path = field(default_factory=lambda: Path.cwd() / "stable-diffusion-webui")
    secrets: set[str] = field(default_factory=set)  # proxy passwords seen: masked wherever they appear
    webui: Any = None  # the web UI this page started (webui.WebUI), set by create_app
    jobs: Any = None  # jobs.Jobs, set by create_app

    def settings(self, **flags: Any):
        from sdsetup.settings import load_settings

        given = {key: value for key, value in flags.items() if value not in (None, [None])}
        settings = load_settings({"config": self.config, "proxy": self.proxy, **given})
        self.remember_secrets(settings.proxy)
        return settings

    def remember_secrets(self, url: str | None) -> None:
        from sdsetup.redact import secrets_in_url

        self.secrets.update(secrets_in_url(url))

    def redact(self, value: Any) -> Any:
        from sdsetup.redact import redact_text

        secrets = sorted(self.secrets, key=len, reverse=True)
        if isinstance(value, str):
            return redact_text(value, secrets)
        if isinstance(value, dict):
            return {key: self.redact(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.redact(item) for item in value]
        if isinstance(value, Path):
            return redact_text(str(value), secrets)
        return value


class Guard:
    """ASGI middleware: refuses any request without the token, or for another Host or Origin."""

    def __init__(self, app: Any, state: GuiState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope.get("headers", [])}
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        why = "websocket" if scope["type"] != "http" else security.refusal(
            host=headers.get("host"), origin=headers.get("origin"), header_token=headers.get(security.TOKEN_HEADER),
            query_token=(query.get(security.TOKEN_QUERY) or [None])[0], token=self.state.token, port=self.state.port)
        if why is None and int(headers.get("content-length") or 0) > MAX_BODY:
            response = Response("too large\n", status_code=413, media_type="text/plain", headers=HEADERS)
            await response(scope, receive, send)
            return
        if why is not None:
            if scope["type"] != "http":
                await send({"type": "websocket.close", "code": 1008})
                return
            response = Response(f"forbidden ({why})\n", status_code=403, media_type="text/plain", headers=HEADERS)
            await response(scope, receive, send)
            return

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                names = {key.lower() for key, _ in message.get("headers", [])}
                extra = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items() if k.lower().encode() not in names]
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        await self.app(scope, receive, with_headers)


def outcome_json(state: GuiState, command: str, call: Callable[[], Any]) -> dict[str, Any]:
    """The command's --json envelope plus its terminal text, or the error envelope; redacted."""
    from sdsetup.errors import ExitCode, SdsetupError
    from sdsetup.output import error_envelope

    try:
        outcome = call()
    except SdsetupError as error:
        return state.redact(error_envelope(command, error))
    except Exception as exc:  # a bug: the page says so, like the CLI does
        error = SdsetupError(t("internal error in sdsetup ({name}: {exc})", name=type(exc).__name__, exc=exc),
                             t("this is a bug; rerun with --debug to see the traceback and report it with `sdsetup doctor --bundle report.zip`"),
                             ExitCode.INTERNAL)
        return state.redact(error_envelope(command, error))
    document = json.loads(json.dumps(outcome.envelope(), default=str))
    text = outcome.human_text() or ""
    document["text"] = text
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    summary = document.get("data", {}).get("summary")
    if not isinstance(summary, str):  # doctor has one; install says it first, check and verify last
        summary = (lines[0] if command == "install" else lines[-1]) if lines else ""
    document["summary"] = summary
    return state.redact(document)


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _folder(state: GuiState, body: dict[str, Any]) -> Path:
    return Path(_text(body, "dir") or state.default_dir).expanduser()


def create_app(state: GuiState) -> Any:
    jobs = Jobs(state.redact)
    webui = state.webui = WebUI()
    state.jobs = jobs

    def started(job: Job | None) -> JSONResponse:
        if job is None:
            return JSONResponse({"ok": False, "busy": True, "error": {"message": str(t("Another task is still running; wait for it to finish.")), "hint": ""}},
                                status_code=409)
        return JSONResponse({"ok": True, "job": job.id})

    async def index(request: Request) -> Response:
        from sdsetup import i18n

        html = (STATIC / "index.html").read_text("utf-8")
        html = html.replace("{{TOKEN}}", state.token).replace("{{LANG}}", i18n.current())
        return HTMLResponse(html)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_FILES:
            return Response("not found\n", status_code=404, media_type="text/plain")
        return FileResponse(STATIC / name, media_type=STATIC_FILES[name])

    async def strings(request: Request) -> Response:
        from sdsetup import __version__, i18n
        from sdsetup.gui.strings import page_strings

        return JSONResponse({"lang": i18n.current(), "version": __version__, "strings": page_strings()})

    async def set_lang(request: Request) -> Response:
        from sdsetup import i18n

        body = await _body(request)
        lang = i18n.normalize(_text(body, "lang"))
        if lang is None:
            return JSONResponse({"ok": False}, status_code=400)
        i18n.set_lang(lang)  # one person, one page: the process speaks what the page asks
        return JSONResponse({"ok": True, "lang": lang})

    async def info(request: Request) -> Response:
        def profiles() -> list[str]:
            from sdsetup.net.mirrors import load_catalog

            try:
                names = list(load_catalog(state.settings()).profiles)
            except Exception:
                names = []
            return [name for name in names if name not in BUILTIN_MIRRORS]

        return JSONResponse(state.redact({"dir": str(state.default_dir), "uis": list(UIS), "mirrors": list(BUILTIN_MIRRORS),
                                          "profiles": await run_in_threadpool(profiles)}))

    async def check(request: Request) -> Response:
        from sdsetup.commands import check as command

        body = await _body(request)
        folder = _folder(state, body)
        return JSONResponse(await run_in_threadpool(
            outcome_json, state, "check", lambda: command.run(state.settings(), folder)))

    async def install(request: Request) -> Response:
        from sdsetup.commands import install as command
        from sdsetup.install.inputs import install_settings
        from sdsetup.errors import usage_error
        from sdsetup.install.plan import InstallOptions

        body = await _body(request)
        folder = _folder(state, body)
        mirror = _text(body, "mirror") or "auto"
        proxy = _text(body, "proxy") if mirror == "proxy" else None
        state.remember_secrets(proxy)
        options = InstallOptions(manifest=_text(body, "manifest"), python=_text(body, "python"), backend="auto",
                                 skip_models=bool(body.get("skip_models")), skip_smoke=bool(body.get("skip_smoke")),
                                 yes=bool(body.get("yes")))

        def call():
            if mirror == "proxy" and not proxy:
                raise usage_error(t("no proxy address given"), t("type the proxy's address, e.g. http://127.0.0.1:7890"))
            settings = state.settings(mirror=["official" if mirror == "proxy" else mirror], proxy=proxy)
            return command.run(install_settings(settings, mirror_url=None, offline=None), folder,
                               command.with_ui(options, _text(body, "ui")))

        return started(jobs.start("install", lambda job: outcome_json(state, "install", call)))

    async def verify(request: Request) -> Response:
        from sdsetup.commands import verify as command

        body = await _body(request)
        folder = _folder(state, body)
        python = _text(body, "python")

        def work(job: Job) -> dict[str, Any]:
            image, report = job.folder / "smoke.png", job.folder / "report.html"
            result = outcome_json(state, "verify", lambda: command.run(
                state.settings(), folder, smoke=bool(body.get("smoke_only")), python=Path(python) if python else None,
                out=image, report=report))
            result["files"] = [name for name in JOB_FILES if (job.folder / name).is_file()]
            return result

        return started(jobs.start("verify", work))

    async def doctor(request: Request) -> Response:
        from sdsetup.commands import doctor as command

        body = await _body(request)
        folder = _folder(state, body)
        text = body.get("text") if isinstance(body.get("text"), str) and body["text"].strip() else None
        log_name = _text(body, "log")
        fix, bundle = bool(body.get("fix")), bool(body.get("bundle"))
        with_folder = bool(body.get("with_folder")) or fix

        def work(job: Job) -> dict[str, Any]:
            logs: list[str] = []
            stdin = None
            if text is not None and not fix:
                logs.append("-")
                stdin = io.BytesIO(text.encode("utf-8"))
            if log_name:
                chosen = [p for p in console_logs(folder) if p.name == log_name]  # only a name the page offered
                logs += [str(chosen[0])] if chosen else []
            err = io.StringIO()
            zip_path = job.folder / "sdsetup-support.zip"
            result = outcome_json(state, "doctor", lambda: command.run(
                state.settings(), folder if with_folder else None, logs, fix=fix, yes=fix, bundle=zip_path if bundle else None,
                stdin=stdin, err=err))
            result["fix_text"] = state.redact(err.getvalue())
            result["files"] = [name for name in JOB_FILES if (job.folder / name).is_file()]
            return result

        return started(jobs.start("doctor", work))

    # models and extensions (sdsetup models / sdsetup ext)
    async def models_list(request: Request) -> Response:
        from sdsetup.commands import models as command

        folder = _folder(state, await _body(request))
        return JSONResponse(await run_in_threadpool(
            outcome_json, state, "models list", lambda: command.list_models(state.settings(), folder)))

    async def models_add(request: Request) -> Response:
        from sdsetup.commands import models as command

        body = await _body(request)
        folder = _folder(state, body)
        source = _text(body, "source") or ""
        return started(jobs.start("models", lambda job: outcome_json(state, "models add", lambda: command.add(
            state.settings(), source, install_dir=folder, model_type=_text(body, "type"), name=_text(body, "name"),
            sha256=_text(body, "sha256")))))

    async def ext_list(request: Request) -> Response:
        from sdsetup.commands import ext as command

        folder = _folder(state, await _body(request))
        return JSONResponse(await run_in_threadpool(
            outcome_json, state, "ext list", lambda: command.list_ext(state.settings(), folder)))

    async def ext_add(request: Request) -> Response:
        from sdsetup.commands import ext as command

        body = await _body(request)
        folder = _folder(state, body)
        url = _text(body, "url") or ""
        return started(jobs.start("ext", lambda job: outcome_json(state, "ext add", lambda: command.add(
            state.settings(), url, install_dir=folder, commit=_text(body, "commit"),
            skip_requirements=bool(body.get("skip_requirements"))))))

    async def ext_remove(request: Request) -> Response:
        from sdsetup.commands import ext as command

        body = await _body(request)
        folder = _folder(state, body)
        name = _text(body, "name") or ""
        return JSONResponse(await run_in_threadpool(
            outcome_json, state, "ext remove", lambda: command.remove(state.settings(), name, install_dir=folder)))

    async def logs(request: Request) -> Response:
        folder = Path(request.query_params.get("dir") or state.default_dir).expanduser()
        found = await run_in_threadpool(console_logs, folder)
        return JSONResponse([{"name": p.name, "size": p.stat().st_size} for p in found])

    async def job_status(request: Request) -> Response:
        job = jobs.get(request.path_params["job"])
        if job is None:
            return JSONResponse({"ok": False}, status_code=404)
        return JSONResponse({"id": job.id, "kind": job.kind, "done": job.done, "result": job.result})

    async def job_events(request: Request) -> Response:
        job = jobs.get(request.path_params["job"])
        if job is None:
            return JSONResponse({"ok": False}, status_code=404)
        try:
            last = int(request.headers.get("last-event-id", "-1"))
        except ValueError:
            last = -1

        async def stream():
            nonlocal last
            yield "retry: 1000\n\n"
            while True:
                for event in job.since(last):
                    last = event["seq"]
                    yield f"id: {last}\nevent: {event['kind']}\ndata: {json.dumps(event, ensure_ascii=False, default=str)}\n\n"
                if job.done and not job.since(last):
                    return
                if await request.is_disconnected():
                    return
                await asyncio.sleep(0.2)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})

    async def job_file(request: Request) -> Response:
        job = jobs.get(request.path_params["job"])
        name = request.path_params["name"]
        if job is None or name not in JOB_FILES or not (job.folder / name).is_file():
            return Response("not found\n", status_code=404, media_type="text/plain")
        headers = {}
        if name.endswith(".zip"):
            headers["Content-Disposition"] = f'attachment; filename="{name}"'
        if name.endswith(".html"):  # the report is a page of its own: no scripts run in it
            headers["Content-Security-Policy"] = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"
        return FileResponse(job.folder / name, media_type=JOB_FILES[name], headers=headers)

    async def webui_status(request: Request) -> Response:
        return JSONResponse(state.redact(webui.status()))

    async def webui_start(request: Request) -> Response:
        body = await _body(request)
        folder = _folder(state, body)

        def call() -> dict[str, Any]:
            from sdsetup.errors import SdsetupError
            from sdsetup.output import error_envelope

            try:
                return {"ok": True, **webui.start(folder)}
            except SdsetupError as error:
                return error_envelope("gui", error)

        return JSONResponse(state.redact(await run_in_threadpool(call)))

    async def webui_stop(request: Request) -> Response:
        return JSONResponse(state.redact({"ok": True, **await run_in_threadpool(webui.stop)}))

    routes = [
        Route("/", index),
        Route("/static/{name}", static),
        Route("/api/strings", strings),
        Route("/api/lang", set_lang, methods=["POST"]),
        Route("/api/info", info),
        Route("/api/check", check, methods=["POST"]),
        Route("/api/install", install, methods=["POST"]),
        Route("/api/verify", verify, methods=["POST"]),
        Route("/api/doctor", doctor, methods=["POST"]),
        Route("/api/logs", logs),
        Route("/api/models", models_list, methods=["POST"]),
        Route("/api/models/add", models_add, methods=["POST"]),
        Route("/api/ext", ext_list, methods=["POST"]),
        Route("/api/ext/add", ext_add, methods=["POST"]),
        Route("/api/ext/remove", ext_remove, methods=["POST"]),
        Route("/api/jobs/{job}", job_status),
        Route("/api/jobs/{job}/events", job_events),
        Route("/api/jobs/{job}/files/{name}", job_file),
        Route("/api/webui", webui_status),
        Route("/api/webui/start", webui_start, methods=["POST"]),
        Route("/api/webui/stop", webui_stop, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    return Guard(app, state)
