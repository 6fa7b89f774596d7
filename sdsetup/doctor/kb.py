"""The knowledge base of known failures (`manifests/known_errors.toml`): load it and validate it.

Every problem in the file is reported with the file, the entry and the key, so a helpdesk person who
adds an entry learns exactly what to change. The file is data; matching lives in `match.py`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.i18n import t

KB_SCHEMA = 1
SEVERITIES = ("error", "warning", "harmless")
FIX_PLATFORMS = ("windows", "linux", "macos", "all")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_ENTRY_KEYS = {
    "id", "title", "title_zh", "severity", "specificity", "patterns", "context", "context_lines", "explanation",
    "explanation_zh", "fix", "autofix", "supersedes", "wrapper", "refs",
}
# Every entry carries its Simplified Chinese text beside the English, so none can land untranslated.
_REQUIRED = ("id", "title", "title_zh", "severity", "specificity", "patterns", "explanation", "explanation_zh", "fix")
LANGS = ("en", "zh-CN")

# What a translation must keep exactly as it is: `commands`, --flags, URLs and VARIABLE_NAMES.
_PLACEHOLDER = re.compile(r"""`[^`]+`|(?<![\w-])--[a-z][\w-]*|https?://[^\s()（）,，。'"“”]*[^\s()（）,，。'"“”.:;]|\b[A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9]\b""")


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


def normalize_lang(lang: str | None) -> str:
    """zh, zh_CN, zh-Hans, zh_CN.UTF-8 -> zh-CN; anything else -> en."""
    return "zh-CN" if (lang or "").lower().replace("_", "-").startswith("zh") else "en"


def _check_set_env(args: list[str]) -> str | None:
    if not args:
        return "set_env needs at least one NAME=VALUE"
    for arg in args:
        name, sep, value = arg.partition("=")
        if not sep or not _ENV_NAME.match(name) or not value:
            return f"set_env argument '{arg}' is not NAME=VALUE"
    return None


def _check_flags(args: list[str]) -> str | None:
    if not args or any(not a.startswith("--") for a in args):
        return "add_args needs one or more --flags"
    return None


def _check_swap(args: list[str]) -> str | None:
    if len(args) != 2 or any(not a.startswith("--") for a in args):
        return "swap_args needs exactly two flags: --old --new"
    return None


def _check_requirements(args: list[str]) -> str | None:
    if not args:
        return "pip_install needs one or more requirements"
    from packaging.requirements import InvalidRequirement, Requirement

    for arg in args:
        try:
            Requirement(arg)
        except InvalidRequirement as exc:
            return f"pip_install requirement '{arg}' is invalid ({exc})"
    return None


def _no_args(name: str):
    return lambda args: f"{name} takes no arguments" if args else None


# The autofix actions sdsetup knows how to apply (implemented in fixes.py): name -> argument check.
AUTOFIX_ACTIONS = {
    "set_env": _check_set_env,  # write NAME=VALUE into webui-user.bat/.sh
    "add_args": _check_flags,  # add launch flags to COMMANDLINE_ARGS
    "swap_args": _check_swap,  # replace one launch flag with another
    "vram_flags": _no_args("vram_flags"),  # --medvram, then --lowvram
    "pip_install": _check_requirements,  # pip install into the web UI's venv
    "reinstall_clip": _no_args("reinstall_clip"),  # pin setuptools, CLIP/open_clip with --no-build-isolation
    "torch_cuda": _no_args("torch_cuda"),  # the CUDA build of torch for this driver and GPU
    "hf_mirror": _no_args("hf_mirror"),  # HF_ENDPOINT (+ HF_HUB_DISABLE_XET) in webui-user
    "git_safe_directory": _no_args("git_safe_directory"),  # git config --global --add safe.directory
    "unset_git_proxy": _no_args("unset_git_proxy"),  # drop a git proxy that points at a dead local port
}


@dataclass(frozen=True)
class Autofix:
    action: str
    args: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return " ".join([self.action, *(shlex.quote(a) for a in self.args)])


@dataclass(frozen=True)
class Fix:
    steps: tuple[str, ...]
    commands: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # platform -> commands
    steps_zh: tuple[str, ...] = ()  # the same steps in Simplified Chinese (commands are not translated)

    def to_json(self) -> dict[str, Any]:
        return {"steps": list(self.steps), "commands": {k: list(v) for k, v in self.commands.items()}}


@dataclass(frozen=True)
class KnownError:
    id: str
    title: str
    severity: str  # error | warning | harmless
    specificity: int  # 1..100: how surely a match names the cause; ranks specific over generic
    patterns: tuple[re.Pattern, ...]
    explanation: str
    fix: Fix
    context: tuple[re.Pattern, ...] = ()  # a hit counts only when one of these matches nearby
    context_lines: int | None = None  # how near (None: anywhere in the same run)
    autofix: Autofix | None = None
    supersedes: tuple[str, ...] = ()  # ids this entry makes redundant when both are found
    wrapper: bool = False  # a generic "step failed" line: shown only when no specific cause is found
    refs: tuple[str, ...] = ()
    title_zh: str = ""
    explanation_zh: str = ""
    generic: bool = False  # built from manifests/generic_errors.toml when no entry matched: ranks below every entry

    def text(self, lang: str | None = "en") -> "EntryText":
        """The title, explanation and fix steps in `lang` (en or zh-CN; zh variants count as zh-CN)."""
        if normalize_lang(lang) == "zh-CN":
            return EntryText("zh-CN", self.title_zh, self.explanation_zh, self.fix.steps_zh)
        return EntryText("en", self.title, self.explanation, self.fix.steps)


@dataclass(frozen=True)
class EntryText:
    lang: str
    title: str
    explanation: str
    steps: tuple[str, ...]


@dataclass(frozen=True)
class KnowledgeBase:
    entries: tuple[KnownError, ...]
    origin: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {e.id: e for e in self.entries})

    def get(self, entry_id: str) -> KnownError:
        return self._by_id[entry_id]  # type: ignore[attr-defined]

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.entries]


def default_kb_path() -> Path:
    """manifests/known_errors.toml, whether sdsetup runs from a checkout or an installed wheel."""
    try:
        import sdsetup.manifests as manifests_pkg

        return Path(manifests_pkg.__file__).parent / "known_errors.toml"
    except ImportError:  # a bare checkout on sys.path without the editable finder
        return Path(__file__).resolve().parents[2] / "manifests" / "known_errors.toml"


_cache: dict[str, KnowledgeBase] = {}


def load_kb(path: Path | None = None) -> KnowledgeBase:
    from sdsetup.tomlcompat import load_toml

    path = Path(path) if path else default_kb_path()
    key = str(path.resolve())
    if key not in _cache:
        _cache[key] = parse_kb(load_toml(path, "known-errors file"), str(path))
    return _cache[key]


def _bad(origin: str, where: str, problem: str) -> SdsetupError:
    return SdsetupError(
        f"{origin}: {where}: {problem}",
        t("fix that entry (docs/doctor.md describes the format) and run `pytest tests/test_doctor_kb.py`"),
        ExitCode.USAGE,
    )


def _strings(value: Any, origin: str, where: str, key: str, *, allow_empty: bool = False) -> list[str]:
    if not isinstance(value, list) or any(not isinstance(v, str) or not v.strip() for v in value):
        raise _bad(origin, where, f"key '{key}' must be a list of non-empty strings")
    if not value and not allow_empty:
        raise _bad(origin, where, f"key '{key}' must not be empty")
    return value


def _compile(patterns: list[str], origin: str, where: str, key: str) -> tuple[re.Pattern, ...]:
    compiled = []
    for index, text in enumerate(patterns):
        try:
            compiled.append(re.compile(text))
        except re.error as exc:
            raise _bad(origin, where, f"{key}[{index}] is not a valid regular expression ({exc}): {text!r}") from None
    return tuple(compiled)


def parse_kb(data: Mapping[str, Any], origin: str = "known_errors.toml", *, require_zh: bool = True) -> KnowledgeBase:
    """Validate the parsed TOML and build the knowledge base; raises SdsetupError (USAGE) naming the problem.

    require_zh=False reads an old file without translations (bench/doctor's peer at an older revision)."""
    if data.get("schema_version") != KB_SCHEMA:
        raise _bad(origin, "top level", f"schema_version must be {KB_SCHEMA} (found {data.get('schema_version')!r})")
    unknown_top = set(data) - {"schema_version", "error"}
    if unknown_top:
        raise _bad(origin, "top level", f"unknown key(s) {sorted(unknown_top)}; entries go in [[error]] tables")
    raw_entries = data.get("error")
    if not isinstance(raw_entries, list) or not raw_entries:
        raise _bad(origin, "top level", "no [[error]] entries")
    entries: list[KnownError] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_entries):
        where = f"error[{index}]"
        if not isinstance(raw, dict):
            raise _bad(origin, where, "must be a table")
        if isinstance(raw.get("id"), str):
            where = f"error[{index}] (id '{raw['id']}')"
        if not require_zh:
            raw = {"title_zh": raw.get("title", "-"), "explanation_zh": raw.get("explanation", "-"), **raw}
            if isinstance(raw.get("fix"), dict) and "steps_zh" not in raw["fix"]:
                raw["fix"] = {**raw["fix"], "steps_zh": raw["fix"].get("steps", [])}
        for key in _REQUIRED:
            if key not in raw:
                raise _bad(origin, where, f"missing key '{key}'")
        unknown = set(raw) - _ENTRY_KEYS
        if unknown:
            raise _bad(origin, where, f"unknown key(s) {sorted(unknown)}")
        entry_id = raw["id"]
        if not isinstance(entry_id, str) or not _ID.match(entry_id):
            raise _bad(origin, where, "key 'id' must be lower-case letters, digits and dashes")
        if entry_id in seen:
            raise _bad(origin, where, f"key 'id': '{entry_id}' is used twice")
        seen.add(entry_id)
        for key in ("title", "explanation", "title_zh", "explanation_zh"):
            if not isinstance(raw[key], str) or not raw[key].strip():
                raise _bad(origin, where, f"key '{key}' must be a non-empty string")
        for key in ("title", "explanation"):
            lost = placeholders(raw[key]) - placeholders(raw[f"{key}_zh"])
            if lost:
                raise _bad(origin, where, f"key '{key}_zh' must keep {sorted(lost)} exactly as in '{key}'")
        if raw["severity"] not in SEVERITIES:
            raise _bad(origin, where, f"key 'severity' must be one of {', '.join(SEVERITIES)}")
        specificity = raw["specificity"]
        if not isinstance(specificity, int) or isinstance(specificity, bool) or not 1 <= specificity <= 100:
            raise _bad(origin, where, "key 'specificity' must be a whole number from 1 to 100")
        patterns = _compile(_strings(raw["patterns"], origin, where, "patterns"), origin, where, "patterns")
        context = _compile(_strings(raw.get("context", []), origin, where, "context", allow_empty=True), origin, where, "context")
        context_lines = raw.get("context_lines")
        if context_lines is not None and (not isinstance(context_lines, int) or context_lines < 1):
            raise _bad(origin, where, "key 'context_lines' must be a positive whole number")
        if context_lines is not None and not context:
            raise _bad(origin, where, "key 'context_lines' needs a 'context' list")
        fix = _parse_fix(raw["fix"], origin, where)
        autofix = _parse_autofix(raw.get("autofix"), origin, where)
        if autofix and raw["severity"] == "harmless":
            raise _bad(origin, where, "a harmless entry cannot have an autofix")
        wrapper = raw.get("wrapper", False)
        if not isinstance(wrapper, bool):
            raise _bad(origin, where, "key 'wrapper' must be true or false")
        entries.append(
            KnownError(
                id=entry_id,
                title=raw["title"].strip(),
                severity=raw["severity"],
                specificity=specificity,
                patterns=patterns,
                explanation=" ".join(raw["explanation"].split()),
                fix=fix,
                context=context,
                context_lines=context_lines,
                autofix=autofix,
                supersedes=tuple(_strings(raw.get("supersedes", []), origin, where, "supersedes", allow_empty=True)),
                wrapper=wrapper,
                refs=tuple(_strings(raw.get("refs", []), origin, where, "refs", allow_empty=True)),
                title_zh=raw["title_zh"].strip(),
                explanation_zh="".join(raw["explanation_zh"].split()) if _cjk_only_breaks(raw["explanation_zh"])
                else " ".join(raw["explanation_zh"].split()),
            )
        )
    ids = {e.id for e in entries}
    for entry in entries:
        for other in entry.supersedes:
            if other not in ids:
                raise _bad(origin, f"entry '{entry.id}'", f"key 'supersedes' names unknown id '{other}'")
            if other == entry.id:
                raise _bad(origin, f"entry '{entry.id}'", "key 'supersedes' names the entry itself")
    return KnowledgeBase(tuple(entries), origin)


def _parse_fix(raw: Any, origin: str, where: str) -> Fix:
    if not isinstance(raw, dict):
        raise _bad(origin, where, "key 'fix' must be a table with 'steps' and per-platform commands")
    unknown = set(raw) - {"steps", "steps_zh", *FIX_PLATFORMS}
    if unknown:
        raise _bad(origin, where, f"fix has unknown key(s) {sorted(unknown)}; use steps, steps_zh, {', '.join(FIX_PLATFORMS)}")
    steps = _strings(raw.get("steps", []), origin, where, "fix.steps")
    if "steps_zh" not in raw:
        raise _bad(origin, where, "missing key 'fix.steps_zh' (the steps in Simplified Chinese)")
    steps_zh = _strings(raw["steps_zh"], origin, where, "fix.steps_zh")
    if len(steps_zh) != len(steps):
        raise _bad(origin, where, f"fix.steps_zh has {len(steps_zh)} steps, fix.steps {len(steps)}: translate each step")
    for index, (english, chinese) in enumerate(zip(steps, steps_zh)):
        lost = placeholders(english) - placeholders(chinese)
        if lost:
            raise _bad(origin, where, f"fix.steps_zh[{index}] must keep {sorted(lost)} exactly as in fix.steps[{index}]")
    commands = {
        platform: tuple(_strings(raw[platform], origin, where, f"fix.{platform}"))
        for platform in FIX_PLATFORMS
        if platform in raw
    }
    return Fix(tuple(" ".join(s.split()) for s in steps), commands, tuple(" ".join(s.split()) for s in steps_zh))


def _cjk_only_breaks(text: str) -> bool:
    """True when the text has no spaces inside its lines (pure Chinese): line breaks are then joined
    without a space, as Chinese text is written."""
    return all(" " not in line.strip() for line in text.strip().splitlines())


def _parse_autofix(raw: Any, origin: str, where: str) -> Autofix | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw.strip():
        raise _bad(origin, where, "key 'autofix' must be a string: 'ACTION [ARG ...]'")
    try:
        words = shlex.split(raw)
    except ValueError as exc:
        raise _bad(origin, where, f"key 'autofix' cannot be split into words ({exc})") from None
    action, args = words[0], words[1:]
    check = AUTOFIX_ACTIONS.get(action)
    if check is None:
        raise _bad(origin, where, f"key 'autofix': unknown action '{action}' (known: {', '.join(sorted(AUTOFIX_ACTIONS))})")
    problem = check(args)
    if problem:
        raise _bad(origin, where, f"key 'autofix': {problem}")
    return Autofix(action, tuple(args))
