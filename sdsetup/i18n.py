"""Which language sdsetup speaks, and its message catalog.

The language is chosen like the platform does: `--lang` > `SDSETUP_LANG` > the config file's `lang` >
the locale (`LC_ALL`, `LC_MESSAGES`, `LANG`; on Windows the user's UI language). Any `zh` variant
speaks Simplified Chinese (zh-CN); everything else speaks English.

Catalogs are gettext `.po` files (`sdsetup/locale/zh_CN/LC_MESSAGES/sdsetup.po`) that a translator
opens in Poedit or any gettext tool. The msgid is the English text with named placeholders
(`could not download {name}`), flagged `python-brace-format` so `msgfmt -c` checks them. We read the
`.po` file with the small parser below instead of compiling `.mo` files: no build step, and parsing is
a millisecond or two, paid only when the language is not English (bench/startup measures both).

Each translated message has a stable id for `--json`: the msgctxt when the entry has one (use it to
keep an id when the English wording changes), else the first 10 hex digits of the sha1 of the msgid.
Ids do not change with the language; `message_id(msgid)` computes one.

Call sites write `t("could not download {name}", name=spec.name)`: a `Msg`, which is a `str` in the
chosen language (so `+`, f-strings and `in` keep working) that also carries `.id`, `.msgid`, `.args`
and `.english`. `N_("…")` marks a string for the catalog without translating it (tables of constants
translated later with `t(text)`). `scripts/i18n_extract.py` finds the strings not yet routed here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

ENGLISH = "en"
CHINESE = "zh-CN"
LANGS = (ENGLISH, CHINESE)
ENV_VAR = "SDSETUP_LANG"
LOCALE_VARS = ("LC_ALL", "LC_MESSAGES", "LANG")  # the POSIX order: the first one set wins
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "sdsetup"
_CATALOG_DIRS = {CHINESE: "zh_CN"}

# Windows LANGIDs: the low 10 bits are the primary language; 0x04 is Chinese (0x0804 zh-CN, 0x0404
# zh-TW, 0x0C04 zh-HK, 0x1004 zh-SG, 0x1404 zh-MO).
_LANG_CHINESE = 0x04


# -- choosing the language (pure) ---------------------------------------------------------------
def normalize(value: str | None) -> str | None:
    """`zh_CN.UTF-8`, `zh-Hans`, `zh_TW`, `ZH` → zh-CN; `en_US`, `C`, `POSIX` → en; else None."""
    if not value:
        return None
    tag = value.strip().split(".", 1)[0].split("@", 1)[0].replace("_", "-").lower()
    if tag == "zh" or tag.startswith("zh-"):
        return CHINESE
    if tag in ("c", "posix", "en") or tag.startswith("en-") or tag.startswith("c-"):
        return ENGLISH
    return None


def from_locale_env(env: Mapping[str, str]) -> str | None:
    """The language of the POSIX locale variables, None when none is set (the first set one decides)."""
    for name in LOCALE_VARS:
        value = env.get(name)
        if value:
            return normalize(value) or ENGLISH  # a non-Chinese locale (fr_FR) speaks English
    return None


def from_windows_langid(langid: int | None) -> str | None:
    """The language of a Windows LANGID (`GetUserDefaultUILanguage`), None when unknown."""
    if not langid:
        return None
    return CHINESE if langid & 0x3FF == _LANG_CHINESE else ENGLISH


def choose(
    flag: str | None = None,
    env: Mapping[str, str] | None = None,
    config_lang: str | None = None,
    windows_langid: int | None = None,
) -> str:
    """Flag > SDSETUP_LANG > config `lang` > locale variables > Windows UI language > English.

    An explicit value sdsetup has no catalog for (`de`) speaks English, like a `de_DE` locale.
    """
    env = {} if env is None else env
    for explicit in (flag, env.get(ENV_VAR), config_lang):
        if explicit:
            return normalize(explicit) or ENGLISH
    return from_locale_env(env) or from_windows_langid(windows_langid) or ENGLISH


def windows_ui_langid() -> int | None:  # pragma: no cover - Windows only; from_windows_langid is tested
    if os.name != "nt":
        return None
    try:
        import ctypes

        return int(ctypes.windll.kernel32.GetUserDefaultUILanguage())
    except Exception:
        return None


def split_lang_flag(argv: list[str]) -> tuple[str | None, list[str]]:
    """Take `--lang X` / `--lang=X` out of argv wherever it stands (it is valid after any command).

    Returns (value, the other arguments). Arguments after `--` are left alone.
    """
    value: str | None = None
    rest: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            rest.extend(argv[index:])
            break
        if arg == "--lang":  # the last argument: a value of "" (setup() says a language is missing)
            value = argv[index + 1] if index + 1 < len(argv) else ""
            index += 2
            continue
        if arg.startswith("--lang="):
            value = arg.split("=", 1)[1]
            index += 1
            continue
        rest.append(arg)
        index += 1
    return value, rest


# -- the process's language -----------------------------------------------------------------------
_current: str | None = None


def current() -> str:
    """The language of this run: set by `setup()`/`set_lang()`, else resolved from the environment."""
    global _current
    if _current is None:
        _current = choose(None, os.environ, None, windows_ui_langid())
    return _current


def set_lang(lang: str) -> str:
    global _current
    _current = normalize(lang) or ENGLISH
    return _current


def setup(argv: list[str], env: Mapping[str, str] | None = None, config_lang: Any = None) -> list[str]:
    """Choose the language for this run from argv and the environment; return argv without --lang.

    `config_lang(argv, env)` reads the config file's `lang` (settings.config_lang: the catalog does not
    import settings, which imports it). An explicit `--lang` that names no language is a usage error.
    """
    env = os.environ if env is None else env
    if config_lang is None:
        def config_lang(_argv, _env):
            return None
    flag, rest = split_lang_flag(argv)
    if flag is not None and normalize(flag) is None:
        from sdsetup.errors import usage_error

        set_lang(choose(None, env, config_lang(argv, env), windows_ui_langid()))
        problem = t("--lang {value}: unknown language", value=flag) if flag else t("--lang needs a language")
        raise usage_error(problem, t("use --lang en or --lang zh-CN"))
    if flag is None and not env.get(ENV_VAR):
        set_lang(choose(None, env, config_lang(argv, env), windows_ui_langid()))
    else:
        set_lang(choose(flag, env))
    return rest


# -- the catalog ------------------------------------------------------------------------------------
def _unquote(text: str) -> str:
    body = text.strip()
    if len(body) < 2 or body[0] != '"' or body[-1] != '"':
        raise ValueError(f"not a quoted string: {text!r}")
    body = body[1:-1]
    if "\\" not in body:
        return body
    out = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            nxt = body[index + 1]
            out.append({"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}.get(nxt, "\\" + nxt))
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)


class PoEntry:
    __slots__ = ("msgctxt", "msgid", "msgstr", "flags", "comments", "obsolete", "line")

    def __init__(self) -> None:
        self.msgctxt: str | None = None
        self.msgid = ""
        self.msgstr = ""
        self.flags: set[str] = set()
        self.comments: list[str] = []
        self.obsolete = False
        self.line = 0


def parse_po(text: str) -> list[PoEntry]:
    """Every entry of a .po file (header included, msgid ""), in order. No plural forms (none needed)."""
    entries: list[PoEntry] = []
    entry = PoEntry()
    field: str | None = None
    started = False

    def finish() -> None:
        nonlocal entry, started, field
        if started:
            entries.append(entry)
        entry, started, field = PoEntry(), False, None

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        obsolete = line.startswith("#~")
        if obsolete:
            line = line[2:].strip()
        if not line:
            finish()
            continue
        if line.startswith("#"):
            if started and field == "msgstr":
                finish()
            if line.startswith("#,"):
                entry.flags.update(flag.strip() for flag in line[2:].split(","))
            else:
                entry.comments.append(line)
            continue
        if line.startswith('"'):
            if field is None:
                raise ValueError(f"line {number}: a string outside an entry")
            setattr(entry, field, (getattr(entry, field) or "") + _unquote(line))
            continue
        keyword, _, rest = line.partition(" ")
        if keyword in ("msgctxt", "msgid") and started and field == "msgstr":
            finish()
        if keyword == "msgstr[0]":
            keyword = "msgstr"
        if keyword not in ("msgctxt", "msgid", "msgstr"):
            field = None  # msgid_plural / msgstr[n]: not used by sdsetup
            continue
        if not started:
            entry.line = number
        started = True
        entry.obsolete = entry.obsolete or obsolete
        field = keyword
        setattr(entry, keyword, _unquote(rest))
    finish()
    return entries


def catalog_path(lang: str) -> Path | None:
    folder = _CATALOG_DIRS.get(lang)
    return LOCALE_DIR / folder / "LC_MESSAGES" / f"{DOMAIN}.po" if folder else None


_catalogs: dict[str, dict[str, str]] = {}


def _key(msgctxt: str | None, msgid: str) -> str:
    return f"{msgctxt}\x04{msgid}" if msgctxt else msgid  # gettext's own key for a context


def _po_table(text: str) -> dict[str, str]:
    """The translations of a .po text, for lookups: a tight loop over blank-line separated entries
    (gettext tools always write them so), ~4x faster than parse_po. Keeps what parse_po keeps: no
    fuzzy, obsolete (`#~`) or untranslated entries.
    """
    table: dict[str, str] = {}
    for block in text.split("\n\n"):
        if "msgstr" not in block:
            continue
        fields: dict[str, list[str]] = {}
        current: list[str] | None = None
        fuzzy = False
        for line in block.split("\n"):
            first = line[:1]
            if first == '"':
                if current is not None:
                    current.append(line.rstrip()[1:-1])
            elif first == "m":
                keyword, _, rest = line.partition(" ")
                current = fields[keyword] = [rest.rstrip()[1:-1]]
            elif first == "#":
                fuzzy = fuzzy or (line.startswith("#,") and "fuzzy" in line)
                current = None
        msgid, msgstr = "".join(fields.get("msgid", ())), "".join(fields.get("msgstr", ()))
        if not msgid or not msgstr or fuzzy:
            continue
        ctxt = "".join(fields["msgctxt"]) if "msgctxt" in fields else None
        if "\\" in msgid + msgstr + (ctxt or ""):
            msgid, msgstr = _unquote(f'"{msgid}"'), _unquote(f'"{msgstr}"')
            ctxt = _unquote(f'"{ctxt}"') if ctxt is not None else None
        table[_key(ctxt, msgid)] = msgstr
    return table


def load_catalog(lang: str) -> dict[str, str]:
    """msgid (or `ctxt\\x04msgid`) → translation; fuzzy, empty and obsolete entries do not count."""
    cached = _catalogs.get(lang)
    if cached is not None:
        return cached
    path = catalog_path(lang)
    table = _cached_table(path) if path is not None and path.is_file() else {}
    _catalogs[lang] = table
    return table


def _cached_table(path: Path) -> dict[str, str]:
    """The .po's table, kept in `__pycache__/` beside it the way Python keeps .pyc files.

    Loading the marshal cache takes a tenth of a millisecond; parsing takes a few for a full catalog.
    The cache is keyed by the .po's mtime and size, written only where Python would write bytecode,
    and any problem with it falls back to parsing.
    """
    import marshal

    stat = path.stat()
    stamp = [stat.st_mtime_ns, stat.st_size]
    cache = path.parent / "__pycache__" / f"{path.name}.{sys.implementation.cache_tag}.marshal"
    try:
        saved_stamp, table = marshal.loads(cache.read_bytes())
        if saved_stamp == stamp and isinstance(table, dict):
            return table
    except (OSError, ValueError, EOFError, TypeError):
        pass
    table = _po_table(path.read_text(encoding="utf-8"))
    if not sys.dont_write_bytecode:
        try:
            cache.parent.mkdir(exist_ok=True)
            temporary = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
            temporary.write_bytes(marshal.dumps([stamp, table]))
            os.replace(temporary, cache)
        except OSError:  # a read-only install: parse each time, like Python without .pyc
            pass
    return table


def message_id(msgid: str, msgctxt: str | None = None) -> str:
    """The stable id of a message in --json: its msgctxt, else a short hash of the English msgid."""
    if msgctxt:
        return msgctxt
    import hashlib

    return hashlib.sha1(msgid.encode("utf-8")).hexdigest()[:10]


def translate(msgid: str, lang: str | None = None, msgctxt: str | None = None) -> str:
    """The template of msgid in lang (the English msgid when untranslated)."""
    lang = lang or current()
    if lang == ENGLISH:
        return msgid
    return load_catalog(lang).get(_key(msgctxt, msgid), msgid)


def _format(template: str, args: Mapping[str, Any]) -> str:
    return template.format(**args) if args else template.replace("{{", "{").replace("}}", "}")


class Msg(str):
    """A user-facing message in the chosen language that remembers its English template and id."""

    msgid: str
    msgctxt: str | None
    args: dict[str, Any]

    def __new__(cls, msgid: str, args: Mapping[str, Any] | None = None, *, msgctxt: str | None = None, lang: str | None = None) -> "Msg":
        args = dict(args or {})
        template = translate(msgid, lang, msgctxt)
        try:
            text = _format(template, args)
        except (KeyError, IndexError, ValueError):  # a broken translation must never hide the message
            text = _format(msgid, args)
        self = super().__new__(cls, text)
        self.msgid, self.msgctxt, self.args = msgid, msgctxt, args
        return self

    @property
    def id(self) -> str:
        return message_id(self.msgid, self.msgctxt)

    @property
    def english(self) -> str:
        return _format(self.msgid, self.args)


def t(msgid: str, /, *, msgctxt: str | None = None, **args: Any) -> Msg:
    """The message msgid in this run's language, its `{name}` placeholders filled from args."""
    return Msg(msgid, args, msgctxt=msgctxt)


