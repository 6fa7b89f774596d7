#!/usr/bin/env python3
"""Find sdsetup's user-facing strings, keep the gettext catalog in step, and route strings through it.

    scripts/i18n_extract.py                 list the user-facing strings not yet translated
    scripts/i18n_extract.py --update-po     add new msgids to every .po (empty msgstr), mark gone ones obsolete
    scripts/i18n_extract.py --allowlist     rewrite tests/i18n_untranslated.txt from today's state
    scripts/i18n_extract.py --rewrite FILE  rewrite FILE's error/hint/progress f-strings into t("…{name}…", name=…)

What counts as user-facing (an AST walk over sdsetup/, not a grep): the message and hint of
`SdsetupError(...)` / `usage_error(...)`, Typer `help=` texts and command docstrings in cli.py, progress
lines (`.say(`, `.detail(`, `on_wait(`, `sys.stderr.write(`), `warnings.append(`, and the `name`,
`value`, `fix`, `title`, `summary`, `message`, `hint` strings of dict literals (status items).
A line marked `# i18n: keep` is left alone (the `error:`/`hint:` prefixes that scripts grep for).
A string is routed when it is the first argument of `t(`/`N_(`; a help text or command docstring in
cli.py is routed when its msgid is in the catalog (cli.main translates the built command tree).

An f-string's msgid names its placeholders after the expressions: `{self.spec.name}` → `{name}`,
`{human_bytes(free)}` → `{free}`, `{x!r}` → `{x}` with `x=repr(x)`. The same rule builds the msgid in
--update-po and the call in --rewrite, so a translation made before the rewrite still matches after.
"""

from __future__ import annotations

import argparse
import ast
import json
import keyword
import re
import string
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "sdsetup"
ALLOWLIST = ROOT / "tests" / "i18n_untranslated.txt"
sys.path.insert(0, str(ROOT))

from sdsetup import i18n  # noqa: E402

ERROR_CALLS = {"SdsetupError", "usage_error"}
PROGRESS_CALLS = {"say", "detail", "on_wait"}
ROUTING_CALLS = {"t", "_t", "N_"}  # _t: t imported under another name where a module uses `t` itself
TEXT_KEYS = {"name", "value", "fix", "title", "summary", "message", "hint"}
_WORD = re.compile(r"[A-Za-z]{2,}")
KEEP = "# i18n: keep"  # on a string's first line: not for translation (e.g. the `error:` prefix scripts grep for)


@dataclass
class Found:
    path: str  # relative to the repository root, with /
    line: int
    kind: str  # error, hint, help, progress, warning, item, routed
    template: str
    placeholders: list[tuple[str, str]] = field(default_factory=list)  # (name, source of the expression)
    node: ast.AST | None = None
    msgctxt: str | None = None

    @property
    def key(self) -> str:
        return f"{self.path}\t{escape(self.template)}"  # no kind: a string keeps its key when --rewrite routes it


def escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


# -- msgid of an expression -----------------------------------------------------------------------
def _name_of(expr: ast.AST) -> str:
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        return expr.attr
    if isinstance(expr, ast.Subscript) and isinstance(expr.slice, ast.Constant) and isinstance(expr.slice.value, str):
        return expr.slice.value
    if isinstance(expr, ast.Subscript):
        return _name_of(expr.value)
    if isinstance(expr, ast.Call):
        if len(expr.args) == 1 and not expr.keywords:
            return _name_of(expr.args[0])
        return _name_of(expr.func)
    if isinstance(expr, ast.BoolOp):
        return _name_of(expr.values[0])
    return "value"


def _identifier(name: str) -> str:
    name = re.sub(r"\W", "_", name).strip("_").lower() or "value"
    if name[0].isdigit() or keyword.iskeyword(name) or name in ("msgctxt",):
        name = f"{name}_"
    return name


