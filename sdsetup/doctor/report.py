"""Findings as JSON, and the doctor's report for people (one renderer; the command returns the data)."""

from __future__ import annotations

import re
import textwrap
from typing import Any, Callable, Mapping

from sdsetup.doctor.match import Ranked
from sdsetup.i18n import N_, t
from sdsetup.output import status_lines

WIDTH = 100
PLATFORM_LABELS = {"windows": "Windows", "linux": "Linux", "macos": "macOS", "all": N_("Any OS")}
# What the support zip removed, per kind (doctor.secrets.KIND_LABELS), said where it is shown.
REMOVED_LABELS = {
    "url_password": N_("{count} password(s) in URLs (proxy or index credentials)"),
    "token": N_("{count} token(s) (Hugging Face, GitHub, API keys)"),
    "auth_header": N_("{count} authorization header value(s)"),
    "secret_value": N_("{count} NAME=secret value(s) (…TOKEN, …PASSWORD, …SECRET, …API_KEY)"),
    "web_ui_login": N_("{count} web UI login(s) (--gradio-auth, --api-auth, --ngrok values)"),
    "secret_env": N_("{count} value(s) of variables named …KEY, …TOKEN, …SECRET, …PASSWORD, …AUTH"),
    "known_secret": N_("{count} known secret(s) of this machine (proxy passwords, saved tokens)"),
    "home_path": N_("{count} home directory path(s)"),
}
FIX_RESULTS = {"applied": N_("applied"), "declined": N_("not applied (declined)"), "failed": N_("FAILED"), "done": N_("already in place"),
               "skip": N_("skipped"), "ready": N_("not applied")}


def finding_json(ranked: Ranked, redact: Callable[[str], str], lang: str = "en") -> dict[str, Any]:
    """One finding for --json; `lang` (en, zh-CN) picks the knowledge base's text, keys stay the same."""
    entry, hit = ranked.entry, ranked.hit
    text = entry.text(lang)
    return {
        "id": entry.id,
        "title": text.title,
        "severity": entry.severity,
        "generic": entry.generic,
        "explanation": text.explanation,
        "fix": {**entry.fix.to_json(), "steps": list(text.steps)},
        "evidence": [redact(text) for _, text in hit.evidence],
        "source": ranked.scan.source,
        "line": hit.evidence[0][0] if hit.evidence else hit.first_line,
        "lines": [line for line, _ in hit.evidence],
        "occurrences": ranked.occurrences,
        "latest_run": hit.run == ranked.scan.last_run,
        "specificity": entry.specificity,
        "autofix": {"action": entry.autofix.action, "args": list(entry.autofix.args), "text": entry.autofix.text}
        if entry.autofix else None,
        "refs": list(entry.refs),
    }


def note_json(ranked: Ranked) -> dict[str, Any]:
    return {"id": ranked.entry.id, "title": ranked.entry.title, "source": ranked.scan.source, "line": ranked.hit.last_line,
            "occurrences": ranked.occurrences}


_NBSP = "\u00a0"
_CODE = re.compile(r"`[^`]+`")


def wrap_copyable(text: str, width: int, initial: str = "", subsequent: str = "") -> list[str]:
    """Wrap between words only: a `command`, a --flag or a URL always stays whole on one line, so what
    the user copies from the console is what runs (a long one overflows the width instead)."""
    protected = _CODE.sub(lambda m: m.group(0).replace(" ", _NBSP), text)
    lines = textwrap.wrap(protected, width, initial_indent=initial, subsequent_indent=subsequent,
                          break_long_words=False, break_on_hyphens=False)
    return [line.replace(_NBSP, " ") for line in lines] or [initial]


def _wrap(text: str, indent: str) -> list[str]:
    return wrap_copyable(text, WIDTH, indent, indent)


def _source_line(source: Mapping[str, Any]) -> str:
    if source.get("kind") == "install":
        return t("{source} ({lines} lines)", source=source["source"], lines=source["lines"])
    extra = [t("{lines:,} lines", lines=source["lines"])]
    if source.get("encoding") and source["encoding"] not in ("utf-8", "ascii"):
        extra.append(source["encoding"])
    if source.get("cut_lines"):
        extra.append(t("{count} over-long lines cut", count=source["cut_lines"]))
    return f"{source['source']} ({', '.join(extra)})"


