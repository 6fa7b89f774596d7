"""Generic findings: what the doctor says when no knowledge-base entry matches (never silent).

A log with a Python traceback, a pip or git error, a cmd.exe message or a Windows error code always
yields a finding: the final exception and its message, where it was raised (the web UI's core, an
extension or custom node by its folder, a package, pip, git, the launcher) and a next step for its
class. Classes, where-labels and the table of Windows error codes and errno values live in
manifests/generic_errors.toml (English and Chinese side by side, as the knowledge base). Such findings
are marked generic and rank below every knowledge-base match.

Streaming like the scanner: per source it keeps only the latest event of each kind, so memory does not
grow with the log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from sdsetup.doctor.kb import Fix, KnownError, _bad

GENERIC_SCHEMA = 1
MAX_MESSAGE = 160
MAX_PER_SOURCE = 3

# --------------------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Texts:
    """One class's or OS error's words: title, explanation and steps, English and Chinese."""

    title: str
    title_zh: str
    explanation: str
    explanation_zh: str
    steps: tuple[str, ...]
    steps_zh: tuple[str, ...]
    by_where: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)  # where-kind -> (steps, steps_zh)


@dataclass(frozen=True)
class OsError:
    id: str
    winerror: tuple[int, ...]
    errno: tuple[int, ...]
    exit_codes: tuple[int, ...]
    texts: tuple[re.Pattern, ...]
    words: Texts


@dataclass(frozen=True)
class GenericTable:
    classes: Mapping[str, Texts]
    where: Mapping[str, tuple[str, str]]  # where-kind -> (English label, Chinese label), with {name}
    os_errors: tuple[OsError, ...]

    def os_by_code(self, kind: str, code: int) -> OsError | None:
        for row in self.os_errors:
            if code in getattr(row, kind):
                return row
        return None


def default_table_path() -> Path:
    from sdsetup.doctor.kb import default_kb_path

    return default_kb_path().parent / "generic_errors.toml"


_table_cache: dict[str, GenericTable] = {}


def load_table(path: Path | None = None) -> GenericTable:
    from sdsetup.tomlcompat import load_toml

    path = Path(path) if path else default_table_path()
    key = str(path)
    if key not in _table_cache:
        _table_cache[key] = parse_table(load_toml(path, "generic-errors file"), str(path))
    return _table_cache[key]


def _words(raw: Mapping[str, Any], origin: str, where: str) -> Texts:
    from sdsetup.doctor.kb import placeholders

    for key in ("title", "title_zh", "explanation", "explanation_zh"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise _bad(origin, where, f"key '{key}' must be a non-empty string")
    steps, steps_zh = raw.get("steps"), raw.get("steps_zh")
    if not isinstance(steps, list) or not steps or not isinstance(steps_zh, list) or len(steps) != len(steps_zh):
        raise _bad(origin, where, "'steps' and 'steps_zh' must be lists of the same length")
    by_where = {}
    for kind, table in (raw.get("where") or {}).items():
        if not isinstance(table.get("steps"), list) or len(table["steps"]) != len(table.get("steps_zh") or []):
            raise _bad(origin, where, f"where.{kind}: 'steps' and 'steps_zh' must be lists of the same length")
        by_where[kind] = (tuple(table["steps"]), tuple(table["steps_zh"]))
    for english, chinese in [(raw["title"], raw["title_zh"]), (raw["explanation"], raw["explanation_zh"]), *zip(steps, steps_zh),
                             *[pair for s, z in by_where.values() for pair in zip(s, z)]]:
        lost = (placeholders(english) | set(re.findall(r"\{\w+\}", english))) - (placeholders(chinese) | set(re.findall(r"\{\w+\}", chinese)))
        if lost:
            raise _bad(origin, where, f"the Chinese text must keep {sorted(lost)}: {chinese!r}")
    return Texts(raw["title"].strip(), raw["title_zh"].strip(), " ".join(raw["explanation"].split()),
                 "".join(raw["explanation_zh"].split()) if " " not in raw["explanation_zh"].strip() else " ".join(raw["explanation_zh"].split()),
                 tuple(" ".join(s.split()) for s in steps), tuple(" ".join(s.split()) for s in steps_zh), by_where)


def parse_table(data: Mapping[str, Any], origin: str = "generic_errors.toml") -> GenericTable:
    if data.get("schema_version") != GENERIC_SCHEMA:
        raise _bad(origin, "top level", f"schema_version must be {GENERIC_SCHEMA}")
    classes = {}
    for index, raw in enumerate(data.get("class") or []):
        classes[raw.get("id", f"class[{index}]")] = _words(raw, origin, f"class[{index}]")
    missing = set(CLASSES) - set(classes)
    if missing:
        raise _bad(origin, "top level", f"no [[class]] for {sorted(missing)}")
    where = {k: (v["label"], v["label_zh"]) for k, v in (data.get("where") or {}).items()}
    rows = []
    for index, raw in enumerate(data.get("os_error") or []):
        at = f"os_error[{index}] (id '{raw.get('id')}')"
        try:
            texts = tuple(re.compile(p) for p in raw.get("texts", []))
        except re.error as exc:
            raise _bad(origin, at, f"texts: not a valid regular expression ({exc})") from None
        rows.append(OsError(raw["id"], tuple(raw.get("winerror", [])), tuple(raw.get("errno", [])), tuple(raw.get("exit_codes", [])),
                            texts, _words(raw, origin, at)))
    return GenericTable(classes, where, tuple(rows))


# --------------------------------------------------------------------------------------- recognising

CLASSES = ("truncated-traceback", "missing-module", "cannot-import-name", "module-attribute", "out-of-memory", "gpu-error", "corrupt-model",
           "network", "os-error", "exception", "pip-error", "git-error", "custom-node-import", "cmd-error")

_TB_START = re.compile(r"Traceback \(most recent call last\)")
_FRAME = re.compile(r'File "([^"]+)", line \d+|^[\s│|]*((?:[A-Za-z]:)?[^\s│|:]*\.py):\d+ in [\w<]')
# The final exception: `Name: message` or a bare `Name` at the start of a line (after a rich box edge).
_EXCEPTION = re.compile(r"^(?:[\w.]+\.)?([A-Z]\w*(?:Error|Exception|Exit|Interrupt|Failure|Fault)|KeyError|StopIteration)(?::\s*(.*))?$")
def _has_keyword(text: str) -> bool:
    """Lines the prefilter passes are handled by the main path."""
    return any(k in text for k in ("Error", "Exception", "Traceback"))


# Inside a traceback, after its frames, the line at the left margin is the exception whatever its name.
_TB_EXCEPTION = re.compile(r"^(?:[\w.]+\.)?([A-Z]\w*)(?::\s+(.*))?$")
_PIP_ERROR = re.compile(r"^(?:ERROR: (?!pip's dependency resolver|Exception:$)(.+)|error: (subprocess-exited-with-error|metadata-generation-failed|"
                        r"externally-managed-environment|legacy-install-failure|resolution-too-deep)\b.*)")
# "not a git repository" is the launchers' commit probe on a zip download: noise, not the failure.
_GIT_ERROR = re.compile(r"^(?:fatal|error): (?!not a git repository|subprocess-exited|metadata-generation|externally-managed|legacy-install|resolution-too-deep)(.+)")
_NODE_IMPORT = re.compile(r"Cannot import (.+?) module for custom nodes: (.+)|\(IMPORT FAILED\):?\s+(.+)")
_CMD_NOT_FOUND = re.compile(r"^['\"]?([^'\"\s]+)['\"]? ?(?:is not recognized as an internal or external command|不是内部或外部命令|不是內部或外部命令|"
                            r"wird nicht als interner oder externer Befehl|n.est pas reconnu en tant que commande interne|"
                            r"не является внутренней или внешней|は、内部コマンドまたは外部コマンド)")
# PowerShell prefixes its message with the command: "X : The term 'X' is not recognized ..." / "X : 无法将“X”项识别为 cmdlet"
_PS_NOT_FOUND = re.compile(r"The term '([^']+)' is not recognized as (?:the )?name of a cmdlet|无法将[“\"']([^”\"']+)[”\"']项识别为 cmdlet")
_WINERROR = re.compile(r"\[WinError (-?\d+)\]")
_ERRNO = re.compile(r"\[Errno (-?\d+)\]")
_EXIT_CODE = re.compile(r"(?:exit (?:code|status)|error code|returned non-zero exit status|exited with code|退出代码|错误代码)[:：=( ]*(-?\d+|0x[0-9A-Fa-f]+)")
_NTSTATUS = re.compile(r"\b(0x[cC]0000[0-9a-fA-F]{3})\b")
_PREFIX = re.compile(r"^(?:[\w.-]+\s+\|\s?|\d{4}-\d\d-\d\d[ T][\d:.,]+\s+(?:-\s+[\w.]+\s+-\s+[A-Z]+\s+-\s+)?)")
_REPORT = re.compile(r"^\s*-\s*\*\*Exception (Type|Message):\*\*\s*(.*)$")
_KILLED = re.compile(r"^\S*\.sh: line \d+: +\d+ (Killed|Segmentation fault)")

_OOM = re.compile(r"out of memory|OutOfMemoryError|Allocation on device|\bMemoryError\b|not enough memory|can't allocate memory|DefaultCPUAllocator|"
                  r"paging file is too small|页面文件太小|内存不足", re.IGNORECASE)
_GPU = re.compile(r"CUDA error|HIP error|hipError|\bMPS backend|cuDNN error|CUBLAS_STATUS|CUDNN_STATUS|no kernel image|CUDA driver|"
                  r"Torch not compiled with CUDA|\bcudaError|device-side assert")
_CORRUPT = re.compile(r"SafetensorError|HeaderTooLarge|invalid load key|PytorchStreamReader failed|failed finding central directory|"
                      r"Error while deserializing header|MetadataIncompleteBuffer|incomplete metadata|file is not a zip|"
                      r"unexpected EOF|size mismatch for|Unexpected key\(s\) in state_dict|Missing key\(s\) in state_dict|"
                      r"Error\(s\) in loading state_dict|not a valid (?:checkpoint|model)")
_NETWORK = re.compile(r"ConnectionError|ConnectTimeout|ReadTimeout|MaxRetryError|SSLError|ProxyError|getaddrinfo failed|"
                      r"Name or service not known|Temporary failure in name resolution|Connection (?:reset|refused|aborted)|"
                      r"timed out|RemoteDisconnected|IncompleteRead|LocalEntryNotFoundError|Failed to establish a new connection")
_MISSING_MODULE = re.compile(r"No module named '([^']+)'")
_CANNOT_IMPORT = re.compile(r"cannot import name '([^']+)' from '([^']+)'|cannot import name '([^']+)'")
_MODULE_ATTR = re.compile(r"module '([^']+)' has no attribute '([^']+)'")

# Among generic findings of one source: a classified final exception first, then a plain one, then the
# summary lines (pip, git, cmd.exe, ComfyUI's import list) and bare OS codes.
CLASS_RANK = {"missing-module": 4, "cannot-import-name": 4, "module-attribute": 4, "out-of-memory": 4, "gpu-error": 4,
              "corrupt-model": 4, "network": 3, "os-error": 3, "exception": 2, "custom-node-import": 2, "pip-error": 1,
              "git-error": 1, "cmd-error": 1, "truncated-traceback": 1}

# One cheap test before the others: most lines of a log contain none of these (plain substring tests,
# much faster than one regex alternation over them all).
_KEYWORDS = ("Traceback", "Error", "Exception", "Exit", "Interrupt", "Failure", "Fault", "ERROR: ", "error: ", "fatal: ",
             "IMPORT FAILED", "custom nodes", "WinError", "Errno", "exit ", "code", "退出", "错误", "不是内", "不是內", "0xC0000",
             "0xc0000", "Killed", "Segmentation", "is not recognized", "项识别为", "**Exception", "!!! Exception", "interner oder", "reconnu", "внутренней", "内部コマンド")


_literals_cache: dict[int, tuple[str, ...]] = {}

# Characters of clean startup logs, most frequent first (counted over tests/fixtures/logs/clean*): a regex
# alternation is scanned position by position and only stops at a character some branch starts with,
# so each literal is looked for by its rarest part (an "anchor") and a line that holds one is confirmed
# against the whole literals. Characters not listed count as rarest.
_COMMON_CHARS = " #eoi-nst0.arl12duc:pmg/fbh,3()w8\\6Cy54Bv97Mkj%xD=|UITSLR_"


def _anchor(literal: str) -> str:
    """The part of `literal` (at most 8 characters, at least 3) that starts at its rarest character."""
    if len(literal) <= 3:
        return literal
    rank = {ch: i for i, ch in enumerate(_COMMON_CHARS)}
    start = max(range(len(literal) - 2), key=lambda i: rank.get(literal[i], len(_COMMON_CHARS)))
    return literal[start:start + 8]


def _prefilter_literals(table: "GenericTable") -> tuple[str, ...]:
    from sdsetup.doctor.literals import pattern_literals

    literals = set(_KEYWORDS)
    for row in table.os_errors:
        for pattern in row.texts:
            found = pattern_literals(pattern)
            if not found:
                raise ValueError(f"os_error {row.id}: {pattern.pattern!r} has no literal text to prefilter on")
            literals.update(found)
    return tuple(sorted(literals, key=len))


@dataclass
class Event:
    """One generic finding in the making: its class, the line, and the words to fill in."""

    cls: str
    line_no: int
    text: str
    run: int
    values: dict[str, str]
    os_error: str | None = None  # an OsError id when a code or a known OS message was recognised
    count: int = 1


def _where(frames: list[str]) -> tuple[str, str] | None:
    """(kind, name) of the place an exception was raised, from its traceback's frames (innermost last)."""
    places = [_place(f) for f in frames]
    for kind in ("custom-node", "extension"):  # user-installed code that called into the rest
        named = [p for p in places if p and p[0] == kind]
        if named:
            return named[-1]
    return next((p for p in reversed(places) if p), None)


