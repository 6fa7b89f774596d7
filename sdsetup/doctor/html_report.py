"""One self-contained report.html a person opens: machine, install state, findings with fixes, the
smoke-test image and each step's timing.

Offline by construction: no script, no external asset, the image inline as a data: URI, and a
Content-Security-Policy that forbids loading anything else. Every text is HTML-escaped; the caller
passes redacted data (the support zip also runs the finished page through its redactor).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from sdsetup.i18n import N_, t

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STATUS_COLOURS = {"ok": "#1a7f37", "pass": "#1a7f37", "done": "#1a7f37", "warn": "#9a6700", "warning": "#9a6700",
                  "fail": "#cf222e", "failed": "#cf222e", "error": "#cf222e", "skip": "#57606a", "started": "#9a6700"}

STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI","Microsoft YaHei",sans-serif;margin:2em auto;max-width:60em;color:#1f2328;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #d0d7de;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f6f8fa}code,pre{font-family:ui-monospace,Consolas,"Courier New",monospace;font-size:.92em}
pre{background:#f6f8fa;padding:.5em;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
.finding{border:1px solid #d0d7de;border-left:6px solid #cf222e;padding:.5em 1em;margin:1em 0}
.finding.warning{border-left-color:#9a6700}.muted{color:#57606a}.status{font-weight:bold}
img.smoke{image-rendering:pixelated;width:256px;height:256px;border:1px solid #d0d7de}
"""


# The install table's row labels (keys of the data the callers pass): translated where shown.
INSTALL_LABELS = {"folder": N_("folder"), "python": N_("Python"), "venv": N_("venv"), "manifest": N_("manifest"),
                  "backend": N_("backend"), "torch_tag": N_("torch build"), "webui_commit": N_("web UI commit"),
                  "finished": N_("finished")}


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _status(status: Any) -> str:
    colour = STATUS_COLOURS.get(str(status).lower(), "#1f2328")
    return f'<span class="status" style="color:{colour}">{_e(str(status).upper())}</span>'


def _table(headers: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    headers = list(headers)
    head = "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr>" if any(headers) else ""
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def _machine(env: Mapping[str, Any]) -> str:
    rows = []
    osinfo = env.get("os") or {}
    if isinstance(osinfo, Mapping):
        os_text = " ".join(str(osinfo.get(k)) for k in ("system", "release", "machine") if osinfo.get(k))
    else:
        os_text = str(osinfo)
    for label, value in (("sdsetup", env.get("sdsetup")), (t("OS"), os_text or env.get("platform")),
                         ("Python", env.get("python")), (t("Proxy"), env.get("proxy")), (t("Mirror"), env.get("mirror"))):
        if value:
            rows.append((_e(label), _e(value)))
    for gpu in env.get("gpus") or []:
        vram = gpu.get("vram_total_bytes")
        vram_text = f", {vram / 2**30:.1f} GiB" if vram else ""
        driver = t(", driver {version}", version=gpu["driver_version"]) if gpu.get("driver_version") else ""
        rows.append((_e(t("GPU")), _e(f"{gpu.get('name') or gpu.get('vendor')}{vram_text}{driver}")))
    return _table(("", ""), rows) if rows else f'<p class="muted">{_e(t("not known"))}</p>'


def _checks(items: Iterable[Mapping[str, Any]]) -> str:
    rows = [(_e(i.get("name") or i.get("id")), _status(i.get("status")), _e(i.get("value")),
             f"<code>{_e(i['fix'])}</code>" if i.get("fix") else "") for i in items]
    return _table((t("check"), t("status"), t("value"), t("fix")), rows) if rows \
        else f'<p class="muted">{_e(t("no check ran"))}</p>'


def _finding(number: int, f: Mapping[str, Any]) -> str:
    fix = f.get("fix") or {}
    steps = "".join(f"<li>{_e(s)}</li>" for s in fix.get("steps", []))
    commands = ""
    for platform, lines in (fix.get("commands") or {}).items():
        commands += f'<p class="muted">{_e(platform)}</p><pre>{_e(chr(10).join(lines))}</pre>'
    evidence = "\n".join(f.get("evidence") or [])
    where = t("seen in {source}, line {line}", source=f.get("source"), line=f.get("line")) if f.get("source") else ""
    return (f'<div class="finding {_e(f.get("severity"))}"><h3>{number}. {_e(f.get("title"))} <span class="muted">'
            f"[{_e(f.get('id'))}]</span></h3>"
            + (f'<p class="muted">{_e(where)}</p><pre>{_e(evidence)}</pre>' if evidence else "")
            + f"<p>{_e(f.get('explanation'))}</p><p><b>{_e(t('Fix'))}</b></p><ol>{steps}</ol>{commands}</div>")


def _steps(steps: Iterable[Mapping[str, Any]]) -> str:
    rows = []
    for step in steps:
        seconds = step.get("seconds")
        rows.append((_e(step.get("name")), _status(step.get("status", "")),
                     _e(t("{seconds:.1f} s", seconds=seconds) if isinstance(seconds, (int, float)) else "")))
    return _table((t("step"), t("status"), t("time")), rows) if rows \
        else f'<p class="muted">{_e(t("no step timings recorded"))}</p>'


def render_report(*, title: str, generated: str, environment: Mapping[str, Any], summary: str = "",
                  findings: Iterable[Mapping[str, Any]] = (), install: Mapping[str, Any] | None = None,
                  checks: Iterable[Mapping[str, Any]] = (), steps: Iterable[Mapping[str, Any]] = (),
                  image_png: bytes | None = None, image_caption: str = "") -> str:
    """The whole page (pure)."""
    from sdsetup.i18n import current

    findings = list(findings)
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{_e(current())}"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1><p class=\"muted\">{_e(generated)}</p>",
    ]
    if summary:
        parts.append(f"<p><b>{_e(summary)}</b></p>")
    parts.append(f"<h2>{_e(t('Findings'))}</h2>")
    parts.append("".join(_finding(n, f) for n, f in enumerate(findings, 1)) if findings
                 else f"<p>{_e(t('No known problem found.'))}</p>")
    parts.append(f"<h2>{_e(t('Machine'))}</h2>" + _machine(environment))
    parts.append(f"<h2>{_e(t('Install'))}</h2>")
    if install:
        rows = [(_e(t(INSTALL_LABELS[k]) if k in INSTALL_LABELS else k), _e(_value(v))) for k, v in install.items()
                if v not in (None, "", [], {}) and not isinstance(v, (dict, list))]
        parts.append(_table(("", ""), rows) if rows else "")
    else:
        parts.append(f'<p class="muted">{_e(t("no install folder was given"))}</p>')
    parts.append(f"<h3>{_e(t('Checks'))}</h3>" + _checks(checks))
    parts.append(f"<h2>{_e(t('Smoke test image'))}</h2>")
    if image_png:
        uri = "data:image/png;base64," + base64.b64encode(image_png).decode("ascii")
        parts.append(f'<p><img class="smoke" alt="{_e(t("smoke-test image"))}" src="{uri}"></p><p class="muted">{_e(image_caption)}</p>')
    else:
        command = "sdsetup verify DIR"
        text = _e(t("no smoke-test image (run {command})", command=command)).replace(_e(command), f"<code>{_e(command)}</code>", 1)
        parts.append(f'<p class="muted">{text}</p>')
    parts.append(f"<h2>{_e(t('Steps and timings'))}</h2>" + _steps(steps))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _value(value: Any) -> Any:
    """A table cell: booleans as words a person reads."""
    if value is True:
        return t("yes")
    if value is False:
        return t("no")
    return value