class _Builder:
    def __init__(self, source: str) -> None:
        self.source = source
        self.parts: list[str] = []
        self.placeholders: list[tuple[str, str]] = []

    def placeholder(self, expr: ast.AST, conversion: int = -1, spec: str = "") -> None:
        code = ast.get_source_segment(self.source, expr) or ast.unparse(expr)
        if conversion == ord("r"):
            code = f"repr({code})"
        elif conversion in (ord("s"), ord("a")):
            code = f"{'str' if conversion == ord('s') else 'ascii'}({code})"
        name = _identifier(_name_of(expr))
        taken = dict(self.placeholders)
        base, number = name, 2
        while name in taken and taken[name] != code:
            name, number = f"{base}{number}", number + 1
        if name not in taken:
            self.placeholders.append((name, code))
        self.parts.append("{" + name + (":" + spec if spec else "") + "}")

    def add(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            self.parts.append(node.value.replace("{", "{{").replace("}", "}}"))
            return True
        if isinstance(node, ast.JoinedStr):
            for value in node.values:
                if isinstance(value, ast.Constant):
                    self.parts.append(str(value.value).replace("{", "{{").replace("}", "}}"))
                elif isinstance(value, ast.FormattedValue):
                    spec = ""
                    if value.format_spec is not None:
                        if not all(isinstance(v, ast.Constant) for v in value.format_spec.values):  # type: ignore[attr-defined]
                            return False
                        spec = "".join(str(v.value) for v in value.format_spec.values)  # type: ignore[attr-defined]
                    self.placeholder(value.value, value.conversion, spec)
            return True
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self.add(node.left) and self.add(node.right)
        self.placeholder(node)
        return True


def template_of(node: ast.AST, source: str) -> tuple[str, list[tuple[str, str]]] | None:
    """(msgid, placeholders) of a string expression, None when it holds no literal text."""
    if not _is_texty(node):
        return None
    builder = _Builder(source)
    if not builder.add(node):
        return None
    template = "".join(builder.parts)
    literal = re.sub(r"\{[^{}]*\}", "", template)
    if not _WORD.search(literal):
        return None
    return template, builder.placeholders


def _is_texty(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_texty(node.left) or _is_texty(node.right)
    return False


def placeholders_of(text: str) -> set[str]:
    """The named fields of a str.format template (`{path}`, `{size:>8}` → path, size)."""
    try:
        return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError:
        return {"<malformed>"}


# -- the walk ---------------------------------------------------------------------------------------
def _call_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Name):
        return node.id
    return ""


class _Visitor(ast.NodeVisitor):
    def __init__(self, path: str, source: str) -> None:
        self.path, self.source = path, source
        self.lines = source.splitlines()
        self.found: list[Found] = []
        self.routed_nodes: set[int] = set()

    def note(self, node: ast.AST | None, kind: str) -> None:
        if node is None or id(node) in self.routed_nodes:
            return
        if isinstance(node, ast.IfExp):  # two messages: each branch on its own
            self.note(node.body, kind)
            self.note(node.orelse, kind)
            return
        if isinstance(node, ast.BoolOp):  # `hint or "default"`
            for value in node.values:
                self.note(value, kind)
            return
        if isinstance(node, ast.Call) and _call_name(node) in ROUTING_CALLS:
            return
        if KEEP in self.lines[node.lineno - 1]:  # deliberately English (a log prefix, a fixed keyword)
            return
        result = template_of(node, self.source)
        if result is not None:
            self.found.append(Found(self.path, node.lineno, kind, result[0], result[1], node))

    def visit_Call(self, node: ast.Call) -> None:
        name = _call_name(node)
        if name in ROUTING_CALLS and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            ctxt = next((k.value.value for k in node.keywords if k.arg == "msgctxt" and isinstance(k.value, ast.Constant)), None)
            self.found.append(Found(self.path, node.lineno, "routed", node.args[0].value, [], node, ctxt))
        elif name in ERROR_CALLS:
            if node.args:
                self.note(node.args[0], "error")
            if len(node.args) > 1:
                self.note(node.args[1], "hint")
            for kw in node.keywords:
                if kw.arg in ("message", "hint"):
                    self.note(kw.value, "error" if kw.arg == "message" else "hint")
        elif name in PROGRESS_CALLS or _dotted(node.func) == "sys.stderr.write":
            if node.args:
                self.note(node.args[0], "progress")
        elif name == "append" and _dotted(node.func).endswith("warnings.append"):
            if node.args:
                self.note(node.args[0], "warning")
        elif name in ("Option", "Argument", "Typer", "command", "callback"):
            for kw in node.keywords:
                if kw.arg == "help":
                    self.note(kw.value, "help")
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
        if "status" in keys or "fix" in keys:
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value in TEXT_KEYS:
                    self.note(value, "item")
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        is_command = any(
            isinstance(d, ast.Call) and _call_name(d) in ("command", "callback") or isinstance(d, ast.Attribute) and d.attr in ("command", "callback")
            for d in node.decorator_list
        )
        doc = ast.get_docstring(node, clean=True)
        if is_command and doc:
            first = node.body[0]
            head, sep, tail = doc.partition("\n\n")
            for part in (head, tail) if sep else (doc,):
                self.found.append(Found(self.path, first.lineno, "help", part.replace("{", "{{").replace("}", "}}"), [], None))
        self.generic_visit(node)


def scan(root: Path = SOURCE) -> list[Found]:
    found: list[Found] = []
    for path in sorted(root.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        visitor = _Visitor(path.relative_to(ROOT).as_posix(), source)
        visitor.visit(ast.parse(source, str(path)))
        found.extend(visitor.found)
    return found


def untranslated(found: list[Found], catalog: dict[str, str]) -> list[Found]:
    """User-facing strings a Chinese user would still read in English."""
    out = []
    for item in found:
        if item.kind == "routed":
            if i18n._key(item.msgctxt, item.template) not in catalog:
                out.append(item)
        elif item.kind == "help" and item.path == "sdsetup/cli.py":
            if _help_key(item.template) not in catalog:
                out.append(item)
        else:
            out.append(item)
    return out


def _help_key(template: str) -> str:
    import inspect

    return inspect.cleandoc(template.replace("{{", "{").replace("}}", "}"))


# -- the .po file -------------------------------------------------------------------------------------
def _quote(text: str) -> str:
    body = text.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t")
    lines = body.split("\n")
    if len(lines) == 1:
        return f'"{lines[0]}"'
    pieces = [line + "\\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    return '""\n' + "\n".join(f'"{piece}"' for piece in pieces)


HEADER = """# Simplified Chinese messages of sdsetup.
# Placeholders such as {path} stay exactly as they are; scripts/i18n_extract.py --update-po adds new msgids.
msgid ""
msgstr ""
"Project-Id-Version: sdsetup\\n"
"PO-Revision-Date: 2026-11-29 04:00+0000\\n"
"Last-Translator: sdsetup <sdsetup@localhost>\\n"
"Language-Team: Chinese (simplified)\\n"
"Language: zh_CN\\n"
"MIME-Version: 1.0\\n"
"Content-Type: text/plain; charset=UTF-8\\n"
"Content-Transfer-Encoding: 8bit\\n"
"Plural-Forms: nplurals=1; plural=0;\\n"
"""


def catalog_msgids(found: list[Found]) -> dict[tuple[str | None, str], list[Found]]:
    """Every msgid the code needs, with where it is used, in order of first use."""
    wanted: dict[tuple[str | None, str], list[Found]] = {}
    for item in found:
        msgid = _help_key(item.template) if item.kind == "help" else item.template
        if item.kind == "help" and item.path != "sdsetup/cli.py":
            continue
        wanted.setdefault((item.msgctxt, msgid), []).append(item)
    return wanted


def render_po(found: list[Found], existing: list[i18n.PoEntry]) -> str:
    old = {(e.msgctxt, e.msgid): e for e in existing if e.msgid}
    out = [HEADER]
    wanted = catalog_msgids(found)
    for (ctxt, msgid), uses in wanted.items():
        entry = old.get((ctxt, msgid))
        lines = [e for e in (entry.comments if entry else []) if e.startswith("# ")]  # translator comments
        refs = sorted({u.path for u in uses})  # files, not lines: a moved line must not churn the catalog
        if refs:
            lines.append("#: " + " ".join(refs))
        flags = set(entry.flags if entry else ()) - {"python-brace-format", ""}
        if any(u.kind != "help" for u in uses) and placeholders_of(msgid):
            flags.add("python-brace-format")
        if flags:
            lines.append("#, " + ", ".join(sorted(flags)))
        if ctxt:
            lines.append(f"msgctxt {_quote(ctxt)}")
        lines.append(f"msgid {_quote(msgid)}")
        lines.append(f"msgstr {_quote(entry.msgstr if entry else '')}")
        out.append("\n".join(lines) + "\n")
    for key, entry in old.items():  # gone from the code: kept as obsolete, so the translation is not lost
        if key in wanted or not entry.msgstr:
            continue
        lines = [f"#~ msgctxt {_quote(entry.msgctxt)}"] if entry.msgctxt else []
        lines += ["#~ " + line for line in f"msgid {_quote(entry.msgid)}".split("\n")]
        lines += ["#~ " + line for line in f"msgstr {_quote(entry.msgstr)}".split("\n")]
        out.append("\n".join(lines) + "\n")
    return "\n".join(out)


def update_po(found: list[Found]) -> list[Path]:
    written = []
    for lang in i18n.LANGS:
        path = i18n.catalog_path(lang)
        if path is None:
            continue
        existing = i18n.parse_po(path.read_text(encoding="utf-8")) if path.is_file() else []
        text = render_po(found, existing)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8", newline="\n")
            written.append(path)
    return written


# -- the allow-list --------------------------------------------------------------------------------
def read_allowlist(path: Path = ALLOWLIST) -> set[str]:
    if not path.is_file():
        return set()
    return {line for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")}


def write_allowlist(items: list[Found], path: Path = ALLOWLIST) -> None:
    lines = sorted({item.key for item in items})
    head = ("# User-facing strings not yet translated (path, msgid). The second i18n wave empties this list;\n"
            "# tests/test_i18n.py fails when a string not listed here lands untranslated. Regenerate with\n"
            "# scripts/i18n_extract.py --allowlist (only to remove lines, or after a merge).\n")
    path.write_text(head + "\n".join(lines) + "\n", encoding="utf-8", newline="\n")


# -- --rewrite ----------------------------------------------------------------------------------------
def rewrite(path: Path, kinds: set[str]) -> int:
    """Replace the string expressions of one file by t("msgid", name=expr) calls; returns how many."""
    source = path.read_text(encoding="utf-8")
    visitor = _Visitor(path.relative_to(ROOT).as_posix(), source)
    visitor.visit(ast.parse(source))
    targets = [f for f in visitor.found if f.kind in kinds and f.node is not None and hasattr(f.node, "end_lineno")]
    if not targets:
        return 0
    offsets = [0]
    for line in source.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))

    def at(line: int, col: int) -> int:  # ast columns are utf-8 byte offsets
        text = source[offsets[line - 1]:offsets[line]]
        return offsets[line - 1] + len(text.encode("utf-8")[:col].decode("utf-8"))

    tree = ast.parse(source)
    binds_t = any(isinstance(n, ast.Name) and n.id == "t" and not isinstance(n.ctx, ast.Load) or isinstance(n, ast.arg) and n.arg == "t"
                  for n in ast.walk(tree))
    call, import_line = ("_t", "from sdsetup.i18n import t as _t\n") if binds_t else ("t", "from sdsetup.i18n import t\n")
    spans = []
    for item in targets:
        node = item.node
        start, end = at(node.lineno, node.col_offset), at(node.end_lineno, node.end_col_offset)  # type: ignore[union-attr]
        args = "".join(f", {name}={code}" for name, code in item.placeholders)
        spans.append((start, end, f"{call}({json.dumps(item.template, ensure_ascii=False)}{args})"))  # a JSON string is a Python literal
    spans.sort(reverse=True)
    for start, end, text in spans:
        source = source[:start] + text + source[end:]
    if import_line.strip() not in source:
        tree = ast.parse(source)
        body = tree.body
        index = 0
        while index < len(body) and (isinstance(body[index], (ast.Import, ast.ImportFrom)) or
                                     isinstance(body[index], ast.Expr) and isinstance(body[index].value, ast.Constant)):
            index += 1
        line = body[index - 1].end_lineno if index else 0
        lines = source.splitlines(keepends=True)
        lines.insert(line, import_line)
        source = "".join(lines)
    path.write_text(source, encoding="utf-8")
    return len(spans)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--update-po", action="store_true", help="add new msgids to the .po files, mark gone ones obsolete")
    parser.add_argument("--allowlist", action="store_true", help=f"rewrite {ALLOWLIST.relative_to(ROOT)} from today's untranslated strings")
    parser.add_argument("--rewrite", nargs="+", type=Path, metavar="FILE", help="route FILE's strings through t()")
    parser.add_argument("--kinds", default="error,hint,progress,warning", help="kinds for --rewrite (default: error,hint,progress,warning)")
    args = parser.parse_args(argv)
    if args.rewrite:
        for path in args.rewrite:
            count = rewrite(path.resolve(), set(args.kinds.split(",")))
            print(f"{path}: {count} strings routed through t()")
        return 0
    found = scan()
    if args.update_po:
        for path in update_po(found):
            print(f"updated {path.relative_to(ROOT)}")
    catalog = i18n.load_catalog(i18n.CHINESE)
    missing = untranslated(found, catalog)
    if args.allowlist:
        write_allowlist(missing)
        print(f"{ALLOWLIST.relative_to(ROOT)}: {len(missing)} strings")
        return 0
    if not args.update_po:
        for item in missing:
            print(f"{item.path}:{item.line}: {item.kind}: {escape(item.template)}")
    print(f"{len(missing)} user-facing strings untranslated, {len(found) - len(missing)} translated", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