def _place(path: str) -> tuple[str, str] | None:
    p = path.replace("\\", "/")
    for pattern, kind in ((r"/custom_nodes/([^/]+)/", "custom-node"), (r"/extensions(?:-builtin)?/([^/]+)/", "extension"),
                          (r"/(?:site|dist)-packages/([^/]+)", "package"), (r"/pip/_internal/", "pip"),
                          (r"/repositories/([^/]+)/", "repository")):
        m = re.search(pattern, p)
        if m:
            name = m.group(1) if m.groups() else "pip"
            if kind == "package":
                name = re.sub(r"\.py$", "", name)
                if name == "pip":
                    return ("pip", "pip")
            return (kind, name)
    if re.search(r"(?:^|/)(?:launch\.py|launch_utils\.py|main\.py)$", p) and "/comfy/" not in p:
        return ("launcher", Path(p).name)
    if re.search(r"/comfy(?:_extras|_execution|_api)?/|/ComfyUI[^/]*/|execution\.py$|nodes\.py$", p):
        return ("core", "ComfyUI")
    if re.search(r"/modules/|/backend/|webui\.py$", p):
        return ("core", "web UI")
    return None


def _exception_class(name: str, message: str, tb_text: str) -> tuple[str, dict[str, str]]:
    whole = f"{name}: {message}"
    m = _MISSING_MODULE.search(whole)
    if m and name in ("ModuleNotFoundError", "ImportError"):
        return "missing-module", {"module": m.group(1), "package": m.group(1).split(".")[0]}
    m = _CANNOT_IMPORT.search(whole)
    if m and name == "ImportError":
        return "cannot-import-name", {"name": m.group(1) or m.group(3), "package": (m.group(2) or "?").split(".")[0]}
    m = _MODULE_ATTR.search(whole)
    if m and name == "AttributeError":
        return "module-attribute", {"name": m.group(2), "package": m.group(1).split(".")[0]}
    if _OOM.search(whole):
        return "out-of-memory", {}
    if _GPU.search(whole):
        return "gpu-error", {}
    if _CORRUPT.search(whole) or _CORRUPT.search(tb_text):
        return "corrupt-model", {}
    if _WINERROR.search(whole) or _ERRNO.search(whole):
        return "os-error", {}
    if _NETWORK.search(whole):
        return "network", {}
    return "exception", {}