def N_(msgid: str) -> str:
    """Mark a constant for the catalog; translate it where it is shown, with t(msgid)."""
    return msgid


def id_of(text: Any) -> str | None:
    """The message id of a Msg, None for a plain string (not yet in the catalog)."""
    return text.id if isinstance(text, Msg) else None


def with_ids(item: dict[str, Any], keys: Iterable[str] = ("name", "value", "fix")) -> dict[str, Any]:
    """`item` with `<key>_id` beside each human text key, for --json (`fix` → `fix_id`).

    Every listed key present gets its `_id` key, None when the text is not a Msg, so the document's keys
    are the same in every language. Use it where a command builds status items or findings.
    """
    out = dict(item)
    for key in keys:
        if key in item:
            out[f"{key}_id"] = id_of(item[key])
    return out


# -- --help texts -----------------------------------------------------------------------------------
def translate_help(command: Any, lang: str | None = None) -> None:
    """Translate, in place, the help texts of a built command tree (typer.main.get_command(app)).

    Walks `.help`, `.short_help`, every parameter's `.help` and the subcommands; a text without a
    catalog entry stays English. cli.main calls it only when the language is not English.
    """
    lang = lang or current()
    if lang == ENGLISH:
        return
    catalog = load_catalog(lang)

    def tr(text: Any) -> Any:
        if not isinstance(text, str) or not text:
            return text
        import inspect

        clean = inspect.cleandoc(text)
        found = catalog.get(clean)
        if found is not None:
            return found
        # a docstring's first paragraph and the rest are separate entries (Typer shows the first alone)
        head, sep, tail = clean.partition("\n\n")
        if sep and head in catalog:
            return catalog[head] + sep + catalog.get(tail, tail)
        return text

    seen: set[int] = set()

    def walk(node: Any) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        for attr in ("help", "short_help"):
            if getattr(node, attr, None):
                setattr(node, attr, tr(getattr(node, attr)))
        for param in getattr(node, "params", ()) or ():
            if getattr(param, "help", None):
                param.help = tr(param.help)
        for child in (getattr(node, "commands", None) or {}).values():
            walk(child)

    walk(command)