def render(data: Mapping[str, Any]) -> str:
    out: list[str] = []
    sources = data.get("sources", [])
    if sources:
        out.append(t("sdsetup doctor read:"))
        out += [f"  - {_source_line(s)}" for s in sources]
    else:
        out += t("sdsetup doctor: nothing to read. Give a saved console log with --log FILE (or --log - for stdin),\n"
                 "and/or the install folder: sdsetup doctor DIR").splitlines()
    for warning in data.get("problems_reading", []):
        out.append(f"  ! {warning}")
    out.append("")
    findings = data.get("findings", [])
    if not findings:
        out.append(data.get("summary") or t("No known problem found."))
    else:
        out.append(data.get("summary", ""))
        for number, finding in enumerate(findings, start=1):
            out.append("")
            warning = "  " + t("(warning)") if finding["severity"] == "warning" else ""
            if finding.get("generic"):
                warning += "  " + t("(generic: no known-error entry matched)")
            out.append(f"{number}. {finding['title']}   [{finding['id']}]{warning}")
            if finding.get("occurrences", 1) > 1:
                out.append("   " + t("seen in {source}, line {line} ({count} times):", source=finding["source"], line=finding["line"],
                                     count=finding["occurrences"]))
            else:
                out.append("   " + t("seen in {source}, line {line}:", source=finding["source"], line=finding["line"]))
            for evidence in finding["evidence"]:
                out.append("     " + evidence[:WIDTH * 2])
            out += _wrap(t("why: {explanation}", explanation=finding["explanation"]), "   ")
            out.append("   " + t("fix:"))
            for step in finding["fix"]["steps"]:
                out += wrap_copyable(step, WIDTH, "     - ", "       ")
            for platform, commands in finding["fix"]["commands"].items():
                label = t(PLATFORM_LABELS[platform]) if platform in PLATFORM_LABELS else platform
                for index, command in enumerate(commands):
                    out.append(f"     {label + ':' if index == 0 else '':<9} {command}")
            if finding.get("autofix"):
                out.append("   " + t("sdsetup can apply this: sdsetup doctor DIR --fix   ({text})", text=finding["autofix"]["text"]))
    harmless = data.get("harmless", [])
    if harmless:
        out.append("")
        out.append(t("Harmless, nothing to do: {findings}", findings="; ".join(
            t("{title} ({source} line {line})", title=h["title"], source=h["source"], line=h["line"]) for h in harmless)))
    install = data.get("install")
    if install:
        out.append("")
        out.append(t("Install {dir}:", dir=install.get("dir")))
        for part in ("check", "verify"):
            section = install.get(part) or {}
            if section.get("unavailable"):
                out.append(f"  {part}: " + t("not run ({reason})", reason=section["unavailable"]))
                continue
            items = [i for i in section.get("items", []) if i.get("status") in ("fail", "warn")]
            if items:
                out.append(status_lines(items))
            elif section.get("items"):
                out.append(f"  {part}: " + t("{count} checks, all fine", count=len(section["items"])))
    fixes = data.get("fixes")
    if fixes is not None:
        out.append("")
        out.append(t("Fixes:") if fixes else t("Fixes: none of the findings has a fix sdsetup can apply; follow the steps above."))
        for fix in fixes:
            result = fix.get("result") or fix["status"]
            label = t(FIX_RESULTS[result]) if result in FIX_RESULTS else result
            out.append(f"  - {fix['action']}: {label}" + (f": {fix['reason']}" if fix.get("reason") else ""))
            if fix.get("detail"):
                out += ["      " + line for line in fix["detail"].splitlines()]
            for backup in fix.get("backups", []):
                out.append("      " + t("backup: {path}", path=backup))
    bundle = data.get("bundle")
    if bundle:
        out.append("")
        removed = [t(REMOVED_LABELS[kind], count=count) if kind in REMOVED_LABELS else f"{count} {kind}"
                   for kind, count in (bundle.get("removed") or {}).items()]
        removed_text = t("removed: {what}", what="; ".join(removed)) if removed else t("nothing needed removing")
        out.append(t("Support bundle written: {path} ({count} files; {removed}).", path=bundle["path"], count=len(bundle["files"]),
                     removed=removed_text))
        out.append(t("Send that file to the helpdesk."))
    return "\n".join(out).rstrip()