class GenericTracker:
    """Fed every clean line of one source; `events()` gives the generic findings of its latest run."""

    def __init__(self, table: GenericTable) -> None:
        self.table = table
        # the prefilter also lets through every wording the table knows (cmd.exe's Chinese messages carry none of _ANY's words)
        literals = _literals_cache.get(id(table)) or _literals_cache.setdefault(id(table), _prefilter_literals(table))
        # most lines are ASCII: one regex over the ASCII literals; the rest also need the Chinese, Japanese, ... wordings
        ascii_literals = [lit for lit in literals if lit.isascii()]
        self.anchor_filter = re.compile("|".join(re.escape(a) for a in sorted({_anchor(lit) for lit in ascii_literals})))
        self.ascii_filter = re.compile("|".join(re.escape(lit) for lit in ascii_literals))
        self.full_filter = re.compile("|".join(re.escape(lit) for lit in literals))
        self.run = 0
        self.events: dict[str, Event] = {}
        self.in_traceback = False
        self.frames: list[str] = []
        self.frames_line = 0
        self.tb_text = ""
        self.last_where: tuple[str, str] | None = None
        self.report_type = ""

    def passes(self, text: str) -> bool:
        """The prefilter: does the line hold any text the generic findings start from?"""
        if text.isascii():
            return self.anchor_filter.search(text) is not None and self.ascii_filter.search(text) is not None
        return self.full_filter.search(text) is not None

    def new_run(self) -> None:
        self.run += 1
        self.events.clear()
        self.in_traceback = False
        self.frames = []

    def feed(self, line_no: int, text: str) -> None:
        if self.in_traceback:
            frame = _FRAME.search(text)
            if frame:
                self.frames = (self.frames + [frame.group(1) or frame.group(2)])[-40:]
                return
            if len(self.tb_text) < 2000:
                self.tb_text += "\n" + text
            if self.frames and not _has_keyword(text):
                plain = _TB_EXCEPTION.match(_PREFIX.sub("", text, count=1))  # the exception line, whatever its name
                if plain:
                    self._exception(line_no, text, plain.group(1), (plain.group(2) or "").strip())
                    return
        if not self.passes(text):
            return
        text = _PREFIX.sub("", text, count=1)  # `docker compose` service names, logging timestamps
        if _TB_START.search(text):
            self.in_traceback, self.frames, self.tb_text, self.frames_line = True, [], "", line_no
            return
        stripped = text.strip("│|╰╯─ \t")
        report = _REPORT.match(text)  # ComfyUI's error report: "- **Exception Type:** torch.OutOfMemoryError"
        if report:
            if report.group(1) == "Type":
                self.report_type = report.group(2).strip()
            elif self.report_type:
                self._exception(line_no, text, self.report_type.rsplit(".", 1)[-1], report.group(2).strip())
                self.report_type = ""
            return
        exc = _EXCEPTION.match(text) or (self.in_traceback and _EXCEPTION.match(stripped)) or (
            self.in_traceback and self.frames and _TB_EXCEPTION.match(text))  # ConnectTimeout, NansException…
        if exc:
            self._exception(line_no, text, exc.group(1), (exc.group(2) or "").strip())
            return
        node = _NODE_IMPORT.search(text)
        if node:
            path = (node.group(1) or node.group(3) or "").strip()
            folder = re.split(r"[\\/]", path.rstrip("\\/"))[-1] if path else "?"
            old = self.events.get("custom-node-import")
            if node.group(3) and old is not None and old.values.get("folder") == folder and old.values.get("message"):
                old.count += 1  # the import list's summary line: the earlier line with the reason stays the evidence
                return
            self._add("custom-node-import", line_no, text, {"folder": folder, "message": (node.group(2) or "").strip()[:MAX_MESSAGE]},
                      where=("custom-node", folder))
            return
        cmd = _CMD_NOT_FOUND.match(text)
        ps = None if cmd else _PS_NOT_FOUND.search(text)
        if cmd or ps:
            command = cmd.group(1) if cmd else (ps.group(1) or ps.group(2))
            self._add("cmd-error", line_no, text, {"command": command}, where=("launcher", "cmd.exe" if cmd else "PowerShell"))
            return
        m = _PIP_ERROR.match(text)
        if m:
            self._add("pip-error", line_no, text, {"message": (m.group(1) or m.group(2)).strip()[:MAX_MESSAGE]}, where=("pip", "pip"))
            self._os_codes(line_no, text)
            return
        m = _GIT_ERROR.match(text)
        if m:
            self._add("git-error", line_no, text, {"message": m.group(1).strip()[:MAX_MESSAGE]}, where=("git", "git"))
            self._os_codes(line_no, text)
            return
        killed = _KILLED.match(text)
        if killed:
            self._add("os-error", line_no, text, {"exception": "", "message": text.strip()[:MAX_MESSAGE]},
                      where=None, os_error="killed-oom" if killed.group(1) == "Killed" else "native-crash")
            return
        self._os_codes(line_no, text)

    def _exception(self, line_no: int, text: str, name: str, message: str) -> None:
        where = _where(self.frames) if self.in_traceback else None
        cls, values = _exception_class(name, message, self.tb_text)
        values.update(exception=name, message=message[:MAX_MESSAGE])
        row = self._os_row(text)
        self.in_traceback = False
        if row is not None and cls in ("os-error", "exception", "out-of-memory", "network"):
            self._add("os-error", line_no, text, values, where=where, os_error=row)
            return
        self._add(cls, line_no, text, values, where=where)

    def _os_row(self, text: str) -> str | None:
        for regex, kind in ((_WINERROR, "winerror"), (_ERRNO, "errno")):
            m = regex.search(text)
            if m:
                row = self.table.os_by_code(kind, int(m.group(1)))
                if row is not None:
                    return row.id
        m = _EXIT_CODE.search(text) or _NTSTATUS.search(text)
        if m:
            value = m.group(1)
            code = int(value, 16) if value.lower().startswith("0x") else int(value)
            signed = code - (1 << 32) if code >= 1 << 31 else code
            row = self.table.os_by_code("exit_codes", signed) or self.table.os_by_code("exit_codes", code)
            if row is not None:
                return row.id
        for row in self.table.os_errors:
            if any(p.search(text) for p in row.texts):
                return row.id
        return None

    def _os_codes(self, line_no: int, text: str) -> None:
        row = self._os_row(text)
        if row is not None:
            self._add("os-error", line_no, text, {"exception": "", "message": text.strip()[:MAX_MESSAGE]}, where=None, os_error=row)

    def _add(self, cls: str, line_no: int, text: str, values: dict[str, str], *, where: tuple[str, str] | None,
             os_error: str | None = None) -> None:
        if where is not None:
            values = {**values, "where_kind": where[0], "folder": values.get("folder") or where[1], "where_name": where[1]}
        key = f"os-{os_error}" if os_error else cls
        old = self.events.get(key)
        self.events[key] = Event(cls, line_no, text.strip()[:400], self.run, values, os_error, (old.count + 1) if old else 1)

    def _cut_off(self) -> None:
        """A traceback the log ends inside (a paste cut short): its place is still worth a finding."""
        if self.in_traceback and self.frames:
            where = _where(self.frames)
            self._add("truncated-traceback", self.frames_line, "Traceback (most recent call last):", {}, where=where)

    def finish(self) -> list[Event]:
        self._cut_off()
        """The latest events, best first, at most MAX_PER_SOURCE. A custom node's import-failure line adds
        nothing once its own exception (with the node as its place) is there."""
        raised_in = {e.values.get("folder") for e in self.events.values()
                     if e.cls != "custom-node-import" and e.values.get("where_kind") == "custom-node"}
        events = [e for e in self.events.values() if not (e.cls == "custom-node-import" and e.values.get("folder") in raised_in)]
        return sorted(events, key=lambda e: (CLASS_RANK.get(e.cls, 1), e.line_no), reverse=True)[:MAX_PER_SOURCE]