# -- the console ------------------------------------------------------------------------------------
def setup_console(streams: Iterable[Any] | None = None) -> None:
    """Make stdout/stderr unable to crash on a character their encoding lacks.

    A Windows console (WriteConsoleW) and UTF-8 streams show everything. A pipe or file in the ANSI
    code page (cp936/GBK on Chinese Windows: Chinese fits, `≥` or `✓` may not) or in cp437 would raise
    UnicodeEncodeError mid-message: such characters become `?` instead.
    """
    for stream in (sys.stdout, sys.stderr) if streams is None else streams:
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("_", "-")
        if encoding in ("utf-8", "utf8") or getattr(stream, "errors", "strict") != "strict":
            continue
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="replace")
            except (ValueError, OSError):  # a closed or detached stream: nothing to protect
                pass


# -- Typer's own usage errors -----------------------------------------------------------------------
# Typer/click reject a bad command line before sdsetup runs, in English. These are their messages as
# templates (click 8.x, Typer ≥ 0.28); `from_english` turns such a text into the catalog's message.
# Longer templates first: "No such option: {option} (Possible …)" before "No such option: {option}".
USAGE_MESSAGES = (
    N_("No such option: {option} (Possible options: {options})"),
    N_("No such option: {option} Did you mean {suggestion}?"),
    N_("No such option: {option}"),
    N_("No such option {option}."),
    N_("No such command {command}."),
    N_("Missing argument {name}."),
    N_("Missing option {name}."),
    N_("Missing parameter: {name}"),
    N_("Option {option} requires an argument."),
    N_("Option {option} requires {count} arguments."),
    N_("Invalid value for {name}: {reason}"),
    N_("Invalid value: {reason}"),
    N_("Got unexpected extra argument ({args})"),
    N_("Got unexpected extra arguments ({args})"),
)


def from_english(text: str, templates: Iterable[str] = USAGE_MESSAGES) -> str:
    """The Msg of the first template that text is an instance of; text itself when none fits."""
    import re
    import string

    for template in templates:
        pattern, names = "", []
        for literal, name, _, _ in string.Formatter().parse(template):
            pattern += re.escape(literal)
            if name is not None:
                pattern += f"(?P<{name}>.+?)"
                names.append(name)
        found = re.fullmatch(pattern, text, re.S)
        if found:
            return t(template, **found.groupdict())
    return text