def journal_steps(install_dir: Path | None) -> list[dict[str, Any]]:
    """The install's steps with their status and seconds, from DIR/.sdsetup/journal.json (read only)."""
    if install_dir is None:
        return []
    try:
        from sdsetup.layout import InstallLayout

        data = json.loads(InstallLayout(Path(install_dir)).journal.read_text("utf-8"))
    except (OSError, ValueError):
        return []
    steps = data.get("steps") if isinstance(data, dict) else None
    if not isinstance(steps, dict):
        return []
    return [{"name": name, "status": entry.get("status", ""), "seconds": entry.get("seconds")}
            for name, entry in steps.items() if isinstance(entry, dict)]


def smoke_steps(doc: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The smoke test's own parts (imports, load, steps, decode) as steps."""
    if not doc:
        return []
    return [{"name": t("smoke: {name}", name=name), "status": "ok" if doc.get("ok") else "fail", "seconds": seconds}
            for name, seconds in (doc.get("timings") or {}).items() if isinstance(seconds, (int, float))]


def verify_report_page(data: Mapping[str, Any], image_png: bytes | None, version: str, generated: str) -> str:
    """report.html for `sdsetup verify --report FILE`: the verify results as a page (pure)."""
    failed = len(data.get("failed") or [])
    summary = (t("verify: {failed} of {checks} checks failed", failed=failed, checks=data.get("checks")) if failed
               else t("verify: all {checks} checks passed", checks=data.get("checks", len(data.get("items") or []))))
    machine = data.get("machine") or {}
    environment = {"sdsetup": version, "python": (data.get("smoke") or {}).get("python_version") or machine.get("python"),
                   "os": machine.get("os") or (data.get("smoke") or {}).get("platform"), "gpus": machine.get("gpus") or []}
    steps = [*smoke_steps(data.get("smoke")), *smoke_steps(data.get("full"))]
    return render_report(title=t("sdsetup verify report"), generated=f"sdsetup {version}, {generated}", environment=environment,
                         summary=summary, install={"folder": data.get("install_dir"), "python": data.get("python")},
                         checks=data.get("items") or [], steps=steps, image_png=image_png,
                         image_caption=t("generated by the smoke test just now"))


def write_verify_report(path: Path, data: Mapping[str, Any], image: Path | None, temporary: Path | None) -> None:
    """Write verify's report.html atomically (and remove the temporary smoke image, if one was made)."""
    import shutil
    import time

    from sdsetup import __version__
    from sdsetup.fsutil import atomic_write_bytes

    png = None
    try:
        if image is not None and image.is_file():
            png = image.read_bytes()
    finally:
        if temporary is not None:
            shutil.rmtree(temporary.parent, ignore_errors=True)
    page = verify_report_page(data, png, __version__, time.strftime("%Y-%m-%d %H:%M:%S %z"))
    atomic_write_bytes(path, page.encode("utf-8"))