# --------------------------------------------------------------------------------------- findings


class _Values(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def _fill(template: str, values: Mapping[str, str]) -> str:
    return template.format_map(_Values(values))


def entry_for(table: GenericTable, event: Event) -> KnownError:
    """The generic finding as a knowledge-base-like entry (ranked and rendered like the others)."""
    row = next((r for r in table.os_errors if r.id == event.os_error), None) if event.os_error else None
    words = row.words if row is not None else table.classes[event.cls]
    kind = event.values.get("where_kind")
    en_where, zh_where = table.where.get(kind, ("", "")) if kind else ("", "")
    values_en = {**event.values, "where": _fill(en_where, {"name": event.values.get("where_name", "?")}) if kind else "",
                 "code": _code_of(event.text)}
    values_zh = {**values_en, "where": _fill(zh_where, {"name": event.values.get("where_name", "?")}) if kind else ""}
    steps, steps_zh = words.by_where.get(kind or "", (words.steps, words.steps_zh))
    title = _fill(words.title, values_en)
    title_zh = _fill(words.title_zh, values_zh)
    if row is not None and event.values.get("exception"):  # the exception and where it was raised, before the OS error's name
        head = table.classes["os-error"]
        title = _fill(head.title, values_en) + " — " + title
        title_zh = _fill(head.title_zh, values_zh) + " — " + title_zh
    return KnownError(
        id=f"generic-os-{row.id}" if row is not None else f"generic-{event.cls}",
        title=title, title_zh=title_zh, severity="error", specificity=CLASS_RANK.get(event.cls, 1), patterns=(),
        explanation=_fill(words.explanation, values_en), explanation_zh=_fill(words.explanation_zh, values_zh),
        fix=Fix(tuple(_fill(s, values_en) for s in steps), {}, tuple(_fill(s, values_zh) for s in steps_zh)),
        generic=True,
    )


def _code_of(text: str) -> str:
    for regex in (_WINERROR, _ERRNO, _NTSTATUS, _EXIT_CODE):
        m = regex.search(text)
        if m:
            return m.group(1)
    return "?"
